/*
 * The admin socket's messages (src/proto/admin.h): requests both ways,
 * every way one can be malformed, and the replies fivectl reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/admin.h"

#define SESSION_HEX "0123456789abcdef0123456789abcdef"
#define MSG_SIZE    (ADMIN_REQUEST_MAX + 64)

static void
assert_request_round_trip(enum admin_command command, const char *arg, const char *wire)
{
	struct admin_request *r = calloc(1, sizeof(*r)), *back = calloc(1, sizeof(*back));
	char out[MSG_SIZE];
	size_t len;

	r->command = command;
	strcpy(r->arg, arg);
	assert_int_equal(admin_request_encode(r, out, sizeof(out), &len), 0);
	assert_int_equal(len, strlen(wire));
	assert_memory_equal(out, wire, len);
	assert_int_equal(admin_request_decode(out, len, back), 0);
	assert_int_equal(back->command, command);
	assert_string_equal(back->arg, arg);
	free(r);
	free(back);
}

static void
test_request_round_trip(void **state)
{
	assert_request_round_trip(ADMIN_SESSIONS, "", "SESSIONS\n");
	assert_request_round_trip(ADMIN_STATS, "", "STATS\n");
	assert_request_round_trip(ADMIN_GOVERNOR, "", "GOVERNOR\n");
	assert_request_round_trip(ADMIN_RELOAD, "", "RELOAD\n");
	assert_request_round_trip(ADMIN_KILL, SESSION_HEX, "KILL " SESSION_HEX "\n");
	assert_request_round_trip(ADMIN_REVOKE, "v4.public.abc", "REVOKE v4.public.abc\n");
	assert_request_round_trip(ADMIN_STREAMS, SESSION_HEX, "STREAMS " SESSION_HEX "\n");
}

static void
assert_request_rejected(const char *msg, size_t len)
{
	struct admin_request *r = malloc(sizeof(*r));
	static struct admin_request zero;

	memset(r, 0xa5, sizeof(*r));
	if (admin_request_decode(msg, len, r) != -1)
		fail_msg("accepted: %.*s", (int)len, msg);
	assert_memory_equal(r, &zero, sizeof(zero));
	free(r);
}

#define REJECTED(s) assert_request_rejected(s, sizeof(s) - 1)

static void
test_request_rejected(void **state)
{
	REJECTED("");
	REJECTED("\n");
	REJECTED("SESSIONS");       /* no "\n" */
	REJECTED("sessions\n");     /* verbs are upper case */
	REJECTED("SESSIONS \n");    /* a space without an argument */
	REJECTED("SESSIONS all\n"); /* an argument it does not take */
	REJECTED("KILL\n");         /* one it needs */
	REJECTED("KILL 0123\n");    /* not a whole id */
	REJECTED("KILL " SESSION_HEX "0\n");
	REJECTED("KILL 0123456789ABCDEF0123456789abcdef\n"); /* lowercase only */
	REJECTED("REVOKE a b\n");                            /* a token has no space */
	REJECTED("REVOKE a\tb\n");
	REJECTED("STATS\n\n");
	REJECTED("STATS\r\n");
	REJECTED("NOSUCH\n");
	assert_request_rejected("STATS\0\n", 7);
	assert_request_rejected("REVOKE \xff\n", 9);
}

static void
test_request_bounds(void **state)
{
	struct admin_request *r = calloc(1, sizeof(*r));
	char *msg = malloc(ADMIN_REQUEST_MAX + 2);
	size_t len;

	/* The longest argument passes; one more is refused both ways. */
	r->command = ADMIN_REVOKE;
	memset(r->arg, 'a', ADMIN_ARG_MAX);
	assert_int_equal(admin_request_encode(r, msg, ADMIN_REQUEST_MAX + 2, &len), 0);
	assert_int_equal(admin_request_decode(msg, len, r), 0);
	assert_int_equal(strlen(r->arg), ADMIN_ARG_MAX);
	memcpy(msg, "REVOKE ", 7);
	memset(msg + 7, 'a', ADMIN_ARG_MAX + 1);
	msg[7 + ADMIN_ARG_MAX + 1] = '\n';
	assert_int_equal(admin_request_decode(msg, 7 + ADMIN_ARG_MAX + 2, r), -1);
	/* Encoding refuses what decoding would: no space, a valid id, a command. */
	memset(r, 0, sizeof(*r));
	r->command = ADMIN_REVOKE;
	strcpy(r->arg, "a b");
	assert_int_equal(admin_request_encode(r, msg, ADMIN_REQUEST_MAX, &len), -1);
	r->command = ADMIN_KILL;
	strcpy(r->arg, "nothex");
	assert_int_equal(admin_request_encode(r, msg, ADMIN_REQUEST_MAX, &len), -1);
	r->command = ADMIN_STREAMS;
	assert_int_equal(admin_request_encode(r, msg, ADMIN_REQUEST_MAX, &len), -1);
	r->command = 0;
	r->arg[0] = '\0';
	assert_int_equal(admin_request_encode(r, msg, ADMIN_REQUEST_MAX, &len), -1);
	r->command = ADMIN_STATS;
	assert_int_equal(admin_request_encode(r, msg, 4, &len), -1);
	free(r);
	free(msg);
}

