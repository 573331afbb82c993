#include "server/keytable.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define KEYTABLE_BUCKETS 4096

struct entry {
	struct entry *next;
	uint8_t key[KEYTABLE_KEY_MAX];
	size_t len;
	struct keytable_value value;
};

struct keytable {
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	struct entry *buckets[KEYTABLE_BUCKETS];
	uint64_t forget_ms;
	size_t count, max;
};

struct keytable *
keytable_new(uint64_t forget_ms, size_t max)
{
	struct keytable *t = calloc(1, sizeof(*t));

	if (t != NULL) {
		crypto_shorthash_keygen(t->hash_key);
		t->forget_ms = forget_ms;
		t->max = max;
	}
	return t;
}

void
keytable_free(struct keytable *t)
{
	struct entry *e, *next;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < KEYTABLE_BUCKETS; i++) {
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
find(struct keytable *t, const void *key, size_t len, uint64_t now_ms)
{
	uint8_t h[crypto_shorthash_BYTES];
	struct entry **pp, *e;
	uint64_t v;

	crypto_shorthash(h, key, len, t->hash_key);
	memcpy(&v, h, sizeof(v));
	pp = &t->buckets[v % KEYTABLE_BUCKETS];
	while ((e = *pp) != NULL) {
		if (now_ms - e->value.stamp_ms >= t->forget_ms) {
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

struct keytable_value *
keytable_get(struct keytable *t, const void *key, size_t len, uint64_t now_ms, int create)
{
	struct entry **pp, *e;

	if (len > KEYTABLE_KEY_MAX)
		return NULL;
	pp = find(t, key, len, now_ms);
	if ((e = *pp) != NULL)
		return &e->value;
	if (!create || t->count >= t->max || (e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	memcpy(e->key, key, len);
	e->len = len;
	e->value.stamp_ms = now_ms;
	*pp = e;
	t->count++;
	return &e->value;
}

void
keytable_remove(struct keytable *t, const void *key, size_t len, uint64_t now_ms)
{
	struct entry **pp, *e;

	if (len > KEYTABLE_KEY_MAX)
		return;
	pp = find(t, key, len, now_ms);
	if ((e = *pp) != NULL) {
		*pp = e->next;
		free(e);
		t->count--;
	}
}
