/*
 * A session from accept to close.  The client speaks first: request lines
 * are read into a bounded buffer and handled one at a time; once a service
 * is granted, whatever the client sent after its request line is held and
 * delivered to the backend right after the "+" reply, in order.  A refused
 * request is answered with "- reason" and everything held is dropped.
 */
#include "server/session/internal.h"

#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/line.h"
#include "proto/proxy.h"
#include "proto/sealed.h"
#include "server/policy/auditlog.h"
#include "server/policy/chunk.h"
#include "server/policy/policy.h"
#include "server/policy/site.h"
#include "server/policy/sources.h"
#include "server/privsep/sockets.h"
#include "server/session/attach.h"
#include "server/session/auth.h"
#include "server/session/sessiontoken.h"
#include "server/session/text.h"
#include "server/session/transition.h"
#include "server/session/uspsession.h"
#include "server/transport/seal.h"
#include "server/transport/tls.h"
#include "server/transport/transport.h"

static void on_client_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void proxy_header_input(struct session *s, ssize_t nread, const uv_buf_t *buf);
static void pace_input(struct session *s);
static void backend_ready_for(struct session *s, int err);
static const struct stream_events stream_events;
static int start_transport(struct session *s,
                           struct transport *(*new)(const struct transport_link *));

/* Over but for the close: such a session no longer counts against max_connections. */
static bool
ending(enum session_state state)
{
	return state == S_LINGER || state == S_DARK || state == S_CLOSED;
}

/* A connection to a dark server that has not passed a sealed handshake: it is told nothing. */
static bool
stranger(const struct session *s)
{
	return s->cfg->dark && !s->encrypted;
}

/* Frees the session's transport, if any: it is plain TCP from then on. */
static void
drop_transport(struct session *s)
{
	if (s->transport != NULL) {
		s->transport_was = s->transport->ops->name;
		s->transport->ops->free(s->transport);
	}
	s->transport = NULL;
}

int
session_set_caller(struct session *s, struct caller *caller, void *extra)
{
	json_t *rec = json_pack("{s:s,s:s}", "identity", caller->identity, "method",
	                        auth_method_name(caller->method));

	/* Only a token replaces an identity: USP may present one for a later stream. */
	if (s->caller != NULL && caller->method != AUTH_TOKEN) {
		log_error("session %s: a second identity (%s) for a session that has one", s->id,
		          auth_method_name(caller->method));
		caller_free(caller);
		json_decref(rec);
		json_decref(extra);
		return -1;
	}
	caller_free(s->caller);
	s->caller = caller;
	if (rec != NULL && extra != NULL)
		json_object_update(rec, extra);
	json_decref(extra);
	session_audit(s, "authenticated", rec);
	return 0;
}

/* Before a request: the session counts among its source's connections yet to make one. */
static bool
before_request(enum session_state state)
{
	return state == S_DETECT || state == S_HANDSHAKE || state == S_COMMAND;
}

void
session_set_state(struct session *s, enum session_state next)
{
	if (!session_state_allowed(s->state, next)) {
		log_error("session %s: no move from %s to %s: closing it", s->id,
		          session_state_name(s->state), session_state_name(next));
		session_close(s, "internal error");
		return;
	}
	log_debug("session %s: %s -> %s", s->id, session_state_name(s->state),
	          session_state_name(next));
	/* A session stops waiting for good once it is past its first command phase. */
	if (!before_request(next))
		source_unwait(s->site->sources, &s->waiter);
	if (ending(next) && !ending(s->state))
		s->site->nending++;
	if (next == S_DARK && s->state != S_DARK)
		s->site->nheld++;
	if (s->state == S_DARK && next != S_DARK)
		s->site->nheld--;
	if ((next == S_DETACHED) != (s->state == S_DETACHED)) {
		s->site->ndetached += next == S_DETACHED ? 1 : -1;
		if (s->source != NULL)
			source_detached(s->source, next == S_DETACHED);
	}
	/*
	 * Its last reply on its way, a session is no longer one of its
	 * source's connections, as it is no longer one of the server's
	 * (nending): a refused connection that lingers does not keep the next,
	 * an ATTACH among them, out.
	 */
	if ((next == S_LINGER || next == S_CLOSED) && s->source != NULL) {
		source_release(s->site->sources, s->source);
		s->source = NULL;
	}
	s->state = next;
}

int
session_audit(struct session *s, const char *event, void *extra)
{
	json_t *rec = json_object();

	json_object_set_new(rec, "event", json_string(event));
	json_object_set_new(rec, "session", json_string(s->id));
	json_object_set_new(rec, "src", json_string(s->peer_is_ip ? s->peer_ip : "local"));
	if (s->peer_is_ip)
		json_object_set_new(rec, "src_port", json_integer(s->peer_port));
	if (extra != NULL)
		json_object_update(rec, extra);
	json_decref(extra);
	if (auditlog_write(s->site->audit, rec) == 0)
		return 0;
	s->site->gov.c.audit_lost++;
	return -1;
}

/* --- teardown ------------------------------------------------------------ */

static void
session_free(struct session *s)
{
	struct site *site = s->site;

	if (s->source != NULL)
		source_release(site->sources, s->source);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		site->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	site->nsessions--;
	site->nending--;
	stream_free(s->stream);
	mux_free(s->mux);
	drop_transport(s);
	session_drop_input(s);
	caller_free(s->caller);
	free(s->parameters);
	config_unref(s->cfg);
	free(s);
	site->session_gone(site->session_gone_arg);
}

void
session_release(struct session *s)
{
	if (s->closing_handles == 0 && s->state == S_CLOSED)
		session_free(s);
}

void
session_closed_one(struct session *s)
{
	s->closing_handles--;
	session_release(s);
}

void
session_handle_closed(uv_handle_t *h)
{
	session_closed_one(h->data);
}

/* An orderly close, a TCP peer seeing the end of the stream; after session_abort, a reset. */
static void
close_handle(struct session *s, uv_handle_t *h)
{
	uv_os_fd_t fd;

	if (h->type == UV_TCP && uv_fileno(h, &fd) == 0)
		sockets_reset_on_close(fd, s->client_reset);
	s->closing_handles++;
	uv_close(h, session_handle_closed);
}

/* The dialect the session speaks: "none" until its first plaintext byte says; "legacy" for none. */
static const char *
dialect_name(const struct session *s)
{
	if (s->legacy != LEGACY_PROTO_COUNT)
		return "legacy";
	if (s->usp != NULL)
		return "usp";
	return s->dialect_known ? "text" : "none";
}

const char *
session_transport_name(const struct session *s)
{
	if (s->transport != NULL)
		return s->transport->ops->name;
	/*
	 * A detached session is still the session its connection's transport
	 * carried; one another worker passes on, the one its client's has.
	 */
	return (s->state == S_DETACHED || s->from_worker) && s->transport_was != NULL
	               ? s->transport_was
	               : "plain";
}