static void
test_command_words(void **state)
{
	assert_int_equal(admin_command_named("sessions"), ADMIN_SESSIONS);
	assert_int_equal(admin_command_named("revoke"), ADMIN_REVOKE);
	assert_int_equal(admin_command_named("SESSIONS"), 0);
	assert_int_equal(admin_command_named(""), 0);
	assert_true(admin_command_has_arg(ADMIN_KILL));
	assert_int_equal(admin_command_named("streams"), ADMIN_STREAMS);
	assert_true(admin_command_has_arg(ADMIN_STREAMS));
	assert_false(admin_command_has_arg(ADMIN_RELOAD));
}

static void
test_reply_ok(void **state)
{
	char out[256], reason[ADMIN_REASON_MAX + 1];
	json_t *o = json_pack("{s:i,s:s}", "sessions", 2, "name", "x"), *back;
	size_t len;
	bool ok;

	assert_int_equal(admin_reply_ok(o, out, sizeof(out), &len), 0);
	assert_string_equal(out, "+ {\"sessions\":2,\"name\":\"x\"}\n");
	assert_int_equal(admin_reply_decode(out, len, &ok, &back, reason), 0);
	assert_true(ok);
	assert_true(json_equal(o, back));
	assert_string_equal(reason, "");
	json_decref(back);
	/* Too small a buffer, or no object, is no reply. */
	assert_int_equal(admin_reply_ok(o, out, 10, &len), -1);
	json_decref(o);
	o = json_array();
	assert_int_equal(admin_reply_ok(o, out, sizeof(out), &len), -1);
	json_decref(o);
}

static void
test_reply_refused(void **state)
{
	char out[ADMIN_REASON_MAX + 8], reason[ADMIN_REASON_MAX + 1],
	        long_reason[ADMIN_REASON_MAX + 2];
	json_t *body;
	size_t len;
	bool ok;

	assert_int_equal(admin_reply_refuse("no such session", out, sizeof(out), &len), 0);
	assert_string_equal(out, "- no such session\n");
	assert_int_equal(admin_reply_decode(out, len, &ok, &body, reason), 0);
	assert_false(ok);
	assert_null(body);
	assert_string_equal(reason, "no such session");
	assert_int_equal(admin_reply_refuse("", out, sizeof(out), &len), -1);
	assert_int_equal(admin_reply_refuse("two\nlines", out, sizeof(out), &len), -1);
	memset(long_reason, 'r', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	assert_int_equal(admin_reply_refuse(long_reason, out, sizeof(out), &len), -1);
}

static void
assert_reply_rejected(const char *msg)
{
	char reason[ADMIN_REASON_MAX + 1];
	json_t *body = (json_t *)1;
	bool ok = true;

	if (admin_reply_decode(msg, strlen(msg), &ok, &body, reason) != -1)
		fail_msg("accepted: %s", msg);
	assert_false(ok);
	assert_null(body);
}

static void
test_reply_rejected(void **state)
{
	assert_reply_rejected("");
	assert_reply_rejected("+\n");
	assert_reply_rejected("+ {}");
	assert_reply_rejected("+ []\n");
	assert_reply_rejected("+ {\"a\":1,\"a\":2}\n");
	assert_reply_rejected("+ {\"a\":1}\n{}\n");
	assert_reply_rejected("+{\"a\":1}\n");
	assert_reply_rejected("- \n");
	assert_reply_rejected("- bad\tbyte\n");
	assert_reply_rejected("* what\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_request_round_trip), cmocka_unit_test(test_request_rejected),
	        cmocka_unit_test(test_request_bounds),     cmocka_unit_test(test_command_words),
	        cmocka_unit_test(test_reply_ok),           cmocka_unit_test(test_reply_refused),
	        cmocka_unit_test(test_reply_rejected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
