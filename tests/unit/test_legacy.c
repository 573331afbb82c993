/*
 * The transition on the same port (src/legacy/legacy.h, tlshello.h): SSH version
 * lines, HTTP request lines and ClientHellos told from fived's dialects,
 * whole, cut short, malformed, over their bounds; the ALPN and the names
 * that keep a ClientHello with fived.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "legacy/legacy.h"

static const char names[][TLSHELLO_NAME_MAX + 1] = {"fived.example", "five.example"};

static const struct legacy_rules all = {
        .enabled = {true, true, true},
        .names = names,
        .nnames = 2,
};

static enum legacy_verdict
classify_with(const struct legacy_rules *r, const void *in, size_t len, enum legacy_proto *p)
{
	*p = LEGACY_PROTO_COUNT;
	return legacy_classify(r, in, len, p);
}

static enum legacy_verdict
classify(const char *text, enum legacy_proto *p)
{
	return classify_with(&all, text, strlen(text), p);
}

/* Every proper prefix of text needs more; the whole is handed over as proto. */
static void
assert_handed_only_whole(const char *text, enum legacy_proto proto)
{
	enum legacy_proto p;
	size_t i;

	for (i = 1; i < strlen(text); i++)
		assert_int_equal(classify_with(&all, text, i, &p), LEGACY_NEED_MORE);
	assert_int_equal(classify(text, &p), LEGACY_HAND_OVER);
	assert_int_equal(p, proto);
}

static void
test_ssh(void **state)
{
	enum legacy_proto p;

	assert_handed_only_whole("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n", LEGACY_SSH);
	assert_handed_only_whole("SSH-2.0-PuTTY_Release_0.78\n", LEGACY_SSH);
	assert_handed_only_whole("SSH-1.99-old\r\n", LEGACY_SSH);
	/* What follows the line is the client's too: it goes along. */
	assert_int_equal(classify("SSH-2.0-x\r\n\0\0\0\x14", &p), LEGACY_HAND_OVER);
	/* Not a version line: fived's, whose text dialect answers it. */
	assert_int_equal(classify("SSH-1.5-old\r\n", &p), LEGACY_FIVED);
	assert_int_equal(classify("SSH-2.0-\r\n", &p), LEGACY_FIVED);
	assert_int_equal(classify("SSH-2.0- x\r\n", &p), LEGACY_FIVED);
	assert_int_equal(classify("SSH-2.0-x\ry\n", &p), LEGACY_FIVED);
	assert_int_equal(classify("SSH-2.0-x\x01\r\n", &p), LEGACY_FIVED);
	assert_int_equal(classify("ssh-2.0-x\r\n", &p), LEGACY_FIVED);
	assert_int_equal(classify("SSH\r\n", &p), LEGACY_FIVED);
}

static void
test_ssh_line_bound(void **state)
{
	char line[LEGACY_SSH_LINE_MAX + 2];
	enum legacy_proto p;

	/* 255 bytes with the CR LF: the longest RFC 4253 allows. */
	memset(line, 'a', sizeof(line));
	memcpy(line, "SSH-2.0-", 8);
	memcpy(line + LEGACY_SSH_LINE_MAX - 2, "\r\n", 2);
	assert_int_equal(classify_with(&all, line, LEGACY_SSH_LINE_MAX, &p), LEGACY_HAND_OVER);
	memcpy(line + LEGACY_SSH_LINE_MAX - 2, "a\r\n", 3);
	assert_int_equal(classify_with(&all, line, LEGACY_SSH_LINE_MAX + 1, &p), LEGACY_FIVED);
	assert_int_equal(classify_with(&all, line, LEGACY_SSH_LINE_MAX - 1, &p), LEGACY_NEED_MORE);
}

