#include "common/randpool.h"

#include <sodium.h>
#include <string.h>

void
randpool_take(struct randpool *p, void *out, size_t len)
{
	if (len > RANDPOOL_SIZE) {
		randombytes_buf(out, len);
		return;
	}
	if (p->left < len) {
		randombytes_buf(p->bytes, sizeof(p->bytes));
		p->left = sizeof(p->bytes);
	}
	p->left -= len;
	memcpy(out, p->bytes + p->left, len);
	sodium_memzero(p->bytes + p->left, len);
}
