/*
 * The transition on the same port's first look at a connection: every
 * verdict stands once given (more bytes never change it, so that the
 * server may decide as soon as it can), a hand-over names a protocol, and
 * the ClientHello reader keeps a lowercase host name within its bound.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "legacy/legacy.h"

static const char names[][TLSHELLO_NAME_MAX + 1] = {"fived.example"};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct legacy_rules rules = {{true, true, true}, names, 1};
	enum legacy_proto p = LEGACY_PROTO_COUNT, q = LEGACY_PROTO_COUNT;
	enum legacy_verdict v = legacy_classify(&rules, data, size, &p), w;
	struct tls_hello hello;
	size_t i, n;

	if (v == LEGACY_HAND_OVER && (unsigned)p >= LEGACY_PROTO_COUNT)
		abort();
	if (v == LEGACY_NEED_MORE && size >= LEGACY_PEEK_MAX)
		abort();
	/* The first prefix with a verdict has the whole input's. */
	for (i = 1; i < size; i++) {
		if ((w = legacy_classify(&rules, data, i, &q)) == LEGACY_NEED_MORE)
			continue;
		if (w != v || (w == LEGACY_HAND_OVER && q != p))
			abort();
		break;
	}
	if (tlshello_peek(data, size, &hello) == TLSHELLO_OK) {
		n = strlen(hello.sni);
		if (n > TLSHELLO_NAME_MAX)
			abort();
		for (i = 0; i < n; i++)
			if (hello.sni[i] >= 'A' && hello.sni[i] <= 'Z')
				abort();
	}
	return 0;
}
