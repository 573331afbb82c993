/*
 * The control-socket protocol: every encoder and decoder, every way a message
 * can be malformed, then libfive's side over real SOCK_SEQPACKET sockets with
 * the test playing fived: descriptors that work, descriptors that must be
 * closed, fived refusing and going away.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "five.h"
#include "proto/control.h"

#define MSG_SIZE    (CONTROL_MESSAGE_MAX + 64)
#define FDS_MAX     3
#define PING        "ping"
#define PONG        "pong"
#define SESSION_HEX "0123456789abcdef0123456789abcdef"
#define SERVICE     "echo"

/* The members of a good STREAM object, in the order fived writes them. */
enum member {
	M_SESSION,
	M_SERVICE,
	M_VHOST,
	M_IDENTITY,
	M_AUTH_METHOD,
	M_WITHHELD,
	M_REMOTE_ADDR,
	M_REMOTE_PORT,
	M_COUNT,
};

static const char *const good_members[M_COUNT] = {
        "\"session\":\"" SESSION_HEX "\"", "\"service\":\"" SERVICE "\"",
        "\"vhost\":\"example.org\"",       "\"identity\":\"alice\"",
        "\"auth_method\":\"pubkey\"",      "\"withheld\":false",
        "\"remote_addr\":\"192.0.2.1\"",   "\"remote_port\":40000",
};

#define GOOD_MEMBERS                                                                               \
	"{\"session\":\"" SESSION_HEX "\",\"service\":\"" SERVICE "\",\"vhost\":"                  \
	"\"example.org\",\"identity\":\"alice\",\"auth_method\":\"pubkey\",\"withheld\":false,"    \
	"\"remote_addr\":\"192.0.2.1\",\"remote_port\":40000"
#define GOOD_STREAM "STREAM " GOOD_MEMBERS "}\n"

/* As fived sends it to an application that asked for the transport, as libfive does. */
#define GOOD_TRANSPORT "\"transport\":\"sealed\""
#define TOLD_STREAM    "STREAM " GOOD_MEMBERS "," GOOD_TRANSPORT "}\n"

/* "stream" out of its bounds, or with a ninth member no word stands for: refused. */
static const char *const bad_streams[] = {
        "STREAM " GOOD_MEMBERS ",\"stream\":-1}\n",
        "STREAM " GOOD_MEMBERS ",\"stream\":4294967296}\n",
        "STREAM " GOOD_MEMBERS ",\"stream\":\"3\"}\n",
        "STREAM " GOOD_MEMBERS ",\"stream\":1.5}\n",
        "STREAM " GOOD_MEMBERS ",\"stream\":3,\"later\":1}\n",
        "STREAM " GOOD_MEMBERS "," GOOD_TRANSPORT ",\"stream\":3,\"later\":1}\n",
};

/* What libfive registers with. */
#define REGISTER_SERVICE "REGISTER " SERVICE " transport stream\n"

/*
 * "STREAM {...}\n" from the good members, with member which replaced by
 * replacement (NULL: left out; which == M_COUNT: none replaced) and extra
 * appended when not NULL.
 */
static size_t
stream_with(char *out, size_t size, enum member which, const char *replacement, const char *extra)
{
	size_t n = 0;
	const char *sep = "";
	int i;

	n += (size_t)snprintf(out + n, size - n, "STREAM {");
	for (i = 0; i < M_COUNT; i++) {
		const char *m = (enum member)i == which ? replacement : good_members[i];
		if (m == NULL)
			continue;
		n += (size_t)snprintf(out + n, size - n, "%s%s", sep, m);
		sep = ",";
	}
	if (extra != NULL)
		n += (size_t)snprintf(out + n, size - n, "%s%s", sep, extra);
	n += (size_t)snprintf(out + n, size - n, "}\n");
	assert_true(n < size);
	return n;
}

static void
good_stream(struct control_stream *s)
{
	memset(s, 0, sizeof(*s));
	strcpy(s->session, SESSION_HEX);
	strcpy(s->service, SERVICE);
	strcpy(s->vhost, "example.org");
	strcpy(s->identity, "alice");
	s->has_identity = true;
	strcpy(s->auth_method, "pubkey");
	s->withheld = false;
	strcpy(s->remote_addr, "192.0.2.1");
	s->remote_port = 40000;
}

static void
assert_stream_equal(const struct control_stream *a, const struct control_stream *b)
{
	assert_string_equal(a->session, b->session);
	assert_string_equal(a->service, b->service);
	assert_string_equal(a->vhost, b->vhost);
	assert_string_equal(a->identity, b->identity);
	assert_int_equal(a->has_identity, b->has_identity);
	assert_string_equal(a->auth_method, b->auth_method);
	assert_int_equal(a->withheld, b->withheld);
	assert_string_equal(a->remote_addr, b->remote_addr);
	assert_int_equal(a->remote_port, b->remote_port);
	assert_string_equal(a->transport, b->transport);
}

static void
assert_stream_zero(const struct control_stream *s)
{
	static const struct control_stream zero;

	assert_memory_equal(s, &zero, sizeof(zero));
}

static void
assert_stream_rejected(const char *msg, size_t len)
{
	struct control_stream s;

	memset(&s, 0xa5, sizeof(s));
	if (control_stream_decode(msg, len, &s) != -1)
		fail_msg("accepted: %.*s", (int)len, msg);
	assert_stream_zero(&s);
}

/* --- REGISTER -------------------------------------------------------------- */

static void
test_register_round_trip(void **state)
{
	static const char long_name[] =
	        "a123456789012345678901234567890123456789012345678901234567890123";
	char out[MSG_SIZE], service[NAME_MAX_LEN + 1];
	size_t len;
	unsigned wants;

	assert_int_equal(control_register_encode("echo", 0, out, sizeof(out), &len), 0);
	assert_string_equal(out, "REGISTER echo\n");
	assert_int_equal(len, strlen("REGISTER echo\n"));
	assert_int_equal(control_register_decode(out, len, service, &wants), 0);
	assert_string_equal(service, "echo");
	assert_int_equal(wants, 0);

	/* Names compare case-insensitively, so the decoder lowercases them. */
	assert_int_equal(control_register_encode("My.App_1+x-y", 0, out, sizeof(out), &len), 0);
	assert_string_equal(out, "REGISTER My.App_1+x-y\n");
	assert_int_equal(control_register_decode(out, len, service, &wants), 0);
	assert_string_equal(service, "my.app_1+x-y");

	assert_int_equal(strlen(long_name), NAME_MAX_LEN);
	assert_int_equal(control_register_encode(long_name, 0, out, sizeof(out), &len), 0);
	assert_int_equal(control_register_decode(out, len, service, &wants), 0);
	assert_string_equal(service, long_name);

	/* The buffer must hold the message and a NUL. */
	assert_int_equal(control_register_encode("echo", 0, out, strlen("REGISTER echo\n"), &len),
	                 -1);
	assert_int_equal(
	        control_register_encode("echo", 0, out, strlen("REGISTER echo\n") + 1, &len), 0);
}

