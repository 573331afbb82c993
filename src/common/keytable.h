/*
 * A table of small counters keyed by short byte strings (a source
 * address, a user name), forgetting entries a fixed time after they were
 * last touched.  Hashed with a secret key, so a client cannot choose
 * collisions; bounded, so a flood of new keys cannot grow it past a cap.
 * Past the cap, a new key takes the place of the entry least recently
 * used: a table that refused new keys would let a flood of them escape
 * whatever the table limits.
 */
#ifndef FIVE_KEYTABLE_H
#define FIVE_KEYTABLE_H

#include <stddef.h>
#include <stdint.h>

#define KEYTABLE_KEY_MAX 64

struct keytable_value {
	uint64_t count;
	uint64_t stamp_ms; /* when the entry was last touched */
};

struct keytable;

/* Called with an entry pushed out for a new key before its time (not one forgotten). */
typedef void (*keytable_evict_fn)(void *ctx, const struct keytable_value *v);

/* A table forgetting entries forget_ms after their last touch, holding at most max. */
struct keytable *keytable_new(uint64_t forget_ms, size_t max);
void keytable_free(struct keytable *t);

/* Calls fn(ctx, value) for every entry evicted from now on. */
void keytable_on_evict(struct keytable *t, keytable_evict_fn fn, void *ctx);

/*
 * The value for key, created (zeroed, stamped now) when missing and create
 * is set, evicting the least recently used entry when the table is full;
 * NULL when absent and not created, or when key is too long.  Marks the
 * entry used.  The pointer is valid until the next call on the table.
 */
struct keytable_value *keytable_get(struct keytable *t, const void *key, size_t len,
                                    uint64_t now_ms, int create);

/* Forgets key. */
void keytable_remove(struct keytable *t, const void *key, size_t len, uint64_t now_ms);

/* How many entries the table holds. */
size_t keytable_count(const struct keytable *t);

#endif
