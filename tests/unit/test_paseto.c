/*
 * PASETO v4: the standard's vectors byte for byte, then every way a token can
 * be damaged (each character, each truncation, padding, trailing bits,
 * sizes, the other kind of token, the wrong implicit assertion).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "crypto/paseto.h"
#include "unit.h"

/* Relative to the repository root, where make test-unit runs; FIVE_VECTORS_DIR overrides. */
#define VECTORS_DIR_DEFAULT "tests/vectors"
#define VECTORS_FILE        "paseto_v4.json"
#define PATH_BYTES          4096
#define HEX_KEY_MAX         64 /* the longest key in the vectors, in bytes */

static const uint8_t message[] = "{\"sub\":\"alice\",\"exp\":\"2039-01-01T00:00:00+00:00\"}";
static const uint8_t footer[] = "{\"kid\":\"k1\"}";
static const uint8_t assertion[] = "{\"aud\":\"fived\"}";

/* The keys every test but the vectors uses. */
struct keys {
	uint8_t k[PASETO_V4_LOCAL_KEYBYTES];
	uint8_t pk[PASETO_V4_PUBLIC_PUBLICKEYBYTES];
	uint8_t sk[PASETO_V4_PUBLIC_SECRETKEYBYTES];
};

/* Opens a token with the test keys; 0 or -1 as the library says. */
typedef int (*open_fn)(const struct keys *keys, const char *token, const uint8_t *i, size_t ilen);

static void
make_keys(struct keys *keys)
{
	uint8_t seed[crypto_sign_SEEDBYTES];
	size_t n;

	for (n = 0; n < sizeof(keys->k); n++)
		keys->k[n] = (uint8_t)(0x70 + n);
	for (n = 0; n < sizeof(seed); n++)
		seed[n] = (uint8_t)(0xb4 ^ n);
	crypto_sign_seed_keypair(keys->pk, keys->sk, seed);
}

static int
open_local(const struct keys *keys, const char *token, const uint8_t *i, size_t ilen)
{
	uint8_t m[PASETO_MESSAGE_MAX], f[PASETO_FOOTER_MAX];
	size_t mlen, flen;

	return paseto_v4_local_decrypt(keys->k, token, i, ilen, m, sizeof(m), &mlen, f, sizeof(f),
	                               &flen);
}

static int
open_public(const struct keys *keys, const char *token, const uint8_t *i, size_t ilen)
{
	uint8_t m[PASETO_MESSAGE_MAX], f[PASETO_FOOTER_MAX];
	size_t mlen, flen;

	return paseto_v4_public_verify(keys->pk, token, i, ilen, m, sizeof(m), &mlen, f, sizeof(f),
	                               &flen);
}

/* A v4.local token of message, footer and assertion (nonce fixed, so tests are reproducible). */
static void
local_token(const struct keys *keys, const uint8_t *m, size_t mlen, const uint8_t *f, size_t flen,
            char out[PASETO_TOKEN_SIZE])
{
	uint8_t nonce[PASETO_V4_LOCAL_NONCEBYTES];

	memset(nonce, 0x5a, sizeof(nonce));
	assert_int_equal(paseto_v4_local_encrypt(keys->k, nonce, m, mlen, f, flen, assertion,
	                                         sizeof(assertion) - 1, out, PASETO_TOKEN_SIZE),
	                 0);
}

static void
public_token(const struct keys *keys, const uint8_t *m, size_t mlen, const uint8_t *f, size_t flen,
             char out[PASETO_TOKEN_SIZE])
{
	assert_int_equal(paseto_v4_public_sign(keys->sk, m, mlen, f, flen, assertion,
	                                       sizeof(assertion) - 1, out, PASETO_TOKEN_SIZE),
	                 0);
}

/* ---- the standard's vectors ------------------------------------------------ */

static json_t *
load_vectors(void)
{
	const char *dir = getenv("FIVE_VECTORS_DIR");
	char path[PATH_BYTES];
	json_error_t err;
	json_t *root;

	if (dir == NULL || *dir == '\0')
		dir = VECTORS_DIR_DEFAULT;
	assert_true((size_t)snprintf(path, sizeof(path), "%s/%s", dir, VECTORS_FILE) <
	            sizeof(path));
	root = json_load_file(path, 0, &err);
	if (root == NULL)
		fail_msg("cannot read %s: %s (line %d; not run from the repository root? "
		         "FIVE_VECTORS_DIR)",
		         path, err.text, err.line);
	return root;
}

