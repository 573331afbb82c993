/* The monitor's request parser: the worker is not trusted once compromised. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "proto/privmsg.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct priv_request req;
	struct priv_reply reply;
	uint32_t type, len;

	if (size < PRIVMSG_HEADER)
		return 0;
	if (privmsg_header_decode(data, &type, &len, PRIVMSG_REQUEST_MAX) == 0 &&
	    len <= size - PRIVMSG_HEADER)
		privmsg_request_decode(type, data + PRIVMSG_HEADER, len, &req);
	privmsg_reply_decode(data + PRIVMSG_HEADER, size - PRIVMSG_HEADER, &reply);
	return 0;
}
