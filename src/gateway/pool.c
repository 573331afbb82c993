#include "gateway/pool.h"

#include <string.h>

#include "common/util.h"

int
gw_pool_init(struct gw_pool *p, const uint8_t net[4], unsigned bits, unsigned ttl_s)
{
	uint32_t base, hosts;

	memset(p, 0, sizeof(*p));
	if (bits < 8 || bits > 30)
		return -1;
	base = (uint32_t)net[0] << 24 | (uint32_t)net[1] << 16 | (uint32_t)net[2] << 8 | net[3];
	base &= ~0U << (32 - bits);
	hosts = (1U << (32 - bits)) - 2;
	p->first = base + 1;
	p->size = hosts < GW_POOL_MAX ? hosts : GW_POOL_MAX;
	p->lease_ms = (uint64_t)ttl_s * 1000 * GW_LEASE_TTLS;
	if (p->lease_ms < GW_LEASE_MIN_MS)
		p->lease_ms = GW_LEASE_MIN_MS;
	return 0;
}

static void
address(const struct gw_pool *p, size_t i, uint8_t a[4])
{
	uint32_t v = p->first + (uint32_t)i;

	a[0] = (uint8_t)(v >> 24);
	a[1] = (uint8_t)(v >> 16);
	a[2] = (uint8_t)(v >> 8);
	a[3] = (uint8_t)v;
}

int
gw_pool_lease(struct gw_pool *p, const char *name, uint64_t now_ms, uint8_t a[4])
{
	size_t i, pick = p->size;

	for (i = 0; i < p->size; i++) {
		const struct gw_lease *l = &p->lease[i];

		if (strcmp(l->name, name) == 0 && l->expires_ms > now_ms) {
			pick = i;
			break;
		}
		if (l->expires_ms <= now_ms &&
		    (pick == p->size || l->expires_ms < p->lease[pick].expires_ms))
			pick = i;
	}
	if (pick == p->size)
		return -1;
	str_copy(p->lease[pick].name, name, sizeof(p->lease[pick].name));
	p->lease[pick].expires_ms = now_ms + p->lease_ms;
	address(p, pick, a);
	return 0;
}

bool
gw_pool_name(const struct gw_pool *p, const uint8_t a[4], uint64_t now_ms,
             char name[SHIM_NAME_MAX + 1])
{
	uint32_t v = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
	const struct gw_lease *l;

	if (v < p->first || v - p->first >= p->size)
		return false;
	l = &p->lease[v - p->first];
	if (l->name[0] == '\0' || l->expires_ms <= now_ms)
		return false;
	str_copy(name, l->name, SHIM_NAME_MAX + 1);
	return true;
}
