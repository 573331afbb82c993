#include "proto/proof.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/keyfile.h"
#include "common/util.h"
#include "crypto/paseto.h"

#define PUBLIC_HEADER "v4.public."
#define ASSERTION_LEN (sizeof(PROOF_ASSERTION) - 1)
#define FOOTER_SIZE   (TOKEN_FOOTER_LEN + 1)

/* The longest claims are under 500 bytes (proof.h). */
#define CLAIMS_MAX 1024

/* The longest amr, "password", fits. */
#define AMR_SIZE 16

/* Every member of 13.3, all required, all strings. */
static const char *const claim_members[] = {"iss", "sub", "amr", "hash", "iat", "exp"};

_Static_assert(sizeof(PROOF_CONTEXT) - 1 + 1 + 1 + PROOF_NONCE_MAX + 1 + PROOF_CONSUMER_MAX < 600,
               "a challenge's input fits its buffer");
_Static_assert(PROOF_NONCE_MAX <= UINT8_MAX && PROOF_CONSUMER_MAX <= UINT8_MAX,
               "lengths are hashed as one byte");
_Static_assert(PROOF_KEY_B64_SIZE == KEYFILE_B64_LEN, "the key's form is keyfile_b64's");

const char *
proof_status_text(enum proof_status s)
{
	switch (s) {
	case PROOF_OK:
		return "valid";
	case PROOF_MALFORMED:
		return "not a proof";
	case PROOF_OTHER_KEY:
		return "signed by another key (another provider)";
	case PROOF_BAD_SIGNATURE:
		return "bad signature";
	case PROOF_BAD_CLAIMS:
		return "malformed claims";
	case PROOF_OTHER_CHALLENGE:
		return "made for another challenge (wrong consumer or wrong nonce)";
	case PROOF_NOT_YET_VALID:
		return "not yet valid";
	case PROOF_EXPIRED:
		return "expired";
	}
	return "not a proof";
}

/* --- the challenge --------------------------------------------------------- */

int
proof_challenge(const uint8_t *nonce, size_t nlen, const uint8_t *consumer, size_t clen,
                uint8_t hash[PROOF_HASH_LEN])
{
	crypto_hash_sha256_state st;
	const uint8_t zero = 0;
	uint8_t len;

	memset(hash, 0, PROOF_HASH_LEN);
	if (nlen < PROOF_NONCE_MIN || nlen > PROOF_NONCE_MAX || clen == 0 ||
	    clen > PROOF_CONSUMER_MAX)
		return -1;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)PROOF_CONTEXT, strlen(PROOF_CONTEXT));
	crypto_hash_sha256_update(&st, &zero, 1);
	len = (uint8_t)nlen;
	crypto_hash_sha256_update(&st, &len, 1);
	crypto_hash_sha256_update(&st, nonce, nlen);
	len = (uint8_t)clen;
	crypto_hash_sha256_update(&st, &len, 1);
	crypto_hash_sha256_update(&st, consumer, clen);
	crypto_hash_sha256_final(&st, hash);
	sodium_memzero(&st, sizeof(st));
	return 0;
}

