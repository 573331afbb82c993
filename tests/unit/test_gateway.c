/* five gateway's pure parts: the address pool and the DNS responder (queries made by ldns). */
#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "gateway/dns.h"
#include "gateway/pool.h"

#define HOUR_MS (3600 * 1000ULL)

static struct shim_conf conf;
static struct gw_pool pool;

static void
test_pool(void **state)
{
	uint8_t net[4] = {100, 95, 7, 9}, a[4], b[4], c[4];
	char name[SHIM_NAME_MAX + 1];

	assert_int_equal(gw_pool_init(&pool, net, 31, 60), -1);
	assert_int_equal(gw_pool_init(&pool, net, 7, 60), -1);
	/* A /30: two addresses, .1 and .2 of the network; a lease lasts an hour at least. */
	assert_int_equal(gw_pool_init(&pool, net, 30, 60), 0);
	assert_int_equal(gw_pool_lease(&pool, "a.corp", 0, a), 0);
	assert_memory_equal(a, ((uint8_t[]){100, 95, 7, 9}), 4);
	assert_int_equal(gw_pool_lease(&pool, "b.corp", 10, b), 0);
	assert_memory_equal(b, ((uint8_t[]){100, 95, 7, 10}), 4);
	assert_int_equal(gw_pool_lease(&pool, "a.corp", 20, c), 0);
	assert_memory_equal(a, c, 4);
	assert_int_equal(gw_pool_lease(&pool, "c.corp", 30, c), -1);
	assert_true(gw_pool_name(&pool, b, HOUR_MS, name));
	assert_string_equal(name, "b.corp");
	assert_false(gw_pool_name(&pool, ((uint8_t[]){100, 95, 7, 11}), 0, name));
	assert_false(gw_pool_name(&pool, ((uint8_t[]){100, 95, 7, 8}), 0, name));
	/* Expired, an address goes to the next name asking, the longest expired first. */
	assert_false(gw_pool_name(&pool, b, HOUR_MS + 10, name));
	assert_int_equal(gw_pool_lease(&pool, "c.corp", HOUR_MS + 30, c), 0);
	assert_memory_equal(c, b, 4);
	assert_false(gw_pool_name(&pool, a, HOUR_MS + 30, name));
	/* A long TTL makes leases longer than an hour: GW_LEASE_TTLS of them. */
	assert_int_equal(gw_pool_init(&pool, net, 16, 3600), 0);
	assert_int_equal(pool.size, GW_POOL_MAX);
	assert_int_equal(gw_pool_lease(&pool, "a.corp", 0, a), 0);
	assert_true(gw_pool_name(&pool, a, 9 * HOUR_MS, name));
	assert_false(gw_pool_name(&pool, a, 10 * HOUR_MS, name));
}

static struct gw_dns dns;

static void
dns_setup(bool forward)
{
	static const char text[] =
	        "wiki.corp:80 = fived.example http\n*.five = fived.example ssh\n";
	uint8_t net[4] = {100, 95, 0, 0};
	char why[256];

	shim_conf_init(&conf);
	assert_int_equal(shim_conf_parse(&conf, 0, text, strlen(text), why, sizeof(why)), 0);
	assert_int_equal(gw_pool_init(&pool, net, 30, 60), 0);
	memset(&dns, 0, sizeof(dns));
	dns.conf = &conf;
	dns.pool = &pool;
	dns.zones = 1;
	strcpy(dns.zone[0], "corp");
	dns.ttl_s = 60;
	dns.forward = forward;
}

/* A query for name, type and class as ldns makes it, into wire; its length. */
static size_t
make_query(const char *name, ldns_rr_type type, ldns_rr_class class, uint16_t flags, uint8_t **wire)
{
	ldns_rdf *owner = ldns_dname_new_frm_str(name);
	ldns_pkt *q = ldns_pkt_query_new(owner, type, class, flags);
	size_t len;

	assert_non_null(q);
	ldns_pkt_set_id(q, 0x4242);
	assert_int_equal(ldns_pkt2wire(wire, q, &len), LDNS_STATUS_OK);
	ldns_pkt_free(q);
	return len;
}

/* What the responder does with a query; an answer parsed into *answer (NULL: none). */
static enum gw_dns_verdict
ask(const char *name, ldns_rr_type type, ldns_rr_class class, uint16_t flags, ldns_pkt **answer)
{
	uint8_t *wire, out[GW_DNS_ANSWER_MAX];
	char asked[SHIM_NAME_MAX + 1];
	size_t len = make_query(name, type, class, flags, &wire), out_len;
	enum gw_dns_verdict v = gw_dns_query(&dns, wire, len, 0, out, sizeof(out), &out_len, asked);

	*answer = NULL;
	if (v == GW_DNS_ANSWER) {
		assert_int_equal(ldns_wire2pkt(answer, out, out_len), LDNS_STATUS_OK);
		assert_int_equal(ldns_pkt_id(*answer), 0x4242);
		assert_true(ldns_pkt_qr(*answer));
	}
	free(wire);
	return v;
}