static const char *
field(const json_t *v, const char *key)
{
	const json_t *s = json_object_get(v, key);

	return json_is_string(s) ? json_string_value(s) : NULL;
}

/* The hex field key of v, exactly len bytes. */
static void
hex_field(const json_t *v, const char *key, uint8_t *out, size_t len)
{
	const char *hex = field(v, key);
	size_t n = 0;

	assert_non_null(hex);
	assert_int_equal(sodium_hex2bin(out, len, hex, strlen(hex), NULL, &n, NULL), 0);
	assert_int_equal(n, len);
}

static const uint8_t *
bytes(const char *s)
{
	return (const uint8_t *)s;
}

/* A vector's strings; all but the payload are in every vector. */
struct vector {
	const char *name, *token, *i, *payload, *foot;
};

static struct vector
strings(const json_t *v, const char *name)
{
	struct vector t = {name, field(v, "token"), field(v, "implicit-assertion"),
	                   field(v, "payload"), field(v, "footer")};

	assert_non_null(t.token);
	assert_non_null(t.i);
	assert_non_null(t.foot);
	return t;
}

/*
 * Checks what opening t's token gave (r, then the payload and footer it
 * wrote): refused when the vector expects failure, else t's payload and
 * footer.  Returns whether the vector goes on to making the token.
 */
static bool
opened(const struct vector *t, int expect_fail, int r, const uint8_t *m, size_t mlen,
       const uint8_t *f, size_t flen)
{
	if (expect_fail) {
		if (r == 0)
			fail_msg("%s: accepted", t->name);
		return false;
	}
	if (r != 0)
		fail_msg("%s: rejected", t->name);
	assert_non_null(t->payload);
	if (mlen != strlen(t->payload) || memcmp(m, t->payload, mlen) != 0)
		fail_msg("%s: wrong payload", t->name);
	if (flen != strlen(t->foot) || memcmp(f, t->foot, flen) != 0)
		fail_msg("%s: wrong footer", t->name);
	return true;
}

static void
vector_local(const json_t *v, const char *name, int expect_fail)
{
	uint8_t k[PASETO_V4_LOCAL_KEYBYTES], nonce[PASETO_V4_LOCAL_NONCEBYTES];
	uint8_t m[PASETO_MESSAGE_MAX], f[PASETO_FOOTER_MAX];
	char out[PASETO_TOKEN_SIZE];
	struct vector t;
	size_t mlen, flen;
	int r;

	hex_field(v, "key", k, sizeof(k));
	t = strings(v, name);
	r = paseto_v4_local_decrypt(k, t.token, bytes(t.i), strlen(t.i), m, sizeof(m), &mlen, f,
	                            sizeof(f), &flen);
	if (!opened(&t, expect_fail, r, m, mlen, f, flen))
		return;
	hex_field(v, "nonce", nonce, sizeof(nonce));
	assert_int_equal(paseto_v4_local_encrypt(k, nonce, bytes(t.payload), strlen(t.payload),
	                                         bytes(t.foot), strlen(t.foot), bytes(t.i),
	                                         strlen(t.i), out, sizeof(out)),
	                 0);
	if (strcmp(out, t.token) != 0)
		fail_msg("%s: encrypted to\n%s\nexpected\n%s", name, out, t.token);
}

static void
vector_public(const json_t *v, const char *name, int expect_fail)
{
	uint8_t pk[PASETO_V4_PUBLIC_PUBLICKEYBYTES], sk[PASETO_V4_PUBLIC_SECRETKEYBYTES];
	uint8_t m[PASETO_MESSAGE_MAX], f[PASETO_FOOTER_MAX];
	char out[PASETO_TOKEN_SIZE];
	struct vector t;
	size_t mlen, flen;
	int r;

	hex_field(v, "public-key", pk, sizeof(pk));
	t = strings(v, name);
	r = paseto_v4_public_verify(pk, t.token, bytes(t.i), strlen(t.i), m, sizeof(m), &mlen, f,
	                            sizeof(f), &flen);
	if (!opened(&t, expect_fail, r, m, mlen, f, flen))
		return;
	hex_field(v, "secret-key", sk, sizeof(sk));
	assert_int_equal(paseto_v4_public_sign(sk, bytes(t.payload), strlen(t.payload),
	                                       bytes(t.foot), strlen(t.foot), bytes(t.i),
	                                       strlen(t.i), out, sizeof(out)),
	                 0);
	if (strcmp(out, t.token) != 0)
		fail_msg("%s: signed to\n%s\nexpected\n%s", name, out, t.token);
	sodium_memzero(sk, sizeof(sk));
}