void
proof_hash_format(const uint8_t hash[PROOF_HASH_LEN], char hex[PROOF_HASH_SIZE])
{
	hex_encode(hash, PROOF_HASH_LEN, hex);
}

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
proof_hash_parse(const char *hex, uint8_t hash[PROOF_HASH_LEN])
{
	int hi, lo;
	size_t i;

	memset(hash, 0, PROOF_HASH_LEN);
	if (strlen(hex) != PROOF_HASH_HEX)
		return -1;
	for (i = 0; i < PROOF_HASH_LEN; i++) {
		if ((hi = hex_digit(hex[2 * i])) < 0 || (lo = hex_digit(hex[2 * i + 1])) < 0) {
			memset(hash, 0, PROOF_HASH_LEN);
			return -1;
		}
		hash[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

bool
proof_provider_valid(const char *s)
{
	return vhost_name_valid(s) != 0;
}

/* --- claims ---------------------------------------------------------------- */

/* Only identities a session authenticated itself: a token's is another node's word. */
static bool
amr_valid(enum auth_method m)
{
	return m == AUTH_PUBKEY || m == AUTH_PASSWORD || m == AUTH_EXTERNAL;
}

static bool
claims_valid(const struct proof_claims *c)
{
	if (memchr(c->iss, '\0', sizeof(c->iss)) == NULL ||
	    memchr(c->sub, '\0', sizeof(c->sub)) == NULL)
		return false;
	return proof_provider_valid(c->iss) && auth_identity_valid(c->sub) && amr_valid(c->amr) &&
	       c->iat <= c->exp && c->exp <= TOKEN_TIME_MAX;
}

static json_t *
claims_object(const struct proof_claims *c)
{
	char iat[TOKEN_TIME_SIZE], exp[TOKEN_TIME_SIZE], hash[PROOF_HASH_SIZE];
	json_t *o;

	if (token_time_format(c->iat, iat) != 0 || token_time_format(c->exp, exp) != 0)
		return NULL;
	proof_hash_format(c->hash, hash);
	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "iss", c->iss, "sub", c->sub, "amr",
	              auth_method_name(c->amr), "hash", hash, "iat", iat, "exp", exp);
	return o;
}

int
proof_claims_encode(const struct proof_claims *c, char *out, size_t size, size_t *len)
{
	return token_claims_dump(claims_valid(c) ? claims_object(c) : NULL, out, size, len);
}

/* Exactly the members of 13.3, each a string. */
static bool
claims_shaped(json_t *o)
{
	const char *key;
	json_t *v;
	size_t i;
	bool known;

	if (json_object_size(o) != ARRAY_LEN(claim_members))
		return false;
	json_object_foreach(o, key, v)
	{
		for (i = 0, known = false; i < ARRAY_LEN(claim_members) && !known; i++)
			known = strcmp(key, claim_members[i]) == 0;
		if (!known || !json_is_string(v))
			return false;
	}
	return true;
}

/* The string member name into dst; -1 unless it fits. */
static int
get_string(json_t *o, const char *name, char *dst, size_t size)
{
	return str_copy(dst, json_string_value(json_object_get(o, name)), size) < size ? 0 : -1;
}

static int
get_time(json_t *o, const char *name, uint64_t *t)
{
	return token_time_parse(json_string_value(json_object_get(o, name)), t);
}

int
proof_claims_decode(const uint8_t *p, size_t len, struct proof_claims *c)
{
	char amr[AMR_SIZE], hash[PROOF_HASH_SIZE];
	struct proof_claims t;
	json_t *o;
	int r = -1;

	memset(c, 0, sizeof(*c));
	memset(&t, 0, sizeof(t));
	o = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o) || !claims_shaped(o))
		goto out;
	if (get_string(o, "iss", t.iss, sizeof(t.iss)) != 0 ||
	    get_string(o, "sub", t.sub, sizeof(t.sub)) != 0 ||
	    get_string(o, "amr", amr, sizeof(amr)) != 0 ||
	    get_string(o, "hash", hash, sizeof(hash)) != 0 || proof_hash_parse(hash, t.hash) != 0 ||
	    get_time(o, "iat", &t.iat) != 0 || get_time(o, "exp", &t.exp) != 0 ||
	    auth_method_from_name(amr, &t.amr) != 0 || !claims_valid(&t))
		goto out;
	*c = t;
	r = 0;
out:
	json_decref(o);
	return r;
}

/* --- signing and verifying --------------------------------------------------- */

static void
footer_for(const char *kid, char out[FOOTER_SIZE])
{
	snprintf(out, FOOTER_SIZE, TOKEN_FOOTER_PREFIX "%s" TOKEN_FOOTER_SUFFIX, kid);
}

