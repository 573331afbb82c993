/*
 * Moving bytes between a client and its backend once a service is granted.
 *
 * Each read fills a chunk that becomes the write on the other side, so no
 * byte is copied in user space.  Every chunk written towards a side is
 * counted, by the memory it takes, in that direction's queue until it is
 * freed.  Two bounds stop reading a source, and neither drops a byte:
 *
 * Per session: when a direction holds more than RELAY_HIGH_WATER, reading
 * its source stops until it holds less than RELAY_LOW_WATER.
 *
 * Over all sessions (relay_memory_max, budget.h): once the chunks of every
 * session reach the budget, a direction that holds queued bytes is held
 * after its read: reading its source stops until its own queue is empty.
 * One whose destination keeps up reads again as soon as its writes are
 * done, so it keeps moving, a read at a time; one whose destination is
 * behind (a slow reader, a stalled backend) stays held with what it
 * holds.  When usage falls below the budget's low-water mark every held
 * direction reads again.  Meanwhile reads are small (budget_read_size),
 * so each direction adds at most one small read beyond the budget.
 *
 * An end of stream on one side becomes a shutdown of the other's write
 * side; the session ends when both directions have ended.
 */
#include <stdlib.h>

#include "common/log.h"
#include "server/conf/config.h"
#include "server/policy/budget.h"
#include "server/policy/chunk.h"
#include "server/policy/site.h"
#include "server/session/session.h"
#include "server/session/uspsession.h"
#include "server/transport/transport.h"

#define RELAY_HIGH_WATER (256 * 1024)
#define RELAY_LOW_WATER  (64 * 1024)

static void on_backend_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static uv_stream_t *
source_of(struct session *s, struct relay_dir *dir)
{
	return dir == &s->up ? &s->client.stream : &s->backend.stream;
}

static uv_stream_t *
destination_of(struct session *s, struct relay_dir *dir)
{
	return dir == &s->up ? &s->backend.stream : &s->client.stream;
}

/* The direction whose queue a write to dst is in, or NULL (not the client nor the backend). */
static struct relay_dir *
direction_to(struct session *s, uv_stream_t *dst)
{
	if (dst == &s->client.stream)
		return &s->down;
	return dst == &s->backend.stream ? &s->up : NULL;
}

void
relay_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct session *s = h->data;
	struct budget *b = &s->site->budget;

	chunk_alloc_charged(b, budget_read_size(b, CHUNK_READ_SIZE), buf);
}

/* Reads dir's source again unless something still stops it. */
static void
resume(struct session *s, struct relay_dir *dir)
{
	if (s->state != S_RELAY || dir->paused || dir->held || dir->eof)
		return;
	if (dir == &s->up)
		session_read_client(s);
	else
		uv_read_start(&s->backend.stream, relay_alloc, on_backend_read);
}

/* --- directions held for the budget, on the server's list --------------- */

static void
held_link(struct session *s)
{
	struct site *site = s->site;

	s->budget_prev = NULL;
	s->budget_next = site->budget_held;
	if (site->budget_held != NULL)
		site->budget_held->budget_prev = s;
	site->budget_held = s;
	s->budget_listed = true;
}

static void
held_unlink(struct session *s)
{
	struct site *site = s->site;

	if (!s->budget_listed)
		return;
	if (s->budget_prev != NULL)
		s->budget_prev->budget_next = s->budget_next;
	else
		site->budget_held = s->budget_next;
	if (s->budget_next != NULL)
		s->budget_next->budget_prev = s->budget_prev;
	s->budget_listed = false;
}

static void
hold(struct session *s, struct relay_dir *dir)
{
	if (dir->held)
		return;
	uv_read_stop(source_of(s, dir));
	dir->held = true;
	/* Counted when the destination is behind; one that keeps up only waits for its writes. */
	if (uv_stream_get_write_queue_size(destination_of(s, dir)) > 0)
		budget_note_pause(&s->site->budget);
	if (!s->budget_listed)
		held_link(s);
}

