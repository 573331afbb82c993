#include "server/daemon/admin.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/admin.h"
#include "server/daemon/acceptor.h"
#include "server/daemon/server.h"
#include "server/mux/mux.h"
#include "server/policy/auditlog.h"
#include "server/policy/tokens.h"
#include "server/privsep/priv.h"
#include "server/session/session.h"

/* One fivectl connection, from accept to its one reply. */
struct admin_conn {
	struct admin_conn *next;
	struct admin *adm;
	uv_poll_t poll;
	uv_timer_t timer;
	int fd;
	unsigned long uid;
	unsigned closing; /* handles whose close is pending */
};

struct admin {
	struct server *srv;
	struct acceptor *acc;
	struct admin_conn *conns;
	size_t nconns;
};

/* --- connections ------------------------------------------------------------ */

static void
conn_handle_closed(uv_handle_t *h)
{
	struct admin_conn *c = h->data;

	if (--c->closing > 0)
		return;
	close(c->fd);
	free(c);
}

static void
drop_conn(struct admin_conn *c)
{
	struct admin_conn **pp;

	for (pp = &c->adm->conns; *pp != c; pp = &(*pp)->next)
		;
	*pp = c->next;
	c->adm->nconns--;
	c->closing = 2;
	uv_close((uv_handle_t *)&c->poll, conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

/* Sends the reply and ends the connection: one request each. */
static void
finish(struct admin_conn *c, const char *msg, size_t len)
{
	send(c->fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	drop_conn(c);
}

static void
refuse(struct admin_conn *c, const char *reason)
{
	char msg[ADMIN_REASON_MAX + 8];
	size_t len;

	if (admin_reply_refuse(reason, msg, sizeof(msg), &len) == 0)
		send(c->fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	drop_conn(c);
}

/* body (stolen) as the "+" reply; too large a body is refused instead. */
static void
reply(struct admin_conn *c, json_t *body)
{
	char *msg = malloc(ADMIN_REPLY_MAX + 1);
	size_t len;

	if (msg != NULL && admin_reply_ok(body, msg, ADMIN_REPLY_MAX + 1, &len) == 0)
		finish(c, msg, len);
	else
		refuse(c, msg == NULL ? "out of memory" : "reply too large");
	free(msg);
	json_decref(body);
}

/* --- the commands ------------------------------------------------------------- */

struct listing {
	json_t *sessions;
	size_t total;
};

static bool
list_one(const struct session_info *i, void *arg)
{
	struct listing *l = arg;

	if (l->total++ >= ADMIN_SESSIONS_MAX)
		return true;
	json_array_append_new(
	        l->sessions,
	        json_pack("{s:s,s:s,s:s?,s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:i}", "id", i->id,
	                  "state", i->state, "identity",
	                  i->identity[0] != '\0' ? i->identity : NULL, "method", i->method, "src",
	                  i->src, "src_port", (int)i->src_port, "vhost", i->vhost, "service",
	                  i->service, "transport", i->transport, "dialect", i->dialect, "bytes_in",
	                  (json_int_t)i->bytes_in, "bytes_out", (json_int_t)i->bytes_out, "age_ms",
	                  (json_int_t)i->age_ms, "streams", (int)i->streams));
	return true;
}

static json_t *
sessions(struct site *site)
{
	struct listing l = {.sessions = json_array()};

	session_each(site, list_one, &l);
	return json_pack("{s:o,s:I,s:I}", "sessions", l.sessions, "total", (json_int_t)l.total,
	                 "shown", (json_int_t)json_array_size(l.sessions));
}

/* STREAMS: the session asked for, found (and multiplexed or not), and its streams. */
struct stream_listing {
	const char *id;
	bool found, multiplexed;
	json_t *streams;
	size_t total;
};

static bool
list_stream(const struct mux_stream_info *i, void *arg)
{
	struct stream_listing *l = arg;

	if (l->total++ >= ADMIN_STREAMS_MAX)
		return true;
	json_array_append_new(l->streams,
	                      json_pack("{s:I,s:s,s:b,s:I,s:I,s:I}", "id", (json_int_t)i->id,
	                                "service", i->service, "connected", (int)i->connected,
	                                "bytes_in", (json_int_t)i->bytes_in, "bytes_out",
	                                (json_int_t)i->bytes_out, "age_ms", (json_int_t)i->age_ms));
	return true;
}

static bool
find_streams(const struct session_info *i, void *arg)
{
	struct stream_listing *l = arg;

	if (strcmp(i->id, l->id) != 0)
		return true;
	l->found = true;
	l->multiplexed = i->mux != NULL;
	if (i->mux != NULL)
		mux_each_stream(i->mux, list_stream, l);
	return false;
}

static void
do_streams(struct admin_conn *c, const char *id)
{
	struct stream_listing l = {.id = id, .streams = json_array()};

	session_each(&c->adm->srv->site, find_streams, &l);
	if (!l.found || !l.multiplexed) {
		json_decref(l.streams);
		refuse(c, l.found ? "not a multiplexed session" : "no such session");
		return;
	}
	reply(c, json_pack("{s:s,s:o,s:I,s:I}", "session", id, "streams", l.streams, "total",
	                   (json_int_t)l.total, "shown", (json_int_t)json_array_size(l.streams)));
}

static json_t *
counters(const struct governor_counters *c)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "initiations",
	                 (json_int_t)c->initiations, "handshakes", (json_int_t)c->handshakes,
	                 "cookies", (json_int_t)c->cookies, "dropped_mac",
	                 (json_int_t)c->dropped_mac, "dropped_rate", (json_int_t)c->dropped_rate,
	                 "dropped_cookie", (json_int_t)c->dropped_cookie, "dropped_work",
	                 (json_int_t)c->dropped_work, "dropped_replay",
	                 (json_int_t)c->dropped_replay, "failed", (json_int_t)c->failed);
}

static json_t *
stats(struct site *site)
{
	return json_pack("{s:I,s:I,s:I,s:o,s:I,s:I,s:{s:I,s:I,s:I}}", "sessions",
	                 (json_int_t)site->nsessions, "ending", (json_int_t)site->nending, "held",
	                 (json_int_t)site->nheld, "handshakes", counters(&site->gov.c),
	                 "audit_lost", (json_int_t)site->gov.c.audit_lost, "audit_refused",
	                 (json_int_t)site->audit_refused, "relay_budget", "used",
	                 (json_int_t)site->budget.used, "max", (json_int_t)site->budget.max,
	                 "pauses", (json_int_t)site->budget.pauses);
}

static json_t *
governor(struct site *site)
{
	const struct governor *g = &site->gov;

	return json_pack("{s:b,s:i,s:i,s:b,s:i,s:o}", "loaded", (int)g->loaded, "cpu_percent",
	                 (int)g->percent, "pending", (int)g->pending, "cookies_demanded",
	                 (int)governor_wants_cookie(g, site->cfg), "difficulty",
	                 (int)governor_difficulty(g, site->cfg), "handshakes", counters(&g->c));
}

static void
do_kill(struct admin_conn *c, const char *id)
{
	if (session_kill(&c->adm->srv->site, id, ADMIN_KILL_REASON) != 0) {
		refuse(c, "no such session");
		return;
	}
	log_info("admin: uid %lu ended session %s", c->uid, id);
	reply(c, json_pack("{s:s}", "killed", id));
}

static void
do_reload(struct admin_conn *c)
{
	char err[ADMIN_REASON_MAX];

	log_info("admin: uid %lu asks for a reload", c->uid);
	if (priv_reload(c->adm->srv->site.priv, err, sizeof(err)) != 0) {
		refuse(c, err);
		return;
	}
	if (server_reload(c->adm->srv) != 0) {
		refuse(c, "reload rejected, the running configuration kept (see the log)");
		return;
	}
	reply(c, json_pack("{s:b,s:I}", "reloaded", 1, "sessions",
	                   (json_int_t)c->adm->srv->site.nsessions));
}

static bool
is_jti(const char *arg)
{
	size_t i;

	for (i = 0; arg[i] != '\0'; i++)
		if (!((arg[i] >= '0' && arg[i] <= '9') || (arg[i] >= 'a' && arg[i] <= 'f')))
			return false;
	return i == TOKEN_JTI_LEN;
}

/*
 * The claims to revoke: a token's own, or for a bare id, an expiry no
 * token this node issues can outlive (token_max_ttl from now).
 */
static int
claims_of(struct site *site, const char *arg, uint64_t now, struct token_claims *tc,
          const char **why)
{
	memset(tc, 0, sizeof(*tc));
	if (is_jti(arg)) {
		str_copy(tc->jti, arg, sizeof(tc->jti));
		tc->exp = now + site->cfg->token_max_ttl_s;
		return 0;
	}
	return tokens_open_to_revoke(site->tokens, arg, now, tc, why);
}

static void
do_revoke(struct admin_conn *c, const char *arg)
{
	struct site *site = &c->adm->srv->site;
	uint64_t now = (uint64_t)time(NULL);
	struct token_claims tc;
	char reason[ADMIN_REASON_MAX];
	const char *why = "";

	if (claims_of(site, arg, now, &tc, &why) != 0) {
		snprintf(reason, sizeof(reason), "not a token this server accepts: %s", why);
		refuse(c, reason);
		return;
	}
	switch (tokens_revoke(site->tokens, &tc, now)) {
	case TOKENS_REVOKED:
		break;
	case TOKENS_REVOKED_HERE:
		refuse(c, REVOKED_HERE);
		return;
	case TOKENS_NOT_REVOKED:
		refuse(c, "cannot record the revocation (see the log)");
		return;
	}
	log_info("admin: uid %lu revoked token %s", c->uid, tc.jti);
	if (auditlog_write(site->audit,
	                   json_pack("{s:s,s:s,s:s,s:I}", "event", "token_revoked", "jti", tc.jti,
	                             "by", "fivectl", "uid", (json_int_t)c->uid)) != 0)
		site->gov.c.audit_lost++;
	reply(c, json_pack("{s:s,s:I}", "revoked", tc.jti, "until", (json_int_t)tc.exp));
}

static void
answer(struct admin_conn *c, const struct admin_request *r)
{
	struct site *site = &c->adm->srv->site;

	switch (r->command) {
	case ADMIN_SESSIONS:
		reply(c, sessions(site));
		break;
	case ADMIN_KILL:
		do_kill(c, r->arg);
		break;
	case ADMIN_STATS:
		reply(c, stats(site));
		break;
	case ADMIN_GOVERNOR:
		reply(c, governor(site));
		break;
	case ADMIN_RELOAD:
		do_reload(c);
		break;
	case ADMIN_REVOKE:
		do_revoke(c, r->arg);
		break;
	case ADMIN_STREAMS:
		do_streams(c, r->arg);
		break;
	}
}

/* --- the socket ---------------------------------------------------------------- */

static void
on_request(uv_poll_t *p, int status, int events)
{
	struct admin_conn *c = p->data;
	struct admin_request *r;
	char *msg;
	ssize_t n;

	if ((msg = malloc(ADMIN_REQUEST_MAX + 1)) == NULL || (r = malloc(sizeof(*r))) == NULL) {
		free(msg);
		refuse(c, "out of memory");
		return;
	}
	n = recv(c->fd, msg, ADMIN_REQUEST_MAX + 1, MSG_DONTWAIT | MSG_TRUNC);
	if (status < 0 || n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		drop_conn(c);
	else if (n > ADMIN_REQUEST_MAX)
		refuse(c, "request too large");
	else if (n > 0 && admin_request_decode(msg, (size_t)n, r) != 0)
		refuse(c, "malformed request");
	else if (n > 0)
		answer(c, r);
	free(msg);
	free(r);
}

static void
on_timeout(uv_timer_t *t)
{
	refuse(t->data, "no request in time");
}

/* Whether uid may; otherwise the peer is told why, and the log says who it was. */
static bool
permitted(struct admin *adm, int fd, unsigned long uid)
{
	char why[ADMIN_REASON_MAX], msg[ADMIN_REASON_MAX + 8];
	size_t len;
	int r = priv_admin(adm->srv->site.priv, uid, why, sizeof(why));

	if (r == 1)
		return true;
	if (r < 0)
		str_copy(why, "cannot check who you are", sizeof(why));
	if (log_ratelimit_allow(&adm->srv->site.refusals, uv_now(adm->srv->site.loop)))
		log_warn("admin: uid %lu refused: %s", uid, why);
	if (admin_reply_refuse(why, msg, sizeof(msg), &len) == 0)
		send(fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	return false;
}

static void
add_conn(struct admin *adm, int fd, unsigned long uid)
{
	struct admin_conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		close(fd);
		return;
	}
	c->adm = adm;
	c->fd = fd;
	c->uid = uid;
	c->next = adm->conns;
	adm->conns = c;
	adm->nconns++;
	uv_poll_init(adm->srv->site.loop, &c->poll, fd);
	uv_timer_init(adm->srv->site.loop, &c->timer);
	c->poll.data = c->timer.data = c;
	uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, on_request);
	uv_timer_start(&c->timer, on_timeout, ADMIN_REQUEST_TIMEOUT_MS, 0);
}

/* A connection: served when its peer may, told why not otherwise. */
static void
take(void *arg, int fd)
{
	struct admin *adm = arg;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (adm->nconns >= ADMIN_CONNECTIONS_MAX ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    !permitted(adm, fd, (unsigned long)cred.uid)) {
		close(fd);
		return;
	}
	add_conn(adm, fd, (unsigned long)cred.uid);
}

int
admin_open(struct server *srv)
{
	struct addr_spec a = {.kind = ADDR_UNIX};
	struct admin *adm;

	if (srv->site.cfg->admin_socket[0] == '\0')
		return 0;
	str_copy(a.path, srv->site.cfg->admin_socket, sizeof(a.path));
	if ((adm = calloc(1, sizeof(*adm))) == NULL) {
		log_error("out of memory");
		return -1;
	}
	adm->srv = srv;
	adm->acc = acceptor_open(srv->site.loop, srv->site.priv, &a, PRIV_SOCKET_ADMIN,
	                         "admin socket", take, adm);
	if (adm->acc == NULL) {
		free(adm);
		return -1;
	}
	srv->admin = adm;
	/* The monitor gave worker K its own, named after the configured one. */
	if (priv_shared(srv->site.priv) && srv->site.priv->index > 0)
		log_info("this worker's admin socket is %s.%u", a.path, srv->site.priv->index);
	return 0;
}

void
admin_close(struct server *srv)
{
	struct admin *adm = srv->admin;

	if (adm == NULL)
		return;
	while (adm->conns != NULL)
		drop_conn(adm->conns);
	acceptor_close(adm->acc);
	free(adm);
	srv->admin = NULL;
}
