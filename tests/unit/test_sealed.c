/*
 * The sealed handshake in memory, end to end: IK and XX, with and without a
 * cookie and proof of work, then records both ways.  Every byte of every
 * handshake message tampered with; mac1 keys; cookies across secret
 * rotations; proof of work; the replay filter; the choice of record suite;
 * the record layer's rekeying and refusals in both suites, fed whole or a
 * byte at a time.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>

#include "crypto/noise.h"
#include "crypto/record.h"
#include "proto/replay.h"
#include "proto/sealed.h"
#include "unit.h"

#define BUCKET_START UINT64_C(1700000040) /* a multiple of SEALED_COOKIE_SECRET_SECONDS */
#define NOW          (BUCKET_START + 30)
#define NOW_NSEC     123456789u
#define POW_ATTEMPTS (UINT64_C(1) << 26)
#define DIFFICULTY   8
#define EARLY        "GET /index early data"
#define EARLY_LEN    (sizeof(EARLY) - 1)
#define DATA_LEN     100000 /* bytes sent each way in the transport tests */
#define CHUNK        4000   /* plaintext per record there */
#define WIRE_CAP     (2 * DATA_LEN + 4 * RECORD_WIRE_MAX)
#define FLOOD        200000 /* fingerprints in the replay flood, above REPLAY_SLOTS */
#define RECENT       1000   /* the latest of them, which must all be remembered */
#define SPARSE       4096   /* few enough that no bucket overflows */

enum verdict { V_DROP, V_REJECT, V_COOKIE, V_RESPONSE };

struct server {
	uint8_t s_priv[NOISE_DHLEN], s_pub[NOISE_DHLEN];
	struct sealed_cookie_secrets secrets;
	uint8_t source[SEALED_SOURCE_LEN];
	struct replay_filter *replay; /* NULL: no replay check */
	uint64_t now;
	bool loaded;
	unsigned difficulty;
	enum record_suite prefs[SEALED_SUITE_PREFS_MAX]; /* most preferred first */
	size_t nprefs;
	/* The outcome of the last message. */
	enum record_suite chosen;
	struct noise_handshake hs;
	uint8_t early[SEALED_EARLY_MAX];
	size_t early_len;
	uint8_t out[SEALED_MESSAGE_MAX];
	size_t out_len;
};

struct client {
	uint8_t s_priv[NOISE_DHLEN], s_pub[NOISE_DHLEN];
	unsigned pattern;
	uint8_t mac1_key[SEALED_KEY_LEN], cookie_key[SEALED_KEY_LEN];
	struct noise_handshake hs;
	uint8_t noise1[SEALED_IK1_MAX];
	struct sealed_initiation m;
	uint8_t orig_mac1[SEALED_MAC_LEN];
	uint8_t cookie[SEALED_COOKIE_LEN]; /* from the last COOKIE */
	uint8_t msg[SEALED_MESSAGE_MAX];
	size_t msg_len;
	uint16_t suites; /* offered */
	enum record_suite suite;
	uint8_t resp_flags;
};

#define OFFER_BOTH                                                                                 \
	(SEALED_SUITE_BIT(RECORD_SUITE_XCHACHA20POLY1305) |                                        \
	 SEALED_SUITE_BIT(RECORD_SUITE_AES256GCM))

/* --- the two sides ------------------------------------------------------------ */

static void
keypair(const char *label, uint8_t priv[NOISE_DHLEN], uint8_t pub[NOISE_DHLEN])
{
	crypto_generichash(priv, NOISE_DHLEN, (const uint8_t *)label, strlen(label), NULL, 0);
	assert_int_equal(crypto_scalarmult_curve25519_base(pub, priv), 0);
}

static void
server_init(struct server *sv, const char *label)
{
	memset(sv, 0, sizeof(*sv));
	keypair(label, sv->s_priv, sv->s_pub);
	memset(sv->source, 0, sizeof(sv->source));
	sv->source[10] = sv->source[11] = 0xff;
	sv->source[12] = 192;
	sv->source[15] = 1;
	sv->now = NOW;
	sv->difficulty = DIFFICULTY;
	sv->prefs[0] = RECORD_SUITE_AES256GCM;
	sv->prefs[1] = RECORD_SUITE_XCHACHA20POLY1305;
	sv->nprefs = 2;
}

static const uint8_t *
server_pub_for(const struct server *sv, unsigned pattern)
{
	/* XX clients do not know the server yet: its keys are derived from zeros. */
	return pattern == SEALED_IK ? sv->s_pub : NULL;
}

static enum verdict
server_reject(struct server *sv, int status)
{
	uint8_t code = sealed_reject_code(status);

	if (code == 0)
		return V_DROP;
	assert_int_equal(sealed_reject_encode(code, sv->out, sizeof(sv->out), &sv->out_len), 0);
	return V_REJECT;
}

/* The daemon's INITIATION path: checks 1 to 5 in order, then Noise, then RESPONSE. */
static enum verdict
server_initiation(struct server *sv, const uint8_t *in, size_t len)
{
	struct sealed_initiation m;
	struct sealed_msg1_payload p;
	uint8_t mac1_key[SEALED_KEY_LEN], cookie_key[SEALED_KEY_LEN];
	uint8_t cookie[SEALED_COOKIE_LEN], mac1[SEALED_MAC_LEN], fp[REPLAY_FP_LEN];
	uint8_t prologue[SEALED_PROLOGUE_LEN], payload[SEALED_MSG1_PAYLOAD_MAX];
	uint8_t rp[SEALED_RESPONSE_PAYLOAD_LEN], noise2[SEALED_XX2_LEN];
	size_t total, plen, n2;
	int st;

	sv->out_len = 0;
	sv->early_len = 0;
	st = sealed_frame_length(in, len, &total);
	if (st == SEALED_OK && total != len)
		st = SEALED_ERR_MALFORMED;
	if (st == SEALED_OK)
		st = sealed_initiation_decode(in, len, &m);
	if (st == SEALED_OK && (sv->chosen = sealed_suite_choose(m.suites, sv->prefs,
	                                                         sv->nprefs)) == RECORD_SUITE_NONE)
		st = SEALED_ERR_SUITE;
	if (st != SEALED_OK)
		return server_reject(sv, st);
	sealed_mac1_key(server_pub_for(sv, m.pattern), mac1_key);
	if (sealed_initiation_check_mac1(&m, mac1_key) != 0)
		return V_DROP;
	if ((m.flags & SEALED_FLAG_COOKIE) != 0) {
		sealed_cookie_secrets_update(&sv->secrets, sv->now);
		if (sealed_initiation_check_cookie(&m, sv->secrets.cur, sv->secrets.prev,
		                                   sv->source, sv->now, cookie) != 0)
			return V_DROP;
		if (sealed_initiation_check_pow(&m, mac1_key, cookie, sv->difficulty) != 0)
			return V_DROP;
	} else if (sv->loaded) {
		sealed_cookie_secrets_update(&sv->secrets, sv->now);
		sealed_cookie_compute(sv->secrets.cur, sv->source, m.epub,
		                      sealed_cookie_bucket(sv->now), cookie);
		sealed_initiation_original_mac1(&m, mac1_key, mac1);
		assert_memory_equal(mac1, m.mac1, SEALED_MAC_LEN);
		sealed_cookie_key(server_pub_for(sv, m.pattern), cookie_key);
		assert_int_equal(sealed_cookie_seal(cookie_key, cookie, mac1, sv->difficulty,
		                                    sv->out, sizeof(sv->out), &sv->out_len),
		                 0);
		assert_true(sv->out_len < len);
		return V_COOKIE;
	}
	if (sv->replay != NULL) {
		replay_fingerprint(m.epub, SEALED_EPHEMERAL_LEN, fp);
		if (replay_check_and_add(sv->replay, fp, sv->now) != 1)
			return V_DROP;
	}

	sealed_prologue(m.pattern, m.suites, m.noise_len, prologue);
	assert_int_equal(noise_handshake_init(&sv->hs, sealed_noise_name(m.pattern),
	                                      NOISE_RESPONDER, prologue, sizeof(prologue),
	                                      sv->s_priv, NULL),
	                 0);
	if (noise_read_message(&sv->hs, m.noise, m.noise_len, payload, sizeof(payload), &plen) != 0)
		return V_DROP;
	if (m.pattern == SEALED_IK) {
		if (sealed_msg1_payload_decode(payload, plen, &p) != 0)
			return V_DROP;
		if (p.early_len > 0)
			memcpy(sv->early, p.early, p.early_len);
		sv->early_len = p.early_len;
	} else if (plen != 0) {
		return V_DROP;
	}
	assert_int_equal(sealed_response_payload_encode(
	                         sv->chosen, sv->early_len > 0 ? SEALED_FLAG_0RTT : 0, rp),
	                 0);
	assert_int_equal(noise_write_message(&sv->hs, rp, sizeof(rp), noise2, sizeof(noise2), &n2),
	                 0);
	assert_int_equal(sealed_response_encode(m.pattern, noise2, n2, sv->out, sizeof(sv->out),
	                                        &sv->out_len),
	                 0);
	return V_RESPONSE;
}

/* XX's FINISH on the server: 0, with the early data in sv->early, or -1. */
static int
server_finish(struct server *sv, const uint8_t *in, size_t len)
{
	struct sealed_frame f;
	uint8_t payload[SEALED_FINISH_PAYLOAD_MAX];
	const uint8_t *early;
	size_t total, plen;

	sv->early_len = 0;
	if (sealed_frame_length(in, len, &total) != SEALED_OK || total != len ||
	    sealed_finish_decode(in, len, &f) != SEALED_OK)
		return -1;
	if (noise_read_message(&sv->hs, f.noise, f.noise_len, payload, sizeof(payload), &plen) != 0)
		return -1;
	if (sealed_finish_payload_decode(payload, plen, &early, &sv->early_len) != 0)
		return -1;
	if (sv->early_len > 0)
		memcpy(sv->early, early, sv->early_len);
	return 0;
}

static void
client_init(struct client *c, const char *label)
{
	memset(c, 0, sizeof(*c));
	keypair(label, c->s_priv, c->s_pub);
	c->suites = OFFER_BOTH;
}

/* Noise message 1 and the first INITIATION (IK carries the early data, XX none). */
static void
client_start(struct client *c, unsigned pattern, const struct server *sv, const uint8_t *early,
             size_t early_len)
{
	const uint8_t *server_pub = server_pub_for(sv, pattern);
	uint8_t prologue[SEALED_PROLOGUE_LEN], payload[SEALED_MSG1_PAYLOAD_MAX];
	uint8_t ts[SEALED_TAI64N_LEN];
	size_t n = sealed_noise1_len(pattern, early_len), plen = 0, len;

	c->pattern = pattern;
	sealed_mac1_key(server_pub, c->mac1_key);
	sealed_cookie_key(server_pub, c->cookie_key);
	assert_true(n > 0);
	sealed_prologue(pattern, c->suites, n, prologue);
	assert_int_equal(noise_handshake_init(&c->hs, sealed_noise_name(pattern), NOISE_INITIATOR,
	                                      prologue, sizeof(prologue), c->s_priv, server_pub),
	                 0);
	if (pattern == SEALED_IK) {
		assert_int_equal(sealed_tai64n_encode(NOW, NOW_NSEC, ts), 0);
		assert_int_equal(sealed_msg1_payload_encode(ts, early, early_len, payload,
		                                            sizeof(payload), &plen),
		                 0);
	}
	assert_int_equal(noise_write_message(&c->hs, plen > 0 ? payload : NULL, plen, c->noise1,
	                                     sizeof(c->noise1), &len),
	                 0);
	assert_int_equal(len, n);

	memset(&c->m, 0, sizeof(c->m));
	c->m.pattern = (uint8_t)pattern;
	c->m.suites = c->suites;
	c->m.noise = c->noise1;
	c->m.noise_len = n;
	assert_int_equal(sealed_initiation_encode(&c->m, c->mac1_key, NULL, c->msg, sizeof(c->msg),
	                                          &c->msg_len),
	                 0);
	assert_int_equal(c->msg_len, SEALED_INITIATION_OVERHEAD + n);
	assert_int_equal(c->m.flags, 0);
	memcpy(c->orig_mac1, c->m.mac1, SEALED_MAC_LEN);
}

