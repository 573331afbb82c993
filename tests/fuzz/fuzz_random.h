/*
 * libsodium's randombytes made deterministic, for targets whose code draws
 * random bytes (Noise ephemerals, record stream headers, proof-of-work
 * nonces): each draw is a ChaCha20 stream keyed by a counter, and the counter
 * starts over for every input, so an input always runs the same way and a
 * crash found once reproduces.  Only for fuzz targets: nothing here is random.
 */
#ifndef FIVE_TESTS_FUZZ_RANDOM_H
#define FIVE_TESTS_FUZZ_RANDOM_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static uint64_t fuzz_random_draws;

static const char *
fuzz_random_name(void)
{
	return "fuzz (fixed)";
}

static void
fuzz_random_buf(void *buf, size_t size)
{
	uint8_t seed[randombytes_SEEDBYTES] = {0};

	memcpy(seed, &fuzz_random_draws, sizeof(fuzz_random_draws));
	fuzz_random_draws++;
	randombytes_buf_deterministic(buf, size, seed);
}

static uint32_t
fuzz_random_u32(void)
{
	uint32_t v;

	fuzz_random_buf(&v, sizeof(v));
	return v;
}

/* libsodium falls back to its own uniform() over random() when it is NULL. */
static struct randombytes_implementation fuzz_random_impl = {
        .implementation_name = fuzz_random_name,
        .random = fuzz_random_u32,
        .buf = fuzz_random_buf,
};

/* Every input starts the same stream of random bytes. */
static inline void
fuzz_random_reset(void)
{
	fuzz_random_draws = 0;
}

/* As FUZZ_INITIALIZE_SODIUM, with randombytes replaced before libsodium starts. */
#define FUZZ_INITIALIZE_SODIUM_FIXED_RANDOM()                                                      \
	int LLVMFuzzerInitialize(int *argc, char ***argv)                                          \
	{                                                                                          \
		(void)argc;                                                                        \
		(void)argv;                                                                        \
		if (randombytes_set_implementation(&fuzz_random_impl) != 0 || sodium_init() < 0)   \
			abort();                                                                   \
		return 0;                                                                          \
	}

#endif
