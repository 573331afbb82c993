/* The text dialect: request lines as a server reads them, replies as a client reads them. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "proto/line.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[LINE_MAX_BYTES];
	struct cmd c;
	const char *why, *text;
	size_t used;
	int ok;

	while (line_take(data, size, line, &used) == LINE_OK) {
		cmd_parse(line, &c, &why);
		reply_parse(line, &ok, &text);
		name_valid(line);
		vhost_name_valid(line);
		data += used;
		size -= used;
	}
	return 0;
}