void
session_close(struct session *s, const char *reason)
{
	uint64_t in, out;
	json_t *extra;

	if (s->state == S_CLOSED)
		return;
	session_set_state(s, S_CLOSED);
	s->close_reason = reason;
	/* The streams' own records come before the session's. */
	if (s->mux != NULL)
		s->closing_handles += mux_close(s->mux);
	session_bytes(s, &in, &out);
	metrics_closed(&s->site->metrics, session_transport_name(s), dialect_name(s), in, out);
	extra = json_pack("{s:s,s:I,s:I,s:I}", "reason", reason, "bytes_in", (json_int_t)in,
	                  "bytes_out", (json_int_t)out, "duration_ms",
	                  (json_int_t)(uv_now(s->site->loop) - s->started_ms));
	session_audit(s, "closed", extra);
	auth_abort(s);
	usp_session_free(s);
	close_handle(s, (uv_handle_t *)&s->timer);
	if (s->client_open)
		close_handle(s, &s->client.handle);
	s->closing_handles += stream_close(s->stream);
}

void
session_abort(struct session *s, const char *reason)
{
	s->client_reset = true;
	stream_reset_backend(s->stream);
	session_close(s, reason);
}

void
session_broken(struct session *s, const char *why)
{
	if (s->state == S_MUX && mux_detachable(s->mux))
		session_detach(s, why);
	else
		session_abort(s, why);
}

/*
 * The transport goes once the client's handle is closed: the connection
 * may break inside one of the transport's own calls, which must not see
 * it freed under it.
 */
static void
on_connection_closed(uv_handle_t *h)
{
	struct session *s = h->data;

	if (s->state == S_DETACHED)
		drop_transport(s);
	session_closed_one(s);
}

void
session_drop_connection(struct session *s)
{
	uv_os_fd_t fd;

	if (!s->client_open)
		return;
	s->client_open = false;
	uv_read_stop(&s->client.stream);
	if (s->client.handle.type == UV_TCP && uv_fileno(&s->client.handle, &fd) == 0)
		sockets_reset_on_close(fd, false);
	s->closing_handles++;
	uv_close(&s->client.handle, on_connection_closed);
}

void
session_retire(struct session *s)
{
	if (s->state == S_CLOSED)
		return;
	session_set_state(s, S_CLOSED);
	s->close_reason = "attached elsewhere";
	auth_abort(s);
	usp_session_free(s);
	close_handle(s, (uv_handle_t *)&s->timer);
	session_drop_connection(s);
	s->closing_handles += stream_close(s->stream);
}

/* --- output ----------------------------------------------------------------- */

int
session_send(struct session *s, const void *data, size_t len)
{
	return stream_client_write_copy(s->stream, data, len);
}

/* Whether the client closes after the last reply or not, the record says why the session ended. */
static void
on_linger_timeout(uv_timer_t *t)
{
	struct session *s = t->data;

	session_close(s, s->close_reason != NULL ? s->close_reason : "closed after reply");
}

static void
on_final_shutdown(uv_shutdown_t *req, int status)
{
	free(req);
}

/*
 * Sends text, then ends the client's stream, keeps reading and discarding
 * until the client closes (or LINGER_MS, LINGER_BYTES_MAX), then closes.
 * Closing with unread input would make the kernel send a reset, which can
 * destroy the reply before the client reads it.
 */
void
session_finish_with(struct session *s, const char *text, size_t len)
{
	uv_shutdown_t *req;

	if (s->state == S_CLOSED || s->state == S_LINGER)
		return;
	session_set_state(s, S_LINGER);
	session_drop_input(s);
	s->closing_handles += stream_close_backend(s->stream);
	if (s->mux != NULL)
		s->closing_handles += mux_close(s->mux);
	if ((len > 0 && session_send(s, text, len) != 0) ||
	    (s->transport != NULL && s->transport->ops->finish(s->transport) != 0) ||
	    (req = malloc(sizeof(*req))) == NULL ||
	    uv_shutdown(req, &s->client.stream, on_final_shutdown) != 0) {
		session_close(s, s->close_reason != NULL ? s->close_reason : "refused");
		return;
	}
	uv_timer_start(&s->timer, on_linger_timeout,
	               s->site->nending > s->cfg->max_connections / 4 ? LINGER_BUSY_MS : LINGER_MS,
	               0);
	if (s->client_eof_early)
		session_close(s, s->close_reason != NULL ? s->close_reason : "closed after reply");
	else
		session_read_client(s);
}

static void
on_dark_deadline(uv_timer_t *t)
{
	struct session *s = t->data;

	session_close(s, s->close_reason != NULL ? s->close_reason : "dark");
}

/*
 * A dark server tells a stranger nothing, not even when it gave up on it:
 * whatever the stranger sent (nothing, garbage, a line, the start of a
 * sealed handshake, a first message that fails its checks), and whether or
 * not it came over a limit, its connection is held, its input read and
 * discarded, until request_timeout after it connected, and then closed
 * without a byte.  Closing at once for garbage but later for silence or for
 * a first byte that could start a sealed handshake would tell a scanner
 * which probe came nearer.  request_timeout is the time a client has to
 * deliver its first message anyway, so an idle connection is closed then,
 * and holding a failed one as long costs no more than an idle one may.
 * At most max_connections are held at once (they no longer count against
 * max_connections); past that, and while stopping, a stranger is closed at
 * once: only a flood sees the difference.  reason is static.
 */
static void
hold_silently(struct session *s, const char *reason)
{
	struct site *site = s->site;
	uint64_t now = uv_now(site->loop), deadline = s->started_ms + s->cfg->request_timeout_ms;

	if (ending(s->state))
		return;
	s->close_reason = reason;
	if (site->nheld >= s->cfg->max_connections || site->draining || now >= deadline) {
		session_close(s, reason);
		return;
	}
	session_set_state(s, S_DARK);
	drop_transport(s);
	session_drop_input(s);
	uv_timer_start(&s->timer, on_dark_deadline, deadline - now, 0);
	if (s->client_eof_early)
		uv_read_stop(&s->client.stream);
	else
		session_read_client(s);
}

void
session_finish(struct session *s, const char *reason)
{
	s->close_reason = reason;
	session_finish_with(s, NULL, 0);
}

const char *
session_refusal_now(const struct session *s, const char *service, const struct caller *caller,
                    const char *hidden)
{
	const struct config *now = s->site->cfg;
	const struct vhost *vh = NULL;
	const struct service *svc;

	if (now == s->cfg)
		return NULL;
	if (s->vhost != NULL && (vh = config_vhost(now, s->vhost->name)) == NULL)
		return hidden;
	svc = config_lookup(now, vh, service);
	switch (svc != NULL ? policy_check(svc, caller) : POLICY_HIDDEN) {
	case POLICY_GRANT:
		return NULL;
	case POLICY_DENIED:
		return "not permitted";
	default:
		return hidden;
	}
}

bool
session_only_attaches(struct session *s)
{
	if (s->attach_only == NULL)
		return false;
	session_refuse(s, s->attach_only);
	return true;
}

void
session_refuse(struct session *s, const char *reason)
{
	char line[LINE_MAX_BYTES];
	int n;

	if (s->usp != NULL) {
		usp_refuse(s, reason, reason);
		return;
	}
	/* A legacy client would take fived's words for its server's: it is told nothing. */
	if (s->legacy != LEGACY_PROTO_COUNT) {
		session_refuse_with(s, reason, "", 0);
		return;
	}
	n = snprintf(line, sizeof(line), "- %s\r\n", reason);
	session_refuse_with(s, reason, line, (size_t)n);
}

