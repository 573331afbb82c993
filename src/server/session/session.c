/*
 * A session from accept to close.  The client speaks first: request lines
 * are read into a bounded buffer and handled one at a time; once a service
 * is granted, whatever the client sent after its request line is held and
 * delivered to the backend right after the "+" reply, in order.  A refused
 * request is answered with "- reason" and everything held is dropped.
 */
#include "server/session/session.h"

#include <jansson.h>
#include <sodium.h>
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
#include "server/session/auth.h"
#include "server/session/sessiontoken.h"
#include "server/session/uspsession.h"
#include "server/transport/seal.h"
#include "server/transport/tls.h"
#include "server/transport/transport.h"

static const char *const state_names[] = {
        [S_COMMAND] = "command",     [S_AUTH] = "auth",
        [S_AUTH_WAIT] = "auth-wait", [S_CONNECTING] = "connecting",
        [S_RELAY] = "relay",         [S_LINGER] = "linger",
        [S_DARK] = "dark",           [S_CLOSED] = "closed",
};

static void on_client_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static bool tls_usable(const struct session *s);
static void pace_input(struct session *s);
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
	if (s->transport != NULL)
		s->transport->ops->free(s->transport);
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

void
session_set_state(struct session *s, enum session_state next)
{
	log_debug("session %s: %s -> %s", s->id, state_names[s->state], state_names[next]);
	/* A session stops waiting for good once it is past its first command phase. */
	if (next != S_COMMAND)
		source_unwait(s->site->sources, &s->waiter);
	if (ending(next) && !ending(s->state))
		s->site->nending++;
	if (next == S_DARK && s->state != S_DARK)
		s->site->nheld++;
	if (s->state == S_DARK && next != S_DARK)
		s->site->nheld--;
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
	uv_freeaddrinfo(s->candidates);
	drop_transport(s);
	session_drop_input(s);
	caller_free(s->caller);
	config_unref(s->cfg);
	free(s);
	site->session_gone(site->session_gone_arg);
}

void
session_release(struct session *s)
{
	if (s->closing_handles == 0 && s->state == S_CLOSED && !s->resolving)
		session_free(s);
}

void
session_handle_closed(uv_handle_t *h)
{
	struct session *s = h->data;

	s->closing_handles--;
	session_release(s);
}

/* An orderly close: a TCP peer sees the end of the stream, not a reset. */
static void
close_handle(struct session *s, uv_handle_t *h)
{
	uv_os_fd_t fd;

	if (h->type == UV_TCP && uv_fileno(h, &fd) == 0)
		sockets_reset_on_close(fd, false);
	s->closing_handles++;
	uv_close(h, session_handle_closed);
}

void
session_close(struct session *s, const char *reason)
{
	json_t *extra;

	if (s->state == S_CLOSED)
		return;
	session_set_state(s, S_CLOSED);
	s->close_reason = reason;
	extra = json_pack("{s:s,s:I,s:I,s:I}", "reason", reason, "bytes_in",
	                  (json_int_t)s->up.bytes, "bytes_out", (json_int_t)s->down.bytes,
	                  "duration_ms", (json_int_t)(uv_now(s->site->loop) - s->started_ms));
	session_audit(s, "closed", extra);
	relay_forget(s);
	auth_abort(s);
	usp_session_free(s);
	if (s->resolving)
		uv_cancel((uv_req_t *)&s->resolve_req);
	close_handle(s, (uv_handle_t *)&s->timer);
	if (s->client_open)
		close_handle(s, &s->client.handle);
	if (s->backend_open && s->backend_reset && s->backend.handle.type == UV_TCP) {
		s->closing_handles++;
		uv_tcp_close_reset(&s->backend.tcp, session_handle_closed);
	} else if (s->backend_open) {
		close_handle(s, &s->backend.handle);
	}
}

void
session_abort(struct session *s, const char *reason)
{
	s->backend_reset = true;
	session_close(s, reason);
}