/* A COOKIE: open it, do the work, repeat the INITIATION.  0, or -1 when the COOKIE is bad. */
static int
client_cookie(struct client *c, const uint8_t *in, size_t len)
{
	struct sealed_cookie_msg cm;
	size_t total;

	if (sealed_frame_length(in, len, &total) != SEALED_OK || total != len ||
	    sealed_cookie_decode(in, len, &cm) != SEALED_OK ||
	    sealed_cookie_open(&cm, c->cookie_key, c->orig_mac1, c->cookie) != 0)
		return -1;
	assert_int_equal(sealed_pow_solve(c->cookie, c->orig_mac1, cm.difficulty, POW_ATTEMPTS,
	                                  c->m.pow_nonce),
	                 0);
	c->m.noise = c->noise1;
	assert_int_equal(sealed_initiation_encode(&c->m, c->mac1_key, c->cookie, c->msg,
	                                          sizeof(c->msg), &c->msg_len),
	                 0);
	assert_int_equal(c->m.flags, SEALED_FLAG_COOKIE);
	return 0;
}

/* A RESPONSE: 0 with the handshake advanced, or -1. */
static int
client_response(struct client *c, const uint8_t *in, size_t len)
{
	struct sealed_frame f;
	uint8_t payload[SEALED_RESPONSE_PAYLOAD_LEN];
	size_t total, plen;

	if (sealed_frame_length(in, len, &total) != SEALED_OK || total != len ||
	    sealed_response_decode(in, len, c->pattern, &f) != SEALED_OK)
		return -1;
	if (noise_read_message(&c->hs, f.noise, f.noise_len, payload, sizeof(payload), &plen) != 0)
		return -1;
	return sealed_response_payload_decode(payload, plen, c->suites, &c->suite, &c->resp_flags);
}

/* XX: Noise message 3 with the early data, in a FINISH. */
static void
client_finish(struct client *c, const uint8_t *early, size_t early_len, uint8_t *out,
              size_t out_size, size_t *out_len)
{
	uint8_t payload[SEALED_FINISH_PAYLOAD_MAX], noise3[SEALED_XX3_MAX];
	size_t plen, n3;

	assert_int_equal(
	        sealed_finish_payload_encode(early, early_len, payload, sizeof(payload), &plen), 0);
	assert_int_equal(noise_write_message(&c->hs, payload, plen, noise3, sizeof(noise3), &n3),
	                 0);
	assert_int_equal(sealed_finish_encode(noise3, n3, out, out_size, out_len), 0);
}

/* --- records -------------------------------------------------------------------------- */

/*
 * Feeds wire[0..len) to rx in pieces of `piece` bytes (0: all at once),
 * collecting the plaintext.  Returns the last status.
 */
static int
feed(struct record_receiver *rx, const uint8_t *wire, size_t len, size_t piece, uint8_t *pt,
     size_t pt_cap, size_t *pt_len, size_t *records)
{
	static uint8_t rec[RECORD_PLAINTEXT_MAX];
	size_t pos = 0, end, used, n;
	int st = RECORD_NEED_MORE;

	*pt_len = 0;
	*records = 0;
	while (pos < len) {
		end = piece == 0 || len - pos < piece ? len : pos + piece;
		while (pos < end) {
			st = record_open(rx, wire + pos, end - pos, &used, rec, sizeof(rec), &n);
			assert_true(used <= end - pos);
			pos += used;
			if (st == RECORD_ERROR)
				return st;
			if (st == RECORD_NEED_MORE)
				assert_int_equal(pos, end);
			if (st == RECORD_OK) {
				assert_true(n >= 1 && n <= RECORD_PLAINTEXT_MAX);
				assert_true(*pt_len + n <= pt_cap);
				memcpy(pt + *pt_len, rec, n);
				*pt_len += n;
				(*records)++;
			} else {
				assert_int_equal(n, 0);
			}
		}
	}
	return st;
}

/* Appends records of data (chunk bytes each) and, with final, the FINAL record. */
static size_t
seal_all(struct record_sender *tx, const uint8_t *data, size_t len, size_t chunk, bool final,
         uint8_t *wire, size_t cap)
{
	size_t pos = 0, w = 0, n, out_len;

	while (pos < len) {
		n = len - pos < chunk ? len - pos : chunk;
		assert_int_equal(record_seal(tx, data + pos, n, false, wire + w, cap - w, &out_len),
		                 0);
		assert_int_equal(out_len, RECORD_LEN_PREFIX + n + record_overhead(tx->suite));
		pos += n;
		w += out_len;
	}
	if (final) {
		assert_int_equal(record_seal(tx, NULL, 0, true, wire + w, cap - w, &out_len), 0);
		w += out_len;
	}
	return w;
}

/* One direction: header (hlen bytes), DATA_LEN bytes, FINAL, fed in pieces of `piece`. */
static void
one_direction(struct record_sender *tx, const uint8_t *hdr, size_t hlen, struct record_receiver *rx,
              size_t piece)
{
	uint8_t *data = malloc(DATA_LEN), *wire = malloc(WIRE_CAP), *got = malloc(DATA_LEN);
	size_t w, got_len, records;

	assert_non_null(data);
	assert_non_null(wire);
	assert_non_null(got);
	randombytes_buf(data, DATA_LEN);
	memcpy(wire, hdr, hlen);
	w = hlen + seal_all(tx, data, DATA_LEN, CHUNK, true, wire + hlen, WIRE_CAP - hlen);
	assert_int_equal(record_receiver_eof(rx), -1);
	assert_int_equal(feed(rx, wire, w, piece, got, DATA_LEN, &got_len, &records), RECORD_FINAL);
	assert_int_equal(got_len, DATA_LEN);
	assert_int_equal(records, (DATA_LEN + CHUNK - 1) / CHUNK);
	assert_memory_equal(got, data, DATA_LEN);
	assert_int_equal(record_receiver_eof(rx), 0);
	free(data);
	free(wire);
	free(got);
}

/* Both sides complete: same hash and suite, split, records both ways, FINAL both ways. */
static void
transport(struct client *c, struct server *sv)
{
	static struct record_receiver irx, rrx;
	struct noise_handshake *ihs = &c->hs, *rhs = &sv->hs;
	struct noise_cipher isend, irecv, rsend, rrecv;
	struct record_sender itx, rtx;
	uint8_t ih[NOISE_HASHLEN], rh[NOISE_HASHLEN];
	uint8_t ihdr[RECORD_HEADER_MAX], rhdr[RECORD_HEADER_MAX];
	size_t ihlen, rhlen;

	assert_int_equal(c->suite, sv->chosen);

	assert_true(noise_handshake_complete(ihs));
	assert_true(noise_handshake_complete(rhs));
	noise_handshake_hash(ihs, ih);
	noise_handshake_hash(rhs, rh);
	assert_memory_equal(ih, rh, NOISE_HASHLEN);
	assert_int_equal(noise_split(ihs, &isend, &irecv), 0);
	assert_int_equal(noise_split(rhs, &rsend, &rrecv), 0);
	assert_int_equal(record_init_from_split(&itx, &irx, c->suite, &isend, &irecv, ihdr, &ihlen),
	                 0);
	assert_int_equal(record_init_from_split(&rtx, &rrx, c->suite, &rsend, &rrecv, rhdr, &rhlen),
	                 0);
	assert_int_equal(ihlen, record_header_len(c->suite));
	one_direction(&itx, ihdr, ihlen, &rrx, 0);
	one_direction(&rtx, rhdr, rhlen, &irx, 777);
	noise_cipher_wipe(&isend);
	noise_cipher_wipe(&irecv);
	noise_cipher_wipe(&rsend);
	noise_cipher_wipe(&rrecv);
	record_sender_wipe(&itx);
	record_sender_wipe(&rtx);
	record_receiver_wipe(&irx);
	record_receiver_wipe(&rrx);
}

/* --- handshakes ---------------------------------------------------------------------- */

/* A server with its key loaded and a client, both fresh. */
static void
loaded_pair(struct server *sv, struct client *c)
{
	server_init(sv, "server");
	sv->loaded = true;
	client_init(c, "client");
}

/* The server answers c's IK initiation, takes its early data, and both ends talk. */
static void
ik_answered(struct server *sv, struct client *c)
{
	assert_int_equal(server_initiation(sv, c->msg, c->msg_len), V_RESPONSE);
	assert_memory_equal(sv->early, EARLY, EARLY_LEN);
	assert_int_equal(client_response(c, sv->out, sv->out_len), 0);
	transport(c, sv);
}

static void
test_ik_handshake(void **state)
{
	static struct server sv;
	static struct client c;
	uint8_t rs[NOISE_DHLEN];
	struct replay_filter *rf = malloc(sizeof(*rf));

	assert_non_null(rf);
	replay_init(rf, NULL);
	server_init(&sv, "server");
	sv.replay = rf;
	client_init(&c, "client");
	client_start(&c, SEALED_IK, &sv, (const uint8_t *)EARLY, EARLY_LEN);
	assert_int_equal(c.msg[0], SEALED_INITIATION);

	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_RESPONSE);
	assert_int_equal(sv.early_len, EARLY_LEN);
	assert_memory_equal(sv.early, EARLY, EARLY_LEN);
	assert_int_equal(noise_remote_static(&sv.hs, rs), 0);
	assert_memory_equal(rs, c.s_pub, NOISE_DHLEN);
	assert_int_equal(sv.out_len, SEALED_FRAME_LEN + SEALED_IK2_LEN);

	assert_int_equal(client_response(&c, sv.out, sv.out_len), 0);
	assert_int_equal(c.resp_flags, SEALED_FLAG_0RTT);
	transport(&c, &sv);

	/* The same INITIATION again is a replay; a fresh handshake is not. */
	client_start(&c, SEALED_IK, &sv, NULL, 0);
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_RESPONSE);
	assert_int_equal(sv.early_len, 0);
	assert_int_equal(client_response(&c, sv.out, sv.out_len), 0);
	assert_int_equal(c.resp_flags, 0);
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_DROP);
	free(rf);
}

static void
test_ik_cookie_handshake(void **state)
{
	static struct server sv;
	static struct client c;

	loaded_pair(&sv, &c);
	client_start(&c, SEALED_IK, &sv, (const uint8_t *)EARLY, EARLY_LEN);
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_COOKIE);
	assert_int_equal(sv.out_len, SEALED_COOKIE_MSG_LEN);
	assert_int_equal(client_cookie(&c, sv.out, sv.out_len), 0);
	/* Some seconds later, in the next bucket: the previous secret still checks. */
	sv.now = BUCKET_START + SEALED_COOKIE_SECRET_SECONDS + 5;
	ik_answered(&sv, &c);
}

/* A cookie through the handshake at the edges of its buckets: issued in the last
 * second of one, it serves to the last second of the next and no longer; a source
 * it was not made for cannot use it; a fresh round then gets through. */