void
session_record_refusal(struct session *s, const char *reason)
{
	if (log_ratelimit_allow(&s->site->refusals, uv_now(s->site->loop)))
		log_info("session %s from %s: refused: %s", s->id,
		         s->peer_is_ip ? s->peer_ip : "local", reason);
	metrics_refused(&s->site->metrics, reason);
	session_audit(s, "refused",
	              json_pack("{s:s,s:s}", "reason", reason, "service", s->requested));
}

void
session_refuse_with(struct session *s, const char *reason, const char *text, size_t len)
{
	if (s->state == S_CLOSED || s->state == S_LINGER)
		return;
	session_record_refusal(s, reason);
	if (stranger(s)) {
		hold_silently(s, reason);
		return;
	}
	s->close_reason = reason;
	session_finish_with(s, text, len);
}

/* Reaching the backend is part of the request phase: it ends at whichever deadline comes first. */
static void
on_connect_timeout(uv_timer_t *t)
{
	struct session *s = t->data;

	if (uv_now(s->site->loop) >= s->request_deadline_ms)
		session_refuse(s, "request timeout");
	else
		backend_ready_for(s, UV_ETIMEDOUT);
}

static uint64_t
connect_wait_ms(const struct session *s, const struct service *svc)
{
	uint64_t now = uv_now(s->site->loop);
	uint64_t left = s->request_deadline_ms > now ? s->request_deadline_ms - now : 0;

	return svc->connect_timeout_ms < left ? svc->connect_timeout_ms : left;
}

void
session_who(const struct session *s, const struct service *svc, const struct caller *caller,
            const struct vhost *vhost, uint32_t stream, struct backend_who *who)
{
	bool withheld = caller != NULL && svc->withhold_identity;

	*who = (struct backend_who){
	        .session_id = s->id,
	        .stream = stream,
	        .vhost = vhost != NULL ? vhost->name : "",
	        .method = auth_method_name(caller != NULL ? caller->method : AUTH_NONE),
	        .transport = session_transport_name(s),
	        .identity = caller != NULL && !withheld ? caller->identity : NULL,
	        .withheld = withheld,
	        .peer_shown = s->peer_is_ip && !withheld,
	        .peer_ip = s->peer_ip,
	        .peer_port = s->peer_port,
	        .local = (const struct sockaddr *)&s->local,
	};
}

/* What the service's backend may learn of the caller: after s->svc is set, which may withhold it.
 */
static void
who_of(const struct session *s, struct backend_who *who)
{
	session_who(s, s->svc, s->caller, s->vhost, 0, who);
	who->parameters = s->parameters;
}

/*
 * A service that lives elsewhere: the client is told where, as a refusal
 * (nothing reaches any backend, held bytes are dropped), at the point a
 * grant would be, so only a caller the service would admit learns of it.
 */
static void
redirect_client(struct session *s, const struct service *svc)
{
	char where[REDIRECT_TEXT_SIZE], line[LINE_MAX_BYTES];
	int n;

	redirect_format(&svc->redirect, where);
	session_audit(s, "redirected", json_pack("{s:s,s:s}", "service", svc->name, "to", where));
	if (s->usp != NULL) {
		usp_send_redirect(s, &svc->redirect);
		return;
	}
	n = snprintf(line, sizeof(line), "- redirect %s\r\n", where);
	session_refuse_with(s, "redirect", line, (size_t)n);
}

void
session_start_service(struct session *s, const struct service *svc)
{
	struct backend_who who;

	/* An ATTACH passed on to another worker is no service asked for. */
	if (svc->backend != BACKEND_WORKER && session_only_attaches(s))
		return;
	if (svc->backend == BACKEND_REDIRECT) {
		redirect_client(s, svc);
		return;
	}
	s->svc = svc;
	who_of(s, &who);
	session_set_state(s, S_CONNECTING);
	s->connect_started_ns = uv_hrtime();
	uv_timer_start(&s->timer, on_connect_timeout, connect_wait_ms(s, svc), 0);
	stream_grant(s->stream, svc, &who);
}

/* Requests in the client's held input, to the dialect its first byte chose: '{' is USP's. */
static void
take_input(struct session *s)
{
	/* Held for a legacy backend: no dialect reads them. */
	if (s->legacy != LEGACY_PROTO_COUNT)
		return;
	if (!s->dialect_known && s->in.len > 0) {
		s->dialect_known = true;
		if (s->in.data[0] == '{' && session_only_attaches(s))
			return;
		if (s->in.data[0] == '{' && usp_session_start(s) != 0) {
			session_close(s, "out of memory");
			return;
		}
	}
	if (s->usp != NULL)
		usp_session_take(s);
	else
		text_take(s);
}

void
session_process_input(struct session *s)
{
	take_input(s);
	pace_input(s);
}

void
session_ended_before_request(struct session *s)
{
	if (stranger(s))
		hold_silently(s, "client closed before a request");
	/* A transport's client ended properly: end ours the same way. */
	else if (s->transport != NULL)
		session_finish(s, "client closed before a request");
	else
		session_close(s, "client closed before a request");
}

/* What was held is the transport's: it goes through it into a fresh s->in.  0, or -1. */
static int
feed_held(struct session *s)
{
	struct buf held = s->in;
	size_t charged = s->in_charged;
	int r;

	buf_init(&s->in, SESSION_IN_MAX);
	s->in_charged = 0;
	r = held.len > 0 ? s->transport->ops->input(s->transport, held.data, held.len) : 0;
	buf_free(&held);
	budget_release(&s->site->budget, charged);
	return r;
}

void
session_start_tls(struct session *s)
{
	if (start_transport(s, tls_new) != 0) {
		session_close(s, "out of memory");
		return;
	}
	session_set_state(s, S_HANDSHAKE);
	if (feed_held(s) != 0)
		session_close(s, "transport failed");
}

/* --- input -------------------------------------------------------------- */

/* Reading the client: a chunk charged to the relay budget, as large as it allows. */
static void
client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct session *s = h->data;
	struct budget *b = &s->site->budget;

	chunk_alloc_charged(b, budget_read_size(b, CHUNK_READ_SIZE), buf);
}

void
session_read_client(struct session *s)
{
	uv_read_start(&s->client.stream, client_alloc, on_client_read);
}

void
session_note_input(struct session *s)
{
	struct budget *b = &s->site->budget;

	if (s->in.cap > s->in_charged)
		budget_charge(b, s->in.cap - s->in_charged);
	else
		budget_release(b, s->in_charged - s->in.cap);
	s->in_charged = s->in.cap;
}

void
session_drop_input(struct session *s)
{
	buf_free(&s->in);
	session_note_input(s);
}

/*
 * Client bytes before the relay starts: held in s->in, never forwarded from
 * here.  Reading pauses while s->in could not take a whole read, so the
 * held bytes stay within SESSION_IN_MAX however fast the client sends.
 */
