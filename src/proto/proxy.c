#include "proto/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "common/addr.h"
#include "common/bytes.h"

static const uint8_t v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

#define V2_VERSION_PROXY   0x21
#define V2_FAM_UNSPEC      0x00
#define V2_FAM_TCP4        0x11
#define V2_FAM_TCP6        0x21
#define V2_FAM_UDP4        0x12
#define V2_FAM_UDP6        0x22
#define V2_FAM_UNIX_STREAM 0x31
#define V2_FAM_UNIX_DGRAM  0x32

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

/* An IPv4 endpoint as its IPv4-mapped IPv6 address. */
static void
widen(struct endpoint *ep)
{
	uint8_t v4[4];

	memcpy(v4, ep->addr, sizeof(v4));
	memset(ep->addr, 0, 10);
	memset(ep->addr + 10, 0xff, 2);
	memcpy(ep->addr + 12, v4, sizeof(v4));
	ep->family = AF_INET6;
}

/*
 * Both endpoints, of one family: an IPv4 one beside an IPv6 one (a client
 * a balancer named by its IPv4-mapped address, fived reached over IPv6)
 * goes as its IPv4-mapped address, so that the header still names the
 * client.  Returns whether both are known, so the header can carry them.
 */
static int
endpoints_of(const struct sockaddr *src, const struct sockaddr *dst, struct endpoint *s,
             struct endpoint *d)
{
	endpoint_of(src, s);
	endpoint_of(dst, d);
	if (s->family == 0 || d->family == 0)
		return 0;
	if (s->family == AF_INET && d->family == AF_INET6)
		widen(s);
	else if (s->family == AF_INET6 && d->family == AF_INET)
		widen(d);
	return 1;
}

int
proxy_v1_encode(const struct sockaddr *src, const struct sockaddr *dst, char *out, size_t size)
{
	struct endpoint s, d;
	char sip[ADDR_IP_MAX], dip[ADDR_IP_MAX];
	int n;

	if (size < PROXY_V1_MAX)
		return -1;
	if (!endpoints_of(src, dst, &s, &d))
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
	int known = endpoints_of(src, dst, &s, &d);

	need = PROXY_V2_PREAMBLE;
	if (known)
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
	if (known) {
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

/* --- inbound ------------------------------------------------------------------ */

static const char v1_prefix[] = "PROXY ";

#define V1_PREFIX_LEN   (sizeof(v1_prefix) - 1)
#define V1_FIELDS       5 /* TCP4 SRC DST SPORT DPORT */
#define V1_FIELD_MAX    46
#define V1_LINE_MAX     107 /* CRLF included: no CRLF within it, and the line is invalid */
#define V2_VERSION      0x2
#define V2_CMD_LOCAL    0x0
#define V2_CMD_PROXY    0x1
#define V2_TCP4_LEN     12
#define V2_TCP6_LEN     36
#define V2_UNIX_LEN     216 /* two 108-byte paths */
#define V2_ADDR_UNKNOWN SIZE_MAX
#define V2_TLV_HEAD_LEN 3
#define PP2_TYPE_CRC32C 0x03
#define PP2_CRC32C_LEN  4
#define CRC32C_POLY     0x82f63b78u /* Castagnoli, reflected (RFC 4960, appendix B) */

_Static_assert(PROXY_IN_MAX >= PROXY_V1_MAX, "a v1 line must fit");

static enum proxy_in_status
bad(const char **why, const char *reason)
{
	*why = reason;
	return PROXY_IN_BAD;
}

/* v1 */

/* A port as v1 writes it: decimal, 0 to 65535, no leading zero. */
static int
v1_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t i, n = strlen(s);

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 0xffff)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

static int
v1_endpoint(int family, const char *ip, const char *port, struct sockaddr_storage *ss)
{
	uint16_t p;

	memset(ss, 0, sizeof(*ss));
	if (v1_port(port, &p) != 0)
		return -1;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(p);
		return inet_pton(AF_INET, ip, &sin->sin_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(p);
	return inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1 ? 0 : -1;
}

/* Splits "A B C D E" on single spaces into exactly V1_FIELDS fields of at most V1_FIELD_MAX. */
static int
v1_split(const char *text, size_t len, char fields[V1_FIELDS][V1_FIELD_MAX + 1])
{
	size_t f = 0, n = 0, i;

	for (i = 0; i < len; i++) {
		if (text[i] == ' ') {
			if (n == 0 || ++f == V1_FIELDS)
				return -1;
			n = 0;
			continue;
		}
		if (n == V1_FIELD_MAX)
			return -1;
		fields[f][n++] = text[i];
		fields[f][n] = '\0';
	}
	return f == V1_FIELDS - 1 && n > 0 ? 0 : -1;
}

static enum proxy_in_status
v1_parse(const uint8_t *in, size_t len, struct proxy_in *out, const char **why)
{
	char fields[V1_FIELDS][V1_FIELD_MAX + 1];
	const char *text = (const char *)in + V1_PREFIX_LEN;
	size_t i, end = 0, n;
	int family;

	for (i = 0; i < len && i < V1_LINE_MAX; i++) {
		if (i < V1_PREFIX_LEN && in[i] != (uint8_t)v1_prefix[i])
			return bad(why, "not a PROXY header");
		if (in[i] == '\n') {
			if (i == 0 || in[i - 1] != '\r')
				return bad(why, "PROXY v1: a line feed without a carriage return");
			end = i + 1;
			break;
		}
		if (in[i] != '\r' && (in[i] < 0x20 || in[i] > 0x7e))
			return bad(why, "PROXY v1: not printable text");
		if (i > 0 && in[i - 1] == '\r')
			return bad(why, "PROXY v1: a carriage return within the line");
	}
	if (end == 0)
		return i == V1_LINE_MAX ? bad(why, "PROXY v1: line too long") : PROXY_IN_MORE;
	n = end - 2 - V1_PREFIX_LEN;
	out->len = end;
	if (n >= 7 && memcmp(text, "UNKNOWN", 7) == 0 && (n == 7 || text[7] == ' ')) {
		out->has_addresses = false;
		return PROXY_IN_DONE;
	}
	if (v1_split(text, n, fields) != 0)
		return bad(why, "PROXY v1: expected TCP4|TCP6 SRC DST SPORT DPORT");
	if (strcmp(fields[0], "TCP4") == 0)
		family = AF_INET;
	else if (strcmp(fields[0], "TCP6") == 0)
		family = AF_INET6;
	else
		return bad(why, "PROXY v1: expected TCP4, TCP6 or UNKNOWN");
	if (v1_endpoint(family, fields[1], fields[3], &out->src) != 0 ||
	    v1_endpoint(family, fields[2], fields[4], &out->dst) != 0)
		return bad(why, "PROXY v1: bad address or port");
	out->has_addresses = true;
	return PROXY_IN_DONE;
}

/* v2 */

static void
v2_endpoints(const uint8_t *a, int family, struct proxy_in *out)
{
	size_t alen = family == AF_INET ? 4 : 16;
	uint16_t sport = bytes_get16(a + 2 * alen), dport = bytes_get16(a + 2 * alen + 2);

	memset(&out->src, 0, sizeof(out->src));
	memset(&out->dst, 0, sizeof(out->dst));
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
		struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;
		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, a, alen);
		memcpy(&d->sin_addr, a + alen, alen);
		s->sin_port = htons(sport);
		d->sin_port = htons(dport);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;
		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, a, alen);
		memcpy(&d->sin6_addr, a + alen, alen);
		s->sin6_port = htons(sport);
		d->sin6_port = htons(dport);
	}
	out->has_addresses = true;
}

