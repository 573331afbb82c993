/*
 * Inbound PROXY headers (v1 and v2) as a balancer, or another worker passing on
 * an ATTACH, sends them, and what follows them.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"
#include "proto/proxy.h"

/* A located TLV value lies within the header. */
static void
check_value(const struct proxy_in *h, const struct proxy_in_value *v)
{
	if (v->present && (v->at > h->len || v->len > h->len - v->at))
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_in h;
	const char *why;
	size_t i;

	if (proxy_in_parse(data, size, &h, &why) == PROXY_IN_DONE) {
		if (h.len > size)
			__builtin_trap();
		check_value(&h, &h.identity);
		check_value(&h, &h.method);
		check_value(&h, &h.transport);
	}
	/* Arriving a byte at a time, the answer is the same as for the whole. */
	for (i = 0; i < size && i < PROXY_IN_MAX; i++) {
		enum proxy_in_status st = proxy_in_parse(data, i, &h, &why);
		if (st == PROXY_IN_DONE && h.len > i)
			__builtin_trap();
		if (st != PROXY_IN_MORE)
			break;
	}
	return 0;
}
