/*
 * A session in framed mode (muxsession.h): the mux (src/server/mux/)
 * reads the frames and runs the streams; this file is its way up into the
 * session: each OPEN judged as the text dialect judges a request, the
 * PROXY header and audit records of a stream, and frames carried to the
 * client through the session's transport.
 */
#include "server/session/muxsession.h"

#include <jansson.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/line.h"
#include "server/policy/chunk.h"
#include "server/policy/metrics.h"
#include "server/policy/policy.h"
#include "server/policy/site.h"
#include "server/policy/sources.h"
#include "server/session/command.h"
#include "server/session/internal.h"
#include "server/session/proof.h"
#include "server/session/sessiontoken.h"

_Static_assert(PROOF_REPLY_MAX <= MUX_REPLY_MAX, "a command stream's reply fits its frame");

/* The token an OPEN carries, if any: its caller, or NULL with *why (refused) or not (none). */
static int
open_token(struct session *s, const struct config *cfg, const struct vhost *vh,
           const struct mux_frame *f, const char *name, struct caller **caller, const char **why)
{
	char token[MUX_TOKEN_MAX + 1];
	struct token_claims claims;

	*caller = NULL;
	if (f->u.open.token_len == 0)
		return 0;
	memcpy(token, f->u.open.token, f->u.open.token_len);
	token[f->u.open.token_len] = '\0';
	*caller = session_token_in(s, cfg, vh, name, token, &claims, why);
	sodium_memzero(token, sizeof(token));
	if (*caller != NULL)
		return 0;
	metrics_auth_failed(&s->site->metrics, AUTH_TOKEN);
	session_audit(s, "token_refused",
	              json_pack("{s:I,s:s}", "stream", (json_int_t)f->id, "reason", *why));
	*why = "invalid token";
	return -1;
}

/* Judges the OPEN's service for caller in vh, as the text dialect judges a request line. */
static const struct service *
decide(struct session *s, const struct config *cfg, const struct vhost *vh,
       const struct caller *caller, const struct cmd *c, const char **reason)
{
	struct command_view v = {
	        .cfg = cfg,
	        .vhost = vh,
	        .caller = caller,
	        .encrypted = s->encrypted,
	};
	struct command_decision d;
	const struct service *svc = NULL;

	command_decide(&v, c, &d);
	/* Where a redirect leads is said on a connection of its own (section 2.13). */
	if (d.verdict == VERDICT_GRANT && d.svc->backend == BACKEND_REDIRECT)
		*reason = "redirect";
	else if (d.verdict == VERDICT_GRANT)
		svc = d.svc;
	else
		*reason = d.verdict == VERDICT_REFUSE ? d.reason : "invalid service name";
	command_decision_free(&d);
	return svc;
}

/* The session id the stream's backend learns (mux_grant): a stream's own where identity is
 * withheld. */
static void
grant_session_id(const struct session *s, struct mux_grant *g)
{
	uint8_t raw[SESSION_ID_BYTES];

	if (g->who.withheld) {
		randombytes_buf(raw, sizeof(raw));
		hex_encode(raw, sizeof(raw), g->session_id);
	} else {
		memcpy(g->session_id, s->id, sizeof(g->session_id));
	}
	mux_grant_fix(g);
}

/*
 * The vhost an OPEN is for, in cfg: the one it names, else the session's
 * (HOST), found again by name since the session chose it in the
 * configuration of its start.  -1 when there is none of that name.
 */
static int
open_vhost(const struct session *s, const struct config *cfg, const struct mux_frame *f,
           const struct vhost **vh)
{
	const char *name = f->u.open.vhost[0] != '\0' ? f->u.open.vhost
	                   : s->vhost != NULL         ? s->vhost->name
	                                              : NULL;

	*vh = name != NULL ? config_vhost(cfg, name) : NULL;
	return name != NULL && *vh == NULL ? -1 : 0;
}

/*
 * Each OPEN is judged against the configuration in force when it comes
 * (site->cfg, which a reload replaces), so that a service withdrawn, or an
 * allow taken away, holds for the next stream of a session that outlives
 * the reload: the stream keeps a reference to it (g->cfg).  The identity
 * is the one the session proved.  The name must be a service name as it
 * stands (section 2.4): no spaces around it, no command word.
 */
