/*
 * The control socket's messages as both sides read them.  Whatever a decoder
 * accepts must encode again and decode to the same thing: the replies byte
 * for byte, REGISTER and STREAM member for member (REGISTER's words fived
 * does not know are dropped).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/control.h"

static void
check_register(const char *msg, size_t len)
{
	char service[NAME_MAX_LEN + 1], again[NAME_MAX_LEN + 1];
	char out[CONTROL_MESSAGE_MAX + 1];
	unsigned wants, wants_again;
	size_t n;

	if (control_register_decode(msg, len, service, &wants) != 0)
		return;
	if (control_register_encode(service, wants, out, sizeof(out), &n) != 0 || n > len ||
	    control_register_decode(out, n, again, &wants_again) != 0 ||
	    strcmp(service, again) != 0 || wants != wants_again)
		abort();
}

static void
check_reply(const char *msg, size_t len)
{
	char text[CONTROL_MESSAGE_MAX], out[CONTROL_MESSAGE_MAX + 1];
	size_t n;
	bool ok;

	if (control_reply_decode(msg, len, &ok, text, sizeof(text)) != 0)
		return;
	if (control_reply_encode(ok, text, out, sizeof(out), &n) != 0 || n != len ||
	    memcmp(out, msg, len) != 0)
		abort();
}

static bool
same_stream(const struct control_stream *a, const struct control_stream *b)
{
	return strcmp(a->session, b->session) == 0 && strcmp(a->service, b->service) == 0 &&
	       strcmp(a->vhost, b->vhost) == 0 && strcmp(a->identity, b->identity) == 0 &&
	       a->has_identity == b->has_identity && strcmp(a->auth_method, b->auth_method) == 0 &&
	       a->withheld == b->withheld && strcmp(a->remote_addr, b->remote_addr) == 0 &&
	       a->remote_port == b->remote_port && strcmp(a->transport, b->transport) == 0;
}

static void
check_stream(const char *msg, size_t len)
{
	struct control_stream s, again;
	char out[CONTROL_MESSAGE_MAX + 1];
	size_t n;

	if (control_stream_decode(msg, len, &s) != 0)
		return;
	if (control_stream_encode(&s, out, sizeof(out), &n) != 0 ||
	    control_stream_decode(out, n, &again) != 0 || !same_stream(&s, &again))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;

	check_register(msg, size);
	check_reply(msg, size);
	check_stream(msg, size);
	return 0;
}
