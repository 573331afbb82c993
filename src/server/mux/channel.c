/*
 * One stream of a framed session (internal.h): its backend, and its bytes
 * both ways within the windows.
 *
 * Up (client to backend): the client sends only within the window fived
 * gave, so what a stream holds for a backend that is behind never
 * exceeds it; fived gives credit back as the backend takes the bytes.
 * Before the grant, what the client sends is held, and discarded if the
 * stream is refused.
 *
 * Down (backend to client): the backend is read only while the client's
 * credit for the stream and for the session lasts, and while frames for
 * the client are not backed up; each read is at most one frame's payload,
 * into a chunk with room for the frame's header in front, so that the
 * payload is not copied again on a plain session.
 */
#include "server/mux/internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/proxy.h"
#include "server/conf/config.h"
#include "server/policy/chunk.h"
#include "server/policy/metrics.h"
#include "server/policy/policy.h"
#include "server/policy/site.h"
#include "server/policy/sources.h"
#include "server/privsep/sockets.h"

static void on_down_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf);

static uv_stream_t *
backend_stream(struct channel *ch)
{
	return &ch->backend.h.stream;
}

/* --- the end ----------------------------------------------------------------- */

static void
release(struct channel *ch)
{
	struct mux *m = ch->mux;

	if (ch->closing > 0 || !ch->ended)
		return;
	backend_free(&ch->backend);
	caller_free(ch->grant.caller);
	config_unref(ch->grant.cfg);
	buf_free(&ch->held);
	free(ch);
	mux_channel_freed(m);
}

static void
on_timer_closed(uv_handle_t *h)
{
	struct channel *ch = h->data;

	ch->closing--;
	release(ch);
}

static void
audit_end(struct channel *ch, const char *reason)
{
	struct mux *m = ch->mux;

	m->ev->audit(m->owner, "stream_ended",
	             json_pack("{s:I,s:s,s:s,s:b,s:I,s:I,s:I}", "stream", (json_int_t)ch->id,
	                       "service", ch->grant.svc->name, "reason", reason, "accepted",
	                       ch->connected, "bytes_in", (json_int_t)ch->bytes_in, "bytes_out",
	                       (json_int_t)ch->bytes_out, "duration_ms",
	                       (json_int_t)(uv_now(m->site->loop) - ch->opened_ms)));
}

void
channel_end(struct channel *ch, uint8_t code, const char *reason, bool reset)
{
	uint8_t f[MUX_HEADER_LEN + 1 + MUX_REASON_MAX];

	if (ch->ended)
		return;
	ch->ended = true;
	if (code != 0)
		mux_send_frame(ch->mux, f, mux_encode_rst(f, sizeof(f), ch->id, code, reason));
	audit_end(ch, reason);
	mux_discard(ch->mux, ch->held.len);
	buf_free(&ch->held);
	ch->backend.reset = reset;
	ch->closing += backend_close(&ch->backend) + 1;
	uv_close((uv_handle_t *)&ch->timer, on_timer_closed);
	mux_unlink(ch->mux, ch);
}

void
channel_end_gently(struct channel *ch, const char *reason)
{
	uv_os_fd_t fd;

	/*
	 * The write side is shut at once, not through a request the close
	 * would cancel: the service sees the end of its input.  A pipe to a
	 * program is not a socket: closing it is that end.
	 */
	if (!ch->ended && ch->connected && !ch->up_shut &&
	    uv_fileno((uv_handle_t *)backend_stream(ch), &fd) == 0)
		shutdown(fd, SHUT_WR);
	channel_end(ch, 0, reason, false);
}

/* Both directions are over: the stream is done. */
static void
maybe_done(struct channel *ch)
{
	if (ch->down_fin && ch->up_shut)
		channel_end(ch, 0, "done", false);
}

/* --- up: client -> backend -------------------------------------------------- */

/* A program that exited without reading all of its input declines the rest: not a failure. */
static bool
stopped_reading(const struct channel *ch, int status)
{
	return ch->backend.h.handle.type == UV_NAMED_PIPE &&
	       (status == UV_EPIPE || status == UV_ECONNRESET);
}

