/*
 * The admin socket's messages as both sides read them.  A request fived
 * accepts must encode again byte for byte; a reply fivectl accepts must
 * encode again to a reply that decodes to the same thing.  (An object
 * written compact can be longer than it came, "1e9" as "1000000000.0":
 * one that no longer fits the bound is not a fault.)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/admin.h"

static void
check_request(const char *msg, size_t len)
{
	static struct admin_request r;
	static char out[ADMIN_REQUEST_MAX + 1];
	size_t n;

	if (admin_request_decode(msg, len, &r) != 0)
		return;
	if (admin_request_encode(&r, out, sizeof(out), &n) != 0 || n != len ||
	    memcmp(out, msg, len) != 0)
		abort();
}

static void
check_reply(const char *msg, size_t len)
{
	static char out[ADMIN_REPLY_MAX + 1];
	char reason[ADMIN_REASON_MAX + 1], again_reason[ADMIN_REASON_MAX + 1];
	json_t *body, *again;
	bool ok, again_ok;
	size_t n;
	int r;

	if (admin_reply_decode(msg, len, &ok, &body, reason) != 0)
		return;
	r = ok ? admin_reply_ok(body, out, sizeof(out), &n)
	       : admin_reply_refuse(reason, out, sizeof(out), &n);
	if (ok && r != 0) {
		json_decref(body);
		return;
	}
	if (r != 0 || admin_reply_decode(out, n, &again_ok, &again, again_reason) != 0 ||
	    again_ok != ok || strcmp(reason, again_reason) != 0 || (ok && !json_equal(body, again)))
		abort();
	json_decref(body);
	json_decref(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;

	check_request(msg, size);
	check_reply(msg, size);
	return 0;
}
