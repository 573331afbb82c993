/*
 * fived's tokens: times, claims, keys, issue and open in both formats, every
 * reason a token is refused, the footer's fixed shape, how long tokens are,
 * address binding, the trusted keys file.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>

#include "common/keyfile.h"
#include "proto/token.h"
#include "unit.h"

#define NOW      UINT64_C(1795323095) /* 2026-11-22T04:51:35Z */
#define NOW_TEXT "2026-11-22T04:51:35Z"
#define HOUR     3600
#define JTI      "00112233445566778899aabbccddeeff"
#define CLAIMS   1024
#define ERR_SIZE 256
#define FILE_MAX (300 * 80)

#define FOOTER_B64_LEN 30 /* TOKEN_FOOTER_LEN bytes in unpadded base64url */

/* What a token must fit in: typical ones a 512-byte text line with room to spare. */
#define TYPICAL_TOKEN_MAX 400
#define LARGE_TOKEN_MAX   500

struct keys {
	struct token_key a, b; /* two nodes */
	struct token_trusted trusted_a, trusted_b;
};

static void
make_key(uint8_t fill, struct token_key *k, struct token_trusted *t)
{
	uint8_t seed[TOKEN_SEED_LEN];

	memset(seed, fill, sizeof(seed));
	assert_int_equal(token_key_from_seed(seed, k), 0);
	memset(t, 0, sizeof(*t));
	memcpy(t->pk, k->pk, sizeof(t->pk));
	strcpy(t->kid, k->kid);
	snprintf(t->name, sizeof(t->name), "node-%02x", fill);
}

static int
setup(void **state)
{
	struct keys *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return -1;
	make_key(0x0a, &k->a, &k->trusted_a);
	make_key(0x0b, &k->b, &k->trusted_b);
	*state = k;
	return 0;
}

static int
teardown(void **state)
{
	struct keys *k = *state;

	token_key_wipe(&k->a);
	token_key_wipe(&k->b);
	free(k);
	return 0;
}

static void
good_claims(struct token_claims *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->app, "db");
	strcpy(c->sub, "alice");
	c->has_sub = true;
	c->amr = AUTH_PUBKEY;
	c->iat = NOW;
	c->exp = NOW + HOUR;
	strcpy(c->jti, JTI);
}

static void
assert_claims_equal(const struct token_claims *a, const struct token_claims *b)
{
	assert_string_equal(a->app, b->app);
	assert_string_equal(a->sub, b->sub);
	assert_int_equal(a->has_sub, b->has_sub);
	assert_int_equal(a->amr, b->amr);
	assert_string_equal(a->vhost, b->vhost);
	assert_string_equal(a->addr, b->addr);
	assert_int_equal(a->iat, b->iat);
	assert_int_equal(a->exp, b->exp);
	assert_string_equal(a->jti, b->jti);
}

static void
assert_claims_zero(const struct token_claims *c)
{
	static const struct token_claims zero;

	assert_memory_equal(c, &zero, sizeof(zero));
}

/* Opens token with the node's view given, expecting the refusal why. */
static void
refused(const struct token_key *own, const struct token_trusted *trusted, size_t ntrusted,
        const char *token, uint64_t now, const char *why)
{
	struct token_claims c;
	const char *reason = NULL;

	memset(&c, 0xa5, sizeof(c));
	assert_int_equal(token_open(own, trusted, ntrusted, token, now, &c, &reason), -1);
	assert_non_null(reason);
	assert_string_equal(reason, why);
	assert_claims_zero(&c);
}

/*
 * A v4.public token signed by key with message m, footer f and implicit
 * assertion i (all NUL-terminated, f and i may be ""), for tokens fived
 * would never issue.
 */
static void
forge(const struct token_key *key, const char *m, const char *f, const char *i,
      char out[PASETO_TOKEN_SIZE])
{
	assert_int_equal(paseto_v4_public_sign(key->sk, (const uint8_t *)m, strlen(m),
	                                       (const uint8_t *)f, strlen(f), (const uint8_t *)i,
	                                       strlen(i), out, PASETO_TOKEN_SIZE),
	                 0);
}

static void
footer_of(const struct token_key *key, char out[CLAIMS])
{
	snprintf(out, CLAIMS, "{\"kid\":\"%s\"}", key->kid);
}

static void
claims_json(const struct token_claims *c, char out[CLAIMS])
{
	size_t len;

	assert_int_equal(token_claims_encode(c, out, CLAIMS, &len), 0);
}

/* --- times ----------------------------------------------------------------- */

