/*
 * Random bytes drawn from the kernel a page at a time: a session's id
 * needs 16 unpredictable bytes, and a getrandom(2) for each was one
 * system call in every session.  Not for keys: bytes handed out stay in
 * no pool, but bytes not yet handed out sit in memory until they are.
 */
#ifndef FIVE_RANDPOOL_H
#define FIVE_RANDPOOL_H

#include <stddef.h>
#include <stdint.h>

#define RANDPOOL_SIZE 4096 /* one getrandom(2) for 256 session ids */

/* Zeroed, a pool is empty and fills on its first use. */
struct randpool {
	uint8_t bytes[RANDPOOL_SIZE];
	size_t left; /* bytes[0..left) are not handed out yet */
};

/* len random bytes (at most RANDPOOL_SIZE) into out, never the same bytes twice. */
void randpool_take(struct randpool *p, void *out, size_t len);

#endif
