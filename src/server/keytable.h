/*
 * A table of small counters keyed by short byte strings (a source
 * address, a user name), forgetting entries a fixed time after they were
 * last touched.  Hashed with a secret key, so a client cannot choose
 * collisions; bounded, so a flood of new keys cannot grow it past a cap
 * (past it, new keys are simply not tracked).
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

/* A table forgetting entries forget_ms after their last touch, holding at most max. */
struct keytable *keytable_new(uint64_t forget_ms, size_t max);
void keytable_free(struct keytable *t);

/*
 * The value for key, created (zeroed, stamped now) when missing and create
 * is set; NULL when absent, too long, or the table is full.  The pointer
 * is valid until the next call on the table.
 */
struct keytable_value *keytable_get(struct keytable *t, const void *key, size_t len,
                                    uint64_t now_ms, int create);

/* Forgets key. */
void keytable_remove(struct keytable *t, const void *key, size_t len, uint64_t now_ms);

#endif