static void
test_time(void **state)
{
	static const char *const bad[] = {
	        "2026-02-29T00:00:00Z",
	        "2026-02-30T00:00:00Z",
	        "2026-13-01T00:00:00Z",
	        "2026-00-10T00:00:00Z",
	        "2026-01-00T00:00:00Z",
	        "2026-01-01T24:00:00Z",
	        "2026-01-01T23:60:00Z",
	        "2026-01-01T23:59:60Z",
	        "2026-11-22T04:51:35+00:00",
	        "2026-11-22t04:51:35Z",
	        "2026-11-22T04:51:35z",
	        "2026-11-22T04:51:35.5Z",
	        "2026-11-22 04:51:35Z",
	        "1969-12-31T23:59:59Z",
	        "2026-11-22T04:51:35Z ",
	        "+026-11-22T04:51:35Z",
	        "2026-1-22T04:51:35Z",
	        "",
	        "2026-11-22T04:51:3aZ",
	        "\xd9\xa2"
	        "026-11-22T04:51:35Z",
	};
	char text[TOKEN_TIME_SIZE];
	uint64_t t;
	size_t i;

	assert_int_equal(token_time_parse(NOW_TEXT, &t), 0);
	assert_int_equal(t, NOW);
	assert_int_equal(token_time_format(NOW, text), 0);
	assert_string_equal(text, NOW_TEXT);
	assert_int_equal(token_time_parse("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(token_time_format(0, text), 0);
	assert_string_equal(text, "1970-01-01T00:00:00Z");
	assert_int_equal(token_time_parse("2000-02-29T12:00:00Z", &t), 0);
	assert_int_equal(t, 951825600);
	assert_int_equal(token_time_parse("9999-12-31T23:59:59Z", &t), 0);
	assert_int_equal(t, TOKEN_TIME_MAX);
	assert_int_equal(token_time_format(TOKEN_TIME_MAX, text), 0);
	assert_string_equal(text, "9999-12-31T23:59:59Z");
	assert_int_equal(token_time_format(TOKEN_TIME_MAX + 1, text), -1);
	assert_string_equal(text, "");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = 1;
		if (token_time_parse(bad[i], &t) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_int_equal(t, 0);
	}
}

/* --- claims ---------------------------------------------------------------- */

static void
test_claims_round_trip(void **state)
{
	struct token_claims c, back;
	char json[CLAIMS], want[CLAIMS];
	size_t len;

	good_claims(&c);
	strcpy(c.vhost, "example.org");
	strcpy(c.addr, "192.0.2.0/24");
	c.amr = AUTH_PASSWORD;
	assert_int_equal(token_claims_encode(&c, json, sizeof(json), &len), 0);
	snprintf(want, sizeof(want),
	         "{\"app\":\"db\",\"sub\":\"alice\",\"amr\":\"password\","
	         "\"vhost\":\"example.org\",\"addr\":\"192.0.2.0/24\",\"iat\":\"" NOW_TEXT "\","
	         "\"exp\":\"2026-11-22T05:51:35Z\",\"jti\":\"" JTI "\"}");
	assert_string_equal(json, want);
	assert_int_equal(len, strlen(want));
	assert_int_equal(token_claims_decode((const uint8_t *)json, len, &back), 0);
	assert_claims_equal(&c, &back);

	/* Optional claims left out are not written. */
	good_claims(&c);
	c.has_sub = false;
	c.sub[0] = '\0';
	c.amr = AUTH_EXTERNAL;
	assert_int_equal(token_claims_encode(&c, json, sizeof(json), &len), 0);
	snprintf(want, sizeof(want),
	         "{\"app\":\"db\",\"amr\":\"external\",\"iat\":\"" NOW_TEXT "\","
	         "\"exp\":\"2026-11-22T05:51:35Z\",\"jti\":\"" JTI "\"}");
	assert_string_equal(json, want);
	assert_int_equal(token_claims_decode((const uint8_t *)json, len, &back), 0);
	assert_claims_equal(&c, &back);

	/* Too small a buffer. */
	assert_int_equal(token_claims_encode(&c, json, 16, &len), -1);
	assert_int_equal(len, 0);
}

/* The claims JSON with member which replaced by replacement (NULL: left out) and extra added. */
enum claim { C_APP, C_SUB, C_AMR, C_VHOST, C_ADDR, C_IAT, C_EXP, C_JTI, C_COUNT };

static void
claims_with(enum claim which, const char *replacement, const char *extra, char out[CLAIMS])
{
	static const char *const members[C_COUNT] = {
	        "\"app\":\"db\"",
	        "\"sub\":\"alice\"",
	        "\"amr\":\"pubkey\"",
	        "\"vhost\":\"example.org\"",
	        "\"addr\":\"2001:db8::/48\"",
	        "\"iat\":\"" NOW_TEXT "\"",
	        "\"exp\":\"2026-11-22T05:51:35Z\"",
	        "\"jti\":\"" JTI "\"",
	};
	size_t n = 0;
	const char *sep = "";
	int i;

	n += (size_t)snprintf(out + n, CLAIMS - n, "{");
	for (i = 0; i < C_COUNT; i++) {
		const char *m = (enum claim)i == which ? replacement : members[i];
		if (m == NULL)
			continue;
		n += (size_t)snprintf(out + n, CLAIMS - n, "%s%s", sep, m);
		sep = ",";
	}
	if (extra != NULL)
		n += (size_t)snprintf(out + n, CLAIMS - n, ",%s", extra);
	snprintf(out + n, CLAIMS - n, "}");
}

static void
claims_refused(const char *json)
{
	struct token_claims c;

	memset(&c, 0xa5, sizeof(c));
	if (token_claims_decode((const uint8_t *)json, strlen(json), &c) != -1)
		fail_msg("accepted: %s", json);
	assert_claims_zero(&c);
}

static void
test_claims_refused(void **state)
{
	static const struct {
		enum claim which;
		const char *replacement;
	} bad[] = {
	        {C_APP, NULL},
	        {C_APP, "\"app\":\"DB\""},
	        {C_APP, "\"app\":\"-db\""},
	        {C_APP, "\"app\":\"\""},
	        {C_APP, "\"app\":[\"db\"]"},
	        {C_SUB, "\"sub\":\"\""},
	        {C_SUB, "\"sub\":\"al ice\""},
	        {C_SUB, "\"sub\":null"},
	        {C_AMR, NULL},
	        {C_AMR, "\"amr\":\"none\""},
	        {C_AMR, "\"amr\":\"kerberos\""},
	        {C_AMR, "\"amr\":\"PUBKEY\""},
	        {C_VHOST, "\"vhost\":\"\""},
	        {C_VHOST, "\"vhost\":\"Example.org\""},
	        {C_VHOST, "\"vhost\":\"a b\""},
	        {C_ADDR, "\"addr\":\"\""},
	        {C_ADDR, "\"addr\":\"2001:DB8::/48\""},
	        {C_ADDR, "\"addr\":\"2001:db8::1/48\""},
	        {C_ADDR, "\"addr\":\"192.0.2.1/32\""},
	        {C_ADDR, "\"addr\":\"::ffff:192.0.2.1\""},
	        {C_ADDR, "\"addr\":\"example.org\""},
	        {C_IAT, NULL},
	        {C_IAT, "\"iat\":1795323095"},
	        {C_IAT, "\"iat\":\"2026-11-22T04:51:35+00:00\""},
	        {C_IAT, "\"iat\":\"2026-11-22T05:51:36Z\""}, /* after exp */
	        {C_EXP, NULL},
	        {C_EXP, "\"exp\":\"2026-11-22T05:51:35.000Z\""},
	        {C_JTI, NULL},
	        {C_JTI, "\"jti\":\"00112233445566778899AABBCCDDEEFF\""},
	        {C_JTI, "\"jti\":\"00112233445566778899aabbccddeef\""},
	        {C_JTI, "\"jti\":\"00112233445566778899aabbccddeeff0\""},
	};
	struct keys *k = *state;
	struct token_claims c;
	char json[CLAIMS], iss[CLAIMS];
	size_t i;

	claims_with(C_COUNT, NULL, NULL, json);
	assert_int_equal(token_claims_decode((const uint8_t *)json, strlen(json), &c), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		claims_with(bad[i].which, bad[i].replacement, NULL, json);
		claims_refused(json);
	}
	claims_with(C_COUNT, NULL, "\"aud\":\"x\"", json);
	claims_refused(json);
	claims_with(C_COUNT, NULL, "\"jti\":\"" JTI "\"", json);
	claims_refused(json);
	/* The issuer is the footer's kid alone: an iss member is one no claims have. */
	snprintf(iss, sizeof(iss), "\"iss\":\"%s\"", k->a.kid);
	claims_with(C_COUNT, NULL, iss, json);
	claims_refused(json);
	claims_refused("[]");
	claims_refused("");
	claims_with(C_COUNT, NULL, NULL, json);
	strcat(json, " {}");
	claims_refused(json);
}

static void
test_claims_encode_refused(void **state)
{
	struct token_claims c;
	char json[CLAIMS];
	size_t len;

	good_claims(&c);
	c.has_sub = false;
	assert_int_equal(token_claims_encode(&c, json, sizeof(json), &len), -1);
	good_claims(&c);
	c.amr = AUTH_NONE;
	assert_int_equal(token_claims_encode(&c, json, sizeof(json), &len), -1);
	good_claims(&c);
	c.exp = c.iat - 1;
	assert_int_equal(token_claims_encode(&c, json, sizeof(json), &len), -1);
	good_claims(&c);
	c.exp = TOKEN_TIME_MAX + 1;
	assert_int_equal(token_claims_encode(&c, json, sizeof(json), &len), -1);
	good_claims(&c);
	memset(c.app, 'a', sizeof(c.app));
	assert_int_equal(token_claims_encode(&c, json, sizeof(json), &len), -1);
	good_claims(&c);
	strcpy(c.addr, "10.0.0.0/8 ");
	assert_int_equal(token_claims_encode(&c, json, sizeof(json), &len), -1);
	assert_string_equal(json, "");
}

/* --- keys, issue, open ------------------------------------------------------- */

static void
test_key_from_seed(void **state)
{
	struct keys *k = *state;
	uint8_t seed[TOKEN_SEED_LEN], local[PASETO_V4_LOCAL_KEYBYTES];
	uint8_t pk[TOKEN_PK_LEN], sk[TOKEN_SK_LEN];
	struct token_key again;

	memset(seed, 0x0a, sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	assert_memory_equal(k->a.pk, pk, sizeof(pk));
	assert_memory_equal(k->a.sk, sk, sizeof(sk));
	crypto_generichash(local, sizeof(local), (const uint8_t *)"fived-token-local-v1", 20, seed,
	                   sizeof(seed));
	assert_memory_equal(k->a.local, local, sizeof(local));
	assert_int_equal(token_key_from_seed(seed, &again), 0);
	assert_memory_equal(&again, &k->a, sizeof(again));
	token_key_wipe(&again);
	assert_int_equal(again.kid[0], 0);
	token_key_wipe(NULL);
}

/* A kid computed without token.c: the base64url of the first 9 bytes of SHA-256(pk). */
static void
independent_kid(const uint8_t pk[TOKEN_PK_LEN], char out[TOKEN_KID_MAX])
{
	uint8_t digest[crypto_hash_sha256_BYTES];

	assert_int_equal(crypto_hash_sha256(digest, pk, TOKEN_PK_LEN), 0);
	assert_non_null(sodium_bin2base64(out, TOKEN_KID_MAX, digest, 9,
	                                  sodium_base64_VARIANT_URLSAFE_NO_PADDING));
}

static void
test_kid(void **state)
{
	struct keys *k = *state;
	char kid[TOKEN_KID_MAX], want[TOKEN_KID_MAX];

	assert_int_equal(TOKEN_KID_LEN, 12);
	assert_int_equal(TOKEN_KID_MAX, 13);
	independent_kid(k->a.pk, want);
	assert_int_equal(strlen(k->a.kid), TOKEN_KID_LEN);
	assert_string_equal(k->a.kid, want);
	token_kid(k->a.pk, kid);
	assert_string_equal(kid, want);
	independent_kid(k->b.pk, want);
	assert_string_equal(k->b.kid, want);
	/* Fixed answers, from Python's hashlib and base64.urlsafe_b64encode; b's shows '_'. */
	assert_string_equal(k->a.kid, "UG7xh510jOBx");
	assert_string_equal(k->b.kid, "_fcqCI8Y9zme");
}

static void
round_trip(const struct keys *k, enum token_format format, const char *header)
{
	struct token_claims c, back;
	char token[PASETO_TOKEN_SIZE], footer[CLAIMS];
	uint8_t f[PASETO_FOOTER_MAX];
	size_t flen;
	const char *why = "untouched";

	good_claims(&c);
	strcpy(c.vhost, "example.org");
	strcpy(c.addr, "2001:db8::/48");
	assert_int_equal(token_issue(&k->a, format, &c, token, sizeof(token)), 0);
	assert_int_equal(strncmp(token, header, strlen(header)), 0);
	assert_int_equal(paseto_footer(token, f, sizeof(f), &flen), 0);
	footer_of(&k->a, footer);
	assert_int_equal(flen, TOKEN_FOOTER_LEN);
	assert_int_equal(flen, strlen(footer));
	assert_memory_equal(f, footer, flen);
	assert_int_equal(token_open(&k->a, NULL, 0, token, NOW, &back, &why), 0);
	assert_string_equal(why, "untouched");
	assert_claims_equal(&c, &back);
	/* Any time in [iat - skew, exp) will do. */
	assert_int_equal(token_open(&k->a, NULL, 0, token, NOW - TOKEN_CLOCK_SKEW, &back, NULL), 0);
	assert_int_equal(token_open(&k->a, NULL, 0, token, NOW + HOUR - 1, &back, NULL), 0);
	refused(&k->a, NULL, 0, token, NOW + HOUR, "expired");
	refused(&k->a, NULL, 0, token, NOW - TOKEN_CLOCK_SKEW - 1, "not yet valid");
}

static void
test_issue_open_public(void **state)
{
	round_trip(*state, TOKEN_PUBLIC, "v4.public.");
}

static void
test_issue_open_local(void **state)
{
	round_trip(*state, TOKEN_LOCAL, "v4.local.");
}

static void
test_issue_refused(void **state)
{
	struct keys *k = *state;
	struct token_claims c;
	char token[PASETO_TOKEN_SIZE];

	good_claims(&c);
	strcpy(c.jti, "x");
	assert_int_equal(token_issue(&k->a, TOKEN_LOCAL, &c, token, sizeof(token)), -1);
	assert_string_equal(token, "");
	good_claims(&c);
	assert_int_equal(token_issue(&k->a, TOKEN_PUBLIC, &c, token, 100), -1);
	assert_int_equal(token_issue(&k->a, (enum token_format)2, &c, token, sizeof(token)), -1);
}

/* Flips one base64url character of s at i to another that keeps it canonical. */
static void
flip(char *s, size_t i)
{
	s[i] = s[i] == 'A' ? 'B' : 'A';
}

static void
test_open_tampered(void **state)
{
	struct keys *k = *state;
	struct token_claims c;
	char token[PASETO_TOKEN_SIZE], copy[PASETO_TOKEN_SIZE];
	char *dot;
	int format;

	good_claims(&c);
	for (format = TOKEN_PUBLIC; format <= TOKEN_LOCAL; format++) {
		assert_int_equal(token_issue(&k->a, format, &c, token, sizeof(token)), 0);
		dot = strrchr(token, '.');
		strcpy(copy, token);
		flip(copy, (size_t)(dot - token) / 2 + 5);
		refused(&k->a, NULL, 0, copy, NOW, "bad signature");
		/* The footer's "kid" (its third byte, in its fourth character) is no longer "kid".
		 */
		strcpy(copy, token);
		flip(copy, strlen(token) - FOOTER_B64_LEN + 3);
		refused(&k->a, NULL, 0, copy, NOW, "malformed token");
		strcpy(copy, token);
		copy[dot - token] = '\0';
		refused(&k->a, NULL, 0, copy, NOW, "malformed token");
		strcpy(copy, token);
		memcpy(copy, "v3", 2);
		refused(&k->a, NULL, 0, copy, NOW, "malformed token");
	}
	refused(&k->a, NULL, 0, "", NOW, "malformed token");
}

static void
test_open_keys(void **state)
{
	struct keys *k = *state;
	struct token_claims c, back;
	char token[PASETO_TOKEN_SIZE];
	struct token_trusted both[2];

	both[0] = k->trusted_a;
	both[1] = k->trusted_b;
	good_claims(&c);
	assert_int_equal(token_issue(&k->b, TOKEN_PUBLIC, &c, token, sizeof(token)), 0);
	/* Another node's token opens where that node is trusted, and only there. */
	refused(&k->a, NULL, 0, token, NOW, "unknown key");
	refused(&k->a, &k->trusted_a, 1, token, NOW, "unknown key");
	assert_int_equal(token_open(&k->a, both, 2, token, NOW, &back, NULL), 0);
	assert_claims_equal(&c, &back);
	/* A node that only verifies. */
	assert_int_equal(token_open(NULL, &k->trusted_b, 1, token, NOW, &back, NULL), 0);
	refused(NULL, NULL, 0, token, NOW, "unknown key");

	/* v4.local opens only with the issuer's own key, trusted or not. */
	assert_int_equal(token_issue(&k->b, TOKEN_LOCAL, &c, token, sizeof(token)), 0);
	refused(&k->a, both, 2, token, NOW, "unknown key");
	refused(NULL, both, 2, token, NOW, "unknown key");
	assert_int_equal(token_open(&k->b, NULL, 0, token, NOW, &back, NULL), 0);
}

static void
test_open_wrong_key(void **state)
{
	struct keys *k = *state;
	struct token_claims c;
	char token[PASETO_TOKEN_SIZE], m[CLAIMS], f[CLAIMS];

	/* Signed by b, naming a as its key: a's key does not verify it. */
	good_claims(&c);
	claims_json(&c, m);
	footer_of(&k->a, f);
	forge(&k->b, m, f, TOKEN_ASSERTION, token);
	refused(&k->a, &k->trusted_b, 1, token, NOW, "bad signature");
	/* A v4.local token under another local key. */
	assert_int_equal(paseto_v4_local_encrypt(k->b.local, NULL, (const uint8_t *)m, strlen(m),
	                                         (const uint8_t *)f, strlen(f),
	                                         (const uint8_t *)TOKEN_ASSERTION,
	                                         strlen(TOKEN_ASSERTION), token, sizeof(token)),
	                 0);
	refused(&k->a, NULL, 0, token, NOW, "bad signature");
}

static void
test_open_forged(void **state)
{
	struct keys *k = *state;
	struct token_claims c, back;
	char token[PASETO_TOKEN_SIZE], m[CLAIMS], f[CLAIMS], bad[CLAIMS], old[2 * CLAIMS];

	good_claims(&c);
	claims_json(&c, m);
	footer_of(&k->a, f);
	forge(&k->a, m, f, TOKEN_ASSERTION, token);
	assert_int_equal(token_open(&k->a, NULL, 0, token, NOW, &back, NULL), 0);

	forge(&k->a, m, f, "fived-token-v2", token);
	refused(&k->a, NULL, 0, token, NOW, "bad signature");
	forge(&k->a, m, f, "", token);
	refused(&k->a, NULL, 0, token, NOW, "bad signature");

	/* Claims as they once were, iss first: signed by the key the footer names, still refused.
	 */
	snprintf(old, sizeof(old), "{\"iss\":\"%s\",%s", k->a.kid, m + 1);
	forge(&k->a, old, f, TOKEN_ASSERTION, token);
	refused(&k->a, NULL, 0, token, NOW, "malformed claims");

	claims_with(C_COUNT, NULL, "\"aud\":\"x\"", bad);
	forge(&k->a, bad, f, TOKEN_ASSERTION, token);
	refused(&k->a, NULL, 0, token, NOW, "malformed claims");
	claims_with(C_JTI, NULL, NULL, bad);
	forge(&k->a, bad, f, TOKEN_ASSERTION, token);
	refused(&k->a, NULL, 0, token, NOW, "malformed claims");
	claims_with(C_IAT, "\"iat\":\"2026-11-22 04:51:35Z\"", NULL, bad);
	forge(&k->a, bad, f, TOKEN_ASSERTION, token);
	refused(&k->a, NULL, 0, token, NOW, "malformed claims");
}

/* The footer is {"kid":"KID"} byte for byte, checked before any key is looked up. */
static void
test_open_footer(void **state)
{
	struct keys *k = *state;
	const char *const kid = k->a.kid;
	char token[PASETO_TOKEN_SIZE], m[CLAIMS], f[CLAIMS], fp[KEYFILE_FP_MAX];
	struct token_claims c;
	size_t i;
	/* Around the first kid_len characters of a's kid, which would open the token in the right
	 * footer. */
	static const struct {
		const char *pre;
		int kid_len;
		const char *post;
	} bad[] = {
	        {"{\"kid\": \"", 12, "\"}"}, /* a space */
	        {"{ \"kid\":\"", 12, "\"}"},        {"{\"kid\":\"", 12, "\" }"},
	        {"{\"kid\":\"", 12, "A\"}"}, /* 13 characters */
	        {"{\"kid\":\"", 11, "\"}"},  /* 11 */
	        {"{\"kid\":\"", 11, "=\"}"}, /* not base64url */
	        {"{\"kid\":\"", 11, "+\"}"},        {"{\"kid\":\"", 11, "/\"}"},
	        {"{\"kid\":\"", 12, "\"}x"}, /* trailing data */
	        {"{\"kid\":\"", 12, "\",\"x\":1}"}, {"{\"kid\":\"", 12, "\"}\n"},
	        {"{\"Kid\":\"", 12, "\"}"},         {"{'kid':'", 12, "'}"},
	        {"[\"kid\",\"", 12, "\"]"},         {"", 12, ""},
	};

	good_claims(&c);
	claims_json(&c, m);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(f, sizeof(f), "%s%.*s%s", bad[i].pre, bad[i].kid_len, kid, bad[i].post);
		forge(&k->a, m, f, TOKEN_ASSERTION, token);
		if (token_open(&k->a, NULL, 0, token, NOW, &c, NULL) == 0)
			fail_msg("opened with footer %s", f);
		refused(&k->a, NULL, 0, token, NOW, "malformed token");
	}
	forge(&k->a, m, "", TOKEN_ASSERTION, token);
	refused(&k->a, NULL, 0, token, NOW, "malformed token");
	/* The kid as it once was, a full SHA256: fingerprint. */
	keyfile_fingerprint(k->a.pk, fp);
	snprintf(f, sizeof(f), "{\"kid\":\"%s\"}", fp);
	forge(&k->a, m, f, TOKEN_ASSERTION, token);
	refused(&k->a, NULL, 0, token, NOW, "malformed token");
	/* A NUL among the kid's characters. */
	snprintf(f, sizeof(f), "{\"kid\":\"%s\"}", kid);
	f[strlen("{\"kid\":\"") + 5] = '\0';
	assert_int_equal(paseto_v4_public_sign(k->a.sk, (const uint8_t *)m, strlen(m),
	                                       (const uint8_t *)f, TOKEN_FOOTER_LEN,
	                                       (const uint8_t *)TOKEN_ASSERTION,
	                                       strlen(TOKEN_ASSERTION), token, sizeof(token)),
	                 0);
	refused(&k->a, NULL, 0, token, NOW, "malformed token");
	/* A v4.local token is held to the same shape. */
	snprintf(f, sizeof(f), "{\"kid\": \"%s\"}", kid);
	assert_int_equal(paseto_v4_local_encrypt(k->a.local, NULL, (const uint8_t *)m, strlen(m),
	                                         (const uint8_t *)f, strlen(f),
	                                         (const uint8_t *)TOKEN_ASSERTION,
	                                         strlen(TOKEN_ASSERTION), token, sizeof(token)),
	                 0);
	refused(&k->a, NULL, 0, token, NOW, "malformed token");
	/* The right shape naming no key this node has. */
	forge(&k->a, m, "{\"kid\":\"AAAAAAAAAAAA\"}", TOKEN_ASSERTION, token);
	refused(&k->a, &k->trusted_b, 1, token, NOW, "unknown key");
	forge(&k->a, m, "{\"kid\":\"-_-_-_-_-_-_\"}", TOKEN_ASSERTION, token);
	refused(&k->a, &k->trusted_b, 1, token, NOW, "unknown key");
}

/* Issues c in both formats and checks that each opens and is at most max characters. */
static void
token_length(const struct token_key *key, const struct token_claims *c, const char *what,
             size_t max)
{
	char token[PASETO_TOKEN_SIZE];
	struct token_claims back;
	int format;

	for (format = TOKEN_PUBLIC; format <= TOKEN_LOCAL; format++) {
		assert_int_equal(token_issue(key, format, c, token, sizeof(token)), 0);
		assert_int_equal(token_open(key, NULL, 0, token, NOW, &back, NULL), 0);
		assert_claims_equal(c, &back);
		size_t len = strlen(token);
		printf("token length: %s, %s: %zu (at most %zu)\n", what,
		       format == TOKEN_PUBLIC ? "v4.public" : "v4.local", len, max);
		assert_true(len <= max);
	}
}

static void
test_token_length(void **state)
{
	struct keys *k = *state;
	struct token_claims c;

	/* app "db", sub "alice", amr pubkey, no vhost, no addr. */
	good_claims(&c);
	token_length(&k->a, &c, "typical", TYPICAL_TOKEN_MAX);

	/* 16-character app and sub, a 20-character vhost, an IPv6 /48 of the longest form. */
	strcpy(c.app, "inventory-report");
	strcpy(c.sub, "alice.smith@corp");
	strcpy(c.vhost, "payments.example.org");
	strcpy(c.addr, "fd12:3456:789a::/48");
	c.amr = AUTH_PASSWORD;
	assert_int_equal(strlen(c.app), 16);
	assert_int_equal(strlen(c.sub), 16);
	assert_int_equal(strlen(c.vhost), 20);
	token_length(&k->a, &c, "large", LARGE_TOKEN_MAX);
}

static void
test_open_times(void **state)
{
	struct keys *k = *state;
	struct token_claims c, back;
	char token[PASETO_TOKEN_SIZE];

	/* Issued by a clock up to TOKEN_CLOCK_SKEW seconds ahead. */
	good_claims(&c);
	c.iat = NOW + TOKEN_CLOCK_SKEW;
	assert_int_equal(token_issue(&k->a, TOKEN_PUBLIC, &c, token, sizeof(token)), 0);
	assert_int_equal(token_open(&k->a, NULL, 0, token, NOW, &back, NULL), 0);
	c.iat = NOW + TOKEN_CLOCK_SKEW + 1;
	assert_int_equal(token_issue(&k->a, TOKEN_PUBLIC, &c, token, sizeof(token)), 0);
	refused(&k->a, NULL, 0, token, NOW, "not yet valid");
	/* A token whose iat and exp agree has no valid moment. */
	c.iat = NOW;
	c.exp = NOW;
	assert_int_equal(token_issue(&k->a, TOKEN_PUBLIC, &c, token, sizeof(token)), 0);
	refused(&k->a, NULL, 0, token, NOW, "expired");
	/* The epoch itself. */
	c.iat = 0;
	c.exp = 1;
	assert_int_equal(token_issue(&k->a, TOKEN_LOCAL, &c, token, sizeof(token)), 0);
	assert_int_equal(token_open(&k->a, NULL, 0, token, 0, &back, NULL), 0);
	refused(&k->a, NULL, 0, token, 1, "expired");
}

/* --- addresses --------------------------------------------------------------- */

static void
test_addr_canonical(void **state)
{
	static const char *const good[][2] = {
	        {"192.0.2.7", "192.0.2.7"},
	        {"192.0.2.7/32", "192.0.2.7"},
	        {"192.0.2.0/24", "192.0.2.0/24"},
	        {"0.0.0.0/0", "0.0.0.0/0"},
	        {"2001:DB8:0:0::/48", "2001:db8::/48"},
	        {"2001:db8::1/128", "2001:db8::1"},
	        {"::/0", "::/0"},
	        {"::ffff:192.0.2.7", "192.0.2.7"},
	        {"::ffff:192.0.2.0/120", "192.0.2.0/24"},
	};
	static const char *const bad[] = {
	        "",
	        "/24",
	        "192.0.2.1/24",
	        "192.0.2.0/33",
	        "192.0.2.0/024",
	        "192.0.2.0/",
	        "192.0.2.0/+4",
	        "192.0.2.0/ 24",
	        "2001:db8::/129",
	        "2001:db8::1/64",
	        "::ffff:0:0/95",
	        "example.org",
	        "192.0.2.07",
	        "1.2.3",
	        "192.0.2.0/24/1",
	        "0123456789012345678901234567890123456789012345678",
	};
	char out[TOKEN_ADDR_SIZE];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (token_addr_canonical(good[i][0], out) != 0)
			fail_msg("refused: %s", good[i][0]);
		assert_string_equal(out, good[i][1]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (token_addr_canonical(bad[i], out) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_string_equal(out, "");
	}
}

static bool
matches4(const char *claim, const char *peer)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, peer, &sin.sin_addr), 1);
	return token_addr_matches(claim, (const struct sockaddr *)&sin);
}