/* libuv calls it before the backend's close callback, even for a shutdown the close cancels. */
static void
on_shut(uv_shutdown_t *req, int status)
{
	struct channel *ch = req->data;

	free(req);
	if (ch->ended)
		return;
	ch->up_shut = true;
	maybe_done(ch);
}

/*
 * After the client's FIN and every byte before it: the backend's input
 * ends.  The request is allocated only then: an idle stream is small.
 */
static void
maybe_shut(struct channel *ch)
{
	uv_shutdown_t *req;

	if (!ch->up_fin || !ch->connected || ch->up_queued > 0 || ch->up_shutting)
		return;
	ch->up_shutting = true;
	if ((req = malloc(sizeof(*req))) != NULL) {
		req->data = ch;
		if (uv_shutdown(req, backend_stream(ch), on_shut) == 0)
			return;
		free(req);
	}
	ch->up_shut = true;
	maybe_done(ch);
}

/* n bytes of the client's were delivered (or dropped): its windows get them back. */
static void
delivered(struct channel *ch, size_t n)
{
	struct mux *m = ch->mux;

	ch->up.consumed += n;
	m->up.consumed += n;
	if (!ch->up_fin)
		mux_credit(m, &ch->up, ch->id);
	mux_credit(m, &m->up, 0);
}

static void
on_up_written(uv_write_t *req, int status)
{
	struct chunk *c = (struct chunk *)req;
	struct channel *ch = c->owner;
	size_t credit = (size_t)(uintptr_t)c->tag;

	ch->up_queued -= c->size;
	chunk_free(c);
	if (ch->ended) {
		mux_discard(ch->mux, credit);
		return;
	}
	if (status < 0 && stopped_reading(ch, status)) {
		ch->dropping = true;
	} else if (status < 0) {
		log_debug("session %s: stream %u: write: %s", ch->mux->id, ch->id,
		          uv_strerror(status));
		channel_end(ch, MUX_RST_RESET, "service write failed", true);
		return;
	}
	delivered(ch, credit);
	maybe_shut(ch);
}

/* Writes data to the backend; credit (its client bytes) is given back once it is written. */
static int
write_up(struct channel *ch, const void *data, size_t len, size_t credit)
{
	struct chunk *c;
	size_t size;

	if (len == 0)
		return 0;
	if ((c = chunk_copy(&ch->mux->site->budget, data, len)) == NULL)
		return -1;
	size = c->size;
	if (chunk_write(c, 0, len, backend_stream(ch), ch, (void *)(uintptr_t)credit,
	                on_up_written) != 0)
		return -1;
	ch->up_queued += size;
	return 0;
}

void
channel_data(struct channel *ch, const uint8_t *data, size_t len)
{
	ch->last_activity_ms = uv_now(ch->mux->site->loop);
	if (!ch->connected) {
		/* Within the first window, which is what held may take: no credit comes before
		 * ACCEPT. */
		if (buf_append(&ch->held, data, len) != 0)
			channel_end(ch, MUX_RST_LIMIT, "out of memory", true);
		return;
	}
	if (ch->dropping) {
		delivered(ch, len);
		return;
	}
	ch->bytes_in += len;
	if (write_up(ch, data, len, len) != 0)
		channel_end(ch, MUX_RST_RESET, "service write failed", true);
}

void
channel_fin(struct channel *ch)
{
	ch->up_fin = true;
	maybe_shut(ch);
}

/* --- down: backend -> client ------------------------------------------------ */

/* What may be read now: the client's credit, one frame's payload at most. */
static size_t
down_room(const struct channel *ch)
{
	uint64_t n = ch->down_left < ch->mux->down_left ? ch->down_left : ch->mux->down_left;

	return n < MUX_PAYLOAD_MAX ? (size_t)n : MUX_PAYLOAD_MAX;
}

static void
down_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct backend *b = h->data;
	struct channel *ch = b->owner;
	size_t n = down_room(ch);
	struct chunk *c = n > 0 ? chunk_new(&ch->mux->site->budget, MUX_HEADER_LEN + n) : NULL;

	*buf = c != NULL ? uv_buf_init(c->data + MUX_HEADER_LEN, (unsigned)n)
	                 : uv_buf_init(NULL, 0);
}

