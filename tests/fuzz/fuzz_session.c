/*
 * Whole server sessions (tests/harness/): the first byte picks how the
 * client speaks, the rest is what it sends.  Each input is one session on
 * the same worker; it must end or wait, and leave the worker as it found
 * it (no session, handle or budget left behind: harness_run checks).
 *
 * The first byte: bits 0-2 pick what the client sends first (starts[]),
 * bit 3 cuts the rest into pieces written one at a time (their sizes drawn
 * from bits 4-7), bit 7 has the client end its stream after it all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness/session_harness.h"
#include "fuzz.h"

/* The most pieces an input is cut into; the last takes what is left. */
#define PIECES_MAX 64

/* Pieces are 1 to PIECE_SIZE_MAX bytes. */
#define PIECE_SIZE_MAX 64

#define MODE_START  0x07 /* the first bytes the client sends: starts[] */
#define MODE_PIECES 0x08 /* cut into pieces, each written and run on its own */
#define MODE_SHUT   0x80 /* the client ends its stream after its bytes */

/* What comes before the input's bytes: each dialect's and transport's first byte. */
static const struct {
	const char *bytes;
	size_t len;
} starts[] = {
        {"", 0},         /* as the input has it */
        {"echo\r\n", 6}, /* a text request, then application bytes */
        {"{", 1},        /* USP */
        {"\xf5", 1},     /* the sealed handshake */
        {"\x16", 1},     /* implicit TLS */
        {"TLS\r\n", 5},  /* the TLS command */
        {"AUTH pubkey\r\n", 13},
        {"HOST alpha.example\r\n", 20},
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0 || harness_init() != 0)
		abort();
	return 0;
}

/* Cuts data[0..size) into pieces of sizes drawn from seed; how many. */
static size_t
cut(const uint8_t *data, size_t size, unsigned seed, struct harness_piece *out)
{
	size_t n = 0, len;

	while (size > 0 && n < PIECES_MAX - 1) {
		seed = seed * 1103515245u + 12345u; /* any spread of sizes will do */
		len = 1 + (seed >> 16) % PIECE_SIZE_MAX;
		len = len < size ? len : size;
		out[n++] = (struct harness_piece){data, len};
		data += len;
		size -= len;
	}
	if (size > 0)
		out[n++] = (struct harness_piece){data, size};
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct harness_piece pieces[PIECES_MAX + 1];
	struct harness_result res;
	size_t n = 0;
	uint8_t mode;

	if (size == 0)
		return 0;
	mode = data[0];
	pieces[n++] = (struct harness_piece){starts[mode & MODE_START].bytes,
	                                     starts[mode & MODE_START].len};
	if (mode & MODE_PIECES)
		n += cut(data + 1, size - 1, mode >> 4, pieces + n);
	else
		pieces[n++] = (struct harness_piece){data + 1, size - 1};
	if (harness_run(pieces, n, (mode & MODE_SHUT) != 0, &res) != 0) {
		fprintf(stderr, "fuzz_session: the session left the worker changed\n");
		abort();
	}
	harness_result_free(&res);
	return 0;
}
