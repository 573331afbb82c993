/*
 * The sealed handshake's decoders and the server's INITIATION checks, on
 * attacker bytes.  The first input byte is a mode, the rest a message:
 *
 *   bit 0       recompute mac1 before checking (so mutations get past it)
 *   bit 1       recompute mac2 with the cookie this server would have made
 *   bit 2       solve the proof of work afresh
 *   bits 3..5   the difficulty the server demands, 0..7
 *
 * The message goes to every decoder; whatever decodes must encode back to
 * the same bytes.  As an INITIATION it goes through the server's checks in
 * order (mac1, cookie, proof of work) and, when all pass, to a Noise
 * responder whose keys are fixed, so seeds recorded against these keys run
 * all the way to a RESPONSE.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "crypto/noise.h"
#include "fuzz.h"
#include "proto/sealed.h"

#define FUZZ_NOW         UINT64_C(1700000070)
#define MODE_MAC1        0x01
#define MODE_MAC2        0x02
#define MODE_POW         0x04
#define MODE_DIFF_SHIFT  3
#define MODE_DIFF_MASK   0x07
#define POW_ATTEMPTS     4096 /* difficulty 7 needs about 128 */
#define LABEL_STATIC     "fuzz sealed server static"
#define LABEL_EPHEMERAL  "fuzz sealed server ephemeral"
#define LABEL_SECRET_CUR "fuzz sealed cookie secret current"
#define LABEL_SECRET_OLD "fuzz sealed cookie secret previous"
#define LABEL_MAC1       "fuzz sealed other mac1"

/* Everything fixed the harness (and its seed generator) needs. */
struct fixture {
	uint8_t s_priv[NOISE_DHLEN], s_pub[NOISE_DHLEN], e_priv[NOISE_DHLEN];
	uint8_t cur[SEALED_KEY_LEN], prev[SEALED_KEY_LEN];
	uint8_t source[SEALED_SOURCE_LEN];
	uint8_t other_mac1[SEALED_MAC_LEN];
};

static void
derive(uint8_t *out, size_t len, const char *label)
{
	crypto_generichash(out, len, (const uint8_t *)label, strlen(label), NULL, 0);
}

static void
fixture_init(struct fixture *fx)
{
	derive(fx->s_priv, sizeof(fx->s_priv), LABEL_STATIC);
	derive(fx->e_priv, sizeof(fx->e_priv), LABEL_EPHEMERAL);
	if (crypto_scalarmult_curve25519_base(fx->s_pub, fx->s_priv) != 0)
		__builtin_trap();
	derive(fx->cur, sizeof(fx->cur), LABEL_SECRET_CUR);
	derive(fx->prev, sizeof(fx->prev), LABEL_SECRET_OLD);
	memset(fx->source, 0, sizeof(fx->source));
	fx->source[10] = fx->source[11] = 0xff;
	fx->source[12] = 198;
	fx->source[13] = 51;
	fx->source[14] = 100;
	fx->source[15] = 9;
	derive(fx->other_mac1, sizeof(fx->other_mac1), LABEL_MAC1);
}

static const uint8_t *
pub_for(const struct fixture *fx, unsigned pattern)
{
	return pattern == SEALED_IK ? fx->s_pub : NULL;
}

/* --- every decoder: decoded means it encodes back to the same bytes -------------------- */

static void
check_same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (alen != blen || memcmp(a, b, alen) != 0)
		__builtin_trap();
}

static void
decoders(const struct fixture *fx, const uint8_t *in, size_t len)
{
	static uint8_t out[SEALED_MESSAGE_MAX];
	struct sealed_frame f;
	struct sealed_cookie_msg cm;
	struct sealed_reject rj;
	struct sealed_msg1_payload p;
	uint8_t key[SEALED_KEY_LEN], cookie[SEALED_COOKIE_LEN], flags;
	enum record_suite suite;
	uint64_t sec;
	uint32_t nsec;
	const uint8_t *early;
	size_t total, n, early_len;
	unsigned pattern;

	if (sealed_frame_length(in, len, &total) == SEALED_OK && total == 0)
		__builtin_trap();
	for (pattern = SEALED_IK; pattern <= SEALED_XX; pattern++) {
		if (sealed_response_decode(in, len, pattern, &f) != SEALED_OK)
			continue;
		if (sealed_response_encode(pattern, f.noise, f.noise_len, out, sizeof(out), &n) !=
		    0)
			__builtin_trap();
		check_same(out, n, in, len);
	}
	if (sealed_finish_decode(in, len, &f) == SEALED_OK) {
		if (sealed_finish_encode(f.noise, f.noise_len, out, sizeof(out), &n) != 0)
			__builtin_trap();
		check_same(out, n, in, len);
	}
	if (sealed_cookie_decode(in, len, &cm) == SEALED_OK) {
		if (cm.difficulty > SEALED_POW_DIFFICULTY_MAX)
			__builtin_trap();
		sealed_cookie_key(fx->s_pub, key);
		if (sealed_cookie_open(&cm, key, fx->other_mac1, cookie) != 0 &&
		    !sodium_is_zero(cookie, sizeof(cookie)))
			__builtin_trap();
	}
	if (sealed_reject_decode(in, len, &rj) == SEALED_OK && rj.version == SEALED_VERSION) {
		if (sealed_reject_encode(rj.code, out, sizeof(out), &n) != 0)
			__builtin_trap();
		check_same(out, n, in, len);
	}
	if (sealed_msg1_payload_decode(in, len, &p) == 0) {
		if (sealed_msg1_payload_encode(p.timestamp, p.early, p.early_len, out, sizeof(out),
		                               &n) != 0)
			__builtin_trap();
		check_same(out, n, in, len);
	}
	if (sealed_finish_payload_decode(in, len, &early, &early_len) == 0) {
		if (sealed_finish_payload_encode(early, early_len, out, sizeof(out), &n) != 0)
			__builtin_trap();
		check_same(out, n, in, len);
	}
	if (sealed_response_payload_decode(in, len, 0xffff, &suite, &flags) == 0) {
		if (sealed_response_payload_encode(suite, flags, out) != 0)
			__builtin_trap();
		check_same(out, SEALED_RESPONSE_PAYLOAD_LEN, in, len);
	}
	if (len >= SEALED_TAI64N_LEN && sealed_tai64n_decode(in, &sec, &nsec) == 0) {
		if (sealed_tai64n_encode(sec, nsec, out) != 0)
			__builtin_trap();
		check_same(out, SEALED_TAI64N_LEN, in, SEALED_TAI64N_LEN);
	}
}