/* --- output ----------------------------------------------------------------- */

int
session_send(struct session *s, const void *data, size_t len)
{
	return relay_write_copy(s, &s->client.stream, data, len);
}

static int
send_line(struct session *s, const char *prefix, const char *text)
{
	char line[LINE_MAX_BYTES + 8];
	int n = snprintf(line, sizeof(line), "%s%s\r\n", prefix, text);

	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	return session_send(s, line, (size_t)n);
}

static void
on_linger_timeout(uv_timer_t *t)
{
	session_close(t->data, "closed after reply");
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
static void
finish_with(struct session *s, const char *text, size_t len)
{
	uv_shutdown_t *req;

	if (s->state == S_CLOSED || s->state == S_LINGER)
		return;
	session_set_state(s, S_LINGER);
	session_drop_input(s);
	if (s->backend_open) {
		s->backend_open = false;
		close_handle(s, &s->backend.handle);
	}
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
	finish_with(s, NULL, 0);
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
	n = snprintf(line, sizeof(line), "- %s\r\n", reason);
	session_refuse_with(s, reason, line, (size_t)n);
}

void
session_refuse_with(struct session *s, const char *reason, const char *text, size_t len)
{
	if (s->state == S_CLOSED || s->state == S_LINGER)
		return;
	if (log_ratelimit_allow(&s->site->refusals, uv_now(s->site->loop)))
		log_info("session %s from %s: refused: %s", s->id,
		         s->peer_is_ip ? s->peer_ip : "local", reason);
	session_audit(s, "refused",
	              json_pack("{s:s,s:s}", "reason", reason, "service", s->requested));
	if (stranger(s)) {
		hold_silently(s, reason);
		return;
	}
	s->close_reason = reason;
	finish_with(s, text, len);
}

/* --- commands --------------------------------------------------------------- */

/* Reply text built from several lines. */
struct reply {
	char *text;
	size_t len, cap;
	int failed;
};

static void
reply_add(struct reply *r, const char *prefix, const char *name)
{
	size_t need = strlen(prefix) + strlen(name) + 3;
	char *grown;

	if (r->failed)
		return;
	if (r->len + need > r->cap) {
		r->cap = (r->len + need) * 2;
		if ((grown = realloc(r->text, r->cap)) == NULL) {
			r->failed = 1;
			return;
		}
		r->text = grown;
	}
	r->len += (size_t)snprintf(r->text + r->len, r->cap - r->len, "%s%s\r\n", prefix, name);
}

/* LIST and HELP show a service only to callers policy_listed allows. */
struct listing {
	struct reply r;
	const struct caller *caller;
	bool for_help;
};

static void
add_listed(void *arg, const char *name, const struct service *svc)
{
	struct listing *l = arg;

	if (policy_listed(svc, l->caller, l->for_help))
		reply_add(&l->r, l->for_help ? "" : "service ", name);
}

/* RFC 1078: the service names, one per line, and close. */
static void
cmd_help(struct session *s)
{
	struct listing l = {.caller = s->caller, .for_help = true};

	config_each_name(s->cfg, s->vhost, add_listed, &l);
	if (l.r.failed) {
		session_close(s, "out of memory");
	} else {
		session_audit(s, "help", NULL);
		finish_with(s, l.r.text, l.r.len);
	}
	free(l.r.text);
}

/* "+ LIST", a line per service and per command, and a line "." */
static void
cmd_list(struct session *s, const struct cmd *c)
{
	static const char *const commands[] = {"HELP", "LIST", "HOST", "QUIT"};
	struct listing l = {.caller = s->caller};
	const struct service *svc;
	size_t i;

	if (c->nargs == 1) {
		svc = config_lookup(s->cfg, s->vhost, c->args[0]);
		if (svc != NULL && policy_check(svc, s->caller) == POLICY_GRANT)
			send_line(s, "+ ", c->args[0]);
		else
			send_line(s, "- ", "unknown service");
		return;
	}
	reply_add(&l.r, "+ ", "LIST");
	config_each_name(s->cfg, s->vhost, add_listed, &l);
	/* Every command usable now, and only those. */
	for (i = 0; i < ARRAY_LEN(commands); i++)
		reply_add(&l.r, "command ", commands[i]);
	if (s->caller == NULL &&
	    (auth_method_usable(s, AUTH_PUBKEY) || auth_method_usable(s, AUTH_PASSWORD)))
		reply_add(&l.r, "command ", "AUTH");
	if (tls_usable(s))
		reply_add(&l.r, "command ", "TLS");
	if (s->caller != NULL && s->caller->method != AUTH_TOKEN)
		reply_add(&l.r, "command ", "TOKEN");
	reply_add(&l.r, "", ".");
	if (l.r.failed || session_send(s, l.r.text, l.r.len) != 0)
		session_close(s, "out of memory");
	free(l.r.text);
}

static void
cmd_host(struct session *s, const struct cmd *c)
{
	const struct vhost *vh = config_vhost(s->cfg, c->args[0]);

	/*
	 * An unknown vhost ends the session: a client that pipelined a service
	 * request after HOST must not reach that name in another vhost.
	 */
	if (vh == NULL) {
		session_refuse(s, "unknown host");
		return;
	}
	s->vhost = vh;
	send_line(s, "+ ", vh->name);
}

static void
cmd_service(struct session *s, const struct cmd *c)
{
	const char *why;

	str_copy(s->requested, c->word, sizeof(s->requested));
	/* "SERVICE TOKEN": the token's identity, if it is valid for this service. */
	if (c->nargs > 0 && session_token_take(s, c->word, c->args[0], &why) == NULL) {
		session_audit(s, "token_refused", json_pack("{s:s}", "reason", why));
		session_refuse(s, "invalid token");
		return;
	}
	s->svc = config_lookup(s->cfg, s->vhost, c->word);
	/* A service the client may not see answers exactly as one that does not exist. */
	if (s->svc == NULL || policy_check(s->svc, s->caller) == POLICY_HIDDEN) {
		session_refuse(s, "unknown service");
		return;
	}
	if (policy_check(s->svc, s->caller) == POLICY_DENIED) {
		session_refuse(s, "not permitted");
		return;
	}
	if (s->svc->encryption_required && !s->encrypted) {
		session_refuse(s, "encryption required");
		return;
	}
	session_start_service(s, s->svc);
}

void
session_start_service(struct session *s, const struct service *svc)
{
	s->svc = svc;
	session_set_state(s, S_CONNECTING);
	uv_timer_stop(&s->timer);
	backend_start(s);
}

/*
 * "+ SUCCESS", then TLS: what the client sent after the line is the start
 * of its ClientHello.  Only before AUTH, so that an identity is never
 * established outside the channel it is then used in.
 */
/* Whether TLS may start now: not inside another encryption, not after AUTH. */
static bool
tls_usable(const struct session *s)
{
	return !s->encrypted && s->caller == NULL;
}

static void
cmd_tls(struct session *s)
{
	struct buf held;
	size_t charged;
	int r;

	if (s->encrypted) {
		send_line(s, "- ", "already encrypted");
		return;
	}
	if (s->caller != NULL) {
		send_line(s, "- ", "TLS must come before AUTH");
		return;
	}
	/*
	 * Nothing chosen in plaintext survives into TLS (the STARTTLS
	 * injection pattern): a HOST an attacker slipped in before the
	 * client's TLS must not hold inside it.
	 */
	s->vhost = NULL;
	s->requested[0] = '\0';
	if (!tls_admit(s->site, s->cfg, s->source_key)) {
		session_refuse(s, "too many handshakes from your address");
		return;
	}
	if (send_line(s, "+ ", "SUCCESS") != 0 || start_transport(s, tls_new) != 0) {
		session_close(s, "out of memory");
		return;
	}
	/* What was held is TLS now: it goes through the transport into a fresh s->in. */
	held = s->in;
	charged = s->in_charged;
	buf_init(&s->in, SESSION_IN_MAX);
	s->in_charged = 0;
	r = held.len > 0 ? s->transport->ops->input(s->transport, held.data, held.len) : 0;
	buf_free(&held);
	budget_release(&s->site->budget, charged);
	if (r != 0)
		session_close(s, "transport failed");
}

static void
handle_line(struct session *s, const char *line)
{
	struct cmd c;
	const char *why;

	if (++s->commands > COMMANDS_MAX) {
		session_refuse(s, "too many commands");
		return;
	}
	if (cmd_parse(line, &c, &why) != 0) {
		session_refuse(s, why);
		return;
	}
	switch (c.kind) {
	case CMD_SERVICE:
		cmd_service(s, &c);
		break;
	case CMD_HELP:
		cmd_help(s);
		break;
	case CMD_LIST:
		cmd_list(s, &c);
		break;
	case CMD_HOST:
		cmd_host(s, &c);
		break;
	case CMD_QUIT:
		finish_with(s, "+ bye\r\n", 7);
		break;
	case CMD_AUTH:
		auth_begin(s, &c);
		break;
	case CMD_TLS:
		cmd_tls(s);
		break;
	case CMD_TOKEN:
		session_token_command(s, &c);
		break;
	}
}

/* Handles complete request lines while the session is still reading lines. */
static void
take_lines(struct session *s)
{
	char line[LINE_MAX_BYTES];
	size_t used;

	/* The first byte says which dialect: '{' is USP's. */
	if (!s->dialect_known && s->in.len > 0) {
		s->dialect_known = true;
		if (s->in.data[0] == '{' && usp_session_start(s) != 0) {
			session_close(s, "out of memory");
			return;
		}
	}
	if (s->usp != NULL) {
		usp_session_take(s);
		return;
	}
	while (s->state == S_COMMAND || s->state == S_AUTH) {
		if (uv_stream_get_write_queue_size(&s->client.stream) > REPLY_BACKLOG_MAX) {
			session_close(s, "client does not read replies");
			return;
		}
		switch (line_take(s->in.data, s->in.len, line, &used)) {
		case LINE_OK:
			buf_consume(&s->in, used);
			if (s->state == S_AUTH)
				auth_line(s, line);
			else
				handle_line(s, line);
			sodium_memzero(line, sizeof(line));
			break;
		case LINE_TOO_LONG:
			session_refuse(s, "line too long");
			return;
		case LINE_BAD_BYTE:
			session_refuse(s, "invalid character in request");
			return;
		case LINE_NEED_MORE:
			/* A transport's client ended properly: end ours the same way. */
			if (s->client_eof_early && stranger(s))
				hold_silently(s, "client closed before a request");
			else if (s->client_eof_early && s->transport != NULL)
				session_finish(s, "client closed before a request");
			else if (s->client_eof_early)
				session_close(s, "client closed before a request");
			return;
		}
	}
}

void
session_process_input(struct session *s)
{
	take_lines(s);
	pace_input(s);
}

/* --- input -------------------------------------------------------------- */

void
session_read_client(struct session *s)
{
	uv_read_start(&s->client.stream, relay_alloc, on_client_read);
}

/* Charges s->in to the relay budget by what it takes now. */
static void
note_input(struct session *s)
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
	note_input(s);
}

