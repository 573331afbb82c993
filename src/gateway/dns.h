/*
 * The gateway's DNS responder: one query in, what to do with it out.
 * The wire format is ldns's (ldns_wire2pkt, ldns_pkt2wire): nothing here
 * reads DNS bytes by hand.  Pure: no I/O, no globals.
 *
 * A name the mapping handles (a rule names it, on some port) is answered,
 * authoritatively: A with an address of the pool, every other type with
 * no record.  A name under one of the zones that no rule handles:
 * NXDOMAIN.  Any other name: forwarded to the upstream when there is one,
 * else REFUSED.  A query that is not one question of class IN: FORMERR,
 * NOTIMP or REFUSED; an answer, or bytes ldns cannot read: nothing.
 */
#ifndef FIVE_GATEWAY_DNS_H
#define FIVE_GATEWAY_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/pool.h"
#include "shim/conf.h"

/* A query longer than this is not read (a UDP query without EDNS fits in 512 bytes). */
#define GW_DNS_QUERY_MAX 512
/* The answers the gateway makes itself fit in a UDP datagram without EDNS. */
#define GW_DNS_ANSWER_MAX 512
/* Zones whose unmapped names are NXDOMAIN. */
#define GW_ZONES_MAX 16
/* The TTL of answers, in seconds, when not configured; at most GW_TTL_MAX. */
#define GW_TTL_DEFAULT 60
#define GW_TTL_MAX     86400

struct gw_dns {
	const struct shim_conf *conf;
	struct gw_pool *pool;
	size_t zones;
	char zone[GW_ZONES_MAX][SHIM_NAME_MAX + 1]; /* normalized */
	unsigned ttl_s;
	bool forward; /* an upstream takes the names outside */
};

enum gw_dns_verdict {
	GW_DNS_DROP,    /* no answer */
	GW_DNS_ANSWER,  /* out[0..*out_len) is the answer */
	GW_DNS_FORWARD, /* the query goes to the upstream as it is */
};

/*
 * Decides query[0..len) at now_ms, leasing an address of d->pool for a
 * mapped name's A query; an answer (at most GW_DNS_ANSWER_MAX bytes,
 * out_size at least that) goes into out, its length into *out_len, and
 * the name asked for into name[0..SHIM_NAME_MAX] ("" when none) for the
 * caller's log.
 */
enum gw_dns_verdict gw_dns_query(struct gw_dns *d, const uint8_t *query, size_t len,
                                 uint64_t now_ms, uint8_t *out, size_t out_size, size_t *out_len,
                                 char name[SHIM_NAME_MAX + 1]);

/*
 * Whether answer[0..len), from the upstream, answers query[0..qlen): ldns
 * reads both; the answer has the query's id and question.
 */
bool gw_dns_answers(const uint8_t *query, size_t qlen, const uint8_t *answer, size_t len);

#endif
