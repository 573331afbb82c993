/* PROXY protocol v1 and v2 headers, byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "proto/proxy.h"

static struct sockaddr_in
v4(const char *ip, uint16_t port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, ip, &sin.sin_addr);
	return sin;
}

static struct sockaddr_in6
v6(const char *ip, uint16_t port)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};

	inet_pton(AF_INET6, ip, &sin6.sin6_addr);
	return sin6;
}

static void
test_v1(void **state)
{
	struct sockaddr_in s = v4("192.0.2.1", 40000), d = v4("198.51.100.2", 1);
	struct sockaddr_in6 s6 = v6("2001:db8::1", 5), d6 = v6("::1", 6);
	struct sockaddr_in6 mapped = v6("::ffff:10.0.0.1", 7);
	char out[PROXY_V1_MAX];

	assert_int_equal(
	        proxy_v1_encode((struct sockaddr *)&s, (struct sockaddr *)&d, out, sizeof(out)),
	        strlen("PROXY TCP4 192.0.2.1 198.51.100.2 40000 1\r\n"));
	assert_string_equal(out, "PROXY TCP4 192.0.2.1 198.51.100.2 40000 1\r\n");
	proxy_v1_encode((struct sockaddr *)&s6, (struct sockaddr *)&d6, out, sizeof(out));
	assert_string_equal(out, "PROXY TCP6 2001:db8::1 ::1 5 6\r\n");
	proxy_v1_encode((struct sockaddr *)&mapped, (struct sockaddr *)&d, out, sizeof(out));
	assert_string_equal(out, "PROXY TCP4 10.0.0.1 198.51.100.2 7 1\r\n");
	/* One of each family: the IPv4 one as IPv4-mapped IPv6, the client still named. */
	proxy_v1_encode((struct sockaddr *)&s6, (struct sockaddr *)&d, out, sizeof(out));
	assert_string_equal(out, "PROXY TCP6 2001:db8::1 ::ffff:198.51.100.2 5 1\r\n");
	proxy_v1_encode((struct sockaddr *)&mapped, (struct sockaddr *)&d6, out, sizeof(out));
	assert_string_equal(out, "PROXY TCP6 ::ffff:10.0.0.1 ::1 7 6\r\n");
	proxy_v1_encode((struct sockaddr *)&s6, NULL, out, sizeof(out));
	assert_string_equal(out, "PROXY UNKNOWN\r\n");
	proxy_v1_encode(NULL, NULL, out, sizeof(out));
	assert_string_equal(out, "PROXY UNKNOWN\r\n");
	assert_int_equal(proxy_v1_encode(NULL, NULL, out, 10), -1);
}

static void
test_v2_ipv4_with_tlvs(void **state)
{
	static const uint8_t expect[] = {
	        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
	        0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, /* sig */
	        0x21, 0x11, 0x00, 0x16,             /* v2 PROXY TCP4, 22 */
	        192,  0,    2,    1,    198,  51,
	        100,  2,    0x9c, 0x40, 0x00, 0x01, /* addrs, ports */
	        0x02, 0x00, 0x01, 'v',              /* AUTHORITY */
	        0x05, 0x00, 0x03, 'a',  'b',  'c',  /* UNIQUE_ID */
	};
	struct sockaddr_in s = v4("192.0.2.1", 40000), d = v4("198.51.100.2", 1);
	struct proxy_tlv tlvs[] = {{PP2_TYPE_AUTHORITY, "v", 1}, {PP2_TYPE_UNIQUE_ID, "abc", 3}};
	uint8_t out[PROXY_V2_MAX];
	int n;

	n = proxy_v2_encode((struct sockaddr *)&s, (struct sockaddr *)&d, tlvs, 2, out,
	                    sizeof(out));
	assert_int_equal(n, sizeof(expect));
	assert_memory_equal(out, expect, sizeof(expect));
}