static void
test_answers(void **state)
{
	char name[SHIM_NAME_MAX + 1];
	ldns_pkt *a;
	ldns_rr *rr;

	dns_setup(false);
	assert_int_equal(ask("Wiki.Corp.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD, &a),
	                 GW_DNS_ANSWER);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_NOERROR);
	assert_true(ldns_pkt_aa(a));
	assert_int_equal(ldns_pkt_ancount(a), 1);
	rr = ldns_rr_list_rr(ldns_pkt_answer(a), 0);
	assert_int_equal(ldns_rr_get_type(rr), LDNS_RR_TYPE_A);
	assert_int_equal(ldns_rr_ttl(rr), 60);
	assert_true(gw_pool_name(&pool, ldns_rdf_data(ldns_rr_rdf(rr, 0)), 0, name));
	assert_string_equal(name, "wiki.corp");
	ldns_pkt_free(a);
	/* A mapped name has no record of another type. */
	assert_int_equal(ask("box.five.", LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_IN, LDNS_RD, &a),
	                 GW_DNS_ANSWER);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(a), 0);
	ldns_pkt_free(a);
	assert_int_equal(ask("nosuch.corp.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD, &a),
	                 GW_DNS_ANSWER);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_NXDOMAIN);
	ldns_pkt_free(a);
	assert_int_equal(ask("example.org.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD, &a),
	                 GW_DNS_ANSWER);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_REFUSED);
	ldns_pkt_free(a);
	assert_int_equal(ask("wiki.corp.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_CH, LDNS_RD, &a),
	                 GW_DNS_ANSWER);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_REFUSED);
	ldns_pkt_free(a);
	/* An answer is never answered. */
	assert_int_equal(ask("wiki.corp.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_QR, &a),
	                 GW_DNS_DROP);
	/* The pool's two addresses taken: SERVFAIL for a third name. */
	assert_int_equal(ask("a.five.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 0, &a), GW_DNS_ANSWER);
	ldns_pkt_free(a);
	assert_int_equal(ask("b.five.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 0, &a), GW_DNS_ANSWER);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_SERVFAIL);
	ldns_pkt_free(a);

	dns_setup(true);
	assert_int_equal(ask("example.org.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD, &a),
	                 GW_DNS_FORWARD);
	assert_int_equal(ask("nosuch.corp.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD, &a),
	                 GW_DNS_ANSWER);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_NXDOMAIN);
	ldns_pkt_free(a);
}

static void
test_malformed(void **state)
{
	uint8_t *wire, out[GW_DNS_ANSWER_MAX], big[GW_DNS_QUERY_MAX + 1] = {0};
	char name[SHIM_NAME_MAX + 1];
	size_t len, out_len, i;
	ldns_pkt *a;

	dns_setup(false);
	len = make_query("wiki.corp.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 0, &wire);
	/* Every truncation is dropped: ldns reads none of them. */
	for (i = 0; i < len; i++)
		assert_int_equal(gw_dns_query(&dns, wire, i, 0, out, sizeof(out), &out_len, name),
		                 GW_DNS_DROP);
	/* Another opcode: NOTIMP. */
	wire[2] = 0x20;
	assert_int_equal(gw_dns_query(&dns, wire, len, 0, out, sizeof(out), &out_len, name),
	                 GW_DNS_ANSWER);
	assert_int_equal(ldns_wire2pkt(&a, out, out_len), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_get_rcode(a), LDNS_RCODE_NOTIMPL);
	ldns_pkt_free(a);
	free(wire);
	assert_int_equal(gw_dns_query(&dns, big, sizeof(big), 0, out, sizeof(out), &out_len, name),
	                 GW_DNS_DROP);
}

static void
test_upstream_answers(void **state)
{
	uint8_t *query, *other;
	size_t qlen = make_query("example.org.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD, &query);
	size_t olen = make_query("example.net.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD, &other);
	uint8_t answer[GW_DNS_QUERY_MAX];

	memcpy(answer, query, qlen);
	assert_false(gw_dns_answers(query, qlen, answer, qlen));
	answer[2] |= 0x80;
	assert_true(gw_dns_answers(query, qlen, answer, qlen));
	answer[1] ^= 1;
	assert_false(gw_dns_answers(query, qlen, answer, qlen));
	other[2] |= 0x80;
	assert_false(gw_dns_answers(query, qlen, other, olen));
	assert_false(gw_dns_answers(query, qlen, answer, 5));
	free(query);
	free(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pool),
	        cmocka_unit_test(test_answers),
	        cmocka_unit_test(test_malformed),
	        cmocka_unit_test(test_upstream_answers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
