#include "server/policy/tokens.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "crypto/paseto.h"
#include "server/policy/store.h"

/* The local key lives with priv: the footer goes there NUL-terminated. */
static int
open_local(void *ctx, const uint8_t *body, size_t blen, const uint8_t *f, size_t flen, uint8_t *m,
           size_t m_size, size_t *mlen)
{
	char footer[TOKEN_FOOTER_LEN + 1];

	*mlen = 0;
	if (flen != TOKEN_FOOTER_LEN || memchr(f, '\0', flen) != NULL)
		return -1;
	memcpy(footer, f, flen);
	footer[flen] = '\0';
	return priv_token_open(ctx, body, blen, footer, m, m_size, mlen);
}

static int
load_trusted(struct tokens *t, const struct config *cfg)
{
	char *text = NULL, err[CONFIG_ERRORS_MAX];
	size_t len = 0;
	int r;

	str_copy(t->trusted_path, cfg->token_trusted_keys, sizeof(t->trusted_path));
	if (cfg->token_trusted_keys[0] == '\0')
		return 0;
	if (priv_file(t->priv, cfg->token_trusted_keys, &text, &len, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return -1;
	}
	r = token_trusted_parse(text, len, cfg->token_trusted_keys, &t->trusted, &t->ntrusted, err,
	                        sizeof(err));
	if (r != 0)
		log_error("%s", err);
	free(text);
	return r;
}

static int
load_revoked(struct tokens *t, uint64_t now)
{
	char *text = NULL, err[128];
	size_t len = 0;
	int r;

	if (priv_revoked(t->priv, &text, &len) != 0)
		return -1;
	r = revocations_parse(&t->revoked, text, len, now, err, sizeof(err));
	if (r != 0)
		log_error("the revoked tokens, line %s", err);
	free(text);
	return r;
}

struct tokens *
tokens_load(const struct config *cfg, struct priv *priv, const uint8_t pk[32], uint64_t now)
{
	struct tokens *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	revocations_init(&t->revoked);
	t->priv = priv;
	memcpy(t->key.pk, pk, TOKEN_PK_LEN);
	token_kid(pk, t->key.kid);
	t->key.open_local = open_local;
	t->key.open_ctx = priv;
	str_copy(t->revocation_file, cfg->revocation_file, sizeof(t->revocation_file));
	if (load_trusted(t, cfg) != 0 || load_revoked(t, now) != 0) {
		tokens_free(t);
		return NULL;
	}
	return t;
}

void
tokens_free(struct tokens *t)
{
	if (t == NULL)
		return;
	token_trusted_free(t->trusted);
	revocations_free(&t->revoked);
	free(t);
}

int
tokens_reload_check(const struct tokens *t, const struct config *cfg, char *err, size_t err_size)
{
	if (strcmp(t->trusted_path, cfg->token_trusted_keys) != 0) {
		snprintf(err, err_size, "token_trusted_keys changes only with a restart");
		return -1;
	}
	if (strcmp(t->revocation_file, cfg->revocation_file) != 0) {
		snprintf(err, err_size, "revocation_file changes only with a restart");
		return -1;
	}
	return 0;
}

int
tokens_issue(const struct tokens *t, const struct config *cfg, const char *identity,
             struct token_claims *c, uint64_t now, uint64_t ttl, char *out, size_t size,
             const char **why)
{
	uint8_t id[TOKEN_JTI_LEN / 2];
	char m[PASETO_MESSAGE_MAX];
	size_t mlen;
	int r;

	/* The monitor counts this node's; the store, the cluster's. */
	if (t->store != NULL && store_issued(t->store, identity) >= cfg->max_tokens_per_hour) {
		*why = "token quota reached";
		return -1;
	}
	randombytes_buf(id, sizeof(id));
	hex_encode(id, sizeof(id), c->jti);
	c->iat = now;
	c->exp = now + ttl;
	if (token_claims_encode(c, m, sizeof(m), &mlen) != 0) {
		*why = "cannot issue a token";
		return -1;
	}
	r = priv_token_issue(t->priv, identity, cfg->token_local ? TOKEN_LOCAL : TOKEN_PUBLIC, m,
	                     mlen, out, size, why);
	sodium_memzero(m, sizeof(m));
	if (r == 0 && t->store != NULL)
		store_count_issued(t->store, identity);
	return r;
}

int
tokens_open_to_revoke(struct tokens *t, const char *token, uint64_t now, struct token_claims *c,
                      const char **why)
{
	return token_open(&t->key, t->trusted, t->ntrusted, token, now, c, why);
}

int
tokens_open(struct tokens *t, const char *token, uint64_t now, struct token_claims *c,
            const char **why)
{
	if (!store_revocations_current(t->store)) {
		*why = "revocations out of date: the store is unreachable";
		return -1;
	}
	if (tokens_open_to_revoke(t, token, now, c, why) != 0)
		return -1;
	if (tokens_is_revoked(t, c->jti, now)) {
		sodium_memzero(c, sizeof(*c));
		*why = "revoked";
		return -1;
	}
	return 0;
}

/* Another worker's revocation is in the monitor's list, not in this one's copy; unknown is revoked.
 */
bool
tokens_is_revoked(struct tokens *t, const char *jti, uint64_t now)
{
	if (revocations_contains(&t->revoked, jti, now))
		return true;
	return priv_shared(t->priv) && priv_is_revoked(t->priv, jti) != 0;
}

enum tokens_revoked
tokens_revoke(struct tokens *t, const struct token_claims *c, uint64_t now)
{
	char err[256];

	if (!revocations_contains(&t->revoked, c->jti, now)) {
		if (priv_revoke(t->priv, c->jti, c->exp, err, sizeof(err)) != 0) {
			log_error("cannot revoke token %s: %s", c->jti, err);
			return TOKENS_NOT_REVOKED;
		}
		/* Recorded where it lasts: the copy here follows, even if it could not grow. */
		if (revocations_add(&t->revoked, c->jti, c->exp, now, err, sizeof(err)) != 0)
			return TOKENS_NOT_REVOKED;
	}
	/* Sent again when it already was: a revocation made while the store was away. */
	if (t->store != NULL && store_revoke(t->store, c->jti, c->exp) != 0) {
		log_error("token %s is revoked on this node only: the store is unreachable",
		          c->jti);
		return TOKENS_REVOKED_HERE;
	}
	return TOKENS_REVOKED;
}

void
tokens_revoked_elsewhere(struct tokens *t, const char *jti, uint64_t exp, uint64_t now)
{
	char err[256];

	if (exp <= now || revocations_contains(&t->revoked, jti, now))
		return;
	if (priv_revoke(t->priv, jti, exp, err, sizeof(err)) != 0)
		log_error("cannot record token %s, revoked by another node: %s", jti, err);
	if (revocations_add(&t->revoked, jti, exp, now, err, sizeof(err)) != 0)
		log_error("cannot enforce token %s, revoked by another node: %s", jti, err);
	else
		log_info("token %s revoked by another node", jti);
}

/* Pushed too: a node that started since the store lost them has read an empty list. */
static void
republish_one(void *arg, const char *jti, uint64_t exp)
{
	(void)store_revoke(arg, jti, exp);
}

void
tokens_republish(struct tokens *t, uint64_t now)
{
	if (t->store != NULL)
		revocations_each(&t->revoked, now, republish_one, t->store);
}