static int
on_authorize(void *owner, uint32_t id, const struct mux_frame *f, struct mux_grant *g,
             const char **reason)
{
	struct session *s = owner;
	struct config *cfg = s->site->cfg;
	const struct vhost *vh;
	const struct caller *caller;
	struct caller *token_caller;
	struct cmd c;

	if (open_vhost(s, cfg, f, &vh) != 0) {
		*reason = "unknown host";
		return -1;
	}
	if (!name_valid(f->u.open.service) || cmd_parse(f->u.open.service, &c, reason) != 0 ||
	    c.kind != CMD_SERVICE || c.nargs != 0) {
		*reason = "invalid service name";
		return -1;
	}
	if (open_token(s, cfg, vh, f, c.word, &token_caller, reason) != 0)
		return -1;
	caller = token_caller != NULL ? token_caller : s->caller;
	if ((g->svc = decide(s, cfg, vh, caller, &c, reason)) == NULL) {
		caller_free(token_caller);
		return -1;
	}
	g->cfg = config_ref(cfg);
	g->caller = token_caller;
	g->vhost = vh != NULL ? vh->name : "";
	g->identity = caller != NULL ? caller->identity : "";
	session_who(s, g->svc, caller, vh, id, &g->who);
	grant_session_id(s, g);
	return 0;
}

/*
 * A stream holds a backend as a connection does, so it takes a place among
 * its source's connections: multiplexing is no way past max_per_source.
 * The places beyond it that a source's detached sessions keep are for
 * their ATTACH, not for streams.  The limit is the source's, shared by its
 * connections: the one in force, as a new connection's is.
 */
static struct source *
on_source_place(void *owner)
{
	struct session *s = owner;

	return source_acquire(s->site->sources, s->source_key, s->site->cfg->max_per_source, NULL);
}

/*
 * The request a command OPEN carries as its first data: the text
 * dialect's argument, without the line's end (CRLF or LF, optional), into
 * arg[0..size).  -1 when it does not fit, or has a NUL.
 */
static int
command_argument(const struct mux_frame *f, char *arg, size_t size)
{
	size_t n = f->u.open.data_len;
	const uint8_t *p = f->u.open.data;

	if (n > 0 && p[n - 1] == '\n')
		n -= n > 1 && p[n - 2] == '\r' ? 2 : 1;
	if (n >= size || memchr(p, '\0', n) != NULL)
		return -1;
	memcpy(arg, p, n);
	arg[n] = '\0';
	return 0;
}

/*
 * PROVEAUTH and GETSIGNKEY as streams (section 13.1): the OPEN names the
 * command, its first data is the argument, and the reply is the text
 * dialect's line, for the session's own identity.  They count with the
 * session's commands, as on a connection that never multiplexed.
 */
static int
on_command(void *owner, const struct mux_frame *f, char reply[MUX_REPLY_MAX], uint8_t *code,
           const char **reason)
{
	struct session *s = owner;
	bool prove = strcasecmp(f->u.open.service, "PROVEAUTH") == 0;
	char arg[PROOF_HASH_SIZE + 1];
	size_t n;

	if (!prove && strcasecmp(f->u.open.service, "GETSIGNKEY") != 0)
		return 0;
	*code = MUX_RST_REFUSED;
	*reason = "invalid request";
	/* The identity proved is the session's: a stream's own token would be a token's. */
	if (f->u.open.vhost[0] != '\0' || f->u.open.token_len != 0 ||
	    command_argument(f, arg, sizeof(arg)) != 0 || (!prove && arg[0] != '\0'))
		return -1;
	if (++s->commands > COMMANDS_MAX) {
		*code = MUX_RST_LIMIT;
		*reason = "too many commands";
		return -1;
	}
	n = prove ? session_prove_reply(s, arg, f->id, reply) : session_signkey_reply(s, reply);
	if (n == 0) {
		*reason = "cannot sign a proof";
		return -1;
	}
	return (int)n;
}

static int
on_header(void *owner, const struct mux_grant *g, uint32_t id, uint8_t *out, size_t size)
{
	return session_proxy_header(owner, g->svc, &g->who, out, size);
}

static int
on_audit(void *owner, const char *event, void *extra)
{
	return session_audit(owner, event, extra);
}

/* Frames to the client: sealed or in TLS through the transport, else as they are. */
static int
on_send(void *owner, struct chunk *c, size_t len)
{
	struct session *s = owner;
	int r;

	if (s->transport == NULL)
		return stream_client_write(s->stream, c, len);
	r = s->transport->ops->output(s->transport, (const uint8_t *)c->data, len);
	chunk_free(c);
	return r;
}

static size_t
on_queued(void *owner)
{
	struct session *s = owner;

	return uv_stream_get_write_queue_size(&s->client.stream);
}

