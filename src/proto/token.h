/*
 * fived's tokens (docs/PROTOCOL.md section 9): PASETO v4 tokens whose
 * message is a small set of claims, whose footer names the issuing key, and
 * whose implicit assertion is TOKEN_ASSERTION.  Kept compact so that a
 * typical token fits a text line of the protocol.  Issuing, opening and the
 * strict claims codec; binding to client addresses; the file of other nodes'
 * public keys a node trusts.
 *
 * Pure code: no I/O, no globals.  sodium_init() must have succeeded.
 */
#ifndef FIVE_TOKEN_H
#define FIVE_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/addr.h"
#include "crypto/paseto.h"
#include "proto/auth.h"
#include "proto/line.h"

/* Authenticated with every token, never sent. */
#define TOKEN_ASSERTION "fived-token-v1"

/* What the v4.local key is derived from: BLAKE2b-32 of it, keyed with the Ed25519 seed. */
#define TOKEN_LOCAL_CONTEXT "fived-token-local-v1"

#define TOKEN_SEED_LEN 32 /* an Ed25519 seed */
#define TOKEN_PK_LEN   PASETO_V4_PUBLIC_PUBLICKEYBYTES
#define TOKEN_SK_LEN   PASETO_V4_PUBLIC_SECRETKEYBYTES

/*
 * A key id: the unpadded base64url (RFC 4648 section 5) of the first
 * TOKEN_KID_HASH_LEN bytes of SHA-256 of the public key.  It only picks
 * the key a token is then verified with, so 72 bits, which tell apart the
 * few keys one node trusts and fill 12 characters exactly, are enough.
 */
#define TOKEN_KID_HASH_LEN 9
#define TOKEN_KID_LEN      12
#define TOKEN_KID_MAX      (TOKEN_KID_LEN + 1)

/* A token's footer, byte for byte: the prefix, the kid, the suffix; 22 bytes. */
#define TOKEN_FOOTER_PREFIX "{\"kid\":\""
#define TOKEN_FOOTER_SUFFIX "\"}"
#define TOKEN_FOOTER_LEN    22

/* A token's id: 16 random bytes as lowercase hex. */
#define TOKEN_JTI_LEN 32

/* How far ahead of the verifier's clock an issuer's may run, in seconds. */
#define TOKEN_CLOCK_SKEW 60

/* The latest time a claim can carry: 9999-12-31T23:59:59Z. */
#define TOKEN_TIME_MAX UINT64_C(253402300799)

/* "YYYY-MM-DDTHH:MM:SSZ" with its NUL. */
#define TOKEN_TIME_SIZE 21

/* An address claim: an IPv6 literal and "/128", with NUL. */
#define TOKEN_ADDR_SIZE (ADDR_IP_MAX + 4)

/* The trusted keys file: entries, characters of a line, characters of a name. */
#define TOKEN_TRUSTED_MAX      256
#define TOKEN_TRUSTED_LINE_MAX 1024
#define TOKEN_TRUSTED_NAME_MAX 64

enum token_format {
	TOKEN_PUBLIC, /* v4.public: anyone with the public key verifies it */
	TOKEN_LOCAL,  /* v4.local: opaque, opened only by the issuer */
};

/*
 * The claims of section 9.1.  Every string is NUL-terminated.  The issuer
 * is not among them: the footer's kid names it, and the signature or
 * encryption under that key binds the footer to the claims.
 */
struct token_claims {
	char app[NAME_MAX_LEN + 1];      /* lowercase */
	char sub[AUTH_IDENTITY_MAX + 1]; /* "" when !has_sub */
	bool has_sub;
	enum auth_method amr;          /* pubkey, password, token or external */
	char vhost[VHOST_MAX_LEN + 1]; /* lowercase; "" when none */
	char addr[TOKEN_ADDR_SIZE];    /* canonical (token_addr_canonical); "" when unbound */
	uint64_t iat, exp;             /* Unix seconds, iat <= exp <= TOKEN_TIME_MAX */
	char jti[TOKEN_JTI_LEN + 1];   /* lowercase hex */
};

/*
 * Writes the claims as the token's message, compact JSON with the members
 * app, sub, amr, vhost, addr, iat, exp, jti in that order (sub, vhost and
 * addr only when present), into out[0..size), NUL-terminated, with the
 * length in *len.  Returns 0, or -1 when *c breaks a rule
 * token_claims_decode checks or out is too small.
 */
int token_claims_encode(const struct token_claims *c, char *out, size_t size, size_t *len);

/*
 * Decodes a token's message, p[0..len), into *c: one JSON object with
 * exactly those members (sub, vhost and addr optional; any other, iss
 * among them, is refused), each a string of its form, times as
 * "YYYY-MM-DDTHH:MM:SSZ", iat <= exp.  Returns 0, or -1 with *c zeroed.
 */
int token_claims_decode(const uint8_t *p, size_t len, struct token_claims *c);

/* Formats t (at most TOKEN_TIME_MAX) as RFC 3339 UTC with seconds.  Returns 0 or -1. */
int token_time_format(uint64_t t, char out[TOKEN_TIME_SIZE]);

/*
 * Claims (a json_t *, taken: freed here, NULL allowed) as compact JSON in
 * their order, NUL-terminated, into out[0..size); *len its length.  0, or
 * -1 when there are none or they do not fit.  Tokens' and proofs' alike.
 */
int token_claims_dump(void *claims, char *out, size_t size, size_t *len);

