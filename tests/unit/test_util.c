/* Address, number and duration parsing; the bounded buffer; the random pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include <sodium.h>

#include "common/addr.h"
#include "common/b64.h"
#include "common/buf.h"
#include "common/randpool.h"
#include "common/util.h"

static void
test_addr(void **state)
{
	struct addr_spec a;
	const char *why;
	char text[ADDR_TEXT_MAX];

	assert_int_equal(addr_parse("tcp:127.0.0.1:1", &a, &why), 0);
	assert_true(a.numeric);
	assert_int_equal(a.port, 1);
	assert_int_equal(addr_parse("tcp:[::1]:65535", &a, &why), 0);
	assert_string_equal(a.host, "::1");
	addr_format(&a, text, sizeof(text));
	assert_string_equal(text, "tcp:[::1]:65535");
	assert_int_equal(addr_parse("tcp:db.example:5432", &a, &why), 0);
	assert_false(a.numeric);
	assert_int_equal(addr_parse("unix:/run/fived.sock", &a, &why), 0);
	addr_format(&a, text, sizeof(text));
	assert_string_equal(text, "unix:/run/fived.sock");
	assert_int_equal(addr_parse("tcp:127.0.0.1", &a, &why), -1);
	assert_int_equal(addr_parse("tcp:[127.0.0.1]:1", &a, &why), -1);
	assert_int_equal(addr_parse("tcp::1", &a, &why), -1);
	assert_int_equal(addr_parse("tcp:a:-1", &a, &why), -1);
	assert_int_equal(addr_parse("tcp:a b:1", &a, &why), -1);
	assert_int_equal(addr_parse("udp:a:1", &a, &why), -1);
	assert_int_equal(addr_parse("unix:", &a, &why), -1);
}

static void
test_source_key(void **state)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6}, b = a;
	struct sockaddr_in c = {.sin_family = AF_INET};
	uint8_t ka[SOURCE_KEY_LEN], kb[SOURCE_KEY_LEN], kc[SOURCE_KEY_LEN];

	inet_pton(AF_INET6, "2001:db8:1:2:aaaa::1", &a.sin6_addr);
	inet_pton(AF_INET6, "2001:db8:1:2:bbbb::9", &b.sin6_addr);
	sockaddr_source_key((struct sockaddr *)&a, ka);
	sockaddr_source_key((struct sockaddr *)&b, kb);
	assert_memory_equal(ka, kb, SOURCE_KEY_LEN); /* one /64 */
	inet_pton(AF_INET6, "2001:db8:1:3::1", &b.sin6_addr);
	sockaddr_source_key((struct sockaddr *)&b, kb);
	assert_memory_not_equal(ka, kb, SOURCE_KEY_LEN);
	inet_pton(AF_INET, "10.0.0.1", &c.sin_addr);
	inet_pton(AF_INET6, "::ffff:10.0.0.1", &a.sin6_addr);
	sockaddr_source_key((struct sockaddr *)&c, kc);
	sockaddr_source_key((struct sockaddr *)&a, ka);
	assert_memory_equal(ka, kc, SOURCE_KEY_LEN); /* mapped IPv4 is IPv4 */
}

