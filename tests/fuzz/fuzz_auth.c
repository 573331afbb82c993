/* The AUTH exchange: method lists and client lines as fived reads them; PAM conversation lines. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "proto/auth.h"
#include "proto/line.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum auth_method methods[AUTH_METHODS_MAX];
	char line[LINE_MAX_BYTES];
	struct auth_line al;
	struct pamconv_msg pm;
	char out[PAMCONV_LINE_MAX];
	const char *why;
	size_t used, n;

	while (line_take(data, size, line, &used) == LINE_OK) {
		auth_line_parse(line, &al, &why);
		auth_methods_parse(line, methods, AUTH_METHODS_MAX, &n);
		if (pamconv_parse(line, strlen(line), &pm) == 0)
			pamconv_encode(&pm, out, sizeof(out));
		data += used;
		size -= used;
	}
	pamconv_parse((const char *)data, size, &pm);
	return 0;
}