static void
test_register_words(void **state)
{
	static const struct {
		const char *msg;
		unsigned wants;
	} good[] = {
	        {"REGISTER echo transport\n", CONTROL_WANTS_TRANSPORT},
	        /* Words fived does not know are a later application's: ignored. */
	        {"REGISTER echo extra\n", 0},
	        {"REGISTER echo later transport\n", CONTROL_WANTS_TRANSPORT},
	        {"REGISTER echo transport transport\n", CONTROL_WANTS_TRANSPORT},
	        {"REGISTER echo stream transport\n",
	         CONTROL_WANTS_TRANSPORT | CONTROL_WANTS_STREAM},
	        {"REGISTER echo a_b-9\n", 0},
	        {"REGISTER echo abcdefghijklmnopqrstuvwxyz012345\n", 0},
	};
	static const char *const bad[] = {
	        "REGISTER echo Transport\n",  "REGISTER echo  transport\n",
	        "REGISTER echo transport \n", "REGISTER echo trans/port\n",
	        "REGISTER echo transport.\n", "REGISTER echo abcdefghijklmnopqrstuvwxyz0123456\n",
	        "REGISTER  echo transport\n",
	};
	char out[MSG_SIZE], service[NAME_MAX_LEN + 1];
	size_t i, len;
	unsigned wants;

	assert_int_equal(
	        control_register_encode("echo", CONTROL_WANTS_TRANSPORT, out, sizeof(out), &len),
	        0);
	assert_string_equal(out, "REGISTER echo transport\n");
	assert_int_equal(control_register_encode("echo",
	                                         CONTROL_WANTS_TRANSPORT | CONTROL_WANTS_STREAM,
	                                         out, sizeof(out), &len),
	                 0);
	assert_string_equal(out, "REGISTER echo transport stream\n");
	/* A bit no word stands for. */
	assert_int_equal(control_register_encode("echo", 4, out, sizeof(out), &len), -1);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (control_register_decode(good[i].msg, strlen(good[i].msg), service, &wants) != 0)
			fail_msg("refused %s", good[i].msg);
		assert_string_equal(service, "echo");
		assert_int_equal(wants, good[i].wants);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		wants = 7;
		if (control_register_decode(bad[i], strlen(bad[i]), service, &wants) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_string_equal(service, "");
		assert_int_equal(wants, 0);
	}
}

static void
test_register_encode_invalid(void **state)
{
	static const char *const bad[] = {
	        "",
	        "-echo",
	        ".echo",
	        "ec ho",
	        "ec/ho",
	        "ec\nho",
	        "echo\n",
	        "\xc3\xa9",
	        "a1234567890123456789012345678901234567890123456789012345678901234",
	};
	char out[MSG_SIZE];
	size_t i, len;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(control_register_encode(bad[i], 0, out, sizeof(out), &len), -1);
}

static void
test_register_malformed(void **state)
{
	static const struct {
		const char *msg;
		size_t len; /* 0: strlen */
	} bad[] = {
	        {"", 0},
	        {"\n", 0},
	        {"REGISTER echo", 0},               /* no "\n" */
	        {"REGISTER echo\n\n", 0},           /* two "\n" */
	        {"REGISTER echo\nREGISTER x\n", 0}, /* two lines */
	        {"REGISTER echo\r\n", 0},
	        {"REGISTER\n", 0},
	        {"REGISTER \n", 0},
	        {"REGISTER  echo\n", 0},
	        {"REGISTER echo \n", 0},
	        {"REGISTER\techo\n", 0},
	        {"register echo\n", 0},
	        {"REGISTERecho\n", 0},
	        {"LIST\n", 0},
	        {"REGISTER -echo\n", 0},
	        {"REGISTER ec/ho\n", 0},
	        {"REGISTER \xc3\xa9\n", 0},
	        {"REGISTER ec\0ho\n", 15}, /* NUL */
	        {"REGISTER echo\n\0", 15}, /* NUL after the end */
	        {"REGISTER a1234567890123456789012345678901234567890123456789012345678901234\n", 0},
	};
	char service[NAME_MAX_LEN + 1];
	char big[CONTROL_MESSAGE_MAX + 1];
	size_t i;
	unsigned wants;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = bad[i].len != 0 ? bad[i].len : strlen(bad[i].msg);
		memset(service, 'x', sizeof(service));
		if (control_register_decode(bad[i].msg, len, service, &wants) != -1)
			fail_msg("accepted case %zu", i);
		assert_string_equal(service, "");
	}
	/* Oversize: a name too long anyway, but refused before the name is looked at. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "REGISTER ", 9);
	big[sizeof(big) - 1] = '\n';
	assert_int_equal(control_register_decode(big, sizeof(big), service, &wants), -1);
}

/* --- replies --------------------------------------------------------------- */

static void
test_reply_round_trip(void **state)
{
	static const struct {
		bool ok;
		const char *text, *wire;
	} good[] = {
	        {true, "registered echo", "+ registered echo\n"},
	        {true, "registered My.App", "+ registered My.App\n"},
	        {false, "not permitted", "- not permitted\n"},
	        {false, "unknown service", "- unknown service\n"},
	        {false, "not a registered service", "- not a registered service\n"},
	        {false, "x", "- x\n"},
	        {false, "odd: but ~printable~ {ok}", "- odd: but ~printable~ {ok}\n"},
	};
	char out[MSG_SIZE], text[MSG_SIZE];
	size_t i, len;
	bool ok;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(
		        control_reply_encode(good[i].ok, good[i].text, out, sizeof(out), &len), 0);
		assert_string_equal(out, good[i].wire);
		assert_int_equal(len, strlen(good[i].wire));
		ok = !good[i].ok;
		assert_int_equal(control_reply_decode(out, len, &ok, text, sizeof(text)), 0);
		assert_int_equal(ok, good[i].ok);
		assert_string_equal(text, good[i].text);
	}
	/* The text buffer must hold the text and its NUL. */
	assert_int_equal(control_reply_decode("- abc\n", 6, &ok, text, 3), -1);
	assert_false(ok);
	assert_string_equal(text, "");
	assert_int_equal(control_reply_decode("- abc\n", 6, &ok, text, 4), 0);
	assert_int_equal(control_reply_encode(false, "abc", out, 6, &len), -1);
	assert_int_equal(control_reply_encode(false, "abc", out, 7, &len), 0);
}

static void
test_reply_encode_invalid(void **state)
{
	char out[MSG_SIZE], *big;
	size_t len;

	assert_int_equal(control_reply_encode(true, "hello", out, sizeof(out), &len), -1);
	assert_int_equal(control_reply_encode(true, "registered", out, sizeof(out), &len), -1);
	assert_int_equal(control_reply_encode(true, "registered ", out, sizeof(out), &len), -1);
	assert_int_equal(control_reply_encode(true, "registered a b", out, sizeof(out), &len), -1);
	assert_int_equal(control_reply_encode(true, "registered -a", out, sizeof(out), &len), -1);
	assert_int_equal(control_reply_encode(false, "", out, sizeof(out), &len), -1);
	assert_int_equal(control_reply_encode(false, "two\nlines", out, sizeof(out), &len), -1);
	assert_int_equal(control_reply_encode(false, "tab\there", out, sizeof(out), &len), -1);
	assert_int_equal(control_reply_encode(false, "caf\xc3\xa9", out, sizeof(out), &len), -1);
	/* The longest reason fits the message bound exactly; one more does not. */
	assert_non_null(big = malloc(CONTROL_MESSAGE_MAX));
	memset(big, 'r', CONTROL_MESSAGE_MAX - 3);
	big[CONTROL_MESSAGE_MAX - 3] = '\0';
	assert_int_equal(control_reply_encode(false, big, out, sizeof(out), &len), 0);
	assert_int_equal(len, CONTROL_MESSAGE_MAX);
	big[CONTROL_MESSAGE_MAX - 3] = 'r';
	big[CONTROL_MESSAGE_MAX - 2] = '\0';
	assert_int_equal(control_reply_encode(false, big, out, sizeof(out), &len), -1);
	free(big);
}

