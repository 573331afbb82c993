/*
 * Whole sessions in-process (tests/harness/): a table of client inputs and
 * what the client must receive, each answer as the end-to-end tests
 * (tests/e2e/test_dialect.py, test_usp.py, test_sealed.py, test_auth.py,
 * test_tls.py) assert it for the same input, and the close reason the
 * audit log gives.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness/session_harness.h"

/* Pieces a case writes, one write each. */
#define PIECES_MAX 4

/* Stands for the session's id in an expected output. */
#define SID_MARK "@SID@"

/* An expected output with the session id put in. */
#define EXPECTED_MAX 4096

/* Writes a case makes once its pieces are split byte by byte. */
#define WRITES_MAX 1024

#define PIECE(s)                                                                                   \
	{                                                                                          \
		.data = (s), .len = sizeof(s) - 1                                                  \
	}

#define TIMES4(s)  s s s s
#define TIMES8(s)  TIMES4(s) TIMES4(s)
#define TIMES32(s) TIMES8(s) TIMES8(s) TIMES8(s) TIMES8(s)
#define A100       TIMES4("aaaaaaaaaaaaaaaaaaaaaaaaa")

#define USP_ECHO "{\"message\":\"initialize\",\"streams\":[{\"application\":\"echo\"}]}\n"

struct session_case {
	const char *name;
	struct harness_piece pieces[PIECES_MAX];
	bool bytewise;       /* each byte of the pieces written on its own */
	bool shut;           /* the client ends its stream after the pieces */
	const char *expect;  /* the whole output, or NULL */
	const char *prefix;  /* how the output begins, or NULL */
	const char *suffix;  /* how it ends, or NULL */
	const char *reason;  /* the audit log's close reason, or NULL */
	const char *refused; /* the audit log's refusal reason, or NULL */
};

static const struct session_case cases[] = {
        {
                .name = "LIST, then QUIT",
                .pieces = {PIECE("LIST\r\nQUIT\r\n")},
                .expect = "+ LIST\r\nHELP\r\nLIST\r\nHOST\r\nQUIT\r\nAUTH\r\nTLS\r\nMULTIPLEX\r\n"
                          "GETSIGNKEY\r\necho\r\ndiscard\r\ndaytime\r\n.\r\n+ bye\r\n",
                .reason = "closed after reply",
        },
        {
                .name = "LIST NAME keeps the connection open",
                .pieces = {PIECE("LIST echo\r\nLIST nosuch\r\nQUIT\r\n")},
                .expect = "+ echo\r\n- unknown service\r\n+ bye\r\n",
                .reason = "closed after reply",
        },
        {
                .name = "HELP names the open services and closes",
                .pieces = {PIECE("HELP\r\n")},
                .expect = "echo\r\ndiscard\r\ndaytime\r\n",
                .reason = "closed after reply",
        },
        {
                .name = "QUIT",
                .pieces = {PIECE("QUIT\r\n")},
                .expect = "+ bye\r\n",
                .reason = "closed after reply",
        },
        {
                .name = "an unknown service",
                .pieces = {PIECE("nosuch\r\n")},
                .expect = "- unknown service\r\n",
                .refused = "unknown service",
                .reason = "unknown service",
        },
        {
                .name = "pipelined bytes reach echo exactly once",
                .pieces = {PIECE("echo\r\nhello, "), PIECE("world")},
                .shut = true,
                .expect = "+\r\nhello, world",
                .reason = "done",
        },
        {
                .name = "a request split byte by byte",
                .pieces = {PIECE("ECHO\r\nhi")},
                .bytewise = true,
                .shut = true,
                .expect = "+\r\nhi",
                .reason = "done",
        },
        {
                .name = "a bare LF ends a line",
                .pieces = {PIECE("echo\nhello")},
                .shut = true,
                .expect = "+\r\nhello",
                .reason = "done",
        },
        {
                .name = "discard",
                .pieces = {PIECE("discard\r\n" A100)},
                .shut = true,
                .expect = "+\r\n",
                .reason = "done",
        },
        {
                .name = "daytime",
                .pieces = {PIECE("daytime\r\n")},
                .prefix = "+\r\n",
                .suffix = "-UTC\r\n",
                .reason = "done",
        },
        {
                .name = "a line too long",
                .pieces = {PIECE(A100 A100 A100 A100 A100 A100)},
                .expect = "- line too long\r\n",
                .refused = "line too long",
        },
        {
                .name = "511 bytes and CR LF is too long",
                .pieces = {PIECE(A100 A100 A100 A100 A100 "aaaaaaaaaaa\r\n")},
                .expect = "- line too long\r\n",
                .refused = "line too long",
        },
        {
                .name = "510 bytes and CR LF is a line",
                .pieces = {PIECE(A100 A100 A100 A100 A100 "aaaaaaaaaa\r\n")},
                .expect = "- invalid service name\r\n",
                .refused = "invalid service name",
        },
        {
                .name = "a byte outside ASCII",
                .pieces = {PIECE("ech\xc3\xa9\r\n")},
                .expect = "- invalid character in request\r\n",
                .refused = "invalid character in request",
        },
        {
                .name = "a NUL byte",
                .pieces = {PIECE("\0echo\r\n")},
                .expect = "- invalid character in request\r\n",
                .refused = "invalid character in request",
        },
        {
                .name = "a CR inside a line",
                .pieces = {PIECE("e\rcho\r\n")},
                .expect = "- invalid character in request\r\n",
                .refused = "invalid character in request",
        },
        {
                .name = "an empty request",
                .pieces = {PIECE("\r\n")},
                .expect = "- empty request\r\n",
                .refused = "empty request",
        },
        {
                .name = "too many commands",
                .pieces = {PIECE(TIMES32("LIST echo\r\n") TIMES8("LIST echo\r\n"))},
                .expect = TIMES32("+ echo\r\n") "- too many commands\r\n",
                .refused = "too many commands",
        },
        {
                .name = "a reserved command",
                .pieces = {PIECE("DETACHABLE\r\n")},
                .expect = "- command not supported\r\n",
                .refused = "command not supported",
        },
        {
                .name = "HOST selects a vhost",
                .pieces = {PIECE("HOST alpha.example\r\ndb\r\nhi")},
                .shut = true,
                .expect = "+ alpha.example\r\n+\r\nhi",
                .reason = "done",
        },
        {
                .name = "HOST with an unknown vhost ends the session",
                .pieces = {PIECE("HOST nowhere\r\necho\r\nhi")},
                .expect = "- unknown host\r\n",
                .refused = "unknown host",
        },
        {
                .name = "auth = required answers as unknown before AUTH",
                .pieces = {PIECE("secret\r\nbytes before any auth")},
                .shut = true,
                .expect = "- unknown service\r\n",
                .refused = "unknown service",
        },
        {
                .name = "AUTH with a method not allowed in clear",
                .pieces = {PIECE("AUTH password\r\nQUIT\r\n")},
                .expect = "- no common authentication method; supported: pubkey,token\r\n"
                          "+ bye\r\n",
                .reason = "closed after reply",
        },
        {
                .name = "TLS answered, then garbage",
                .pieces = {PIECE("TLS\r\n"), PIECE("GET / HTTP/1.0\r\n\r\n")},
                .prefix = "+ SUCCESS\r\n",
        },
        {
                .name = "USP initialize for echo, with pipelined bytes",
                .pieces = {PIECE(USP_ECHO "hello, "), PIECE("world")},
                .shut = true,
                .expect = "{\"message\":\"connect\",\"application\":\"echo\","
                          "\"server_session_id\":\"" SID_MARK "\"}\nhello, world",
                .reason = "done",
        },
        {
                .name = "a malformed USP message",
                .pieces = {PIECE("{\"message\":\"menu\",\"vhost\":true}\n" USP_ECHO "pipelined")},
                .prefix = "{\"message\":\"error\",\"error\":\"malformed message: ",
                .suffix = "\",\"server_session_id\":\"" SID_MARK "\"}\n",
                .refused = "malformed message",
                .reason = "malformed message",
        },
        {
                .name = "the sealed magic byte, then garbage",
                .pieces = {PIECE("\xf5"), PIECE("\x01\x02garbage, not a handshake")},
                .expect = "",
                .reason = "transport failed",
        },
        {
                .name = "an empty connection",
                .shut = true,
                .expect = "",
                .reason = "client closed before a request",
        },
};

