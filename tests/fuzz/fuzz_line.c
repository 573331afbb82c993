/* The text dialect: request lines as a server reads them (ATTACH's arguments too), replies
 * as a client reads them (ATTACHED's too). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "proto/line.h"
#include "proto/resume.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[LINE_MAX_BYTES];
	struct cmd c;
	const char *why, *text;
	size_t used;
	uint8_t ticket[MUX_TICKET_LEN];
	uint64_t received;
	uint32_t timeout_s;
	int ok;

	while (line_take(data, size, line, &used) == LINE_OK) {
		if (cmd_parse(line, &c, &why) == 0 && c.kind == CMD_ATTACH)
			resume_attach_parse(c.args[0], c.args[1], ticket, &received);
		if (reply_parse(line, &ok, &text) == 0)
			resume_attached_parse(text, &received, &timeout_s, ticket);
		name_valid(line);
		vhost_name_valid(line);
		data += used;
		size -= used;
	}
	return 0;
}