static void
test_reply_malformed(void **state)
{
	static const struct {
		const char *msg;
		size_t len; /* 0: strlen */
	} bad[] = {
	        {"", 0},
	        {"\n", 0},
	        {"+\n", 0},
	        {"-\n", 0},
	        {"- \n", 0},
	        {"+ \n", 0},
	        {"-not permitted\n", 0},
	        {"+registered echo\n", 0},
	        {"+ registered\n", 0},
	        {"+ registered \n", 0},
	        {"+ registered echo extra\n", 0},
	        {"+ registered -echo\n", 0},
	        {"+ Registered echo\n", 0},
	        {"+ hello\n", 0},
	        {"* not permitted\n", 0},
	        {"- not permitted", 0}, /* no "\n" */
	        {"- not permitted\r\n", 0},
	        {"- not\npermitted\n", 0}, /* two lines */
	        {"- not permitted\n- again\n", 0},
	        {"- not\tpermitted\n", 0},
	        {"- not\x7fpermitted\n", 0},
	        {"- caf\xc3\xa9\n", 0},
	        {"- not\0permitted\n", 16}, /* NUL */
	};
	char text[MSG_SIZE], big[CONTROL_MESSAGE_MAX + 1];
	size_t i;
	bool ok;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = bad[i].len != 0 ? bad[i].len : strlen(bad[i].msg);
		ok = true;
		strcpy(text, "junk");
		if (control_reply_decode(bad[i].msg, len, &ok, text, sizeof(text)) != -1)
			fail_msg("accepted case %zu", i);
		assert_false(ok);
		assert_string_equal(text, "");
	}
	memset(big, 'r', sizeof(big));
	memcpy(big, "- ", 2);
	big[CONTROL_MESSAGE_MAX - 1] = '\n';
	assert_int_equal(control_reply_decode(big, CONTROL_MESSAGE_MAX, &ok, text, sizeof(text)),
	                 0);
	big[CONTROL_MESSAGE_MAX - 1] = 'r';
	big[CONTROL_MESSAGE_MAX] = '\n';
	assert_int_equal(
	        control_reply_decode(big, CONTROL_MESSAGE_MAX + 1, &ok, text, sizeof(text)), -1);
}

/* --- STREAM ---------------------------------------------------------------- */

static void
round_trip(const struct control_stream *s)
{
	struct control_stream back;
	char out[MSG_SIZE];
	size_t len;

	assert_int_equal(control_stream_encode(s, out, sizeof(out), &len), 0);
	assert_int_equal(len, strlen(out));
	assert_int_equal(control_stream_decode(out, len, &back), 0);
	assert_stream_equal(&back, s);
}