static bool
matches6(const char *claim, const char *peer)
{
	struct sockaddr_in6 sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, peer, &sin6.sin6_addr), 1);
	return token_addr_matches(claim, (const struct sockaddr *)&sin6);
}

static void
test_addr_matches(void **state)
{
	struct sockaddr unix_peer = {.sa_family = AF_UNIX};

	assert_true(matches4("192.0.2.7", "192.0.2.7"));
	assert_false(matches4("192.0.2.7", "192.0.2.8"));
	assert_true(matches4("192.0.2.0/24", "192.0.2.255"));
	assert_false(matches4("192.0.2.0/24", "192.0.3.0"));
	assert_true(matches4("192.0.2.128/25", "192.0.2.200"));
	assert_false(matches4("192.0.2.128/25", "192.0.2.127"));
	assert_true(matches4("0.0.0.0/0", "203.0.113.9"));
	assert_true(matches6("2001:db8::/48", "2001:db8:0:ffff::1"));
	assert_false(matches6("2001:db8::/48", "2001:db8:1::1"));
	assert_true(matches6("2001:db8::1", "2001:db8::1"));
	assert_false(matches6("2001:db8::1", "2001:db8::2"));
	assert_true(matches6("::/0", "2001:db8::2"));
	/* An IPv4 client on a dual-stack socket is an IPv4 client. */
	assert_true(matches6("192.0.2.0/24", "::ffff:192.0.2.9"));
	assert_true(matches6("192.0.2.9", "::ffff:192.0.2.9"));
	assert_false(matches6("192.0.2.0/24", "::ffff:192.0.3.9"));
	assert_false(matches6("::/0", "::ffff:192.0.2.9"));
	assert_false(matches4("::/0", "192.0.2.9"));
	assert_false(matches6("0.0.0.0/0", "2001:db8::2"));
	assert_false(matches4("192.0.2.0/33", "192.0.2.9"));
	assert_false(token_addr_matches("0.0.0.0/0", &unix_peer));
}

