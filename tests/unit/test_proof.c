/*
 * Proofs of identity (docs/PROTOCOL.md section 13): the challenge against
 * a value computed apart (Python's hashlib), the claims codec's strictness,
 * and every way proof_verify refuses: another key, a damaged signature,
 * another challenge, early and late clocks.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto/proof.h"
#include "unit.h"

#define NOW       UINT64_C(1795323095) /* 2026-11-22T04:51:35Z */
#define TTL       300
#define SEED_P    0x50
#define SEED_Q    0x51
#define JSON_SIZE 1024

static const char nonce[] = "0123456789abcdef";
static const char consumer[] = "shop.example";

/* sha256(b"fived-proveauth-v1\0" + bytes([16]) + nonce + bytes([12]) + consumer), by hashlib. */
#define HASH_HEX "297e089a0942a3f5bd5800aecf4178d4a71e08a8beff2d2385790fc806a8d030"
static const char expected_hash[] = HASH_HEX;

static void
key_of(uint8_t fill, struct token_key *k)
{
	uint8_t seed[TOKEN_SEED_LEN];

	memset(seed, fill, sizeof(seed));
	assert_int_equal(token_key_from_seed(seed, k), 0);
}

static void
challenge(const char *n, const char *c, uint8_t hash[PROOF_HASH_LEN])
{
	assert_int_equal(
	        proof_challenge((const uint8_t *)n, strlen(n), (const uint8_t *)c, strlen(c), hash),
	        0);
}

static void
claims_for(const uint8_t hash[PROOF_HASH_LEN], struct proof_claims *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->iss, sizeof(c->iss), "%s", "idp.example");
	snprintf(c->sub, sizeof(c->sub), "%s", "alice");
	c->amr = AUTH_PUBKEY;
	memcpy(c->hash, hash, PROOF_HASH_LEN);
	c->iat = NOW;
	c->exp = NOW + TTL;
}

static void
test_challenge(void **state)
{
	uint8_t hash[PROOF_HASH_LEN], back[PROOF_HASH_LEN];
	char hex[PROOF_HASH_SIZE];
	uint8_t big[PROOF_NONCE_MAX + 1];

	(void)state;
	challenge(nonce, consumer, hash);
	proof_hash_format(hash, hex);
	assert_string_equal(hex, expected_hash);
	assert_int_equal(proof_hash_parse(hex, back), 0);
	assert_memory_equal(hash, back, sizeof(hash));
	/* Too short a nonce, an empty consumer, lengths past one byte. */
	memset(big, 'n', sizeof(big));
	assert_int_equal(proof_challenge(big, PROOF_NONCE_MIN - 1, big, 1, hash), -1);
	assert_int_equal(proof_challenge(big, PROOF_NONCE_MIN, big, 0, hash), -1);
	assert_int_equal(proof_challenge(big, sizeof(big), big, 1, hash), -1);
	assert_int_equal(proof_challenge(big, PROOF_NONCE_MAX, big, PROOF_CONSUMER_MAX + 1, hash),
	                 -1);
	/* The lengths are hashed: moving a byte from the nonce to the name changes the hash. */
	challenge("0123456789abcdefs", "hop.example", back);
	assert_memory_not_equal(hash, back, sizeof(hash));
}

static void
test_hash_parse(void **state)
{
	uint8_t hash[PROOF_HASH_LEN];
	char hex[PROOF_HASH_SIZE];

	(void)state;
	snprintf(hex, sizeof(hex), "%s", expected_hash);
	hex[0] = 'A';
	assert_int_equal(proof_hash_parse(hex, hash), -1);
	assert_int_equal(proof_hash_parse("00", hash), -1);
	hex[0] = '2';
	hex[PROOF_HASH_HEX - 1] = 'g';
	assert_int_equal(proof_hash_parse(hex, hash), -1);
}

static void
test_claims(void **state)
{
	static const char *const bad[] = {
	        /* a member missing, one too many, one of another type, amr token */
	        "{\"iss\":\"p\",\"sub\":\"alice\",\"amr\":\"pubkey\",\"iat\":\"2026-11-22T04:51:"
	        "35Z\","
	        "\"exp\":\"2026-11-22T04:56:35Z\"}",
	        "{\"iss\":\"p\",\"sub\":\"alice\",\"amr\":\"pubkey\",\"hash\":\"" HASH_HEX
	        "\",\"iat\":\"2026-"
	        "11-22T04:51:35Z\",\"exp\":\"2026-11-22T04:56:35Z\",\"aud\":\"x\"}",
	        "{\"iss\":\"p\",\"sub\":\"alice\",\"amr\":\"pubkey\",\"hash\":\"" HASH_HEX
	        "\",\"iat\":1,"
	        "\"exp\":\"2026-11-22T04:56:35Z\"}",
	        "{\"iss\":\"p\",\"sub\":\"alice\",\"amr\":\"token\",\"hash\":\"" HASH_HEX
	        "\",\"iat\":\"2026-"
	        "11-22T04:51:35Z\",\"exp\":\"2026-11-22T04:56:35Z\"}",
	        "{\"iss\":\"p\",\"sub\":\"alice\",\"amr\":\"pubkey\",\"hash\":\"" HASH_HEX
	        "\",\"iat\":\"2026-"
	        "11-22T04:56:36Z\",\"exp\":\"2026-11-22T04:56:35Z\"}",
	};
	struct proof_claims c, back;
	uint8_t hash[PROOF_HASH_LEN];
	char json[JSON_SIZE];
	size_t len, i;

	(void)state;
	challenge(nonce, consumer, hash);
	claims_for(hash, &c);
	assert_int_equal(proof_claims_encode(&c, json, sizeof(json), &len), 0);
	assert_string_equal(json,
	                    "{\"iss\":\"idp.example\",\"sub\":\"alice\",\"amr\":\"pubkey\","
	                    "\"hash\":\"297e089a0942a3f5bd5800aecf4178d4a71e08a8beff2d2385790fc"
	                    "806a8d030\",\"iat\":\"2026-11-22T04:51:35Z\",\"exp\":\"2026-11-"
	                    "22T04:56:35Z\"}");
	assert_int_equal(proof_claims_decode((const uint8_t *)json, len, &back), 0);
	assert_memory_equal(&c, &back, sizeof(c));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
		        proof_claims_decode((const uint8_t *)bad[i], strlen(bad[i]), &back), -1);
	}
	c.amr = AUTH_TOKEN;
	assert_int_equal(proof_claims_encode(&c, json, sizeof(json), &len), -1);
}