static void
test_stream_round_trip(void **state)
{
	struct control_stream s, back;
	char out[MSG_SIZE];
	size_t len;

	good_stream(&s);
	assert_int_equal(control_stream_encode(&s, out, sizeof(out), &len), 0);
	assert_string_equal(out, GOOD_STREAM);
	assert_int_equal(control_stream_decode(out, len, &back), 0);
	assert_stream_equal(&back, &s);

	/* No authentication, a client on a Unix socket, no vhost. */
	good_stream(&s);
	s.vhost[0] = '\0';
	s.identity[0] = '\0';
	s.has_identity = false;
	strcpy(s.auth_method, "none");
	s.remote_addr[0] = '\0';
	s.remote_port = 0;
	assert_int_equal(control_stream_encode(&s, out, sizeof(out), &len), 0);
	assert_non_null(strstr(out, "\"identity\":null"));
	assert_non_null(strstr(out, "\"vhost\":\"\""));
	round_trip(&s);

	/* Authenticated but withheld. */
	good_stream(&s);
	s.identity[0] = '\0';
	s.has_identity = false;
	s.withheld = true;
	strcpy(s.auth_method, "password");
	assert_int_equal(control_stream_encode(&s, out, sizeof(out), &len), 0);
	assert_non_null(strstr(out, "\"withheld\":true"));
	round_trip(&s);

	/* Every field at its longest. */
	good_stream(&s);
	memset(s.vhost, 'v', VHOST_MAX_LEN);
	s.vhost[VHOST_MAX_LEN] = '\0';
	memset(s.identity, 'u', CONTROL_IDENTITY_MAX);
	s.identity[CONTROL_IDENTITY_MAX] = '\0';
	memset(s.service, 's', NAME_MAX_LEN);
	s.service[NAME_MAX_LEN] = '\0';
	strcpy(s.auth_method, "external");
	strcpy(s.remote_addr, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
	assert_int_equal(strlen(s.remote_addr), CONTROL_ADDR_SIZE - 1);
	s.remote_port = 65535;
	round_trip(&s);

	/* The other methods, an IPv6 client, identity characters. */
	good_stream(&s);
	strcpy(s.auth_method, "token");
	strcpy(s.identity, "alice.b_c@example-1.org");
	strcpy(s.remote_addr, "2001:db8::1");
	s.remote_port = 1;
	round_trip(&s);

	/* With the transport, for an application that asked for it. */
	good_stream(&s);
	strcpy(s.transport, "sealed");
	assert_int_equal(control_stream_encode(&s, out, sizeof(out), &len), 0);
	assert_string_equal(out, TOLD_STREAM);
	round_trip(&s);
	strcpy(s.transport, "plain");
	round_trip(&s);
	strcpy(s.transport, "tls");
	round_trip(&s);

	/* With the stream, inside a multiplexed session or not; with or without the transport. */
	s.has_stream = true;
	s.stream = 4294967295u;
	assert_int_equal(control_stream_encode(&s, out, sizeof(out), &len), 0);
	assert_non_null(strstr(out, "\"stream\":4294967295}"));
	round_trip(&s);
	s.transport[0] = '\0';
	s.stream = 0;
	round_trip(&s);

	/* The buffer must hold the message and a NUL. */
	good_stream(&s);
	assert_int_equal(control_stream_encode(&s, out, strlen(GOOD_STREAM), &len), -1);
	assert_int_equal(control_stream_encode(&s, out, strlen(GOOD_STREAM) + 1, &len), 0);
}

static void
test_stream_member_bounds(void **state)
{
	struct control_stream s;
	size_t i;

	for (i = 0; i < sizeof(bad_streams) / sizeof(bad_streams[0]); i++)
		if (control_stream_decode(bad_streams[i], strlen(bad_streams[i]), &s) != -1)
			fail_msg("accepted %s", bad_streams[i]);
	assert_int_equal(control_stream_decode("STREAM " GOOD_MEMBERS ",\"stream\":7}\n",
	                                       strlen("STREAM " GOOD_MEMBERS ",\"stream\":7}\n"),
	                                       &s),
	                 0);
	assert_true(s.has_stream);
	assert_int_equal(s.stream, 7);
}

static void
test_stream_encode_invalid(void **state)
{
	struct control_stream s;
	char out[MSG_SIZE];
	size_t len;
	int i;

	for (i = 0; i < 18; i++) {
		good_stream(&s);
		switch (i) {
		case 0:
			strcpy(s.session, "0123456789ABCDEF0123456789abcdef");
			break;
		case 1:
			s.session[31] = '\0';
			break;
		case 2:
			memset(s.session, 'a', sizeof(s.session)); /* no NUL */
			break;
		case 3:
			strcpy(s.service, "-bad");
			break;
		case 4:
			strcpy(s.vhost, "bad vhost");
			break;
		case 5:
			strcpy(s.identity, "al ice");
			break;
		case 6:
			s.identity[0] = '\0'; /* has_identity with an empty name */
			break;
		case 7:
			s.has_identity = false; /* a name without has_identity */
			break;
		case 8:
			strcpy(s.auth_method, "kerberos");
			break;
		case 9:
			strcpy(s.auth_method, "none"); /* an identity without authentication */
			break;
		case 10:
			s.withheld = true; /* withheld, yet an identity */
			break;
		case 11:
			s.identity[0] = '\0';
			s.has_identity = false; /* authenticated, neither shown nor withheld */
			break;
		case 12:
			s.identity[0] = '\0';
			s.has_identity = false;
			s.withheld = true;
			strcpy(s.auth_method, "none"); /* withheld without authentication */
			break;
		case 13:
			strcpy(s.remote_addr, "192.0.2");
			break;
		case 14:
			strcpy(s.remote_addr, "localhost");
			break;
		case 15:
			memset(s.vhost, 'v', sizeof(s.vhost)); /* no NUL */
			break;
		case 16:
			strcpy(s.transport, "quic");
			break;
		case 17:
			memset(s.transport, 't', sizeof(s.transport)); /* no NUL */
			break;
		}
		if (control_stream_encode(&s, out, sizeof(out), &len) != -1)
			fail_msg("encoded case %d", i);
	}
}

static void
test_stream_members(void **state)
{
	static const struct {
		enum member which;
		const char *replacement;
	} bad[] = {
	        /* wrong types */
	        {M_SESSION, "\"session\":123"},
	        {M_SESSION, "\"session\":null"},
	        {M_SERVICE, "\"service\":null"},
	        {M_SERVICE, "\"service\":[\"echo\"]"},
	        {M_VHOST, "\"vhost\":null"},
	        {M_VHOST, "\"vhost\":{}"},
	        {M_IDENTITY, "\"identity\":true"},
	        {M_IDENTITY, "\"identity\":0"},
	        {M_IDENTITY, "\"identity\":{\"name\":\"alice\"}"},
	        {M_IDENTITY, "\"identity\":[\"alice\"]"},
	        {M_AUTH_METHOD, "\"auth_method\":null"},
	        {M_WITHHELD, "\"withheld\":0"},
	        {M_WITHHELD, "\"withheld\":\"false\""},
	        {M_WITHHELD, "\"withheld\":null"},
	        {M_REMOTE_ADDR, "\"remote_addr\":null"},
	        {M_REMOTE_PORT, "\"remote_port\":\"40000\""},
	        {M_REMOTE_PORT, "\"remote_port\":40000.0"},
	        {M_REMOTE_PORT, "\"remote_port\":4e4"},
	        {M_REMOTE_PORT, "\"remote_port\":null"},
	        {M_REMOTE_PORT, "\"remote_port\":[40000]"},
	        /* bad values */
	        {M_SESSION, "\"session\":\"0123456789ABCDEF0123456789abcdef\""},
	        {M_SESSION, "\"session\":\"0123456789abcdef0123456789abcde\""},
	        {M_SESSION, "\"session\":\"0123456789abcdef0123456789abcdef0\""},
	        {M_SESSION, "\"session\":\"0123456789abcdef0123456789abcdeg\""},
	        {M_SESSION, "\"session\":\"\""},
	        {M_SERVICE, "\"service\":\"\""},
	        {M_SERVICE, "\"service\":\"-echo\""},
	        {M_SERVICE, "\"service\":\"ec ho\""},
	        {M_SERVICE, "\"service\":\"echo\\u0000\""},
	        {M_VHOST, "\"vhost\":\"-example.org\""},
	        {M_VHOST, "\"vhost\":\"exa mple\""},
	        {M_IDENTITY, "\"identity\":\"\""},
	        {M_IDENTITY, "\"identity\":\"al ice\""},
	        {M_IDENTITY, "\"identity\":\"al+ice\""},
	        {M_IDENTITY, "\"identity\":\"caf\\u00e9\""},
	        {M_IDENTITY, "\"identity\":\"caf\xc3\xa9\""},
	        {M_IDENTITY, "\"identity\":\"caf\xe9\""}, /* not UTF-8 */
	        {M_IDENTITY,
	         "\"identity\":\"uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"
	         "uuuuu\""},
	        {M_AUTH_METHOD, "\"auth_method\":\"\""},
	        {M_AUTH_METHOD, "\"auth_method\":\"PUBKEY\""},
	        {M_AUTH_METHOD, "\"auth_method\":\"kerberos\""},
	        {M_AUTH_METHOD, "\"auth_method\":\"none\""}, /* with an identity */
	        {M_WITHHELD, "\"withheld\":true"},           /* with an identity */
	        {M_REMOTE_ADDR, "\"remote_addr\":\"192.0.2\""},
	        {M_REMOTE_ADDR, "\"remote_addr\":\"192.0.2.256\""},
	        {M_REMOTE_ADDR, "\"remote_addr\":\"::g\""},
	        {M_REMOTE_ADDR, "\"remote_addr\":\"[::1]\""},
	        {M_REMOTE_ADDR, "\"remote_addr\":\"fe80::1%eth0\""},
	        {M_REMOTE_ADDR, "\"remote_addr\":\"localhost\""},
	        {M_REMOTE_ADDR, "\"remote_addr\":\" 192.0.2.1\""},
	        {M_REMOTE_PORT, "\"remote_port\":-1"},
	        {M_REMOTE_PORT, "\"remote_port\":65536"},
	        {M_REMOTE_PORT, "\"remote_port\":99999999999999999999999"},
	        /* another member in a member's place */
	        {M_VHOST, "\"host\":\"example.org\""},
	        {M_REMOTE_PORT, "\"port\":40000"},
	};
	static const char *const extra[] = {
	        "\"extra\":1",
	        /* transport, the one member that may come ninth, with a bad value */
	        "\"transport\":\"\"",
	        "\"transport\":\"quic\"",
	        "\"transport\":\"Sealed\"",
	        "\"transport\":null",
	        "\"transport\":1",
	        "\"transport\":\"sealed\",\"transport\":\"tls\"",
	        "\"transport\":\"sealed\",\"extra\":1",
	        "\"user\":\"alice\"",
	        "\"session\":\"" SESSION_HEX "\"", /* a duplicate */
	        "\"withheld\":false",              /* a duplicate */
	        "\"identity\":\"alice\"",          /* a duplicate with the same value */
	        "\"nested\":{\"a\":{\"b\":[1,2,3]}}",
	};
	struct control_stream s;
	char msg[MSG_SIZE];
	size_t i, len;

	/* The builder itself makes the good message. */
	len = stream_with(msg, sizeof(msg), M_COUNT, NULL, NULL);
	assert_string_equal(msg, GOOD_STREAM);
	for (i = 0; i < M_COUNT; i++) {
		len = stream_with(msg, sizeof(msg), (enum member)i, NULL, NULL);
		assert_stream_rejected(msg, len);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = stream_with(msg, sizeof(msg), bad[i].which, bad[i].replacement, NULL);
		assert_stream_rejected(msg, len);
	}
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		len = stream_with(msg, sizeof(msg), M_COUNT, NULL, extra[i]);
		assert_stream_rejected(msg, len);
	}
	/* transport makes a ninth member, wherever it comes; the eight must all be there. */
	len = stream_with(msg, sizeof(msg), M_COUNT, NULL, GOOD_TRANSPORT);
	assert_string_equal(msg, TOLD_STREAM);
	assert_int_equal(control_stream_decode(msg, len, &s), 0);
	assert_string_equal(s.transport, "sealed");
	len = stream_with(msg, sizeof(msg), M_SESSION, GOOD_TRANSPORT, NULL);
	assert_stream_rejected(msg, len);
}