int
proof_sign(const struct token_key *key, const struct proof_claims *c, char *out, size_t size)
{
	char m[CLAIMS_MAX], f[FOOTER_SIZE];
	size_t mlen;
	int r = -1;

	if (size > 0)
		out[0] = '\0';
	footer_for(key->kid, f);
	if (strlen(f) != TOKEN_FOOTER_LEN || proof_claims_encode(c, m, sizeof(m), &mlen) != 0)
		goto out;
	r = paseto_v4_public_sign(key->sk, (const uint8_t *)m, mlen, (const uint8_t *)f,
	                          TOKEN_FOOTER_LEN, (const uint8_t *)PROOF_ASSERTION, ASSERTION_LEN,
	                          out, size);
	if (r == 0 && strlen(out) > PROOF_MAX) {
		out[0] = '\0';
		r = -1;
	}
out:
	sodium_memzero(m, sizeof(m));
	return r;
}

/*
 * The footer, read without trust, only to tell a proof of another key
 * from a forgery: it must have the fixed shape {"kid":"..."} to be a proof
 * at all, and name pk's kid to be one this key can verify.
 */
static enum proof_status
check_footer(const uint8_t pk[TOKEN_PK_LEN], const char *proof)
{
	const size_t pre = strlen(TOKEN_FOOTER_PREFIX), post = strlen(TOKEN_FOOTER_SUFFIX);
	char kid[TOKEN_KID_MAX], want[FOOTER_SIZE];
	uint8_t f[FOOTER_SIZE];
	size_t flen;

	if (strnlen(proof, PROOF_SIZE) > PROOF_MAX ||
	    strncmp(proof, PUBLIC_HEADER, strlen(PUBLIC_HEADER)) != 0 ||
	    paseto_footer(proof, f, sizeof(f), &flen) != 0 || flen != TOKEN_FOOTER_LEN ||
	    memcmp(f, TOKEN_FOOTER_PREFIX, pre) != 0 ||
	    memcmp(f + flen - post, TOKEN_FOOTER_SUFFIX, post) != 0)
		return PROOF_MALFORMED;
	token_kid(pk, kid);
	footer_for(kid, want);
	return memcmp(f, want, TOKEN_FOOTER_LEN) == 0 ? PROOF_OK : PROOF_OTHER_KEY;
}

static enum proof_status
check_claims(const uint8_t *m, size_t mlen, const uint8_t hash[PROOF_HASH_LEN], uint64_t now,
             struct proof_claims *c)
{
	if (proof_claims_decode(m, mlen, c) != 0)
		return PROOF_BAD_CLAIMS;
	if (sodium_memcmp(c->hash, hash, PROOF_HASH_LEN) != 0)
		return PROOF_OTHER_CHALLENGE;
	if (c->iat > TOKEN_CLOCK_SKEW && c->iat - TOKEN_CLOCK_SKEW > now)
		return PROOF_NOT_YET_VALID;
	if (now >= c->exp)
		return PROOF_EXPIRED;
	return PROOF_OK;
}

enum proof_status
proof_verify(const uint8_t pk[TOKEN_PK_LEN], const char *proof, const uint8_t hash[PROOF_HASH_LEN],
             uint64_t now, struct proof_claims *c)
{
	uint8_t m[CLAIMS_MAX], f[FOOTER_SIZE];
	size_t mlen, flen;
	enum proof_status s;

	memset(c, 0, sizeof(*c));
	if ((s = check_footer(pk, proof)) != PROOF_OK)
		return s;
	if (paseto_v4_public_verify(pk, proof, (const uint8_t *)PROOF_ASSERTION, ASSERTION_LEN, m,
	                            sizeof(m), &mlen, f, sizeof(f), &flen) != 0)
		return PROOF_BAD_SIGNATURE;
	if ((s = check_claims(m, mlen, hash, now, c)) != PROOF_OK)
		memset(c, 0, sizeof(*c));
	return s;
}

void
proof_key_format(const uint8_t pk[TOKEN_PK_LEN], char out[PROOF_KEY_B64_SIZE])
{
	keyfile_b64(pk, out);
}

int
proof_key_parse(const char *text, uint8_t pk[TOKEN_PK_LEN])
{
	return keyfile_b64_decode(text, pk);
}
