#include "server/policy/chunk.h"

#include <stdlib.h>
#include <string.h>

struct chunk *
chunk_new(struct budget *budget, size_t cap)
{
	struct chunk *c = malloc(sizeof(*c) + cap);

	if (c == NULL)
		return NULL;
	c->owner = NULL;
	c->tag = NULL;
	c->budget = budget;
	c->size = sizeof(*c) + cap;
	budget_charge(budget, c->size);
	return c;
}

void
chunk_free(struct chunk *c)
{
	if (c == NULL)
		return;
	budget_release(c->budget, c->size);
	free(c);
}

void
chunk_alloc_charged(struct budget *budget, size_t cap, uv_buf_t *buf)
{
	struct chunk *c = chunk_new(budget, cap);

	*buf = c != NULL ? uv_buf_init(c->data, (unsigned)cap) : uv_buf_init(NULL, 0);
	/* The chunk is owned through buf->base from here: freed by chunk_release or a write. */
	// cppcheck-suppress memleak
}

void
chunk_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	chunk_alloc_charged(NULL, CHUNK_READ_SIZE, buf);
}

struct chunk *
chunk_of(const uv_buf_t *buf)
{
	return (struct chunk *)(void *)(buf->base - offsetof(struct chunk, data));
}

struct chunk *
chunk_fit(const uv_buf_t *buf, size_t len)
{
	struct chunk *c = chunk_of(buf), *fitted;

	if (len > CHUNK_COPY_MAX)
		return c;
	/*
	 * A short read moves to a chunk of its own size, and the read buffer is
	 * freed whole.  Shrinking it in place instead left the rest of every
	 * 64 KiB buffer as a hole between allocations that live on, which the
	 * next read buffer does not fit: the heap, and the RSS, kept growing.
	 * Should memory be short, the chunk keeps its size and its charge.
	 */
	if ((fitted = chunk_copy(c->budget, c->data, len)) == NULL)
		return c;
	chunk_free(c);
	return fitted;
}

void
chunk_release(const uv_buf_t *buf)
{
	if (buf->base != NULL)
		chunk_free(chunk_of(buf));
}

struct chunk *
chunk_copy(struct budget *budget, const void *data, size_t len)
{
	struct chunk *c = chunk_new(budget, len);

	if (c != NULL && len > 0)
		memcpy(c->data, data, len);
	return c;
}

int
chunk_write(struct chunk *c, size_t from, size_t len, uv_stream_t *dst, void *owner, void *tag,
            uv_write_cb cb)
{
	uv_buf_t b = uv_buf_init(c->data + from, (unsigned)(len - from));

	c->owner = owner;
	c->tag = tag;
	if (uv_write(&c->req, dst, &b, 1, cb) != 0) {
		chunk_free(c);
		return -1;
	}
	return 0;
}
