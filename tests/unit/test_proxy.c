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
	proxy_v1_encode((struct sockaddr *)&s6, (struct sockaddr *)&d, out, sizeof(out));
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
	uint8_t out[PROXY_V2_MAX];
	int n;

	n = proxy_v2_encode((struct sockaddr *)&s6, (struct sockaddr *)&d6, NULL, 0, out,
	                    sizeof(out));
	assert_int_equal(n, 16 + 36);
	assert_int_equal(out[13], 0x21);
	assert_int_equal(out[14] << 8 | out[15], 36);
	assert_int_equal(out[16], 0x20);
	assert_int_equal(out[16 + 36 - 3], 5);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_v1),
	        cmocka_unit_test(test_v2_ipv4_with_tlvs),
	        cmocka_unit_test(test_v2_ipv6_and_unspec),
	        cmocka_unit_test(test_v2_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
