/* The text dialect's line and command parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/line.h"

static enum line_status
take(const char *data, char *out, size_t *used)
{
	return line_take((const uint8_t *)data, strlen(data), out, used);
}

static void
test_crlf_and_lf(void **state)
{
	char out[LINE_MAX_BYTES];
	size_t used;

	assert_int_equal(take("echo\r\nrest", out, &used), LINE_OK);
	assert_string_equal(out, "echo");
	assert_int_equal(used, 6);
	assert_int_equal(take("echo\nrest", out, &used), LINE_OK);
	assert_string_equal(out, "echo");
	assert_int_equal(used, 5);
	assert_int_equal(take("\n", out, &used), LINE_OK);
	assert_string_equal(out, "");
}

static void
test_incomplete(void **state)
{
	char out[LINE_MAX_BYTES];
	size_t used;

	assert_int_equal(take("", out, &used), LINE_NEED_MORE);
	assert_int_equal(take("ech", out, &used), LINE_NEED_MORE);
	/* A CR at the end may be the first half of CRLF. */
	assert_int_equal(take("echo\r", out, &used), LINE_NEED_MORE);
}

static void
test_bad_bytes(void **state)
{
	char out[LINE_MAX_BYTES];
	size_t used;

	assert_int_equal(take("ec\tho\r\n", out, &used), LINE_BAD_BYTE);
	assert_int_equal(take("ec\rho\r\n", out, &used), LINE_BAD_BYTE);
	assert_int_equal(take("\x7f\n", out, &used), LINE_BAD_BYTE);
	assert_int_equal(take("\xc3\xa9\n", out, &used), LINE_BAD_BYTE);
	assert_int_equal(line_take((const uint8_t *)"a\0b\n", 4, out, &used), LINE_BAD_BYTE);
	/* Reported before any terminator arrives. */
	assert_int_equal(take("\x16\x03\x01", out, &used), LINE_BAD_BYTE);
}

static void
test_length_limit(void **state)
{
	char data[LINE_MAX_BYTES + 2];
	char out[LINE_MAX_BYTES];
	size_t used;

	/* 510 characters and CRLF: exactly the limit. */
	memset(data, 'a', LINE_MAX_BYTES - 2);
	memcpy(data + LINE_MAX_BYTES - 2, "\r\n", 3);
	assert_int_equal(take(data, out, &used), LINE_OK);
	assert_int_equal(strlen(out), LINE_MAX_BYTES - 2);
	/* 511 characters and LF: also the limit. */
	memset(data, 'a', LINE_MAX_BYTES - 1);
	memcpy(data + LINE_MAX_BYTES - 1, "\n", 2);
	assert_int_equal(take(data, out, &used), LINE_OK);
	/* 512 characters without a terminator: too long, known without waiting. */
	memset(data, 'a', LINE_MAX_BYTES);
	data[LINE_MAX_BYTES] = '\0';
	assert_int_equal(take(data, out, &used), LINE_TOO_LONG);
	/* 511 characters and CRLF is one byte over. */
	memset(data, 'a', LINE_MAX_BYTES - 1);
	memcpy(data + LINE_MAX_BYTES - 1, "\r\n", 3);
	assert_int_equal(take(data, out, &used), LINE_TOO_LONG);
}

static void
test_commands(void **state)
{
	struct cmd c;
	const char *why;

	assert_int_equal(cmd_parse("help", &c, &why), 0);
	assert_int_equal(c.kind, CMD_HELP);
	assert_int_equal(cmd_parse("LIST", &c, &why), 0);
	assert_int_equal(c.kind, CMD_LIST);
	assert_int_equal(c.nargs, 0);
	assert_int_equal(cmd_parse("List  echo ", &c, &why), 0);
	assert_int_equal(c.kind, CMD_LIST);
	assert_int_equal(c.nargs, 1);
	assert_string_equal(c.args[0], "echo");
	assert_int_equal(cmd_parse("HOST example.org", &c, &why), 0);
	assert_int_equal(c.kind, CMD_HOST);
	assert_string_equal(c.args[0], "example.org");
	assert_int_equal(cmd_parse("quit", &c, &why), 0);
	assert_int_equal(c.kind, CMD_QUIT);
	/* A bare HOST asks for the vhosts (the slides' "Which VHOST?"). */
	assert_int_equal(cmd_parse("HOST", &c, &why), 0);
	assert_int_equal(c.kind, CMD_HOST);
	assert_int_equal(c.nargs, 0);
	assert_int_equal(cmd_parse("HOST a b", &c, &why), -1);
	assert_int_equal(cmd_parse("QUIT now", &c, &why), -1);
	assert_int_equal(cmd_parse("HELP me", &c, &why), -1);
}

static void
test_service_names(void **state)
{
	struct cmd c;
	const char *why;

	assert_int_equal(cmd_parse("Echo", &c, &why), 0);
	assert_int_equal(c.kind, CMD_SERVICE);
	assert_string_equal(c.word, "echo");
	assert_int_equal(cmd_parse("research-db.v2", &c, &why), 0);
	assert_string_equal(c.word, "research-db.v2");
	assert_int_equal(cmd_parse("ssh token", &c, &why), 0);
	assert_int_equal(c.nargs, 1);
	assert_int_equal(cmd_parse("", &c, &why), -1);
	assert_string_equal(why, "empty request");
	assert_int_equal(cmd_parse("   ", &c, &why), -1);
	assert_int_equal(cmd_parse("-x", &c, &why), -1);
	assert_int_equal(cmd_parse("a/b", &c, &why), -1);
	assert_int_equal(cmd_parse("ssh a b", &c, &why), -1);
	assert_int_equal(cmd_parse("a b c d e f", &c, &why), -1);
	assert_int_equal(
	        cmd_parse("x1234567890123456789012345678901234567890123456789012345678901234", &c,
	                  &why),
	        -1);
}

static void
test_names(void **state)
{
	assert_true(name_valid("echo"));
	assert_false(name_valid(".echo"));
	assert_false(name_valid(""));
	assert_true(name_reserved("List"));
	assert_true(name_reserved("multiplex"));
	assert_false(name_reserved("echo"));
	assert_true(vhost_name_valid("db.example.org"));
	assert_false(vhost_name_valid("a b"));
}

static void
test_replies(void **state)
{
	const char *text;
	int ok;

	assert_int_equal(reply_parse("+", &ok, &text), 0);
	assert_true(ok);
	assert_string_equal(text, "");
	assert_int_equal(reply_parse("- unknown service", &ok, &text), 0);
	assert_false(ok);
	assert_string_equal(text, "unknown service");
	assert_int_equal(reply_parse("+Go", &ok, &text), 0);
	assert_string_equal(text, "Go");
	assert_int_equal(reply_parse("SSH-2.0", &ok, &text), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_crlf_and_lf), cmocka_unit_test(test_incomplete),
	        cmocka_unit_test(test_bad_bytes),   cmocka_unit_test(test_length_limit),
	        cmocka_unit_test(test_commands),    cmocka_unit_test(test_service_names),
	        cmocka_unit_test(test_names),       cmocka_unit_test(test_replies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