/*
 * Client bytes before the relay starts: held in s->in, never forwarded from
 * here.  Reading pauses while s->in could not take a whole read, so the
 * held bytes stay within SESSION_IN_MAX however fast the client sends.
 */
static void
early_input(struct session *s, ssize_t nread, const uv_buf_t *buf)
{
	int full = nread > 0 && buf_append(&s->in, buf->base, (size_t)nread) != 0;

	chunk_release(buf);
	note_input(s);
	if (full) {
		session_close(s, "early data over its bound");
		return;
	}
	if (nread < 0) {
		s->client_eof_early = true;
		uv_read_stop(&s->client.stream);
		if (nread != UV_EOF) {
			session_close(s, "client read failed");
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
	case S_COMMAND:
	case S_AUTH:
	case S_AUTH_WAIT:
	case S_CONNECTING:
		early_input(s, nread, buf);
		break;
	case S_RELAY:
		relay_client_data(s, nread, buf);
		break;
	case S_LINGER:
		linger_input(s, nread, buf);
		break;
	case S_DARK:
		dark_input(s, nread, buf);
		break;
	case S_CLOSED:
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

	if (s->state == S_CLOSED) {
		caller_free(caller);
		json_decref(extra);
		return -1;
	}
	memcpy(s->binding, binding, binding_len);
	s->binding_len = binding_len;
	s->encrypted = true;
	if (caller != NULL)
		session_set_caller(s, caller, extra);
	else
		json_decref(extra);
	return 0;
}

static int
on_transport_write(void *owner, struct chunk *c, size_t len)
{
	return relay_client_write(owner, c, len);
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
	session_abort(owner, reason);
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
	s->detected = true;
	if (first == SEALED_INITIATION) {
		if (start_transport(s, seal_new) == 0)
			return 0;
		session_close(s, "out of memory");
		return -1;
	}
	if (s->cfg->dark) {
		hold_silently(s, "dark: not a sealed handshake");
		return -1;
	}
	if (first != TLS_RECORD_HANDSHAKE)
		return 0;
	if (!tls_admit(s->site, s->cfg, s->source_key)) {
		session_close(s, "tls: over the handshake budget");
		return -1;
	}
	if (start_transport(s, tls_new) == 0)
		return 0;
	session_close(s, "out of memory");
	return -1;
}

static void
on_client_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct session *s = st->data;
	const char *why;
	int r;

	if (!s->detected && nread > 0 && s->state == S_COMMAND &&
	    detect(s, (uint8_t)buf->base[0]) != 0) {
		chunk_release(buf);
		return;
	}
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
		session_abort(s, why);
	}
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

const char *
session_identity(const struct session *s)
{
	if (s->caller == NULL || (s->svc != NULL && s->svc->withhold_identity))
		return NULL;
	return s->caller->identity;
}

bool
session_shows_peer(const struct session *s)
{
	return s->peer_is_ip && !(s->caller != NULL && s->svc->withhold_identity);
}

/* The PROXY header the service asks for; its length (0 for none), or -1. */
static int
proxy_header(const struct session *s, uint8_t *out, size_t size)
{
	bool shown = session_shows_peer(s);
	const struct sockaddr *src = shown ? (const struct sockaddr *)&s->peer : NULL;
	const struct sockaddr *dst = shown ? (const struct sockaddr *)&s->local : NULL;
	const char *identity = session_identity(s);
	struct proxy_tlv tlvs[5];
	size_t n = 0;

	if (s->svc->proxy == PROXY_NONE)
		return 0;
	if (s->svc->proxy == PROXY_V1)
		return proxy_v1_encode(src, dst, (char *)out, size);
	if (s->vhost != NULL)
		tlvs[n++] = (struct proxy_tlv){PP2_TYPE_AUTHORITY, s->vhost->name,
		                               strlen(s->vhost->name)};
	tlvs[n++] = (struct proxy_tlv){PP2_TYPE_UNIQUE_ID, s->id, SESSION_ID_LEN};
	tlvs[n++] = (struct proxy_tlv){PP2_TYPE_FIVE_SERVICE, s->svc->name, strlen(s->svc->name)};
	if (identity != NULL)
		tlvs[n++] = (struct proxy_tlv){PP2_TYPE_FIVE_IDENTITY, identity, strlen(identity)};
	if (s->caller != NULL) {
		const char *method = auth_method_name(s->caller->method);
		tlvs[n++] = (struct proxy_tlv){PP2_TYPE_FIVE_AUTH_METHOD, method, strlen(method)};
	}
	return proxy_v2_encode(src, dst, tlvs, n, out, size);
}

void
session_backend_ready(struct session *s, int err)
{
	uint8_t header[PROXY_V2_MAX];
	int header_len;

	if (s->state != S_CONNECTING)
		return;
	if (err != 0) {
		/* A backend that is down fails every session that asks for it: a flood. */
		if (log_ratelimit_allow(&s->site->backend_failures, uv_now(s->site->loop)))
			log_warn("session %s: service %s: backend: %s", s->id, s->svc->name,
			         uv_strerror(err));
		session_refuse(s, "service unavailable");
		return;
	}
	if ((header_len = proxy_header(s, header, sizeof(header))) < 0) {
		session_refuse(s, "service unavailable");
		return;
	}
	/* With audit_required, no grant goes unrecorded. */
	if (session_audit(
	            s, "granted",
	            json_pack("{s:s,s:s,s:s,s:s,s:s}", "service", s->svc->name, "requested",
	                      s->requested, "vhost", s->vhost != NULL ? s->vhost->name : "",
	                      "identity", s->caller != NULL ? s->caller->identity : "", "transport",
	                      s->transport != NULL ? s->transport->ops->name : "plain")) != 0 &&
	    s->cfg->audit_required) {
		audit_refuse(s);
		session_refuse(s, "server busy");
		return;
	}
	relay_start(s, header, (size_t)header_len);
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
	uv_timer_start(&s->timer, on_request_timeout, s->cfg->request_timeout_ms, 0);
}

void
session_start_auth_timer(struct session *s)
{
	uv_timer_start(&s->timer, on_auth_timeout, s->cfg->auth_timeout_ms, 0);
}

static void
note_peer(struct session *s, bool is_tcp)
{
	int len = sizeof(s->peer);

	s->peer_is_ip = false;
	if (is_tcp && uv_tcp_getpeername(&s->client.tcp, (struct sockaddr *)&s->peer, &len) == 0 &&
	    sockaddr_ip((struct sockaddr *)&s->peer, s->peer_ip, &s->peer_port) == 0)
		s->peer_is_ip = true;
	len = sizeof(s->local);
	if (is_tcp)
		uv_tcp_getsockname(&s->client.tcp, (struct sockaddr *)&s->local, &len);
	sockaddr_source_key((struct sockaddr *)&s->peer, s->source_key);
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
	s->site = site;
	s->cfg = config_ref(site->cfg);
	s->state = S_COMMAND;
	randombytes_buf(raw, sizeof(raw));
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
session_accept(struct site *site, int fd, bool is_tcp, const char *busy)
{
	struct session *s = session_new(site);
	bool recorded;
	int r;

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
	note_peer(s, is_tcp);
	if (is_tcp) {
		uv_tcp_nodelay(&s->client.tcp, 1);
		sockets_reset_on_close(fd, true);
	}
	recorded = session_audit(s, "accepted", NULL) == 0;
	if (busy != NULL) {
		reject_now(s, busy);
		return;
	}
	s->source = source_acquire(site->sources, s->source_key, s->cfg->max_per_source);
	if (s->source == NULL) {
		reject_now(s, "too many connections from your address");
		return;
	}
	if (site->nsessions - site->nending > s->cfg->max_connections && make_room(s) != 0) {
		source_release(site->sources, s->source);
		s->source = NULL;
		reject_now(s, "too many connections");
		return;
	}
	if (source_wait(site->sources, s->source, &s->waiter, s) != 0) {
		session_close(s, "out of memory");
		return;
	}
	/* Before any request is read: a client has nothing to say that would go unrecorded. */
	if (s->cfg->audit_required && !recorded) {
		audit_refuse(s);
		session_refuse(s, "server busy");
		return;
	}
	audit_resume(site);
	session_restart_request_timer(s);
	session_read_client(s);
}
