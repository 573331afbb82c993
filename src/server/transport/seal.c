#include "server/transport/seal.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "crypto/aesgcm.h"
#include "crypto/noise.h"
#include "crypto/record.h"
#include "proto/replay.h"
#include "proto/sealed.h"
#include "server/conf/clients.h"
#include "server/conf/config.h"
#include "server/policy/chunk.h"
#include "server/policy/earlydata.h"
#include "server/policy/governor.h"
#include "server/policy/policy.h"
#include "server/policy/site.h"
#include "server/policy/store.h"
#include "server/privsep/priv.h"
#include "server/transport/transport.h"

enum seal_step {
	STEP_INITIATION, /* assembling the INITIATION */
	STEP_STORE,      /* IK: the store decides whether early data is acted on */
	STEP_FINISH,     /* XX: assembling the FINISH */
	STEP_OPEN,       /* records both ways */
	STEP_DONE,       /* answered with COOKIE or REJECT; nothing more is read */
};

/* A session's sealed transport.  Made by seal_new; owned by the session, freed by its free op. */
struct seal {
	struct transport base; /* first: the transport ops see a struct transport */
	enum seal_step step;
	unsigned pattern;
	enum record_suite suite; /* chosen from the INITIATION's offer */
	struct noise_handshake hs;
	struct buf msg; /* the handshake message being assembled */
	struct record_sender tx;
	struct record_receiver rx;
	bool tx_ready;
	uint64_t sent;   /* plaintext sealed so far, for the size of records */
	bool final_seen; /* the client ended its stream properly */
	bool opened;     /* the session has learned the handshake is done */
	uint8_t binding[NOISE_HASHLEN];
	struct caller *pending; /* the client's identity until it proves it is live; owned */
	/* STEP_STORE: the claim on the store, the identity and early data it decides on */
	struct store_claim *claim;
	struct caller *waiting; /* owned */
	uint8_t early[SEALED_MSG1_PAYLOAD_MAX];
	size_t early_len;
};

_Static_assert(EARLY_CLAIM_ID_LEN == STORE_ID_LEN, "a 0-RTT claim is a store claim");

static const struct transport_ops seal_ops;

static struct seal *
seal_of(struct transport *tr)
{
	return (struct seal *)tr;
}

static const struct transport_events *
up(const struct seal *z)
{
	return z->base.link.ev;
}

/* Bytes that go out as they are: handshake messages, the record header. */
static int
send_raw(struct seal *z, const void *data, size_t len)
{
	struct chunk *c = chunk_copy(&z->base.link.site->budget, data, len);

	return c != NULL ? up(z)->write(z->base.link.owner, c, len) : -1;
}

/* --- answers that end the session before any key exists ---------------- */

/*
 * A server that is dark says nothing; otherwise some refusals of an
 * INITIATION have a REJECT.  After our RESPONSE the client reads records:
 * a malformed FINISH is closed on without a word (PROTOCOL.md 6.4).
 */
static int
refuse(struct seal *z, int status, const char *why)
{
	uint8_t out[SEALED_REJECT_LEN];
	uint8_t code = sealed_reject_code(status);
	size_t n;

	log_debug("session %s: sealed: %s", z->base.link.id, why);
	if (z->base.link.cfg->dark || code == 0 || z->step != STEP_INITIATION ||
	    sealed_reject_encode(code, out, sizeof(out), &n) != 0)
		return -1;
	z->step = STEP_DONE;
	send_raw(z, out, n);
	up(z)->finish(z->base.link.owner, why);
	return 0;
}