static void
test_cookie_handshake_buckets(void **state)
{
	static struct server sv;
	static struct client c;

	loaded_pair(&sv, &c);
	sv.now = BUCKET_START + SEALED_COOKIE_SECRET_SECONDS - 1;
	client_start(&c, SEALED_IK, &sv, (const uint8_t *)EARLY, EARLY_LEN);
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_COOKIE);
	assert_int_equal(client_cookie(&c, sv.out, sv.out_len), 0);

	sv.now = BUCKET_START + SEALED_COOKIE_SECRET_SECONDS;
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_RESPONSE);
	sv.now = BUCKET_START + 2 * SEALED_COOKIE_SECRET_SECONDS - 1;
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_RESPONSE);
	sv.source[15] = 2;
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_DROP);
	sv.source[15] = 1;
	/* Two rotations after it was made: expired. */
	sv.now = BUCKET_START + 2 * SEALED_COOKIE_SECRET_SECONDS;
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_DROP);

	/* A fresh round now: a new cookie, and through. */
	client_start(&c, SEALED_IK, &sv, (const uint8_t *)EARLY, EARLY_LEN);
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_COOKIE);
	assert_int_equal(client_cookie(&c, sv.out, sv.out_len), 0);
	ik_answered(&sv, &c);
}

static void
test_xx_handshake(void **state)
{
	static struct server sv;
	static struct client c;
	uint8_t finish[SEALED_FINISH_MAX], rs[NOISE_DHLEN];
	size_t finish_len;
	struct replay_filter *rf = malloc(sizeof(*rf));

	assert_non_null(rf);
	replay_init(rf, NULL);
	loaded_pair(&sv, &c);
	sv.replay = rf;
	client_start(&c, SEALED_XX, &sv, NULL, 0);
	assert_int_equal(c.msg_len, SEALED_INITIATION_OVERHEAD + SEALED_XX1_LEN);

	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_COOKIE);
	assert_int_equal(client_cookie(&c, sv.out, sv.out_len), 0);
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_RESPONSE);
	assert_int_equal(client_response(&c, sv.out, sv.out_len), 0);
	assert_int_equal(c.resp_flags, 0);
	/* Trust on first use: the client learns the server's key from message 2. */
	assert_int_equal(noise_remote_static(&c.hs, rs), 0);
	assert_memory_equal(rs, sv.s_pub, NOISE_DHLEN);

	client_finish(&c, (const uint8_t *)EARLY, EARLY_LEN, finish, sizeof(finish), &finish_len);
	assert_int_equal(finish[0], SEALED_FINISH);
	assert_int_equal(server_finish(&sv, finish, finish_len), 0);
	assert_int_equal(sv.early_len, EARLY_LEN);
	assert_memory_equal(sv.early, EARLY, EARLY_LEN);
	assert_int_equal(noise_remote_static(&sv.hs, rs), 0);
	assert_memory_equal(rs, c.s_pub, NOISE_DHLEN);
	transport(&c, &sv);

	/* The cookie answer repeated within the window: a replay. */
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_DROP);
	free(rf);
}

/* --- tampering ------------------------------------------------------------------------ */

/* Every bit of an INITIATION flipped in turn: never a RESPONSE (nor a COOKIE). */
static void
flip_initiation(struct server *sv, const struct client *c)
{
	static uint8_t copy[SEALED_MESSAGE_MAX];
	size_t i;
	unsigned bit;
	enum verdict v;

	memcpy(copy, c->msg, c->msg_len);
	assert_int_equal(server_initiation(sv, copy, c->msg_len), V_RESPONSE);
	for (i = 0; i < c->msg_len; i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(copy, c->msg, c->msg_len);
			copy[i] ^= (uint8_t)(1u << bit);
			v = server_initiation(sv, copy, c->msg_len);
			assert_true(v == V_DROP || v == V_REJECT);
		}
	}
	/* Truncated or extended by a byte. */
	assert_int_equal(server_initiation(sv, c->msg, c->msg_len - 1), V_DROP);
	memcpy(copy, c->msg, c->msg_len);
	copy[c->msg_len] = 0;
	assert_int_equal(server_initiation(sv, copy, c->msg_len + 1), V_DROP);
}

static void
test_flip_initiation(void **state)
{
	static struct server sv;
	static struct client c;
	unsigned pattern;

	for (pattern = SEALED_IK; pattern <= SEALED_XX; pattern++) {
		server_init(&sv, "server");
		client_init(&c, "client");
		client_start(&c, pattern, &sv, pattern == SEALED_IK ? (const uint8_t *)EARLY : NULL,
		             pattern == SEALED_IK ? EARLY_LEN : 0);
		flip_initiation(&sv, &c);

		/* The cookie answer, the server loaded. */
		sv.loaded = true;
		assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_COOKIE);
		assert_int_equal(client_cookie(&c, sv.out, sv.out_len), 0);
		flip_initiation(&sv, &c);
	}
}

static void
test_flip_response(void **state)
{
	static struct server sv;
	static struct client c;
	static uint8_t resp[SEALED_RESPONSE_MAX], copy[SEALED_RESPONSE_MAX];
	struct noise_handshake saved;
	size_t resp_len, i;
	unsigned bit, pattern;

	for (pattern = SEALED_IK; pattern <= SEALED_XX; pattern++) {
		server_init(&sv, "server");
		client_init(&c, "client");
		client_start(&c, pattern, &sv, NULL, 0);
		saved = c.hs;
		assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_RESPONSE);
		resp_len = sv.out_len;
		memcpy(resp, sv.out, resp_len);
		for (i = 0; i < resp_len; i++) {
			for (bit = 0; bit < 8; bit++) {
				memcpy(copy, resp, resp_len);
				copy[i] ^= (uint8_t)(1u << bit);
				c.hs = saved;
				assert_int_equal(client_response(&c, copy, resp_len), -1);
				assert_false(noise_handshake_complete(&c.hs));
			}
		}
		c.hs = saved;
		assert_int_equal(client_response(&c, resp, resp_len - 1), -1);
		c.hs = saved;
		assert_int_equal(client_response(&c, resp, resp_len), 0);
		noise_handshake_wipe(&c.hs);
		noise_handshake_wipe(&saved);
	}
}

static void
test_flip_cookie(void **state)
{
	static struct server sv;
	static struct client c;
	uint8_t msg[SEALED_COOKIE_MSG_LEN], copy[SEALED_COOKIE_MSG_LEN], cookie[SEALED_COOKIE_LEN];
	uint8_t wrong[SEALED_KEY_LEN];
	struct sealed_cookie_msg cm;
	size_t i;
	unsigned bit;

	loaded_pair(&sv, &c);
	client_start(&c, SEALED_IK, &sv, NULL, 0);
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_COOKIE);
	memcpy(msg, sv.out, sizeof(msg));

	for (i = 0; i < sizeof(msg); i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(copy, msg, sizeof(msg));
			copy[i] ^= (uint8_t)(1u << bit);
			if (sealed_cookie_decode(copy, sizeof(copy), &cm) == SEALED_OK)
				assert_int_equal(
				        sealed_cookie_open(&cm, c.cookie_key, c.orig_mac1, cookie),
				        -1);
			assert_int_equal(client_cookie(&c, copy, sizeof(copy)), -1);
		}
	}
	assert_int_equal(sealed_cookie_decode(msg, sizeof(msg) - 1, &cm), SEALED_ERR_MALFORMED);

	/* Another mac1 as additional data, another key: refused. */
	assert_int_equal(sealed_cookie_decode(msg, sizeof(msg), &cm), SEALED_OK);
	assert_int_equal(cm.difficulty, DIFFICULTY);
	c.orig_mac1[0] ^= 1;
	assert_int_equal(sealed_cookie_open(&cm, c.cookie_key, c.orig_mac1, cookie), -1);
	assert_true(sodium_is_zero(cookie, sizeof(cookie)));
	c.orig_mac1[0] ^= 1;
	sealed_cookie_key(NULL, wrong);
	assert_int_equal(sealed_cookie_open(&cm, wrong, c.orig_mac1, cookie), -1);
	assert_int_equal(sealed_cookie_open(&cm, c.cookie_key, c.orig_mac1, cookie), 0);
	assert_int_equal(client_cookie(&c, msg, sizeof(msg)), 0);
}

static void
test_flip_finish(void **state)
{
	static struct server sv;
	static struct client c;
	static uint8_t finish[SEALED_FINISH_MAX], copy[SEALED_FINISH_MAX];
	struct noise_handshake saved;
	size_t finish_len, i;
	unsigned bit;

	server_init(&sv, "server");
	client_init(&c, "client");
	client_start(&c, SEALED_XX, &sv, NULL, 0);
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_RESPONSE);
	assert_int_equal(client_response(&c, sv.out, sv.out_len), 0);
	client_finish(&c, (const uint8_t *)EARLY, EARLY_LEN, finish, sizeof(finish), &finish_len);
	saved = sv.hs;
	for (i = 0; i < finish_len; i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(copy, finish, finish_len);
			copy[i] ^= (uint8_t)(1u << bit);
			sv.hs = saved;
			assert_int_equal(server_finish(&sv, copy, finish_len), -1);
			assert_false(noise_handshake_complete(&sv.hs));
		}
	}
	sv.hs = saved;
	assert_int_equal(server_finish(&sv, finish, finish_len - 1), -1);
	sv.hs = saved;
	assert_int_equal(server_finish(&sv, finish, finish_len), 0);
	transport(&c, &sv);
	noise_handshake_wipe(&saved);
}

/* --- mac1, cookies, proof of work ----------------------------------------------------- */

static void
test_mac1_keys(void **state)
{
	static struct server a, b;
	static struct client c;
	struct sealed_initiation m;
	uint8_t key[SEALED_KEY_LEN];

	server_init(&a, "server a");
	server_init(&b, "server b");
	client_init(&c, "client");

	/* IK for server a: b's key and the zero key refuse it. */
	client_start(&c, SEALED_IK, &a, NULL, 0);
	assert_int_equal(sealed_initiation_decode(c.msg, c.msg_len, &m), SEALED_OK);
	sealed_mac1_key(a.s_pub, key);
	assert_int_equal(sealed_initiation_check_mac1(&m, key), 0);
	sealed_mac1_key(b.s_pub, key);
	assert_int_equal(sealed_initiation_check_mac1(&m, key), -1);
	sealed_mac1_key(NULL, key);
	assert_int_equal(sealed_initiation_check_mac1(&m, key), -1);
	assert_int_equal(server_initiation(&b, c.msg, c.msg_len), V_DROP);

	/* XX: the zero key, whoever the server is; a's own key refuses it. */
	client_start(&c, SEALED_XX, &a, NULL, 0);
	assert_int_equal(sealed_initiation_decode(c.msg, c.msg_len, &m), SEALED_OK);
	sealed_mac1_key(a.s_pub, key);
	assert_int_equal(sealed_initiation_check_mac1(&m, key), -1);
	assert_int_equal(server_initiation(&b, c.msg, c.msg_len), V_RESPONSE);

	/* mac1 and cookie keys differ for one server key. */
	sealed_cookie_key(a.s_pub, key);
	assert_memory_not_equal(key, c.mac1_key, SEALED_KEY_LEN);
}

