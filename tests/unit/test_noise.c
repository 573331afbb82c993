/*
 * The Noise handshake: every published vector of the suite, then tampering,
 * truncation, wrong keys, turn order and the API's refusals.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "crypto/noise.h"
#include "unit.h"

/* Relative to the repository root, where make test-unit runs; FIVE_VECTORS_DIR overrides. */
#define VECTORS_DIR  "tests/vectors"
#define VECTORS_FILE "noise_25519_ChaChaPoly_BLAKE2b.json"
#define PATH_MAX_LEN 4096
#define HEX_MAX      1024 /* bytes of any hex field in the vectors */
#define MSG_MAX      2048 /* handshake and transport messages in these tests */
#define MAX_MSGS     4    /* handshake messages of IK and XX, rounded up */

static const uint8_t test_payload[] = "payload!";

/* --- the vectors ----------------------------------------------------------- */

struct hexbuf {
	uint8_t b[HEX_MAX];
	size_t len;
	bool present;
};

static int
get_hex(json_t *obj, const char *key, struct hexbuf *out)
{
	json_t *v = json_object_get(obj, key);
	const char *s;

	memset(out, 0, sizeof(*out));
	if (v == NULL)
		return 0;
	if ((s = json_string_value(v)) == NULL ||
	    sodium_hex2bin(out->b, sizeof(out->b), s, strlen(s), NULL, &out->len, NULL) != 0)
		return -1;
	out->present = true;
	return 0;
}

/* The numbers of the psk modifiers in the name, in order: "NNpsk0+psk2" gives 0, 2. */
static unsigned
psk_indices(const char *name, unsigned idx[NOISE_MAX_PSKS])
{
	const char *p = name;
	unsigned n = 0;

	while ((p = strstr(p, "psk")) != NULL && n < NOISE_MAX_PSKS) {
		idx[n++] = (unsigned)(p[3] - '0');
		p += 3;
	}
	return n;
}

/* One-way patterns have a one-letter name: "Noise_N_...", "Noise_Kpsk0_...". */
static bool
one_way_name(const char *name)
{
	const char *p = name + strlen("Noise_");

	return p[0] != '\0' && (p[1] == '_' || (p[1] >= 'a' && p[1] <= 'z'));
}

static int
get_field(json_t *v, const char *pfx, const char *field, struct hexbuf *out)
{
	char key[64];

	snprintf(key, sizeof(key), "%s%s", pfx, field);
	return get_hex(v, key, out);
}

static int
setup_side(struct noise_handshake *hs, json_t *v, const char *name, enum noise_role role)
{
	const char *pfx = role == NOISE_INITIATOR ? "init_" : "resp_";
	struct hexbuf prologue, s, rs, e, psk;
	unsigned idx[NOISE_MAX_PSKS], npsk, i;
	json_t *psks;
	char key[64];

	if (get_field(v, pfx, "prologue", &prologue) != 0 || get_field(v, pfx, "static", &s) != 0 ||
	    get_field(v, pfx, "remote_static", &rs) != 0 || get_field(v, pfx, "ephemeral", &e) != 0)
		return -1;
	if ((s.present && s.len != NOISE_DHLEN) || (rs.present && rs.len != NOISE_DHLEN) ||
	    (e.present && e.len != NOISE_DHLEN))
		return -1;
	if (noise_handshake_init(hs, name, role, prologue.b, prologue.len, s.present ? s.b : NULL,
	                         rs.present ? rs.b : NULL) != 0)
		return -1;
	snprintf(key, sizeof(key), "%spsks", pfx);
	psks = json_object_get(v, key);
	npsk = psk_indices(name, idx);
	if (json_array_size(psks) != npsk)
		return -1;
	for (i = 0; i < npsk; i++) {
		json_t *item = json_array_get(psks, i);
		const char *hex = json_string_value(item);

		if (hex == NULL ||
		    sodium_hex2bin(psk.b, sizeof(psk.b), hex, strlen(hex), NULL, &psk.len, NULL) !=
		            0 ||
		    psk.len != NOISE_PSKLEN)
			return -1;
		if (noise_handshake_set_psk(hs, idx[i], psk.b) != 0)
			return -1;
	}
	if (e.present && noise_handshake_set_ephemeral(hs, e.b) != 0)
		return -1;
	return 0;
}