static int
send_cookie(struct seal *z, const struct sealed_initiation *m, const uint8_t source[16])
{
	struct site *site = z->base.link.site;
	const struct sealed_server_keys *k = &site->keys;
	uint8_t cookie[SEALED_COOKIE_LEN], mac1[SEALED_MAC_LEN], out[SEALED_COOKIE_MSG_LEN];
	size_t n;

	/* The work is tied to the initiation as the client first sent it. */
	if (m->flags & SEALED_FLAG_COOKIE)
		sealed_initiation_original_mac1(
		        m, m->pattern == SEALED_IK ? k->mac1_ik : k->mac1_xx, mac1);
	else
		memcpy(mac1, m->mac1, sizeof(mac1));
	sealed_cookie_compute(site->gov.secrets.cur, source, m->epub, site->gov.secrets.bucket,
	                      cookie);
	if (sealed_cookie_seal(m->pattern == SEALED_IK ? k->cookie_ik : k->cookie_xx, cookie, mac1,
	                       governor_difficulty(&site->gov, z->base.link.cfg), out, sizeof(out),
	                       &n) != 0)
		return -1;
	site->gov.c.cookies++;
	z->step = STEP_DONE;
	/* Stateless: this connection ends; the client comes back with cookie and work. */
	send_raw(z, out, n);
	up(z)->finish(z->base.link.owner, "cookie sent");
	return 0;
}

/* --- checks before any Diffie-Hellman ---------------------------------- */

/*
 * The checks in their order, cheapest first: whether to go on to the
 * handshake, or the initiation was answered (a cookie), or is dropped.
 */
enum admission { ADMITTED, ANSWERED, DROPPED };

/* A COOKIE answers the initiation, unless it could not be sent. */
static enum admission
cookie_answer(struct seal *z, const struct sealed_initiation *m, const uint8_t *source)
{
	return send_cookie(z, m, source) == 0 ? ANSWERED : DROPPED;
}

static enum admission
admit(struct seal *z, const struct sealed_initiation *m)
{
	struct site *site = z->base.link.site;
	struct governor *g = &site->gov;
	const struct sealed_server_keys *k = &site->keys;
	uint8_t source[SEALED_SOURCE_LEN], cookie[SEALED_COOKIE_LEN], fp[REPLAY_FP_LEN];
	const uint8_t *mac1_key = m->pattern == SEALED_IK ? k->mac1_ik : k->mac1_xx;
	bool with_cookie = (m->flags & SEALED_FLAG_COOKIE) != 0, cookie_valid = false;
	uint64_t now = (uint64_t)time(NULL);

	if (sealed_initiation_check_mac1(m, mac1_key) != 0) {
		g->c.dropped_mac++;
		return DROPPED;
	}
	sealed_source(z->base.link.peer, source);
	/* The tick rotates the secrets too, but a cookie made or checked now must use now's. */
	governor_secrets_update(g, z->base.link.cfg, now);
	if (governor_wants_cookie(g, z->base.link.cfg)) {
		if (!with_cookie)
			return cookie_answer(z, m, source);
		if (sealed_initiation_check_cookie(m, g->secrets.cur, g->secrets.prev, source, now,
		                                   cookie) != 0) {
			g->c.dropped_cookie++;
			return cookie_answer(z, m, source);
		}
		if (sealed_initiation_check_pow(m, mac1_key, cookie,
		                                governor_difficulty(g, z->base.link.cfg)) != 0) {
			g->c.dropped_work++;
			return cookie_answer(z, m, source);
		}
		cookie_valid = true;
	}
	/* The larger budget is for a checked cookie: anyone can set the flag. */
	if (!governor_admit(g, z->base.link.cfg, z->base.link.source_key, cookie_valid,
	                    uv_now(site->loop))) {
		g->c.dropped_rate++;
		return DROPPED;
	}
	replay_fingerprint(m->epub, SEALED_EPHEMERAL_LEN, fp);
	if (replay_check_and_add(g->replay, fp, now) != 1) {
		g->c.dropped_replay++;
		return DROPPED;
	}
	return ADMITTED;
}

/* --- after the handshake ------------------------------------------------- */

/*
 * A client key listed in authorized_clients is authenticated by the
 * handshake itself: its caller, or NULL.  It becomes the session's only
 * once the handshake has succeeded (open_records).
 */