static void
test_cookie_rotation(void **state)
{
	struct sealed_cookie_secrets s, old;
	uint8_t src[SEALED_SOURCE_LEN] = {0}, other_src[SEALED_SOURCE_LEN] = {0};
	uint8_t epub[SEALED_EPHEMERAL_LEN], other_epub[SEALED_EPHEMERAL_LEN];
	uint8_t cookie[SEALED_COOKIE_LEN], older[SEALED_COOKIE_LEN];
	uint64_t b = sealed_cookie_bucket(NOW);

	src[15] = 1;
	other_src[15] = 2;
	memset(epub, 0x11, sizeof(epub));
	memset(other_epub, 0x22, sizeof(other_epub));
	memset(&s, 0, sizeof(s));
	sealed_cookie_secrets_update(&s, NOW);
	assert_true(s.ready);
	assert_int_equal(s.bucket, b);
	old = s;
	sealed_cookie_secrets_update(&s, NOW + 1);
	assert_memory_equal(&s, &old, sizeof(s));

	sealed_cookie_compute(s.cur, src, epub, b, cookie);
	sealed_cookie_compute(s.prev, src, epub, b - 1, older);
	assert_int_equal(sealed_cookie_check(s.cur, s.prev, src, epub, NOW, cookie), 0);
	assert_int_equal(sealed_cookie_check(s.cur, s.prev, src, epub, NOW, older), 0);
	assert_int_equal(sealed_cookie_check(s.cur, s.prev, other_src, epub, NOW, cookie), -1);
	assert_int_equal(sealed_cookie_check(s.cur, s.prev, src, other_epub, NOW, cookie), -1);
	/* The right secret in the wrong bucket. */
	assert_int_equal(sealed_cookie_check(s.cur, s.prev, src, epub,
	                                     NOW + SEALED_COOKIE_SECRET_SECONDS, cookie),
	                 -1);

	/* One rotation: cookie checks with the previous secret, older does not any more. */
	sealed_cookie_secrets_update(&s, NOW + SEALED_COOKIE_SECRET_SECONDS);
	assert_int_equal(s.bucket, b + 1);
	assert_memory_equal(s.prev, old.cur, SEALED_KEY_LEN);
	assert_memory_not_equal(s.cur, old.cur, SEALED_KEY_LEN);
	assert_int_equal(sealed_cookie_check(s.cur, s.prev, src, epub,
	                                     NOW + SEALED_COOKIE_SECRET_SECONDS, cookie),
	                 0);
	assert_int_equal(sealed_cookie_check(s.cur, s.prev, src, epub,
	                                     NOW + SEALED_COOKIE_SECRET_SECONDS, older),
	                 -1);

	/* Two rotations: expired. */
	sealed_cookie_secrets_update(&s, NOW + 2 * SEALED_COOKIE_SECRET_SECONDS);
	assert_int_equal(sealed_cookie_check(s.cur, s.prev, src, epub,
	                                     NOW + 2 * SEALED_COOKIE_SECRET_SECONDS, cookie),
	                 -1);

	/* A jump of several buckets, or backwards: both secrets fresh. */
	old = s;
	sealed_cookie_secrets_update(&s, NOW + 10 * SEALED_COOKIE_SECRET_SECONDS);
	assert_memory_not_equal(s.prev, old.cur, SEALED_KEY_LEN);
	old = s;
	sealed_cookie_secrets_update(&s, NOW);
	assert_memory_not_equal(s.prev, old.cur, SEALED_KEY_LEN);
	assert_int_equal(s.bucket, b);
	sealed_cookie_secrets_wipe(&s);
	assert_false(s.ready);
}

/* mac2 through a real cookie answer, across rotations, sources and ephemerals. */
static void
test_cookie_mac2(void **state)
{
	static struct server sv;
	static struct client c, d;
	struct sealed_initiation m;
	uint8_t cookie[SEALED_COOKIE_LEN], other[SEALED_SOURCE_LEN];
	const uint64_t t1 = NOW + SEALED_COOKIE_SECRET_SECONDS,
	               t2 = NOW + 2 * SEALED_COOKIE_SECRET_SECONDS;

	loaded_pair(&sv, &c);
	client_start(&c, SEALED_XX, &sv, NULL, 0);
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_COOKIE);
	assert_int_equal(client_cookie(&c, sv.out, sv.out_len), 0);
	assert_int_equal(sealed_initiation_decode(c.msg, c.msg_len, &m), SEALED_OK);

	assert_int_equal(sealed_initiation_check_cookie(&m, sv.secrets.cur, sv.secrets.prev,
	                                                sv.source, NOW, cookie),
	                 0);
	memcpy(other, sv.source, sizeof(other));
	other[15] ^= 1;
	assert_int_equal(sealed_initiation_check_cookie(&m, sv.secrets.cur, sv.secrets.prev, other,
	                                                NOW, cookie),
	                 -1);
	assert_true(sodium_is_zero(cookie, sizeof(cookie)));
	sealed_cookie_secrets_update(&sv.secrets, t1);
	assert_int_equal(sealed_initiation_check_cookie(&m, sv.secrets.cur, sv.secrets.prev,
	                                                sv.source, t1, cookie),
	                 0);
	sealed_cookie_secrets_update(&sv.secrets, t2);
	assert_int_equal(sealed_initiation_check_cookie(&m, sv.secrets.cur, sv.secrets.prev,
	                                                sv.source, t2, cookie),
	                 -1);
	sv.now = t2;
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_DROP);

	/* Another client's ephemeral with this client's mac2: refused. */
	sv.now = NOW;
	memset(&sv.secrets, 0, sizeof(sv.secrets));
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_DROP); /* new secrets */
	client_init(&d, "client d");
	client_start(&c, SEALED_IK, &sv, NULL, 0);
	client_start(&d, SEALED_IK, &sv, NULL, 0);
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_COOKIE);
	assert_int_equal(client_cookie(&c, sv.out, sv.out_len), 0);
	/* d uses c's cookie: its own ephemeral gives another cookie. */
	assert_int_equal(sealed_initiation_decode(c.msg, c.msg_len, &m), SEALED_OK);
	assert_int_equal(sealed_initiation_check_cookie(&m, sv.secrets.cur, sv.secrets.prev,
	                                                sv.source, NOW, cookie),
	                 0);
	d.m.noise = d.noise1;
	memcpy(d.m.pow_nonce, c.m.pow_nonce, SEALED_POW_NONCE_LEN);
	assert_int_equal(sealed_initiation_encode(&d.m, d.mac1_key, cookie, d.msg, sizeof(d.msg),
	                                          &d.msg_len),
	                 0);
	assert_int_equal(server_initiation(&sv, d.msg, d.msg_len), V_DROP);
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_RESPONSE);

	/* Without the cookie flag there is nothing to check. */
	client_start(&d, SEALED_IK, &sv, NULL, 0);
	assert_int_equal(sealed_initiation_check_cookie(&d.m, sv.secrets.cur, sv.secrets.prev,
	                                                sv.source, NOW, cookie),
	                 -1);
	assert_int_equal(sealed_initiation_check_pow(&d.m, d.mac1_key, cookie, 0), -1);
}

static void
test_cookie_seal(void **state)
{
	uint8_t key[SEALED_KEY_LEN], cookie[SEALED_COOKIE_LEN], mac1[SEALED_MAC_LEN];
	uint8_t msg[SEALED_COOKIE_MSG_LEN + 1], got[SEALED_COOKIE_LEN],
	        first[SEALED_COOKIE_MSG_LEN];
	struct sealed_cookie_msg cm;
	size_t len;
	unsigned d;

	randombytes_buf(key, sizeof(key));
	randombytes_buf(cookie, sizeof(cookie));
	randombytes_buf(mac1, sizeof(mac1));
	for (d = 0; d <= SEALED_POW_DIFFICULTY_MAX; d += 16) {
		assert_int_equal(sealed_cookie_seal(key, cookie, mac1, d, msg, sizeof(msg), &len),
		                 0);
		assert_int_equal(len, SEALED_COOKIE_MSG_LEN);
		assert_int_equal(sealed_cookie_decode(msg, len, &cm), SEALED_OK);
		assert_int_equal(cm.difficulty, d);
		assert_int_equal(sealed_cookie_open(&cm, key, mac1, got), 0);
		assert_memory_equal(got, cookie, sizeof(cookie));
	}
	/* A fresh nonce every time. */
	memcpy(first, msg, sizeof(first));
	assert_int_equal(sealed_cookie_seal(key, cookie, mac1, d - 16, msg, sizeof(msg), &len), 0);
	assert_memory_not_equal(first, msg, SEALED_COOKIE_MSG_LEN);

	assert_int_equal(sealed_cookie_seal(key, cookie, mac1, SEALED_POW_DIFFICULTY_MAX + 1, msg,
	                                    sizeof(msg), &len),
	                 -1);
	assert_int_equal(len, 0);
	assert_int_equal(
	        sealed_cookie_seal(key, cookie, mac1, 0, msg, SEALED_COOKIE_MSG_LEN - 1, &len), -1);
	assert_int_equal(sealed_cookie_seal(key, cookie, mac1, 1, msg, sizeof(msg), &len), 0);
	assert_int_equal(sealed_cookie_decode(msg, len + 1, &cm), SEALED_ERR_MALFORMED);
	msg[2] = SEALED_POW_DIFFICULTY_MAX + 1;
	assert_int_equal(sealed_cookie_decode(msg, len, &cm), SEALED_ERR_MALFORMED);
	msg[2] = 1;
	msg[3] = 1;
	assert_int_equal(sealed_cookie_decode(msg, len, &cm), SEALED_ERR_MALFORMED);
	msg[3] = 0;
	msg[1] = SEALED_VERSION + 1;
	assert_int_equal(sealed_cookie_decode(msg, len, &cm), SEALED_ERR_VERSION);
	msg[1] = SEALED_VERSION;
	assert_int_equal(sealed_cookie_decode(msg, len, &cm), SEALED_OK);
	/* The difficulty is authenticated: raising it on the way is caught. */
	msg[2] = 2;
	assert_int_equal(sealed_cookie_decode(msg, len, &cm), SEALED_OK);
	assert_int_equal(sealed_cookie_open(&cm, key, mac1, got), -1);
}

static void
test_pow(void **state)
{
	static const unsigned levels[] = {0, 8, 16};
	uint8_t cookie[SEALED_COOKIE_LEN], mac1[SEALED_MAC_LEN], nonce[SEALED_POW_NONCE_LEN];
	unsigned i, d, first_fail;

	memset(cookie, 0xc0, sizeof(cookie));
	memset(mac1, 0x3a, sizeof(mac1));
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		assert_int_equal(sealed_pow_solve(cookie, mac1, levels[i], POW_ATTEMPTS, nonce), 0);
		assert_int_equal(sealed_pow_check(cookie, mac1, nonce, levels[i]), 0);
		for (d = 0; d < levels[i]; d++)
			assert_int_equal(sealed_pow_check(cookie, mac1, nonce, d), 0);
		/* Past its zero bits the nonce fails, and keeps failing higher up. */
		first_fail = levels[i];
		while (first_fail <= SEALED_POW_DIFFICULTY_MAX &&
		       sealed_pow_check(cookie, mac1, nonce, first_fail) == 0)
			first_fail++;
		assert_true(first_fail <= SEALED_POW_DIFFICULTY_MAX);
		for (d = first_fail; d <= SEALED_POW_DIFFICULTY_MAX + 1; d++)
			assert_int_equal(sealed_pow_check(cookie, mac1, nonce, d), -1);
		/* Bound to the cookie and to mac1. */
		if (levels[i] >= 8) {
			cookie[0] ^= 1;
			assert_int_equal(sealed_pow_check(cookie, mac1, nonce, levels[i]), -1);
			cookie[0] ^= 1;
			mac1[0] ^= 1;
			assert_int_equal(sealed_pow_check(cookie, mac1, nonce, levels[i]), -1);
			mac1[0] ^= 1;
		}
	}
	/* Difficulty 0: the first nonce. */
	assert_int_equal(sealed_pow_solve(cookie, mac1, 0, 1, nonce), 0);
	assert_true(sodium_is_zero(nonce, sizeof(nonce)));
	/* Bounded search, and difficulties beyond the maximum. */
	assert_int_equal(sealed_pow_solve(cookie, mac1, 16, 0, nonce), -1);
	assert_int_equal(sealed_pow_solve(cookie, mac1, SEALED_POW_DIFFICULTY_MAX, 16, nonce), -1);
	assert_true(sodium_is_zero(nonce, sizeof(nonce)));
	assert_int_equal(sealed_pow_solve(cookie, mac1, SEALED_POW_DIFFICULTY_MAX + 1, 1, nonce),
	                 -1);
}

