#include "proto/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "common/addr.h"
#include "common/bytes.h"

static const uint8_t v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

#define V2_VERSION_PROXY 0x21
#define V2_FAM_UNSPEC    0x00
#define V2_FAM_TCP4      0x11
#define V2_FAM_TCP6      0x21

/* An endpoint reduced to raw address bytes; IPv4-mapped IPv6 becomes IPv4. */
struct endpoint {
	int family; /* AF_INET, AF_INET6, or 0 when unknown */
	uint8_t addr[16];
	uint16_t port;
};

static void
endpoint_of(const struct sockaddr *sa, struct endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		ep->family = AF_INET;
		memcpy(ep->addr, &sin->sin_addr, 4);
		ep->port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			ep->family = AF_INET;
			memcpy(ep->addr, &sin6->sin6_addr.s6_addr[12], 4);
		} else {
			ep->family = AF_INET6;
			memcpy(ep->addr, &sin6->sin6_addr, 16);
		}
		ep->port = ntohs(sin6->sin6_port);
	}
}

/* Both endpoints known and of one family: the header can carry them. */
static int
endpoints_usable(const struct endpoint *s, const struct endpoint *d)
{
	return s->family != 0 && s->family == d->family;
}

int
proxy_v1_encode(const struct sockaddr *src, const struct sockaddr *dst, char *out, size_t size)
{
	struct endpoint s, d;
	char sip[ADDR_IP_MAX], dip[ADDR_IP_MAX];
	int n;

	if (size < PROXY_V1_MAX)
		return -1;
	endpoint_of(src, &s);
	endpoint_of(dst, &d);
	if (!endpoints_usable(&s, &d))
		return snprintf(out, size, "PROXY UNKNOWN\r\n");
	inet_ntop(s.family, s.addr, sip, sizeof(sip));
	inet_ntop(d.family, d.addr, dip, sizeof(dip));
	n = snprintf(out, size, "PROXY %s %s %s %u %u\r\n", s.family == AF_INET ? "TCP4" : "TCP6",
	             sip, dip, s.port, d.port);
	return n < 0 || (size_t)n >= size ? -1 : n;
}

/* Appends the address block; returns its length. */
static size_t
put_addresses(uint8_t *p, const struct endpoint *s, const struct endpoint *d)
{
	size_t alen = s->family == AF_INET ? 4 : 16;

	memcpy(p, s->addr, alen);
	memcpy(p + alen, d->addr, alen);
	bytes_put16(p + 2 * alen, s->port);
	bytes_put16(p + 2 * alen + 2, d->port);
	return 2 * alen + 4;
}

int
proxy_v2_encode(const struct sockaddr *src, const struct sockaddr *dst,
                const struct proxy_tlv *tlvs, size_t ntlvs, uint8_t *out, size_t size)
{
	struct endpoint s, d;
	size_t pos = PROXY_V2_PREAMBLE;
	size_t i, need;

	endpoint_of(src, &s);
	endpoint_of(dst, &d);
	need = PROXY_V2_PREAMBLE;
	if (endpoints_usable(&s, &d))
		need += s.family == AF_INET ? 12 : 36;
	for (i = 0; i < ntlvs; i++) {
		if (tlvs[i].len > 0xffff)
			return -1;
		need += 3 + tlvs[i].len;
	}
	if (need > size || need - PROXY_V2_PREAMBLE > 0xffff)
		return -1;
	memcpy(out, v2_signature, sizeof(v2_signature));
	out[12] = V2_VERSION_PROXY;
	out[13] = V2_FAM_UNSPEC;
	if (endpoints_usable(&s, &d)) {
		out[13] = s.family == AF_INET ? V2_FAM_TCP4 : V2_FAM_TCP6;
		pos += put_addresses(out + pos, &s, &d);
	}
	for (i = 0; i < ntlvs; i++) {
		out[pos] = tlvs[i].type;
		bytes_put16(out + pos + 1, tlvs[i].len);
		if (tlvs[i].len > 0)
			memcpy(out + pos + 3, tlvs[i].value, tlvs[i].len);
		pos += 3 + tlvs[i].len;
	}
	bytes_put16(out + 14, pos - PROXY_V2_PREAMBLE);
	return (int)pos;
}
