/* MULTIPLEX framing: every frame type both ways, and every malformed form refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/mux.h"

static enum mux_status
decode(const uint8_t *in, size_t len, struct mux_frame *f, const char **why)
{
	size_t used = 0;
	enum mux_status st = mux_decode(in, len, f, &used, why);

	if (st == MUX_OK)
		assert_int_equal(used, MUX_HEADER_LEN + f->len);
	return st;
}

static void
test_open_round_trip(void **state)
{
	uint8_t buf[MUX_FRAME_MAX];
	struct mux_frame f;
	const char *why;
	size_t n =
	        mux_encode_open(buf, sizeof(buf), 5, "echo", "a.example", "v4.public.x", "hi", 2);

	assert_int_equal(n, MUX_HEADER_LEN + 4 + 4 + 9 + 11 + 2);
	assert_int_equal(decode(buf, n, &f, &why), MUX_OK);
	assert_int_equal(f.id, 5);
	assert_int_equal(f.type, MUX_OPEN);
	assert_string_equal(f.u.open.service, "echo");
	assert_string_equal(f.u.open.vhost, "a.example");
	assert_int_equal(f.u.open.token_len, 11);
	assert_memory_equal(f.u.open.token, "v4.public.x", 11);
	assert_int_equal(f.u.open.data_len, 2);
	assert_memory_equal(f.u.open.data, "hi", 2);
	/* Every prefix is incomplete, never wrong. */
	while (--n > 0)
		assert_int_equal(decode(buf, n, &f, &why), MUX_NEED_MORE);
}

static void
test_open_without_vhost_token_data(void **state)
{
	uint8_t buf[64];
	struct mux_frame f;
	const char *why;
	size_t n = mux_encode_open(buf, sizeof(buf), 1, "ssh", "", NULL, NULL, 0);

	assert_int_equal(decode(buf, n, &f, &why), MUX_OK);
	assert_string_equal(f.u.open.vhost, "");
	assert_int_equal(f.u.open.token_len, 0);
	assert_int_equal(f.u.open.data_len, 0);
	/* Client streams are odd; a service name is not empty. */
	assert_int_equal(mux_encode_open(buf, sizeof(buf), 2, "ssh", "", NULL, NULL, 0), 0);
	assert_int_equal(mux_encode_open(buf, sizeof(buf), 1, "", "", NULL, NULL, 0), 0);
	assert_int_equal(mux_encode_open(buf, 10, 1, "ssh", "", NULL, NULL, 0), 0);
}

static void
expect_bad(const uint8_t *in, size_t len, const char *reason)
{
	struct mux_frame f;
	const char *why = NULL;

	assert_int_equal(decode(in, len, &f, &why), MUX_BAD);
	assert_string_equal(why, reason);
}

static void
test_header_refused_at_once(void **state)
{
	uint8_t h[MUX_HEADER_LEN];

	mux_header(h, 1, MUX_DATA, 0, MUX_PAYLOAD_MAX + 1);
	expect_bad(h, sizeof(h), "protocol error: frame too long");
	mux_header(h, 1, (enum mux_type)(MUX_RECEIVED + 1), 0, 1);
	expect_bad(h, sizeof(h), "protocol error: unknown frame type");
	mux_header(h, 1, MUX_DATA, MUX_FLAG_ACK, 1);
	expect_bad(h, sizeof(h), "protocol error: unknown flag");
	mux_header(h, 0, MUX_PING, 0x02, MUX_PING_LEN);
	expect_bad(h, sizeof(h), "protocol error: unknown flag");
}