/* The server demands more work than the client did: dropped; wrong work too; right work passes. */
static void
test_pow_in_handshake(void **state)
{
	static struct server sv;
	static struct client c;
	uint8_t good[SEALED_POW_NONCE_LEN];
	uint32_t i;

	loaded_pair(&sv, &c);
	sv.difficulty = 16;
	client_start(&c, SEALED_IK, &sv, NULL, 0);
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_COOKIE);
	assert_int_equal(client_cookie(&c, sv.out, sv.out_len), 0);
	sv.difficulty = SEALED_POW_DIFFICULTY_MAX;
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_DROP);
	sv.difficulty = 16;

	/* A nonce that does not solve the puzzle, with valid MACs. */
	memcpy(good, c.m.pow_nonce, sizeof(good));
	for (i = 0;; i++) {
		c.m.pow_nonce[0] = (uint8_t)(i >> 8);
		c.m.pow_nonce[7] = (uint8_t)i;
		if (sealed_pow_check(c.cookie, c.orig_mac1, c.m.pow_nonce, sv.difficulty) != 0)
			break;
	}
	c.m.noise = c.noise1;
	assert_int_equal(sealed_initiation_encode(&c.m, c.mac1_key, c.cookie, c.msg, sizeof(c.msg),
	                                          &c.msg_len),
	                 0);
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_DROP);

	memcpy(c.m.pow_nonce, good, sizeof(good));
	c.m.noise = c.noise1;
	assert_int_equal(sealed_initiation_encode(&c.m, c.mac1_key, c.cookie, c.msg, sizeof(c.msg),
	                                          &c.msg_len),
	                 0);
	assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_RESPONSE);
	assert_int_equal(client_response(&c, sv.out, sv.out_len), 0);
}

/* --- replay ------------------------------------------------------------------------------ */

static void
fp_of(uint32_t i, uint8_t fp[REPLAY_FP_LEN])
{
	uint8_t b[4] = {(uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};

	replay_fingerprint(b, sizeof(b), fp);
}

static void
test_replay(void **state)
{
	static const uint8_t key[REPLAY_KEY_LEN] = {1, 2, 3};
	struct replay_filter *f = malloc(sizeof(*f));
	uint8_t fp[REPLAY_FP_LEN], other[REPLAY_FP_LEN];
	uint32_t i;

	assert_non_null(f);
	replay_init(f, key);
	fp_of(0, fp);
	fp_of(1, other);
	assert_int_equal(replay_check_and_add(f, fp, NOW), 1);
	assert_int_equal(replay_check_and_add(f, fp, NOW), 0);
	assert_int_equal(replay_check_and_add(f, other, NOW), 1);
	assert_int_equal(replay_check_and_add(f, fp, NOW + REPLAY_WINDOW_SECONDS - 1), 0);
	/* The window ends: fresh again, and remembered from then on. */
	assert_int_equal(replay_check_and_add(f, fp, NOW + REPLAY_WINDOW_SECONDS), 1);
	assert_int_equal(replay_check_and_add(f, fp, NOW + REPLAY_WINDOW_SECONDS), 0);
	assert_int_equal(replay_check_and_add(f, fp, NOW + 2 * REPLAY_WINDOW_SECONDS - 1), 0);
	assert_int_equal(replay_check_and_add(f, other, NOW + REPLAY_WINDOW_SECONDS), 1);

	/* A table that is not full remembers everything. */
	replay_init(f, key);
	for (i = 0; i < SPARSE; i++) {
		fp_of(i, fp);
		assert_int_equal(replay_check_and_add(f, fp, NOW), 1);
	}
	for (i = 0; i < SPARSE; i++) {
		fp_of(i, fp);
		assert_int_equal(replay_check_and_add(f, fp, NOW + 1), 0);
	}

	/* A flood beyond the table: still bounded, the newest remembered, the oldest dropped. */
	replay_init(f, NULL);
	for (i = 0; i < FLOOD; i++) {
		fp_of(i, fp);
		assert_int_equal(replay_check_and_add(f, fp, NOW), 1);
	}
	for (i = FLOOD - RECENT; i < FLOOD; i++) {
		fp_of(i, fp);
		assert_int_equal(replay_check_and_add(f, fp, NOW), 0);
	}
	{
		uint32_t forgotten = 0;

		for (i = 0; i < RECENT; i++) {
			fp_of(i, fp);
			forgotten += (uint32_t)replay_check_and_add(f, fp, NOW);
		}
		assert_true(forgotten > RECENT / 2);
	}
	replay_wipe(f);
	free(f);
}

/* --- records ----------------------------------------------------------------------------- */

struct pair {
	enum record_suite suite;
	struct record_sender tx;
	struct record_receiver rx;
	uint8_t key[RECORD_KEY_LEN];
	uint8_t hdr[RECORD_HEADER_MAX];
	size_t hlen;
};

static const enum record_suite xchacha = RECORD_SUITE_XCHACHA20POLY1305;
static const enum record_suite aes = RECORD_SUITE_AES256GCM;

/* The suite a record test runs in: its cmocka prestate. */
static enum record_suite
suite_of(void **state)
{
	return *(const enum record_suite *)*state;
}

/* A fresh receiver for the pair's key (the old one wiped: it may hold a context). */
static void
rx_restart(struct pair *p)
{
	record_receiver_wipe(&p->rx);
	assert_int_equal(record_receiver_init(&p->rx, p->suite, p->key), 0);
}

static void
pair_wipe(struct pair *p)
{
	record_sender_wipe(&p->tx);
	record_receiver_wipe(&p->rx);
}

static void
pair_init(struct pair *p, enum record_suite suite)
{
	pair_wipe(p);
	p->suite = suite;
	randombytes_buf(p->key, sizeof(p->key));
	assert_int_equal(record_sender_init(&p->tx, suite, p->key, p->hdr, &p->hlen), 0);
	assert_int_equal(p->hlen, record_header_len(suite));
	assert_int_equal(record_receiver_init(&p->rx, suite, p->key), 0);
}

/* Seals one MESSAGE record of len bytes of value v; returns its wire length. */
static size_t
seal_one(struct pair *p, uint8_t v, size_t len, uint8_t *out, size_t cap)
{
	static uint8_t pt[RECORD_PLAINTEXT_MAX];
	size_t out_len;

	memset(pt, v, len);
	assert_int_equal(record_seal(&p->tx, pt, len, false, out, cap, &out_len), 0);
	return out_len;
}

static void
test_record_rekey(void **state)
{
	static struct pair p;
	crypto_secretstream_xchacha20poly1305_state raw, norekey = {0};
	uint8_t wire[RECORD_LEN_PREFIX + 1 + RECORD_OVERHEAD_MAX], pt[RECORD_PLAINTEXT_MAX], b, tag;
	unsigned long long mlen;
	size_t len, used, n;
	uint32_t i;
	const uint32_t total = 2 * RECORD_REKEY_INTERVAL + 3;

	pair_init(&p, xchacha);
	assert_int_equal(crypto_secretstream_xchacha20poly1305_init_pull(&raw, p.hdr, p.key), 0);
	assert_int_equal(record_open(&p.rx, p.hdr, sizeof(p.hdr), &used, pt, sizeof(pt), &n),
	                 RECORD_NEED_MORE);
	for (i = 1; i <= total; i++) {
		b = (uint8_t)i;
		assert_int_equal(record_seal(&p.tx, &b, 1, false, wire, sizeof(wire), &len), 0);
		assert_int_equal(record_open(&p.rx, wire, len, &used, pt, sizeof(pt), &n),
		                 RECORD_OK);
		assert_int_equal(used, len);
		assert_int_equal(n, 1);
		assert_int_equal(pt[0], b);
		/* A plain secretstream reader that rekeys at the interval keeps up... */
		if (i == RECORD_REKEY_INTERVAL + 1) {
			/* ...and one that did not rekey is lost from here. */
			assert_int_not_equal(crypto_secretstream_xchacha20poly1305_pull(
			                             &norekey, pt, &mlen, &tag,
			                             wire + RECORD_LEN_PREFIX,
			                             len - RECORD_LEN_PREFIX, NULL, 0),
			                     0);
		}
		assert_int_equal(crypto_secretstream_xchacha20poly1305_pull(
		                         &raw, pt, &mlen, &tag, wire + RECORD_LEN_PREFIX,
		                         len - RECORD_LEN_PREFIX, NULL, 0),
		                 0);
		assert_int_equal(tag, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
		assert_int_equal(pt[0], b);
		if (i % RECORD_REKEY_INTERVAL == 0) {
			norekey = raw;
			crypto_secretstream_xchacha20poly1305_rekey(&raw);
		}
	}
	assert_int_equal(record_seal(&p.tx, NULL, 0, true, wire, sizeof(wire), &len), 0);
	assert_int_equal(record_open(&p.rx, wire, len, &used, pt, sizeof(pt), &n), RECORD_FINAL);
	assert_int_equal(record_receiver_eof(&p.rx), 0);
	pair_wipe(&p);
}

static void
test_record_lengths(void **state)
{
	static struct pair p;
	static uint8_t wire[2 * RECORD_WIRE_MAX], pt[RECORD_PLAINTEXT_MAX];
	const enum record_suite suite = suite_of(state);
	const size_t overhead = record_overhead(suite);
	const size_t bad[] = {0, 1, overhead - 1, RECORD_PLAINTEXT_MAX + overhead + 1, 0xffff};
	size_t i, len, used, n;

	/* A length out of range is refused from its two bytes alone. */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pair_init(&p, suite);
		assert_int_equal(record_open(&p.rx, p.hdr, p.hlen, &used, pt, sizeof(pt), &n),
		                 RECORD_NEED_MORE);
		wire[0] = (uint8_t)(bad[i] >> 8);
		wire[1] = (uint8_t)bad[i];
		assert_int_equal(record_open(&p.rx, wire, 2, &used, pt, sizeof(pt), &n),
		                 RECORD_ERROR);
		assert_int_equal(record_receiver_eof(&p.rx), -1);
	}

	/* The largest and smallest records. */
	pair_init(&p, suite);
	memcpy(wire, p.hdr, p.hlen);
	len = p.hlen +
	      seal_one(&p, 0x5a, RECORD_PLAINTEXT_MAX, wire + p.hlen, sizeof(wire) - p.hlen);
	assert_int_equal(len, p.hlen + RECORD_LEN_PREFIX + RECORD_PLAINTEXT_MAX + overhead);
	len += seal_one(&p, 0xa5, 1, wire + len, sizeof(wire) - len);
	assert_int_equal(record_open(&p.rx, wire, len, &used, pt, sizeof(pt), &n), RECORD_OK);
	assert_int_equal(n, RECORD_PLAINTEXT_MAX);
	assert_int_equal(pt[RECORD_PLAINTEXT_MAX - 1], 0x5a);
	assert_int_equal(used, p.hlen + RECORD_LEN_PREFIX + RECORD_PLAINTEXT_MAX + overhead);
	assert_int_equal(record_open(&p.rx, wire + used, len - used, &used, pt, sizeof(pt), &n),
	                 RECORD_OK);
	assert_int_equal(n, 1);
	assert_int_equal(pt[0], 0xa5);

	/* The sender's refusals leave it usable. */
	assert_int_equal(record_seal(&p.tx, pt, 0, false, wire, sizeof(wire), &len), -1);
	assert_int_equal(
	        record_seal(&p.tx, pt, RECORD_PLAINTEXT_MAX + 1, false, wire, sizeof(wire), &len),
	        -1);
	assert_int_equal(record_seal(&p.tx, pt, 1, true, wire, sizeof(wire), &len), -1);
	assert_int_equal(record_seal(&p.tx, pt, 10, false, wire,
	                             RECORD_LEN_PREFIX + 10 + overhead - 1, &len),
	                 -1);
	assert_int_equal(len, 0);
	len = seal_one(&p, 7, 10, wire, sizeof(wire));
	assert_int_equal(record_open(&p.rx, wire, len, &used, pt, sizeof(pt), &n), RECORD_OK);
	/* A plaintext buffer below one record is a misuse, and fatal. */
	len = seal_one(&p, 8, 10, wire, sizeof(wire));
	assert_int_equal(record_open(&p.rx, wire, len, &used, pt, RECORD_PLAINTEXT_MAX - 1, &n),
	                 RECORD_ERROR);
	assert_int_equal(record_open(&p.rx, wire, len, &used, pt, sizeof(pt), &n), RECORD_ERROR);
	/* After FINAL the sender refuses. */
	assert_int_equal(record_seal(&p.tx, NULL, 0, true, wire, sizeof(wire), &len), 0);
	assert_int_equal(record_seal(&p.tx, NULL, 0, true, wire, sizeof(wire), &len), -1);
	assert_int_equal(record_seal(&p.tx, pt, 1, false, wire, sizeof(wire), &len), -1);
	pair_wipe(&p);
}

/* Header, three records, FINAL; its record boundaries in ends[]. */
static size_t
sample_stream(struct pair *p, uint8_t *wire, size_t cap, size_t ends[4])
{
	size_t len = p->hlen, i, out_len;

	memcpy(wire, p->hdr, p->hlen);
	for (i = 0; i < 3; i++) {
		len += seal_one(p, (uint8_t)('a' + i), 5 + i, wire + len, cap - len);
		ends[i] = len;
	}
	assert_int_equal(record_seal(&p->tx, NULL, 0, true, wire + len, cap - len, &out_len), 0);
	len += out_len;
	ends[3] = len;
	return len;
}

static void
test_record_tamper(void **state)
{
	static struct pair p;
	uint8_t wire[256], copy[256], got[64];
	size_t ends[4], len, i, k, got_len, records, piece;
	unsigned bit;
	int st;

	pair_init(&p, suite_of(state));
	len = sample_stream(&p, wire, sizeof(wire), ends);

	/* Intact, whole and a byte at a time. */
	for (piece = 0; piece <= 1; piece++) {
		rx_restart(&p);
		assert_int_equal(
		        feed(&p.rx, wire, len, piece, got, sizeof(got), &got_len, &records),
		        RECORD_FINAL);
		assert_int_equal(records, 3);
		assert_int_equal(got_len, 5 + 6 + 7);
		assert_memory_equal(got, "aaaaabbbbbbccccccc", got_len);
		assert_int_equal(record_receiver_eof(&p.rx), 0);
	}

	/* Every bit flipped: never FINAL; an error, or a length now beyond the end (truncation). */
	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(copy, wire, len);
			copy[i] ^= (uint8_t)(1u << bit);
			rx_restart(&p);
			st = feed(&p.rx, copy, len, 0, got, sizeof(got), &got_len, &records);
			assert_int_not_equal(st, RECORD_FINAL);
			assert_int_equal(record_receiver_eof(&p.rx), -1);
			if (st == RECORD_NEED_MORE)
				assert_true(i >= p.hlen);
			/* Only records before the flipped one arrived, intact. */
			for (k = 0; k < 3 && i >= ends[k]; k++)
				;
			assert_true(records <= k);
			assert_memory_equal(got, "aaaaabbbbbbccccccc", got_len);
			/* After an error, even the intact stream is refused. */
			if (st == RECORD_ERROR)
				assert_int_equal(feed(&p.rx, wire, len, 0, got, sizeof(got),
				                      &got_len, &records),
				                 RECORD_ERROR);
		}
	}

	/* Reordered: records 2 and 1 swapped. */
	memcpy(copy, wire, p.hlen);
	memcpy(copy + p.hlen, wire + ends[0], ends[1] - ends[0]);
	memcpy(copy + p.hlen + ends[1] - ends[0], wire + p.hlen, ends[0] - p.hlen);
	memcpy(copy + ends[1], wire + ends[1], len - ends[1]);
	rx_restart(&p);
	assert_int_equal(feed(&p.rx, copy, len, 0, got, sizeof(got), &got_len, &records),
	                 RECORD_ERROR);
	assert_int_equal(records, 0);

	/* Record 2 dropped. */
	memcpy(copy, wire, ends[0]);
	memcpy(copy + ends[0], wire + ends[1], len - ends[1]);
	rx_restart(&p);
	assert_int_equal(feed(&p.rx, copy, len - (ends[1] - ends[0]), 0, got, sizeof(got), &got_len,
	                      &records),
	                 RECORD_ERROR);
	assert_int_equal(records, 1);

	/* FINAL dropped: the stream ends without it, which the receiver reports. */
	for (piece = 0; piece <= 1; piece++) {
		rx_restart(&p);
		assert_int_equal(
		        feed(&p.rx, wire, ends[2], piece, got, sizeof(got), &got_len, &records),
		        RECORD_OK);
		assert_int_equal(records, 3);
		assert_int_equal(record_receiver_eof(&p.rx), -1);
	}
	/* Cut inside a record, or inside the header. */
	rx_restart(&p);
	assert_int_equal(feed(&p.rx, wire, ends[2] - 3, 0, got, sizeof(got), &got_len, &records),
	                 RECORD_NEED_MORE);
	assert_int_equal(record_receiver_eof(&p.rx), -1);
	rx_restart(&p);
	assert_int_equal(feed(&p.rx, wire, 10, 0, got, sizeof(got), &got_len, &records),
	                 RECORD_NEED_MORE);
	assert_int_equal(record_receiver_eof(&p.rx), -1);

	/* Data after FINAL: a byte more, whole or fed later. */
	memcpy(copy, wire, len);
	copy[len] = 0;
	for (piece = 0; piece <= 1; piece++) {
		rx_restart(&p);
		assert_int_equal(
		        feed(&p.rx, copy, len + 1, piece, got, sizeof(got), &got_len, &records),
		        RECORD_ERROR);
		assert_int_equal(records, 3);
	}
	rx_restart(&p);
	assert_int_equal(feed(&p.rx, wire, len, 0, got, sizeof(got), &got_len, &records),
	                 RECORD_FINAL);
	{
		size_t used, n;

		assert_int_equal(record_open(&p.rx, NULL, 0, &used, got, RECORD_PLAINTEXT_MAX, &n),
		                 RECORD_FINAL);
	}

	/* Another key's header and records. */
	p.key[0] ^= 1;
	rx_restart(&p);
	assert_int_equal(feed(&p.rx, wire, len, 0, got, sizeof(got), &got_len, &records),
	                 RECORD_ERROR);
	assert_int_equal(records, 0);
	pair_wipe(&p);
}

