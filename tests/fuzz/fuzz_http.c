/*
 * The metrics endpoint's request parser.  A GET's path starts with "/",
 * fits its bound and holds no space or control byte; any other verdict
 * leaves the path empty; and a request read whole is judged the same
 * once more bytes follow it (the endpoint stops at the first verdict).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/http.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[HTTP_PATH_MAX + 1], again[HTTP_PATH_MAX + 1];
	const char *req = (const char *)data;
	enum http_request r = http_request_parse(req, size, path);
	size_t i, n = strlen(path);

	if (r != HTTP_GET && n != 0)
		abort();
	if (r == HTTP_GET && (n == 0 || n > HTTP_PATH_MAX || path[0] != '/'))
		abort();
	for (i = 0; i < n; i++)
		if ((unsigned char)path[i] <= 0x20 || (unsigned char)path[i] >= 0x7f)
			abort();
	/* Every shorter prefix that already had a verdict has this one. */
	for (i = 1; i < size && r != HTTP_INCOMPLETE; i++)
		if (http_request_parse(req, i, again) != HTTP_INCOMPLETE)
			break;
	if (i < size && r != HTTP_INCOMPLETE && r != HTTP_TOO_LARGE &&
	    (http_request_parse(req, i, again) != r || strcmp(again, path) != 0))
		abort();
	return 0;
}
