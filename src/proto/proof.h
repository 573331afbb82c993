/*
 * Proofs of identity (docs/PROTOCOL.md section 13, PROVEAUTH and
 * GETSIGNKEY): a user proves to a third party, the consumer, the identity
 * its session with fived authenticated.  The consumer's nonce and name
 * reach fived only as a hash (proof_challenge); fived signs that hash with
 * the identity, its own name and a lifetime as a PASETO v4.public token
 * under its signing key; the consumer verifies it with fived's public key
 * (proof_verify).  The signing side, the hash and the verifying side are
 * all here, so that fived, five and libfive agree byte for byte.
 *
 * Pure code: no I/O, no globals.  sodium_init() must have succeeded.
 */
#ifndef FIVE_PROOF_H
#define FIVE_PROOF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/auth.h"
#include "proto/line.h"
#include "proto/token.h"

/* Authenticated with every proof, never sent: a proof is never a token, nor the reverse. */
#define PROOF_ASSERTION "fived-proof-v1"

/* The first bytes hashed into a challenge, and the NUL after them. */
#define PROOF_CONTEXT "fived-proveauth-v1"

/* A challenge: SHA-256, sent as lowercase hex. */
#define PROOF_HASH_LEN  32
#define PROOF_HASH_HEX  (2 * PROOF_HASH_LEN)
#define PROOF_HASH_SIZE (PROOF_HASH_HEX + 1)

/*
 * The consumer's nonce and name, in bytes; each is hashed after a one-byte
 * length.  A nonce shorter than PROOF_NONCE_MIN could be guessed and a
 * proof asked for ahead of time.
 */
#define PROOF_NONCE_MIN    16
#define PROOF_NONCE_MAX    255
#define PROOF_CONSUMER_MAX 255

/* The provider's name: a host name's form, as a vhost name (section 2.8). */
#define PROOF_PROVIDER_MAX VHOST_MAX_LEN

/* A proof's lifetime: the default and the longest fived allows, in seconds. */
#define PROOF_TTL_DEFAULT 300
#define PROOF_TTL_MAX     86400

/*
 * A proof is at most this many characters (the longest fived writes, with
 * a 253-character provider name and a 64-character identity, is about
 * 780); a buffer of PROOF_SIZE holds any with its NUL.
 */
#define PROOF_MAX  1024
#define PROOF_SIZE (PROOF_MAX + 1)

/* The public key as GETSIGNKEY sends it: standard padded base64 of 32 bytes, and a NUL. */
#define PROOF_KEY_B64_SIZE 45

/* The claims of a proof (section 13.3).  Strings are NUL-terminated. */
struct proof_claims {
	char iss[PROOF_PROVIDER_MAX + 1]; /* the provider's name */
	char sub[AUTH_IDENTITY_MAX + 1];  /* the identity the session authenticated */
	enum auth_method amr;             /* how: pubkey, password or external */
	uint8_t hash[PROOF_HASH_LEN];     /* the challenge */
	uint64_t iat, exp;                /* Unix seconds, iat <= exp <= TOKEN_TIME_MAX */
};

/* Why a proof was not accepted, in the order proof_verify checks. */
enum proof_status {
	PROOF_OK = 0,
	PROOF_MALFORMED,       /* not a v4.public token with a footer {"kid":"KID"} */
	PROOF_OTHER_KEY,       /* its footer names a key other than the one given */
	PROOF_BAD_SIGNATURE,   /* the signature does not verify under that key */
	PROOF_BAD_CLAIMS,      /* the signed message is not claims of section 13.3 */
	PROOF_OTHER_CHALLENGE, /* signed for another nonce or another consumer */
	PROOF_NOT_YET_VALID,   /* iat beyond the verifier's clock and TOKEN_CLOCK_SKEW */
	PROOF_EXPIRED,         /* the verifier's clock at or past exp */
};

/* A sentence for the user: "signed by another key", "expired"... */
const char *proof_status_text(enum proof_status s);

/*
 * The challenge for a consumer: SHA-256 of PROOF_CONTEXT, a 0 byte, the
 * nonce's length as one byte, the nonce, the consumer's length as one
 * byte, the consumer.  nonce is PROOF_NONCE_MIN to PROOF_NONCE_MAX bytes,
 * consumer 1 to PROOF_CONSUMER_MAX, both taken as they are.  Returns 0, or
 * -1 (hash zeroed) for a length out of bounds.
 */
int proof_challenge(const uint8_t *nonce, size_t nlen, const uint8_t *consumer, size_t clen,
                    uint8_t hash[PROOF_HASH_LEN]);

/* The hash as PROVEAUTH sends it: PROOF_HASH_HEX lowercase hex digits and a NUL. */
void proof_hash_format(const uint8_t hash[PROOF_HASH_LEN], char hex[PROOF_HASH_SIZE]);

/* Parses exactly PROOF_HASH_HEX lowercase hex digits.  Returns 0, or -1 (hash zeroed). */
int proof_hash_parse(const char *hex, uint8_t hash[PROOF_HASH_LEN]);

/* Whether s may be a provider's name: 1 to PROOF_PROVIDER_MAX of [A-Za-z0-9._-], a letter or
 * digit first. */
bool proof_provider_valid(const char *s);

/*
 * Writes the claims as compact JSON, members iss, sub, amr, hash, iat, exp
 * in that order, into out[0..size), NUL-terminated, with the length in
 * *len.  Returns 0, or -1 when *c breaks a rule proof_claims_decode
 * checks (amr token or none among them) or out is too small.
 */
int proof_claims_encode(const struct proof_claims *c, char *out, size_t size, size_t *len);

/*
 * Decodes p[0..len) into *c: one JSON object with exactly those six
 * members, in any order, each a string of its form.  Returns 0, or -1
 * with *c zeroed.
 */
int proof_claims_decode(const uint8_t *p, size_t len, struct proof_claims *c);

/*
 * Signs the claims with key (its sk, pk and kid; only those are used):
 * a v4.public token, footer {"kid":"KID"}, implicit assertion
 * PROOF_ASSERTION, written NUL-terminated into out[0..size) (PROOF_SIZE
 * suffices).  Returns 0, or -1 with out "" (when size > 0).
 */
int proof_sign(const struct token_key *key, const struct proof_claims *c, char *out, size_t size);

/*
 * Verifies proof (a NUL-terminated string) as a consumer does: made by the
 * provider whose public key is pk, for the challenge hash, valid at now
 * (Unix seconds).  Returns PROOF_OK with *c filled, or the first check that
 * failed with *c zeroed.
 */
enum proof_status proof_verify(const uint8_t pk[TOKEN_PK_LEN], const char *proof,
                               const uint8_t hash[PROOF_HASH_LEN], uint64_t now,
                               struct proof_claims *c);

/* The public key as GETSIGNKEY sends it (keyfile_b64's form). */
void proof_key_format(const uint8_t pk[TOKEN_PK_LEN], char out[PROOF_KEY_B64_SIZE]);

/* Parses that form: exactly 44 characters of standard padded base64.  Returns 0 or -1. */
int proof_key_parse(const char *text, uint8_t pk[TOKEN_PK_LEN]);

#endif