static void
test_v2_ipv6_and_unspec(void **state)
{
	struct sockaddr_in6 s6 = v6("2001:db8::1", 5), d6 = v6("::1", 6);
	struct sockaddr_in6 mapped = v6("::ffff:10.0.0.1", 7);
	static const uint8_t widened[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
	uint8_t out[PROXY_V2_MAX];
	int n;

	n = proxy_v2_encode((struct sockaddr *)&s6, (struct sockaddr *)&d6, NULL, 0, out,
	                    sizeof(out));
	assert_int_equal(n, 16 + 36);
	assert_int_equal(out[13], 0x21);
	assert_int_equal(out[14] << 8 | out[15], 36);
	assert_int_equal(out[16], 0x20);
	assert_int_equal(out[16 + 36 - 3], 5);
	n = proxy_v2_encode((struct sockaddr *)&mapped, (struct sockaddr *)&d6, NULL, 0, out,
	                    sizeof(out));
	assert_int_equal(n, 16 + 36);
	assert_int_equal(out[13], 0x21);
	assert_memory_equal(out + 16, widened, sizeof(widened));
	n = proxy_v2_encode(NULL, NULL, NULL, 0, out, sizeof(out));
	assert_int_equal(n, 16);
	assert_int_equal(out[13], 0x00);
	assert_int_equal(out[14] << 8 | out[15], 0);
}

static void
test_v2_limits(void **state)
{
	static char big[3000];
	struct proxy_tlv tlv = {0xE0, big, sizeof(big)};
	uint8_t out[PROXY_V2_MAX];

	assert_int_equal(proxy_v2_encode(NULL, NULL, &tlv, 1, out, sizeof(out)), -1);
	tlv.len = 70000;
	assert_int_equal(proxy_v2_encode(NULL, NULL, &tlv, 1, out, sizeof(out)), -1);
	assert_int_equal(proxy_v2_encode(NULL, NULL, NULL, 0, out, 15), -1);
}

/* Parses all of in, which must be one whole header of exactly its length. */
static enum proxy_in_status
parse_all(const void *in, size_t len, struct proxy_in *h)
{
	const char *why;
	enum proxy_in_status st = proxy_in_parse(in, len, h, &why);
	size_t i;

	/* Every proper beginning of a header asks for more. */
	for (i = 0; st == PROXY_IN_DONE && i < h->len; i++) {
		struct proxy_in part;
		assert_int_equal(proxy_in_parse(in, i, &part, &why), PROXY_IN_MORE);
	}
	return st;
}

static void
test_in_v1(void **state)
{
	static const char tcp4[] = "PROXY TCP4 192.0.2.1 198.51.100.2 40000 1\r\nhello";
	static const char tcp6[] = "PROXY TCP6 2001:db8::1 ::1 5 65535\r\n";
	static const char unknown[] = "PROXY UNKNOWN whatever 1 2\r\n";
	struct proxy_in h;
	const struct sockaddr_in *s4;
	const struct sockaddr_in6 *s6;

	assert_int_equal(parse_all(tcp4, sizeof(tcp4) - 1, &h), PROXY_IN_DONE);
	assert_int_equal(h.len, sizeof(tcp4) - 1 - 5);
	assert_true(h.has_addresses);
	s4 = (const struct sockaddr_in *)&h.src;
	assert_int_equal(s4->sin_family, AF_INET);
	assert_int_equal(ntohs(s4->sin_port), 40000);
	assert_int_equal(ntohl(s4->sin_addr.s_addr), 0xC0000201);
	assert_int_equal(parse_all(tcp6, sizeof(tcp6) - 1, &h), PROXY_IN_DONE);
	s6 = (const struct sockaddr_in6 *)&h.dst;
	assert_int_equal(s6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(s6->sin6_port), 65535);
	assert_int_equal(parse_all(unknown, sizeof(unknown) - 1, &h), PROXY_IN_DONE);
	assert_false(h.has_addresses);
	assert_int_equal(parse_all("PROXY UNKNOWN\r\n", 15, &h), PROXY_IN_DONE);
	assert_false(h.has_addresses);
}

static void
test_in_v1_refused(void **state)
{
	static const char *const bad[] = {
	        "PROXY TCP4 192.0.2.1 198.51.100.2 40000 1\n",
	        "PROXY TCP4 192.0.2.1  198.51.100.2 40000 1\r\n",
	        "PROXY TCP4 192.0.2.1 198.51.100.2 40000 1 \r\n",
	        "PROXY TCP4 192.0.2.1 198.51.100.2 040000 1\r\n",
	        "PROXY TCP4 192.0.2.1 198.51.100.2 65536 1\r\n",
	        "PROXY TCP4 2001:db8::1 198.51.100.2 1 1\r\n",
	        "PROXY TCP6 192.0.2.1 ::1 1 1\r\n",
	        "PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n",
	        "PROXY UDP4 192.0.2.1 198.51.100.2 1 1\r\n",
	        "PROXY UNKNOWNX\r\n",
	        "PROXY TCP4 192.0.2.1 198.51.100.2 1 1\r\r\n",
	        "PROXY TCP4 192.0.2.1\t198.51.100.2 1 1\r\n",
	        "PROXY \r\n",
	        "PROXX TCP4",
	        "GET / HTTP/1.1\r\n",
	        "proxy TCP4 192.0.2.1 198.51.100.2 1 1\r\n",
	};
	char longline[200];
	struct proxy_in h;
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(proxy_in_parse((const uint8_t *)bad[i], strlen(bad[i]), &h, &why),
		                 PROXY_IN_BAD);
		assert_non_null(why);
	}
	/* 107 bytes without a line's end: more than v1 allows (107, CRLF included). */
	memset(longline, 'x', sizeof(longline));
	memcpy(longline, "PROXY UNKNOWN ", 14);
	assert_int_equal(proxy_in_parse((uint8_t *)longline, 106, &h, &why), PROXY_IN_MORE);
	assert_int_equal(proxy_in_parse((uint8_t *)longline, 107, &h, &why), PROXY_IN_BAD);
	memcpy(longline + 105, "\r\n", 2);
	assert_int_equal(proxy_in_parse((uint8_t *)longline, 107, &h, &why), PROXY_IN_DONE);
	memcpy(longline + 105, "x\r\n", 3);
	assert_int_equal(proxy_in_parse((uint8_t *)longline, 108, &h, &why), PROXY_IN_BAD);
	assert_int_equal(proxy_in_parse((uint8_t *)longline, sizeof(longline), &h, &why),
	                 PROXY_IN_BAD);
}