static void
test_malformed_payloads(void **state)
{
	uint8_t buf[64];
	size_t n;

	mux_header(buf, 1, MUX_DATA, 0, 0);
	expect_bad(buf, MUX_HEADER_LEN, "protocol error: empty DATA");
	mux_header(buf, 1, MUX_FIN, 0, 1);
	expect_bad(buf, MUX_HEADER_LEN + 1, "protocol error: payload on an empty frame");
	mux_header(buf, 0, MUX_DATA, 0, 1);
	expect_bad(buf, MUX_HEADER_LEN + 1, "protocol error: stream frame on stream 0");
	n = mux_encode_ping(buf, sizeof(buf), 0, (const uint8_t *)"12345678");
	buf[3] = 3;
	expect_bad(buf, n, "protocol error: session frame on a stream");
	mux_header(buf, 1, MUX_WINDOW, 0, 4);
	memset(buf + MUX_HEADER_LEN, 0, 4);
	expect_bad(buf, MUX_HEADER_LEN + 4, "protocol error: malformed WINDOW");
	memset(buf + MUX_HEADER_LEN, 0xff, 4);
	expect_bad(buf, MUX_HEADER_LEN + 4, "protocol error: malformed WINDOW");
	/* OPEN: a name longer than its frame, a control byte in a name, an empty service. */
	n = mux_encode_open(buf, sizeof(buf), 1, "echo", "", NULL, NULL, 0);
	buf[MUX_HEADER_LEN] = 40;
	expect_bad(buf, n, "protocol error: malformed OPEN");
	n = mux_encode_open(buf, sizeof(buf), 1, "echo", "", NULL, NULL, 0);
	buf[MUX_HEADER_LEN + 2] = '\n';
	expect_bad(buf, n, "protocol error: malformed OPEN");
	n = mux_encode_open(buf, sizeof(buf), 1, "echo", "", NULL, NULL, 0);
	buf[MUX_HEADER_LEN] = 0;
	expect_bad(buf, n, "protocol error: malformed OPEN");
	n = mux_encode_rst(buf, sizeof(buf), 1, MUX_RST_REFUSED, "no");
	buf[MUX_HEADER_LEN + 1] = 0x7f;
	expect_bad(buf, n, "protocol error: malformed RST");
	mux_header(buf, 0, MUX_GOAWAY, 0, 3);
	expect_bad(buf, MUX_HEADER_LEN + 3, "protocol error: malformed GOAWAY");
}

static void
test_control_frames(void **state)
{
	uint8_t buf[512];
	struct mux_frame f;
	const char *why;
	char longer[400];
	size_t n;

	n = mux_encode_window(buf, sizeof(buf), 0, 65536);
	assert_int_equal(decode(buf, n, &f, &why), MUX_OK);
	assert_int_equal(f.u.credit, 65536);
	assert_int_equal(mux_encode_window(buf, sizeof(buf), 1, 0), 0);
	n = mux_encode_rst(buf, sizeof(buf), 7, MUX_RST_REFUSED, "not permitted");
	assert_int_equal(decode(buf, n, &f, &why), MUX_OK);
	assert_int_equal(f.u.end.code, MUX_RST_REFUSED);
	assert_string_equal(f.u.end.reason, "not permitted");
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	n = mux_encode_goaway(buf, sizeof(buf), 9, MUX_GOAWAY_NORMAL, longer);
	assert_int_equal(decode(buf, n, &f, &why), MUX_OK);
	assert_int_equal(f.u.end.last_id, 9);
	assert_int_equal(strlen(f.u.end.reason), MUX_REASON_MAX);
	n = mux_encode_ping(buf, sizeof(buf), MUX_FLAG_ACK, (const uint8_t *)"abcdefgh");
	assert_int_equal(decode(buf, n, &f, &why), MUX_OK);
	assert_int_equal(f.flags, MUX_FLAG_ACK);
	assert_memory_equal(f.payload, "abcdefgh", MUX_PING_LEN);
	n = mux_encode_empty(buf, sizeof(buf), 3, MUX_ACCEPT);
	assert_int_equal(decode(buf, n, &f, &why), MUX_OK);
	assert_int_equal(f.type, MUX_ACCEPT);
	assert_int_equal(mux_encode_empty(buf, sizeof(buf), 0, MUX_FIN), 0);
	assert_int_equal(mux_encode_empty(buf, sizeof(buf), 3, MUX_DATA), 0);
}

