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

#endif