static void
unhold(struct session *s, struct relay_dir *dir)
{
	if (!dir->held)
		return;
	dir->held = false;
	if (!s->up.held && !s->down.held)
		held_unlink(s);
	resume(s, dir);
}

void
relay_budget_low(void *arg)
{
	struct site *site = arg;
	struct session *s;

	/* Each leaves the list as both its directions are let go. */
	while ((s = site->budget_held) != NULL) {
		unhold(s, &s->up);
		unhold(s, &s->down);
	}
}

void
relay_forget(struct session *s)
{
	held_unlink(s);
	s->up.held = s->down.held = false;
}

/* --- writes ----------------------------------------------------------------- */

/*
 * A local backend (a program, a Unix socket) that stops reading and
 * exits makes writes to it fail: that is how such a backend declines the
 * rest of its input (a daytime-like program ignores it), not a failure.
 * What the client still sends is dropped; the backend's answer goes on.
 */
static bool
stopped_reading(const struct session *s, int status)
{
	return s->backend.handle.type == UV_NAMED_PIPE &&
	       (status == UV_EPIPE || status == UV_ECONNRESET);
}

static void
on_written(uv_write_t *req, int status)
{
	struct chunk *c = (struct chunk *)req;
	struct session *s = c->owner;
	struct relay_dir *dir = c->tag;

	if (dir != NULL)
		dir->queued -= c->size;
	chunk_free(c);
	if (s->state == S_CLOSED)
		return;
	if (status < 0 && dir == &s->up && stopped_reading(s, status)) {
		dir->dropping = true;
		return;
	}
	if (status < 0) {
		log_debug("session %s: write: %s", s->id, uv_strerror(status));
		session_close(s, dir == &s->up ? "backend write failed" : "client write failed");
		return;
	}
	if (dir == NULL)
		return;
	if (dir->paused && dir->queued < RELAY_LOW_WATER) {
		dir->paused = false;
		resume(s, dir);
	}
	/* Its own queue is empty: a held direction holds nothing of the budget any more. */
	if (dir->held && dir->queued == 0)
		unhold(s, dir);
}

/* Queues c's first len bytes to dst, counted in the queue of the direction towards dst. */
static int
queue_write(struct session *s, uv_stream_t *dst, struct chunk *c, size_t len)
{
	struct relay_dir *dir = direction_to(s, dst);
	size_t size = c->size;

	if (chunk_write(c, len, dst, s, dir, on_written) != 0)
		return -1;
	if (dir != NULL)
		dir->queued += size;
	return 0;
}

int
relay_client_write(struct session *s, struct chunk *c, size_t len)
{
	return queue_write(s, &s->client.stream, c, len);
}

int
relay_write_copy(struct session *s, uv_stream_t *dst, const void *data, size_t len)
{
	struct relay_dir *dir = direction_to(s, dst);
	struct chunk *c;

	if (len == 0)
		return 0;
	if (dst == &s->client.stream && s->transport != NULL)
		return s->transport->ops->output(s->transport, data, len);
	/* Bytes for the client or the backend count in the budget; a line for a helper does not. */
	if ((c = chunk_copy(dir != NULL ? &s->site->budget : NULL, data, len)) == NULL)
		return -1;
	return queue_write(s, dst, c, len);
}

/* --- relaying ----------------------------------------------------------- */

static void
both_done(struct session *s)
{
	if (s->up.shut && s->down.shut)
		session_close(s, "done");
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	struct session *s = req->data;

	if (s->state == S_CLOSED)
		return;
	/* A peer that is already gone cannot be shut down: that direction is over too. */
	(req == &s->up.shutdown_req ? &s->up : &s->down)->shut = true;
	both_done(s);
}

/* The source of dir ended: after the queued bytes, end the destination's write side. */
static void
end_direction(struct session *s, struct relay_dir *dir)
{
	dir->eof = true;
	uv_read_stop(source_of(s, dir));
	if (dir == &s->down && s->transport != NULL &&
	    s->transport->ops->finish(s->transport) != 0) {
		session_close(s, "client write failed");
		return;
	}
	dir->shutdown_req.data = s;
	if (uv_shutdown(&dir->shutdown_req, destination_of(s, dir), on_shutdown) != 0) {
		dir->shut = true;
		both_done(s);
	}
}

