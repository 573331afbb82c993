/*
 * Tokens on the worker's side (docs/PROTOCOL.md section 9): this node's
 * token key by its public half, the other nodes' public keys it trusts,
 * and a copy of the revocations.  The private halves stay with the
 * privileged side (privops.h): tokens are issued and v4.local tokens
 * opened through priv, and a revocation counts once priv has recorded it.
 */
#ifndef FIVE_SERVER_TOKENS_H
#define FIVE_SERVER_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/token.h"
#include "server/conf/config.h"
#include "server/conf/revocations.h"
#include "server/privsep/priv.h"

struct tokens {
	struct token_key key; /* public half: pk and kid; v4.local opens through priv */
	struct token_trusted *trusted;
	size_t ntrusted;
	char trusted_path[CONFIG_PATH_MAX + 1];    /* as loaded: a reload may not change it */
	char revocation_file[CONFIG_PATH_MAX + 1]; /* likewise */
	struct revocations revoked;                /* priv's list, as recorded */
	struct priv *priv;                         /* not owned */
	struct store *store; /* shares revocations with other nodes, or NULL; not owned */
};

/*
 * Loads the token state for cfg through priv: the public key (pk), the
 * trusted keys file and the revocations.  Returns a tokens the caller
 * owns (tokens_free), or NULL after logging why.
 */
struct tokens *tokens_load(const struct config *cfg, struct priv *priv, const uint8_t pk[32],
                           uint64_t now);

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
 * Issues a token for c (all but jti, iat and exp filled; those are set
 * here) valid for ttl seconds from now, in cfg's format, into
 * out[0..size), for the caller identity (whose hourly quota it counts
 * against).  Returns 0, or -1 with *why (static).
 */
int tokens_issue(const struct tokens *t, const struct config *cfg, const char *identity,
                 struct token_claims *c, uint64_t now, uint64_t ttl, char *out, size_t size,
                 const char **why);

/*
 * Opens a token as token_open does, and refuses it as "revoked" when its
 * jti is, or every token while the revocations shared through the store
 * are out of date (revocation_stale_max).  Returns 0 with *c, or -1 with
 * *why.
 */
int tokens_open(struct tokens *t, const char *token, uint64_t now, struct token_claims *c,
                const char **why);

/*
 * The claims of a token to revoke: authentic and not expired, as
 * token_open checks, whether or not it is revoked already or the
 * revocations are out of date (a revocation is most needed while the store
 * is away).  Returns 0 with *c, or -1 with *why.
 */
int tokens_open_to_revoke(struct tokens *t, const char *token, uint64_t now, struct token_claims *c,
                          const char **why);

enum tokens_revoked {
	TOKENS_REVOKED,      /* recorded (or already), and with a store, sent to every node */
	TOKENS_REVOKED_HERE, /* recorded, but the store is unreachable: in force here only */
	TOKENS_NOT_REVOKED,  /* cannot be recorded: the list is full, the file cannot be written */
};

/* Whether the token jti is revoked on this node. */
bool tokens_is_revoked(struct tokens *t, const char *jti, uint64_t now);

/* What a client or an operator is told of TOKENS_REVOKED_HERE. */
#define REVOKED_HERE "revoked on this node only: the store is unreachable; revoke it again later"

/* Revokes the token whose claims are c until its expiry, durably (priv records it first). */
enum tokens_revoked tokens_revoke(struct tokens *t, const struct token_claims *c, uint64_t now);

/*
 * A revocation another node made (or this one, pushed back by the store):
 * recorded through priv, so that it outlives a restart, and enforced.
 */
void tokens_revoked_elsewhere(struct tokens *t, const char *jti, uint64_t exp, uint64_t now);

/*
 * The store may have lost the revocations (restarted empty, or emptied):
 * every one this node knows is recorded there again, for nodes that start
 * later and read the list from it.
 */
void tokens_republish(struct tokens *t, uint64_t now);

#endif