static void
test_in_v2(void **state)
{
	struct sockaddr_in s = v4("192.0.2.1", 40000), d = v4("198.51.100.2", 1);
	struct sockaddr_in6 s6 = v6("2001:db8::1", 5), d6 = v6("::1", 6);
	struct proxy_tlv tlvs[] = {{PP2_TYPE_FIVE_IDENTITY, "root", 4},
	                           {PP2_TYPE_UNIQUE_ID, "", 0}};
	uint8_t out[PROXY_V2_MAX];
	struct proxy_in h;
	int n;

	n = proxy_v2_encode((struct sockaddr *)&s, (struct sockaddr *)&d, tlvs, 2, out,
	                    sizeof(out));
	assert_int_equal(parse_all(out, (size_t)n, &h), PROXY_IN_DONE);
	assert_int_equal(h.len, (size_t)n);
	assert_true(h.has_addresses);
	assert_memory_equal(&((struct sockaddr_in *)&h.src)->sin_addr, &s.sin_addr, 4);
	assert_int_equal(((struct sockaddr_in *)&h.src)->sin_port, s.sin_port);
	assert_int_equal(((struct sockaddr_in *)&h.dst)->sin_port, d.sin_port);
	n = proxy_v2_encode((struct sockaddr *)&s6, (struct sockaddr *)&d6, NULL, 0, out,
	                    sizeof(out));
	assert_int_equal(parse_all(out, (size_t)n, &h), PROXY_IN_DONE);
	assert_memory_equal(&((struct sockaddr_in6 *)&h.src)->sin6_addr, &s6.sin6_addr, 16);
	/* UNSPEC, and LOCAL whatever its family: the connection's own addresses. */
	n = proxy_v2_encode(NULL, NULL, NULL, 0, out, sizeof(out));
	assert_int_equal(parse_all(out, (size_t)n, &h), PROXY_IN_DONE);
	assert_false(h.has_addresses);
	n = proxy_v2_encode((struct sockaddr *)&s, (struct sockaddr *)&d, NULL, 0, out,
	                    sizeof(out));
	out[12] = 0x20;
	assert_int_equal(parse_all(out, (size_t)n, &h), PROXY_IN_DONE);
	assert_false(h.has_addresses);
}

