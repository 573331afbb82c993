/*
 * The gateway's address pool: a name its DNS responder answers for is
 * leased an IPv4 address of the pool, and a connection to that address
 * finds the name again.  A lease lasts GW_LEASE_MIN_MS at least, and
 * GW_LEASE_TTLS answers' TTLs, after the last answer that gave it out;
 * only then is its address given to another name, the longest expired
 * first.  Pure: no I/O, no clock of its own (the caller passes now).
 */
#ifndef FIVE_GATEWAY_POOL_H
#define FIVE_GATEWAY_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shim/conf.h"

/* Addresses a pool hands out at most, whatever the size of its prefix. */
#define GW_POOL_MAX 4096
/* A lease outlives the answer that gave it out by this many TTLs, and this long at least. */
#define GW_LEASE_TTLS   10
#define GW_LEASE_MIN_MS (3600 * 1000ULL)

struct gw_lease {
	char name[SHIM_NAME_MAX + 1]; /* "": never leased */
	uint64_t expires_ms;
};

struct gw_pool {
	uint32_t first; /* the first address handed out, host order */
	size_t size;    /* addresses in the pool, at most GW_POOL_MAX */
	uint64_t lease_ms;
	struct gw_lease lease[GW_POOL_MAX];
};

/*
 * Sets p up for the IPv4 prefix net[4]/bits (network order), whose
 * network and broadcast addresses are never handed out, and answers with
 * TTL ttl_s.  Returns 0, or -1 when the prefix is not 8 to 30 bits long.
 */
int gw_pool_init(struct gw_pool *p, const uint8_t net[4], unsigned bits, unsigned ttl_s);

/*
 * The address leased to name (normalized) into a[4], network order: the
 * one it holds, or a free or expired one; either way the lease runs again
 * from now_ms.  Returns 0, or -1 when every address is leased.
 */
int gw_pool_lease(struct gw_pool *p, const char *name, uint64_t now_ms, uint8_t a[4]);

/*
 * The name a[4] (network order) is leased to, unexpired at now_ms, into
 * name[0..SHIM_NAME_MAX].  Returns false when it is not (any more).
 */
bool gw_pool_name(const struct gw_pool *p, const uint8_t a[4], uint64_t now_ms,
                  char name[SHIM_NAME_MAX + 1]);

#endif
