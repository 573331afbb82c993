#include "server/sources.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Chained hash table; keys hashed with a secret SipHash key so a client cannot pick collisions. */
#define SOURCE_BUCKETS 4096

struct source {
	struct source *next;
	uint8_t key[SOURCE_KEY_LEN];
	uint64_t count;
};

struct source_table {
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	struct source *buckets[SOURCE_BUCKETS];
};

struct source_table *
source_table_new(void)
{
	struct source_table *t = calloc(1, sizeof(*t));

	if (t != NULL)
		crypto_shorthash_keygen(t->hash_key);
	return t;
}

void
source_table_free(struct source_table *t)
{
	struct source *e, *next;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < SOURCE_BUCKETS; i++) {
		for (e = t->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(t);
}

static struct source **
bucket_of(struct source_table *t, const uint8_t key[SOURCE_KEY_LEN])
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, key, SOURCE_KEY_LEN, t->hash_key);
	memcpy(&v, h, sizeof(v));
	return &t->buckets[v % SOURCE_BUCKETS];
}

int
source_acquire(struct source_table *t, const uint8_t key[SOURCE_KEY_LEN], uint64_t max)
{
	struct source **b = bucket_of(t, key);
	struct source *e;

	for (e = *b; e != NULL; e = e->next) {
		if (memcmp(e->key, key, SOURCE_KEY_LEN) == 0) {
			if (e->count >= max)
				return -1;
			e->count++;
			return 0;
		}
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return -1;
	memcpy(e->key, key, SOURCE_KEY_LEN);
	e->count = 1;
	e->next = *b;
	*b = e;
	return 0;
}

void
source_release(struct source_table *t, const uint8_t key[SOURCE_KEY_LEN])
{
	struct source **pp, *e;

	for (pp = bucket_of(t, key); (e = *pp) != NULL; pp = &e->next) {
		if (memcmp(e->key, key, SOURCE_KEY_LEN) != 0)
			continue;
		if (--e->count == 0) {
			*pp = e->next;
			free(e);
		}
		return;
	}
}
