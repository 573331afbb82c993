/*
 * AES-256-GCM: NIST's CAVP vectors for the primitive (96-bit nonces, 128-bit
 * tags, no additional data: what the records use), then the AES-256-GCM
 * records' wire format, nonces and rekey, checked against the primitive.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/aesgcm.h"
#include "crypto/record.h"
#include "unit.h"

/* Relative to the repository root, where make test-unit runs; FIVE_VECTORS_DIR overrides. */
#define VECTORS_DIR    "tests/vectors"
#define ENCRYPT_FILE   "nist_gcmEncryptExtIV256.rsp"
#define DECRYPT_FILE   "nist_gcmDecrypt256.rsp"
#define PATH_MAX_LEN   4096
#define LINE_MAX_LEN   1024
#define TEXT_MAX       64 /* bytes of any plaintext in these vector groups (408 bits) */
#define VECTORS_WANTED 75 /* 5 plaintext lengths of 15 vectors, in each file */

/* One CAVP vector. */
struct vector {
	uint8_t key[AESGCM_KEY_LEN], iv[AESGCM_NONCE_LEN], tag[AESGCM_TAG_LEN];
	uint8_t pt[TEXT_MAX], ct[TEXT_MAX];
	size_t pt_len, ct_len;
	bool fail; /* decrypt vectors: the tag must not verify */
	bool pt_seen;
};

static void
hex_field(const char *hex, uint8_t *out, size_t size, size_t *len)
{
	size_t n = 0;

	assert_int_equal(sodium_hex2bin(out, size, hex, strlen(hex), NULL, &n, NULL), 0);
	if (len != NULL)
		*len = n;
	else
		assert_int_equal(n, size);
}

/* Reads "Name = hex" into v; returns false for lines that are not a field of a vector. */
static void
vector_line(struct vector *v, const char *line)
{
	char name[16], hex[LINE_MAX_LEN] = "";

	if (strcmp(line, "FAIL") == 0) {
		v->fail = true;
		return;
	}
	if (sscanf(line, "%15s = %1023s", name, hex) < 1)
		return;
	if (strcmp(name, "Key") == 0)
		hex_field(hex, v->key, sizeof(v->key), NULL);
	else if (strcmp(name, "IV") == 0)
		hex_field(hex, v->iv, sizeof(v->iv), NULL);
	else if (strcmp(name, "Tag") == 0)
		hex_field(hex, v->tag, sizeof(v->tag), NULL);
	else if (strcmp(name, "PT") == 0) {
		hex_field(hex, v->pt, sizeof(v->pt), &v->pt_len);
		v->pt_seen = true;
	} else if (strcmp(name, "CT") == 0)
		hex_field(hex, v->ct, sizeof(v->ct), &v->ct_len);
	else if (strcmp(name, "AAD") == 0)
		assert_string_equal(hex, "");
}

/* Runs check on every vector of file; returns how many there were. */
static size_t
each_vector(const char *file, void (*check)(const struct vector *))
{
	const char *dir = getenv("FIVE_VECTORS_DIR");
	char path[PATH_MAX_LEN], line[LINE_MAX_LEN];
	struct vector v;
	bool open = false;
	size_t count = 0;
	FILE *f;

	if (dir == NULL || *dir == '\0')
		dir = VECTORS_DIR;
	assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) < sizeof(path));
	if ((f = fopen(path, "r")) == NULL)
		fail_msg("cannot open %s (not run from the repository root? FIVE_VECTORS_DIR)",
		         path);
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, "Count = ", 8) == 0) {
			if (open)
				check(&v);
			count += open;
			memset(&v, 0, sizeof(v));
			open = true;
		} else if (open) {
			vector_line(&v, line);
		}
	}
	if (open)
		check(&v);
	count += open;
	fclose(f);
	return count;
}

static void
check_encrypt(const struct vector *v)
{
	struct aesgcm g = {0};
	uint8_t out[TEXT_MAX + AESGCM_TAG_LEN];

	assert_true(v->pt_seen);
	assert_int_equal(v->pt_len, v->ct_len);
	assert_int_equal(aesgcm_init(&g, v->key, true), 0);
	assert_int_equal(aesgcm_seal(&g, v->iv, v->pt_len > 0 ? v->pt : NULL, v->pt_len, out), 0);
	assert_memory_equal(out, v->ct, v->ct_len);
	assert_memory_equal(out + v->ct_len, v->tag, AESGCM_TAG_LEN);
	/* A context for sealing does not open. */
	assert_int_equal(aesgcm_open(&g, v->iv, out, v->ct_len + AESGCM_TAG_LEN, out), -1);
	aesgcm_wipe(&g);
}