/* The chunk behind a buffer from down_alloc, its frame's header in front. */
static struct chunk *
frame_chunk(const uv_buf_t *buf)
{
	return (struct chunk *)(void *)(buf->base - MUX_HEADER_LEN - offsetof(struct chunk, data));
}

static void
stop_reading(struct channel *ch)
{
	uv_read_stop(backend_stream(ch));
	ch->reading = false;
}

/*
 * Whether m has no backend read now: its own backpressure, or the relay
 * budget's, or the copies' share of it (the last two list m to be woken).
 */
static bool
backends_held(struct mux *m)
{
	return mux_down_full(m) || mux_budget_hold(m) || mux_copies_hold(m);
}

void
channel_resume(struct channel *ch)
{
	if (ch->ended || !ch->connected || ch->down_fin || ch->reading || down_room(ch) == 0 ||
	    backends_held(ch->mux))
		return;
	if (uv_read_start(backend_stream(ch), down_alloc, on_down_read) == 0)
		ch->reading = true;
}

static void
send_down(struct channel *ch, struct chunk *c, size_t n)
{
	struct mux *m = ch->mux;

	mux_header((uint8_t *)c->data, ch->id, MUX_DATA, 0, n);
	ch->down_left -= n;
	m->down_left -= n;
	ch->bytes_out += n;
	ch->last_activity_ms = uv_now(m->site->loop);
	if (m->finished) {
		chunk_free(c);
		return;
	}
	mux_emit(m, c, MUX_HEADER_LEN + n);
	if (ch->ended || m->finished)
		return;
	if (down_room(ch) == 0 || backends_held(m))
		stop_reading(ch);
}

static void
down_ended(struct channel *ch)
{
	uint8_t f[MUX_HEADER_LEN];

	stop_reading(ch);
	ch->down_fin = true;
	mux_send_frame(ch->mux, f, mux_encode_empty(f, sizeof(f), ch->id, MUX_FIN));
	maybe_done(ch);
}

static void
on_down_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
	struct backend *b = h->data;
	struct channel *ch = b->owner;
	struct chunk *c = buf->base != NULL ? frame_chunk(buf) : NULL;

	if (nread > 0 && !ch->ended) {
		send_down(ch, c, (size_t)nread);
		return;
	}
	chunk_free(c);
	if (ch->ended || nread == 0)
		return;
	if (nread == UV_EOF && sockets_end_was_reset(&ch->backend.h.handle, ch->up_shutting))
		nread = UV_ECONNRESET;
	if (nread == UV_ENOBUFS)
		stop_reading(ch);
	else if (nread == UV_EOF || stopped_reading(ch, (int)nread))
		down_ended(ch);
	else
		channel_end(ch, MUX_RST_RESET, "service reset the stream", true);
}

void
channel_window(struct channel *ch, uint32_t credit)
{
	if (mux_window_add(&ch->down_left, credit) != 0) {
		mux_fail(ch->mux, "protocol error: window beyond 2^31-1");
		return;
	}
	channel_resume(ch);
}

/* --- reaching the backend -------------------------------------------------------- */

static void
on_idle_check(uv_timer_t *t)
{
	struct channel *ch = t->data;
	uint64_t idle = ch->grant.svc->idle_timeout_ms;
	uint64_t quiet = uv_now(ch->mux->site->loop) - ch->last_activity_ms;

	if (quiet >= idle) {
		channel_end(ch, MUX_RST_LIMIT, "idle timeout", true);
		return;
	}
	uv_timer_start(&ch->timer, on_idle_check, idle - quiet, 0);
}