/* Runs one vector; returns NULL or what went wrong. */
static const char *
run_vector(json_t *v)
{
	struct noise_handshake ini, rsp;
	struct noise_cipher ini_send, ini_recv, rsp_send, rsp_recv;
	struct hexbuf payload, ct, want_h;
	uint8_t out[MSG_MAX], pt[MSG_MAX], h1[NOISE_HASHLEN], h2[NOISE_HASHLEN];
	const char *name = json_string_value(json_object_get(v, "protocol_name"));
	json_t *msgs = json_object_get(v, "messages");
	const char *why = NULL;
	bool one_way;
	size_t i, out_len, pt_len;

	memset(&ini, 0, sizeof(ini));
	memset(&rsp, 0, sizeof(rsp));
	memset(&ini_send, 0, sizeof(ini_send));
	memset(&ini_recv, 0, sizeof(ini_recv));
	memset(&rsp_send, 0, sizeof(rsp_send));
	memset(&rsp_recv, 0, sizeof(rsp_recv));
	if (name == NULL || !json_is_array(msgs) || get_hex(v, "handshake_hash", &want_h) != 0) {
		why = "malformed vector";
		goto out;
	}
	one_way = one_way_name(name);
	if (setup_side(&ini, v, name, NOISE_INITIATOR) != 0 ||
	    setup_side(&rsp, v, name, NOISE_RESPONDER) != 0) {
		why = "setup";
		goto out;
	}
	for (i = 0; i < json_array_size(msgs); i++) {
		json_t *m = json_array_get(msgs, i);
		bool from_ini = one_way || i % 2 == 0;
		bool handshake = !noise_handshake_complete(&ini);

		if (get_hex(m, "payload", &payload) != 0 || get_hex(m, "ciphertext", &ct) != 0) {
			why = "malformed message";
			goto out;
		}
		if (handshake) {
			if (noise_write_message(from_ini ? &ini : &rsp, payload.b, payload.len, out,
			                        sizeof(out), &out_len) != 0) {
				why = "write_message";
				goto out;
			}
		} else if (noise_cipher_encrypt(from_ini ? &ini_send : &rsp_send, NULL, 0,
		                                payload.b, payload.len, out) != 0) {
			why = "transport encrypt";
			goto out;
		} else {
			out_len = payload.len + NOISE_TAGLEN;
		}
		if (out_len != ct.len || memcmp(out, ct.b, ct.len) != 0) {
			why = "ciphertext differs";
			goto out;
		}
		if (handshake) {
			if (noise_read_message(from_ini ? &rsp : &ini, out, out_len, pt, sizeof(pt),
			                       &pt_len) != 0) {
				why = "read_message";
				goto out;
			}
		} else if (noise_cipher_decrypt(from_ini ? &rsp_recv : &ini_recv, NULL, 0, out,
		                                out_len, pt) != 0) {
			why = "transport decrypt";
			goto out;
		} else {
			pt_len = out_len - NOISE_TAGLEN;
		}
		if (pt_len != payload.len || memcmp(pt, payload.b, pt_len) != 0) {
			why = "payload differs";
			goto out;
		}
		if (noise_handshake_complete(&ini) != noise_handshake_complete(&rsp)) {
			why = "sides disagree on completion";
			goto out;
		}
		if (handshake && noise_handshake_complete(&ini)) {
			noise_handshake_hash(&ini, h1);
			noise_handshake_hash(&rsp, h2);
			if (want_h.len != NOISE_HASHLEN ||
			    memcmp(h1, want_h.b, NOISE_HASHLEN) != 0 ||
			    memcmp(h2, want_h.b, NOISE_HASHLEN) != 0) {
				why = "handshake hash differs";
				goto out;
			}
			if (noise_split(&ini, &ini_send, &ini_recv) != 0 ||
			    noise_split(&rsp, &rsp_send, &rsp_recv) != 0) {
				why = "split";
				goto out;
			}
		}
	}
	if (!noise_handshake_complete(&ini))
		why = "handshake never completed";
out:
	noise_handshake_wipe(&ini);
	noise_handshake_wipe(&rsp);
	noise_cipher_wipe(&ini_send);
	noise_cipher_wipe(&ini_recv);
	noise_cipher_wipe(&rsp_send);
	noise_cipher_wipe(&rsp_recv);
	return why;
}

static void
test_vectors(void **state)
{
	const char *dir = getenv("FIVE_VECTORS_DIR");
	char path[PATH_MAX_LEN];
	json_error_t err;
	json_t *root, *vectors;
	size_t i, total, passed = 0;

	if (dir == NULL || *dir == '\0')
		dir = VECTORS_DIR;
	assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", dir, VECTORS_FILE) <
	            sizeof(path));
	root = json_load_file(path, 0, &err);
	if (root == NULL)
		fail_msg("cannot load %s: %s (not run from the repository root? FIVE_VECTORS_DIR)",
		         path, err.text);
	vectors = json_object_get(root, "vectors");
	assert_true(json_is_array(vectors));
	total = json_array_size(vectors);
	for (i = 0; i < total; i++) {
		json_t *v = json_array_get(vectors, i);
		const char *why = run_vector(v);

		if (why == NULL)
			passed++;
		else
			print_message("FAIL %s: %s\n",
			              json_string_value(json_object_get(v, "protocol_name")), why);
	}
	print_message("noise vectors: %zu of %zu passed\n", passed, total);
	json_decref(root);
	assert_true(total > 0);
	assert_int_equal(passed, total);
}

/* --- handshakes between two fresh sides with fixed keys -------------------- */

#define IK "Noise_IK_25519_ChaChaPoly_BLAKE2b"
#define XX "Noise_XX_25519_ChaChaPoly_BLAKE2b"

struct keys {
	uint8_t ini_s[NOISE_DHLEN], ini_s_pub[NOISE_DHLEN], ini_e[NOISE_DHLEN];
	uint8_t rsp_s[NOISE_DHLEN], rsp_s_pub[NOISE_DHLEN], rsp_e[NOISE_DHLEN];
};

static void
derive(uint8_t out[NOISE_DHLEN], const char *label)
{
	crypto_generichash(out, NOISE_DHLEN, (const uint8_t *)label, strlen(label), NULL, 0);
}

static void
fixed_keys(struct keys *k)
{
	derive(k->ini_s, "initiator static");
	derive(k->ini_e, "initiator ephemeral");
	derive(k->rsp_s, "responder static");
	derive(k->rsp_e, "responder ephemeral");
	crypto_scalarmult_base(k->ini_s_pub, k->ini_s);
	crypto_scalarmult_base(k->rsp_s_pub, k->rsp_s);
}

/* Both sides of an IK or XX handshake, ready for message 1. */
static void
start(const char *name, const struct keys *k, struct noise_handshake *ini,
      struct noise_handshake *rsp)
{
	bool ik = strcmp(name, IK) == 0;

	assert_int_equal(noise_handshake_init(ini, name, NOISE_INITIATOR, (const uint8_t *)"p", 1,
	                                      k->ini_s, ik ? k->rsp_s_pub : NULL),
	                 0);
	assert_int_equal(noise_handshake_init(rsp, name, NOISE_RESPONDER, (const uint8_t *)"p", 1,
	                                      k->rsp_s, NULL),
	                 0);
	assert_int_equal(noise_handshake_set_ephemeral(ini, k->ini_e), 0);
	assert_int_equal(noise_handshake_set_ephemeral(rsp, k->rsp_e), 0);
}