static void
test_windows(void **state)
{
	uint64_t w = MUX_STREAM_WINDOW;

	assert_int_equal(mux_window_add(&w, 1000), 0);
	assert_int_equal(w, MUX_STREAM_WINDOW + 1000);
	w = MUX_WINDOW_LIMIT - 1;
	assert_int_equal(mux_window_add(&w, 2), -1);
	assert_int_equal(w, MUX_WINDOW_LIMIT - 1);
	assert_int_equal(mux_window_add(&w, 1), 0);
}

/* Section 12: DETACHABLE's three forms and RECEIVED, and which frames are counted. */
static void
test_detachable_and_received(void **state)
{
	uint8_t buf[128], ticket[MUX_TICKET_LEN];
	struct mux_frame f;
	const char *why;
	size_t n;

	n = mux_encode_detach_request(buf, sizeof(buf));
	assert_int_equal(decode(buf, n, &f, &why), MUX_OK);
	assert_int_equal(f.type, MUX_DETACHABLE);
	assert_true(f.u.detach.request);
	memset(ticket, 0xa5, sizeof(ticket));
	n = mux_encode_detach_grant(buf, sizeof(buf), 900, ticket);
	assert_int_equal(n, MUX_HEADER_LEN + 1 + 4 + MUX_TICKET_LEN);
	assert_int_equal(decode(buf, n, &f, &why), MUX_OK);
	assert_false(f.u.detach.request);
	assert_int_equal(f.u.detach.code, MUX_DETACH_GRANTED);
	assert_int_equal(f.u.detach.timeout_s, 900);
	assert_memory_equal(f.u.detach.ticket, ticket, MUX_TICKET_LEN);
	/* A grant cut short is malformed, not a refusal. */
	buf[7]--;
	assert_int_equal(decode(buf, n - 1, &f, &why), MUX_BAD);
	n = mux_encode_detach_refusal(buf, sizeof(buf), MUX_DETACH_LIMIT, "too many");
	assert_int_equal(decode(buf, n, &f, &why), MUX_OK);
	assert_int_equal(f.u.detach.code, MUX_DETACH_LIMIT);
	assert_string_equal(f.u.detach.reason, "too many");
	assert_int_equal(mux_encode_detach_refusal(buf, sizeof(buf), MUX_DETACH_GRANTED, "x"), 0);
	buf[MUX_HEADER_LEN] = 3; /* no such code */
	assert_int_equal(decode(buf, n, &f, &why), MUX_BAD);
	n = mux_encode_received(buf, sizeof(buf), 0x0102030405060708ULL);
	assert_int_equal(decode(buf, n, &f, &why), MUX_OK);
	assert_int_equal(f.type, MUX_RECEIVED);
	assert_true(f.u.received == 0x0102030405060708ULL);
	buf[3] = 1; /* on a stream */
	assert_int_equal(decode(buf, n, &f, &why), MUX_BAD);
	assert_true(mux_type_counted(MUX_DATA) && mux_type_counted(MUX_WINDOW) &&
	            mux_type_counted(MUX_RST) && mux_type_counted(MUX_OPEN));
	assert_false(mux_type_counted(MUX_PING) || mux_type_counted(MUX_GOAWAY) ||
	             mux_type_counted(MUX_DETACHABLE) || mux_type_counted(MUX_RECEIVED));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_open_round_trip),
	        cmocka_unit_test(test_open_without_vhost_token_data),
	        cmocka_unit_test(test_header_refused_at_once),
	        cmocka_unit_test(test_malformed_payloads),
	        cmocka_unit_test(test_control_frames),
	        cmocka_unit_test(test_windows),
	        cmocka_unit_test(test_detachable_and_received),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