/* --- the server's checks ---------------------------------------------------------------- */

/* Rewrites the parts of a decodable INITIATION the mode asks for. */
static void
repair(const struct fixture *fx, uint8_t mode, unsigned difficulty, uint8_t *msg, size_t len)
{
	struct sealed_initiation m;
	uint8_t key[SEALED_KEY_LEN], cookie[SEALED_COOKIE_LEN], mac1[SEALED_MAC_LEN];
	uint8_t *trailer;
	bool flagged;

	if (sealed_initiation_decode(msg, len, &m) != SEALED_OK)
		return;
	trailer = msg + SEALED_HEADER_LEN + m.noise_len;
	flagged = (m.flags & SEALED_FLAG_COOKIE) != 0;
	sealed_mac1_key(pub_for(fx, m.pattern), key);
	sealed_cookie_compute(fx->cur, fx->source, m.epub, sealed_cookie_bucket(FUZZ_NOW), cookie);
	if ((mode & MODE_POW) != 0 && flagged) {
		sealed_initiation_original_mac1(&m, key, mac1);
		if (sealed_pow_solve(cookie, mac1, difficulty, POW_ATTEMPTS, trailer) != 0)
			__builtin_trap();
	}
	if ((mode & MODE_MAC1) != 0)
		sealed_mac1(key, msg, SEALED_HEADER_LEN + m.noise_len + SEALED_POW_NONCE_LEN,
		            trailer + SEALED_POW_NONCE_LEN);
	if ((mode & MODE_MAC2) != 0 && flagged)
		sealed_mac2(cookie, msg, len - SEALED_MAC_LEN,
		            trailer + SEALED_POW_NONCE_LEN + SEALED_MAC_LEN);
}

/* Once every check passed: the message encodes back exactly, and Noise may run. */
static void
responder(const struct fixture *fx, const struct sealed_initiation *m,
          const uint8_t cookie[SEALED_COOKIE_LEN], const uint8_t key[SEALED_KEY_LEN])
{
	static uint8_t out[SEALED_MESSAGE_MAX], payload[SEALED_MSG1_PAYLOAD_MAX];
	struct sealed_initiation again = *m;
	struct sealed_msg1_payload p;
	struct sealed_frame f;
	struct noise_handshake hs;
	uint8_t prologue[SEALED_PROLOGUE_LEN], rp[SEALED_RESPONSE_PAYLOAD_LEN];
	static const enum record_suite prefs[] = {RECORD_SUITE_AES256GCM,
	                                          RECORD_SUITE_XCHACHA20POLY1305};
	enum record_suite suite, got;
	uint8_t noise2[SEALED_XX2_LEN], flags;
	size_t n, plen, n2;

	if (sealed_initiation_encode(&again, key,
	                             (m->flags & SEALED_FLAG_COOKIE) != 0 ? cookie : NULL, out,
	                             sizeof(out), &n) != 0)
		__builtin_trap();
	check_same(out, n, m->msg, m->msg_len);

	sealed_prologue(m->pattern, m->suites, m->noise_len, prologue);
	if (noise_handshake_init(&hs, sealed_noise_name(m->pattern), NOISE_RESPONDER, prologue,
	                         sizeof(prologue), fx->s_priv, NULL) != 0 ||
	    noise_handshake_set_ephemeral(&hs, fx->e_priv) != 0)
		__builtin_trap();
	if (noise_read_message(&hs, m->noise, m->noise_len, payload, sizeof(payload), &plen) != 0)
		goto out;
	if (m->pattern == SEALED_IK ? sealed_msg1_payload_decode(payload, plen, &p) != 0
	                            : plen != 0)
		goto out;
	if ((suite = sealed_suite_choose(m->suites, prefs, 2)) == RECORD_SUITE_NONE)
		goto out;
	if (sealed_response_payload_encode(suite, SEALED_FLAG_0RTT, rp) != 0)
		__builtin_trap();
	/* A bad ephemeral can only fail here, at the first Diffie-Hellman. */
	if (noise_write_message(&hs, rp, sizeof(rp), noise2, sizeof(noise2), &n2) != 0)
		goto out;
	if (sealed_response_encode(m->pattern, noise2, n2, out, sizeof(out), &n) != 0 ||
	    sealed_response_decode(out, n, m->pattern, &f) != SEALED_OK ||
	    sealed_frame_length(out, n, &plen) != SEALED_OK || plen != n ||
	    sealed_response_payload_decode(rp, sizeof(rp), m->suites, &got, &flags) != 0 ||
	    got != suite)
		__builtin_trap();
out:
	noise_handshake_wipe(&hs);
}