int
session_hold_read(struct session *s, ssize_t nread, const uv_buf_t *buf, const char *over)
{
	int full = nread > 0 && buf_append(&s->in, buf->base, (size_t)nread) != 0;

	chunk_release(buf);
	session_note_input(s);
	if (full) {
		session_close(s, over);
		return -1;
	}
	return 0;
}

static void
early_input(struct session *s, ssize_t nread, const uv_buf_t *buf)
{
	if (session_hold_read(s, nread, buf, "early data over its bound") != 0)
		return;
	if (nread < 0) {
		s->client_eof_early = true;
		uv_read_stop(&s->client.stream);
		if (nread != UV_EOF) {
			session_abort(s, "client read failed");
			return;
		}
	}
	session_process_input(s);
}

/* Whether the session holds client input before a relay, in s->in. */
static bool
holding_input(const struct session *s)
{
	return s->state == S_COMMAND || s->state == S_AUTH || s->state == S_AUTH_WAIT ||
	       s->state == S_CONNECTING;
}

/*
 * Reads the client while s->in has room for a whole read, and not
 * otherwise.  While the relay budget is reached, a session that has made
 * its request and waits (for its backend, for an authentication step)
 * reads no further: what its client sends meanwhile waits in the kernel
 * until the relay starts.  Request lines are always read.
 */
static void
pace_input(struct session *s)
{
	if (!holding_input(s) || s->client_eof_early)
		return;
	if (buf_room(&s->in) < CHUNK_READ_SIZE + TRANSPORT_SLACK ||
	    ((s->state == S_CONNECTING || s->state == S_AUTH_WAIT) &&
	     budget_over(&s->site->budget)))
		uv_read_stop(&s->client.stream);
	else
		session_read_client(s);
}

/* After a final reply: discard everything, up to a bound. */
static void
linger_input(struct session *s, ssize_t nread, const uv_buf_t *buf)
{
	chunk_release(buf);
	if (nread > 0)
		s->linger_bytes += (uint64_t)nread;
	if (nread < 0 || s->linger_bytes > LINGER_BYTES_MAX)
		session_close(s, s->close_reason != NULL ? s->close_reason : "closed after reply");
}

/* A held stranger's bytes: discarded, up to a bound; past it, or at its end, reading stops. */
static void
dark_input(struct session *s, ssize_t nread, const uv_buf_t *buf)
{
	chunk_release(buf);
	if (nread > 0)
		s->linger_bytes += (uint64_t)nread;
	if (nread < 0 && nread != UV_EOF) {
		session_close(s, s->close_reason != NULL ? s->close_reason : "client read failed");
		return;
	}
	/* Unread bytes at the close make it a reset, as from any server that stops reading. */
	if (nread < 0 || s->linger_bytes > LINGER_BYTES_MAX)
		uv_read_stop(&s->client.stream);
}

/* Client bytes, plaintext, to whatever the session's state does with them. */
static void
dispatch_client(struct session *s, ssize_t nread, const uv_buf_t *buf)
{
	switch (s->state) {
	case S_DETECT:
	case S_HANDSHAKE:
	case S_COMMAND:
	case S_AUTH:
	case S_AUTH_WAIT:
	case S_CONNECTING:
		early_input(s, nread, buf);
		break;
	case S_RELAY:
		stream_client_data(s->stream, nread, buf);
		break;
	case S_MUX:
		session_mux_input(s, nread, buf);
		break;
	case S_LINGER:
		linger_input(s, nread, buf);
		break;
	case S_DARK:
		dark_input(s, nread, buf);
		break;
	case S_DETACHED: /* no connection: a read the close cancels */
	case S_CLOSED:
	case S_COUNT:
		chunk_release(buf);
		break;
	}
}

/* --- the transport's events ----------------------------------------------- */

/* Decrypted client bytes, as if they had come from a plain socket. */
static int
client_plaintext(void *owner, const uint8_t *pt, size_t len)
{
	struct session *s = owner;
	struct chunk *c;
	uv_buf_t buf;

	if (s->state == S_CLOSED)
		return -1;
	if (len == 0)
		return 0;
	if ((c = chunk_copy(&s->site->budget, pt, len)) == NULL) {
		session_close(s, "out of memory");
		return -1;
	}
	buf = uv_buf_init(c->data, (unsigned)len);
	dispatch_client(s, (ssize_t)len, &buf);
	return s->state == S_CLOSED ? -1 : 0;
}

static void
client_end(struct session *s)
{
	uv_buf_t none = uv_buf_init(NULL, 0);

	if (s->state != S_CLOSED)
		dispatch_client(s, UV_EOF, &none);
}

static void
on_transport_end(void *owner)
{
	client_end(owner);
}

/* The handshake is done: what it established becomes the session's. */
static int
on_transport_opened(void *owner, const uint8_t *binding, size_t binding_len, struct caller *caller,
                    void *extra)
{
	struct session *s = owner;

	/* A session that is ending (a timeout during the handshake, say) takes nothing more. */
	if (s->state != S_HANDSHAKE) {
		caller_free(caller);
		json_decref(extra);
		return -1;
	}
	memcpy(s->binding, binding, binding_len);
	s->binding_len = binding_len;
	s->encrypted = true;
	session_set_state(s, S_COMMAND);
	if (caller != NULL)
		session_set_caller(s, caller, extra);
	else
		json_decref(extra);
	return 0;
}

static int
on_transport_write(void *owner, struct chunk *c, size_t len)
{
	struct session *s = owner;

	return stream_client_write(s->stream, c, len);
}

static size_t
on_transport_queued(void *owner)
{
	struct session *s = owner;

	return uv_stream_get_write_queue_size(&s->client.stream);
}

static void
on_transport_finish(void *owner, const char *reason)
{
	session_finish(owner, reason);
}

static void
on_transport_abort(void *owner, const char *reason)
{
	session_broken(owner, reason);
}

static const struct transport_events transport_events = {
        .opened = on_transport_opened,
        .plaintext = client_plaintext,
        .end = on_transport_end,
        .write = on_transport_write,
        .queued = on_transport_queued,
        .finish = on_transport_finish,
        .abort = on_transport_abort,
};

/* Makes the transport new() returns the session's: everything the client sends goes through it. */
static int
start_transport(struct session *s, struct transport *(*new)(const struct transport_link *))
{
	struct transport_link link = {
	        .site = s->site,
	        .cfg = s->cfg,
	        .id = s->id,
	        .source_key = s->source_key,
	        .peer = (const struct sockaddr *)&s->peer,
	        .ev = &transport_events,
	        .owner = s,
	};

	drop_transport(s);
	return (s->transport = new (&link)) != NULL ? 0 : -1;
}

/*
 * The client's first byte says what follows: the sealed handshake, TLS, or
 * a plain dialect.  A dark server answers only the sealed handshake and
 * says nothing to anything else.  Returns 0, or -1 when the session is ended.
 */
