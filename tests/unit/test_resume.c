/* ATTACH's line and reply (docs/PROTOCOL.md 12.5): round trips and every malformed form refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "proto/line.h"
#include "proto/resume.h"

static void
test_attach_line_round_trip(void **state)
{
	uint8_t ticket[MUX_TICKET_LEN], back[MUX_TICKET_LEN];
	char line[RESUME_ATTACH_LINE_MAX], text[LINE_MAX_BYTES];
	struct cmd c;
	const char *why;
	uint64_t received;
	size_t n, used;
	unsigned i;

	for (i = 0; i < sizeof(ticket); i++)
		ticket[i] = (uint8_t)(i * 7 + 251);
	n = resume_attach_line(line, sizeof(line), ticket, UINT64_MAX);
	assert_int_equal(n, strlen(line));
	assert_int_equal(n, sizeof(line) - 1);
	assert_int_equal(line_take((const uint8_t *)line, n, text, &used), LINE_OK);
	assert_int_equal(cmd_parse(text, &c, &why), 0);
	assert_int_equal(c.kind, CMD_ATTACH);
	assert_int_equal(resume_attach_parse(c.args[0], c.args[1], back, &received),
	                 RESUME_ATTACH_OK);
	assert_memory_equal(back, ticket, sizeof(ticket));
	assert_true(received == UINT64_MAX);
	/* Which argument is malformed is told apart, and no ticket is left behind. */
	assert_int_equal(resume_attach_parse(c.args[0], "01", back, &received),
	                 RESUME_ATTACH_BAD_COUNT);
	assert_true(sodium_is_zero(back, sizeof(back)));
	assert_int_equal(resume_attach_parse("x", c.args[1], back, &received),
	                 RESUME_ATTACH_BAD_TICKET);
	assert_int_equal(resume_attach_line(line, sizeof(line) - 1, ticket, UINT64_MAX), 0);
}

static void
test_counts(void **state)
{
	uint64_t n;

	assert_int_equal(resume_count_parse("0", &n), 0);
	assert_true(n == 0);
	assert_int_equal(resume_count_parse("18446744073709551615", &n), 0);
	assert_true(n == UINT64_MAX);
	assert_int_equal(resume_count_parse("18446744073709551616", &n), -1);
	assert_int_equal(resume_count_parse("00", &n), -1);
	assert_int_equal(resume_count_parse("01", &n), -1);
	assert_int_equal(resume_count_parse("", &n), -1);
	assert_int_equal(resume_count_parse("-1", &n), -1);
	assert_int_equal(resume_count_parse("+1", &n), -1);
	assert_int_equal(resume_count_parse("1 ", &n), -1);
}

static void
test_tickets_strict(void **state)
{
	uint8_t ticket[MUX_TICKET_LEN];
	char text[RESUME_TICKET_TEXT_LEN + 2];

	memset(ticket, 0xff, sizeof(ticket));
	resume_ticket_encode(ticket, text);
	assert_int_equal(strlen(text), RESUME_TICKET_TEXT_LEN);
	assert_int_equal(resume_ticket_decode(text, ticket), 0);
	/* Standard base64's alphabet, padding, or one character more or less: refused. */
	text[0] = '+';
	assert_int_equal(resume_ticket_decode(text, ticket), -1);
	text[0] = '_';
	text[RESUME_TICKET_TEXT_LEN] = '=';
	text[RESUME_TICKET_TEXT_LEN + 1] = '\0';
	assert_int_equal(resume_ticket_decode(text, ticket), -1);
	text[RESUME_TICKET_TEXT_LEN - 1] = '\0';
	assert_int_equal(resume_ticket_decode(text, ticket), -1);
	assert_int_equal(resume_ticket_decode("\x80", ticket), -1);
}

static void
test_attached_reply(void **state)
{
	uint8_t ticket[MUX_TICKET_LEN], back[MUX_TICKET_LEN];
	char line[256];
	const char *text;
	uint64_t received;
	uint32_t timeout_s;
	int ok;
	size_t n;

	memset(ticket, 0x3c, sizeof(ticket));
	n = resume_attached_reply(line, sizeof(line), 4096, 900, ticket);
	assert_true(n > 2);
	line[n - 2] = '\0';
	assert_int_equal(reply_parse(line, &ok, &text), 0);
	assert_true(ok);
	assert_int_equal(resume_attached_parse(text, &received, &timeout_s, back), 0);
	assert_true(received == 4096);
	assert_int_equal(timeout_s, 900);
	assert_memory_equal(back, ticket, sizeof(ticket));
	assert_int_equal(resume_attached_parse("ATTACHED 1 2", &received, &timeout_s, back), -1);
	assert_int_equal(
	        resume_attached_parse("ATTACHED 1 4294967296 x", &received, &timeout_s, back), -1);
	assert_int_equal(resume_attached_parse("MULTIPLEX", &received, &timeout_s, back), -1);
	strcat(line, " more");
	assert_int_equal(reply_parse(line, &ok, &text), 0);
	assert_int_equal(resume_attached_parse(text, &received, &timeout_s, back), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_attach_line_round_trip),
	        cmocka_unit_test(test_counts),
	        cmocka_unit_test(test_tickets_strict),
	        cmocka_unit_test(test_attached_reply),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