/* Writes message i on its sender's side. */
static void
write_msg(struct noise_handshake *ini, struct noise_handshake *rsp, unsigned i, uint8_t *out,
          size_t *len)
{
	assert_int_equal(noise_write_message(i % 2 == 0 ? ini : rsp, test_payload,
	                                     sizeof(test_payload), out, MSG_MAX, len),
	                 0);
}

static int
read_msg(struct noise_handshake *ini, struct noise_handshake *rsp, unsigned i, const uint8_t *msg,
         size_t len, uint8_t *pt, size_t *pt_len)
{
	return noise_read_message(i % 2 == 0 ? rsp : ini, msg, len, pt, MSG_MAX, pt_len);
}

/* A handshake that failed keeps nothing: no key, no peer, no further progress. */
static void
assert_dead(struct noise_handshake *hs, const uint8_t *pt, size_t pt_len)
{
	uint8_t buf[MSG_MAX], msg[MSG_MAX], zero[NOISE_HASHLEN] = {0}, h[NOISE_HASHLEN];
	uint8_t rs[NOISE_DHLEN];
	struct noise_cipher a, b;
	size_t n, i;

	assert_int_equal(pt_len, 0);
	for (i = 0; i < MSG_MAX; i++)
		assert_int_equal(pt[i], 0);
	assert_false(noise_handshake_complete(hs));
	assert_int_equal(noise_remote_static(hs, rs), -1);
	noise_handshake_hash(hs, h);
	assert_memory_equal(h, zero, sizeof(h));
	assert_int_equal(noise_split(hs, &a, &b), -1);
	assert_false(a.has_key || b.has_key);
	assert_int_equal(noise_write_message(hs, NULL, 0, buf, sizeof(buf), &n), -1);
	memset(msg, 0, sizeof(msg));
	assert_int_equal(noise_read_message(hs, msg, 64, buf, sizeof(buf), &n), -1);
	assert_true(sodium_is_zero((const unsigned char *)hs, sizeof(*hs)));
}

/* Records every message of a clean handshake. */
static unsigned
record(const char *name, const struct keys *k, uint8_t msgs[MAX_MSGS][MSG_MAX],
       size_t lens[MAX_MSGS])
{
	struct noise_handshake ini, rsp;
	uint8_t pt[MSG_MAX];
	size_t pt_len;
	unsigned i;

	start(name, k, &ini, &rsp);
	for (i = 0; !noise_handshake_complete(&ini); i++) {
		assert_true(i < MAX_MSGS);
		write_msg(&ini, &rsp, i, msgs[i], &lens[i]);
		assert_int_equal(read_msg(&ini, &rsp, i, msgs[i], lens[i], pt, &pt_len), 0);
		assert_int_equal(pt_len, sizeof(test_payload));
		assert_memory_equal(pt, test_payload, pt_len);
	}
	assert_true(noise_handshake_complete(&rsp));
	noise_handshake_wipe(&ini);
	noise_handshake_wipe(&rsp);
	return i;
}

/*
 * Replays the handshake with message `which` replaced by (bad, bad_len) and
 * checks that the side that detects it is left with nothing.  Only XX message
 * 1 carries nothing authenticated (a clear ephemeral and payload): tampering
 * with it shows when the initiator reads message 2.
 */
static void
tampered(const char *name, const struct keys *k, unsigned which, const uint8_t *bad, size_t bad_len)
{
	struct noise_handshake ini, rsp, *victim;
	uint8_t msg[MSG_MAX], pt[MSG_MAX];
	size_t len, pt_len = 0;
	unsigned i;

	start(name, k, &ini, &rsp);
	for (i = 0; i < which; i++) {
		write_msg(&ini, &rsp, i, msg, &len);
		assert_int_equal(read_msg(&ini, &rsp, i, msg, len, pt, &pt_len), 0);
	}
	write_msg(&ini, &rsp, which, msg, &len);
	if (strcmp(name, XX) == 0 && which == 0 && bad_len >= NOISE_DHLEN) {
		assert_int_equal(read_msg(&ini, &rsp, 0, bad, bad_len, pt, &pt_len), 0);
		write_msg(&ini, &rsp, 1, msg, &len);
		memset(pt, 0, sizeof(pt));
		assert_int_equal(read_msg(&ini, &rsp, 1, msg, len, pt, &pt_len), -1);
		victim = &ini;
	} else {
		memset(pt, 0, sizeof(pt));
		assert_int_equal(read_msg(&ini, &rsp, which, bad, bad_len, pt, &pt_len), -1);
		victim = which % 2 == 0 ? &rsp : &ini;
	}
	assert_dead(victim, pt, pt_len);
	noise_handshake_wipe(&ini);
	noise_handshake_wipe(&rsp);
}

static void
flip_every_byte(const char *name)
{
	static const uint8_t masks[] = {0x01, 0x80};
	uint8_t msgs[MAX_MSGS][MSG_MAX], bad[MSG_MAX];
	size_t lens[MAX_MSGS], j, m;
	struct keys k;
	unsigned n, i, tries = 0;

	fixed_keys(&k);
	n = record(name, &k, msgs, lens);
	for (i = 0; i < n; i++) {
		for (j = 0; j < lens[i]; j++) {
			for (m = 0; m < sizeof(masks); m++) {
				memcpy(bad, msgs[i], lens[i]);
				bad[j] ^= masks[m];
				tampered(name, &k, i, bad, lens[i]);
				tries++;
			}
		}
	}
	print_message("%s: %u tampered messages refused\n", name, tries);
}

static void
test_flip_ik(void **state)
{
	flip_every_byte(IK);
}

static void
test_flip_xx(void **state)
{
	flip_every_byte(XX);
}

