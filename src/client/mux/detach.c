/*
 * A detachable session (docs/PROTOCOL.md section 12), client side: the
 * count of session frames both ways, copies of ours until fived's
 * RECEIVED covers them, RECEIVED of our own, a watch on the connection,
 * and, when it breaks, a new connection that ATTACHes and goes on where
 * the old one stopped.  The streams above see a pause, nothing more.
 */
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/dialect/text.h"
#include "client/mux/mux.h"
#include "client/transport/conn.h"
#include "client/transport/seal.h"
#include "common/keyfile.h"
#include "common/util.h"
#include "proto/line.h"
#include "proto/mux.h"
#include "proto/resume.h"

/* How to reach fived again: the first connection's options, their strings copied. */
struct mux_redial {
	char *host;
	struct five_options o; /* its strings are the members below */
	char *port, *known_hosts, *given_key, *tls_certificate, *tls_key;
	char proved_key[KEYFILE_B64_LEN]; /* sealed: the server key the first handshake proved */
};

/* ATTACH's refusals that no later try can change (section 12.5). */
static const char *const final_refusals[] = {
        "unknown session",     "not permitted",         "resume point lost",
        "encryption required", "command not supported",
};

static int
copy_string(const char *in, char **out)
{
	*out = NULL;
	return in == NULL || (*out = strdup(in)) != NULL ? 0 : -1;
}

void
mux_redial_free(struct mux_redial *d)
{
	if (d == NULL)
		return;
	free(d->host);
	free(d->port);
	free(d->known_hosts);
	free(d->given_key);
	free(d->tls_certificate);
	free(d->tls_key);
	free(d);
}

struct mux_redial *
mux_redial_new(const char *host, const struct five_options *o, const struct five_conn *c,
               struct five_error *err)
{
	struct mux_redial *d = calloc(1, sizeof(*d));

	if (d == NULL || copy_string(host, &d->host) != 0 || copy_string(o->port, &d->port) != 0 ||
	    copy_string(o->known_hosts, &d->known_hosts) != 0 ||
	    copy_string(o->server_key, &d->given_key) != 0 ||
	    copy_string(o->tls_certificate, &d->tls_certificate) != 0 ||
	    copy_string(o->tls_key, &d->tls_key) != 0) {
		mux_redial_free(d);
		five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
		return NULL;
	}
	five_options_init(&d->o);
	d->o.port = d->port;
	d->o.timeout_ms = o->timeout_ms;
	d->o.family = o->family;
	d->o.transport = o->transport;
	d->o.known_hosts = d->known_hosts;
	d->o.server_key = d->given_key;
	d->o.tls_certificate = d->tls_certificate;
	d->o.tls_key = d->tls_key;
	/*
	 * The ticket proves the session: no authentication, no prompt.  A
	 * sealed server must prove the very key the first one did.
	 */
	if (c->seal != NULL && c->seal->tls == NULL && c->has_server_pk) {
		keyfile_b64(c->server_pk, d->proved_key);
		d->o.server_key = d->proved_key;
	}
	return d;
}

void
mux_on_resume(struct five_session *s, mux_resume_fn fn, void *arg)
{
	pthread_mutex_lock(&s->lock);
	s->on_resume = fn;
	s->on_resume_arg = arg;
	pthread_mutex_unlock(&s->lock);
}

static int
bad(struct five_session *s, const char *why)
{
	mux_fail(s, FIVE_ERR_PROTOCOL, why);
	return -1;
}

static int
send_received(struct five_session *s)
{
	uint8_t frame[MUX_HEADER_LEN + MUX_RECEIVED_LEN];

	if (mux_send_frame(s, frame, mux_encode_received(frame, sizeof(frame), s->rx_count)) != 0)
		return -1;
	s->rx_reported = s->rx_count;
	s->received_due = 0;
	return 0;
}

int
mux_resume_answer(struct five_session *s, const struct mux_frame *f)
{
	if (f->u.detach.code != MUX_DETACH_GRANTED) {
		s->resume = MUX_RESUME_REFUSED;
		str_copy(s->refusal, f->u.detach.reason[0] != '\0' ? f->u.detach.reason : "refused",
		         sizeof(s->refusal));
		/* Nothing will be sent again. */
		buf_free(&s->copies);
		s->copies_base = s->tx_count;
		return 0;
	}
	s->resume = MUX_RESUME_ON;
	memcpy(s->ticket, f->u.detach.ticket, sizeof(s->ticket));
	s->detach_timeout_s = f->u.detach.timeout_s;
	/* What came before the grant is owed a RECEIVED too. */
	if (s->rx_count > s->rx_reported)
		s->received_due = monotonic_ms() + MUX_RECEIVED_DELAY_MS;
	return 0;
}

