/*
 * What the libFuzzer targets share: the entry points libFuzzer calls, and
 * the initializer of a target whose code needs libsodium.
 */
#ifndef FIVE_TESTS_FUZZ_H
#define FIVE_TESTS_FUZZ_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Defines LLVMFuzzerInitialize to make libsodium ready before the first
 * input; a target that cannot have it stops there (libFuzzer ignores what
 * the initializer returns).
 */
#define FUZZ_INITIALIZE_SODIUM()                                                                   \
	int LLVMFuzzerInitialize(int *argc, char ***argv)                                          \
	{                                                                                          \
		(void)argc;                                                                        \
		(void)argv;                                                                        \
		if (sodium_init() < 0)                                                             \
			abort();                                                                   \
		return 0;                                                                          \
	}

/* A piece of the input. */
struct fuzz_chunk {
	const uint8_t *p;
	size_t len;
};

/*
 * Cuts data into n pieces, each a 16-bit big-endian length and as many
 * bytes as remain up to it; the pieces the input does not reach are empty.
 */
static inline void
fuzz_chunks(const uint8_t *data, size_t size, struct fuzz_chunk *out, size_t n)
{
	size_t i, len;

	for (i = 0; i < n; i++)
		out[i] = (struct fuzz_chunk){NULL, 0};
	for (i = 0; i < n && size >= 2; i++) {
		len = (size_t)data[0] << 8 | data[1];
		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		out[i] = (struct fuzz_chunk){data, len};
		data += len;
		size -= len;
	}
}

#endif