static void
test_http(void **state)
{
	enum legacy_proto p;

	assert_handed_only_whole("GET / HTTP/1.1\r\n", LEGACY_HTTP);
	assert_handed_only_whole("HEAD /index.html HTTP/1.0\n", LEGACY_HTTP);
	assert_handed_only_whole("POST /form?a=b HTTP/1.1\r\n", LEGACY_HTTP);
	assert_handed_only_whole("OPTIONS * HTTP/1.1\r\n", LEGACY_HTTP);
	assert_handed_only_whole("CONNECT example.org:443 HTTP/1.1\r\n", LEGACY_HTTP);
	assert_handed_only_whole("PRI * HTTP/2.0\r\n", LEGACY_HTTP);
	assert_int_equal(classify("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &p), LEGACY_HAND_OVER);
	/* fived's own words, and what is not quite HTTP/1.x, are fived's. */
	assert_int_equal(classify("LIST\r\n", &p), LEGACY_FIVED);
	assert_int_equal(classify("L", &p), LEGACY_FIVED);
	assert_int_equal(classify("echo\r\n", &p), LEGACY_FIVED);
	assert_int_equal(classify("PROVEAUTH x\r\n", &p), LEGACY_FIVED);
	assert_int_equal(classify("GET\r\n", &p), LEGACY_FIVED);
	assert_int_equal(classify("GET /\r\n", &p), LEGACY_FIVED); /* HTTP/0.9 */
	assert_int_equal(classify("GET  / HTTP/1.1\r\n", &p), LEGACY_FIVED);
	assert_int_equal(classify("GET / HTTP/1.2\r\n", &p), LEGACY_FIVED);
	assert_int_equal(classify("GET / HTTP/2.0\r\n", &p), LEGACY_FIVED);
	assert_int_equal(classify("PRI * HTTP/1.1\r\n", &p), LEGACY_FIVED);
	assert_int_equal(classify("get / HTTP/1.1\r\n", &p), LEGACY_FIVED);
	assert_int_equal(classify("GET / HTTP/1.1 \r\n", &p), LEGACY_FIVED);
	assert_int_equal(classify("GET /\x7f HTTP/1.1\r\n", &p), LEGACY_FIVED);
	assert_int_equal(classify("GET / HTTP/1.1\rx", &p), LEGACY_FIVED);
}

static void
test_http_line_bound(void **state)
{
	char *line = malloc(LEGACY_HTTP_LINE_MAX + 16);
	enum legacy_proto p;
	size_t len;

	/* The longest line: 8192 bytes with its CR LF. */
	memset(line, 'a', LEGACY_HTTP_LINE_MAX + 16);
	memcpy(line, "GET /", 5);
	len = LEGACY_HTTP_LINE_MAX;
	memcpy(line + len - 11, " HTTP/1.1\r\n", 11);
	assert_int_equal(classify_with(&all, line, len, &p), LEGACY_HAND_OVER);
	memcpy(line + len - 11, "a HTTP/1.1\r\n", 12);
	assert_int_equal(classify_with(&all, line, len + 1, &p), LEGACY_FIVED);
	/* A target that runs past the bound is decided at the bound. */
	memset(line + 5, 'a', LEGACY_HTTP_LINE_MAX + 11);
	assert_int_equal(classify_with(&all, line, LEGACY_HTTP_LINE_MAX - 1, &p), LEGACY_NEED_MORE);
	assert_int_equal(classify_with(&all, line, LEGACY_HTTP_LINE_MAX, &p), LEGACY_FIVED);
	free(line);
}

/* --- ClientHellos, built here -------------------------------------------- */

struct hello {
	uint8_t b[2 * LEGACY_PEEK_MAX];
	size_t len;
};

static void
put(struct hello *h, const void *p, size_t n)
{
	assert_true(h->len + n <= sizeof(h->b));
	memcpy(h->b + h->len, p, n);
	h->len += n;
}

static void
put16(struct hello *h, size_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	put(h, b, 2);
}

/* An extension: type, then body with a 2-byte length. */
static void
put_ext(struct hello *h, unsigned type, const void *body, size_t n)
{
	put16(h, type);
	put16(h, n);
	put(h, body, n);
}

/* An ALPN extension offering ids, a comma-separated list. */
static void
put_alpn(struct hello *h, const char *ids)
{
	struct hello body = {.len = 2};
	const char *p = ids, *comma;
	size_t n;

	while (*p != '\0') {
		comma = strchr(p, ',');
		n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		body.b[body.len++] = (uint8_t)n;
		put(&body, p, n);
		p += n + (comma != NULL);
	}
	body.b[0] = (uint8_t)((body.len - 2) >> 8);
	body.b[1] = (uint8_t)(body.len - 2);
	put_ext(h, 16, body.b, body.len);
}

static void
put_sni(struct hello *h, const char *name)
{
	struct hello body = {0};
	size_t n = strlen(name);

	put16(&body, n + 3);
	body.b[body.len++] = 0;
	put16(&body, n);
	put(&body, name, n);
	put_ext(h, 0, body.b, body.len);
}

/*
 * A ClientHello with extensions exts (already framed), in records of at
 * most rec bytes each.
 */
static void
make_hello(struct hello *out, const struct hello *exts, size_t rec)
{
	static const uint8_t suites[] = {0x13, 0x01, 0x13, 0x02};
	struct hello msg = {0};
	size_t off, n, body;

	put(&msg, "\x01\0\0\0", 4);
	put(&msg, "\x03\x03", 2);
	memset(msg.b + msg.len, 0x5a, 32);
	msg.len += 32;
	put(&msg, "\x00", 1);
	put16(&msg, sizeof(suites));
	put(&msg, suites, sizeof(suites));
	put(&msg, "\x01\x00", 2);
	if (exts != NULL) {
		put16(&msg, exts->len);
		put(&msg, exts->b, exts->len);
	}
	body = msg.len - 4;
	msg.b[1] = (uint8_t)(body >> 16);
	msg.b[2] = (uint8_t)(body >> 8);
	msg.b[3] = (uint8_t)body;
	out->len = 0;
	for (off = 0; off < msg.len; off += n) {
		n = msg.len - off < rec ? msg.len - off : rec;
		put(out, "\x16\x03\x01", 3);
		put16(out, n);
		put(out, msg.b + off, n);
	}
}

static enum legacy_verdict
classify_hello(const struct hello *h, enum legacy_proto *p)
{
	return classify_with(&all, h->b, h->len, p);
}

static void
test_hello_asks_for_fived(void **state)
{
	struct hello exts = {0}, h;
	struct tls_hello th;
	enum legacy_proto p;
	size_t i;

	/* By ALPN, among other ids. */
	put_alpn(&exts, "h2,fived,http/1.1");
	make_hello(&h, &exts, 16384);
	assert_int_equal(tlshello_peek(h.b, h.len, &th), TLSHELLO_OK);
	assert_true(th.alpn_fived);
	assert_string_equal(th.sni, "");
	for (i = 1; i < h.len; i++)
		assert_int_equal(classify_with(&all, h.b, i, &p), LEGACY_NEED_MORE);
	assert_int_equal(classify_hello(&h, &p), LEGACY_FIVED);
	/* By one of its names, in any case. */
	exts.len = 0;
	put_sni(&exts, "Fived.EXAMPLE");
	make_hello(&h, &exts, 16384);
	assert_int_equal(tlshello_peek(h.b, h.len, &th), TLSHELLO_OK);
	assert_string_equal(th.sni, "fived.example");
	assert_int_equal(classify_hello(&h, &p), LEGACY_FIVED);
}

static void
test_hello_for_another(void **state)
{
	struct hello exts = {0}, h;
	enum legacy_proto p;

	/* No ALPN and no name: it asks for no one, so not for fived. */
	make_hello(&h, NULL, 16384);
	assert_int_equal(classify_hello(&h, &p), LEGACY_HAND_OVER);
	assert_int_equal(p, LEGACY_TLS);
	put_alpn(&exts, "h2,http/1.1");
	put_sni(&exts, "www.example");
	make_hello(&h, &exts, 16384);
	assert_int_equal(classify_hello(&h, &p), LEGACY_HAND_OVER);
	/* An ALPN id that only begins like fived's is another's. */
	exts.len = 0;
	put_alpn(&exts, "fivedx,five");
	make_hello(&h, &exts, 16384);
	assert_int_equal(classify_hello(&h, &p), LEGACY_HAND_OVER);
	/* And with legacy_tls off, every ClientHello is fived's. */
	{
		struct legacy_rules no_tls = all;

		no_tls.enabled[LEGACY_TLS] = false;
		assert_int_equal(classify_with(&no_tls, h.b, h.len, &p), LEGACY_FIVED);
		assert_int_equal(classify_with(&no_tls, h.b, 1, &p), LEGACY_FIVED);
	}
}

static void
test_hello_in_small_records(void **state)
{
	static const uint8_t padding[4000]; /* RFC 7685's extension, zeros */
	struct hello exts = {0}, h;
	struct tls_hello th;
	enum legacy_proto p;
	size_t i;

	put_sni(&exts, "www.example");
	put_alpn(&exts, "fived");
	make_hello(&h, &exts, 7);
	assert_int_equal(tlshello_peek(h.b, h.len, &th), TLSHELLO_OK);
	assert_true(th.alpn_fived);
	assert_string_equal(th.sni, "www.example");
	for (i = 1; i < h.len; i++)
		assert_int_equal(classify_with(&all, h.b, i, &p), LEGACY_NEED_MORE);
	assert_int_equal(classify_hello(&h, &p), LEGACY_FIVED);
	/* Records of one byte take more room than the peek allows for a hello this long. */
	exts.len = 0;
	put_ext(&exts, 21, padding, sizeof(padding));
	make_hello(&h, &exts, 1);
	assert_true(h.len > LEGACY_PEEK_MAX);
	assert_int_equal(classify_with(&all, h.b, LEGACY_PEEK_MAX, &p), LEGACY_FIVED);
}

static void
test_hello_malformed(void **state)
{
	struct hello exts = {0}, h;
	struct tls_hello th;
	enum legacy_proto p;

	put_alpn(&exts, "h2");
	make_hello(&h, &exts, 16384);
	assert_int_equal(tlshello_peek(h.b, h.len, &th), TLSHELLO_OK);
	/* Each break is fived's: its TLS refuses the hello; nothing reaches a backend. */
	h.b[5] = 2; /* a ServerHello */
	assert_int_equal(tlshello_peek(h.b, h.len, &th), TLSHELLO_BAD);
	assert_int_equal(classify_hello(&h, &p), LEGACY_FIVED);
	h.b[5] = 1;
	h.b[1] = 2; /* an SSL 2 / 3.0-less record version */
	assert_int_equal(tlshello_peek(h.b, h.len, &th), TLSHELLO_BAD);
	h.b[1] = 3;
	h.b[0] = 0x17; /* application data */
	assert_int_equal(classify_hello(&h, &p), LEGACY_FIVED);
	h.b[0] = 0x16;
	h.b[3] = 0x40; /* a record longer than TLS allows */
	assert_int_equal(tlshello_peek(h.b, h.len, &th), TLSHELLO_BAD);
	/* The same extension twice. */
	exts.len = 0;
	put_alpn(&exts, "h2");
	put_alpn(&exts, "fived");
	make_hello(&h, &exts, 16384);
	assert_int_equal(tlshello_peek(h.b, h.len, &th), TLSHELLO_BAD);
	/* Two host names. */
	exts.len = 0;
	put_ext(&exts, 0,
	        "\0\x0a\0\0\x02"
	        "ab\0\0\x02"
	        "cd",
	        12);
	make_hello(&h, &exts, 16384);
	assert_int_equal(tlshello_peek(h.b, h.len, &th), TLSHELLO_BAD);
	/* A name with a byte a host name has not. */
	exts.len = 0;
	put_sni(&exts, "a example");
	make_hello(&h, &exts, 16384);
	assert_int_equal(tlshello_peek(h.b, h.len, &th), TLSHELLO_BAD);
	/* An empty ALPN id. */
	exts.len = 0;
	put_ext(&exts, 16, "\0\x04\x02h2\x00", 6);
	make_hello(&h, &exts, 16384);
	assert_int_equal(tlshello_peek(h.b, h.len, &th), TLSHELLO_BAD);
	/* Extensions whose length is not the rest of the hello (record 5, header 4, fields 43). */
	exts.len = 0;
	put_alpn(&exts, "h2");
	make_hello(&h, &exts, 16384);
	assert_int_equal(h.b[52] << 8 | h.b[53], exts.len);
	h.b[53]++;
	assert_int_equal(tlshello_peek(h.b, h.len, &th), TLSHELLO_BAD);
	h.b[53] -= 2;
	assert_int_equal(tlshello_peek(h.b, h.len, &th), TLSHELLO_BAD);
	/* The hello's own length past its bound. */
	h.b[6] = 1;
	assert_int_equal(tlshello_peek(h.b, h.len, &th), TLSHELLO_BAD);
}

static void
test_other_first_bytes(void **state)
{
	enum legacy_proto p;

	assert_int_equal(classify("{\"message\":\"initialize\"}\n", &p), LEGACY_FIVED);
	assert_int_equal(classify_with(&all, "\xf5\x01", 2, &p), LEGACY_FIVED);
	assert_int_equal(classify_with(&all, "", 0, &p), LEGACY_NEED_MORE);
	assert_int_equal(classify_with(&all, "\x16", 1, &p), LEGACY_NEED_MORE);
	assert_string_equal(legacy_proto_name(LEGACY_SSH), "ssh");
	assert_string_equal(legacy_proto_name(LEGACY_HTTP), "http");
	assert_string_equal(legacy_proto_name(LEGACY_TLS), "tls");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ssh),
	        cmocka_unit_test(test_ssh_line_bound),
	        cmocka_unit_test(test_http),
	        cmocka_unit_test(test_http_line_bound),
	        cmocka_unit_test(test_hello_asks_for_fived),
	        cmocka_unit_test(test_hello_for_another),
	        cmocka_unit_test(test_hello_in_small_records),
	        cmocka_unit_test(test_hello_malformed),
	        cmocka_unit_test(test_other_first_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