/* Records a record_sender never makes: an empty MESSAGE, FINAL with data, other tags. */
static void
test_record_tags(void **state)
{
	static const struct {
		unsigned char tag;
		size_t len;
	} cases[] = {
	        {crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, 0},
	        {crypto_secretstream_xchacha20poly1305_TAG_FINAL, 1},
	        {crypto_secretstream_xchacha20poly1305_TAG_PUSH, 3},
	        {crypto_secretstream_xchacha20poly1305_TAG_REKEY, 3},
	};
	static struct record_receiver rx;
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t key[RECORD_KEY_LEN], wire[128], pt[RECORD_PLAINTEXT_MAX];
	const uint8_t data[3] = {1, 2, 3};
	size_t i, len, used, n;

	randombytes_buf(key, sizeof(key));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(crypto_secretstream_xchacha20poly1305_init_push(&st, wire, key),
		                 0);
		len = RECORD_STREAM_HEADER;
		wire[len] = 0;
		wire[len + 1] = (uint8_t)(cases[i].len + RECORD_STREAM_ABYTES);
		assert_int_equal(crypto_secretstream_xchacha20poly1305_push(
		                         &st, wire + len + RECORD_LEN_PREFIX, NULL, data,
		                         cases[i].len, NULL, 0, cases[i].tag),
		                 0);
		len += RECORD_LEN_PREFIX + cases[i].len + RECORD_STREAM_ABYTES;
		assert_int_equal(record_receiver_init(&rx, xchacha, key), 0);
		assert_int_equal(record_open(&rx, wire, len, &used, pt, sizeof(pt), &n),
		                 RECORD_ERROR);
		assert_int_equal(n, 0);
		assert_int_equal(record_receiver_eof(&rx), -1);
	}
}

static void
test_record_split(void **state)
{
	static struct record_sender tx;
	static struct record_receiver rx;
	struct noise_cipher keyed, keyless;
	uint8_t k[NOISE_KEYLEN], hdr[RECORD_HEADER_MAX];
	const enum record_suite suite = suite_of(state);
	size_t hlen;

	memset(&keyed, 0, sizeof(keyed));
	memset(&keyless, 0, sizeof(keyless));
	randombytes_buf(k, sizeof(k));
	memcpy(keyed.k, k, sizeof(k));
	keyed.has_key = true;
	assert_int_equal(record_init_from_split(&tx, &rx, suite, &keyed, &keyless, hdr, &hlen), -1);
	assert_int_equal(record_init_from_split(&tx, &rx, suite, &keyless, &keyed, hdr, &hlen), -1);
	assert_int_equal(record_seal(&tx, k, 1, false, hdr, sizeof(hdr), &(size_t){0}), -1);
	assert_int_equal(
	        record_init_from_split(&tx, &rx, RECORD_SUITE_NONE, &keyed, &keyed, hdr, &hlen),
	        -1);
	assert_int_equal(record_init_from_split(&tx, &rx, 3, &keyed, &keyed, hdr, &hlen), -1);
	assert_int_equal(hlen, 0);
	assert_int_equal(record_init_from_split(&tx, &rx, suite, &keyed, &keyed, hdr, &hlen), 0);
	assert_int_equal(hlen, record_header_len(suite));
	record_sender_wipe(&tx);
	record_receiver_wipe(&rx);
}

/* --- choosing the suite --------------------------------------------------------------- */

#define X_BIT SEALED_SUITE_BIT(RECORD_SUITE_XCHACHA20POLY1305)
#define A_BIT SEALED_SUITE_BIT(RECORD_SUITE_AES256GCM)

/* The server's first preference the client offers; an empty offer is XChaCha20's. */
static void
test_negotiation(void **state)
{
	static struct server sv;
	static struct client c;
	static const struct {
		enum record_suite prefs[SEALED_SUITE_PREFS_MAX];
		size_t nprefs;
		uint16_t offer;
		enum record_suite want; /* NONE: REJECT 2 */
	} cases[] = {
	        {{RECORD_SUITE_AES256GCM, RECORD_SUITE_XCHACHA20POLY1305},
	         2,
	         OFFER_BOTH,
	         RECORD_SUITE_AES256GCM},
	        {{RECORD_SUITE_XCHACHA20POLY1305, RECORD_SUITE_AES256GCM},
	         2,
	         OFFER_BOTH,
	         RECORD_SUITE_XCHACHA20POLY1305},
	        {{RECORD_SUITE_AES256GCM, RECORD_SUITE_XCHACHA20POLY1305},
	         2,
	         X_BIT,
	         RECORD_SUITE_XCHACHA20POLY1305},
	        {{RECORD_SUITE_XCHACHA20POLY1305, RECORD_SUITE_AES256GCM},
	         2,
	         A_BIT,
	         RECORD_SUITE_AES256GCM},
	        {{RECORD_SUITE_AES256GCM, RECORD_SUITE_XCHACHA20POLY1305},
	         2,
	         0,
	         RECORD_SUITE_XCHACHA20POLY1305},
	        {{RECORD_SUITE_AES256GCM}, 1, OFFER_BOTH | 0xf000, RECORD_SUITE_AES256GCM},
	        {{RECORD_SUITE_XCHACHA20POLY1305}, 1, OFFER_BOTH, RECORD_SUITE_XCHACHA20POLY1305},
	        {{RECORD_SUITE_AES256GCM}, 1, X_BIT, RECORD_SUITE_NONE},
	        {{RECORD_SUITE_AES256GCM}, 1, 0, RECORD_SUITE_NONE},
	        {{RECORD_SUITE_XCHACHA20POLY1305}, 1, A_BIT | 0x8000, RECORD_SUITE_NONE},
	};
	struct sealed_reject r;
	size_t i;
	unsigned pattern;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (pattern = SEALED_IK; pattern <= SEALED_XX; pattern++) {
			server_init(&sv, "server");
			memcpy(sv.prefs, cases[i].prefs, sizeof(sv.prefs));
			sv.nprefs = cases[i].nprefs;
			client_init(&c, "client");
			c.suites = cases[i].offer;
			client_start(&c, pattern, &sv,
			             pattern == SEALED_IK ? (const uint8_t *)EARLY : NULL,
			             pattern == SEALED_IK ? EARLY_LEN : 0);
			if (cases[i].want == RECORD_SUITE_NONE) {
				assert_int_equal(server_initiation(&sv, c.msg, c.msg_len),
				                 V_REJECT);
				assert_int_equal(sealed_reject_decode(sv.out, sv.out_len, &r),
				                 SEALED_OK);
				assert_int_equal(r.code, SEALED_REJECT_SUITE);
				continue;
			}
			if (pattern == SEALED_IK) {
				ik_answered(&sv, &c);
			} else {
				assert_int_equal(server_initiation(&sv, c.msg, c.msg_len),
				                 V_RESPONSE);
				assert_int_equal(client_response(&c, sv.out, sv.out_len), 0);
			}
			assert_int_equal(sv.chosen, cases[i].want);
			assert_int_equal(c.suite, cases[i].want);
			noise_handshake_wipe(&c.hs);
			noise_handshake_wipe(&sv.hs);
		}
	}
}

