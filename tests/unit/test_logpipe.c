/* The worker's log lines as the monitor reads them: levels, pieces, overlong lines, the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "server/privsep/logpipe.h"

#define SEEN_MAX 8

static struct {
	enum log_level level;
	long pid;
	char text[LOGPIPE_LINE_MAX];
} seen[SEEN_MAX];
static size_t nseen;

static void
sink(enum log_level level, const char *name, long pid, const char *text)
{
	assert_string_equal(name, "fived");
	assert_true(nseen < SEEN_MAX);
	seen[nseen].level = level;
	seen[nseen].pid = pid;
	strncpy(seen[nseen].text, text, sizeof(seen[nseen].text) - 1);
	nseen++;
}

static int
setup(void **state)
{
	nseen = 0;
	log_sink(sink);
	return 0;
}

static int
teardown(void **state)
{
	log_sink(NULL);
	return 0;
}

static void
put(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static void
test_lines_and_levels(void **state)
{
	struct logpipe lp;
	int w;

	logpipe_init(&lp);
	assert_true((w = logpipe_open(&lp)) >= 0);
	lp.pid = 42;
	put(w, "<0>bad\n<3>detail\nAddressSanitizer: boom\n<2>half");
	logpipe_read(&lp);
	assert_int_equal(nseen, 3);
	assert_int_equal(seen[0].level, LOGL_ERROR);
	assert_string_equal(seen[0].text, "bad");
	assert_int_equal(seen[1].level, LOGL_DEBUG);
	assert_int_equal(seen[1].pid, 42);
	/* Not a line the worker formatted: an error, whole. */
	assert_int_equal(seen[2].level, LOGL_ERROR);
	assert_string_equal(seen[2].text, "AddressSanitizer: boom");
	put(w, " done\n");
	logpipe_read(&lp);
	assert_int_equal(nseen, 4);
	assert_int_equal(seen[3].level, LOGL_INFO);
	assert_string_equal(seen[3].text, "half done");
	/* The writer is gone: its last words without a newline, then the pipe is closed. */
	put(w, "<1>last");
	close(w);
	logpipe_read(&lp);
	assert_int_equal(nseen, 5);
	assert_string_equal(seen[4].text, "last");
	assert_int_equal(lp.fd, -1);
}

static void
test_overlong_line_in_pieces(void **state)
{
	char big[LOGPIPE_LINE_MAX + 100];
	struct logpipe lp;
	int w;

	logpipe_init(&lp);
	assert_true((w = logpipe_open(&lp)) >= 0);
	memset(big, 'x', sizeof(big) - 2);
	big[sizeof(big) - 2] = '\n';
	big[sizeof(big) - 1] = '\0';
	put(w, big);
	logpipe_read(&lp);
	assert_int_equal(nseen, 2);
	assert_int_equal(strlen(seen[0].text), LOGPIPE_LINE_MAX - 1);
	assert_int_equal(strlen(seen[1].text), sizeof(big) - 2 - (LOGPIPE_LINE_MAX - 1));
	close(w);
	logpipe_close(&lp);
	assert_int_equal(nseen, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_lines_and_levels, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_overlong_line_in_pieces, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
