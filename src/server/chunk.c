#include "server/chunk.h"

#include <stdlib.h>
#include <string.h>

void
chunk_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct chunk *c = malloc(sizeof(*c) + CHUNK_READ_SIZE);

	*buf = c != NULL ? uv_buf_init(c->data, CHUNK_READ_SIZE) : uv_buf_init(NULL, 0);
	/* The chunk is owned through buf->base from here: freed by chunk_release or a write. */
	// cppcheck-suppress memleak
}

struct chunk *
chunk_of(const uv_buf_t *buf)
{
	return (struct chunk *)(void *)(buf->base - offsetof(struct chunk, data));
}

void
chunk_release(const uv_buf_t *buf)
{
	if (buf->base != NULL)
		free(chunk_of(buf));
}

struct chunk *
chunk_copy(const void *data, size_t len)
{
	struct chunk *c = malloc(sizeof(*c) + len);

	if (c != NULL && len > 0)
		memcpy(c->data, data, len);
	return c;
}

int
chunk_write(struct chunk *c, size_t len, uv_stream_t *dst, void *owner, void *tag, uv_write_cb cb)
{
	uv_buf_t b = uv_buf_init(c->data, (unsigned)len);

	c->owner = owner;
	c->tag = tag;
	if (uv_write(&c->req, dst, &b, 1, cb) != 0) {
		free(c);
		return -1;
	}
	return 0;
}
