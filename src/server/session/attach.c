/*
 * ATTACH (attach.h).  The attaching connection's session (the new one)
 * adopts the old one's mux, with its streams and backends, and takes its
 * id, identity, configuration, virtual host and start: to the audit log
 * and to fivectl it is the same session, on a new connection.  The old
 * session, detached or still connected (make before break), then ends
 * without a record of its own and frees itself.
 */
#include "server/session/attach.h"

#include <jansson.h>
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/line.h"
#include "proto/proxy.h"
#include "proto/resume.h"
#include "server/policy/metrics.h"
#include "server/policy/penalty.h"
#include "server/policy/policy.h"
#include "server/privsep/priv.h"
#include "server/session/internal.h"
#include "server/session/muxsession.h"

/* "+ ATTACHED received timeout ticket\r\n" */
#define ATTACHED_REPLY_MAX 128

/* IPv4 /24 and IPv6 /64, for attach_from = network. */
#define NETWORK_BYTES_V4 3
#define NETWORK_BYTES_V6 8

/* What another worker's connection is refused but ATTACH: it passes on nothing else. */
#define FROM_WORKER_ONLY "only ATTACH comes from another worker"

/* The longest names another worker's TLVs may carry: "sealed", "password". */
#define TRANSPORT_NAME_MAX 15
#define METHOD_NAME_MAX    15

static void
refuse(struct session *s, const char *reason)
{
	session_audit(s, "attach_refused", json_pack("{s:s}", "reason", reason));
	session_refuse(s, reason);
}

/* A ticket that names no session is a failed authentication: the source's penalty grows. */
static void
unknown(struct session *s)
{
	struct site *site = s->site;

	s->auth_failures++;
	metrics_auth_failed(&site->metrics, AUTH_NONE);
	penalty_fail(site->source_failures, s->source_key, sizeof(s->source_key),
	             uv_now(site->loop));
	refuse(s, "unknown session");
}

/*
 * With several workers: whether the ticket names another worker's session
 * (new_ticket).  A first byte that names no worker is a guess like any
 * other; and what another worker passed on is never passed on again.
 */
static bool
held_elsewhere(const struct session *s)
{
	const struct priv *p = s->site->priv;
	uint8_t worker = s->attach_ticket[0];

	return priv_shared(p) && !s->from_worker && worker < p->nworkers && worker != p->index;
}

/*
 * Passes the ATTACH on to the worker its ticket names: the monitor
 * connects this worker to that one, whose answer and frames then come
 * back through this connection's transport (attach_passed_on).
 */
static void
pass_on(struct session *s)
{
	struct site *site = s->site;

	session_audit(s, "attach_passed_on",
	              json_pack("{s:i}", "worker", (int)s->attach_ticket[0]));
	session_start_service(s, &site->workers[s->attach_ticket[0]]);
}

/* The live session the ticket names, other than s. */
static struct session *
find(struct session *s, const uint8_t ticket[MUX_TICKET_LEN])
{
	struct session *t;

	for (t = s->site->sessions; t != NULL; t = t->next)
		if (t != s && (t->state == S_MUX || t->state == S_DETACHED) && t->mux != NULL &&
		    mux_detachable(t->mux) && mux_ticket_is(t->mux, ticket))
			return t;
	return NULL;
}

/* The attaching connection's proven identity, if any, must be the session's. */
static bool
same_identity(const struct session *s, const struct session *old)
{
	if (s->caller == NULL)
		return true;
	return old->caller != NULL && strcmp(s->caller->identity, old->caller->identity) == 0;
}

/* The first n bytes of both addresses (of one family) agree. */
static bool
same_prefix(const struct sockaddr_storage *a, const struct sockaddr_storage *b, bool whole)
{
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)a;
	const struct sockaddr_in *b4 = (const struct sockaddr_in *)b;
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
	const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)b;

	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return memcmp(&a4->sin_addr, &b4->sin_addr,
		              whole ? sizeof(a4->sin_addr) : NETWORK_BYTES_V4) == 0;
	if (a->ss_family == AF_INET6)
		return memcmp(&a6->sin6_addr, &b6->sin6_addr,
		              whole ? sizeof(a6->sin6_addr) : NETWORK_BYTES_V6) == 0;
	return false;
}

static bool
from_allowed(const struct session *s, const struct session *old)
{
	switch (s->cfg->attach_from) {
	case ATTACH_FROM_ANY:
		return true;
	case ATTACH_FROM_ADDRESS:
		return s->peer_is_ip == old->peer_is_ip &&
		       (!s->peer_is_ip || same_prefix(&s->peer, &old->peer, true));
	case ATTACH_FROM_NETWORK:
		return s->peer_is_ip == old->peer_is_ip &&
		       (!s->peer_is_ip || same_prefix(&s->peer, &old->peer, false));
	}
	return false;
}