/* The unauthenticated footer of every good vector is its footer. */
static void
vector_footer(const json_t *v, const char *name)
{
	uint8_t f[PASETO_FOOTER_MAX];
	const char *foot = field(v, "footer");
	size_t flen;

	assert_int_equal(paseto_footer(field(v, "token"), f, sizeof(f), &flen), 0);
	if (flen != strlen(foot) || memcmp(f, foot, flen) != 0)
		fail_msg("%s: wrong unauthenticated footer", name);
}

static void
test_vectors(void **state)
{
	json_t *root = load_vectors();
	const json_t *tests = json_object_get(root, "tests");
	const json_t *v;
	size_t n, passed = 0, failing = 0;

	assert_true(json_is_array(tests));
	assert_true(json_array_size(tests) > 0);
	json_array_foreach(tests, n, v)
	{
		const char *name = field(v, "name");
		int expect_fail = json_is_true(json_object_get(v, "expect-fail"));

		assert_non_null(name);
		/* The kind of key a vector gives says which operation it is for. */
		if (field(v, "key") != NULL)
			vector_local(v, name, expect_fail);
		else if (field(v, "public-key") != NULL)
			vector_public(v, name, expect_fail);
		else
			fail_msg("%s: no key", name);
		if (!expect_fail)
			vector_footer(v, name);
		failing += expect_fail ? 1 : 0;
		passed++;
	}
	printf("paseto: %zu of %zu vectors passed (%zu of them must-fail)\n", passed,
	       json_array_size(tests), failing);
	json_decref(root);
}

/* ---- damaged tokens -------------------------------------------------------- */

/* Every prefix and every single-byte change of token is refused; the token itself is not. */
static void
assert_damage_refused(const struct keys *keys, const char *token, open_fn open)
{
	char copy[PASETO_TOKEN_SIZE];
	size_t len = strlen(token), pos;
	unsigned c;

	assert_int_equal(open(keys, token, assertion, sizeof(assertion) - 1), 0);
	for (pos = 0; pos < len; pos++) {
		memcpy(copy, token, len + 1);
		copy[pos] = '\0';
		if (open(keys, copy, assertion, sizeof(assertion) - 1) == 0)
			fail_msg("truncated to %zu characters: accepted", pos);
		copy[pos] = token[pos];
		for (c = 1; c < 256; c++) {
			if (c == (unsigned char)token[pos])
				continue;
			copy[pos] = (char)c;
			if (open(keys, copy, assertion, sizeof(assertion) - 1) == 0)
				fail_msg("character %zu changed to 0x%02x: accepted", pos, c);
		}
	}
}

static void
test_local_damage(void **state)
{
	struct keys keys;
	char token[PASETO_TOKEN_SIZE];

	make_keys(&keys);
	local_token(&keys, message, sizeof(message) - 1, footer, sizeof(footer) - 1, token);
	assert_damage_refused(&keys, token, open_local);
	local_token(&keys, message, sizeof(message) - 1, NULL, 0, token);
	assert_damage_refused(&keys, token, open_local);
}

static void
test_public_damage(void **state)
{
	struct keys keys;
	char token[PASETO_TOKEN_SIZE];

	make_keys(&keys);
	public_token(&keys, message, sizeof(message) - 1, footer, sizeof(footer) - 1, token);
	assert_damage_refused(&keys, token, open_public);
	public_token(&keys, message, sizeof(message) - 1, NULL, 0, token);
	assert_damage_refused(&keys, token, open_public);
}

/* Appends s to a copy of token and checks open refuses the result. */
static void
assert_suffix_refused(const struct keys *keys, const char *token, const char *s, open_fn open)
{
	char copy[PASETO_TOKEN_SIZE + 8];

	assert_true((size_t)snprintf(copy, sizeof(copy), "%s%s", token, s) < sizeof(copy));
	if (open(keys, copy, assertion, sizeof(assertion) - 1) == 0)
		fail_msg("%s with \"%s\" appended: accepted", token, s);
}