static struct caller *
known_client(struct seal *z, const uint8_t pk[32])
{
	const char *identity = clients_identity(&z->base.link.site->clients, pk);

	return identity != NULL ? caller_new(identity, AUTH_EXTERNAL, z->base.link.site->priv,
	                                     z->base.link.cfg)
	                        : NULL;
}

/*
 * 0-RTT is safe only for a message that cannot be a replay: from a client
 * whose key we know, whose timestamp the early-data guard has never seen
 * acted on, on this node, since before any restart.
 */
static bool
fresh_timestamp(struct seal *z, const uint8_t pk[32], const uint8_t stamp[12])
{
	uint64_t sec;
	uint32_t nsec;

	return sealed_tai64n_decode(stamp, &sec, &nsec) == 0 &&
	       early_guard_admit(z->base.link.site->early, pk, sec, nsec, (uint64_t)time(NULL),
	                         uv_now(z->base.link.site->loop));
}

/*
 * The session learns the handshake is done, with its binding and the
 * client's identity (or none).  A session that ended as it learned it
 * leaves the seal in STEP_DONE.
 */
static void
report_opened(struct seal *z)
{
	struct caller *caller = z->pending;

	z->pending = NULL;
	z->opened = true;
	if (up(z)->opened(z->base.link.owner, z->binding, sizeof(z->binding), caller, NULL) != 0)
		z->step = STEP_DONE;
}

/*
 * Keys for the records, and our record header out right after msg; caller
 * (NULL, or the client's identity) is taken in every case.  The session
 * learns of it at once when the client is known to be live (live: its
 * FINISH, or early data the 0-RTT guard admitted), otherwise with the
 * client's first record: an IK INITIATION can be replayed by anyone who
 * recorded it, and only the client can follow it with a record.
 */
static int
open_records(struct seal *z, const uint8_t *msg, size_t len, struct caller *caller, bool live)
{
	struct noise_cipher send, recv;
	uint8_t out[SEALED_RESPONSE_MAX + RECORD_HEADER_MAX], header[RECORD_HEADER_MAX];
	size_t hlen;
	int r = -1;

	noise_handshake_hash(&z->hs, z->binding);
	if (noise_split(&z->hs, &send, &recv) != 0 ||
	    record_init_from_split(&z->tx, &z->rx, z->suite, &send, &recv, header, &hlen) != 0 ||
	    len + hlen > sizeof(out))
		goto out;
	log_debug("session %s: sealed records: %s", z->base.link.id, record_suite_name(z->suite));
	/* XX: FINISH has no answer, only our record header (AES-256-GCM: none). */
	if (len > 0)
		memcpy(out, msg, len);
	memcpy(out + len, header, hlen);
	if (len + hlen > 0 && send_raw(z, out, len + hlen) != 0)
		goto out;
	z->tx_ready = true;
	z->step = STEP_OPEN;
	z->base.link.site->gov.c.handshakes++;
	z->base.link.site->gov.pending--;
	r = 0;
	z->pending = caller;
	caller = NULL;
	if (live)
		report_opened(z);
out:
	caller_free(caller);
	noise_cipher_wipe(&send);
	noise_cipher_wipe(&recv);
	noise_handshake_wipe(&z->hs);
	return r;
}

/*
 * Writes the RESPONSE (message 2, payload flags); with IK also opens the
 * records, with caller (taken in every case; NULL with XX, whose client is
 * not known yet).
 */
static int
respond(struct seal *z, uint8_t flags, struct caller *caller)
{
	uint8_t payload[SEALED_RESPONSE_PAYLOAD_LEN], noise[SEALED_XX2_LEN];
	uint8_t msg[SEALED_RESPONSE_MAX];
	size_t nlen, mlen;

	if (sealed_response_payload_encode(z->suite, flags, payload) != 0 ||
	    noise_write_message(&z->hs, payload, sizeof(payload), noise, sizeof(noise), &nlen) !=
	            0 ||
	    sealed_response_encode(z->pattern, noise, nlen, msg, sizeof(msg), &mlen) != 0) {
		caller_free(caller);
		return -1;
	}
	if (z->pattern == SEALED_IK)
		return open_records(z, msg, mlen, caller, (flags & SEALED_FLAG_0RTT) != 0);
	caller_free(caller);
	if (send_raw(z, msg, mlen) != 0)
		return -1;
	z->step = STEP_FINISH;
	return 0;
}