/* Every shorter length fails, and so does one byte more. */
static void
truncate_every_length(const char *name)
{
	uint8_t msgs[MAX_MSGS][MSG_MAX], bad[MSG_MAX];
	size_t lens[MAX_MSGS], len;
	struct keys k;
	unsigned n, i;

	fixed_keys(&k);
	n = record(name, &k, msgs, lens);
	for (i = 0; i < n; i++) {
		memcpy(bad, msgs[i], lens[i]);
		bad[lens[i]] = 0;
		for (len = 0; len < lens[i]; len++)
			tampered(name, &k, i, bad, len);
		tampered(name, &k, i, bad, lens[i] + 1);
	}
}

static void
test_truncated_ik(void **state)
{
	truncate_every_length(IK);
}

static void
test_truncated_xx(void **state)
{
	truncate_every_length(XX);
}

static void
test_ik_wrong_remote_static(void **state)
{
	struct noise_handshake ini, rsp;
	uint8_t other[NOISE_DHLEN], other_pub[NOISE_DHLEN], msg[MSG_MAX], pt[MSG_MAX];
	size_t len, pt_len = 1;
	struct keys k;

	fixed_keys(&k);
	derive(other, "someone else");
	crypto_scalarmult_base(other_pub, other);
	assert_int_equal(
	        noise_handshake_init(&ini, IK, NOISE_INITIATOR, NULL, 0, k.ini_s, other_pub), 0);
	assert_int_equal(noise_handshake_init(&rsp, IK, NOISE_RESPONDER, NULL, 0, k.rsp_s, NULL),
	                 0);
	assert_int_equal(noise_write_message(&ini, test_payload, sizeof(test_payload), msg,
	                                     sizeof(msg), &len),
	                 0);
	memset(pt, 0, sizeof(pt));
	assert_int_equal(noise_read_message(&rsp, msg, len, pt, sizeof(pt), &pt_len), -1);
	assert_dead(&rsp, pt, pt_len);
	noise_handshake_wipe(&ini);
}

/* A responder static key held elsewhere: each X25519 it is asked for, and whose key that was. */
struct held_key {
	const uint8_t *priv;
	unsigned calls, static_calls;
	uint8_t last_static[NOISE_DHLEN];
};

static int
held_dh(void *ctx, const uint8_t pub[NOISE_DHLEN], bool peer_static, uint8_t shared[NOISE_DHLEN])
{
	struct held_key *held = ctx;

	held->calls++;
	if (peer_static) {
		held->static_calls++;
		memcpy(held->last_static, pub, NOISE_DHLEN);
	}
	return crypto_scalarmult_curve25519(shared, held->priv, pub);
}

/*
 * IK's responder with its static key held elsewhere asks for es with the
 * initiator's ephemeral key and for ss with its static key, saying which
 * is the static one (a result fived keeps per known client), and ends
 * with the handshake hash of a responder that holds its key itself.
 */
static void
test_ik_held_static(void **state)
{
	struct noise_handshake ini, rsp, own;
	struct noise_static_ref ref = {.dh = held_dh};
	struct held_key held = {0};
	uint8_t msg[MSG_MAX], pt[MSG_MAX], h_held[NOISE_HASHLEN], h_own[NOISE_HASHLEN];
	size_t len, pt_len;
	struct keys k;

	fixed_keys(&k);
	held.priv = k.rsp_s;
	ref.ctx = &held;
	memcpy(ref.pub, k.rsp_s_pub, NOISE_DHLEN);
	start(IK, &k, &ini, &own);
	assert_int_equal(noise_handshake_init_ref(&rsp, IK, NOISE_RESPONDER, (const uint8_t *)"p",
	                                          1, &ref, NULL),
	                 0);
	assert_int_equal(noise_handshake_set_ephemeral(&rsp, k.rsp_e), 0);
	write_msg(&ini, &rsp, 0, msg, &len);
	assert_int_equal(read_msg(&ini, &rsp, 0, msg, len, pt, &pt_len), 0);
	assert_int_equal(read_msg(&ini, &own, 0, msg, len, pt, &pt_len), 0);
	assert_int_equal(held.calls, 2);
	assert_int_equal(held.static_calls, 1);
	assert_memory_equal(held.last_static, k.ini_s_pub, NOISE_DHLEN);
	write_msg(&ini, &rsp, 1, msg, &len);
	assert_int_equal(held.calls, 2);
	assert_true(noise_handshake_complete(&rsp));
	noise_handshake_hash(&rsp, h_held);
	write_msg(&ini, &own, 1, msg, &len);
	noise_handshake_hash(&own, h_own);
	assert_memory_equal(h_held, h_own, NOISE_HASHLEN);
	noise_handshake_wipe(&ini);
	noise_handshake_wipe(&rsp);
	noise_handshake_wipe(&own);
}

static void
test_prologue_mismatch(void **state)
{
	struct noise_handshake ini, rsp;
	uint8_t msg[MSG_MAX], pt[MSG_MAX];
	size_t len, pt_len;
	struct keys k;

	fixed_keys(&k);
	assert_int_equal(noise_handshake_init(&ini, XX, NOISE_INITIATOR, (const uint8_t *)"a", 1,
	                                      k.ini_s, NULL),
	                 0);
	assert_int_equal(noise_handshake_init(&rsp, XX, NOISE_RESPONDER, (const uint8_t *)"b", 1,
	                                      k.rsp_s, NULL),
	                 0);
	assert_int_equal(noise_write_message(&ini, NULL, 0, msg, sizeof(msg), &len), 0);
	assert_int_equal(noise_read_message(&rsp, msg, len, pt, sizeof(pt), &pt_len), 0);
	assert_int_equal(noise_write_message(&rsp, NULL, 0, msg, sizeof(msg), &len), 0);
	memset(pt, 0, sizeof(pt));
	assert_int_equal(noise_read_message(&ini, msg, len, pt, sizeof(pt), &pt_len), -1);
	assert_dead(&ini, pt, pt_len);
	noise_handshake_wipe(&rsp);
}

