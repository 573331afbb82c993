#include "common/buf.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* Grow geometrically from a small start: most buffers hold one short line. */
#define BUF_FIRST_ALLOC 256

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	size_t want;
	uint8_t *grown;

	if (n > b->max - b->len)
		return -1;
	if (b->len + n > b->cap) {
		want = b->cap ? b->cap : BUF_FIRST_ALLOC;
		while (want < b->len + n)
			want *= 2;
		if (want > b->max)
			want = b->max;
		if ((grown = realloc(b->data, want)) == NULL)
			return -1;
		b->data = grown;
		b->cap = want;
	}
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n == 0)
		return;
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

size_t
buf_room(const struct buf *b)
{
	return b->max - b->len;
}

void
buf_free(struct buf *b)
{
	if (b->data != NULL) {
		sodium_memzero(b->data, b->cap);
		free(b->data);
	}
	buf_init(b, b->max);
}
