/* The revocation file's lines, as the privileged side reads them back at start. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz.h"
#include "server/conf/revocations.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct revocations r;
	char err[128], *text;
	size_t len;

	revocations_init(&r);
	if (revocations_parse(&r, (const char *)data, size, 1000, err, sizeof(err)) == 0 &&
	    revocations_format(&r, &text, &len) == 0)
		free(text);
	revocations_free(&r);
	return 0;
}