/* s becomes the session old was: its id, identity, configuration, vhost, start and mux. */
static void
take_over(struct session *s, struct session *old)
{
	struct config *cfg = s->cfg;

	memcpy(s->id, old->id, sizeof(s->id));
	caller_free(s->caller);
	s->caller = old->caller;
	old->caller = NULL;
	/* The vhost lives in the configuration old started with: it comes along. */
	s->cfg = old->cfg;
	old->cfg = cfg;
	s->vhost = old->vhost;
	s->started_ms = old->started_ms;
	s->dialect_known = true;
	s->mux = old->mux;
	old->mux = NULL;
	/* Beyond its source's limit for this: old's place is given back as it retires. */
	s->attach_only = NULL;
	mux_set_owner(s->mux, s);
	session_drop_connection(old);
	session_retire(old);
}

static void
attach_to(struct session *s, struct session *old)
{
	char reply[ATTACHED_REPLY_MAX], connection[SESSION_ID_LEN + 1];
	uint8_t ticket[MUX_TICKET_LEN];
	uint32_t timeout_s;
	uint64_t received;
	size_t n;
	bool was_detached = old->state == S_DETACHED;

	/*
	 * Make-before-break: what the old connection brought of a frame not yet
	 * whole goes, as at a break; the client sends it again from the count
	 * ATTACHED names, which has only whole frames.
	 */
	if (!was_detached)
		mux_detach(old->mux);
	received = mux_rekey(old->mux, s->attach_ticket, ticket, &timeout_s);
	n = resume_attached_reply(reply, sizeof(reply), received, timeout_s, ticket);
	sodium_memzero(ticket, sizeof(ticket));
	str_copy(connection, s->id, sizeof(connection));
	take_over(s, old);
	uv_timer_stop(&s->timer);
	if (n == 0 || session_send(s, reply, n) != 0) {
		sodium_memzero(reply, sizeof(reply));
		session_close(s, "out of memory");
		return;
	}
	sodium_memzero(reply, sizeof(reply));
	session_set_state(s, S_MUX);
	log_info("session %s: attached from %s", s->id, s->peer_is_ip ? s->peer_ip : "local");
	session_audit(s, "attached",
	              json_pack("{s:s,s:s,s:b,s:I,s:I}", "transport", session_transport_name(s),
	                        "connection", connection, "was_detached", was_detached, "received",
	                        (json_int_t)received, "resumed_from",
	                        (json_int_t)s->attach_received));
	if (mux_attached(s->mux, s->attach_received) != 0) {
		session_close(s, "out of memory");
		return;
	}
	session_mux_take_held(s);
}

/* The checks of section 12.5, in the order of its table. */
static void
attach_now(struct session *s)
{
	struct session *old = find(s, s->attach_ticket);

	if (old == NULL)
		unknown(s);
	else if (!same_identity(s, old) || !from_allowed(s, old))
		refuse(s, "not permitted");
	else if (!mux_resume_point(old->mux, s->attach_received)) {
		refuse(s, "resume point lost");
		session_close(old, "resume point lost");
	} else
		attach_to(s, old);
	sodium_memzero(s->attach_ticket, sizeof(s->attach_ticket));
}

static void
on_delay(uv_timer_t *t)
{
	struct session *s = t->data;

	session_set_state(s, S_COMMAND);
	attach_now(s);
}

/* Whether this configuration takes ATTACH from anyone it gave no ticket to (12.5). */
static bool
supported(const struct session *s)
{
	return s->cfg->multiplex && s->cfg->detachable;
}

/*
 * A ticket that crossed the network in plaintext is anyone's who saw it:
 * its session ends, as a credential found exposed is withdrawn.
 */
static void
exposed(struct session *s, struct session *old)
{
	log_info("session %s: its ticket came in plaintext from %s: ending it", old->id,
	         s->peer_is_ip ? s->peer_ip : "local");
	session_close(old, "ticket sent in plaintext");
}

/*
 * A session once detachable stays attachable after a reload that turned
 * detachable (or multiplex) off: its ticket was granted.  A ticket that
 * names a live session is taken at once; only a wrong one waits out the
 * source's penalty (auth.c), so that one bad ticket from behind a shared
 * address does not slow every rightful ATTACH from it.
 */