/*
 * A man in the middle strips AES-256-GCM from the offer and makes mac1 again
 * (its key is public): the offer is in the prologue, so with IK the server
 * cannot read Noise message 1, and with XX the client cannot read message 2.
 */
static void
test_negotiation_tampered(void **state)
{
	static struct server sv;
	static struct client c;
	static const uint16_t forged[] = {X_BIT, 0, A_BIT, OFFER_BOTH | 0x0004};

	size_t i;
	unsigned pattern;

	for (i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		for (pattern = SEALED_IK; pattern <= SEALED_XX; pattern++) {
			server_init(&sv, "server");
			sv.prefs[0] = RECORD_SUITE_XCHACHA20POLY1305;
			sv.prefs[1] = RECORD_SUITE_AES256GCM;
			client_init(&c, "client");
			client_start(&c, pattern, &sv, NULL, 0);
			c.m.suites = forged[i];
			c.m.noise = c.noise1;
			assert_int_equal(sealed_initiation_encode(&c.m, c.mac1_key, NULL, c.msg,
			                                          sizeof(c.msg), &c.msg_len),
			                 0);
			if (pattern == SEALED_IK) {
				assert_int_equal(server_initiation(&sv, c.msg, c.msg_len), V_DROP);
			} else {
				assert_int_equal(server_initiation(&sv, c.msg, c.msg_len),
				                 V_RESPONSE);
				assert_int_equal(client_response(&c, sv.out, sv.out_len), -1);
			}
			noise_handshake_wipe(&c.hs);
			noise_handshake_wipe(&sv.hs);
		}
	}
}

/* --- the small pieces ---------------------------------------------------------------- */

static void
test_tai64n(void **state)
{
	uint8_t a[SEALED_TAI64N_LEN], b[SEALED_TAI64N_LEN];
	uint64_t sec;
	uint32_t nsec;

	assert_int_equal(sealed_tai64n_encode(NOW, 5, a), 0);
	assert_int_equal(a[0], 0x40);
	assert_int_equal(sealed_tai64n_decode(a, &sec, &nsec), 0);
	assert_true(sec == NOW);
	assert_int_equal(nsec, 5);
	assert_int_equal(sealed_tai64n_encode(NOW, 6, b), 0);
	assert_true(sealed_tai64n_compare(a, b) < 0);
	assert_true(sealed_tai64n_compare(b, a) > 0);
	assert_int_equal(sealed_tai64n_compare(a, a), 0);
	assert_int_equal(sealed_tai64n_encode(NOW + 1, 0, b), 0);
	assert_true(sealed_tai64n_compare(a, b) < 0);
	assert_int_equal(sealed_tai64n_encode(0, 999999999, a), 0);
	assert_true(sealed_tai64n_compare(a, b) < 0);

	assert_int_equal(sealed_tai64n_encode(NOW, 1000000000u, a), -1);
	assert_true(sodium_is_zero(a, sizeof(a)));
	assert_int_equal(sealed_tai64n_encode(UINT64_C(1) << 62, 0, a), -1);
	assert_int_equal(sealed_tai64n_decode(a, &sec, &nsec), -1); /* label 0 */
	assert_int_equal(sealed_tai64n_encode(NOW, 0, a), 0);
	a[8] = 0xff;
	assert_int_equal(sealed_tai64n_decode(a, &sec, &nsec), -1);
	a[8] = 0;
	a[0] = 0x80;
	assert_int_equal(sealed_tai64n_decode(a, &sec, &nsec), -1);
	assert_true(sec == 0 && nsec == 0);
}