/* fived's own TLVs are located, each once; a second of one type is malformed. */
static void
test_in_v2_five_values(void **state)
{
	struct sockaddr_in s = v4("192.0.2.1", 40000), d = v4("198.51.100.2", 1);
	struct proxy_tlv tlvs[] = {{PP2_TYPE_UNIQUE_ID, "id", 2},
	                           {PP2_TYPE_FIVE_TRANSPORT, "sealed", 6},
	                           {PP2_TYPE_FIVE_IDENTITY, "robot", 5},
	                           {PP2_TYPE_FIVE_AUTH_METHOD, "external", 8},
	                           {PP2_TYPE_FIVE_TRANSPORT, "plain", 5}};
	uint8_t out[PROXY_V2_MAX];
	struct proxy_in h;
	int n;

	(void)state;
	n = proxy_v2_encode((struct sockaddr *)&s, (struct sockaddr *)&d, tlvs, 4, out,
	                    sizeof(out));
	assert_int_equal(parse_all(out, (size_t)n, &h), PROXY_IN_DONE);
	assert_true(h.transport.present && h.identity.present && h.method.present);
	assert_memory_equal(out + h.transport.at, "sealed", h.transport.len);
	assert_memory_equal(out + h.identity.at, "robot", h.identity.len);
	assert_memory_equal(out + h.method.at, "external", h.method.len);
	n = proxy_v2_encode((struct sockaddr *)&s, (struct sockaddr *)&d, tlvs, 1, out,
	                    sizeof(out));
	assert_int_equal(parse_all(out, (size_t)n, &h), PROXY_IN_DONE);
	assert_false(h.transport.present || h.identity.present || h.method.present);
	n = proxy_v2_encode((struct sockaddr *)&s, (struct sockaddr *)&d, tlvs, 5, out,
	                    sizeof(out));
	assert_int_equal(parse_all(out, (size_t)n, &h), PROXY_IN_BAD);
}

static void
test_in_v2_refused(void **state)
{
	struct sockaddr_in s = v4("192.0.2.1", 40000), d = v4("198.51.100.2", 1);
	struct proxy_tlv tlv = {PP2_TYPE_AUTHORITY, "example", 7};
	uint8_t good[PROXY_V2_MAX], out[PROXY_V2_MAX];
	struct proxy_in h;
	const char *why;
	int n;

	n = proxy_v2_encode((struct sockaddr *)&s, (struct sockaddr *)&d, &tlv, 1, good,
	                    sizeof(good));
	/* Each byte of the signature, the version and the command matters. */
	for (size_t i = 0; i < 13; i++) {
		memcpy(out, good, (size_t)n);
		out[i] ^= 0x40;
		assert_int_equal(proxy_in_parse(out, (size_t)n, &h, &why), PROXY_IN_BAD);
	}
	memcpy(out, good, (size_t)n);
	out[12] = 0x22; /* a command the specification does not have */
	assert_int_equal(proxy_in_parse(out, (size_t)n, &h, &why), PROXY_IN_BAD);
	memcpy(out, good, (size_t)n);
	out[13] = 0x12; /* UDP */
	assert_int_equal(proxy_in_parse(out, (size_t)n, &h, &why), PROXY_IN_BAD);
	out[13] = 0x31; /* a Unix socket */
	assert_int_equal(proxy_in_parse(out, (size_t)n, &h, &why), PROXY_IN_BAD);
	memcpy(out, good, (size_t)n);
	out[13] = 0x21; /* IPv6, with too few bytes for its addresses */
	assert_int_equal(proxy_in_parse(out, (size_t)n, &h, &why), PROXY_IN_BAD);
	/* A TLV running past the header's end. */
	memcpy(out, good, (size_t)n);
	out[15]--;
	assert_int_equal(proxy_in_parse(out, (size_t)n - 1, &h, &why), PROXY_IN_BAD);
	/* A header longer than PROXY_IN_MAX is refused before it is read. */
	memcpy(out, good, 16);
	out[14] = (uint8_t)((PROXY_IN_MAX - 16 + 1) >> 8);
	out[15] = (uint8_t)((PROXY_IN_MAX - 16 + 1) & 0xff);
	assert_int_equal(proxy_in_parse(out, 16, &h, &why), PROXY_IN_BAD);
	out[15]--;
	assert_int_equal(proxy_in_parse(out, 16, &h, &why), PROXY_IN_MORE);
}