int
mux_resume_received(struct five_session *s, uint64_t count)
{
	if (s->resume != MUX_RESUME_ON)
		return bad(s, "protocol error: RECEIVED in a session that is not detachable");
	/* Section 12.3: never smaller than the last, never more than we sent. */
	if (count < s->copies_base || count > s->tx_count)
		return bad(s, "protocol error: bad RECEIVED");
	buf_consume(&s->copies, (size_t)(count - s->copies_base));
	s->copies_base = count;
	return 0;
}

int
mux_resume_heard(struct five_session *s, const struct mux_frame *f)
{
	uint64_t now = monotonic_ms();

	s->last_rx_at = now;
	if (!mux_type_counted(f->type))
		return 0;
	s->rx_count += MUX_HEADER_LEN + f->len;
	if (s->resume != MUX_RESUME_ON)
		return 0;
	if (s->rx_count - s->rx_reported >= MUX_RECEIVED_EVERY)
		return send_received(s);
	if (s->received_due == 0)
		s->received_due = now + MUX_RECEIVED_DELAY_MS;
	return 0;
}

int
mux_resume_tick(struct five_session *s)
{
	uint64_t now = monotonic_ms();

	if (s->resume != MUX_RESUME_ON || s->broken || s->dead)
		return 0;
	if (now - s->last_rx_at >= MUX_SILENCE_MS) {
		mux_broken(s, FIVE_ERR_CONNECT, "no frame from fived for 30 seconds");
		return 0;
	}
	if (s->received_due == 0 || now < s->received_due)
		return 0;
	return send_received(s);
}

int
mux_resume_wait_ms(const struct five_session *s)
{
	uint64_t now = monotonic_ms(), at;

	if (s->resume != MUX_RESUME_ON)
		return -1;
	at = s->last_rx_at + MUX_SILENCE_MS;
	if (s->received_due != 0 && s->received_due < at)
		at = s->received_due;
	return at > now ? (int)(at - now) : 0;
}

/* The broken connection goes: what it held is sent again, or comes again. */
static void
drop_conn(struct five_session *s)
{
	if (s->seal != NULL)
		s->seal->ended = true; /* no FINAL: the connection is gone */
	five_seal_free(s->seal);
	s->seal = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	sodium_memzero(s->raw, sizeof(s->raw));
	sodium_memzero(s->in, sizeof(s->in));
	s->raw_len = s->in_len = s->wire_len = 0;
	buf_consume(&s->out, s->out.len);
	s->sock_eof = s->final_seen = s->ping_out = false;
	s->next_ping = 0;
}

/* A connection that attached: or -1 with err filled, nothing left open. */
struct attached {
	struct five_conn c;
	uint64_t received; /* fived's count */
	uint32_t timeout_s;
	uint8_t ticket[MUX_TICKET_LEN];
};

/* Dials, asks ATTACH, reads the reply.  Runs without the session's lock. */
static int
attach(const struct mux_redial *d, const struct five_options *o, const char *line, size_t len,
       struct attached *a, struct five_error *err)
{
	char reply[FIVE_LINE_MAX];
	const char *text;
	int ok, r = -1;

	/* The line rides in the sealed handshake; nothing goes behind it until the reply. */
	if (five_text_open(&a->c, d->host, o, line, len, err) != 0)
		return -1;
	if (five_conn_read_line(&a->c, reply, sizeof(reply), err) != 0)
		goto out;
	if (reply_parse(reply, &ok, &text) != 0)
		five_fail(err, FIVE_ERR_PROTOCOL, "not a reply to ATTACH: \"%.64s\"", reply);
	else if (!ok)
		five_fail(err, FIVE_ERR_REFUSED, "%s", text[0] != '\0' ? text : "refused");
	else if (resume_attached_parse(text, &a->received, &a->timeout_s, a->ticket) != 0)
		five_fail(err, FIVE_ERR_PROTOCOL, "not an ATTACHED reply");
	else
		r = 0;
out:
	sodium_memzero(reply, sizeof(reply));
	if (r != 0)
		five_conn_close(&a->c);
	return r;
}

static bool
final_refusal(const struct five_error *err)
{
	size_t i;

	if (err->step == FIVE_ERR_TRUST || err->step == FIVE_ERR_USAGE)
		return true;
	for (i = 0; err->step == FIVE_ERR_REFUSED && i < ARRAY_LEN(final_refusals); i++)
		if (strcmp(err->message, final_refusals[i]) == 0)
			return true;
	return false;
}

/*
 * The attached connection becomes the session's: fived's frames after
 * our count come first on it; ours go after fived's count, behind a
 * RECEIVED that tells fived we have the new ticket (section 12.5).
 */
