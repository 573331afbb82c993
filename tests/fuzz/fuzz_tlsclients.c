/*
 * tls_clients files: parsed both with and without subject lines allowed.
 * A file accepted without subjects is accepted with them, to the same
 * table; every entry accepted is found again by its own key; a refused
 * file leaves nothing behind.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/tlsclients.h"

#define ERR_MAX 256

static void
check(const struct tls_clients *c)
{
	char text[TLSCLIENTS_FP_TEXT_MAX];
	size_t i;

	for (i = 0; i < c->nfps; i++) {
		if (tlsclients_by_fingerprint(c, c->fps[i].fp) != c->fps[i].identity)
			abort();
		tlsclients_fp_text(c->fps[i].fp, text);
		if (strlen(text) != TLSCLIENTS_FP_TEXT_MAX - 1)
			abort();
	}
	for (i = 0; i < c->nsubjects; i++)
		if (tlsclients_by_subject(c, c->subjects[i].subject) != c->subjects[i].identity)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_clients strict, loose;
	char err[ERR_MAX];
	int r1, r2;

	r1 = tlsclients_parse("f", (const char *)data, size, false, &strict, err, sizeof(err));
	r2 = tlsclients_parse("f", (const char *)data, size, true, &loose, err, sizeof(err));
	if ((r1 != 0 && (strict.fps != NULL || strict.subjects != NULL)) ||
	    (r2 != 0 && (loose.fps != NULL || loose.subjects != NULL)))
		abort();
	if (r1 == 0 && (r2 != 0 || strict.nsubjects != 0 || loose.nfps != strict.nfps))
		abort();
	if (r1 == 0)
		check(&strict);
	if (r2 == 0)
		check(&loose);
	tlsclients_free(&strict);
	tlsclients_free(&loose);
	return 0;
}
