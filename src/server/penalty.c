#include "server/penalty.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define PENALTY_BUCKETS 4096

struct entry {
	struct entry *next;
	uint8_t key[PENALTY_KEY_MAX];
	size_t len;
	unsigned failures;
	uint64_t last_ms;
};

struct penalty_table {
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	struct entry *buckets[PENALTY_BUCKETS];
	size_t count;
};

struct penalty_table *
penalty_table_new(void)
{
	struct penalty_table *t = calloc(1, sizeof(*t));

	if (t != NULL)
		crypto_shorthash_keygen(t->hash_key);
	return t;
}

void
penalty_table_free(struct penalty_table *t)
{
	struct entry *e, *next;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < PENALTY_BUCKETS; i++) {
		for (e = t->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(t);
}

/*
 * The slot holding key, or where it would go.  Expired entries met on the
 * way are dropped, so the table cleans itself as it is used.
 */
static struct entry **
find(struct penalty_table *t, const void *key, size_t len, uint64_t now_ms)
{
	uint8_t h[crypto_shorthash_BYTES];
	struct entry **pp, *e;
	uint64_t v;

	crypto_shorthash(h, key, len, t->hash_key);
	memcpy(&v, h, sizeof(v));
	pp = &t->buckets[v % PENALTY_BUCKETS];
	while ((e = *pp) != NULL) {
		if (now_ms - e->last_ms >= PENALTY_FORGET_MS) {
			*pp = e->next;
			free(e);
			t->count--;
			continue;
		}
		if (e->len == len && memcmp(e->key, key, len) == 0)
			return pp;
		pp = &e->next;
	}
	return pp;
}

uint64_t
penalty_delay(struct penalty_table *t, const void *key, size_t len, uint64_t now_ms)
{
	struct entry *e;
	uint64_t delay;

	if (len > PENALTY_KEY_MAX || (e = *find(t, key, len, now_ms)) == NULL || e->failures == 0)
		return 0;
	delay = PENALTY_BASE_MS;
	for (unsigned i = 1; i < e->failures && delay < PENALTY_MAX_MS; i++)
		delay *= 2;
	return delay < PENALTY_MAX_MS ? delay : PENALTY_MAX_MS;
}

void
penalty_fail(struct penalty_table *t, const void *key, size_t len, uint64_t now_ms)
{
	struct entry **pp, *e;

	if (len > PENALTY_KEY_MAX)
		return;
	pp = find(t, key, len, now_ms);
	if ((e = *pp) == NULL) {
		if (t->count >= PENALTY_ENTRIES_MAX || (e = calloc(1, sizeof(*e))) == NULL)
			return;
		memcpy(e->key, key, len);
		e->len = len;
		*pp = e;
		t->count++;
	}
	e->failures++;
	e->last_ms = now_ms;
}

void
penalty_clear(struct penalty_table *t, const void *key, size_t len, uint64_t now_ms)
{
	struct entry **pp, *e;

	if (len > PENALTY_KEY_MAX)
		return;
	pp = find(t, key, len, now_ms);
	if ((e = *pp) != NULL) {
		*pp = e->next;
		free(e);
		t->count--;
	}
}
