/* The audit log's journal entries, read back from a datagram socketpair as journald would. */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/policy/auditlog.h"

#define FIELDS_MAX 32

struct field {
	char name[65];
	char value[AUDITLOG_ENTRY_MAX];
	size_t len;
};

static struct field fields[FIELDS_MAX];
static size_t nfields;

/* Decodes one datagram of the native protocol into fields. */
static void
decode(const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len, *nl, *eq;
	uint64_t n;
	size_t i;

	for (nfields = 0; p < end; nfields++) {
		assert_true(nfields < FIELDS_MAX);
		nl = memchr(p, '\n', (size_t)(end - p));
		assert_non_null(nl);
		eq = memchr(p, '=', (size_t)(nl - p));
		if (eq != NULL) {
			snprintf(fields[nfields].name, sizeof(fields[0].name), "%.*s",
			         (int)(eq - p), p);
			fields[nfields].len = (size_t)(nl - eq - 1);
			memcpy(fields[nfields].value, eq + 1, fields[nfields].len);
			p = nl + 1;
			continue;
		}
		snprintf(fields[nfields].name, sizeof(fields[0].name), "%.*s", (int)(nl - p), p);
		assert_true(end - nl > 9);
		for (n = 0, i = 0; i < 8; i++)
			n |= (uint64_t)nl[1 + i] << (8 * i);
		assert_true(n <= (uint64_t)(end - nl - 10));
		memcpy(fields[nfields].value, nl + 9, n);
		fields[nfields].len = n;
		assert_int_equal(nl[9 + n], '\n');
		p = nl + 10 + n;
	}
}

static const char *
get(const char *name)
{
	size_t i;

	for (i = 0; i < nfields; i++)
		if (strcmp(fields[i].name, name) == 0) {
			fields[i].value[fields[i].len] = '\0';
			return fields[i].value;
		}
	return NULL;
}

static size_t
receive(int fd)
{
	static uint8_t dgram[AUDITLOG_ENTRY_MAX];
	ssize_t n = recv(fd, dgram, sizeof(dgram), MSG_DONTWAIT);

	assert_true(n > 0);
	decode(dgram, (size_t)n);
	return (size_t)n;
}

static void
test_entry_fields(void **state)
{
	struct auditlog *a;
	json_t *record;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	assert_non_null(a = auditlog_open("journal", sv[0]));
	record = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:b}", "event", "granted", "session", "ab12",
	                   "src", "192.0.2.7", "src_port", 4242, "service", "echo", "reason",
	                   "two\nlines", "early-data", 1);
	assert_int_equal(auditlog_write(a, record), 0);
	receive(sv[1]);
	assert_string_equal(get("MESSAGE"), "granted session ab12 from 192.0.2.7 service echo");
	assert_string_equal(get("MESSAGE_ID"), AUDITLOG_MESSAGE_ID);
	assert_string_equal(get("PRIORITY"), "6");
	assert_string_equal(get("SYSLOG_IDENTIFIER"), "fived");
	assert_string_equal(get("FIVED_EVENT"), "granted");
	assert_string_equal(get("FIVED_SESSION"), "ab12");
	assert_string_equal(get("FIVED_SRC_PORT"), "4242");
	/* A value with a newline goes in the binary form, whole. */
	assert_string_equal(get("FIVED_REASON"), "two\nlines");
	assert_string_equal(get("FIVED_EARLY_DATA"), "true");
	assert_non_null(get("FIVED_TIME"));
	assert_non_null(strstr(get("FIVED_RECORD"), "\"src_port\":4242"));
	assert_null(strchr(get("FIVED_RECORD"), '\n'));
	auditlog_close(a);
	close(sv[1]);
}

static void
test_refusal_is_notice(void **state)
{
	struct auditlog *a;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	assert_non_null(a = auditlog_open("journal", sv[0]));
	assert_int_equal(auditlog_write(a, json_pack("{s:s,s:s,s:s}", "event", "auth_failed",
	                                             "session", "cd34", "src", "local")),
	                 0);
	receive(sv[1]);
	assert_string_equal(get("PRIORITY"), "5");
	assert_string_equal(get("MESSAGE"), "auth_failed session cd34 from local");
	auditlog_close(a);
	close(sv[1]);
}

/* A journal that is gone loses the record, and says so: audit_required's refusals follow. */
static void
test_lost_when_the_journal_is_gone(void **state)
{
	struct auditlog *a;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	assert_non_null(a = auditlog_open("journal", sv[0]));
	close(sv[1]);
	assert_int_equal(auditlog_write(a, json_pack("{s:s}", "event", "accepted")), -1);
	auditlog_close(a);
}

/* An entry past AUDITLOG_ENTRY_MAX is not cut: it is lost whole. */
static void
test_oversized_record_lost(void **state)
{
	static char big[AUDITLOG_ENTRY_MAX];
	struct auditlog *a;
	int sv[2];

	memset(big, 'x', sizeof(big) - 1);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	assert_non_null(a = auditlog_open("journal", sv[0]));
	assert_int_equal(
	        auditlog_write(a, json_pack("{s:s,s:s}", "event", "refused", "reason", big)), -1);
	assert_int_equal(recv(sv[1], big, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	auditlog_close(a);
	close(sv[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_entry_fields),
	        cmocka_unit_test(test_refusal_is_notice),
	        cmocka_unit_test(test_lost_when_the_journal_is_gone),
	        cmocka_unit_test(test_oversized_record_lost),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