/*
 * After bytes were queued for dir: stop reading its source if either bound
 * says so.  Over the budget, a direction that holds anything (what it
 * just queued, at least) reads no more until it holds nothing: one whose
 * destination keeps up reads again as soon as its writes are done, one
 * behind stays held.
 */
static void
pace(struct session *s, struct relay_dir *dir)
{
	if (budget_over(&s->site->budget) && dir->queued > 0)
		hold(s, dir);
	if (dir->queued > RELAY_HIGH_WATER) {
		uv_read_stop(source_of(s, dir));
		dir->paused = true;
	}
}

static void
forward(struct session *s, struct relay_dir *dir, ssize_t nread, const uv_buf_t *buf)
{
	uv_stream_t *dst = destination_of(s, dir);

	if (nread > 0 && dir->dropping) {
		chunk_release(buf);
		return;
	}
	if (nread > 0) {
		dir->bytes += (uint64_t)nread;
		s->last_activity_ms = uv_now(s->site->loop);
		if (dst == &s->client.stream && s->transport != NULL) {
			int r = s->transport->ops->output(s->transport, (uint8_t *)buf->base,
			                                  (size_t)nread);
			chunk_release(buf);
			if (r != 0) {
				session_close(s, "client write failed");
				return;
			}
		} else if (queue_write(s, dst, chunk_fit(buf, (size_t)nread), (size_t)nread) != 0) {
			session_close(s, dir == &s->up ? "backend write failed"
			                               : "client write failed");
			return;
		}
		pace(s, dir);
		return;
	}
	chunk_release(buf);
	if (nread == 0)
		return;
	/* Ending without reading all it was sent, a local backend resets: its end, too. */
	if (nread == UV_EOF || (dir == &s->down && stopped_reading(s, (int)nread))) {
		end_direction(s, dir);
		return;
	}
	log_debug("session %s: read: %s", s->id, uv_strerror((int)nread));
	session_close(s, dir == &s->up ? "client read failed" : "backend read failed");
}

void
relay_client_data(struct session *s, ssize_t nread, const uv_buf_t *buf)
{
	forward(s, &s->up, nread, buf);
}

static void
on_backend_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct session *s = st->data;

	if (s->state != S_RELAY) {
		chunk_release(buf);
		return;
	}
	forward(s, &s->down, nread, buf);
}

static void
on_idle_check(uv_timer_t *t)
{
	struct session *s = t->data;
	uint64_t idle = s->svc->idle_timeout_ms;
	uint64_t quiet = uv_now(s->site->loop) - s->last_activity_ms;

	if (quiet >= idle) {
		session_close(s, "idle timeout");
		return;
	}
	uv_timer_start(&s->timer, on_idle_check, idle - quiet, 0);
}

void
relay_start(struct session *s, const void *header, size_t header_len)
{
	uv_stream_t *be = &s->backend.stream;

	if ((s->usp != NULL ? usp_send_connect(s) : session_send(s, "+\r\n", 3)) != 0 ||
	    relay_write_copy(s, be, header, header_len) != 0 ||
	    relay_write_copy(s, be, s->in.data, s->in.len) != 0) {
		session_close(s, "out of memory");
		return;
	}
	s->up.bytes += s->in.len;
	session_drop_input(s);
	session_set_state(s, S_RELAY);
	s->last_activity_ms = uv_now(s->site->loop);
	uv_timer_stop(&s->timer);
	if (s->svc->idle_timeout_ms > 0)
		uv_timer_start(&s->timer, on_idle_check, s->svc->idle_timeout_ms, 0);
	uv_read_start(be, relay_alloc, on_backend_read);
	if (s->client_eof_early)
		end_direction(s, &s->up);
	else
		session_read_client(s);
}
