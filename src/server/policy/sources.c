#include "server/policy/sources.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Chained hash table; keys hashed with a secret SipHash key so a client cannot pick collisions. */
#define SOURCE_BUCKETS 4096

/* The first size of the table of levels, which grows as a source's waiting connections do. */
#define LEVELS_MIN 16

struct source {
	struct source *next; /* in its hash bucket */
	uint8_t key[SOURCE_KEY_LEN];
	uint64_t count;                        /* connections held */
	uint64_t detached;                     /* of those, detached sessions */
	size_t nwaiting;                       /* of those, waiting to complete a request */
	struct source_waiter *oldest, *newest; /* those, oldest first */
	struct source *lprev, *lnext;          /* in levels[nwaiting], while nwaiting > 0 */
};

/* The sources with one number of waiting connections, the longest at that number first. */
struct level {
	struct source *head, *tail;
};

struct source_table {
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	struct source *buckets[SOURCE_BUCKETS];
	struct level *levels; /* levels[n]: the sources with n waiting connections */
	size_t nlevels;       /* entries allocated in levels */
	size_t top;           /* the highest n whose level is not empty; 0 when none waits */
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
	free(t->levels);
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

struct source *
source_acquire(struct source_table *t, const uint8_t key[SOURCE_KEY_LEN], uint64_t max,
               bool *to_attach)
{
	struct source **b = bucket_of(t, key);
	struct source *e;

	if (to_attach != NULL)
		*to_attach = false;
	for (e = *b; e != NULL; e = e->next) {
		if (memcmp(e->key, key, SOURCE_KEY_LEN) == 0) {
			/* Beyond max, a connection for each detached session, to attach it. */
			if (e->count >= max + (to_attach != NULL ? e->detached : 0))
				return NULL;
			if (to_attach != NULL)
				*to_attach = e->count >= max;
			e->count++;
			return e;
		}
	}
	if (max == 0 || (e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	memcpy(e->key, key, SOURCE_KEY_LEN);
	e->count = 1;
	e->next = *b;
	*b = e;
	return e;
}

void
source_detached(struct source *src, bool detached)
{
	if (detached)
		src->detached++;
	else
		src->detached--;
}

void
source_release(struct source_table *t, struct source *src)
{
	struct source **pp;

	if (--src->count > 0)
		return;
	for (pp = bucket_of(t, src->key); *pp != NULL; pp = &(*pp)->next) {
		if (*pp == src) {
			*pp = src->next;
			free(src);
			return;
		}
	}
}

/* --- waiting connections, by source ------------------------------------- */

static int
grow_levels(struct source_table *t, size_t n)
{
	size_t size = t->nlevels * 2 > n + 1 ? t->nlevels * 2 : n + 1;
	struct level *grown;

	if (size < LEVELS_MIN)
		size = LEVELS_MIN;
	if ((grown = realloc(t->levels, size * sizeof(*grown))) == NULL)
		return -1;
	memset(grown + t->nlevels, 0, (size - t->nlevels) * sizeof(*grown));
	t->levels = grown;
	t->nlevels = size;
	return 0;
}

/*
 * Moves src from the level of its waiting count to the level of n, one
 * more or one less.  Fails (-1, nothing changed) only when a level has to
 * be made and memory is short.
 */
static int
move_to_level(struct source_table *t, struct source *src, size_t n)
{
	struct level *l;

	if (n >= t->nlevels && grow_levels(t, n) != 0)
		return -1;
	if (src->nwaiting > 0) {
		l = &t->levels[src->nwaiting];
		if (src->lprev != NULL)
			src->lprev->lnext = src->lnext;
		else
			l->head = src->lnext;
		if (src->lnext != NULL)
			src->lnext->lprev = src->lprev;
		else
			l->tail = src->lprev;
	}
	src->nwaiting = n;
	src->lprev = src->lnext = NULL;
	if (n > 0) {
		l = &t->levels[n];
		src->lprev = l->tail;
		if (l->tail != NULL)
			l->tail->lnext = src;
		else
			l->head = src;
		l->tail = src;
	}
	if (n > t->top)
		t->top = n;
	/* A move is by one: at most one step down. */
	while (t->top > 0 && t->levels[t->top].head == NULL)
		t->top--;
	return 0;
}

int
source_wait(struct source_table *t, struct source *src, struct source_waiter *w, void *owner)
{
	if (move_to_level(t, src, src->nwaiting + 1) != 0)
		return -1;
	w->owner = owner;
	w->src = src;
	w->next = NULL;
	w->prev = src->newest;
	if (src->newest != NULL)
		src->newest->next = w;
	else
		src->oldest = w;
	src->newest = w;
	return 0;
}

void
source_unwait(struct source_table *t, struct source_waiter *w)
{
	struct source *src = w->src;

	if (src == NULL)
		return;
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		src->oldest = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	else
		src->newest = w->prev;
	w->prev = w->next = NULL;
	w->src = NULL;
	/* Down a level: the level exists, so this cannot fail. */
	move_to_level(t, src, src->nwaiting - 1);
}

void *
source_busiest_oldest(const struct source_table *t)
{
	if (t->top == 0)
		return NULL;
	return t->levels[t->top].head->oldest->owner;
}

size_t
source_waiting(const struct source *src)
{
	return src->nwaiting;
}