/* --- the messages ----------------------------------------------------------- */

/*
 * The server's preference: seal_suites, or by default AES-256-GCM first
 * where this CPU runs it in hardware (a client offers it only where its own
 * does), and elsewhere XChaCha20-Poly1305 alone, which every client offers:
 * AES in software is slow, and on older CPUs not constant-time.
 */
static enum record_suite
choose_suite(const struct seal *z, uint16_t offered)
{
	static const enum record_suite hardware[] = {RECORD_SUITE_AES256GCM,
	                                             RECORD_SUITE_XCHACHA20POLY1305};
	static const enum record_suite software[] = {RECORD_SUITE_XCHACHA20POLY1305};
	const struct config *cfg = z->base.link.cfg;

	if (cfg->seal_suites_len > 0)
		return sealed_suite_choose(offered, cfg->seal_suites, cfg->seal_suites_len);
	return aesgcm_hardware() ? sealed_suite_choose(offered, hardware, ARRAY_LEN(hardware))
	                         : sealed_suite_choose(offered, software, ARRAY_LEN(software));
}

/*
 * The server's static key's X25519, by the monitor.  With a known client's
 * static key (IK's ss) the result is the same in every handshake with that
 * client: kept in its entry (clients.h), it spares the next handshakes a
 * round trip to the monitor.
 */
static int
static_dh(void *ctx, const uint8_t pub[32], bool peer_static, uint8_t shared[32])
{
	struct site *site = ctx;
	struct client_key *k = peer_static ? clients_find(&site->clients, pub) : NULL;

	if (k == NULL)
		return priv_dh(site->priv, pub, shared);
	if (clients_learn(k, priv_dh, site->priv) != 0)
		return -1;
	memcpy(shared, k->ss, sizeof(k->ss));
	return 0;
}

static int
noise_start(struct seal *z, const struct sealed_initiation *m)
{
	struct noise_static_ref key = {.dh = static_dh, .ctx = z->base.link.site};
	uint8_t prologue[SEALED_PROLOGUE_LEN];

	memcpy(key.pub, z->base.link.site->keys.pk, sizeof(key.pub));
	sealed_prologue(m->pattern, m->suites, m->noise_len, prologue);
	return noise_handshake_init_ref(&z->hs, sealed_noise_name(m->pattern), NOISE_RESPONDER,
	                                prologue, sizeof(prologue), &key, NULL);
}

/*
 * Reads the INITIATION's Noise message into payload (SEALED_MSG1_PAYLOAD_MAX
 * bytes, which p points into); with IK also the client's static key, and
 * whether its early data may be acted on now (*caller: the client's
 * identity when it is a known one).
 */
static int
read_initiation(struct seal *z, const struct sealed_initiation *m, uint8_t *payload,
                struct sealed_msg1_payload *p, struct caller **caller, bool *act_now,
                uint8_t client[32])
{
	size_t plen;

	if (noise_start(z, m) != 0 || noise_read_message(&z->hs, m->noise, m->noise_len, payload,
	                                                 SEALED_MSG1_PAYLOAD_MAX, &plen) != 0)
		return -1;
	if (m->pattern != SEALED_IK)
		return 0;
	if (sealed_msg1_payload_decode(payload, plen, p) != 0 ||
	    noise_remote_static(&z->hs, client) != 0)
		return -1;
	*caller = known_client(z, client);
	*act_now = *caller != NULL && fresh_timestamp(z, client, p->timestamp);
	return 0;
}

/*
 * The store answered (or could not): the RESPONSE goes out, and the early
 * data is acted on only if this was the first claim in the cluster.
 */