static int
detect(struct session *s, uint8_t first)
{
	if (first == SEALED_INITIATION) {
		if (start_transport(s, seal_new) == 0) {
			session_set_state(s, S_HANDSHAKE);
			return 0;
		}
		session_close(s, "out of memory");
		return -1;
	}
	if (s->cfg->dark) {
		hold_silently(s, "dark: not a sealed handshake");
		return -1;
	}
	if (first != TLS_RECORD_HANDSHAKE) {
		session_set_state(s, S_COMMAND);
		return 0;
	}
	if (!tls_admit(s->site, s->cfg, s->source_key)) {
		session_close(s, "tls: over the handshake budget");
		return -1;
	}
	if (start_transport(s, tls_new) == 0) {
		session_set_state(s, S_HANDSHAKE);
		return 0;
	}
	session_close(s, "out of memory");
	return -1;
}

/* What the transport made of the client's bytes or its end (nread, as libuv's): r, 0 or -1. */
static void
transport_took(struct session *s, ssize_t nread, int r)
{
	const char *why;

	if (r == 0) {
		if (nread == UV_EOF)
			client_end(s);
		return;
	}
	/* A client that died with bytes unread resets rather than ends: cut short all the same. */
	why = nread == UV_EOF || nread == UV_ECONNRESET ? "client stream truncated"
	                                                : "transport failed";
	if (stranger(s)) {
		s->client_eof_early = s->client_eof_early || nread == UV_EOF;
		hold_silently(s, why);
	} else {
		session_broken(s, why);
	}
}

void
session_detected(struct session *s, bool eof)
{
	s->legacy_watch = false;
	session_resume_request_timer(s);
	if (s->in.len > 0 && detect(s, s->in.data[0]) != 0)
		return;
	/* A client that ends before its first byte had a plain session, with nothing in it. */
	if (s->state == S_DETECT && eof)
		session_set_state(s, S_COMMAND);
	if (s->transport == NULL) {
		s->client_eof_early = eof;
		if (s->state != S_DETECT)
			session_process_input(s);
		return;
	}
	/* Bytes, not an end: a failure there is the transport's, not a truncation. */
	transport_took(s, 1, feed_held(s));
	if (eof && s->state != S_CLOSED && s->transport != NULL)
		transport_took(s, UV_EOF, s->transport->ops->eof(s->transport));
}

static void
on_client_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct session *s = st->data;
	int r;

	if (s->proxy_pending) {
		proxy_header_input(s, nread, buf);
		return;
	}
	if (s->state == S_DETECT && s->legacy_watch) {
		transition_input(s, nread, buf);
		return;
	}
	if (s->state == S_DETECT && nread > 0 && detect(s, (uint8_t)buf->base[0]) != 0) {
		chunk_release(buf);
		return;
	}
	/* A client that ends before its first byte had a plain session, with nothing in it. */
	if (s->state == S_DETECT && nread < 0)
		session_set_state(s, S_COMMAND);
	if (s->transport == NULL || s->state == S_CLOSED) {
		dispatch_client(s, nread, buf);
		return;
	}
	if (nread > 0)
		r = s->transport->ops->input(s->transport, (const uint8_t *)buf->base,
		                             (size_t)nread);
	else if (nread == UV_EOF)
		r = s->transport->ops->eof(s->transport);
	else
		r = nread == 0 ? 0 : -1;
	chunk_release(buf);
	transport_took(s, nread, r);
}

/* --- audit_required ------------------------------------------------------ */

/*
 * The audit log could not take a session's record, and audit_required:
 * the session is refused.  The first refusal is said at once.
 */
static void
audit_refuse(struct session *s)
{
	struct site *site = s->site;

	if (!site->audit_refusing)
		log_error(
		        "the audit log cannot be written: refusing new sessions (audit_required)");
	site->audit_refusing = true;
	site->audit_refused++;
}

/* A session's record was written: sessions are no longer refused for the audit log. */
static void
audit_resume(struct site *site)
{
	if (!site->audit_refusing)
		return;
	log_info("the audit log is written again: accepting new sessions again (%llu %s refused)",
	         (unsigned long long)site->audit_refused,
	         plural(site->audit_refused, "session was", "sessions were"));
	site->audit_refusing = false;
	site->audit_refused = 0;
}

/* --- the backend is reached -------------------------------------------- */

int
session_proxy_header(const struct session *s, const struct service *svc,
                     const struct backend_who *who, uint8_t *out, size_t size)
{
	const struct sockaddr *src = who->peer_shown ? (const struct sockaddr *)&s->peer : NULL;
	const struct sockaddr *dst = who->peer_shown ? (const struct sockaddr *)&s->local : NULL;
	struct proxy_tlv tlvs[7];
	char stream[12];
	size_t n = 0;

	if (svc->proxy == PROXY_NONE)
		return 0;
	if (svc->proxy == PROXY_V1)
		return proxy_v1_encode(src, dst, (char *)out, size);
	if (who->vhost[0] != '\0')
		tlvs[n++] = (struct proxy_tlv){PP2_TYPE_AUTHORITY, who->vhost, strlen(who->vhost)};
	tlvs[n++] = (struct proxy_tlv){PP2_TYPE_UNIQUE_ID, who->session_id, SESSION_ID_LEN};
	tlvs[n++] = (struct proxy_tlv){PP2_TYPE_FIVE_SERVICE, svc->name, strlen(svc->name)};
	if (who->stream != 0) {
		snprintf(stream, sizeof(stream), "%u", (unsigned)who->stream);
		tlvs[n++] = (struct proxy_tlv){PP2_TYPE_FIVE_STREAM, stream, strlen(stream)};
	}
	if (who->identity != NULL)
		tlvs[n++] = (struct proxy_tlv){PP2_TYPE_FIVE_IDENTITY, who->identity,
		                               strlen(who->identity)};
	if (who->identity != NULL || who->withheld)
		tlvs[n++] = (struct proxy_tlv){PP2_TYPE_FIVE_AUTH_METHOD, who->method,
		                               strlen(who->method)};
	/* Another worker passed an ATTACH judges it by what carries the client. */
	if (svc->backend == BACKEND_WORKER)
		tlvs[n++] = (struct proxy_tlv){PP2_TYPE_FIVE_TRANSPORT, who->transport,
		                               strlen(who->transport)};
	return proxy_v2_encode(src, dst, tlvs, n, out, size);
}

static void
on_idle_check(uv_timer_t *t)
{
	struct session *s = t->data;
	uint64_t idle = s->svc->idle_timeout_ms;
	uint64_t quiet = uv_now(s->site->loop) - stream_last_activity(s->stream);

	/* Cut short by fived, not ended by either side: reset, as MULTIPLEX resets it (11.5). */
	if (quiet >= idle) {
		session_abort(s, "idle timeout");
		return;
	}
	uv_timer_start(&s->timer, on_idle_check, idle - quiet, 0);
}

/*
 * Answers "+" (or USP's connect; nothing to a legacy client), then the stream writes header (a
 * PROXY header, may be empty) and the held early bytes to the backend and starts moving bytes both
 * ways.
 */
void
session_start_relay(struct session *s, const void *header, size_t header_len, bool answer)
{
	if (answer && s->legacy == LEGACY_PROTO_COUNT &&
	    (s->usp != NULL ? usp_send_connect(s) : session_send(s, "+\r\n", 3)) != 0) {
		session_close(s, "out of memory");
		return;
	}
	session_set_state(s, S_RELAY);
	if (stream_relay(s->stream, header, header_len, s->in.data, s->in.len,
	                 s->client_eof_early) != 0) {
		session_close(s, "out of memory");
		return;
	}
	if (s->state == S_CLOSED)
		return;
	session_drop_input(s);
	uv_timer_stop(&s->timer);
	if (s->svc->idle_timeout_ms > 0)
		uv_timer_start(&s->timer, on_idle_check, s->svc->idle_timeout_ms, 0);
}

