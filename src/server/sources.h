/*
 * Connections counted per source (an IPv4 address or an IPv6 /64), so that
 * one source cannot take every connection slot.
 */
#ifndef FIVE_SOURCES_H
#define FIVE_SOURCES_H

#include <stdint.h>

#include "common/addr.h"

struct source_table;

/* An empty table, or NULL when memory is short.  Freed with source_table_free. */
struct source_table *source_table_new(void);

void source_table_free(struct source_table *t);

/* Counts one more connection from key unless it already has max.  Returns 0 or -1. */
int source_acquire(struct source_table *t, const uint8_t key[SOURCE_KEY_LEN], uint64_t max);

/* Counts one connection less from key (which must have been acquired). */
void source_release(struct source_table *t, const uint8_t key[SOURCE_KEY_LEN]);

#endif
