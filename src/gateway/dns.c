#include "gateway/dns.h"

#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* Whether name is zone or a name under it. */
static bool
in_zone(const char *name, const char *zone)
{
	size_t n = strlen(name), z = strlen(zone);

	return n == z ? strcmp(name, zone) == 0
	              : n > z && name[n - z - 1] == '.' && strcmp(name + n - z, zone) == 0;
}

static bool
in_zones(const struct gw_dns *d, const char *name)
{
	size_t i;

	for (i = 0; i < d->zones; i++)
		if (in_zone(name, d->zone[i]))
			return true;
	return false;
}

/* The owner name of the question, normalized into name; -1: not a host name. */
static int
question_name(const ldns_rr *question, char name[SHIM_NAME_MAX + 1])
{
	char *text = ldns_rdf2str(ldns_rr_owner(question));
	int r = text != NULL ? shim_conf_normalize(text, name) : -1;

	free(text);
	return r;
}

/* A record of type A for the question's name, with address a[4]; NULL when out of memory. */
static ldns_rr *
a_record(const ldns_rr *question, const uint8_t a[4], unsigned ttl_s)
{
	ldns_rr *rr = ldns_rr_new();
	ldns_rdf *owner = ldns_rdf_clone(ldns_rr_owner(question));
	ldns_rdf *data = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4, a);

	if (rr == NULL || owner == NULL || data == NULL)
		goto fail;
	ldns_rr_set_owner(rr, owner);
	ldns_rr_set_type(rr, LDNS_RR_TYPE_A);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
	ldns_rr_set_ttl(rr, ttl_s);
	if (!ldns_rr_push_rdf(rr, data)) {
		ldns_rr_free(rr);
		ldns_rdf_deep_free(data);
		return NULL;
	}
	return rr;
fail:
	ldns_rr_free(rr);
	ldns_rdf_deep_free(owner);
	ldns_rdf_deep_free(data);
	return NULL;
}

/*
 * The answer to q with rcode, its question, and answer (taken over; NULL:
 * none) into out.  One too long for GW_DNS_ANSWER_MAX goes out without
 * its record, truncated (TC).  Returns GW_DNS_DROP when ldns cannot make it.
 */
static enum gw_dns_verdict
reply(const ldns_pkt *q, const ldns_rr *question, uint8_t rcode, bool authoritative,
      ldns_rr *answer, uint8_t *out, size_t out_size, size_t *out_len)
{
	enum gw_dns_verdict v = GW_DNS_DROP;
	ldns_pkt *r = ldns_pkt_new();
	ldns_rr *copy = question != NULL ? ldns_rr_clone(question) : NULL;
	uint8_t *wire = NULL;
	size_t size = 0;

	if (r == NULL || (question != NULL && copy == NULL))
		goto out;
	ldns_pkt_set_id(r, ldns_pkt_id(q));
	ldns_pkt_set_qr(r, true);
	ldns_pkt_set_opcode(r, ldns_pkt_get_opcode(q));
	ldns_pkt_set_rd(r, ldns_pkt_rd(q));
	ldns_pkt_set_aa(r, authoritative);
	ldns_pkt_set_rcode(r, rcode);
	if (copy != NULL) {
		ldns_rr_set_question(copy, true);
		ldns_pkt_push_rr(r, LDNS_SECTION_QUESTION, copy);
		copy = NULL;
	}
	if (answer != NULL) {
		ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, answer);
		answer = NULL;
	}
	if (ldns_pkt2wire(&wire, r, &size) != LDNS_STATUS_OK)
		goto out;
	if (size > GW_DNS_ANSWER_MAX || size > out_size) {
		ldns_pkt_free(r);
		r = NULL;
		free(wire);
		wire = NULL;
		/* The header alone says it: the client may ask again over another way. */
		if (out_size < LDNS_HEADER_SIZE)
			goto out;
		memset(out, 0, LDNS_HEADER_SIZE);
		out[0] = (uint8_t)(ldns_pkt_id(q) >> 8);
		out[1] = (uint8_t)ldns_pkt_id(q);
		out[2] = 0x80 | 0x02; /* QR, TC */
		*out_len = LDNS_HEADER_SIZE;
		v = GW_DNS_ANSWER;
		goto out;
	}
	memcpy(out, wire, size);
	*out_len = size;
	v = GW_DNS_ANSWER;
out:
	free(wire);
	ldns_rr_free(copy);
	ldns_rr_free(answer);
	ldns_pkt_free(r);
	return v;
}