/*
 * The grant's record: a service's, or the hand-over of a legacy client
 * that fived did not authenticate.  0, or -1 when it was lost.
 */
static int
audit_grant(struct session *s)
{
	char backend[ADDR_TEXT_MAX];

	if (s->legacy != LEGACY_PROTO_COUNT) {
		addr_format(&s->svc->addr, backend, sizeof(backend));
		return session_audit(s, "legacy",
		                     json_pack("{s:s,s:s,s:s}", "protocol",
		                               legacy_proto_name(s->legacy), "service",
		                               s->svc->name, "backend", backend));
	}
	return session_audit(s, "granted",
	                     json_pack("{s:s,s:s,s:s,s:s,s:s}", "service", s->svc->name,
	                               "requested", s->requested, "vhost",
	                               s->vhost != NULL ? s->vhost->name : "", "identity",
	                               s->caller != NULL ? s->caller->identity : "", "transport",
	                               session_transport_name(s)));
}

/* The service's backend is reached (err 0) or not. */
static void
backend_ready_for(struct session *s, int err)
{
	uint8_t header[PROXY_V2_MAX];
	struct backend_who who;
	int header_len;

	if (s->state != S_CONNECTING)
		return;
	if (s->svc->backend == BACKEND_WORKER) {
		attach_passed_on(s, err);
		return;
	}
	metrics_connect(&s->site->metrics, err == 0,
	                (uv_hrtime() - s->connect_started_ns) / NS_PER_US);
	if (err != 0) {
		/* A backend that is down fails every session that asks for it: a flood. */
		if (log_ratelimit_allow(&s->site->backend_failures, uv_now(s->site->loop)))
			log_warn("session %s: service %s: backend: %s", s->id, s->svc->name,
			         uv_strerror(err));
		session_refuse(s, "service unavailable");
		return;
	}
	who_of(s, &who);
	if ((header_len = session_proxy_header(s, s->svc, &who, header, sizeof(header))) < 0) {
		session_refuse(s, "service unavailable");
		return;
	}
	/* With audit_required, no grant goes unrecorded. */
	if (audit_grant(s) != 0 && s->cfg->audit_required) {
		audit_refuse(s);
		session_refuse(s, "server busy");
		return;
	}
	session_start_relay(s, header, (size_t)header_len, true);
}

static void
on_backend_ready(void *owner, int err)
{
	backend_ready_for(owner, err);
}

static void
on_backend_closed(void *owner)
{
	session_closed_one(owner);
}

static void
on_read_client(void *owner)
{
	session_read_client(owner);
}

/*
 * The backend reset the stream: the client's reset waits until what came
 * before it was written and acknowledged (a reset drops what the kernel
 * still holds), or CUT_DELIVERY_MS.
 */
static void
on_cut_timer(uv_timer_t *t)
{
	struct session *s = t->data;
	uint64_t now = uv_now(s->site->loop);

	if (now >= s->cut_deadline_ms || (s->cut_written && sockets_all_acked(&s->client.handle))) {
		session_abort(s, s->close_reason);
		return;
	}
	uv_timer_start(&s->timer, on_cut_timer,
	               s->cut_written ? CUT_POLL_MS : s->cut_deadline_ms - now, 0);
}

static void
on_stream_cut(void *owner, const char *reason)
{
	struct session *s = owner;

	s->close_reason = reason;
	s->cut_deadline_ms = uv_now(s->site->loop) + CUT_DELIVERY_MS;
	uv_read_stop(&s->client.stream);
	uv_timer_start(&s->timer, on_cut_timer, CUT_DELIVERY_MS, 0);
}

/* In framed mode the session's stream has no backend: its end is the client's connection's. */
static void
on_stream_ended(void *owner, const char *reason, bool failed)
{
	struct session *s = owner;

	if (s->state == S_DETACHED)
		return;
	if (failed && s->cut_deadline_ms != 0 && s->state != S_CLOSED) {
		s->cut_written = true;
		on_cut_timer(&s->timer);
		return;
	}
	if (s->state == S_MUX)
		session_broken(s, reason);
	else if (failed)
		session_abort(s, reason);
	else
		session_close(s, reason);
}

static void
on_client_written(void *owner)
{
	struct session *s = owner;

	if (s->mux != NULL && s->state == S_MUX)
		mux_client_drained(s->mux);
}

static const struct stream_events stream_events = {
        .backend_ready = on_backend_ready,
        .backend_closed = on_backend_closed,
        .read_client = on_read_client,
        .ended = on_stream_ended,
        .cut = on_stream_cut,
        .client_written = on_client_written,
};

void
session_bytes(const struct session *s, uint64_t *in, uint64_t *out)
{
	if (s->mux != NULL)
		mux_bytes(s->mux, in, out);
	else
		stream_bytes(s->stream, in, out);
}

/* --- accept ----------------------------------------------------------------- */

static void
on_request_timeout(uv_timer_t *t)
{
	session_refuse(t->data, "request timeout");
}

static void
on_auth_timeout(uv_timer_t *t)
{
	session_refuse(t->data, "authentication timeout");
}

void
session_restart_request_timer(struct session *s)
{
	s->request_deadline_ms = uv_now(s->site->loop) + s->cfg->request_timeout_ms;
	uv_timer_start(&s->timer, on_request_timeout, s->cfg->request_timeout_ms, 0);
}

void
session_resume_request_timer(struct session *s)
{
	uint64_t now = uv_now(s->site->loop);

	uv_timer_start(&s->timer, on_request_timeout,
	               s->request_deadline_ms > now ? s->request_deadline_ms - now : 0, 0);
}

void
session_start_auth_timer(struct session *s)
{
	uv_timer_start(&s->timer, on_auth_timeout, s->cfg->auth_timeout_ms, 0);
}

/* What everything that judges a client by its address reads, from s->peer. */
static void
note_source(struct session *s)
{
	s->peer_is_ip = sockaddr_ip((struct sockaddr *)&s->peer, s->peer_ip, &s->peer_port) == 0;
	sockaddr_source_key((struct sockaddr *)&s->peer, s->source_key);
}

static void
note_peer(struct session *s, const struct accepted_conn *c)
{
	int len = sizeof(s->peer);

	memset(&s->peer, 0, sizeof(s->peer));
	memset(&s->local, 0, sizeof(s->local));
	if (c->kind == ACCEPTED_TCP || c->kind == ACCEPTED_TCP_TUNED) {
		if (c->peer != NULL)
			memcpy(&s->peer, c->peer, sizeof(s->peer));
		else
			uv_tcp_getpeername(&s->client.tcp, (struct sockaddr *)&s->peer, &len);
		len = sizeof(s->local);
		if (c->local != NULL)
			memcpy(&s->local, c->local, sizeof(s->local));
		else
			uv_tcp_getsockname(&s->client.tcp, (struct sockaddr *)&s->local, &len);
	}
	note_source(s);
}