void
attach_command(struct session *s, const struct cmd *c)
{
	struct site *site = s->site;
	struct session *old = NULL;
	enum resume_attach_status st;
	uint64_t delay;

	st = resume_attach_parse(c->args[0], c->args[1], s->attach_ticket, &s->attach_received);
	if (st == RESUME_ATTACH_OK)
		old = find(s, s->attach_ticket);
	else if (!supported(s)) {
		refuse(s, "command not supported");
		goto wipe;
	}
	/*
	 * detach_plaintext lets a plaintext session be attached in plaintext,
	 * never an encrypted one: its streams (encryption = required among
	 * them) would go on in the clear.
	 */
	if (!s->encrypted && (!s->cfg->detach_plaintext || (old != NULL && old->encrypted))) {
		if (old != NULL)
			exposed(s, old);
		refuse(s, "encryption required");
		goto wipe;
	}
	if (old == NULL && !supported(s)) {
		refuse(s, "command not supported");
		goto wipe;
	}
	/* Not a ticket guessed but a malformed line: said so, with no penalty. */
	if (st != RESUME_ATTACH_OK) {
		refuse(s, st == RESUME_ATTACH_BAD_TICKET ? "invalid ticket" : "invalid count");
		goto wipe;
	}
	/* The worker that holds it judges it (its penalty too). */
	if (old == NULL && held_elsewhere(s)) {
		pass_on(s);
		return;
	}
	delay = old != NULL ? 0
	                    : penalty_delay(site->source_failures, s->source_key,
	                                    sizeof(s->source_key), uv_now(site->loop));
	if (delay > 0) {
		session_set_state(s, S_AUTH_WAIT);
		uv_timer_start(&s->timer, on_delay, delay, 0);
		return;
	}
	attach_now(s);
	return;
wipe:
	sodium_memzero(s->attach_ticket, sizeof(s->attach_ticket));
}

/*
 * The worker that holds the session answers at once, or after its
 * source's penalty (at most PENALTY_MAX_MS): one that has not answered
 * within its request_timeout beyond that is stuck, and its client is not
 * left waiting, nor its place here taken, for ever.
 */
static void
on_holder_silent(uv_timer_t *t)
{
	struct session *s = t->data;
	uint64_t in, out;

	session_bytes(s, &in, &out);
	if (out > 0)
		return;
	log_warn("session %s: worker %u did not answer the ATTACH passed on to it", s->id,
	         s->svc->worker);
	session_refuse(s, "server busy");
}

/*
 * The worker that holds the session is reached (err 0) or not: it is
 * sent a PROXY v2 header with the client's addresses, what carries the
 * client (PP2_TYPE_FIVE_TRANSPORT) and the identity it proved, then the
 * ATTACH line; from then on this session carries bytes both ways.
 */
void
attach_passed_on(struct session *s, int err)
{
	char line[RESUME_ATTACH_LINE_MAX];
	uint8_t out[PROXY_V2_MAX + RESUME_ATTACH_LINE_MAX];
	struct backend_who who;
	size_t len;
	int header;

	if (err != 0) {
		log_warn("session %s: cannot reach worker %u: %s", s->id, s->svc->worker,
		         uv_strerror(err));
		session_refuse(s, "server busy");
		goto wipe;
	}
	session_who(s, s->svc, s->caller, s->vhost, 0, &who);
	header = session_proxy_header(s, s->svc, &who, out, PROXY_V2_MAX);
	if (header < 0 || (len = resume_attach_line(line, sizeof(line), s->attach_ticket,
	                                            s->attach_received)) == 0) {
		session_refuse(s, "server busy");
		goto wipe;
	}
	memcpy(out + header, line, len);
	session_start_relay(s, out, (size_t)header + len, false);
	if (s->state == S_RELAY)
		uv_timer_start(&s->timer, on_holder_silent,
		               PENALTY_MAX_MS + s->cfg->request_timeout_ms, 0);
	sodium_memzero(line, sizeof(line));
	sodium_memzero(out, sizeof(out));
wipe:
	sodium_memzero(s->attach_ticket, sizeof(s->attach_ticket));
}

/* A TLV's value, copied as text into out (size bytes): 0, or -1 when too long or not text. */
static int
tlv_text(const struct session *s, const struct proxy_in_value *v, char *out, size_t size)
{
	if (v->len >= size || memchr(s->in.data + v->at, '\0', v->len) != NULL)
		return -1;
	memcpy(out, s->in.data + v->at, v->len);
	out[v->len] = '\0';
	return 0;
}

/* The transport a worker names, as the static name transports have; NULL for none. */
static const char *
transport_named(const char *name)
{
	unsigned i;

	for (i = 0; i < METRICS_TRANSPORTS; i++)
		if (strcmp(name, metrics_transport_names[i]) == 0)
			return metrics_transport_names[i];
	return NULL;
}

int
attach_from_worker(struct session *s, const struct proxy_in *h)
{
	char transport[TRANSPORT_NAME_MAX + 1], identity[AUTH_IDENTITY_MAX + 1];
	char method[METHOD_NAME_MAX + 1];
	enum auth_method m;

	if (!h->transport.present ||
	    tlv_text(s, &h->transport, transport, sizeof(transport)) != 0 ||
	    (s->transport_was = transport_named(transport)) == NULL ||
	    h->identity.present != h->method.present)
		return -1;
	s->encrypted = strcmp(s->transport_was, "plain") != 0;
	s->attach_only = FROM_WORKER_ONLY;
	if (!h->identity.present)
		return 0;
	if (tlv_text(s, &h->identity, identity, sizeof(identity)) != 0 ||
	    tlv_text(s, &h->method, method, sizeof(method)) != 0 ||
	    auth_method_from_name(method, &m) != 0 ||
	    (s->caller = caller_new(identity, m, s->site->priv, s->cfg)) == NULL)
		return -1;
	return 0;
}