static void
on_read_client(void *owner, bool on)
{
	struct session *s = owner;

	if (on)
		session_read_client(s);
	else
		uv_read_stop(&s->client.stream);
}

/* A detached session has no connection to end gracefully on. */
static void
on_finish(void *owner, const char *reason)
{
	struct session *s = owner;

	if (s->state == S_DETACHED)
		session_close(s, reason);
	else
		session_finish(s, reason);
}

static void
on_closed(void *owner)
{
	session_closed_one(owner);
}

/* DETACHABLE (section 12.2): what the server allows; max_detachable is the mux's to count. */
static int
on_detach_allowed(void *owner, const char **reason)
{
	struct session *s = owner;

	/* This version resumes only sessions that entered framed mode through MULTIPLEX (12.2). */
	if (!s->cfg->detachable || s->usp != NULL) {
		*reason = "not permitted";
		return MUX_DETACH_NOT_PERMITTED;
	}
	if (!s->encrypted && !s->cfg->detach_plaintext) {
		*reason = "encryption required";
		return MUX_DETACH_NOT_PERMITTED;
	}
	return 0;
}

static const struct mux_events mux_events = {
        .command = on_command,
        .authorize = on_authorize,
        .source_place = on_source_place,
        .header = on_header,
        .audit = on_audit,
        .send = on_send,
        .queued = on_queued,
        .read_client = on_read_client,
        .finish = on_finish,
        .closed = on_closed,
        .detach_allowed = on_detach_allowed,
};

int
session_enter_mux(struct session *s, const char *reply, size_t len)
{
	if (session_send(s, reply, len) != 0 ||
	    (s->mux = mux_new(s->site, s->cfg, s->id, &mux_events, s)) == NULL) {
		session_close(s, "out of memory");
		return -1;
	}
	uv_timer_stop(&s->timer);
	session_set_state(s, S_MUX);
	session_audit(s, "multiplex", NULL);
	return mux_start(s->mux);
}

void
session_mux_take_held(struct session *s)
{
	if (s->state != S_MUX)
		return;
	/* What the client pipelined behind its request is frames already. */
	if (s->in.len > 0)
		mux_input(s->mux, s->in.data, s->in.len);
	session_drop_input(s);
	if (s->state != S_MUX)
		return;
	if (s->client_eof_early)
		mux_client_ended(s->mux);
	else
		session_read_client(s);
}

void
session_start_mux(struct session *s, const char *reply, size_t len)
{
	if (session_enter_mux(s, reply, len) == 0)
		session_mux_take_held(s);
}

/*
 * Inside a transport an end of stream reaches here only when it was a
 * proper one (FINAL, close_notify); in plaintext an end with a stream
 * open is taken for a break (section 12.4).
 */
void
session_mux_input(struct session *s, ssize_t nread, const uv_buf_t *buf)
{
	if (nread > 0)
		mux_input(s->mux, (const uint8_t *)buf->base, (size_t)nread);
	chunk_release(buf);
	if (nread == UV_EOF && s->transport == NULL && mux_open_streams(s->mux) > 0)
		session_broken(s, "client stream truncated");
	else if (nread == UV_EOF)
		mux_client_ended(s->mux);
	else if (nread < 0)
		session_broken(s, "client read failed");
}

/*
 * Nobody comes back: whoever could keep the client's path down this long
 * must not make a service take a stream cut short for a whole one, so
 * each stream's backend is reset (12.4); detach_end = close ends their
 * input instead, for services that would rather have that.
 */
void
session_end_detached(struct session *s, const char *why)
{
	if (s->cfg->detach_end == DETACH_END_RESET) {
		session_abort(s, why);
		return;
	}
	mux_end_gently(s->mux, why);
	session_close(s, why);
}

static void
on_detach_timeout(uv_timer_t *t)
{
	session_end_detached(t->data, "detach timeout");
}

void
session_detach(struct session *s, const char *why)
{
	log_info("session %s: detached: %s", s->id, why);
	session_audit(s, "detached",
	              json_pack("{s:s,s:I}", "reason", why, "streams",
	                        (json_int_t)mux_open_streams(s->mux)));
	session_set_state(s, S_DETACHED);
	mux_detach(s->mux);
	session_drop_input(s);
	session_drop_connection(s);
	/* Stopping, fived takes no connection: no client can come back to it. */
	if (s->site->draining) {
		session_end_detached(s, "server shutting down");
		return;
	}
	uv_timer_start(&s->timer, on_detach_timeout, s->cfg->detach_timeout_ms, 0);
}