static void
check_decrypt(const struct vector *v)
{
	struct aesgcm g = {0};
	uint8_t in[TEXT_MAX + AESGCM_TAG_LEN], pt[TEXT_MAX];
	size_t i;

	memcpy(in, v->ct, v->ct_len);
	memcpy(in + v->ct_len, v->tag, AESGCM_TAG_LEN);
	assert_int_equal(aesgcm_init(&g, v->key, false), 0);
	if (v->fail) {
		assert_false(v->pt_seen);
		memset(pt, 0xee, sizeof(pt));
		assert_int_equal(aesgcm_open(&g, v->iv, in, v->ct_len + AESGCM_TAG_LEN, pt), -1);
		assert_true(sodium_is_zero(pt, v->ct_len));
	} else {
		assert_true(v->pt_seen);
		assert_int_equal(aesgcm_open(&g, v->iv, in, v->ct_len + AESGCM_TAG_LEN, pt), 0);
		assert_memory_equal(pt, v->pt, v->pt_len);
		/* Any bit flipped, in the ciphertext or the tag, is refused. */
		for (i = 0; i < 8 * (v->ct_len + AESGCM_TAG_LEN); i++) {
			in[i / 8] ^= (uint8_t)(1u << (i % 8));
			assert_int_equal(aesgcm_open(&g, v->iv, in, v->ct_len + AESGCM_TAG_LEN, pt),
			                 -1);
			in[i / 8] ^= (uint8_t)(1u << (i % 8));
		}
	}
	aesgcm_wipe(&g);
}

static void
test_nist_encrypt(void **state)
{
	assert_int_equal(each_vector(ENCRYPT_FILE, check_encrypt), VECTORS_WANTED);
}

static void
test_nist_decrypt(void **state)
{
	assert_int_equal(each_vector(DECRYPT_FILE, check_decrypt), VECTORS_WANTED);
}

/* The nonce of record n: 4 zero bytes, then n as a big-endian u64. */
static void
nonce_of(uint64_t n, uint8_t nonce[AESGCM_NONCE_LEN])
{
	int i;

	memset(nonce, 0, AESGCM_NONCE_LEN);
	for (i = 0; i < 8; i++)
		nonce[AESGCM_NONCE_LEN - 1 - i] = (uint8_t)(n >> (8 * i));
}

/* Opens one record's body (after its length) with key and record number n. */
static int
open_with(const uint8_t key[AESGCM_KEY_LEN], uint64_t n, const uint8_t *body, size_t len,
          uint8_t *pt)
{
	struct aesgcm g = {0};
	uint8_t nonce[AESGCM_NONCE_LEN];
	int r;

	nonce_of(n, nonce);
	assert_int_equal(aesgcm_init(&g, key, false), 0);
	r = aesgcm_open(&g, nonce, body, len, pt);
	aesgcm_wipe(&g);
	return r;
}

/* Records as section 6.7 writes them: no header, length, ciphertext || tag, FINAL empty. */
static void
test_record_wire(void **state)
{
	static struct record_sender tx;
	uint8_t key[RECORD_KEY_LEN], hdr[RECORD_HEADER_MAX], wire[RECORD_WIRE_MAX], pt[64];
	size_t hlen, len;

	randombytes_buf(key, sizeof(key));
	assert_int_equal(record_sender_init(&tx, RECORD_SUITE_AES256GCM, key, hdr, &hlen), 0);
	assert_int_equal(hlen, 0);
	assert_int_equal(
	        record_seal(&tx, (const uint8_t *)"hello", 5, false, wire, sizeof(wire), &len), 0);
	assert_int_equal(len, RECORD_LEN_PREFIX + 5 + AESGCM_TAG_LEN);
	assert_int_equal(wire[0], 0);
	assert_int_equal(wire[1], 5 + AESGCM_TAG_LEN);
	assert_int_equal(open_with(key, 0, wire + RECORD_LEN_PREFIX, len - RECORD_LEN_PREFIX, pt),
	                 0);
	assert_memory_equal(pt, "hello", 5);
	/* The second record is number 1: under nonce 0 it does not open. */
	assert_int_equal(
	        record_seal(&tx, (const uint8_t *)"world", 5, false, wire, sizeof(wire), &len), 0);
	assert_int_equal(open_with(key, 0, wire + RECORD_LEN_PREFIX, len - RECORD_LEN_PREFIX, pt),
	                 -1);
	assert_int_equal(open_with(key, 1, wire + RECORD_LEN_PREFIX, len - RECORD_LEN_PREFIX, pt),
	                 0);
	assert_memory_equal(pt, "world", 5);
	/* FINAL: the tag alone, record number 2. */
	assert_int_equal(record_seal(&tx, NULL, 0, true, wire, sizeof(wire), &len), 0);
	assert_int_equal(len, RECORD_LEN_PREFIX + AESGCM_TAG_LEN);
	assert_int_equal(wire[1], AESGCM_TAG_LEN);
	assert_int_equal(open_with(key, 2, wire + RECORD_LEN_PREFIX, AESGCM_TAG_LEN, pt), 0);
	record_sender_wipe(&tx);
}