/*
 * A header HAProxy 2.6 sent (`send-proxy-v2 proxy-v2-options crc32c,unique-id`)
 * for a client at 127.0.0.7:40001: its checksum TLV (type 3), then an empty
 * unique id.
 */
static const uint8_t haproxy_crc32c[] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49,
                                         0x54, 0x0a, 0x21, 0x11, 0x00, 0x16, 0x7f, 0x00, 0x00, 0x07,
                                         0x7f, 0x00, 0x00, 0x01, 0x9c, 0x41, 0x84, 0xb3, 0x03, 0x00,
                                         0x04, 0xc6, 0x67, 0xd0, 0xc4, 0x05, 0x00, 0x00};

#define CRC_TLV_AT 28 /* the checksum TLV's type byte in haproxy_crc32c */

static void
test_in_v2_checksum(void **state)
{
	uint8_t out[sizeof(haproxy_crc32c)];
	struct proxy_in h;
	const char *why;

	assert_int_equal(parse_all(haproxy_crc32c, sizeof(haproxy_crc32c), &h), PROXY_IN_DONE);
	assert_int_equal(((struct sockaddr_in *)&h.src)->sin_port, htons(40001));
	/* Any byte after the preamble changed, the checksum's own included: refused. */
	for (size_t i = 16; i < sizeof(out); i++) {
		memcpy(out, haproxy_crc32c, sizeof(out));
		out[i] ^= 0x01;
		if (i == CRC_TLV_AT) {
			/* Another type (2, an authority): no checksum left to check. */
			assert_int_equal(proxy_in_parse(out, sizeof(out), &h, &why), PROXY_IN_DONE);
			continue;
		}
		assert_int_equal(proxy_in_parse(out, sizeof(out), &h, &why), PROXY_IN_BAD);
		/* A length changed leaves a TLV that does not fit, or a checksum not 4 long. */
		assert_string_equal(why, i == CRC_TLV_AT + 1 || i == CRC_TLV_AT + 2 ||
		                                         i >= sizeof(out) - 2
		                                 ? "PROXY v2: malformed TLV"
		                                 : "PROXY v2: checksum does not match");
	}
	/* LOCAL (a health check) keeps no address, but its TLVs and checksum are checked too. */
	memcpy(out, haproxy_crc32c, sizeof(out));
	out[12] = 0x20;
	assert_int_equal(proxy_in_parse(out, sizeof(out), &h, &why), PROXY_IN_BAD);
	assert_string_equal(why, "PROXY v2: checksum does not match");
	out[13] = 0x31; /* a Unix socket's: a LOCAL header may name any family */
	assert_int_equal(proxy_in_parse(out, sizeof(out), &h, &why), PROXY_IN_BAD);
	assert_string_equal(why, "PROXY v2: address block too short");
	out[13] = 0x00; /* UNSPEC: no address block, the bytes are TLVs, and do not fit */
	assert_int_equal(proxy_in_parse(out, sizeof(out), &h, &why), PROXY_IN_BAD);
	assert_string_equal(why, "PROXY v2: malformed TLV");
	/* A second checksum TLV (the unique id's type changed to 3, of length 0). */
	memcpy(out, haproxy_crc32c, sizeof(out));
	out[sizeof(out) - 3] = 0x03;
	assert_int_equal(proxy_in_parse(out, sizeof(out), &h, &why), PROXY_IN_BAD);
	assert_string_equal(why, "PROXY v2: malformed TLV");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_v1),
	        cmocka_unit_test(test_v2_ipv4_with_tlvs),
	        cmocka_unit_test(test_v2_ipv6_and_unspec),
	        cmocka_unit_test(test_v2_limits),
	        cmocka_unit_test(test_in_v1),
	        cmocka_unit_test(test_in_v1_refused),
	        cmocka_unit_test(test_in_v2_checksum),
	        cmocka_unit_test(test_in_v2),
	        cmocka_unit_test(test_in_v2_refused),
	        cmocka_unit_test(test_in_v2_five_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