/* expected with SID_MARK replaced by sid, into out[0..size). */
static const char *
with_sid(const char *expected, const char *sid, char *out, size_t size)
{
	const char *mark = strstr(expected, SID_MARK);

	if (mark == NULL)
		return expected;
	snprintf(out, size, "%.*s%s%s", (int)(mark - expected), expected, sid,
	         mark + strlen(SID_MARK));
	return out;
}

/* The case's pieces, split into single bytes when it says so; the count. */
static size_t
pieces_of(const struct session_case *c, struct harness_piece *out, size_t max)
{
	size_t i, j, n = 0;

	for (i = 0; i < PIECES_MAX && c->pieces[i].data != NULL; i++) {
		if (!c->bytewise) {
			out[n++] = c->pieces[i];
			continue;
		}
		for (j = 0; j < c->pieces[i].len && n < max; j++)
			out[n++] = (struct harness_piece){(const char *)c->pieces[i].data + j, 1};
	}
	return n;
}

static void
check_output(const struct session_case *c, const struct harness_result *r)
{
	char buf[EXPECTED_MAX];
	const char *want;
	size_t len;

	if (c->expect != NULL)
		assert_string_equal(r->out, with_sid(c->expect, r->sid, buf, sizeof(buf)));
	if (c->prefix != NULL) {
		want = with_sid(c->prefix, r->sid, buf, sizeof(buf));
		assert_memory_equal(r->out, want, strlen(want));
	}
	if (c->suffix != NULL) {
		want = with_sid(c->suffix, r->sid, buf, sizeof(buf));
		len = strlen(want);
		assert_true(r->out_len >= len);
		assert_string_equal(r->out + r->out_len - len, want);
	}
}

static void
run_case(void **state)
{
	const struct session_case *c = *state;
	struct harness_piece pieces[WRITES_MAX];
	struct harness_result r;
	size_t n = pieces_of(c, pieces, WRITES_MAX);

	assert_int_equal(harness_run(pieces, n, c->shut, &r), 0);
	assert_int_equal(r.out_dropped, 0);
	assert_false(r.forced);
	assert_true(r.eof); /* every case ends with the server's close */
	assert_true(r.sid[0] != '\0');
	check_output(c, &r);
	if (c->reason != NULL)
		assert_string_equal(r.reason, c->reason);
	if (c->refused != NULL)
		assert_string_equal(r.refused, c->refused);
	harness_result_free(&r);
}

static int
setup(void **state)
{
	return harness_init();
}

static int
teardown(void **state)
{
	harness_cleanup();
	return 0;
}

int
main(void)
{
	struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0])];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		tests[i] = (struct CMUnitTest){.name = cases[i].name,
		                               .test_func = run_case,
		                               .initial_state = (void *)&cases[i]};
	return UNIT_RUN_WITH_SODIUM(tests, setup, teardown);
}