static void
test_payloads(void **state)
{
	static uint8_t early[SEALED_EARLY_MAX + 1], buf[SEALED_MSG1_PAYLOAD_MAX + 1];
	struct sealed_msg1_payload p;
	uint8_t ts[SEALED_TAI64N_LEN], rp[SEALED_RESPONSE_PAYLOAD_LEN], flags;
	enum record_suite suite;
	const uint8_t *e;
	size_t len, elen;

	memset(early, 'e', sizeof(early));
	assert_int_equal(sealed_tai64n_encode(NOW, 0, ts), 0);
	/* Message 1: empty and largest early data. */
	assert_int_equal(sealed_msg1_payload_encode(ts, NULL, 0, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, SEALED_MSG1_PAYLOAD_MIN);
	assert_int_equal(sealed_msg1_payload_decode(buf, len, &p), 0);
	assert_int_equal(p.early_len, 0);
	assert_null(p.early);
	assert_memory_equal(p.timestamp, ts, sizeof(ts));
	assert_int_equal(
	        sealed_msg1_payload_encode(ts, early, SEALED_EARLY_MAX, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, SEALED_MSG1_PAYLOAD_MAX);
	assert_int_equal(sealed_msg1_payload_decode(buf, len, &p), 0);
	assert_int_equal(p.early_len, SEALED_EARLY_MAX);
	assert_ptr_equal(p.early, buf + SEALED_MSG1_PAYLOAD_MIN);
	assert_int_equal(
	        sealed_msg1_payload_encode(ts, early, SEALED_EARLY_MAX + 1, buf, sizeof(buf), &len),
	        -1);
	assert_int_equal(
	        sealed_msg1_payload_encode(ts, early, 10, buf, SEALED_MSG1_PAYLOAD_MIN + 9, &len),
	        -1);
	assert_int_equal(sealed_msg1_payload_encode(ts, early, 3, buf, sizeof(buf), &len), 0);
	assert_int_equal(sealed_msg1_payload_decode(buf, len - 1, &p), -1);
	assert_int_equal(sealed_msg1_payload_decode(buf, len + 1, &p), -1);
	assert_int_equal(sealed_msg1_payload_decode(buf, SEALED_TAI64N_LEN + 1, &p), -1);
	buf[SEALED_TAI64N_LEN] = 0x40; /* length 16387 > SEALED_EARLY_MAX */
	buf[SEALED_TAI64N_LEN + 1] = 0x03;
	assert_int_equal(sealed_msg1_payload_decode(buf, SEALED_MSG1_PAYLOAD_MIN + 0x4003, &p), -1);
	assert_int_equal(sealed_msg1_payload_encode(ts, early, 3, buf, sizeof(buf), &len), 0);
	buf[8] = 0xff; /* nanoseconds out of range */
	assert_int_equal(sealed_msg1_payload_decode(buf, len, &p), -1);
	assert_int_equal(p.early_len, 0);

	/* FINISH. */
	assert_int_equal(sealed_finish_payload_encode(NULL, 0, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, SEALED_FINISH_PAYLOAD_MIN);
	assert_int_equal(sealed_finish_payload_decode(buf, len, &e, &elen), 0);
	assert_int_equal(elen, 0);
	assert_int_equal(
	        sealed_finish_payload_encode(early, SEALED_EARLY_MAX, buf, sizeof(buf), &len), 0);
	assert_int_equal(sealed_finish_payload_decode(buf, len, &e, &elen), 0);
	assert_int_equal(elen, SEALED_EARLY_MAX);
	assert_int_equal(sealed_finish_payload_decode(buf, len - 1, &e, &elen), -1);
	assert_null(e);
	assert_int_equal(sealed_finish_payload_decode(buf, 1, &e, &elen), -1);
	assert_int_equal(
	        sealed_finish_payload_encode(early, SEALED_EARLY_MAX + 1, buf, sizeof(buf), &len),
	        -1);

	/* RESPONSE. */
	assert_int_equal(sealed_response_payload_encode(aes, SEALED_FLAG_0RTT, rp), 0);
	assert_int_equal(rp[0], 2);
	assert_int_equal(sealed_response_payload_decode(rp, sizeof(rp), OFFER_BOTH, &suite, &flags),
	                 0);
	assert_int_equal(suite, aes);
	assert_int_equal(flags, SEALED_FLAG_0RTT);
	assert_int_equal(sealed_response_payload_encode(aes, 0x02, rp), -1);
	assert_int_equal(sealed_response_payload_encode(RECORD_SUITE_NONE, 0, rp), -1);
	assert_int_equal(sealed_response_payload_encode(3, 0, rp), -1);
	assert_int_equal(sealed_response_payload_encode(xchacha, 0, rp), 0);
	assert_int_equal(rp[0], 1);
	assert_int_equal(
	        sealed_response_payload_decode(rp, sizeof(rp) + 1, OFFER_BOTH, &suite, &flags), -1);
	/* A suite the client did not offer, or an unknown one. */
	rp[0] = 2;
	assert_int_equal(sealed_response_payload_decode(rp, sizeof(rp), SEALED_SUITE_BIT(xchacha),
	                                                &suite, &flags),
	                 -1);
	assert_int_equal(sealed_response_payload_decode(rp, sizeof(rp), 0, &suite, &flags), -1);
	rp[0] = 0;
	assert_int_equal(sealed_response_payload_decode(rp, sizeof(rp), 0xffff, &suite, &flags),
	                 -1);
	rp[0] = 3;
	assert_int_equal(sealed_response_payload_decode(rp, sizeof(rp), 0xffff, &suite, &flags),
	                 -1);
	/* An empty offer is XChaCha20's. */
	rp[0] = 1;
	assert_int_equal(sealed_response_payload_decode(rp, sizeof(rp), 0, &suite, &flags), 0);
	assert_int_equal(suite, xchacha);
	rp[1] = 0x80;
	assert_int_equal(sealed_response_payload_decode(rp, sizeof(rp), OFFER_BOTH, &suite, &flags),
	                 -1);
	assert_int_equal(flags, 0);
	assert_int_equal(suite, RECORD_SUITE_NONE);
}

static void
test_framing(void **state)
{
	static struct server sv;
	static struct client c;
	static uint8_t buf[SEALED_MESSAGE_MAX];
	struct sealed_initiation m;
	struct sealed_frame f;
	struct sealed_reject r;
	uint8_t rej[SEALED_REJECT_LEN + 1];
	size_t total, i, len;

	server_init(&sv, "server");
	client_init(&c, "client");
	client_start(&c, SEALED_IK, &sv, (const uint8_t *)EARLY, EARLY_LEN);

	/* Framing a byte at a time: NEED_MORE until the length is known. */
	for (i = 0; i < SEALED_HEADER_LEN; i++)
		assert_int_equal(sealed_frame_length(c.msg, i, &total), SEALED_NEED_MORE);
	assert_int_equal(sealed_frame_length(c.msg, SEALED_HEADER_LEN, &total), SEALED_OK);
	assert_int_equal(total, c.msg_len);
	assert_int_equal(sealed_frame_length((const uint8_t *)"GET", 3, &total),
	                 SEALED_ERR_MALFORMED);
	assert_int_equal(total, 0);
	buf[0] = SEALED_COOKIE;
	assert_int_equal(sealed_frame_length(buf, 1, &total), SEALED_OK);
	assert_int_equal(total, SEALED_COOKIE_MSG_LEN);
	buf[0] = SEALED_REJECT;
	assert_int_equal(sealed_frame_length(buf, 1, &total), SEALED_OK);
	assert_int_equal(total, SEALED_REJECT_LEN);
	/* Lengths beyond what the type can have, so buffers stay bounded. */
	memcpy(buf, c.msg, SEALED_HEADER_LEN);
	buf[6] = 0xff;
	buf[7] = 0xff;
	assert_int_equal(sealed_frame_length(buf, SEALED_HEADER_LEN, &total), SEALED_ERR_MALFORMED);
	buf[0] = SEALED_RESPONSE;
	buf[1] = SEALED_VERSION;
	buf[2] = 0;
	buf[3] = SEALED_XX2_LEN + 1;
	assert_int_equal(sealed_frame_length(buf, 3, &total), SEALED_NEED_MORE);
	assert_int_equal(sealed_frame_length(buf, 4, &total), SEALED_ERR_MALFORMED);
	buf[3] = SEALED_XX2_LEN;
	assert_int_equal(sealed_frame_length(buf, 4, &total), SEALED_OK);
	assert_int_equal(total, SEALED_RESPONSE_MAX);
	buf[0] = SEALED_FINISH;
	buf[2] = (uint8_t)(SEALED_XX3_MAX >> 8);
	buf[3] = (uint8_t)SEALED_XX3_MAX;
	assert_int_equal(sealed_frame_length(buf, 4, &total), SEALED_OK);
	assert_int_equal(total, SEALED_FINISH_MAX);
	buf[3]++;
	assert_int_equal(sealed_frame_length(buf, 4, &total), SEALED_ERR_MALFORMED);

	/* What the server rejects, and with which code. */
	memcpy(buf, c.msg, c.msg_len);
	buf[1] = 2;
	assert_int_equal(sealed_frame_length(buf, 2, &total), SEALED_ERR_VERSION);
	assert_int_equal(sealed_initiation_decode(buf, c.msg_len, &m), SEALED_ERR_VERSION);
	assert_int_equal(server_initiation(&sv, buf, c.msg_len), V_REJECT);
	assert_int_equal(sv.out_len, SEALED_REJECT_LEN);
	assert_int_equal(sealed_reject_decode(sv.out, sv.out_len, &r), SEALED_OK);
	assert_int_equal(r.code, SEALED_REJECT_VERSION);
	assert_int_equal(r.version, SEALED_VERSION);
	memcpy(buf, c.msg, c.msg_len);
	buf[2] = 2;
	assert_int_equal(sealed_initiation_decode(buf, c.msg_len, &m), SEALED_ERR_PATTERN);
	assert_int_equal(sealed_reject_code(SEALED_ERR_PATTERN), SEALED_REJECT_PATTERN);
	memcpy(buf, c.msg, c.msg_len);
	buf[4] = 0x80; /* unknown suites are the server's choice to ignore */
	buf[5] = 0x00;
	assert_int_equal(sealed_initiation_decode(buf, c.msg_len, &m), SEALED_OK);
	assert_int_equal(m.suites, 0x8000);
	assert_int_equal(sealed_reject_code(SEALED_ERR_SUITE), SEALED_REJECT_SUITE);
	memcpy(buf, c.msg, c.msg_len);
	buf[3] = 0x02; /* reserved flag */
	assert_int_equal(sealed_initiation_decode(buf, c.msg_len, &m), SEALED_ERR_MALFORMED);
	assert_int_equal(sealed_reject_code(SEALED_ERR_MALFORMED), 0);
	memcpy(buf, c.msg, c.msg_len);
	buf[c.msg_len - 1] = 1; /* mac2 without the cookie flag */
	assert_int_equal(sealed_initiation_decode(buf, c.msg_len, &m), SEALED_ERR_MALFORMED);
	memcpy(buf, c.msg, c.msg_len);
	buf[c.msg_len - 2 * SEALED_MAC_LEN - 1] = 1; /* pow nonce without the cookie flag */
	assert_int_equal(sealed_initiation_decode(buf, c.msg_len, &m), SEALED_ERR_MALFORMED);
	assert_null(m.msg);
	assert_int_equal(sealed_initiation_decode(c.msg, c.msg_len, &m), SEALED_OK);
	assert_ptr_equal(m.epub, c.msg + SEALED_HEADER_LEN);
	assert_int_equal(m.noise_len, SEALED_IK1_MIN + EARLY_LEN);

	/* Noise lengths a pattern cannot have. */
	assert_int_equal(sealed_noise1_len(SEALED_XX, 1), 0);
	assert_int_equal(sealed_noise1_len(SEALED_IK, SEALED_EARLY_MAX + 1), 0);
	assert_int_equal(sealed_noise1_len(2, 0), 0);
	assert_null(sealed_noise_name(2));
	c.m.noise = c.noise1;
	c.m.noise_len = SEALED_IK1_MIN - 1;
	assert_int_equal(sealed_initiation_encode(&c.m, c.mac1_key, NULL, buf, sizeof(buf), &len),
	                 -1);
	c.m.pattern = SEALED_XX;
	c.m.noise_len = SEALED_XX1_LEN + 1;
	assert_int_equal(sealed_initiation_encode(&c.m, c.mac1_key, NULL, buf, sizeof(buf), &len),
	                 -1);
	c.m.noise_len = SEALED_XX1_LEN;
	assert_int_equal(sealed_initiation_encode(&c.m, c.mac1_key, NULL, buf, 79, &len), -1);
	assert_int_equal(sealed_initiation_encode(&c.m, c.mac1_key, NULL, buf, 80, &len), 0);
	assert_int_equal(len, 80);

	/* RESPONSE and FINISH frames. */
	assert_int_equal(sealed_response_encode(SEALED_IK, buf, SEALED_XX2_LEN, rej, 0, &len), -1);
	assert_int_equal(
	        sealed_response_encode(SEALED_XX, c.noise1, SEALED_XX2_LEN, buf, sizeof(buf), &len),
	        0);
	assert_int_equal(sealed_response_decode(buf, len, SEALED_XX, &f), SEALED_OK);
	assert_int_equal(f.noise_len, SEALED_XX2_LEN);
	assert_int_equal(sealed_response_decode(buf, len, SEALED_IK, &f), SEALED_ERR_MALFORMED);
	assert_int_equal(sealed_response_decode(buf, len, 7, &f), SEALED_ERR_MALFORMED);
	buf[1] = 0;
	assert_int_equal(sealed_response_decode(buf, len, SEALED_XX, &f), SEALED_ERR_VERSION);
	assert_int_equal(sealed_finish_encode(c.noise1, SEALED_XX3_MIN - 1, buf, sizeof(buf), &len),
	                 -1);
	assert_int_equal(sealed_finish_encode(c.noise1, SEALED_XX3_MIN, buf, sizeof(buf), &len), 0);
	assert_int_equal(sealed_finish_decode(buf, len, &f), SEALED_OK);
	assert_int_equal(sealed_response_decode(buf, len, SEALED_XX, &f), SEALED_ERR_MALFORMED);

	/* REJECT. */
	assert_int_equal(sealed_reject_encode(SEALED_REJECT_BUSY, rej, sizeof(rej), &len), 0);
	assert_int_equal(sealed_reject_decode(rej, len, &r), SEALED_OK);
	assert_int_equal(r.code, SEALED_REJECT_BUSY);
	assert_int_equal(sealed_reject_encode(0, rej, sizeof(rej), &len), -1);
	assert_int_equal(sealed_reject_encode(5, rej, sizeof(rej), &len), -1);
	assert_int_equal(sealed_reject_encode(1, rej, 2, &len), -1);
	rej[2] = 9;
	assert_int_equal(sealed_reject_decode(rej, SEALED_REJECT_LEN, &r), SEALED_ERR_MALFORMED);
	rej[2] = 1;
	rej[1] = 7; /* another version is fine: it is what the server speaks */
	assert_int_equal(sealed_reject_decode(rej, SEALED_REJECT_LEN, &r), SEALED_OK);
	assert_int_equal(r.version, 7);
	assert_int_equal(sealed_reject_decode(rej, SEALED_REJECT_LEN + 1, &r),
	                 SEALED_ERR_MALFORMED);
}

static void
test_prologue_and_source(void **state)
{
	uint8_t p[SEALED_PROLOGUE_LEN], s[SEALED_SOURCE_LEN];
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
	struct sockaddr sa = {.sa_family = AF_UNIX};
	static const uint8_t mapped[SEALED_SOURCE_LEN] = {0, 0, 0,    0,    0,   0, 0, 0,
	                                                  0, 0, 0xff, 0xff, 192, 0, 2, 7};
	static const uint8_t header[SEALED_HEADER_LEN] = {0xF5, 1, 1, 0, 0, 1, 0, 32};

	sealed_prologue(SEALED_XX, SEALED_SUITES_IMPLICIT, SEALED_XX1_LEN, p);
	assert_memory_equal(p, "fived sealed v1", 15);
	assert_memory_equal(p + 15, header, sizeof(header));

	inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
	assert_int_equal(sealed_source((const struct sockaddr *)&sin, s), 0);
	assert_memory_equal(s, mapped, sizeof(mapped));
	inet_pton(AF_INET6, "::ffff:192.0.2.7", &sin6.sin6_addr);
	assert_int_equal(sealed_source((const struct sockaddr *)&sin6, s), 0);
	assert_memory_equal(s, mapped, sizeof(mapped));
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	assert_int_equal(sealed_source((const struct sockaddr *)&sin6, s), 0);
	assert_memory_equal(s, &sin6.sin6_addr, sizeof(s));
	assert_int_equal(sealed_source(&sa, s), -1);
	assert_true(sodium_is_zero(s, sizeof(s)));
	assert_int_equal(sealed_source(NULL, s), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ik_handshake),
	        cmocka_unit_test(test_ik_cookie_handshake),
	        cmocka_unit_test(test_cookie_handshake_buckets),
	        cmocka_unit_test(test_xx_handshake),
	        cmocka_unit_test(test_flip_initiation),
	        cmocka_unit_test(test_flip_response),
	        cmocka_unit_test(test_flip_cookie),
	        cmocka_unit_test(test_flip_finish),
	        cmocka_unit_test(test_mac1_keys),
	        cmocka_unit_test(test_cookie_rotation),
	        cmocka_unit_test(test_cookie_mac2),
	        cmocka_unit_test(test_cookie_seal),
	        cmocka_unit_test(test_pow),
	        cmocka_unit_test(test_pow_in_handshake),
	        cmocka_unit_test(test_replay),
	        cmocka_unit_test(test_record_rekey),
	        cmocka_unit_test_prestate(test_record_lengths, (void *)&xchacha),
	        cmocka_unit_test_prestate(test_record_lengths, (void *)&aes),
	        cmocka_unit_test_prestate(test_record_tamper, (void *)&xchacha),
	        cmocka_unit_test_prestate(test_record_tamper, (void *)&aes),
	        cmocka_unit_test(test_record_tags),
	        cmocka_unit_test(test_negotiation),
	        cmocka_unit_test(test_negotiation_tampered),
	        cmocka_unit_test_prestate(test_record_split, (void *)&xchacha),
	        cmocka_unit_test_prestate(test_record_split, (void *)&aes),
	        cmocka_unit_test(test_tai64n),
	        cmocka_unit_test(test_payloads),
	        cmocka_unit_test(test_framing),
	        cmocka_unit_test(test_prologue_and_source),
	};

	return UNIT_RUN_WITH_SODIUM(tests, NULL, NULL);
}