/* Inserts s before the dot of token (which must have one) and checks open refuses it. */
static void
assert_body_suffix_refused(const struct keys *keys, const char *token, const char *s, open_fn open)
{
	char copy[PASETO_TOKEN_SIZE + 8];
	const char *dot = strrchr(token, '.');

	assert_non_null(dot);
	assert_true((size_t)snprintf(copy, sizeof(copy), "%.*s%s%s", (int)(dot - token), token, s,
	                             dot) < sizeof(copy));
	if (open(keys, copy, assertion, sizeof(assertion) - 1) == 0)
		fail_msg("%s: accepted", copy);
}

static void
test_padding_and_trailing(void **state)
{
	/*
	 * Payloads of 65 and 64 bytes, footers of 2 and 1 bytes: each segment
	 * ends in a partial group that standard base64 would pad.
	 */
	static const uint8_t one[] = "x", two[] = "xy";
	struct keys keys;
	char token[PASETO_TOKEN_SIZE];

	make_keys(&keys);
	local_token(&keys, one, 1, two, 2, token);
	assert_int_equal(open_local(&keys, token, assertion, sizeof(assertion) - 1), 0);
	assert_body_suffix_refused(&keys, token, "=", open_local);
	assert_suffix_refused(&keys, token, "=", open_local);
	assert_suffix_refused(&keys, token, ".", open_local);
	local_token(&keys, NULL, 0, one, 1, token);
	assert_int_equal(open_local(&keys, token, assertion, sizeof(assertion) - 1), 0);
	assert_body_suffix_refused(&keys, token, "==", open_local);
	assert_suffix_refused(&keys, token, "==", open_local);

	public_token(&keys, one, 1, two, 2, token);
	assert_int_equal(open_public(&keys, token, assertion, sizeof(assertion) - 1), 0);
	assert_body_suffix_refused(&keys, token, "=", open_public);
	assert_suffix_refused(&keys, token, "=", open_public);
	public_token(&keys, NULL, 0, one, 1, token);
	assert_int_equal(open_public(&keys, token, assertion, sizeof(assertion) - 1), 0);
	assert_body_suffix_refused(&keys, token, "==", open_public);
	assert_suffix_refused(&keys, token, "==", open_public);

	/* An empty footer is written without the dot; a bare dot is not canonical. */
	local_token(&keys, one, 1, NULL, 0, token);
	assert_suffix_refused(&keys, token, ".", open_local);
	public_token(&keys, one, 1, NULL, 0, token);
	assert_suffix_refused(&keys, token, ".", open_public);
}

