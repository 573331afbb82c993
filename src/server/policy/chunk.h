/*
 * Read buffers that become write requests: a read fills a chunk, and the
 * same chunk is written to the other side and freed when the write is done.
 *
 * A chunk may be charged to a memory budget (budget.h): what it takes,
 * header included, is charged when it is allocated and released when it
 * is freed, whoever frees it.  Every chunk is freed with chunk_free.
 */
#ifndef FIVE_CHUNK_H
#define FIVE_CHUNK_H

#include <stddef.h>
#include <uv.h>

#include "server/policy/budget.h"

#define CHUNK_READ_SIZE (64 * 1024)
#define CHUNK_COPY_MAX  (16 * 1024) /* reads up to this size are copied out of the buffer */

struct chunk {
	uv_write_t req;
	void *owner;           /* whoever issued the write */
	void *tag;             /* owner's note, such as which direction */
	struct budget *budget; /* charged with size, or NULL */
	size_t size;           /* the bytes the chunk takes, header included */
	char data[];
};

/* A chunk with room for cap bytes, charged to budget (may be NULL); NULL when memory is short. */
struct chunk *chunk_new(struct budget *budget, size_t cap);

/* Frees a chunk and releases its charge.  NULL is a no-op. */
void chunk_free(struct chunk *c);

/* A libuv allocation callback handing out CHUNK_READ_SIZE chunks (or an empty buffer), uncharged.
 */
void chunk_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* For allocation callbacks: a chunk of cap bytes charged to budget in buf (or an empty buffer). */
void chunk_alloc_charged(struct budget *budget, size_t cap, uv_buf_t *buf);

/* The chunk a buffer from chunk_alloc lives in. */
struct chunk *chunk_of(const uv_buf_t *buf);

/*
 * The chunk behind a read buffer that got len bytes.  A short read (up to
 * CHUNK_COPY_MAX) holds no more memory than it carries: it is copied to a
 * chunk of its size, charged to the same budget, and the buffer freed.  The
 * chunk may change: use the one returned.
 */
struct chunk *chunk_fit(const uv_buf_t *buf, size_t len);

/* Frees the chunk behind a buffer from chunk_alloc, if any. */
void chunk_release(const uv_buf_t *buf);

/* A chunk holding a copy of data, charged to budget (may be NULL); or NULL. */
struct chunk *chunk_copy(struct budget *budget, const void *data, size_t len);

/*
 * Writes the chunk's bytes from from up to len to dst; cb gets the chunk's
 * req and must free the chunk (chunk_free).  On failure frees the chunk
 * and returns -1.
 */
int chunk_write(struct chunk *c, size_t from, size_t len, uv_stream_t *dst, void *owner, void *tag,
                uv_write_cb cb);

#endif