static void
test_stream_member_agreement(void **state)
{
	struct control_stream s;
	char msg[MSG_SIZE];
	size_t len;

	/* identity null: fine when not authenticated, or authenticated and withheld. */
	len = stream_with(msg, sizeof(msg), M_IDENTITY, "\"identity\":null", NULL);
	assert_stream_rejected(msg, len);
	msg[0] = '\0';
	len = (size_t)snprintf(msg, sizeof(msg),
	                       "STREAM {\"session\":\"" SESSION_HEX "\",\"service\":\"echo\","
	                       "\"vhost\":\"\",\"identity\":null,\"auth_method\":\"none\","
	                       "\"withheld\":false,\"remote_addr\":\"\",\"remote_port\":0}\n");
	assert_int_equal(control_stream_decode(msg, len, &s), 0);
	assert_false(s.has_identity);
	assert_string_equal(s.identity, "");
	len = (size_t)snprintf(msg, sizeof(msg),
	                       "STREAM {\"session\":\"" SESSION_HEX "\",\"service\":\"echo\","
	                       "\"vhost\":\"\",\"identity\":null,\"auth_method\":\"token\","
	                       "\"withheld\":true,\"remote_addr\":\"::1\",\"remote_port\":0}\n");
	assert_int_equal(control_stream_decode(msg, len, &s), 0);
	assert_true(s.withheld);
	/* withheld without authentication */
	len = (size_t)snprintf(msg, sizeof(msg),
	                       "STREAM {\"session\":\"" SESSION_HEX "\",\"service\":\"echo\","
	                       "\"vhost\":\"\",\"identity\":null,\"auth_method\":\"none\","
	                       "\"withheld\":true,\"remote_addr\":\"\",\"remote_port\":0}\n");
	assert_stream_rejected(msg, len);
	/* Members in another order and JSON escapes are still the same object. */
	len = (size_t)snprintf(
	        msg, sizeof(msg),
	        "STREAM {\"remote_port\":7,\"remote_addr\":\"10.0.0.1\","
	        "\"withheld\":false,\"auth_method\":\"external\",\"identity\":"
	        "\"\\u0062ob\",\"vhost\":\"a.b\",\"service\":\"Echo\",\"session\":\"" SESSION_HEX
	        "\"}\n");
	assert_int_equal(control_stream_decode(msg, len, &s), 0);
	assert_string_equal(s.identity, "bob");
	assert_string_equal(s.service, "Echo");
	assert_int_equal(s.remote_port, 7);
}

static void
test_stream_framing(void **state)
{
	static const char *const bad[] = {
	        "STREAM {}\n",          "STREAM\n",      "STREAM \n",
	        "STREAM []\n",          "STREAM null\n", "STREAM \"x\"\n",
	        "STREAM {\"session\":", "stream {}\n",   "REGISTER echo\n",
	};
	char msg[MSG_SIZE], good[sizeof(GOOD_STREAM)];
	size_t i, len, n;
	struct control_stream s;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_stream_rejected(bad[i], strlen(bad[i]));

	len = strlen(GOOD_STREAM);
	memcpy(good, GOOD_STREAM, len + 1);
	assert_int_equal(control_stream_decode(good, len, &s), 0);
	/* no "\n" */
	assert_stream_rejected(good, len - 1);
	/* CRLF */
	snprintf(msg, sizeof(msg), "%.*s\r\n", (int)(len - 1), good);
	assert_stream_rejected(msg, len + 1);
	/* two lines, and a second "\n" */
	snprintf(msg, sizeof(msg), "%s%s", good, good);
	assert_stream_rejected(msg, 2 * len);
	assert_stream_rejected(msg, len + 1);
	/* a "\n" inside */
	memcpy(msg, good, len + 1);
	msg[20] = '\n';
	assert_stream_rejected(msg, len);
	/* a NUL inside, and one after the "\n" */
	memcpy(msg, good, len + 1);
	msg[20] = '\0';
	assert_stream_rejected(msg, len);
	assert_stream_rejected(good, len + 1);
	/* a tab as JSON whitespace: a control character */
	snprintf(msg, sizeof(msg), "STREAM {\t%s", good + strlen("STREAM {"));
	assert_stream_rejected(msg, len + 1);
	/* one space exactly, nothing between the object and the "\n" */
	snprintf(msg, sizeof(msg), "STREAM  %s", good + strlen("STREAM "));
	assert_stream_rejected(msg, len + 1);
	snprintf(msg, sizeof(msg), "STREAM%s", good + strlen("STREAM "));
	assert_stream_rejected(msg, len - 1);
	snprintf(msg, sizeof(msg), "%.*s \n", (int)(len - 1), good);
	assert_stream_rejected(msg, len + 1);
	snprintf(msg, sizeof(msg), "%.*s}\n", (int)(len - 1), good);
	assert_stream_rejected(msg, len + 1);
	/* invalid UTF-8 */
	n = (size_t)snprintf(msg, sizeof(msg), "%.*s\xff}\n", (int)(len - 2), good);
	assert_stream_rejected(msg, n);

	/* Padded with spaces inside the object to CONTROL_MESSAGE_MAX exactly: fine; one more: not.
	 */
	memset(msg, ' ', sizeof(msg));
	memcpy(msg, "STREAM {", 8);
	memcpy(msg + CONTROL_MESSAGE_MAX - (len - 8), good + 8, len - 8);
	assert_int_equal(control_stream_decode(msg, CONTROL_MESSAGE_MAX, &s), 0);
	memset(msg, ' ', sizeof(msg));
	memcpy(msg, "STREAM {", 8);
	memcpy(msg + CONTROL_MESSAGE_MAX + 1 - (len - 8), good + 8, len - 8);
	assert_stream_rejected(msg, CONTROL_MESSAGE_MAX + 1);
}

