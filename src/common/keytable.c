#include "common/keytable.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define KEYTABLE_BUCKETS 4096

struct entry {
	struct entry *next;          /* in its bucket */
	struct entry *newer, *older; /* in the use order */
	uint8_t key[KEYTABLE_KEY_MAX];
	size_t len;
	struct keytable_value value;
};

struct keytable {
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	struct entry *buckets[KEYTABLE_BUCKETS];
	struct entry *newest, *oldest; /* by last use */
	uint64_t forget_ms;
	size_t count, max;
	keytable_evict_fn on_evict;
	void *evict_ctx;
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

	if (t == NULL)
		return;
	for (e = t->newest; e != NULL; e = next) {
		next = e->older;
		free(e);
	}
	free(t);
}

void
keytable_on_evict(struct keytable *t, keytable_evict_fn fn, void *ctx)
{
	t->on_evict = fn;
	t->evict_ctx = ctx;
}

size_t
keytable_count(const struct keytable *t)
{
	return t->count;
}

static void
unlink_use(struct keytable *t, struct entry *e)
{
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		t->newest = e->older;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		t->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void
mark_used(struct keytable *t, struct entry *e)
{
	if (t->newest == e)
		return;
	if (e->newer != NULL || e->older != NULL || t->oldest == e)
		unlink_use(t, e);
	e->older = t->newest;
	if (t->newest != NULL)
		t->newest->newer = e;
	t->newest = e;
	if (t->oldest == NULL)
		t->oldest = e;
}

static size_t
bucket(const struct keytable *t, const void *key, size_t len)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, key, len, t->hash_key);
	memcpy(&v, h, sizeof(v));
	return (size_t)(v % KEYTABLE_BUCKETS);
}

/* Unlinks e, found at *pp in its bucket, and frees it. */
static void
drop(struct keytable *t, struct entry **pp, struct entry *e)
{
	*pp = e->next;
	unlink_use(t, e);
	free(e);
	t->count--;
}

/*
 * The slot holding key, or where it would go.  Expired entries met on the
 * way are dropped, so the table cleans itself as it is used.
 */
static struct entry **
find(struct keytable *t, const void *key, size_t len, uint64_t now_ms)
{
	struct entry **pp = &t->buckets[bucket(t, key, len)], *e;

	while ((e = *pp) != NULL) {
		if (now_ms - e->value.stamp_ms >= t->forget_ms) {
			drop(t, pp, e);
			continue;
		}
		if (e->len == len && memcmp(e->key, key, len) == 0)
			return pp;
		pp = &e->next;
	}
	return pp;
}

/* Makes room for one more entry: the least recently used one goes. */
static void
evict_oldest(struct keytable *t, uint64_t now_ms)
{
	struct entry *e = t->oldest, **pp;

	if (e == NULL)
		return;
	for (pp = &t->buckets[bucket(t, e->key, e->len)]; *pp != e; pp = &(*pp)->next)
		;
	if (t->on_evict != NULL && now_ms - e->value.stamp_ms < t->forget_ms)
		t->on_evict(t->evict_ctx, &e->value);
	drop(t, pp, e);
}

struct keytable_value *
keytable_get(struct keytable *t, const void *key, size_t len, uint64_t now_ms, int create)
{
	struct entry **pp, *e;

	if (len > KEYTABLE_KEY_MAX)
		return NULL;
	pp = find(t, key, len, now_ms);
	if ((e = *pp) != NULL) {
		mark_used(t, e);
		return &e->value;
	}
	if (!create || t->max == 0)
		return NULL;
	if (t->count >= t->max) {
		evict_oldest(t, now_ms);
		pp = find(t, key, len, now_ms);
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	memcpy(e->key, key, len);
	e->len = len;
	e->value.stamp_ms = now_ms;
	*pp = e;
	mark_used(t, e);
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
	if ((e = *pp) != NULL)
		drop(t, pp, e);
}