static void
test_numbers(void **state)
{
	uint64_t v;
	bool b;

	assert_int_equal(parse_uint("0", 10, &v), 0);
	assert_int_equal(parse_uint("10", 10, &v), 0);
	assert_int_equal(parse_uint("11", 10, &v), -1);
	assert_int_equal(parse_uint("18446744073709551616", UINT64_MAX, &v), -1);
	assert_int_equal(parse_uint("1x", 10, &v), -1);
	assert_int_equal(parse_uint("", 10, &v), -1);
	assert_int_equal(parse_duration_ms("10", UINT32_MAX, &v), 0);
	assert_int_equal(v, 10000);
	assert_int_equal(parse_duration_ms("250ms", UINT32_MAX, &v), 0);
	assert_int_equal(v, 250);
	assert_int_equal(parse_duration_ms("2h", UINT64_MAX, &v), 0);
	assert_int_equal(v, 7200000);
	assert_int_equal(parse_duration_ms("2d", UINT64_MAX, &v), -1);
	assert_int_equal(parse_duration_ms("2h", 1000, &v), -1);
	assert_int_equal(parse_size("4096", UINT64_MAX, &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_size("64k", UINT64_MAX, &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(parse_size("256M", UINT64_MAX, &v), 0);
	assert_int_equal(v, 256ULL << 20);
	assert_int_equal(parse_size("2G", UINT64_MAX, &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(parse_size("2G", 1ULL << 30, &v), -1);
	assert_int_equal(parse_size("2T", UINT64_MAX, &v), -1);
	assert_int_equal(parse_size("M", UINT64_MAX, &v), -1);
	assert_int_equal(parse_size("1 M", UINT64_MAX, &v), -1);
	assert_int_equal(parse_size("17179869184G", UINT64_MAX, &v), -1);
	assert_int_equal(parse_bool("Yes", &b), 0);
	assert_true(b);
	assert_int_equal(parse_bool("off", &b), 0);
	assert_false(b);
	assert_int_equal(parse_bool("maybe", &b), -1);
}

static void
test_buf(void **state)
{
	struct buf b;

	buf_init(&b, 8);
	assert_int_equal(buf_append(&b, "hello", 5), 0);
	assert_int_equal(buf_room(&b), 3);
	assert_int_equal(buf_append(&b, "world", 5), -1);
	assert_int_equal(b.len, 5);
	buf_consume(&b, 2);
	assert_memory_equal(b.data, "llo", 3);
	assert_int_equal(buf_append(&b, "world", 5), 0);
	assert_memory_equal(b.data, "lloworld", 8);
	buf_free(&b);
	assert_int_equal(b.len, 0);
	assert_null(b.data);
}

static void
test_b64(void **state)
{
	uint8_t out[16];
	size_t len;

	assert_int_equal(
	        b64_decode("AAA/", 4, NULL, sodium_base64_VARIANT_ORIGINAL, out, sizeof(out), &len),
	        0);
	assert_int_equal(len, 3);
	/* libsodium alone would take these high bytes for alphabet characters. */
	assert_int_equal(b64_decode("AAA\xff", 4, NULL, sodium_base64_VARIANT_ORIGINAL, out,
	                            sizeof(out), &len),
	                 -1);
	assert_int_equal(b64_decode("AAA\xbf", 4, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING,
	                            out, sizeof(out), &len),
	                 -1);
	assert_int_equal(
	        b64_decode("AA==", 4, NULL, sodium_base64_VARIANT_ORIGINAL, out, sizeof(out), &len),
	        0);
	assert_int_equal(b64_decode("AA==", 4, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING, out,
	                            sizeof(out), &len),
	                 -1);
	assert_int_equal(b64_decode("AA\r\nAA", 6, "\r\n", sodium_base64_VARIANT_ORIGINAL, out,
	                            sizeof(out), &len),
	                 0);
	assert_int_equal(b64_decode("AA AA", 5, NULL, sodium_base64_VARIANT_ORIGINAL, out,
	                            sizeof(out), &len),
	                 -1);
	assert_int_equal(b64_decode("AAAA", 4, NULL, sodium_base64_VARIANT_ORIGINAL, out, 2, &len),
	                 -1);
}

static void
test_text_line(void **state)
{
	static const char text[] = "one\n\ntoo long\nt\0o\nlast";
	char buf[8];
	size_t pos = 0;

	assert_int_equal(text_line(text, sizeof(text) - 1, &pos, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "one");
	assert_int_equal(text_line(text, sizeof(text) - 1, &pos, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "");
	assert_int_equal(text_line(text, sizeof(text) - 1, &pos, buf, sizeof(buf)), -1);
	assert_int_equal(text_line(text, sizeof(text) - 1, &pos, buf, sizeof(buf)), -1);
	assert_int_equal(text_line(text, sizeof(text) - 1, &pos, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "last");
	assert_int_equal(pos, sizeof(text) - 1);
	assert_int_equal(text_line(text, sizeof(text) - 1, &pos, buf, sizeof(buf)), 0);
}

/* A pool hands out each byte once, wipes it, and fills again when short. */
static void
test_randpool(void **state)
{
	static const uint8_t zero[16];
	struct randpool p = {0};
	uint8_t first[16], id[16];
	size_t i;

	randpool_take(&p, first, sizeof(first));
	assert_int_equal(p.left, RANDPOOL_SIZE - sizeof(first));
	assert_memory_equal(p.bytes + p.left, zero, sizeof(zero));
	assert_memory_not_equal(first, zero, sizeof(zero));
	for (i = 1; i < RANDPOOL_SIZE / sizeof(id); i++) {
		randpool_take(&p, id, sizeof(id));
		assert_memory_not_equal(id, first, sizeof(id));
	}
	assert_int_equal(p.left, 0);
	randpool_take(&p, id, sizeof(id));
	assert_int_equal(p.left, RANDPOOL_SIZE - sizeof(id));
	assert_memory_not_equal(id, zero, sizeof(id));
	assert_memory_not_equal(id, first, sizeof(id));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_addr),     cmocka_unit_test(test_source_key),
	        cmocka_unit_test(test_numbers),  cmocka_unit_test(test_buf),
	        cmocka_unit_test(test_b64),      cmocka_unit_test(test_text_line),
	        cmocka_unit_test(test_randpool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
