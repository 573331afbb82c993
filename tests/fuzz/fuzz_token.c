/*
 * fived's tokens as a node reads them: the input as a token opened with
 * fixed keys (node A's own, node B's trusted), as a token's claims, as a
 * trusted keys file and as an address claim.  Whatever decodes must encode
 * again and decode to the same thing.  The seed tokens were issued at
 * NOW by A and B with the keys derived from the seeds below.
 */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/token.h"

#define NOW        UINT64_C(1795323095) /* 2026-11-22T04:51:35Z */
#define SEED_A     0x0a
#define SEED_B     0x0b
#define CLAIMS_MAX 1024
#define ERR_SIZE   256

static struct token_key own;
static struct token_trusted trusted;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t seed[TOKEN_SEED_LEN];
	struct token_key b;

	if (sodium_init() < 0)
		abort();
	memset(seed, SEED_A, sizeof(seed));
	if (token_key_from_seed(seed, &own) != 0)
		abort();
	memset(seed, SEED_B, sizeof(seed));
	if (token_key_from_seed(seed, &b) != 0)
		abort();
	memcpy(trusted.pk, b.pk, sizeof(trusted.pk));
	memcpy(trusted.kid, b.kid, sizeof(trusted.kid));
	memcpy(trusted.name, "b", sizeof("b"));
	token_key_wipe(&b);
	return 0;
}

static bool
same_claims(const struct token_claims *a, const struct token_claims *b)
{
	return strcmp(a->app, b->app) == 0 && strcmp(a->sub, b->sub) == 0 &&
	       a->has_sub == b->has_sub && a->amr == b->amr && strcmp(a->vhost, b->vhost) == 0 &&
	       strcmp(a->addr, b->addr) == 0 && a->iat == b->iat && a->exp == b->exp &&
	       strcmp(a->jti, b->jti) == 0;
}

/* Claims that were accepted must be written again and read back unchanged. */
static void
check_claims(const struct token_claims *c)
{
	char json[CLAIMS_MAX];
	struct token_claims again;
	size_t len;

	if (token_claims_encode(c, json, sizeof(json), &len) != 0 ||
	    token_claims_decode((const uint8_t *)json, len, &again) != 0 || !same_claims(c, &again))
		abort();
}

static void
check_token(const char *text)
{
	struct token_claims c;
	const char *why = NULL;

	if (token_open(&own, &trusted, 1, text, NOW, &c, &why) == 0)
		check_claims(&c);
	else if (why == NULL)
		abort();
}

static void
check_trusted(const char *text, size_t len)
{
	struct token_trusted *t;
	char err[ERR_SIZE];
	size_t n;

	if (token_trusted_parse(text, len, "fuzz", &t, &n, err, sizeof(err)) == 0)
		token_trusted_free(t);
	else if (strncmp(err, "fuzz:", strlen("fuzz:")) != 0)
		abort();
}

static void
check_addr(const char *text)
{
	char out[TOKEN_ADDR_SIZE], again[TOKEN_ADDR_SIZE];

	if (token_addr_canonical(text, out) != 0)
		return;
	if (token_addr_canonical(out, again) != 0 || strcmp(out, again) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct token_claims c;
	char *text;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	check_token(text);
	if (token_claims_decode(data, size, &c) == 0)
		check_claims(&c);
	check_trusted(text, size);
	check_addr(text);
	free(text);
	return 0;
}
