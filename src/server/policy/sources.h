/*
 * Connections counted per source (an IPv4 address or an IPv6 /64), so that
 * one source cannot take every connection slot; and, of those, the ones
 * still waiting to complete a request, so that at the limit the busiest
 * source gives way first.
 */
#ifndef FIVE_SOURCES_H
#define FIVE_SOURCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"

struct source_table;
struct source;

/*
 * A connection's place in its source's list of waiting connections.  The
 * owner embeds it, zeroed; src is NULL while the connection is not waiting.
 */
struct source_waiter {
	struct source_waiter *prev, *next;
	struct source *src;
	void *owner;
};

/* An empty table, or NULL when memory is short.  Freed with source_table_free. */
struct source_table *source_table_new(void);

/* Frees the table; source_table_free(NULL) does nothing. */
void source_table_free(struct source_table *t);

/*
 * Counts one more connection from key unless it already has max.  Returns
 * the source, valid until the matching source_release, or NULL (at max, or
 * memory short).  At max, a source with detached sessions may have as many
 * connections more, each *to_attach: a detached session holds its place,
 * and must not keep its own ATTACH out.  With to_attach NULL (a stream,
 * which no ATTACH comes on), max is the limit.
 */
struct source *source_acquire(struct source_table *t, const uint8_t key[SOURCE_KEY_LEN],
                              uint64_t max, bool *to_attach);

/* One of src's connections is now a detached session (true), or no longer is (false). */
void source_detached(struct source *src, bool detached);

/* Counts one connection less from src, which must not have a waiter of it left. */
void source_release(struct source_table *t, struct source *src);

/*
 * Adds w, owned by owner, as src's newest waiting connection.  src must be
 * acquired, and w not waiting.  Returns 0, or -1 when memory is short.
 */
int source_wait(struct source_table *t, struct source *src, struct source_waiter *w, void *owner);

/* Takes w off its source's waiting list; does nothing when w is not waiting. */
void source_unwait(struct source_table *t, struct source_waiter *w);

/*
 * The owner of the oldest waiting connection of the source with the most
 * waiting connections (among equals, the one that has had that many the
 * longest), or NULL when no connection waits.  O(1).
 */
void *source_busiest_oldest(const struct source_table *t);

/* How many connections from src are waiting. */
size_t source_waiting(const struct source *src);

#endif
