/* Privilege separation messages: what the monitor accepts, and nothing else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/privmsg.h"

static void
test_round_trip(void **state)
{
	struct priv_request req = {.type = PRIV_PUBKEY_CHECK}, back;
	uint8_t msg[PRIVMSG_REQUEST_MAX];
	uint32_t type, len;
	size_t n;

	strcpy(req.user, "alice");
	memset(req.pk, 7, sizeof(req.pk));
	strcpy(req.peer_ip, "192.0.2.1");
	assert_int_equal(privmsg_request_encode(&req, msg, sizeof(msg), &n), 0);
	assert_int_equal(privmsg_header_decode(msg, &type, &len, PRIVMSG_REQUEST_MAX), 0);
	assert_int_equal(type, PRIV_PUBKEY_CHECK);
	assert_int_equal(len, n - PRIVMSG_HEADER);
	assert_int_equal(privmsg_request_decode(type, msg + PRIVMSG_HEADER, len, &back), 0);
	assert_string_equal(back.user, "alice");
	assert_memory_equal(back.pk, req.pk, sizeof(req.pk));
	assert_string_equal(back.peer_ip, "192.0.2.1");
}

static void
test_malformed_requests(void **state)
{
	struct priv_request req = {.type = PRIV_PAM_START}, back;
	uint8_t msg[PRIVMSG_REQUEST_MAX], hdr[PRIVMSG_HEADER] = {0, 0, 0, 99, 0, 0, 0, 0};
	uint32_t type, len;
	size_t n;

	assert_int_equal(privmsg_header_decode(hdr, &type, &len, PRIVMSG_REQUEST_MAX), -1);
	hdr[3] = PRIV_CONFIG;
	hdr[5] = 0x01; /* 65536 bytes: more than any request */
	assert_int_equal(privmsg_header_decode(hdr, &type, &len, PRIVMSG_REQUEST_MAX), -1);
	strcpy(req.user, "alice");
	assert_int_equal(privmsg_request_encode(&req, msg, sizeof(msg), &n), 0);
	len = (uint32_t)(n - PRIVMSG_HEADER);
	/* Trailing bytes, a short body, the wrong type for the body, a bad user name. */
	assert_int_equal(
	        privmsg_request_decode(PRIV_PAM_START, msg + PRIVMSG_HEADER, len + 1, &back), -1);
	assert_int_equal(
	        privmsg_request_decode(PRIV_PAM_START, msg + PRIVMSG_HEADER, len - 1, &back), -1);
	assert_int_equal(
	        privmsg_request_decode(PRIV_PUBKEY_CHECK, msg + PRIVMSG_HEADER, len, &back), -1);
	assert_int_equal(privmsg_request_decode(PRIV_CONFIG, msg + PRIVMSG_HEADER, len, &back), -1);
	strcpy(req.user, "al ice");
	assert_int_equal(privmsg_request_encode(&req, msg, sizeof(msg), &n), 0);
	assert_int_equal(privmsg_request_decode(PRIV_PAM_START, msg + PRIVMSG_HEADER,
	                                        n - PRIVMSG_HEADER, &back),
	                 -1);
}

/* The requests with an argument, a number and a blob keep all three, exactly. */
static void
test_blob_requests(void **state)
{
	static struct priv_request req, back;
	static uint8_t msg[PRIVMSG_REQUEST_MAX];
	uint32_t type, len;
	size_t n;

	memset(&req, 0, sizeof(req));
	req.type = PRIV_TOKEN_ISSUE;
	strcpy(req.arg, "alice");
	req.number = 0x0102030405060708ULL;
	memset(req.blob, 'x', 6000);
	req.blob_len = 6000;
	assert_int_equal(privmsg_request_encode(&req, msg, sizeof(msg), &n), 0);
	assert_int_equal(privmsg_header_decode(msg, &type, &len, PRIVMSG_REQUEST_MAX), 0);
	assert_int_equal(privmsg_request_decode(type, msg + PRIVMSG_HEADER, len, &back), 0);
	assert_string_equal(back.arg, "alice");
	assert_true(back.number == req.number);
	assert_int_equal(back.blob_len, 6000);
	assert_memory_equal(back.blob, req.blob, 6000);
	/* A blob too large for the struct is refused, whatever the frame says. */
	req.blob_len = sizeof(req.blob) + 1;
	assert_int_equal(privmsg_request_encode(&req, msg, sizeof(msg), &n), -1);
	/* DH carries exactly 32 bytes of key. */
	memset(&req, 0, sizeof(req));
	req.type = PRIV_DH;
	memset(req.pk, 9, sizeof(req.pk));
	assert_int_equal(privmsg_request_encode(&req, msg, sizeof(msg), &n), 0);
	assert_int_equal(
	        privmsg_request_decode(PRIV_DH, msg + PRIVMSG_HEADER, n - PRIVMSG_HEADER, &back),
	        0);
	assert_memory_equal(back.pk, req.pk, sizeof(req.pk));
	msg[PRIVMSG_HEADER + 3] = 31; /* the key's length */
	assert_int_equal(
	        privmsg_request_decode(PRIV_DH, msg + PRIVMSG_HEADER, n - PRIVMSG_HEADER, &back),
	        -1);
	/* An account request needs a valid user name. */
	memset(&req, 0, sizeof(req));
	req.type = PRIV_ACCOUNT;
	strcpy(req.user, "../root");
	assert_int_equal(privmsg_request_encode(&req, msg, sizeof(msg), &n), 0);
	assert_int_equal(privmsg_request_decode(PRIV_ACCOUNT, msg + PRIVMSG_HEADER,
	                                        n - PRIVMSG_HEADER, &back),
	                 -1);
}

static void
test_replies(void **state)
{
	uint8_t msg[64];
	struct priv_reply r;
	size_t n;

	assert_int_equal(privmsg_reply_encode(PRIV_LISTEN, false, "13", 2, msg, sizeof(msg), &n),
	                 0);
	assert_int_equal(privmsg_reply_decode(msg + PRIVMSG_HEADER, n - PRIVMSG_HEADER, &r), 0);
	assert_false(r.ok);
	assert_int_equal(r.text_len, 2);
	assert_memory_equal(r.text, "13", 2);
	msg[PRIVMSG_HEADER] = 2; /* ok must be 0 or 1 */
	assert_int_equal(privmsg_reply_decode(msg + PRIVMSG_HEADER, n - PRIVMSG_HEADER, &r), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_round_trip),
	        cmocka_unit_test(test_malformed_requests),
	        cmocka_unit_test(test_blob_requests),
	        cmocka_unit_test(test_replies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