static void
on_claim(void *arg, enum store_answer answer)
{
	struct seal *z = arg;
	struct governor *g = &z->base.link.site->gov;
	struct caller *caller = z->waiting;
	bool act_now = answer == STORE_FRESH;
	uint64_t t0 = governor_thread_ns();
	int r;

	z->claim = NULL;
	z->waiting = NULL;
	z->step = STEP_INITIATION;
	if (!act_now)
		g->c.early_refused++;
	r = respond(z, act_now ? SEALED_FLAG_0RTT : 0, caller);
	governor_charge(g, governor_thread_ns() - t0);
	if (r != 0) {
		g->c.failed++;
		g->pending--;
		sodium_memzero(z->early, sizeof(z->early));
		up(z)->abort(z->base.link.owner, "sealed handshake failed");
		return;
	}
	if (act_now && z->step == STEP_OPEN)
		up(z)->plaintext(z->base.link.owner, z->early, z->early_len);
	sodium_memzero(z->early, sizeof(z->early));
}

/*
 * Early data this node would act on: with a store, only once the store
 * has it claimed for the first time in the cluster.  Returns 0 when the
 * answer will come (on_claim), -1 when the store cannot be asked now.
 */
static int
await_store(struct seal *z, const uint8_t client[32], const struct sealed_msg1_payload *p,
            struct caller *caller)
{
	uint8_t id[STORE_ID_LEN];
	uint64_t sec;
	uint32_t nsec;

	if (sealed_tai64n_decode(p->timestamp, &sec, &nsec) != 0)
		return -1;
	early_guard_claim_id(client, p->timestamp, id);
	z->claim = store_claim(z->base.link.site->store, id, sec, EARLY_CLAIM_TTL_S, on_claim, z);
	if (z->claim == NULL)
		return -1;
	memcpy(z->early, p->early, p->early_len);
	z->early_len = p->early_len;
	z->waiting = caller;
	z->step = STEP_STORE;
	return 0;
}

static int
on_initiation(struct seal *z, const uint8_t *msg, size_t len)
{
	struct governor *g = &z->base.link.site->gov;
	struct sealed_initiation m;
	struct sealed_msg1_payload p;
	struct caller *caller = NULL;
	uint8_t payload[SEALED_MSG1_PAYLOAD_MAX], client[32];
	uint64_t t0;
	int st, r;
	bool act_now = false;

	g->c.initiations++;
	if ((st = sealed_initiation_decode(msg, len, &m)) != SEALED_OK)
		return refuse(z, st, "malformed initiation");
	if ((z->suite = choose_suite(z, m.suites)) == RECORD_SUITE_NONE)
		return refuse(z, SEALED_ERR_SUITE, "no common suite");
	if (m.pattern == SEALED_XX && z->base.link.cfg->dark)
		return -1;
	switch (admit(z, &m)) {
	case ANSWERED:
		return 0;
	case DROPPED:
		return -1;
	case ADMITTED:
		break;
	}
	z->pattern = m.pattern;
	g->pending++;
	t0 = governor_thread_ns();
	/* The identity becomes the session's only once the response is out (open_records). */
	r = read_initiation(z, &m, payload, &p, &caller, &act_now, client);
	if (r == 0 && act_now && z->base.link.site->store != NULL) {
		if (await_store(z, client, &p, caller) == 0) {
			governor_charge(g, governor_thread_ns() - t0);
			sodium_memzero(payload, sizeof(payload));
			return 0;
		}
		/* Unreachable: the early data could be a replay another node acted on. */
		g->c.early_refused++;
		act_now = false;
	}
	if (r == 0)
		r = respond(z, act_now ? SEALED_FLAG_0RTT : 0, caller);
	else
		caller_free(caller);
	governor_charge(g, governor_thread_ns() - t0);
	if (r != 0) {
		g->c.failed++;
		g->pending--;
		sodium_memzero(payload, sizeof(payload));
		return -1;
	}
	/* Early data not acted on is dropped: the client sends it again in records. */
	if (act_now && z->step == STEP_OPEN)
		up(z)->plaintext(z->base.link.owner, p.early, p.early_len);
	sodium_memzero(payload, sizeof(payload));
	return 0;
}