/* The base64url alphabet index of c. */
static unsigned
b64_index(char c)
{
	static const char alphabet[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const char *p = strchr(alphabet, c);

	assert_non_null(p);
	return (unsigned)(p - alphabet);
}

/*
 * Sets the lowest unused bit of the last character of the segment ending at
 * end: the bytes it decodes to would be the same, but the text is not canonical.
 */
static void
set_trailing_bit(char *token, size_t seg_start, size_t end)
{
	static const char alphabet[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t seg_len = end - seg_start;

	assert_int_not_equal(seg_len % 4, 0);
	assert_int_not_equal(seg_len % 4, 1);
	assert_int_equal(b64_index(token[end - 1]) & 1, 0);
	token[end - 1] = alphabet[b64_index(token[end - 1]) | 1];
}

static void
test_trailing_bits(void **state)
{
	static const uint8_t one[] = "x", two[] = "xy";
	struct keys keys;
	char token[PASETO_TOKEN_SIZE];
	uint8_t f[PASETO_FOOTER_MAX];
	size_t len, dot, flen;

	make_keys(&keys);
	/* Payload of 65 bytes: 87 characters, the last one carrying 4 data bits and 2 zero bits. */
	local_token(&keys, one, 1, two, 2, token);
	dot = (size_t)(strrchr(token, '.') - token);
	set_trailing_bit(token, strlen("v4.local."), dot);
	assert_int_equal(open_local(&keys, token, assertion, sizeof(assertion) - 1), -1);

	/* Footer of 1 byte: 2 characters, 4 unused bits. */
	local_token(&keys, one, 1, one, 1, token);
	len = strlen(token);
	dot = (size_t)(strrchr(token, '.') - token);
	set_trailing_bit(token, dot + 1, len);
	assert_int_equal(open_local(&keys, token, assertion, sizeof(assertion) - 1), -1);
	assert_int_equal(paseto_footer(token, f, sizeof(f), &flen), -1);
	assert_int_equal(flen, 0);

	/* Footer of 2 bytes: 3 characters, 2 unused bits. */
	public_token(&keys, one, 1, two, 2, token);
	len = strlen(token);
	dot = (size_t)(strrchr(token, '.') - token);
	set_trailing_bit(token, dot + 1, len);
	assert_int_equal(open_public(&keys, token, assertion, sizeof(assertion) - 1), -1);
}

/* Bytes from 0x80 up are not base64url, even where a decoder would read them as '_'. */
static void
test_alphabet(void **state)
{
	static const uint8_t ff[] = {0xff};
	struct keys keys;
	char token[PASETO_TOKEN_SIZE];
	uint8_t f[PASETO_FOOTER_MAX];
	char *underscore;
	size_t flen;

	make_keys(&keys);
	assert_int_equal(paseto_footer("v4.local.AAAA._w", f, sizeof(f), &flen), 0);
	assert_int_equal(flen, 1);
	assert_int_equal(f[0], 0xff);
	assert_int_equal(paseto_footer("v4.local.AAAA.\x80w", f, sizeof(f), &flen), -1);
	assert_int_equal(paseto_footer("v4.local.AAAA.+w", f, sizeof(f), &flen), -1);
	assert_int_equal(paseto_footer("v4.local.AAAA./w", f, sizeof(f), &flen), -1);

	local_token(&keys, message, sizeof(message) - 1, ff, sizeof(ff), token);
	underscore = strrchr(token, '_');
	assert_non_null(underscore);
	*underscore = (char)0x80;
	assert_int_equal(open_local(&keys, token, assertion, sizeof(assertion) - 1), -1);
	public_token(&keys, message, sizeof(message) - 1, ff, sizeof(ff), token);
	underscore = strrchr(token, '_');
	assert_non_null(underscore);
	*underscore = (char)0xff;
	assert_int_equal(open_public(&keys, token, assertion, sizeof(assertion) - 1), -1);
}

static void
test_cross_kind(void **state)
{
	struct keys keys;
	char local[PASETO_TOKEN_SIZE], pub[PASETO_TOKEN_SIZE], swapped[PASETO_TOKEN_SIZE + 1];
	uint8_t f[PASETO_FOOTER_MAX];
	size_t flen;

	make_keys(&keys);
	local_token(&keys, message, sizeof(message) - 1, footer, sizeof(footer) - 1, local);
	public_token(&keys, message, sizeof(message) - 1, footer, sizeof(footer) - 1, pub);
	assert_int_equal(open_public(&keys, local, assertion, sizeof(assertion) - 1), -1);
	assert_int_equal(open_local(&keys, pub, assertion, sizeof(assertion) - 1), -1);

	/* The same bodies under the other header. */
	snprintf(swapped, sizeof(swapped), "v4.local.%s", pub + strlen("v4.public."));
	assert_int_equal(open_local(&keys, swapped, assertion, sizeof(assertion) - 1), -1);
	snprintf(swapped, sizeof(swapped), "v4.public.%s", local + strlen("v4.local."));
	assert_int_equal(open_public(&keys, swapped, assertion, sizeof(assertion) - 1), -1);

	/* Both kinds yield their footer unauthenticated; other versions do not. */
	assert_int_equal(paseto_footer(pub, f, sizeof(f), &flen), 0);
	assert_memory_equal(f, footer, sizeof(footer) - 1);
	assert_int_equal(flen, sizeof(footer) - 1);
	assert_int_equal(paseto_footer(local, f, sizeof(f), &flen), 0);
	assert_int_equal(flen, sizeof(footer) - 1);
	pub[1] = '3';
	assert_int_equal(paseto_footer(pub, f, sizeof(f), &flen), -1);
	assert_int_equal(paseto_footer("v4.local.AAAA", f, sizeof(f), &flen), 0);
	assert_int_equal(flen, 0);
	assert_int_equal(paseto_footer("v4.local.AAAA.", f, sizeof(f), &flen), -1);
	assert_int_equal(paseto_footer("v4.local.AAAA.YQ.YQ", f, sizeof(f), &flen), -1);
	assert_int_equal(paseto_footer("v4.local.AAAA.YQ", f, 0, &flen), -1);
	assert_int_equal(paseto_footer("v4.local", f, sizeof(f), &flen), -1);
	assert_int_equal(paseto_footer("", f, sizeof(f), &flen), -1);
}

static void
test_wrong_assertion_and_key(void **state)
{
	static const uint8_t other[] = "{\"aud\":\"fivee\"}";
	struct keys keys, wrong;
	char local[PASETO_TOKEN_SIZE], pub[PASETO_TOKEN_SIZE];

	make_keys(&keys);
	local_token(&keys, message, sizeof(message) - 1, footer, sizeof(footer) - 1, local);
	public_token(&keys, message, sizeof(message) - 1, footer, sizeof(footer) - 1, pub);
	assert_int_equal(open_local(&keys, local, other, sizeof(other) - 1), -1);
	assert_int_equal(open_local(&keys, local, NULL, 0), -1);
	assert_int_equal(open_local(&keys, local, assertion, sizeof(assertion)), -1);
	assert_int_equal(open_public(&keys, pub, other, sizeof(other) - 1), -1);
	assert_int_equal(open_public(&keys, pub, NULL, 0), -1);
	assert_int_equal(open_public(&keys, pub, assertion, sizeof(assertion)), -1);

	wrong = keys;
	wrong.k[0] ^= 1;
	assert_int_equal(open_local(&wrong, local, assertion, sizeof(assertion) - 1), -1);
	crypto_sign_keypair(wrong.pk, wrong.sk);
	assert_int_equal(open_public(&wrong, pub, assertion, sizeof(assertion) - 1), -1);
}

/* Round trip with a payload and footer of the given sizes, through buffers of exactly that size. */
static void
assert_round_trip(const struct keys *keys, int local, size_t mlen, size_t flen)
{
	static uint8_t m[PASETO_MESSAGE_MAX + 1], f[PASETO_FOOTER_MAX + 1];
	static uint8_t m2[PASETO_MESSAGE_MAX], f2[PASETO_FOOTER_MAX];
	char token[PASETO_TOKEN_SIZE];
	size_t m2len, f2len;
	int r;

	randombytes_buf(m, mlen);
	memset(f, 'f', flen);
	if (local)
		r = paseto_v4_local_encrypt(keys->k, NULL, m, mlen, f, flen, NULL, 0, token,
		                            sizeof(token));
	else
		r = paseto_v4_public_sign(keys->sk, m, mlen, f, flen, NULL, 0, token,
		                          sizeof(token));
	assert_int_equal(r, 0);
	assert_true(strlen(token) <= PASETO_TOKEN_MAX);
	if (local)
		r = paseto_v4_local_decrypt(keys->k, token, NULL, 0, m2, mlen, &m2len, f2, flen,
		                            &f2len);
	else
		r = paseto_v4_public_verify(keys->pk, token, NULL, 0, m2, mlen, &m2len, f2, flen,
		                            &f2len);
	assert_int_equal(r, 0);
	assert_int_equal(m2len, mlen);
	assert_int_equal(f2len, flen);
	assert_memory_equal(m2, m, mlen);
	assert_memory_equal(f2, f, flen);
	if (mlen > 0) {
		if (local)
			r = paseto_v4_local_decrypt(keys->k, token, NULL, 0, m2, mlen - 1, &m2len,
			                            f2, flen, &f2len);
		else
			r = paseto_v4_public_verify(keys->pk, token, NULL, 0, m2, mlen - 1, &m2len,
			                            f2, flen, &f2len);
		assert_int_equal(r, -1);
		assert_int_equal(m2len, 0);
		assert_int_equal(f2len, 0);
	}
	if (flen > 0) {
		if (local)
			r = paseto_v4_local_decrypt(keys->k, token, NULL, 0, m2, mlen, &m2len, f2,
			                            flen - 1, &f2len);
		else
			r = paseto_v4_public_verify(keys->pk, token, NULL, 0, m2, mlen, &m2len, f2,
			                            flen - 1, &f2len);
		assert_int_equal(r, -1);
	}
}

static void
test_sizes(void **state)
{
	static uint8_t big[PASETO_MESSAGE_MAX + 1];
	uint8_t i[PASETO_ASSERTION_MAX + 1];
	struct keys keys;
	char token[PASETO_TOKEN_SIZE];

	make_keys(&keys);
	assert_round_trip(&keys, 1, 0, 0);
	assert_round_trip(&keys, 0, 0, 0);
	assert_round_trip(&keys, 1, 1, 1);
	assert_round_trip(&keys, 0, 1, 1);
	/* The largest tokens are exactly PASETO_TOKEN_MAX characters. */
	assert_round_trip(&keys, 1, PASETO_MESSAGE_MAX, 0);
	assert_round_trip(&keys, 0, PASETO_MESSAGE_MAX - 1, 0);
	assert_round_trip(&keys, 1, 0, PASETO_FOOTER_MAX);
	assert_round_trip(&keys, 0, 0, PASETO_FOOTER_MAX - 1);

	assert_int_equal(paseto_v4_local_encrypt(keys.k, NULL, big, PASETO_MESSAGE_MAX, NULL, 0,
	                                         NULL, 0, token, sizeof(token)),
	                 0);
	assert_int_equal(strlen(token), PASETO_TOKEN_MAX);
	assert_int_equal(paseto_v4_local_encrypt(keys.k, NULL, big, PASETO_MESSAGE_MAX + 1, NULL, 0,
	                                         NULL, 0, token, sizeof(token)),
	                 -1);
	assert_string_equal(token, "");
	assert_int_equal(paseto_v4_public_sign(keys.sk, big, PASETO_MESSAGE_MAX, NULL, 0, NULL, 0,
	                                       token, sizeof(token)),
	                 -1);
	assert_int_equal(paseto_v4_local_encrypt(keys.k, NULL, NULL, 0, big, PASETO_FOOTER_MAX + 1,
	                                         NULL, 0, token, sizeof(token)),
	                 -1);
	assert_int_equal(paseto_v4_public_sign(keys.sk, NULL, 0, big, PASETO_FOOTER_MAX, NULL, 0,
	                                       token, sizeof(token)),
	                 -1);
	/* Message and footer share the token. */
	assert_int_equal(paseto_v4_local_encrypt(keys.k, NULL, big, PASETO_MESSAGE_MAX / 2 + 64,
	                                         big, PASETO_FOOTER_MAX / 2 + 64, NULL, 0, token,
	                                         sizeof(token)),
	                 -1);

	/* Implicit assertions up to their maximum. */
	memset(i, 'i', sizeof(i));
	assert_int_equal(paseto_v4_local_encrypt(keys.k, NULL, big, 1, NULL, 0, i,
	                                         PASETO_ASSERTION_MAX, token, sizeof(token)),
	                 0);
	assert_int_equal(open_local(&keys, token, i, PASETO_ASSERTION_MAX), 0);
	assert_int_equal(open_local(&keys, token, i, PASETO_ASSERTION_MAX + 1), -1);
	assert_int_equal(paseto_v4_local_encrypt(keys.k, NULL, big, 1, NULL, 0, i,
	                                         PASETO_ASSERTION_MAX + 1, token, sizeof(token)),
	                 -1);
	assert_int_equal(paseto_v4_public_sign(keys.sk, big, 1, NULL, 0, i, PASETO_ASSERTION_MAX,
	                                       token, sizeof(token)),
	                 0);
	assert_int_equal(open_public(&keys, token, i, PASETO_ASSERTION_MAX), 0);
	assert_int_equal(open_public(&keys, token, i, PASETO_ASSERTION_MAX + 1), -1);
	assert_int_equal(paseto_v4_public_sign(keys.sk, big, 1, NULL, 0, i,
	                                       PASETO_ASSERTION_MAX + 1, token, sizeof(token)),
	                 -1);
}

static void
test_output_buffers(void **state)
{
	struct keys keys;
	char token[PASETO_TOKEN_SIZE], small[PASETO_TOKEN_SIZE];
	size_t len;

	make_keys(&keys);
	local_token(&keys, message, sizeof(message) - 1, footer, sizeof(footer) - 1, token);
	len = strlen(token);
	memset(small, 'x', sizeof(small));
	assert_int_equal(paseto_v4_local_encrypt(keys.k, NULL, message, sizeof(message) - 1, footer,
	                                         sizeof(footer) - 1, NULL, 0, small, len),
	                 -1);
	assert_string_equal(small, "");
	assert_int_equal(paseto_v4_local_encrypt(keys.k, NULL, message, sizeof(message) - 1, footer,
	                                         sizeof(footer) - 1, NULL, 0, small, len + 1),
	                 0);
	assert_int_equal(strlen(small), len);
	assert_int_equal(
	        paseto_v4_local_encrypt(keys.k, NULL, message, 1, NULL, 0, NULL, 0, NULL, 0), -1);

	public_token(&keys, message, sizeof(message) - 1, footer, sizeof(footer) - 1, token);
	len = strlen(token);
	memset(small, 'x', sizeof(small));
	assert_int_equal(paseto_v4_public_sign(keys.sk, message, sizeof(message) - 1, footer,
	                                       sizeof(footer) - 1, assertion, sizeof(assertion) - 1,
	                                       small, len),
	                 -1);
	assert_string_equal(small, "");
	assert_int_equal(paseto_v4_public_sign(keys.sk, message, sizeof(message) - 1, footer,
	                                       sizeof(footer) - 1, assertion, sizeof(assertion) - 1,
	                                       small, len + 1),
	                 0);
	assert_string_equal(small, token);
}

static void
test_oversized_token(void **state)
{
	struct keys keys;
	char token[PASETO_TOKEN_SIZE + 1];
	uint8_t f[PASETO_FOOTER_MAX];
	size_t flen;

	make_keys(&keys);
	/* A token of exactly PASETO_TOKEN_MAX characters, footer "a" ("YQ"), is read... */
	memset(token, 'A', sizeof(token));
	memcpy(token, "v4.local.", strlen("v4.local."));
	memcpy(token + PASETO_TOKEN_MAX - 3, ".YQ", 4);
	assert_int_equal(strlen(token), PASETO_TOKEN_MAX);
	assert_int_equal(paseto_footer(token, f, sizeof(f), &flen), 0);
	assert_int_equal(flen, 1);
	/* ...one character longer is not, before anything else is looked at. */
	memcpy(token + PASETO_TOKEN_MAX - 3, "A.YQ", 5);
	assert_int_equal(paseto_footer(token, f, sizeof(f), &flen), -1);
	assert_int_equal(open_local(&keys, token, NULL, 0), -1);

	/* A valid token of the largest size with anything more. */
	memset(f, 0, sizeof(f));
	assert_int_equal(paseto_v4_local_encrypt(keys.k, NULL, NULL, 0, f, PASETO_FOOTER_MAX, NULL,
	                                         0, token, sizeof(token)),
	                 0);
	assert_int_equal(strlen(token), PASETO_TOKEN_MAX);
	assert_int_equal(open_local(&keys, token, NULL, 0), 0);
	strcat(token, "A");
	assert_int_equal(open_local(&keys, token, NULL, 0), -1);
}

static void
test_random_nonce(void **state)
{
	struct keys keys;
	char a[PASETO_TOKEN_SIZE], b[PASETO_TOKEN_SIZE];
	uint8_t m[sizeof(message)];
	size_t mlen, flen;

	make_keys(&keys);
	assert_int_equal(paseto_v4_local_encrypt(keys.k, NULL, message, sizeof(message) - 1, NULL,
	                                         0, NULL, 0, a, sizeof(a)),
	                 0);
	assert_int_equal(paseto_v4_local_encrypt(keys.k, NULL, message, sizeof(message) - 1, NULL,
	                                         0, NULL, 0, b, sizeof(b)),
	                 0);
	assert_string_not_equal(a, b);
	assert_int_equal(
	        paseto_v4_local_decrypt(keys.k, b, NULL, 0, m, sizeof(m), &mlen, NULL, 0, &flen),
	        0);
	assert_int_equal(mlen, sizeof(message) - 1);
	assert_memory_equal(m, message, mlen);
	assert_int_equal(flen, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_vectors),
	        cmocka_unit_test(test_local_damage),
	        cmocka_unit_test(test_public_damage),
	        cmocka_unit_test(test_padding_and_trailing),
	        cmocka_unit_test(test_trailing_bits),
	        cmocka_unit_test(test_alphabet),
	        cmocka_unit_test(test_cross_kind),
	        cmocka_unit_test(test_wrong_assertion_and_key),
	        cmocka_unit_test(test_sizes),
	        cmocka_unit_test(test_output_buffers),
	        cmocka_unit_test(test_oversized_token),
	        cmocka_unit_test(test_random_nonce),
	};

	return UNIT_RUN_WITH_SODIUM(tests, NULL, NULL);
}