static void
test_out_of_turn(void **state)
{
	struct noise_handshake ini, rsp;
	uint8_t msg[MSG_MAX], msg1[MSG_MAX], pt[MSG_MAX];
	size_t len, len1, pt_len;
	struct keys k;

	fixed_keys(&k);

	/* The responder cannot speak first, nor the initiator listen first. */
	start(IK, &k, &ini, &rsp);
	assert_int_equal(noise_write_message(&rsp, NULL, 0, msg, sizeof(msg), &len), -1);
	assert_int_equal(len, 0);
	assert_false(noise_handshake_complete(&rsp));
	write_msg(&ini, &rsp, 0, msg, &len);
	assert_int_equal(noise_read_message(&ini, msg, len, pt, sizeof(pt), &pt_len), -1);
	noise_handshake_wipe(&rsp);

	/* A message read twice (a replay) is out of turn the second time. */
	start(IK, &k, &ini, &rsp);
	write_msg(&ini, &rsp, 0, msg1, &len1);
	assert_int_equal(read_msg(&ini, &rsp, 0, msg1, len1, pt, &pt_len), 0);
	assert_int_equal(read_msg(&ini, &rsp, 0, msg1, len1, pt, &pt_len), -1);
	noise_handshake_wipe(&ini);

	/* The initiator cannot send twice in a row. */
	start(XX, &k, &ini, &rsp);
	write_msg(&ini, &rsp, 0, msg, &len);
	assert_int_equal(noise_write_message(&ini, NULL, 0, msg, sizeof(msg), &len), -1);
	noise_handshake_wipe(&rsp);

	/* Nothing after the last message; split before completion fails without harm. */
	start(IK, &k, &ini, &rsp);
	{
		struct noise_cipher a, b;

		assert_int_equal(noise_split(&ini, &a, &b), -1);
		assert_int_equal(noise_handshake_set_ephemeral(&rsp, k.rsp_e), -1);
	}
	start(IK, &k, &ini, &rsp);
	write_msg(&ini, &rsp, 0, msg, &len);
	assert_int_equal(read_msg(&ini, &rsp, 0, msg, len, pt, &pt_len), 0);
	write_msg(&ini, &rsp, 1, msg, &len);
	assert_int_equal(read_msg(&ini, &rsp, 1, msg, len, pt, &pt_len), 0);
	assert_true(noise_handshake_complete(&ini));
	assert_int_equal(noise_write_message(&ini, NULL, 0, msg, sizeof(msg), &len), -1);
	assert_int_equal(noise_read_message(&rsp, msg, len, pt, sizeof(pt), &pt_len), -1);
}

/* A full IK handshake: the responder learns the initiator early; transport in both directions. */
static void
test_ik_transport(void **state)
{
	struct noise_handshake ini, rsp;
	struct noise_cipher is, ir, rs_, rr, x, y;
	uint8_t msg[MSG_MAX], pt[MSG_MAX], key1[NOISE_KEYLEN], key2[NOISE_KEYLEN];
	uint8_t h1[NOISE_HASHLEN], h2[NOISE_HASHLEN], peer[NOISE_DHLEN];
	size_t len, pt_len;
	struct keys k;

	fixed_keys(&k);
	start(IK, &k, &ini, &rsp);
	assert_int_equal(noise_remote_static(&rsp, peer), -1);
	write_msg(&ini, &rsp, 0, msg, &len);
	assert_int_equal(read_msg(&ini, &rsp, 0, msg, len, pt, &pt_len), 0);
	assert_int_equal(noise_remote_static(&rsp, peer), 0);
	assert_memory_equal(peer, k.ini_s_pub, NOISE_DHLEN);
	write_msg(&ini, &rsp, 1, msg, &len);
	assert_int_equal(read_msg(&ini, &rsp, 1, msg, len, pt, &pt_len), 0);

	assert_int_equal(noise_split(&ini, &is, &ir), 0);
	assert_int_equal(noise_split(&rsp, &rs_, &rr), 0);
	/* Only once, and a failed split hands out no key. */
	assert_int_equal(noise_split(&rsp, &x, &y), -1);
	assert_false(x.has_key || y.has_key);

	/* After the split only h and the peer remain. */
	assert_true(noise_handshake_complete(&ini));
	noise_handshake_hash(&ini, h1);
	noise_handshake_hash(&rsp, h2);
	assert_memory_equal(h1, h2, sizeof(h1));
	assert_int_equal(noise_remote_static(&ini, peer), 0);
	assert_memory_equal(peer, k.rsp_s_pub, NOISE_DHLEN);
	assert_true(sodium_is_zero(ini.ss.ck, sizeof(ini.ss.ck)));
	assert_true(sodium_is_zero(ini.e_priv, sizeof(ini.e_priv)));
	assert_true(sodium_is_zero(ini.s_priv, sizeof(ini.s_priv)));

	noise_cipher_key(&is, key1);
	noise_cipher_key(&rr, key2);
	assert_memory_equal(key1, key2, sizeof(key1));
	noise_cipher_key(&ir, key1);
	noise_cipher_key(&rs_, key2);
	assert_memory_equal(key1, key2, sizeof(key1));

	assert_int_equal(noise_cipher_encrypt(&is, (const uint8_t *)"ad", 2, test_payload,
	                                      sizeof(test_payload), msg),
	                 0);
	/* The wrong associated data fails and does not move the nonce. */
	assert_int_equal(noise_cipher_decrypt(&rr, (const uint8_t *)"xx", 2, msg,
	                                      sizeof(test_payload) + NOISE_TAGLEN, pt),
	                 -1);
	assert_int_equal(rr.n, 0);
	assert_int_equal(noise_cipher_decrypt(&rr, (const uint8_t *)"ad", 2, msg,
	                                      sizeof(test_payload) + NOISE_TAGLEN, pt),
	                 0);
	assert_memory_equal(pt, test_payload, sizeof(test_payload));
	/* A replay fails: the nonce has moved on. */
	assert_int_equal(noise_cipher_decrypt(&rr, (const uint8_t *)"ad", 2, msg,
	                                      sizeof(test_payload) + NOISE_TAGLEN, pt),
	                 -1);

	/* In place, the other way. */
	memcpy(msg, test_payload, sizeof(test_payload));
	assert_int_equal(noise_cipher_encrypt(&rs_, NULL, 0, msg, sizeof(test_payload), msg), 0);
	assert_int_equal(
	        noise_cipher_decrypt(&ir, NULL, 0, msg, sizeof(test_payload) + NOISE_TAGLEN, msg),
	        0);
	assert_memory_equal(msg, test_payload, sizeof(test_payload));

	/* Short and oversized records are refused. */
	assert_int_equal(noise_cipher_decrypt(&ir, NULL, 0, msg, NOISE_TAGLEN - 1, pt), -1);
	assert_int_equal(noise_cipher_encrypt(&is, NULL, 0, msg, NOISE_MAX_MESSAGE, msg), -1);

	/* The reserved nonce 2^64-1 is never used. */
	is.n = UINT64_MAX - 1;
	assert_int_equal(noise_cipher_encrypt(&is, NULL, 0, test_payload, 1, msg), 0);
	assert_int_equal(noise_cipher_encrypt(&is, NULL, 0, test_payload, 1, msg), -1);
	rr.n = UINT64_MAX;
	assert_int_equal(noise_cipher_decrypt(&rr, NULL, 0, msg, 1 + NOISE_TAGLEN, pt), -1);

	noise_cipher_wipe(&is);
	assert_int_equal(noise_cipher_encrypt(&is, NULL, 0, test_payload, 1, msg), -1);
	noise_cipher_key(&is, key1);
	assert_true(sodium_is_zero(key1, sizeof(key1)));
	noise_cipher_wipe(&ir);
	noise_cipher_wipe(&rs_);
	noise_cipher_wipe(&rr);
	noise_handshake_wipe(&ini);
	noise_handshake_wipe(&rsp);
}

