/* five agent's request lines (src/client/cli/agentline.c), as the agent parses them. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "client/cli/agentline.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct agent_request r;
	char line[AGENT_LINE_MAX + 1];
	const char *why;

	if (size > AGENT_LINE_MAX)
		size = AGENT_LINE_MAX;
	memcpy(line, data, size);
	line[size] = '\0';
	agent_line_parse(line, &r, &why);
	return 0;
}
