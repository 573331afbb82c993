/*
 * authorized_clients files (src/server/conf/clients.c): every entry
 * accepted is found again by its key; the kept Diffie-Hellman results,
 * filled in batches, carry over to a second parse of the same file, key
 * by key; a refused file leaves nothing behind.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "server/conf/clients.h"

#define ERR_MAX 256
#define BATCH   7 /* fills in several rounds for longer files */

/* A stand-in for the monitor: the key's own bytes, reversed; refuses keys ending in 0xff. */
static int
stand_in_dh(void *ctx, const uint8_t pk[32], uint8_t ss[32])
{
	size_t i;

	(void)ctx;
	if (pk[31] == 0xff)
		return -1;
	for (i = 0; i < 32; i++)
		ss[i] = pk[31 - i];
	return 0;
}

static void
check(const struct client_keys *c, const struct client_keys *carried)
{
	const struct client_key *k;
	uint8_t ss[32];
	size_t i;

	for (i = 0; i < c->n; i++) {
		k = clients_find(carried, c->keys[i].pk);
		if (clients_find(c, c->keys[i].pk) == NULL || k == NULL ||
		    clients_identity(c, c->keys[i].pk) == NULL ||
		    k->ss_known != (stand_in_dh(NULL, k->pk, ss) == 0) ||
		    (k->ss_known && memcmp(k->ss, ss, sizeof(ss)) != 0))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct client_keys c, again;
	char err[ERR_MAX];

	if (clients_parse("fuzz", (const char *)data, size, &c, err, sizeof(err)) != 0) {
		if (c.keys != NULL || c.n != 0)
			abort();
		return 0;
	}
	while (clients_fill(&c, BATCH, stand_in_dh, NULL))
		;
	if (clients_parse("fuzz", (const char *)data, size, &again, err, sizeof(err)) != 0)
		abort();
	clients_carry(&again, &c);
	check(&c, &again);
	clients_free(&c);
	clients_free(&again);
	return 0;
}