/* One-way: the responder may not send, the initiator has nothing to receive. */
static void
test_one_way_split(void **state)
{
	struct noise_handshake ini, rsp;
	struct noise_cipher is, ir, rs_, rr;
	uint8_t msg[MSG_MAX], pt[MSG_MAX];
	size_t len, pt_len;
	struct keys k;

	fixed_keys(&k);
	assert_int_equal(noise_handshake_init(&ini, "Noise_N_25519_ChaChaPoly_BLAKE2b",
	                                      NOISE_INITIATOR, NULL, 0, NULL, k.rsp_s_pub),
	                 0);
	assert_int_equal(noise_handshake_init(&rsp, "Noise_N_25519_ChaChaPoly_BLAKE2b",
	                                      NOISE_RESPONDER, NULL, 0, k.rsp_s, NULL),
	                 0);
	assert_int_equal(noise_write_message(&ini, NULL, 0, msg, sizeof(msg), &len), 0);
	assert_int_equal(noise_read_message(&rsp, msg, len, NULL, 0, &pt_len), 0);
	assert_int_equal(pt_len, 0);
	assert_int_equal(noise_split(&ini, &is, &ir), 0);
	assert_int_equal(noise_split(&rsp, &rs_, &rr), 0);
	assert_true(is.has_key && rr.has_key);
	assert_false(ir.has_key || rs_.has_key);
	assert_int_equal(noise_cipher_encrypt(&rs_, NULL, 0, test_payload, 1, msg), -1);
	assert_int_equal(noise_cipher_encrypt(&is, NULL, 0, test_payload, 1, msg), 0);
	assert_int_equal(noise_cipher_decrypt(&rr, NULL, 0, msg, 1 + NOISE_TAGLEN, pt), 0);
	noise_cipher_wipe(&is);
	noise_cipher_wipe(&rr);
	noise_handshake_wipe(&ini);
	noise_handshake_wipe(&rsp);
}

static void
test_init_refusals(void **state)
{
	static const char *const bad_names[] = {
	        "Noise_QQ_25519_ChaChaPoly_BLAKE2b",
	        "Noise_XX_25519_AESGCM_SHA256",
	        "Noise_XX_448_ChaChaPoly_BLAKE2b",
	        "Noise_XX_25519_ChaChaPoly_BLAKE2b_",
	        "Noise_XX_25519_ChaChaPoly_BLAKE2s",
	        "Noise__25519_ChaChaPoly_BLAKE2b",
	        "Noise_XXpsk4_25519_ChaChaPoly_BLAKE2b",
	        "Noise_XXpsk3+psk3_25519_ChaChaPoly_BLAKE2b",
	        "Noise_XXpsk_25519_ChaChaPoly_BLAKE2b",
	        "Noise_XXpsk3+_25519_ChaChaPoly_BLAKE2b",
	        "Noise_XXpsk10_25519_ChaChaPoly_BLAKE2b",
	        "Noise_XXfallback_25519_ChaChaPoly_BLAKE2b",
	        "Noise_XX1X_25519_ChaChaPoly_BLAKE2b",
	        "noise_XX_25519_ChaChaPoly_BLAKE2b",
	        "Noise_XX",
	        "",
	};
	struct noise_handshake hs;
	struct keys k;
	size_t i;

	fixed_keys(&k);
	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		assert_int_equal(noise_handshake_init(&hs, bad_names[i], NOISE_INITIATOR, NULL, 0,
		                                      k.ini_s, NULL),
		                 -1);
		assert_true(sodium_is_zero((const unsigned char *)&hs, sizeof(hs)));
	}
	/*
	 * IK's initiator needs the responder's key; its own may come later, but a
	 * message that needs it cannot be written without it.  XX takes no preset peer.
	 */
	assert_int_equal(noise_handshake_init(&hs, IK, NOISE_INITIATOR, NULL, 0, NULL, k.rsp_s_pub),
	                 0);
	{
		uint8_t out[256];
		size_t n;
		assert_int_equal(noise_write_message(&hs, NULL, 0, out, sizeof(out), &n), -1);
	}
	assert_int_equal(noise_handshake_init(&hs, IK, NOISE_INITIATOR, NULL, 0, k.ini_s, NULL),
	                 -1);
	assert_int_equal(
	        noise_handshake_init(&hs, IK, NOISE_RESPONDER, NULL, 0, k.rsp_s, k.ini_s_pub), -1);
	assert_int_equal(
	        noise_handshake_init(&hs, XX, NOISE_INITIATOR, NULL, 0, k.ini_s, k.rsp_s_pub), -1);
	/* NN uses no static key: one given is refused, not silently ignored. */
	assert_int_equal(noise_handshake_init(&hs, "Noise_NN_25519_ChaChaPoly_BLAKE2b",
	                                      NOISE_INITIATOR, NULL, 0, k.ini_s, NULL),
	                 -1);
	assert_int_equal(noise_handshake_init(&hs, XX, (enum noise_role)7, NULL, 0, k.ini_s, NULL),
	                 -1);
	assert_int_equal(noise_handshake_init(&hs, XX, NOISE_INITIATOR, NULL, 3, k.ini_s, NULL),
	                 -1);
	assert_int_equal(noise_handshake_init(&hs, NULL, NOISE_INITIATOR, NULL, 0, k.ini_s, NULL),
	                 -1);
	/* Multiple psks, and the largest message count, parse. */
	assert_int_equal(noise_handshake_init(&hs,
	                                      "Noise_X1X1psk0+psk2+psk4_25519_ChaChaPoly_BLAKE2b",
	                                      NOISE_INITIATOR, NULL, 0, k.ini_s, NULL),
	                 0);
	noise_handshake_wipe(&hs);
}

