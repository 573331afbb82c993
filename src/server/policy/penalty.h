/*
 * Authentication failure counters with growing delays.
 *
 * Two tables: one keyed by source (an IPv4 address or an IPv6 /64), one
 * by identity.  A source's failures delay every later attempt from it,
 * before any check, so an attacker cannot hurry by hanging up early.  An
 * identity's failures only delay the answer to a failed attempt: a right
 * password or key is answered at once, so failures caused from elsewhere
 * can never lock a user out.  Counts are forgotten PENALTY_FORGET_MS after
 * the last failure.
 */
#ifndef FIVE_PENALTY_H
#define FIVE_PENALTY_H

#include <stddef.h>
#include <stdint.h>

#define PENALTY_BASE_MS     250
#define PENALTY_MAX_MS      8000
#define PENALTY_FORGET_MS   (15 * 60 * 1000)
#define PENALTY_ENTRIES_MAX 65536 /* per table; past it, new keys are not tracked */

struct penalty_table;

/* An empty table, or NULL.  Freed with penalty_table_free. */
struct penalty_table *penalty_table_new(void);
void penalty_table_free(struct penalty_table *t);

/* The delay key has earned: 0, or PENALTY_BASE_MS doubling per failure up to PENALTY_MAX_MS. */
uint64_t penalty_delay(struct penalty_table *t, const void *key, size_t len, uint64_t now_ms);

/* Counts a failure for key. */
void penalty_fail(struct penalty_table *t, const void *key, size_t len, uint64_t now_ms);

/* Forgets key's failures (after a success). */
void penalty_clear(struct penalty_table *t, const void *key, size_t len, uint64_t now_ms);

#endif
