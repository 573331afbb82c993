/*
 * Tokens on the server (docs/PROTOCOL.md section 9): this node's token
 * key, the other nodes' public keys it trusts, and the tokens revoked
 * before their expiry, kept in revocation_file across restarts.
 *
 * Everything is read by tokens_load while fived still has the privileges
 * to read its key; the worker then only appends to the revocation file
 * through the descriptor opened here.
 */
#ifndef FIVE_SERVER_TOKENS_H
#define FIVE_SERVER_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/token.h"
#include "server/config.h"

/* Beside the sealed key: its name without ".key", then this. */
#define TOKENS_KEY_SUFFIX     "-token.key"
#define TOKENS_REVOKED_SUFFIX "-revoked"

/*
 * Revoked tokens remembered at once; an invalidate beyond this is refused.
 * Their file ("JTI EXP" lines) then stays within CONFIG_FILE_MAX.
 */
#define TOKENS_REVOKED_MAX 16384

struct revoked {
	char jti[TOKEN_JTI_LEN + 1];
	uint64_t exp;
};

struct tokens {
	struct token_key *key; /* locked memory; owned */
	struct token_trusted *trusted;
	size_t ntrusted;
	char trusted_path[CONFIG_PATH_MAX + 1]; /* as loaded: a reload may not change it */
	char revoked_path[CONFIG_PATH_MAX + 64];
	struct revoked *revoked; /* unordered; expired entries are dropped as found */
	size_t nrevoked;
	int revoked_fd; /* appended to, one line per revocation */
};

/*
 * Loads (creating it the first time) the token key beside key_path, the
 * trusted keys, and the revocation file, which it rewrites without the
 * entries expired by now.  Returns a tokens the caller owns (tokens_free),
 * or NULL after logging why.
 */
struct tokens *tokens_load(const struct config *cfg, const char *key_path, uint64_t now);

/*
 * What tokens_load would do with cfg, without creating or rewriting
 * anything: reads the token key, the trusted keys and the revocation file,
 * and says (log_info) which files it would create.  Returns 0 when
 * tokens_load would succeed, or -1 after logging why it would not.
 */
int tokens_check(const struct config *cfg, const char *key_path, uint64_t now);

void tokens_free(struct tokens *t);

/* Whether cfg can run with t as loaded; err says why not. */
int tokens_reload_check(const struct tokens *t, const struct config *cfg, char *err,
                        size_t err_size);

/*
 * Issues a token for c (all but jti, iat, exp and filled here) valid for
 * ttl seconds from now, in cfg's format, into out[0..size).  Returns 0 or -1.
 */
int tokens_issue(const struct tokens *t, const struct config *cfg, struct token_claims *c,
                 uint64_t now, uint64_t ttl, char *out, size_t size);

/*
 * Opens a token as token_open does, and refuses it as "revoked" when its
 * jti is.  Returns 0 with *c, or -1 with *why.
 */
int tokens_open(struct tokens *t, const char *token, uint64_t now, struct token_claims *c,
                const char **why);

/*
 * Revokes the token whose claims are c until its expiry, in memory and in
 * the revocation file.  Returns 0 (also when it already was), or -1 when
 * the list is full or the file cannot be written.
 */
int tokens_revoke(struct tokens *t, const struct token_claims *c, uint64_t now);

#endif