static int
install(struct five_session *s, struct attached *a, struct five_error *err)
{
	if (a->received < s->copies_base || a->received > s->tx_count) {
		five_conn_close(&a->c);
		return five_fail(
		        err, FIVE_ERR_PROTOCOL,
		        "fived's resume point %llu is not one this side has (%llu to %llu)",
		        (unsigned long long)a->received, (unsigned long long)s->copies_base,
		        (unsigned long long)s->tx_count);
	}
	buf_consume(&s->copies, (size_t)(a->received - s->copies_base));
	s->copies_base = a->received;
	memcpy(s->ticket, a->ticket, sizeof(s->ticket));
	s->detach_timeout_s = a->timeout_s;
	if (mux_take_conn(s, &a->c, err) != 0)
		return -1;
	if (send_received(s) != 0)
		return five_fail(err, s->error.step, "%s", s->error.message);
	/* Already counted and copied: only queued again. */
	if (s->copies.len > 0 && buf_append(&s->out, s->copies.data, s->copies.len) != 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "out of memory for frames");
	s->broken = false;
	s->last_rx_at = monotonic_ms();
	if (mux_read_ahead(s) != 0)
		return five_fail(err, s->error.step, "%s", s->error.message);
	return 0;
}

/* Waits until then on the wake pipe, the lock released: five_session_close cuts it short. */
static void
pause_until(struct five_session *s, uint64_t then)
{
	struct pollfd pfd = {.fd = s->wake[0], .events = POLLIN};
	uint8_t b[64];
	uint64_t now;

	while (!s->closing && (now = monotonic_ms()) < then) {
		pthread_mutex_unlock(&s->lock);
		/* Other wake-ups (a new stream, say) wait for the engine's next round. */
		if (poll(&pfd, 1, (int)(then - now)) > 0)
			while (read(s->wake[0], b, sizeof(b)) > 0)
				;
		pthread_mutex_lock(&s->lock);
	}
}

/*
 * One try: 1 attached, 0 to try again (err says why not), -1 for a
 * refusal no later try can change.  The lock is released while it dials:
 * callers of five_session_* touch streams only, never the connection,
 * the counts or the ticket.
 */
static int
try_attach(struct five_session *s, uint64_t deadline, struct five_error *err)
{
	struct five_options o = s->redial->o;
	struct attached a;
	char line[RESUME_ATTACH_LINE_MAX];
	uint64_t now = monotonic_ms(), left = deadline > now ? deadline - now : 0;
	size_t len = resume_attach_line(line, sizeof(line), s->ticket, s->rx_count);
	int r;

	if (len == 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "cannot make the ATTACH line");
	/* No try outlives the detach timeout by more than a moment. */
	if (left < (uint64_t)o.timeout_ms)
		o.timeout_ms = (int)left + 1;
	memset(&a, 0, sizeof(a));
	pthread_mutex_unlock(&s->lock);
	r = attach(s->redial, &o, line, len, &a, err);
	pthread_mutex_lock(&s->lock);
	sodium_memzero(line, sizeof(line));
	if (r != 0)
		return final_refusal(err) ? -1 : 0;
	if (s->closing) {
		five_conn_close(&a.c);
		r = 0;
	} else {
		r = install(s, &a, err) == 0 ? 1 : -1;
	}
	sodium_memzero(a.ticket, sizeof(a.ticket));
	return r;
}

void
mux_reattach(struct five_session *s)
{
	uint64_t deadline = s->broken_at + (uint64_t)s->detach_timeout_s * 1000;
	uint64_t delay = MUX_RETRY_FIRST_MS;
	struct five_error err = {.step = FIVE_ERR_CONNECT};
	char why[2 * FIVE_LINE_MAX];
	int r = 0;

	drop_conn(s);
	if (s->on_resume != NULL)
		s->on_resume(s->on_resume_arg, false, s->broke_why, 0);
	str_copy(err.message, s->broke_why, sizeof(err.message));
	while (!s->closing && monotonic_ms() < deadline &&
	       (r = try_attach(s, deadline, &err)) == 0) {
		pause_until(s,
		            monotonic_ms() + delay < deadline ? monotonic_ms() + delay : deadline);
		delay = delay * 2 < MUX_RETRY_MAX_MS ? delay * 2 : MUX_RETRY_MAX_MS;
	}
	if (r == 1) {
		if (s->on_resume != NULL)
			s->on_resume(s->on_resume_arg, true, s->broke_why,
			             monotonic_ms() - s->broken_at);
		return;
	}
	if (s->closing)
		snprintf(why, sizeof(why), "the session was closed while detached");
	else if (r < 0)
		snprintf(why, sizeof(why), "the session could not be attached again: %s",
		         err.message);
	else
		snprintf(why, sizeof(why),
		         "the connection to fived broke (%s) and the session could not be attached "
		         "again within its detach timeout, %u s: %s",
		         s->broke_why, (unsigned)s->detach_timeout_s, err.message);
	/* Out of time, whatever the last try met: the connection is what failed. */
	mux_fail(s, s->closing ? FIVE_ERR_USAGE : r < 0 ? err.step : FIVE_ERR_CONNECT, why);
}
