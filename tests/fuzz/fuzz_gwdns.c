/*
 * five gateway's DNS responder (src/gateway/dns.c): a query from anyone
 * on the gateway's network, answered from a mapping and a small pool;
 * and the same bytes as an upstream's answer to a fixed query.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "gateway/dns.h"

static const char mapping[] = "wiki.corp:80 = fived.example http\n"
                              "*.five = fived.example ssh\n"
                              "db.corp:5432 = fived.example research-db\n";

/* A query for wiki.corp, type A, id 0x1234. */
static const uint8_t query[] = {0x12, 0x34, 0x01, 0x00, 0,   1,   0,   0,   0, 0, 0, 0, 4, 'w',
                                'i',  'k',  'i',  4,    'c', 'o', 'r', 'p', 0, 0, 1, 0, 1};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct shim_conf c;
	static struct gw_pool pool;
	static struct gw_dns d;
	static uint64_t now_ms;
	uint8_t out[GW_DNS_ANSWER_MAX], net[4] = {100, 95, 0, 0};
	char why[256], name[SHIM_NAME_MAX + 1];
	size_t len;

	if (c.n == 0) {
		shim_conf_init(&c);
		if (shim_conf_parse(&c, 0, mapping, sizeof(mapping) - 1, why, sizeof(why)) != 0)
			return 0;
		/* A pool of 2 addresses: leases run out, and expire, within a run. */
		gw_pool_init(&pool, net, 30, 1);
		d.conf = &c;
		d.pool = &pool;
		d.zones = 1;
		strcpy(d.zone[0], "corp");
		d.ttl_s = GW_TTL_DEFAULT;
	}
	now_ms += 600 * 1000;
	d.forward = size > 0 && data[0] & 1;
	if (gw_dns_query(&d, data, size, now_ms, out, sizeof(out), &len, name) == GW_DNS_ANSWER &&
	    (len == 0 || len > sizeof(out)))
		__builtin_trap();
	gw_dns_answers(query, sizeof(query), data, size);
	return 0;
}
