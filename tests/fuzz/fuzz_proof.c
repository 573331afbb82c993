/*
 * Proofs of identity as a consumer reads them: the input as a proof
 * verified with a fixed provider key for a fixed challenge, as a proof's
 * claims, and as PROVEAUTH's hash argument.  Whatever decodes must encode
 * again and decode to the same thing.  The seed proof was signed at NOW
 * with the key derived from SEED_P.
 */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/proof.h"

#define NOW        UINT64_C(1795323095) /* 2026-11-22T04:51:35Z */
#define SEED_P     0x50
#define CLAIMS_MAX 1024

static struct token_key provider;
static uint8_t hash[PROOF_HASH_LEN];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char nonce[] = "0123456789abcdef", consumer[] = "shop.example";
	uint8_t seed[TOKEN_SEED_LEN];

	if (sodium_init() < 0)
		abort();
	memset(seed, SEED_P, sizeof(seed));
	if (token_key_from_seed(seed, &provider) != 0 ||
	    proof_challenge((const uint8_t *)nonce, strlen(nonce), (const uint8_t *)consumer,
	                    strlen(consumer), hash) != 0)
		abort();
	return 0;
}

/* Claims that were accepted must be written again and read back unchanged. */
static void
check_claims(const struct proof_claims *c)
{
	struct proof_claims again;
	char json[CLAIMS_MAX];
	size_t len;

	if (proof_claims_encode(c, json, sizeof(json), &len) != 0 ||
	    proof_claims_decode((const uint8_t *)json, len, &again) != 0 ||
	    memcmp(c, &again, sizeof(again)) != 0)
		abort();
}

static void
check_hash(const char *text)
{
	uint8_t h[PROOF_HASH_LEN];
	char back[PROOF_HASH_SIZE];

	if (proof_hash_parse(text, h) != 0)
		return;
	proof_hash_format(h, back);
	if (strcmp(back, text) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proof_claims c;
	char *text;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (proof_verify(provider.pk, text, hash, NOW, &c) == PROOF_OK)
		check_claims(&c);
	if (proof_claims_decode(data, size, &c) == 0)
		check_claims(&c);
	check_hash(text);
	free(text);
	return 0;
}