static void
test_stream_nesting(void **state)
{
	char msg[MSG_SIZE];
	size_t n = 0, i;

	/* Deep nesting, up to the size bound: refused, and without trouble. */
	n += (size_t)snprintf(msg, sizeof(msg), "STREAM {\"a\":");
	for (i = 0; n < CONTROL_MESSAGE_MAX / 2; i++)
		msg[n++] = '[';
	while (i-- > 0)
		msg[n++] = ']';
	msg[n++] = '}';
	msg[n++] = '\n';
	assert_true(n <= CONTROL_MESSAGE_MAX);
	assert_stream_rejected(msg, n);
}

/* --- five_accept over a socketpair, the test playing fived ------------------- */

static void
send_fds(int sock, const char *msg, size_t len, const int *fds, size_t nfds)
{
	union {
		char buf[CMSG_SPACE(FDS_MAX * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *c;

	assert_true(nfds <= FDS_MAX);
	memset(&control, 0, sizeof(control));
	if (nfds > 0) {
		m.msg_control = control.buf;
		m.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	assert_int_equal(sendmsg(sock, &m, MSG_NOSIGNAL), (ssize_t)len);
}

static void
send_text(int sock, const char *msg)
{
	send_fds(sock, msg, strlen(msg), NULL, 0);
}

static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static bool
fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

/* A registered listener on a socketpair; *peer is fived's end. */
static struct five_listener *
listener_pair(int *peer)
{
	struct five_listener *l;
	struct five_error err;
	char buf[MSG_SIZE];
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	/* The answer waits in the socket before the question is asked. */
	send_text(sv[1], "+ registered " SERVICE "\n");
	l = five_listen_fd(sv[0], SERVICE, &err);
	if (l == NULL)
		fail_msg("five_listen_fd: %s", err.message);
	assert_int_equal(five_listener_fd(l), sv[0]);
	assert_int_equal(recv(sv[1], buf, sizeof(buf), 0), strlen(REGISTER_SERVICE));
	assert_memory_equal(buf, REGISTER_SERVICE, strlen(REGISTER_SERVICE));
	*peer = sv[1];
	return l;
}

/* A connected stream: *near is what is passed, *far what the test keeps. */
static void
stream_pair(int *near, int *far)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	*near = sv[0];
	*far = sv[1];
}

static void
test_accept_good(void **state)
{
	struct five_listener *l;
	struct five_identity id;
	struct five_error err;
	struct control_stream s;
	struct pollfd pfd;
	char buf[16], msg[MSG_SIZE];
	size_t len;
	int peer, near, far, fd;

	l = listener_pair(&peer);
	stream_pair(&near, &far);
	send_fds(peer, TOLD_STREAM, strlen(TOLD_STREAM), &near, 1);
	close(near);
	pfd.fd = five_listener_fd(l);
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 1000), 1);

	five_identity_init(&id);
	fd = five_accept(l, &id, &err);
	if (fd < 0)
		fail_msg("five_accept: %s", err.message);
	assert_true((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
	assert_string_equal(id.session, SESSION_HEX);
	assert_string_equal(id.service, SERVICE);
	assert_string_equal(id.vhost, "example.org");
	assert_string_equal(id.identity, "alice");
	assert_string_equal(id.auth_method, "pubkey");
	assert_int_equal(id.withheld, 0);
	assert_string_equal(id.remote_addr, "192.0.2.1");
	assert_int_equal(id.remote_port, 40000);
	assert_int_equal(id.stream, 0);
	assert_int_equal(id.encrypted, 1);
	assert_int_equal(id.size, sizeof(id));

	/* The descriptor is the stream: both directions work. */
	assert_int_equal(write(far, PING, strlen(PING)), strlen(PING));
	assert_int_equal(read(fd, buf, sizeof(buf)), strlen(PING));
	assert_memory_equal(buf, PING, strlen(PING));
	assert_int_equal(write(fd, PONG, strlen(PONG)), strlen(PONG));
	assert_int_equal(read(far, buf, sizeof(buf)), strlen(PONG));
	assert_memory_equal(buf, PONG, strlen(PONG));
	close(fd);
	close(far);

	/* A withheld identity, the service in fived's spelling. */
	memset(&s, 0, sizeof(s));
	strcpy(s.session, SESSION_HEX);
	strcpy(s.service, "ECHO");
	strcpy(s.auth_method, "pubkey");
	s.withheld = true;
	strcpy(s.transport, "plain");
	assert_int_equal(control_stream_encode(&s, msg, sizeof(msg), &len), 0);
	stream_pair(&near, &far);
	send_fds(peer, msg, len, &near, 1);
	close(near);
	assert_true((fd = five_accept(l, &id, &err)) >= 0);
	assert_string_equal(id.service, "ECHO");
	assert_string_equal(id.identity, "");
	assert_string_equal(id.auth_method, "pubkey");
	assert_int_equal(id.withheld, 1);
	assert_string_equal(id.vhost, "");
	assert_string_equal(id.remote_addr, "");
	assert_int_equal(id.remote_port, 0);
	assert_int_equal(id.encrypted, 0);
	close(fd);
	close(far);

	/* id may be NULL. */
	stream_pair(&near, &far);
	send_fds(peer, msg, len, &near, 1);
	close(near);
	assert_true((fd = five_accept(l, NULL, &err)) >= 0);
	close(fd);
	close(far);
	five_listener_close(l);
	close(peer);
}

/*
 * Sends msg with nfds fresh descriptors, closes the test's copies, and
 * expects five_accept to fail with step, leaving no descriptor behind.
 */
static void
expect_refused_message(struct five_listener *l, int peer, const char *msg, size_t len, size_t nfds,
                       enum five_step step)
{
	struct five_identity id;
	struct five_error err;
	int fds[FDS_MAX] = {-1, -1, -1}, far[FDS_MAX] = {-1, -1, -1};
	int before;
	size_t i;

	for (i = 0; i < nfds; i++)
		stream_pair(&fds[i], &far[i]);
	send_fds(peer, msg, len, fds, nfds);
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	before = open_fds();
	memset(&id, 0x5a, sizeof(id));
	id.size = sizeof(id);
	assert_int_equal(five_accept(l, &id, &err), -1);
	assert_int_equal(err.step, step);
	assert_string_equal(id.session, "");
	/* Descriptors arrive at the lowest free numbers: the ones just closed. */
	for (i = 0; i < nfds; i++)
		assert_false(fd_open(fds[i]));
	assert_int_equal(open_fds(), before);
	for (i = 0; i < nfds; i++) {
		/* Every passed end is gone, so each peer sees EOF. */
		char c;
		assert_int_equal(read(far[i], &c, 1), 0);
		close(far[i]);
	}
}

static void
expect_text_refused(struct five_listener *l, int peer, const char *msg, size_t nfds,
                    enum five_step step)
{
	expect_refused_message(l, peer, msg, strlen(msg), nfds, step);
}

static void
test_accept_bad_descriptors(void **state)
{
	struct five_listener *l;
	struct five_identity id;
	struct five_error err;
	int peer, near, far, fd;

	l = listener_pair(&peer);
	/* No descriptor. */
	expect_refused_message(l, peer, TOLD_STREAM, strlen(TOLD_STREAM), 0, FIVE_ERR_PROTOCOL);
	/* Two, and three: both ways the kernel can deliver too many. */
	expect_refused_message(l, peer, TOLD_STREAM, strlen(TOLD_STREAM), 2, FIVE_ERR_PROTOCOL);
	expect_refused_message(l, peer, TOLD_STREAM, strlen(TOLD_STREAM), 3, FIVE_ERR_PROTOCOL);
	/* Without the transport libfive asked for: encrypted would be a guess. */
	expect_refused_message(l, peer, GOOD_STREAM, strlen(GOOD_STREAM), 1, FIVE_ERR_PROTOCOL);
	/* A descriptor with a message that is not a good STREAM. */
	expect_text_refused(l, peer, "STREAM {\"session\":1}\n", 1, FIVE_ERR_PROTOCOL);
	expect_text_refused(l, peer, "STREAM {not json}\n", 1, FIVE_ERR_PROTOCOL);
	expect_refused_message(l, peer, TOLD_STREAM, strlen(TOLD_STREAM) - 1, 1, FIVE_ERR_PROTOCOL);
	expect_text_refused(l, peer, "+ registered echo\n", 1, FIVE_ERR_PROTOCOL);
	/* A stream for a service this listener did not register. */
	{
		char msg[MSG_SIZE];
		size_t len = stream_with(msg, sizeof(msg), M_SERVICE, "\"service\":\"other\"",
		                         GOOD_TRANSPORT);
		expect_refused_message(l, peer, msg, len, 1, FIVE_ERR_PROTOCOL);
	}
	/* Longer than any message may be. */
	{
		char *big = malloc(CONTROL_MESSAGE_MAX + 2);
		assert_non_null(big);
		memset(big, ' ', CONTROL_MESSAGE_MAX + 2);
		memcpy(big, TOLD_STREAM, strlen(TOLD_STREAM) - 2);
		memcpy(big + CONTROL_MESSAGE_MAX, "}\n", 2);
		expect_refused_message(l, peer, big, CONTROL_MESSAGE_MAX + 2, 1, FIVE_ERR_PROTOCOL);
		free(big);
	}
	/* fived giving a reason. */
	expect_text_refused(l, peer, "- shutting down\n", 0, FIVE_ERR_REFUSED);

	/* After all that, the listener still works. */
	stream_pair(&near, &far);
	send_fds(peer, TOLD_STREAM, strlen(TOLD_STREAM), &near, 1);
	close(near);
	five_identity_init(&id);
	assert_true((fd = five_accept(l, &id, &err)) >= 0);
	assert_string_equal(id.identity, "alice");
	close(fd);
	close(far);
	five_listener_close(l);
	close(peer);
}

/* The first struct five_identity: what an application built against it passes. */
#define FIRST_IDENTITY_SIZE (offsetof(struct five_identity, encrypted) + sizeof(int))
#define POISON              0xa5

/* Whether bytes [from, to) of p all hold POISON still. */
static bool
untouched(const unsigned char *p, size_t from, size_t to)
{
	for (; from < to; from++)
		if (p[from] != POISON)
			return false;
	return true;
}

static void
test_accept_identity_size(void **state)
{
	union {
		struct five_identity id;
		unsigned char bytes[sizeof(struct five_identity) + 64];
	} u;
	struct five_listener *l;
	struct five_error err;
	int peer, near, far, fd;

	l = listener_pair(&peer);
	stream_pair(&near, &far);
	send_fds(peer, TOLD_STREAM, strlen(TOLD_STREAM), &near, 1);
	close(near);
	/* Not set up: refused before the stream is taken, and nothing written. */
	memset(&u, POISON, sizeof(u));
	u.id.size = 0;
	assert_int_equal(five_accept(l, &u.id, &err), -1);
	assert_int_equal(err.step, FIVE_ERR_USAGE);
	assert_true(untouched(u.bytes, sizeof(u.id.size), sizeof(u)));
	memset(&u, POISON, sizeof(u));
	u.id.size = sizeof(u) * 1000;
	assert_int_equal(five_accept(l, &u.id, &err), -1);
	assert_int_equal(err.step, FIVE_ERR_USAGE);
	/* The first identity: nothing past it is written. */
	memset(&u, POISON, sizeof(u));
	u.id.size = FIRST_IDENTITY_SIZE;
	assert_true((fd = five_accept(l, &u.id, &err)) >= 0);
	assert_string_equal(u.id.identity, "alice");
	assert_int_equal(u.id.encrypted, 1);
	assert_int_equal(u.id.size, FIRST_IDENTITY_SIZE);
	assert_true(untouched(u.bytes, FIRST_IDENTITY_SIZE, sizeof(u)));
	close(fd);
	close(far);
	/* A later, larger identity: what this libfive does not know is left as it is. */
	stream_pair(&near, &far);
	send_fds(peer, TOLD_STREAM, strlen(TOLD_STREAM), &near, 1);
	close(near);
	memset(&u, POISON, sizeof(u));
	u.id.size = sizeof(u);
	assert_true((fd = five_accept(l, &u.id, &err)) >= 0);
	assert_int_equal(u.id.size, sizeof(u));
	assert_int_equal(u.id.stream, 0);
	assert_true(untouched(u.bytes, sizeof(u.id), sizeof(u)));
	close(fd);
	close(far);
	five_listener_close(l);
	close(peer);
	five_identity_init(NULL);
}

static void
test_accept_fived_closes(void **state)
{
	struct five_listener *l;
	struct five_error err;
	int peer;

	l = listener_pair(&peer);
	close(peer);
	assert_int_equal(five_accept(l, NULL, &err), -1);
	assert_int_equal(err.step, FIVE_ERR_CONNECT);
	assert_string_equal(err.message, "fived closed the control socket");
	five_listener_close(l);
	five_listener_close(NULL);
	assert_int_equal(five_listener_fd(NULL), -1);
	assert_int_equal(five_accept(NULL, NULL, &err), -1);
	assert_int_equal(err.step, FIVE_ERR_USAGE);
}

/* five_listen_fd with reply pre-queued; returns the listener or NULL with err. */
static struct five_listener *
listen_with_reply(const char *reply, size_t len, int fd_with_reply, struct five_error *err,
                  int *peer)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	send_fds(sv[1], reply, len, &fd_with_reply, fd_with_reply >= 0 ? 1 : 0);
	*peer = sv[1];
	return five_listen_fd(sv[0], SERVICE, err);
}

static void
test_listen_fd_replies(void **state)
{
	struct five_listener *l;
	struct five_error err;
	int peer, near, far, before, sv[2];

	/* fived answers with its own spelling of the name. */
	l = listen_with_reply("+ registered ECHO\n", 18, -1, &err, &peer);
	assert_non_null(l);
	five_listener_close(l);
	close(peer);

	l = listen_with_reply("- not permitted\n", 16, -1, &err, &peer);
	assert_null(l);
	assert_int_equal(err.step, FIVE_ERR_REFUSED);
	assert_string_equal(err.message, "not permitted");
	close(peer);

	l = listen_with_reply("+ registered other\n", 19, -1, &err, &peer);
	assert_null(l);
	assert_int_equal(err.step, FIVE_ERR_PROTOCOL);
	close(peer);

	l = listen_with_reply("+ registered echo", 17, -1, &err, &peer);
	assert_null(l);
	assert_int_equal(err.step, FIVE_ERR_PROTOCOL);
	close(peer);

	/* A descriptor with the reply is refused and closed, and so is the connection. */
	stream_pair(&near, &far);
	l = listen_with_reply("+ registered echo\n", 18, near, &err, &peer);
	close(near);
	assert_null(l);
	assert_int_equal(err.step, FIVE_ERR_PROTOCOL);
	assert_false(fd_open(near));
	close(peer);
	close(far);

	/* Not a SOCK_SEQPACKET socket: refused, and the descriptor is the library's to close. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	before = open_fds();
	assert_null(five_listen_fd(sv[0], SERVICE, &err));
	assert_int_equal(err.step, FIVE_ERR_USAGE);
	assert_int_equal(open_fds(), before - 1);
	close(sv[1]);

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_null(five_listen_fd(sv[0], "bad name", &err));
	assert_int_equal(err.step, FIVE_ERR_USAGE);
	assert_false(fd_open(sv[0]));
	close(sv[1]);

	/* fived closes without answering. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	shutdown(sv[1], SHUT_WR);
	assert_null(five_listen_fd(sv[0], SERVICE, &err));
	assert_int_equal(err.step, FIVE_ERR_CONNECT);
	close(sv[1]);
}

/* --- five_listen_at against a listening socket ------------------------------ */

struct fake_fived {
	char dir[64];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int sock;
	pid_t pid;
};

/*
 * A child that accepts one connection, checks "REGISTER x transport\n", answers reply,
 * and waits for the connection to close.  It exits 0 when all went as
 * expected.
 */
static void
fake_fived_start(struct fake_fived *f, const char *reply)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};

	strcpy(f->dir, "/tmp/test_control.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/control.sock", f->dir);
	strcpy(sun.sun_path, f->path);
	assert_true((f->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) >= 0);
	assert_int_equal(bind(f->sock, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(f->sock, 1), 0);
	assert_true((f->pid = fork()) >= 0);
	if (f->pid == 0) {
		char buf[MSG_SIZE];
		ssize_t n;
		int c = accept(f->sock, NULL, NULL);

		if (c < 0)
			_exit(10);
		n = recv(c, buf, sizeof(buf), 0);
		if (n != (ssize_t)strlen("REGISTER x transport stream\n") ||
		    memcmp(buf, "REGISTER x transport stream\n", (size_t)n) != 0)
			_exit(11);
		if (send(c, reply, strlen(reply), MSG_NOSIGNAL) != (ssize_t)strlen(reply))
			_exit(12);
		/* The application unregisters by closing. */
		if (recv(c, buf, sizeof(buf), 0) != 0)
			_exit(13);
		_exit(0);
	}
}

static void
fake_fived_finish(struct fake_fived *f)
{
	int status;

	assert_int_equal(waitpid(f->pid, &status, 0), f->pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	close(f->sock);
	unlink(f->path);
	rmdir(f->dir);
}

static void
test_listen_at_registered(void **state)
{
	struct fake_fived f;
	struct five_listener *l;
	struct five_error err;

	fake_fived_start(&f, "+ registered x\n");
	l = five_listen_at(f.path, "x", &err);
	if (l == NULL)
		fail_msg("five_listen_at: %s", err.message);
	assert_true(five_listener_fd(l) >= 0);
	five_listener_close(l);
	fake_fived_finish(&f);

	/* five_listen finds the socket through the environment. */
	fake_fived_start(&f, "+ registered x\n");
	assert_int_equal(setenv("FIVE_CONTROL_SOCKET", f.path, 1), 0);
	l = five_listen("x", &err);
	unsetenv("FIVE_CONTROL_SOCKET");
	if (l == NULL)
		fail_msg("five_listen: %s", err.message);
	five_listener_close(l);
	fake_fived_finish(&f);
}

static void
test_listen_at_refused(void **state)
{
	struct fake_fived f;
	struct five_error err;

	fake_fived_start(&f, "- not permitted\n");
	assert_null(five_listen_at(f.path, "x", &err));
	assert_int_equal(err.step, FIVE_ERR_REFUSED);
	assert_string_equal(err.message, "not permitted");
	fake_fived_finish(&f);

	/* A fived older than REGISTER's words. */
	fake_fived_start(&f, "- malformed request\n");
	assert_null(five_listen_at(f.path, "x", &err));
	assert_int_equal(err.step, FIVE_ERR_REFUSED);
	assert_string_equal(err.message, "malformed request: fived is older than this libfive (it "
	                                 "does not tell a stream's transport)");
	fake_fived_finish(&f);
}

static void
test_listen_at_unreachable(void **state)
{
	struct five_error err;
	char longpath[256];

	assert_null(five_listen_at("/nonexistent/fived/control.sock", "x", &err));
	assert_int_equal(err.step, FIVE_ERR_CONNECT);
	memset(longpath, 'p', sizeof(longpath));
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_null(five_listen_at(longpath, "x", &err));
	assert_int_equal(err.step, FIVE_ERR_USAGE);
	assert_null(five_listen_at("", "x", &err));
	assert_int_equal(err.step, FIVE_ERR_USAGE);
	assert_null(five_listen_at("/nonexistent", "not a name", &err));
	assert_int_equal(err.step, FIVE_ERR_USAGE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_register_round_trip),
	        cmocka_unit_test(test_register_words),
	        cmocka_unit_test(test_register_encode_invalid),
	        cmocka_unit_test(test_register_malformed),
	        cmocka_unit_test(test_reply_round_trip),
	        cmocka_unit_test(test_reply_encode_invalid),
	        cmocka_unit_test(test_reply_malformed),
	        cmocka_unit_test(test_stream_round_trip),
	        cmocka_unit_test(test_stream_encode_invalid),
	        cmocka_unit_test(test_stream_member_bounds),
	        cmocka_unit_test(test_stream_members),
	        cmocka_unit_test(test_stream_member_agreement),
	        cmocka_unit_test(test_stream_framing),
	        cmocka_unit_test(test_stream_nesting),
	        cmocka_unit_test(test_accept_good),
	        cmocka_unit_test(test_accept_bad_descriptors),
	        cmocka_unit_test(test_accept_identity_size),
	        cmocka_unit_test(test_accept_fived_closes),
	        cmocka_unit_test(test_listen_fd_replies),
	        cmocka_unit_test(test_listen_at_registered),
	        cmocka_unit_test(test_listen_at_refused),
	        cmocka_unit_test(test_listen_at_unreachable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