/* A question the gateway handles: the name's address, or no record for another type. */
static enum gw_dns_verdict
mapped(struct gw_dns *d, const ldns_pkt *q, const ldns_rr *question, const char *name,
       uint64_t now_ms, uint8_t *out, size_t out_size, size_t *out_len)
{
	ldns_rr *answer = NULL;
	uint8_t a[4];

	if (ldns_rr_get_type(question) != LDNS_RR_TYPE_A)
		return reply(q, question, LDNS_RCODE_NOERROR, true, NULL, out, out_size, out_len);
	if (gw_pool_lease(d->pool, name, now_ms, a) != 0)
		return reply(q, question, LDNS_RCODE_SERVFAIL, false, NULL, out, out_size, out_len);
	if ((answer = a_record(question, a, d->ttl_s)) == NULL)
		return GW_DNS_DROP;
	return reply(q, question, LDNS_RCODE_NOERROR, true, answer, out, out_size, out_len);
}

enum gw_dns_verdict
gw_dns_query(struct gw_dns *d, const uint8_t *query, size_t len, uint64_t now_ms, uint8_t *out,
             size_t out_size, size_t *out_len, char name[SHIM_NAME_MAX + 1])
{
	enum gw_dns_verdict v = GW_DNS_DROP;
	ldns_pkt *q = NULL;
	const ldns_rr *question;

	name[0] = '\0';
	*out_len = 0;
	if (len > GW_DNS_QUERY_MAX || ldns_wire2pkt(&q, query, len) != LDNS_STATUS_OK)
		return GW_DNS_DROP;
	/* An answer is never answered: two responders would bounce it forever. */
	if (ldns_pkt_qr(q))
		goto out;
	if (ldns_pkt_get_opcode(q) != LDNS_PACKET_QUERY) {
		v = reply(q, NULL, LDNS_RCODE_NOTIMPL, false, NULL, out, out_size, out_len);
		goto out;
	}
	if (ldns_pkt_qdcount(q) != 1 || ldns_pkt_ancount(q) != 0 || ldns_pkt_nscount(q) != 0) {
		v = reply(q, NULL, LDNS_RCODE_FORMERR, false, NULL, out, out_size, out_len);
		goto out;
	}
	question = ldns_rr_list_rr(ldns_pkt_question(q), 0);
	if (ldns_rr_get_class(question) != LDNS_RR_CLASS_IN || question_name(question, name) != 0) {
		name[0] = '\0';
		v = d->forward ? GW_DNS_FORWARD
		               : reply(q, question, LDNS_RCODE_REFUSED, false, NULL, out, out_size,
		                       out_len);
		goto out;
	}
	if (shim_conf_handles(d->conf, name))
		v = mapped(d, q, question, name, now_ms, out, out_size, out_len);
	else if (in_zones(d, name))
		v = reply(q, question, LDNS_RCODE_NXDOMAIN, true, NULL, out, out_size, out_len);
	else if (d->forward)
		v = GW_DNS_FORWARD;
	else
		v = reply(q, question, LDNS_RCODE_REFUSED, false, NULL, out, out_size, out_len);
out:
	ldns_pkt_free(q);
	return v;
}

bool
gw_dns_answers(const uint8_t *query, size_t qlen, const uint8_t *answer, size_t len)
{
	ldns_pkt *q = NULL, *a = NULL;
	const ldns_rr *qq, *aq;
	bool ok = false;

	if (ldns_wire2pkt(&q, query, qlen) != LDNS_STATUS_OK ||
	    ldns_wire2pkt(&a, answer, len) != LDNS_STATUS_OK)
		goto out;
	if (!ldns_pkt_qr(a) || ldns_pkt_id(a) != ldns_pkt_id(q) || ldns_pkt_qdcount(a) != 1 ||
	    ldns_pkt_qdcount(q) != 1)
		goto out;
	qq = ldns_rr_list_rr(ldns_pkt_question(q), 0);
	aq = ldns_rr_list_rr(ldns_pkt_question(a), 0);
	ok = ldns_rr_get_type(aq) == ldns_rr_get_type(qq) &&
	     ldns_rr_get_class(aq) == ldns_rr_get_class(qq) &&
	     ldns_dname_compare(ldns_rr_owner(aq), ldns_rr_owner(qq)) == 0;
out:
	ldns_pkt_free(q);
	ldns_pkt_free(a);
	return ok;
}