static int
on_finish(struct seal *z, const uint8_t *msg, size_t len)
{
	struct sealed_frame f;
	uint8_t payload[SEALED_FINISH_PAYLOAD_MAX], client[32];
	const uint8_t *early;
	size_t plen, elen;
	uint64_t t0 = governor_thread_ns();
	bool read = false;
	int r = -1;

	if (sealed_finish_decode(msg, len, &f) == SEALED_OK &&
	    noise_read_message(&z->hs, f.noise, f.noise_len, payload, sizeof(payload), &plen) ==
	            0 &&
	    sealed_finish_payload_decode(payload, plen, &early, &elen) == 0 &&
	    noise_remote_static(&z->hs, client) == 0)
		read = true;
	governor_charge(&z->base.link.site->gov, governor_thread_ns() - t0);
	if (!read || open_records(z, NULL, 0, known_client(z, client), true) != 0)
		goto out;
	/* The client proved it holds the keys: its early data is safe now. */
	if (z->step == STEP_OPEN)
		up(z)->plaintext(z->base.link.owner, early, elen);
	r = 0;
out:
	/* Still counted as in progress: seal_free ends the count in STEP_FINISH. */
	if (r != 0)
		z->base.link.site->gov.c.failed++;
	sodium_memzero(payload, sizeof(payload));
	return r;
}

/* --- the transport ---------------------------------------------------------- */

static int
take_records(struct seal *z, const uint8_t *in, size_t len)
{
	uint8_t pt[RECORD_PLAINTEXT_MAX];
	size_t used, n, written = 0;
	int st;

	while (len > 0) {
		st = record_open(&z->rx, in, len, &used, pt, sizeof(pt), &n);
		if (st == RECORD_OK)
			written = n > written ? n : written;
		in += used;
		len -= used;
		if (st == RECORD_ERROR) {
			log_debug("session %s: a record failed to authenticate", z->base.link.id);
			sodium_memzero(pt, sizeof(pt));
			return -1;
		}
		if ((st == RECORD_OK || st == RECORD_FINAL) && !z->opened) {
			report_opened(z);
			if (z->step != STEP_OPEN)
				break;
		}
		/* The session may end as it takes a piece: then nothing more is read. */
		if (st == RECORD_OK && up(z)->plaintext(z->base.link.owner, pt, n) != 0)
			break;
		if (st == RECORD_FINAL)
			z->final_seen = true;
		if (st == RECORD_NEED_MORE)
			break;
	}
	/* Only what was written: a client sending a byte at a time must not cost 16 KiB each. */
	sodium_memzero(pt, written);
	return 0;
}

/* How many more bytes the message being assembled needs; 0 when it is complete. */
static int
wanted(struct seal *z, size_t *want)
{
	size_t total;
	int st = sealed_frame_length(z->msg.data, z->msg.len, &total);

	if (st == SEALED_NEED_MORE) {
		*want = 1;
		return 0;
	}
	if (st != SEALED_OK)
		return st;
	*want = total - z->msg.len;
	return 0;
}

static int
expected_type(const struct seal *z, uint8_t type)
{
	return type == (z->step == STEP_INITIATION ? SEALED_INITIATION : SEALED_FINISH);
}