/* Noise's Rekey(k): the first 32 bytes of ENCRYPT(k, 2^64 - 1, empty, zeros). */
static void
noise_rekey(uint8_t key[AESGCM_KEY_LEN])
{
	static const uint8_t zeros[AESGCM_KEY_LEN];
	struct aesgcm g = {0};
	uint8_t nonce[AESGCM_NONCE_LEN], out[AESGCM_KEY_LEN + AESGCM_TAG_LEN];

	nonce_of(UINT64_MAX, nonce);
	assert_int_equal(aesgcm_init(&g, key, true), 0);
	assert_int_equal(aesgcm_seal(&g, nonce, zeros, sizeof(zeros), out), 0);
	memcpy(key, out, AESGCM_KEY_LEN);
	aesgcm_wipe(&g);
}

/* After every RECORD_REKEY_INTERVAL-th record both sides take Rekey(k); numbers go on. */
static void
test_record_rekey(void **state)
{
	static struct record_sender tx;
	static struct record_receiver rx;
	uint8_t key[RECORD_KEY_LEN], epoch_key[RECORD_KEY_LEN], old_key[RECORD_KEY_LEN];
	uint8_t hdr[RECORD_HEADER_MAX], wire[RECORD_LEN_PREFIX + 1 + AESGCM_TAG_LEN];
	uint8_t pt[RECORD_PLAINTEXT_MAX], b;
	const uint64_t total = 2 * RECORD_REKEY_INTERVAL + 3;
	size_t hlen, len, used, n;
	uint64_t i;

	randombytes_buf(key, sizeof(key));
	memcpy(epoch_key, key, sizeof(key));
	assert_int_equal(record_sender_init(&tx, RECORD_SUITE_AES256GCM, key, hdr, &hlen), 0);
	assert_int_equal(record_receiver_init(&rx, RECORD_SUITE_AES256GCM, key), 0);
	for (i = 0; i < total; i++) {
		b = (uint8_t)i;
		assert_int_equal(record_seal(&tx, &b, 1, false, wire, sizeof(wire), &len), 0);
		assert_int_equal(record_open(&rx, wire, len, &used, pt, sizeof(pt), &n), RECORD_OK);
		assert_int_equal(n, 1);
		assert_int_equal(pt[0], b);
		/* Spot checks against the rule, at the edges of each key's records. */
		if (i % RECORD_REKEY_INTERVAL <= 1 ||
		    i % RECORD_REKEY_INTERVAL == RECORD_REKEY_INTERVAL - 1) {
			assert_int_equal(open_with(epoch_key, i, wire + RECORD_LEN_PREFIX,
			                           len - RECORD_LEN_PREFIX, pt),
			                 0);
			assert_int_equal(pt[0], b);
		}
		if (i == RECORD_REKEY_INTERVAL)
			assert_int_equal(open_with(old_key, i, wire + RECORD_LEN_PREFIX,
			                           len - RECORD_LEN_PREFIX, pt),
			                 -1);
		if ((i + 1) % RECORD_REKEY_INTERVAL == 0) {
			memcpy(old_key, epoch_key, sizeof(old_key));
			noise_rekey(epoch_key);
		}
	}
	assert_int_equal(record_seal(&tx, NULL, 0, true, wire, sizeof(wire), &len), 0);
	assert_int_equal(open_with(epoch_key, total, wire + RECORD_LEN_PREFIX, AESGCM_TAG_LEN, pt),
	                 0);
	assert_int_equal(record_open(&rx, wire, len, &used, pt, sizeof(pt), &n), RECORD_FINAL);
	assert_int_equal(record_receiver_eof(&rx), 0);
	record_sender_wipe(&tx);
	record_receiver_wipe(&rx);
}

/* The suites' names, as seal_suites spells them. */
static void
test_suite_names(void **state)
{
	assert_string_equal(record_suite_name(RECORD_SUITE_AES256GCM), "aes256gcm");
	assert_string_equal(record_suite_name(RECORD_SUITE_XCHACHA20POLY1305), "xchacha20poly1305");
	assert_null(record_suite_name(RECORD_SUITE_NONE));
	assert_null(record_suite_name(3));
	assert_int_equal(record_suite_from_name("aes256gcm"), RECORD_SUITE_AES256GCM);
	assert_int_equal(record_suite_from_name("xchacha20poly1305"),
	                 RECORD_SUITE_XCHACHA20POLY1305);
	assert_int_equal(record_suite_from_name("aes128gcm"), RECORD_SUITE_NONE);
	assert_int_equal(record_suite_from_name(""), RECORD_SUITE_NONE);
	assert_int_equal(record_header_len(RECORD_SUITE_AES256GCM), 0);
	assert_int_equal(record_overhead(RECORD_SUITE_AES256GCM), AESGCM_TAG_LEN);
	assert_int_equal(record_overhead(RECORD_SUITE_NONE), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_nist_encrypt), cmocka_unit_test(test_nist_decrypt),
	        cmocka_unit_test(test_record_wire),  cmocka_unit_test(test_record_rekey),
	        cmocka_unit_test(test_suite_names),
	};

	return UNIT_RUN_WITH_SODIUM(tests, NULL, NULL);
}