/*
 * Refuses a connection over a limit at once: no session state, no linger.
 * A dark server says nothing, and holds it as it does every stranger.
 * Otherwise what the client already sent is read and dropped first:
 * closing with unread input would reset the connection and could destroy
 * the reply.
 */
static void
reject_now(struct session *s, const char *reason)
{
	char line[64], drop[4096];
	int n = snprintf(line, sizeof(line), "- %s\r\n", reason);
	uv_buf_t b = uv_buf_init(line, (unsigned)n);
	uv_os_fd_t fd;

	if (!stranger(s)) {
		uv_try_write(&s->client.stream, &b, 1);
		if (uv_fileno(&s->client.handle, &fd) == 0)
			for (n = 0; n < REJECT_DRAIN_READS; n++)
				if (recv(fd, drop, sizeof(drop), MSG_DONTWAIT) <= 0)
					break;
	}
	metrics_refused(&s->site->metrics, reason);
	session_audit(s, "refused", json_pack("{s:s}", "reason", reason));
	if (log_ratelimit_allow(&s->site->refusals, uv_now(s->site->loop)))
		log_info("session %s from %s: rejected: %s", s->id,
		         s->peer_is_ip ? s->peer_ip : "local", reason);
	if (stranger(s))
		hold_silently(s, reason);
	else
		session_close(s, reason);
}

/*
 * At the limit, s (counted in its source, not yet waiting) may take the
 * place of a connection that has not made its request yet: the oldest one
 * of the source holding the most such connections, if that source holds
 * more of them than s's own.  Age alone is not enough: a flood that
 * reopens every connection it loses keeps all of its own young, and the
 * legitimate client that just connected would be the one to go.  By
 * source, a client that sends its request at once is not touched while
 * another source waits with more connections than its own; and a source
 * cannot push out the connections of one that holds as many as it does,
 * so a flood's new connections are refused at once rather than each
 * pushing out another of the flood's, which would reopen it at once.
 */
static int
make_room(struct session *s)
{
	struct session *victim = source_busiest_oldest(s->site->sources);

	if (victim == NULL || source_waiting(victim->source) <= source_waiting(s->source))
		return -1;
	session_refuse(victim, "server busy");
	return 0;
}

static struct session *
session_new(struct site *site)
{
	struct session *s = calloc(1, sizeof(*s));
	uint8_t raw[SESSION_ID_BYTES];

	if (s == NULL)
		return NULL;
	s->stream = stream_new(site, s->id, &s->client.stream, &s->transport, &stream_events, s);
	if (s->stream == NULL) {
		free(s);
		return NULL;
	}
	s->site = site;
	s->cfg = config_ref(site->cfg);
	s->state = S_DETECT;
	s->legacy = LEGACY_PROTO_COUNT;
	randpool_take(&site->ids, raw, sizeof(raw));
	hex_encode(raw, sizeof(raw), s->id);
	buf_init(&s->in, SESSION_IN_MAX);
	s->started_ms = uv_now(site->loop);
	s->next = site->sessions;
	if (s->next != NULL)
		s->next->prev = s;
	site->sessions = s;
	site->nsessions++;
	uv_timer_init(site->loop, &s->timer);
	s->timer.data = s;
	return s;
}

void
session_drain_all(struct site *site)
{
	struct session *s, *next;

	for (s = site->sessions; s != NULL; s = next) {
		next = s->next;
		/* Not granted yet, authenticating or not: none may start a stream now. */
		if (before_request(s->state) || s->state == S_AUTH || s->state == S_AUTH_WAIT ||
		    s->state == S_CONNECTING)
			session_refuse(s, "server shutting down");
		else if (s->state == S_DARK)
			session_close(s, "server shutting down");
		else if (s->state == S_DETACHED)
			session_end_detached(s, "server shutting down");
		else if (s->state == S_MUX)
			mux_drain(s->mux);
	}
}

/*
 * Whether the client's connection was reset (or failed): polled, it says
 * so at once.  A hang-up alone is not one: once the client's end and
 * fived's have both gone, the connection hangs up with the client's last
 * bytes still unread, an upload that ended in order.
 */
static bool
client_reset(const struct session *s)
{
	struct pollfd p = {.events = POLLIN};
	uv_os_fd_t fd;

	if (uv_fileno(&s->client.handle, &fd) != 0)
		return false;
	p.fd = fd;
	return poll(&p, 1, 0) == 1 && (p.revents & POLLERR) != 0;
}

void
session_reap_reset_clients(struct site *site)
{
	struct session *s, *next;

	for (s = site->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->state == S_RELAY && stream_client_stalled(s->stream) && client_reset(s))
			session_abort(s, "client stream truncated");
	}
}

void
session_close_all(struct site *site, const char *reason)
{
	struct session *s, *next;

	/* A stream cut short is reset (session_abort), never ended as if complete. */
	for (s = site->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->state == S_RELAY)
			session_abort(s, reason);
		else
			session_close(s, reason);
	}
}

static void
describe(const struct session *s, struct session_info *info)
{
	memset(info, 0, sizeof(*info));
	str_copy(info->id, s->id, sizeof(info->id));
	info->state = session_state_name(s->state);
	if (s->caller != NULL)
		str_copy(info->identity, s->caller->identity, sizeof(info->identity));
	info->method = s->caller != NULL ? auth_method_name(s->caller->method) : "none";
	str_copy(info->src, s->peer_is_ip ? s->peer_ip : "local", sizeof(info->src));
	info->src_port = s->peer_is_ip ? s->peer_port : 0;
	if (s->vhost != NULL)
		str_copy(info->vhost, s->vhost->name, sizeof(info->vhost));
	str_copy(info->service,
	         s->svc != NULL   ? s->svc->name
	         : s->mux != NULL ? "MULTIPLEX"
	                          : s->requested,
	         sizeof(info->service));
	info->transport = session_transport_name(s);
	info->dialect = dialect_name(s);
	session_bytes(s, &info->bytes_in, &info->bytes_out);
	info->age_ms = uv_now(s->site->loop) - s->started_ms;
	info->streams = s->mux != NULL ? mux_open_streams(s->mux) : s->state == S_RELAY;
	info->mux = s->mux;
}

void
session_each(struct site *site, bool (*each)(const struct session_info *info, void *arg), void *arg)
{
	struct session_info info;
	struct session *s;

	for (s = site->sessions; s != NULL; s = s->next) {
		if (s->state == S_CLOSED)
			continue;
		describe(s, &info);
		if (!each(&info, arg))
			return;
	}
}

int
session_kill(struct site *site, const char *id, const char *reason)
{
	struct session *s;

	for (s = site->sessions; s != NULL; s = s->next) {
		if (s->state != S_CLOSED && strcmp(s->id, id) == 0) {
			session_close(s, reason);
			return 0;
		}
	}
	return -1;
}

/* --- a balancer's PROXY header (docs/CLUSTER.md) ------------------------ */

/*
 * Connections that count against max_connections (streams too); without
 * the places detached sessions keep for their return when but_detached.
 */