static int
seal_input(struct transport *tr, const uint8_t *raw, size_t len)
{
	struct seal *z = seal_of(tr);
	size_t want, take;
	int st, r;

	while (len > 0 && (z->step == STEP_INITIATION || z->step == STEP_FINISH)) {
		if ((st = wanted(z, &want)) != 0)
			return refuse(z, st, "malformed handshake message");
		take = want < len ? want : len;
		if (buf_append(&z->msg, raw, take) != 0)
			return -1;
		raw += take;
		len -= take;
		if (wanted(z, &want) != 0 || want > 0)
			continue;
		if (!expected_type(z, z->msg.data[0]))
			return refuse(z, SEALED_ERR_MALFORMED, "message out of turn");
		r = z->step == STEP_INITIATION ? on_initiation(z, z->msg.data, z->msg.len)
		                               : on_finish(z, z->msg.data, z->msg.len);
		buf_free(&z->msg);
		if (r != 0)
			return r;
	}
	if (z->step == STEP_OPEN && len > 0)
		return take_records(z, raw, len);
	/* Nothing can come before our RESPONSE: the client has no keys for records yet. */
	if (z->step == STEP_STORE && len > 0)
		return -1;
	return 0;
}

static int
seal_eof(struct transport *tr)
{
	struct seal *z = seal_of(tr);

	return z->step == STEP_OPEN && z->final_seen ? 0 : -1;
}

/* The next record's plaintext, of len bytes left. */
static size_t
next_piece(uint64_t sent, size_t len)
{
	size_t max = transport_record_limit(sent, RECORD_PLAINTEXT_MAX);

	return len < max ? len : max;
}

/* The bytes len plaintext bytes take in records, from sent on. */
static size_t
sealed_size(enum record_suite suite, uint64_t sent, size_t len)
{
	size_t size = 0, piece, overhead = RECORD_LEN_PREFIX + record_overhead(suite);

	for (; len > 0; len -= piece, sent += piece) {
		piece = next_piece(sent, len);
		size += piece + overhead;
	}
	return size;
}

static int
seal_output(struct transport *tr, const uint8_t *pt, size_t len)
{
	struct seal *z = seal_of(tr);
	size_t size = sealed_size(z->suite, z->sent, len), used = 0, n, piece;
	struct chunk *c;

	if (!z->tx_ready || len == 0)
		return z->tx_ready ? 0 : -1;
	if ((c = chunk_new(&z->base.link.site->budget, size)) == NULL)
		return -1;
	for (; len > 0; pt += piece, len -= piece, z->sent += piece) {
		piece = next_piece(z->sent, len);
		if (record_seal(&z->tx, pt, piece, false, (uint8_t *)c->data + used, size - used,
		                &n) != 0) {
			chunk_free(c);
			return -1;
		}
		used += n;
	}
	return up(z)->write(z->base.link.owner, c, used);
}

static int
seal_finish(struct transport *tr)
{
	struct seal *z = seal_of(tr);
	uint8_t out[RECORD_LEN_PREFIX + RECORD_OVERHEAD_MAX];
	size_t n;

	if (!z->tx_ready)
		return 0;
	z->tx_ready = false;
	return record_seal(&z->tx, NULL, 0, true, out, sizeof(out), &n) == 0 ? send_raw(z, out, n)
	                                                                     : -1;
}

static void
seal_free(struct transport *tr)
{
	struct seal *z = seal_of(tr);

	if (z->step == STEP_FINISH || z->step == STEP_STORE)
		z->base.link.site->gov.pending--;
	store_claim_cancel(z->claim);
	caller_free(z->waiting);
	noise_handshake_wipe(&z->hs);
	record_sender_wipe(&z->tx);
	record_receiver_wipe(&z->rx);
	buf_free(&z->msg);
	caller_free(z->pending);
	sodium_memzero(z, sizeof(*z));
	free(z);
}

static const struct transport_ops seal_ops = {
        .name = "sealed",
        .input = seal_input,
        .eof = seal_eof,
        .output = seal_output,
        .finish = seal_finish,
        .free = seal_free,
};

struct transport *
seal_new(const struct transport_link *link)
{
	struct seal *z = calloc(1, sizeof(*z));

	if (z == NULL)
		return NULL;
	z->base.ops = &seal_ops;
	z->base.link = *link;
	buf_init(&z->msg, SEALED_MESSAGE_MAX);
	return &z->base;
}