static void
test_psk_rules(void **state)
{
	const char *name = "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b";
	struct noise_handshake ini, rsp;
	uint8_t psk[NOISE_PSKLEN], other[NOISE_PSKLEN], msg[MSG_MAX], pt[MSG_MAX];
	size_t len, pt_len;
	struct keys k;
	unsigned i;

	fixed_keys(&k);
	memset(psk, 0x42, sizeof(psk));
	memset(other, 0x43, sizeof(other));

	/* Missing psk: nothing is written. */
	assert_int_equal(noise_handshake_init(&ini, name, NOISE_INITIATOR, NULL, 0, k.ini_s, NULL),
	                 0);
	assert_int_equal(noise_write_message(&ini, NULL, 0, msg, sizeof(msg), &len), -1);

	/* Wrong index, twice the same one. */
	assert_int_equal(noise_handshake_init(&ini, name, NOISE_INITIATOR, NULL, 0, k.ini_s, NULL),
	                 0);
	assert_int_equal(noise_handshake_set_psk(&ini, 2, psk), -1);
	assert_int_equal(noise_handshake_init(&ini, name, NOISE_INITIATOR, NULL, 0, k.ini_s, NULL),
	                 0);
	assert_int_equal(noise_handshake_set_psk(&ini, 3, psk), 0);
	assert_int_equal(noise_handshake_set_psk(&ini, 3, psk), -1);

	/* Different psks: psk3 enters at message 3, which then fails. */
	assert_int_equal(noise_handshake_init(&ini, name, NOISE_INITIATOR, NULL, 0, k.ini_s, NULL),
	                 0);
	assert_int_equal(noise_handshake_init(&rsp, name, NOISE_RESPONDER, NULL, 0, k.rsp_s, NULL),
	                 0);
	assert_int_equal(noise_handshake_set_psk(&ini, 3, psk), 0);
	assert_int_equal(noise_handshake_set_psk(&rsp, 3, other), 0);
	for (i = 0; i < 2; i++) {
		write_msg(&ini, &rsp, i, msg, &len);
		assert_int_equal(read_msg(&ini, &rsp, i, msg, len, pt, &pt_len), 0);
	}
	write_msg(&ini, &rsp, 2, msg, &len);
	memset(pt, 0, sizeof(pt));
	assert_int_equal(read_msg(&ini, &rsp, 2, msg, len, pt, &pt_len), -1);
	assert_dead(&rsp, pt, pt_len);
	noise_handshake_wipe(&ini);
}

/* Low-order points make an all-zero DH, which must fail the handshake. */
static void
test_low_order_ephemeral(void **state)
{
	static const uint8_t points[][NOISE_DHLEN] = {{0}, {1}};
	struct noise_handshake ini, rsp;
	uint8_t msgs[MAX_MSGS][MSG_MAX], pt[MSG_MAX];
	size_t lens[MAX_MSGS], pt_len, len, i;
	struct keys k;

	fixed_keys(&k);
	record(IK, &k, msgs, lens);
	for (i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		/* IK: the responder's es with the initiator's e. */
		start(IK, &k, &ini, &rsp);
		memcpy(msgs[0], points[i], NOISE_DHLEN);
		memset(pt, 0, sizeof(pt));
		assert_int_equal(read_msg(&ini, &rsp, 0, msgs[0], lens[0], pt, &pt_len), -1);
		assert_dead(&rsp, pt, pt_len);
		noise_handshake_wipe(&ini);

		/* XX: message 1 is accepted, the responder's ee then fails. */
		start(XX, &k, &ini, &rsp);
		write_msg(&ini, &rsp, 0, msgs[1], &len);
		memcpy(msgs[1], points[i], NOISE_DHLEN);
		assert_int_equal(read_msg(&ini, &rsp, 0, msgs[1], len, pt, &pt_len), 0);
		assert_int_equal(noise_write_message(&rsp, NULL, 0, msgs[1], MSG_MAX, &len), -1);
		assert_false(noise_handshake_complete(&rsp));
		assert_true(sodium_is_zero((const unsigned char *)&rsp, sizeof(rsp)));
		noise_handshake_wipe(&ini);
	}
}