static void
test_sign_verify(void **state)
{
	struct token_key p, q;
	struct proof_claims c, out;
	uint8_t hash[PROOF_HASH_LEN], other[PROOF_HASH_LEN];
	char proof[PROOF_SIZE];

	(void)state;
	key_of(SEED_P, &p);
	key_of(SEED_Q, &q);
	challenge(nonce, consumer, hash);
	claims_for(hash, &c);
	assert_int_equal(proof_sign(&p, &c, proof, sizeof(proof)), 0);
	assert_int_equal(proof_verify(p.pk, proof, hash, NOW + 1, &out), PROOF_OK);
	assert_string_equal(out.sub, "alice");
	assert_string_equal(out.iss, "idp.example");
	/* Another provider's key, another consumer, another nonce. */
	assert_int_equal(proof_verify(q.pk, proof, hash, NOW, &out), PROOF_OTHER_KEY);
	challenge(nonce, "other.example", other);
	assert_int_equal(proof_verify(p.pk, proof, other, NOW, &out), PROOF_OTHER_CHALLENGE);
	assert_string_equal(out.sub, "");
	challenge("fedcba9876543210", consumer, other);
	assert_int_equal(proof_verify(p.pk, proof, other, NOW, &out), PROOF_OTHER_CHALLENGE);
	/* The clocks: expiry is exclusive, the issuer may run TOKEN_CLOCK_SKEW ahead. */
	assert_int_equal(proof_verify(p.pk, proof, hash, NOW + TTL, &out), PROOF_EXPIRED);
	assert_int_equal(proof_verify(p.pk, proof, hash, NOW - TOKEN_CLOCK_SKEW, &out), PROOF_OK);
	assert_int_equal(proof_verify(p.pk, proof, hash, NOW - TOKEN_CLOCK_SKEW - 1, &out),
	                 PROOF_NOT_YET_VALID);
	token_key_wipe(&p);
	token_key_wipe(&q);
}

static void
test_damage(void **state)
{
	struct proof_claims c, out;
	uint8_t hash[PROOF_HASH_LEN];
	char proof[PROOF_SIZE], copy[PROOF_SIZE];
	struct token_key p;
	size_t i, n;

	(void)state;
	key_of(SEED_P, &p);
	challenge(nonce, consumer, hash);
	claims_for(hash, &c);
	assert_int_equal(proof_sign(&p, &c, proof, sizeof(proof)), 0);
	n = strlen(proof);
	/* Every character changed: never accepted, whatever the reason. */
	for (i = 0; i < n; i++) {
		memcpy(copy, proof, n + 1);
		copy[i] = copy[i] == 'A' ? 'B' : 'A';
		assert_int_not_equal(proof_verify(p.pk, copy, hash, NOW, &out), PROOF_OK);
	}
	/* A token of fived's own form is not a proof: another implicit assertion. */
	assert_int_equal(proof_verify(p.pk, "v4.local.xyz", hash, NOW, &out), PROOF_MALFORMED);
	assert_int_equal(proof_verify(p.pk, "", hash, NOW, &out), PROOF_MALFORMED);
	token_key_wipe(&p);
}

static void
test_key_text(void **state)
{
	uint8_t pk[TOKEN_PK_LEN];
	char text[PROOF_KEY_B64_SIZE];
	struct token_key p;

	(void)state;
	key_of(SEED_P, &p);
	proof_key_format(p.pk, text);
	assert_int_equal(strlen(text), PROOF_KEY_B64_SIZE - 1);
	assert_int_equal(proof_key_parse(text, pk), 0);
	assert_memory_equal(pk, p.pk, sizeof(pk));
	text[PROOF_KEY_B64_SIZE - 2] = '\0';
	assert_int_equal(proof_key_parse(text, pk), -1);
	token_key_wipe(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_challenge), cmocka_unit_test(test_hash_parse),
	        cmocka_unit_test(test_claims),    cmocka_unit_test(test_sign_verify),
	        cmocka_unit_test(test_damage),    cmocka_unit_test(test_key_text),
	};

	return UNIT_RUN_WITH_SODIUM(tests, NULL, NULL);
}