/* ACCEPT, then the PROXY header and what was held go to the backend, and bytes flow. */
static void
start(struct channel *ch, const uint8_t *header, size_t header_len)
{
	struct mux *m = ch->mux;
	uint8_t f[MUX_HEADER_LEN];

	ch->connected = true;
	m->npending--;
	mux_send_frame(m, f, mux_encode_empty(f, sizeof(f), ch->id, MUX_ACCEPT));
	ch->bytes_in += ch->held.len;
	if (write_up(ch, header, header_len, 0) != 0 ||
	    write_up(ch, ch->held.data, ch->held.len, ch->held.len) != 0) {
		channel_end(ch, MUX_RST_RESET, "service write failed", true);
		return;
	}
	buf_free(&ch->held);
	ch->last_activity_ms = uv_now(m->site->loop);
	if (ch->grant.svc->idle_timeout_ms > 0)
		uv_timer_start(&ch->timer, on_idle_check, ch->grant.svc->idle_timeout_ms, 0);
	channel_resume(ch);
	maybe_shut(ch);
}

static int
audit_grant(struct channel *ch)
{
	struct mux *m = ch->mux;

	return m->ev->audit(m->owner, "stream_granted",
	                    json_pack("{s:I,s:s,s:s,s:s,s:s}", "stream", (json_int_t)ch->id,
	                              "service", ch->grant.svc->name, "vhost", ch->grant.vhost,
	                              "identity", ch->grant.identity, "backend_session",
	                              ch->grant.session_id));
}

static void
on_backend_ready(void *owner, int err)
{
	struct channel *ch = owner;
	struct mux *m = ch->mux;
	uint8_t header[PROXY_V2_MAX];
	int n;

	if (ch->ended)
		return;
	uv_timer_stop(&ch->timer);
	metrics_connect(&m->site->metrics, err == 0, (uv_hrtime() - ch->opened_ns) / NS_PER_US);
	if (err != 0) {
		if (log_ratelimit_allow(&m->site->backend_failures, uv_now(m->site->loop)))
			log_warn("session %s: stream %u: service %s: backend: %s", m->id, ch->id,
			         ch->grant.svc->name, uv_strerror(err));
		channel_end(ch, MUX_RST_UNAVAILABLE, "service unavailable", false);
		return;
	}
	if ((n = m->ev->header(m->owner, &ch->grant, ch->id, header, sizeof(header))) < 0) {
		channel_end(ch, MUX_RST_UNAVAILABLE, "service unavailable", false);
		return;
	}
	if (audit_grant(ch) != 0 && m->cfg->audit_required) {
		channel_end(ch, MUX_RST_REFUSED, "server busy", false);
		return;
	}
	start(ch, header, (size_t)n);
}

static void
on_backend_closed(void *owner)
{
	struct channel *ch = owner;

	ch->closing--;
	release(ch);
}

static const struct backend_events backend_events = {
        .ready = on_backend_ready,
        .closed = on_backend_closed,
};

static void
on_connect_timeout(uv_timer_t *t)
{
	on_backend_ready(t->data, UV_ETIMEDOUT);
}

struct channel *
channel_open(struct mux *m, uint32_t id, struct mux_grant *g, const uint8_t *data, size_t len)
{
	struct channel *ch = calloc(1, sizeof(*ch));

	if (ch == NULL) {
		source_release(m->site->sources, g->source);
		caller_free(g->caller);
		config_unref(g->cfg);
		return NULL;
	}
	ch->mux = m;
	ch->id = id;
	ch->grant = *g;
	mux_grant_fix(&ch->grant);
	ch->up.size = MUX_STREAM_WINDOW;
	ch->up.left = MUX_STREAM_WINDOW - len;
	ch->up.credit_ns = uv_hrtime();
	ch->down_left = MUX_STREAM_WINDOW;
	ch->opened_ms = uv_now(m->site->loop);
	ch->opened_ns = uv_hrtime();
	buf_init(&ch->held, MUX_STREAM_WINDOW);
	buf_append(&ch->held, data, len);
	uv_timer_init(m->site->loop, &ch->timer);
	ch->timer.data = ch;
	mux_channel_linked(m, ch);
	uv_timer_start(&ch->timer, on_connect_timeout, g->svc->connect_timeout_ms, 0);
	backend_init(&ch->backend, m->site, g->svc, m->id, &backend_events, ch);
	backend_start(&ch->backend, &ch->grant.who);
	return ch;
}
