/*
 * A byte buffer with a hard cap: appending past the cap fails instead of
 * growing, so memory held for a peer stays bounded whatever the peer sends.
 */
#ifndef FIVE_BUF_H
#define FIVE_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data; /* owned; NULL until the first append */
	size_t len;    /* bytes held, from data[0] */
	size_t cap;    /* bytes allocated */
	size_t max;    /* cap never exceeds this */
};

/* An empty buffer that will never hold more than max bytes.  Allocates nothing. */
void buf_init(struct buf *b, size_t max);

/* Appends n bytes.  Returns 0, or -1 when the result would exceed max or memory is short. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Removes the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);

/* Bytes that may still be appended. */
size_t buf_room(const struct buf *b);

/* Wipes and frees the storage; the buffer is empty and reusable afterwards. */
void buf_free(struct buf *b);

#endif
