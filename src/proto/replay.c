#include "proto/replay.h"

#include <sodium.h>
#include <string.h>

#include "proto/sealed.h"

#define BUCKETS   (REPLAY_SLOTS / REPLAY_WAYS)
#define INDEX_LEN 8 /* bytes of keyed hash that pick the bucket */

_Static_assert(REPLAY_WINDOW_SECONDS == 2 * SEALED_COOKIE_SECRET_SECONDS,
               "the window covers a cookie's whole life");
_Static_assert(REPLAY_SLOTS % REPLAY_WAYS == 0 && (BUCKETS & (BUCKETS - 1)) == 0,
               "a whole number of buckets, a power of two");

void
replay_init(struct replay_filter *f, const uint8_t *key)
{
	memset(f->slots, 0, sizeof(f->slots));
	if (key != NULL)
		memcpy(f->key, key, REPLAY_KEY_LEN);
	else
		randombytes_buf(f->key, REPLAY_KEY_LEN);
}

static size_t
bucket_of(const struct replay_filter *f, const uint8_t fp[REPLAY_FP_LEN])
{
	uint8_t h[INDEX_LEN];
	uint64_t v = 0;
	size_t i;

	crypto_generichash_blake2b(h, sizeof(h), fp, REPLAY_FP_LEN, f->key, REPLAY_KEY_LEN);
	for (i = 0; i < sizeof(h); i++)
		v = v << 8 | h[i];
	return (size_t)(v & (BUCKETS - 1));
}

int
replay_check_and_add(struct replay_filter *f, const uint8_t fp[REPLAY_FP_LEN], uint64_t now)
{
	struct replay_entry *b = &f->slots[bucket_of(f, fp) * REPLAY_WAYS];
	size_t i;

	for (i = 0; i < REPLAY_WAYS; i++)
		if (now < b[i].expires && sodium_memcmp(b[i].fp, fp, REPLAY_FP_LEN) == 0)
			return 0;
	/*
	 * A bucket is a queue in insertion order, oldest first: empty and
	 * expired entries are at its front, so they go before any live one.
	 */
	memmove(&b[0], &b[1], (REPLAY_WAYS - 1) * sizeof(*b));
	memcpy(b[REPLAY_WAYS - 1].fp, fp, REPLAY_FP_LEN);
	b[REPLAY_WAYS - 1].expires =
	        now > UINT64_MAX - REPLAY_WINDOW_SECONDS ? UINT64_MAX : now + REPLAY_WINDOW_SECONDS;
	return 1;
}

void
replay_fingerprint(const uint8_t *data, size_t len, uint8_t out[REPLAY_FP_LEN])
{
	crypto_generichash_blake2b(out, REPLAY_FP_LEN, data, len, NULL, 0);
}

void
replay_wipe(struct replay_filter *f)
{
	sodium_memzero(f, sizeof(*f));
}