/* CRC32C over n bytes, continuing crc (start with 0). */
static uint32_t
crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
	size_t i;
	int bit;

	crc = ~crc;
	for (i = 0; i < n; i++) {
		crc ^= p[i];
		for (bit = 0; bit < 8; bit++)
			crc = (crc >> 1) ^ (CRC32C_POLY & (0u - (crc & 1u)));
	}
	return ~crc;
}

/* The place of fived's TLV of that type in out, or NULL for any other type. */
static struct proxy_in_value *
five_value(struct proxy_in *out, uint8_t type)
{
	switch (type) {
	case PP2_TYPE_FIVE_IDENTITY:
		return &out->identity;
	case PP2_TYPE_FIVE_AUTH_METHOD:
		return &out->method;
	case PP2_TYPE_FIVE_TRANSPORT:
		return &out->transport;
	default:
		return NULL;
	}
}

/*
 * The TLVs after the addresses (at in the header): each whole within the
 * header.  Their values are not read, but for a checksum (PP2_TYPE_CRC32C),
 * whose offset in the header goes to *crc_at (0 without one); where
 * fived's own lie is noted in out, each at most once.
 */
static int
v2_tlvs_whole(const uint8_t *p, size_t len, size_t at, size_t *crc_at, struct proxy_in *out)
{
	struct proxy_in_value *v;
	size_t pos = 0, vlen;

	*crc_at = 0;
	while (pos < len) {
		if (len - pos < V2_TLV_HEAD_LEN)
			return -1;
		vlen = bytes_get16(p + pos + 1);
		if (len - pos - V2_TLV_HEAD_LEN < vlen)
			return -1;
		if (p[pos] == PP2_TYPE_CRC32C) {
			if (vlen != PP2_CRC32C_LEN || *crc_at != 0)
				return -1;
			*crc_at = at + pos + V2_TLV_HEAD_LEN;
		}
		if ((v = five_value(out, p[pos])) != NULL) {
			if (v->present)
				return -1;
			*v = (struct proxy_in_value){true, at + pos + V2_TLV_HEAD_LEN, vlen};
		}
		pos += V2_TLV_HEAD_LEN + vlen;
	}
	return 0;
}

