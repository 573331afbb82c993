/*
 * Read buffers that become write requests: a read fills a chunk, and the
 * same chunk is written to the other side and freed when the write is done.
 */
#ifndef FIVE_CHUNK_H
#define FIVE_CHUNK_H

#include <stddef.h>
#include <uv.h>

#define CHUNK_READ_SIZE (64 * 1024)

struct chunk {
	uv_write_t req;
	void *owner; /* whoever issued the write */
	void *tag;   /* owner's note, such as which direction */
	char data[];
};

/* A libuv allocation callback handing out CHUNK_READ_SIZE chunks (or an empty buffer). */
void chunk_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* The chunk a buffer from chunk_alloc lives in. */
struct chunk *chunk_of(const uv_buf_t *buf);

/* Frees the chunk behind a buffer from chunk_alloc, if any. */
void chunk_release(const uv_buf_t *buf);

/* A chunk holding a copy of data, or NULL. */
struct chunk *chunk_copy(const void *data, size_t len);

/*
 * Writes the chunk's first len bytes to dst; cb gets the chunk's req and
 * must free the chunk.  On failure frees the chunk and returns -1.
 */
int chunk_write(struct chunk *c, size_t len, uv_stream_t *dst, void *owner, void *tag,
                uv_write_cb cb);

#endif
