/*
 * The memory budget for relayed bytes (relay_memory_max): one per server.
 *
 * Every chunk that carries a session's bytes (read buffers, queued
 * writes both ways, what a transport encodes for the client, a built-in's
 * backlog) and the client bytes a session holds before its relay starts
 * are charged here from their allocation to their release, so used is
 * the memory they take, exactly.  The budget itself decides nothing: the
 * relay and the built-ins stop reading while it is over (see stream.c),
 * and it tells its owner when it falls back below the low-water mark.
 * Pure: no I/O.
 */
#ifndef FIVE_BUDGET_H
#define FIVE_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reads while the budget is over, or about to be, take at most this much. */
#define BUDGET_READ_MIN 4096

struct budget {
	uint64_t used;   /* bytes charged now */
	uint64_t max;    /* the budget */
	uint64_t pauses; /* readers stopped for the budget, since the start */
	/* Called when used falls below budget_low(); may be NULL. */
	void (*on_low)(void *arg);
	void *arg;
};

/* An empty budget of max bytes; on_low(arg) when usage falls below its low-water mark. */
void budget_init(struct budget *b, uint64_t max, void (*on_low)(void *arg), void *arg);

/* Changes the budget (a reload); calls on_low when usage is already below the new low mark. */
void budget_set_max(struct budget *b, uint64_t max);

/* The low-water mark: three quarters of the budget. */
uint64_t budget_low(const struct budget *b);

/* Charges n bytes.  NULL is a no-op (memory outside any budget). */
void budget_charge(struct budget *b, size_t n);

/* Releases n bytes charged before; calls on_low when usage falls below the low mark. */
void budget_release(struct budget *b, size_t n);

/* Whether usage has reached the budget. */
bool budget_over(const struct budget *b);

/*
 * How much the next read may take, at most full: full while the budget
 * has room for it, what room is left as it fills, and BUDGET_READ_MIN once
 * it is reached (so that readers who are not stopped still move).
 */
size_t budget_read_size(const struct budget *b, size_t full);

/* Counts one reader stopped for the budget. */
void budget_note_pause(struct budget *b);

#endif