/* The spec's checksum: the whole header's CRC32C, computed with its own value as zeros. */
static bool
v2_crc_holds(const uint8_t *in, size_t len, size_t crc_at)
{
	static const uint8_t zeros[PP2_CRC32C_LEN];
	uint32_t crc = crc32c(0, in, crc_at);

	crc = crc32c(crc, zeros, sizeof(zeros));
	crc = crc32c(crc, in + crc_at + PP2_CRC32C_LEN, len - crc_at - PP2_CRC32C_LEN);
	return crc == bytes_get32(in + crc_at);
}

/*
 * The address block's length for a family: TCP over IPv4 or IPv6, or none
 * (UNSPEC); of a LOCAL header, whose addresses are not taken, any family
 * the specification has.  V2_ADDR_UNKNOWN for any other.
 */
static size_t
v2_address_len(uint8_t family, bool local)
{
	switch (family) {
	case V2_FAM_UNSPEC:
		return 0;
	case V2_FAM_TCP4:
		return V2_TCP4_LEN;
	case V2_FAM_TCP6:
		return V2_TCP6_LEN;
	case V2_FAM_UDP4:
		return local ? V2_TCP4_LEN : V2_ADDR_UNKNOWN;
	case V2_FAM_UDP6:
		return local ? V2_TCP6_LEN : V2_ADDR_UNKNOWN;
	case V2_FAM_UNIX_STREAM:
	case V2_FAM_UNIX_DGRAM:
		return local ? V2_UNIX_LEN : V2_ADDR_UNKNOWN;
	default:
		return V2_ADDR_UNKNOWN;
	}
}

static enum proxy_in_status
v2_parse(const uint8_t *in, size_t len, struct proxy_in *out, const char **why)
{
	size_t body, alen, crc_at;
	bool local;

	if (memcmp(in, v2_signature, len < sizeof(v2_signature) ? len : sizeof(v2_signature)) != 0)
		return bad(why, "not a PROXY header");
	if (len > 12 && in[12] >> 4 != V2_VERSION)
		return bad(why, "PROXY v2: unknown version");
	if (len > 12 && (in[12] & 0x0f) != V2_CMD_LOCAL && (in[12] & 0x0f) != V2_CMD_PROXY)
		return bad(why, "PROXY v2: unknown command");
	if (len < PROXY_V2_PREAMBLE)
		return PROXY_IN_MORE;
	body = bytes_get16(in + 14);
	if (PROXY_V2_PREAMBLE + body > PROXY_IN_MAX)
		return bad(why, "PROXY v2: header too long");
	if (len < PROXY_V2_PREAMBLE + body)
		return PROXY_IN_MORE;
	out->len = PROXY_V2_PREAMBLE + body;
	out->has_addresses = false;
	/* LOCAL (the balancer's own connection, a health check) or UNSPEC: no addresses taken. */
	local = (in[12] & 0x0f) == V2_CMD_LOCAL || in[13] == V2_FAM_UNSPEC;
	if ((alen = v2_address_len(in[13], local)) == V2_ADDR_UNKNOWN)
		return bad(why, "PROXY v2: not a TCP connection over IPv4 or IPv6");
	if (body < alen)
		return bad(why, "PROXY v2: address block too short");
	if (v2_tlvs_whole(in + PROXY_V2_PREAMBLE + alen, body - alen, PROXY_V2_PREAMBLE + alen,
	                  &crc_at, out) != 0)
		return bad(why, "PROXY v2: malformed TLV");
	if (crc_at != 0 && !v2_crc_holds(in, out->len, crc_at))
		return bad(why, "PROXY v2: checksum does not match");
	if (!local)
		v2_endpoints(in + PROXY_V2_PREAMBLE, in[13] == V2_FAM_TCP4 ? AF_INET : AF_INET6,
		             out);
	return PROXY_IN_DONE;
}

enum proxy_in_status
proxy_in_parse(const uint8_t *in, size_t len, struct proxy_in *out, const char **why)
{
	*why = NULL;
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return PROXY_IN_MORE;
	if (in[0] == v1_prefix[0])
		return v1_parse(in, len, out, why);
	if (in[0] == v2_signature[0])
		return v2_parse(in, len, out, why);
	return bad(why, "not a PROXY header");
}