/* The server's choice, in either order of preference: a suite the offer holds, or none. */
static void
check_choice(uint16_t suites)
{
	static const enum record_suite orders[2][2] = {
	        {RECORD_SUITE_AES256GCM, RECORD_SUITE_XCHACHA20POLY1305},
	        {RECORD_SUITE_XCHACHA20POLY1305, RECORD_SUITE_AES256GCM},
	};
	uint16_t held = suites != 0 ? suites : SEALED_SUITES_IMPLICIT;
	enum record_suite got;
	size_t i;

	for (i = 0; i < 2; i++) {
		got = sealed_suite_choose(suites, orders[i], 2);
		if (got == RECORD_SUITE_NONE
		            ? (held & (SEALED_SUITE_BIT(orders[i][0]) |
		                       SEALED_SUITE_BIT(orders[i][1]))) != 0
		            : (held & SEALED_SUITE_BIT(got)) == 0 ||
		                      ((held & SEALED_SUITE_BIT(orders[i][0])) != 0 &&
		                       got != orders[i][0]))
			__builtin_trap();
	}
}

static void
server(const struct fixture *fx, unsigned difficulty, const uint8_t *msg, size_t len)
{
	static uint8_t sealed[SEALED_COOKIE_MSG_LEN];
	struct sealed_initiation m;
	struct sealed_cookie_msg cm;
	uint8_t key[SEALED_KEY_LEN], ckey[SEALED_KEY_LEN], cookie[SEALED_COOKIE_LEN];
	uint8_t mac1[SEALED_MAC_LEN], opened[SEALED_COOKIE_LEN];
	size_t total, n;
	int st;

	st = sealed_frame_length(msg, len, &total);
	if (st != SEALED_OK || total != len)
		return;
	if (sealed_initiation_decode(msg, len, &m) != SEALED_OK)
		return;
	if (m.msg != msg || m.msg_len != len || m.epub != msg + SEALED_HEADER_LEN ||
	    SEALED_INITIATION_OVERHEAD + m.noise_len != len)
		__builtin_trap();
	check_choice(m.suites);
	sealed_mac1_key(pub_for(fx, m.pattern), key);
	if (sealed_initiation_check_mac1(&m, key) != 0)
		return;

	/* The COOKIE this server would answer with opens for the client. */
	sealed_initiation_original_mac1(&m, key, mac1);
	if ((m.flags & SEALED_FLAG_COOKIE) == 0 && sodium_memcmp(mac1, m.mac1, sizeof(mac1)) != 0)
		__builtin_trap();
	sealed_cookie_compute(fx->cur, fx->source, m.epub, sealed_cookie_bucket(FUZZ_NOW), cookie);
	sealed_cookie_key(pub_for(fx, m.pattern), ckey);
	if (sealed_cookie_seal(ckey, cookie, mac1, difficulty, sealed, sizeof(sealed), &n) != 0 ||
	    sealed_cookie_decode(sealed, n, &cm) != SEALED_OK ||
	    sealed_cookie_open(&cm, ckey, mac1, opened) != 0 ||
	    memcmp(opened, cookie, sizeof(cookie)) != 0)
		__builtin_trap();

	if ((m.flags & SEALED_FLAG_COOKIE) != 0) {
		if (sealed_initiation_check_cookie(&m, fx->cur, fx->prev, fx->source, FUZZ_NOW,
		                                   cookie) != 0)
			return;
		if (sealed_initiation_check_pow(&m, key, cookie, difficulty) != 0)
			return;
	}
	responder(fx, &m, cookie, key);
}

FUZZ_INITIALIZE_SODIUM()

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t msg[SEALED_MESSAGE_MAX];
	struct fixture fx;
	unsigned difficulty;
	uint8_t mode;

	if (size < 1)
		return 0;
	fixture_init(&fx);
	mode = data[0];
	difficulty = (mode >> MODE_DIFF_SHIFT) & MODE_DIFF_MASK;
	data++;
	size--;
	decoders(&fx, data, size);
	if (size > sizeof(msg))
		return 0;
	memcpy(msg, data, size);
	repair(&fx, mode, difficulty, msg, size);
	server(&fx, difficulty, msg, size);
	return 0;
}