/* The largest payload that fits Noise's 65535-byte limit goes through; one byte more does not. */
static void
test_message_limits(void **state)
{
	static uint8_t big[NOISE_MAX_MESSAGE + 1], out[NOISE_MAX_MESSAGE + 1],
	        pt[NOISE_MAX_MESSAGE + 1];
	/* XX message 1 is a clear e and payload; message 2 adds 32 + 16 + 16 + 16. */
	const size_t max1 = NOISE_MAX_MESSAGE - NOISE_DHLEN;
	struct noise_handshake ini, rsp;
	size_t len, pt_len;
	struct keys k;

	fixed_keys(&k);
	randombytes_buf(big, sizeof(big));
	start(XX, &k, &ini, &rsp);
	assert_int_equal(noise_write_message(&ini, big, max1 + 1, out, sizeof(out), &len), -1);
	start(XX, &k, &ini, &rsp);
	assert_int_equal(noise_write_message(&ini, big, max1, out, max1 + NOISE_DHLEN - 1, &len),
	                 -1);
	start(XX, &k, &ini, &rsp);
	assert_int_equal(noise_write_message(&ini, big, max1, out, sizeof(out), &len), 0);
	assert_int_equal(len, NOISE_MAX_MESSAGE);
	/* Payload buffer one byte short. */
	assert_int_equal(noise_read_message(&rsp, out, len, pt, max1 - 1, &pt_len), -1);
	start(XX, &k, &ini, &rsp);
	assert_int_equal(noise_write_message(&ini, big, max1, out, sizeof(out), &len), 0);
	/* Over the limit as read. */
	assert_int_equal(noise_read_message(&rsp, out, len + 1, pt, sizeof(pt), &pt_len), -1);
	start(XX, &k, &ini, &rsp);
	assert_int_equal(noise_write_message(&ini, big, max1, out, sizeof(out), &len), 0);
	assert_int_equal(noise_read_message(&rsp, out, len, pt, sizeof(pt), &pt_len), 0);
	assert_int_equal(pt_len, max1);
	assert_memory_equal(pt, big, max1);
	len = NOISE_MAX_MESSAGE - (2 * NOISE_DHLEN + 2 * NOISE_TAGLEN);
	assert_int_equal(noise_write_message(&rsp, big, len, out, sizeof(out), &pt_len), 0);
	assert_int_equal(pt_len, NOISE_MAX_MESSAGE);
	assert_int_equal(noise_read_message(&ini, out, pt_len, pt, sizeof(pt), &pt_len), 0);
	assert_int_equal(pt_len, len);
	noise_handshake_wipe(&ini);
	noise_handshake_wipe(&rsp);
}

/* XX's initiator may give its static key after learning the responder's (message 2). */
static void
test_static_later(void **state)
{
	struct noise_handshake ini, rsp;
	struct keys k;
	uint8_t m[256], payload[64], got[NOISE_DHLEN], h1[NOISE_HASHLEN], h2[NOISE_HASHLEN];
	size_t n, plen;

	fixed_keys(&k);
	assert_int_equal(noise_handshake_init(&ini, XX, NOISE_INITIATOR, NULL, 0, NULL, NULL), 0);
	assert_int_equal(noise_handshake_init(&rsp, XX, NOISE_RESPONDER, NULL, 0, k.rsp_s, NULL),
	                 0);
	assert_int_equal(noise_write_message(&ini, NULL, 0, m, sizeof(m), &n), 0);
	assert_int_equal(noise_read_message(&rsp, m, n, payload, sizeof(payload), &plen), 0);
	assert_int_equal(noise_write_message(&rsp, NULL, 0, m, sizeof(m), &n), 0);
	assert_int_equal(noise_read_message(&ini, m, n, payload, sizeof(payload), &plen), 0);
	assert_int_equal(noise_remote_static(&ini, got), 0);
	assert_memory_equal(got, k.rsp_s_pub, NOISE_DHLEN);
	assert_int_equal(noise_handshake_set_static(&ini, k.ini_s), 0);
	assert_int_equal(noise_handshake_set_static(&ini, k.ini_s), -1);
	assert_int_equal(noise_write_message(&ini, NULL, 0, m, sizeof(m), &n), 0);
	assert_int_equal(noise_read_message(&rsp, m, n, payload, sizeof(payload), &plen), 0);
	assert_int_equal(noise_remote_static(&rsp, got), 0);
	assert_memory_equal(got, k.ini_s_pub, NOISE_DHLEN);
	noise_handshake_hash(&ini, h1);
	noise_handshake_hash(&rsp, h2);
	assert_memory_equal(h1, h2, NOISE_HASHLEN);
	/* A static given at the start cannot be replaced. */
	assert_int_equal(noise_handshake_init(&ini, XX, NOISE_INITIATOR, NULL, 0, k.ini_s, NULL),
	                 0);
	assert_int_equal(noise_handshake_set_static(&ini, k.ini_s), -1);
	noise_handshake_wipe(&ini);
	noise_handshake_wipe(&rsp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_vectors),
	        cmocka_unit_test(test_flip_ik),
	        cmocka_unit_test(test_flip_xx),
	        cmocka_unit_test(test_truncated_ik),
	        cmocka_unit_test(test_truncated_xx),
	        cmocka_unit_test(test_ik_wrong_remote_static),
	        cmocka_unit_test(test_prologue_mismatch),
	        cmocka_unit_test(test_out_of_turn),
	        cmocka_unit_test(test_ik_transport),
	        cmocka_unit_test(test_one_way_split),
	        cmocka_unit_test(test_init_refusals),
	        cmocka_unit_test(test_ik_held_static),
	        cmocka_unit_test(test_static_later),
	        cmocka_unit_test(test_psk_rules),
	        cmocka_unit_test(test_low_order_ephemeral),
	        cmocka_unit_test(test_message_limits),
	};

	return UNIT_RUN_WITH_SODIUM(tests, NULL, NULL);
}