/* Parses exactly that form, a real date and time (no leap second).  Returns 0 or -1. */
int token_time_parse(const char *s, uint64_t *t);

/*
 * Checks an address or prefix as a user gives it ("192.0.2.7",
 * "2001:db8::/48") and writes its canonical form: the address as
 * inet_ntop(3) writes it, an IPv4-mapped IPv6 address as IPv4, and no
 * prefix length when it covers the whole address.  A prefix with bits set
 * past its length is refused, not rounded.  Returns 0, or -1 (out "").
 */
int token_addr_canonical(const char *in, char out[TOKEN_ADDR_SIZE]);

/*
 * Whether the peer address is within the addr claim (an address or prefix
 * as token_addr_canonical writes it).  An IPv4-mapped IPv6 peer is compared
 * as IPv4.  A peer of another family, or a claim that does not parse,
 * never matches.
 */
bool token_addr_matches(const char *addr_claim, const struct sockaddr *peer);

/*
 * A node's token key.  Secret: keep it in locked memory when it lives
 * long, and wipe it with token_key_wipe().
 */
struct token_key {
	uint8_t sk[TOKEN_SK_LEN]; /* libsodium's Ed25519 secret key: seed || pk */
	uint8_t pk[TOKEN_PK_LEN];
	uint8_t local[PASETO_V4_LOCAL_KEYBYTES];
	char kid[TOKEN_KID_MAX]; /* token_kid(pk) */
	/*
	 * Set when the secret halves are held elsewhere (sk and local zero):
	 * opens a v4.local token of this key as paseto_v4_local_open_body
	 * does, given its unpacked body and footer and the assertion
	 * TOKEN_ASSERTION.  Returns 0 with *mlen, or -1.
	 */
	int (*open_local)(void *ctx, const uint8_t *body, size_t blen, const uint8_t *f,
	                  size_t flen, uint8_t *m, size_t m_size, size_t *mlen);
	void *open_ctx;
};

/*
 * Writes the key id of the Ed25519 public key pk (TOKEN_KID_LEN
 * characters, NUL-terminated) into kid: what a token's footer names and
 * what an operator compares with the id a node prints.  Cannot fail.
 */
void token_kid(const uint8_t pk[TOKEN_PK_LEN], char kid[TOKEN_KID_MAX]);

/* Derives every part of *key from the seed.  Returns 0, or -1 with *key wiped. */
int token_key_from_seed(const uint8_t seed[TOKEN_SEED_LEN], struct token_key *key);

/* Wipes *key.  NULL is a no-op. */
void token_key_wipe(struct token_key *key);

/*
 * Issues a token of the format for the claims: message the claims,
 * footer {"kid":"KID"} with key->kid, implicit assertion TOKEN_ASSERTION.
 * Writes it NUL-terminated into out[0..size) (size PASETO_TOKEN_SIZE
 * always suffices).  Returns 0, or -1 with out "" (when size > 0) for
 * invalid claims or a short buffer.
 */
int token_issue(const struct token_key *key, enum token_format format, const struct token_claims *c,
                char *out, size_t size);

/* A public key another node issues tokens with, as the trusted keys file names it. */
struct token_trusted {
	uint8_t pk[TOKEN_PK_LEN];
	char kid[TOKEN_KID_MAX]; /* token_kid(pk) */
	char name[TOKEN_TRUSTED_NAME_MAX + 1];
};

/*
 * Opens a token (a NUL-terminated string) at time now (Unix seconds).  The
 * footer is read without trust only to find the key its kid names: it
 * must be exactly TOKEN_FOOTER_LEN bytes {"kid":"KID"}, KID TOKEN_KID_LEN
 * base64url characters, or the token is malformed.  The key is own's for
 * either format, or for v4.public one of trusted[0..ntrusted) (own may be
 * NULL on a node that only verifies; trusted may be NULL when ntrusted is
 * 0).  The token must then verify under that key with TOKEN_ASSERTION,
 * its claims decode, iat <= now + TOKEN_CLOCK_SKEW and now < exp.  Returns
 * 0 with *c filled, or -1 with *c zeroed and *why (when why is not NULL) a
 * static reason for the audit log: "malformed token", "unknown key", "bad
 * signature", "malformed claims", "not yet valid", "expired".  Whether to
 * tell the client which is the caller's decision.
 */
int token_open(const struct token_key *own, const struct token_trusted *trusted, size_t ntrusted,
               const char *token, uint64_t now, struct token_claims *c, const char **why);

/*
 * Parses a trusted keys file, text[0..len): per line "BASE64 NAME" with
 * BASE64 a 32-byte Ed25519 public key in standard padded base64 and NAME 1
 * to TOKEN_TRUSTED_NAME_MAX characters of [A-Za-z0-9._:@+-], separated by
 * spaces or tabs; blank lines and lines whose first non-blank character is
 * '#' are skipped; lines end in LF or CRLF.  At most TOKEN_TRUSTED_MAX
 * entries, no key or name twice.  Returns 0 with *out a malloc'd array of
 * *n entries (NULL when 0) for token_trusted_free(), or -1 with *out NULL,
 * *n 0 and err "NAME:LINE: message" (file is the NAME).
 */
int token_trusted_parse(const char *text, size_t len, const char *file, struct token_trusted **out,
                        size_t *n, char *err, size_t err_size);

/* Frees what token_trusted_parse returned.  NULL is a no-op. */
void token_trusted_free(struct token_trusted *t);

#endif