static size_t
connections_held(const struct site *site, bool but_detached)
{
	return site_connections(site) - (but_detached ? site->ndetached : 0);
}

static void admit(struct session *s, const char *busy);

/*
 * A balancer's connection that ends, or is refused, before its header
 * named a client: recorded as accepted from the balancer's address, so
 * that every closed connection was counted and recorded as accepted, and
 * no longer read as a header, so that what ends it is its refusal.
 */
static void
proxy_header_failed(struct session *s)
{
	s->proxy_pending = false;
	uv_timer_stop(&s->timer);
	s->site->metrics.accepted++;
	session_audit(s, "accepted", NULL);
}

static void
on_proxy_timeout(uv_timer_t *t)
{
	proxy_header_failed(t->data);
	session_refuse(t->data, "no PROXY header in time");
}

/*
 * A connection from a balancer named in proxy_from: nothing counts it
 * against a source, and nothing of it is read as a request, until its
 * PROXY header has said whose connection it is.
 */
static void
await_proxy_header(struct session *s)
{
	s->proxy_pending = true;
	uv_timer_start(&s->timer, on_proxy_timeout, s->cfg->proxy_timeout_ms, 0);
	session_read_client(s);
}

/*
 * Bytes of a balancer's connection before its header is whole: kept in
 * s->in (PROXY_IN_MAX at most, proxy_in_parse sees to it).  Once the
 * header is read, the client's address is the session's, and what came
 * after the header is read as the client's first bytes.
 */
static void
proxy_header_input(struct session *s, ssize_t nread, const uv_buf_t *buf)
{
	struct proxy_in h;
	struct chunk *rest = NULL;
	const char *why;
	size_t left;
	uv_buf_t b;

	if (session_hold_read(s, nread, buf, "PROXY header over its bound") != 0)
		return;
	if (nread < 0) {
		proxy_header_failed(s);
		session_close(s, "balancer ended before its PROXY header");
		return;
	}
	switch (proxy_in_parse((const uint8_t *)s->in.data, s->in.len, &h, &why)) {
	case PROXY_IN_MORE:
		return;
	case PROXY_IN_BAD:
		if (log_ratelimit_allow(&s->site->refusals, uv_now(s->site->loop)))
			log_warn("session %s from balancer %s: %s", s->id, s->peer_ip, why);
		session_drop_input(s);
		proxy_header_failed(s);
		session_refuse(s, "bad PROXY header");
		return;
	case PROXY_IN_DONE:
		break;
	}
	/* Its TLVs lie in s->in: read before it goes. */
	if (s->from_worker && attach_from_worker(s, &h) != 0) {
		session_drop_input(s);
		proxy_header_failed(s);
		session_refuse(s, "bad PROXY header");
		return;
	}
	left = s->in.len - h.len;
	if (left > 0 && (rest = chunk_copy(&s->site->budget, s->in.data + h.len, left)) == NULL) {
		session_close(s, "out of memory");
		return;
	}
	session_drop_input(s);
	s->proxy_pending = false;
	uv_timer_stop(&s->timer);
	if (h.has_addresses) {
		memcpy(&s->peer, &h.src, sizeof(s->peer));
		memcpy(&s->local, &h.dst, sizeof(s->local));
		note_source(s);
	}
	admit(s, NULL);
	if (rest == NULL)
		return;
	b = uv_buf_init(rest->data, (unsigned)left);
	if (s->state == S_CLOSED || s->state == S_LINGER || s->state == S_DARK)
		chunk_release(&b);
	else
		on_client_read(&s->client.stream, (ssize_t)left, &b);
}

void
session_accept(struct site *site, const struct accepted_conn *c, const char *busy)
{
	struct session *s = session_new(site);
	bool is_tcp = c->kind == ACCEPTED_TCP || c->kind == ACCEPTED_TCP_TUNED;
	int fd = c->fd, r;

	if (s == NULL) {
		log_error("out of memory accepting a connection");
		close(fd);
		return;
	}
	if (is_tcp) {
		uv_tcp_init(site->loop, &s->client.tcp);
		r = uv_tcp_open(&s->client.tcp, fd);
	} else {
		uv_pipe_init(site->loop, &s->client.pipe, 0);
		r = uv_pipe_open(&s->client.pipe, fd);
	}
	s->client.handle.data = s;
	s->client_open = true;
	if (r != 0) {
		close(fd);
		session_close(s, "accept failed");
		return;
	}
	note_peer(s, c);
	if (c->kind == ACCEPTED_TCP)
		sockets_relayed(fd);
	/* Its PROXY header names the client and what its connection proves. */
	if (busy == NULL && c->kind == ACCEPTED_PEER) {
		s->from_worker = true;
		await_proxy_header(s);
		return;
	}
	/*
	 * Past max_connections, admit refuses it (or makes room) as the
	 * balancer's, unless detached sessions keep places for their return.
	 */
	if (busy == NULL && is_tcp && config_balancer(s->cfg, (struct sockaddr *)&s->peer) &&
	    connections_held(site, true) <= s->cfg->max_connections) {
		await_proxy_header(s);
		return;
	}
	admit(s, busy);
}

/*
 * A place among its source's connections and the server's, or (at a
 * limit a detached session keeps room beyond) one for an ATTACH only.
 * Returns 0, or -1 when s was refused.
 */
static int
take_places(struct session *s)
{
	struct site *site = s->site;
	bool beyond_source, over;

	s->source = source_acquire(site->sources, s->source_key, s->cfg->max_per_source,
	                           &beyond_source);
	if (s->source == NULL) {
		reject_now(s, "too many connections from your address");
		return -1;
	}
	if (beyond_source)
		s->attach_only = "too many connections from your address";
	over = connections_held(site, false) > s->cfg->max_connections;
	/* Each detached session keeps a place for its client's return, as with its source. */
	if (over && connections_held(site, true) <= s->cfg->max_connections)
		s->attach_only = "too many connections";
	else if (over && make_room(s) != 0) {
		source_release(site->sources, s->source);
		s->source = NULL;
		reject_now(s, "too many connections");
		return -1;
	}
	if (source_wait(site->sources, s->source, &s->waiter, s) != 0) {
		session_close(s, "out of memory");
		return -1;
	}
	return 0;
}

/*
 * A connection whose client's address is known: counted, recorded, held
 * to its source's and the server's limits, and read.
 */
static void
admit(struct session *s, const char *busy)
{
	struct site *site = s->site;
	bool recorded;

	site->metrics.accepted++;
	recorded = session_audit(s, "accepted", NULL) == 0;
	if (busy != NULL) {
		reject_now(s, busy);
		return;
	}
	/*
	 * An ATTACH another worker passes on took its places there, where its
	 * client's connection is: it takes none here, so that one connection
	 * counts once, at the worker its source meets.
	 */
	if (!s->from_worker && take_places(s) != 0)
		return;
	/* Before any request is read: a client has nothing to say that would go unrecorded. */
	if (s->cfg->audit_required && !recorded) {
		audit_refuse(s);
		session_refuse(s, "server busy");
		return;
	}
	audit_resume(site);
	session_restart_request_timer(s);
	if (transition_wanted(s))
		transition_watch(s);
	session_read_client(s);
}