/* --- trusted keys ------------------------------------------------------------ */

static void
trusted_refused(const char *text, const char *want)
{
	struct token_trusted *t = (struct token_trusted *)1;
	char err[ERR_SIZE];
	size_t n = 1;

	if (token_trusted_parse(text, strlen(text), "trusted", &t, &n, err, sizeof(err)) != -1)
		fail_msg("accepted: %s", text);
	assert_null(t);
	assert_int_equal(n, 0);
	assert_string_equal(err, want);
}

static void
test_trusted_parse(void **state)
{
	struct keys *k = *state;
	char a64[KEYFILE_B64_LEN], b64[KEYFILE_B64_LEN], text[FILE_MAX], err[ERR_SIZE];
	struct token_trusted *t;
	size_t n;

	keyfile_b64(k->a.pk, a64);
	keyfile_b64(k->b.pk, b64);
	snprintf(text, sizeof(text),
	         "# nodes of the cluster\n"
	         "\n"
	         "   \t\n"
	         "%s node-a.example\r\n"
	         "  # indented comment, \xc3\xa9 allowed\n"
	         "\t%s \t node_b:2@x+y-z  \n"
	         "# last line without LF\n",
	         a64, b64);
	assert_int_equal(token_trusted_parse(text, strlen(text), "f", &t, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(t[0].pk, k->a.pk, TOKEN_PK_LEN);
	assert_string_equal(t[0].kid, k->a.kid);
	assert_string_equal(t[0].name, "node-a.example");
	assert_string_equal(t[1].kid, k->b.kid);
	assert_string_equal(t[1].name, "node_b:2@x+y-z");
	token_trusted_free(t);
	token_trusted_free(NULL);

	assert_int_equal(token_trusted_parse("", 0, "f", &t, &n, err, sizeof(err)), 0);
	assert_null(t);
	assert_int_equal(n, 0);
	assert_int_equal(token_trusted_parse("# x", 3, "f", &t, &n, err, sizeof(err)), 0);
	assert_null(t);

	trusted_refused("\n\nAAAA name\n", "trusted:3: invalid key: expected the base64 of a "
	                                   "32-byte Ed25519 public key");
	/* The identity element is no key anyone could sign with. */
	trusted_refused("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= zero\n",
	                "trusted:1: invalid key: expected the base64 of a 32-byte Ed25519 "
	                "public key");
	snprintf(text, sizeof(text), "%s\n", a64);
	trusted_refused(text, "trusted:1: expected BASE64-KEY NAME");
	snprintf(text, sizeof(text), "%s a b\n", a64);
	trusted_refused(text, "trusted:1: expected BASE64-KEY NAME");
	snprintf(text, sizeof(text), "%s a/b\n", a64);
	trusted_refused(text, "trusted:1: invalid name");
	snprintf(text, sizeof(text), "%.43s a\n", a64);
	trusted_refused(text, "trusted:1: invalid key: expected the base64 of a 32-byte Ed25519 "
	                      "public key");
	snprintf(text, sizeof(text), "%s a\n%s b\n", a64, a64);
	trusted_refused(text, "trusted:2: duplicate key");
	snprintf(text, sizeof(text), "%s a\n#\n%s a\n", a64, b64);
	trusted_refused(text, "trusted:3: duplicate name");
	snprintf(text, sizeof(text), "%s a\x01\n", a64);
	trusted_refused(text, "trusted:1: control character");
	snprintf(text, sizeof(text), "# %01100d\n", 0);
	trusted_refused(text, "trusted:1: line too long");
	snprintf(text, sizeof(text), "%s a\r\r\n", a64);
	trusted_refused(text, "trusted:1: control character");
}

static void
test_trusted_too_many(void **state)
{
	char *text = malloc(FILE_MAX);
	struct token_key key;
	struct token_trusted *t;
	char b64[KEYFILE_B64_LEN], err[ERR_SIZE];
	uint8_t seed[TOKEN_SEED_LEN] = {0};
	size_t n, len = 0;
	unsigned i;

	assert_non_null(text);
	for (i = 0; i <= TOKEN_TRUSTED_MAX; i++) {
		seed[0] = (uint8_t)i;
		seed[1] = (uint8_t)(i >> 8);
		assert_int_equal(token_key_from_seed(seed, &key), 0);
		keyfile_b64(key.pk, b64);
		len += (size_t)snprintf(text + len, FILE_MAX - len, "%s n%u\n", b64, i);
		if (i == TOKEN_TRUSTED_MAX - 1) {
			assert_int_equal(
			        token_trusted_parse(text, len, "f", &t, &n, err, sizeof(err)), 0);
			assert_int_equal(n, TOKEN_TRUSTED_MAX);
			token_trusted_free(t);
		}
	}
	assert_int_equal(token_trusted_parse(text, len, "f", &t, &n, err, sizeof(err)), -1);
	assert_string_equal(err, "f:257: too many keys");
	token_key_wipe(&key);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_time),
	        cmocka_unit_test(test_claims_round_trip),
	        cmocka_unit_test(test_claims_refused),
	        cmocka_unit_test(test_claims_encode_refused),
	        cmocka_unit_test(test_key_from_seed),
	        cmocka_unit_test(test_kid),
	        cmocka_unit_test(test_issue_open_public),
	        cmocka_unit_test(test_issue_open_local),
	        cmocka_unit_test(test_issue_refused),
	        cmocka_unit_test(test_open_tampered),
	        cmocka_unit_test(test_open_keys),
	        cmocka_unit_test(test_open_wrong_key),
	        cmocka_unit_test(test_open_forged),
	        cmocka_unit_test(test_open_footer),
	        cmocka_unit_test(test_token_length),
	        cmocka_unit_test(test_open_times),
	        cmocka_unit_test(test_addr_canonical),
	        cmocka_unit_test(test_addr_matches),
	        cmocka_unit_test(test_trusted_parse),
	        cmocka_unit_test(test_trusted_too_many),
	};

	return UNIT_RUN_WITH_SODIUM(tests, setup, teardown);
}
