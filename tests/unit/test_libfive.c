/*
 * libfive's public API without a fived: what an application can count on
 * before a byte goes out.  Every exported function fails without crashing
 * when it is given no struct five_error; the steps keep their values.
 * And what threads share: five's identity, made by many at once; name
 * resolution, which keeps to its timeout with a resolver that never
 * answers.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/dial/resolve.h"
#include "client/keys/knownhosts.h"
#include "common/util.h"
#include "five.h"

#define THREADS 8
/* How long a resolver that does not answer is waited for, and a bound on that wait. */
#define RESOLVE_TIMEOUT_MS 100
#define RESOLVE_LATE_MS    2000
/* Time for a lookup left behind to end, once its resolver answers. */
#define SETTLE_MS 200

/* silent_resolver reads this pipe: it answers once the test closes the write end. */
static int blocks_until[2] = {-1, -1};

/* A numeric IPv6 host with IPv4 asked for: the resolver fails at once, without DNS. */
#define UNRESOLVABLE "::1"

static void
test_steps_keep_their_values(void **state)
{
	assert_int_equal(FIVE_OK, 0);
	assert_int_equal(FIVE_ERR_PROTOCOL, 6);
	assert_int_equal(FIVE_ERR_TRUST, 7);
	assert_string_equal(five_step_name(FIVE_ERR_REFUSED), "refused");
	assert_string_equal(five_step_name(FIVE_ERR_TRUST), "trust");
	assert_string_equal(five_step_name((enum five_step)99), "unknown");
}

/* Both ends of a socketpair, the far one closed: a fived that went away. */
static int
hung_up_socket(void)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[1]);
	return sv[0];
}

static void
test_no_error_struct_connect(void **state)
{
	struct five_options o;
	char **names = NULL;
	size_t count = 0;

	assert_int_equal(five_connect("127.0.0.1", "not a name", NULL, NULL), -1);
	assert_int_equal(five_connect_early("127.0.0.1", "not a name", NULL, "x", 1, NULL), -1);
	five_options_init(&o);
	o.family = AF_INET;
	o.transport = FIVE_PLAIN;
	/* Without a port, a failure is looked at to choose the next port: err is read back. */
	assert_int_equal(five_dial(UNRESOLVABLE, &o, NULL), -1);
	assert_int_equal(five_connect(UNRESOLVABLE, "echo", &o, NULL), -1);
	o.vhost = "not a vhost!";
	assert_int_equal(five_list("127.0.0.1", &o, &names, &count, NULL), -1);
	assert_null(names);
	assert_null(five_session_open(UNRESOLVABLE, &o, NULL));
	/* Missing arguments are usage errors, not crashes. */
	assert_null(five_session_open(NULL, &o, NULL));
	assert_int_equal(five_session_stream(NULL, "echo", NULL, 0, NULL), -1);
	assert_int_equal(five_session_request(NULL, "echo", NULL, 0, NULL, 0, NULL, 0, NULL), -1);
	assert_int_equal(five_connect(NULL, "echo", &o, NULL), -1);
	assert_int_equal(five_connect("127.0.0.1", NULL, &o, NULL), -1);
	assert_int_equal(five_connect_early("127.0.0.1", "echo", &o, NULL, 5, NULL), -1);
	assert_int_equal(five_list(NULL, &o, &names, &count, NULL), -1);
}

static void
test_no_error_struct_steps(void **state)
{
	struct five_options o;
	struct five_auth auth = {.methods = "pubkey", .user = "alice"};
	char token[FIVE_TOKEN_SIZE];
	int fd;

	five_options_init(&o);
	o.transport = FIVE_PLAIN;
	fd = hung_up_socket();
	assert_int_equal(five_request(fd, "echo", &o, NULL, 0, NULL), -1);
	assert_int_equal(five_await(fd, &o, NULL), -1);
	o.auth = &auth;
	assert_int_equal(five_authenticate(fd, &o, NULL), -1);
	close(fd);
	assert_int_equal(five_issue_token("127.0.0.1", "not a name", NULL, 0, &o, token,
	                                  sizeof(token), NULL),
	                 -1);
	assert_int_equal(five_issue_token("127.0.0.1", "echo", NULL, 0, &o, token, 0, NULL), -1);
}

static void
test_no_error_struct_listen(void **state)
{
	struct five_identity id;
	int sv[2];

	assert_null(five_listen_at(NULL, "echo", NULL));
	assert_null(five_listen_at("/nonexistent/control.sock", "echo", NULL));
	assert_null(five_listen_at("/nonexistent/control.sock", "not a name", NULL));
	assert_null(five_listen_fd(-1, "echo", NULL));
	/* Not a SOCK_SEQPACKET socket: refused, and closed as five_listen_fd promises. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_null(five_listen_fd(sv[0], "echo", NULL));
	assert_int_equal(fcntl(sv[0], F_GETFD), -1);
	close(sv[1]);
	five_identity_init(&id);
	assert_int_equal(five_accept(NULL, &id, NULL), -1);
	assert_int_equal(five_listener_fd(NULL), -1);
	five_listener_close(NULL);
	five_free_names(NULL);
}

/* A struct five_options as a program built against a later five.h has it. */
struct later_options {
	struct five_options known;
	int option_of_a_later_libfive;
};

static void
expect_usage(int r, const struct five_error *err, const char *start)
{
	assert_int_equal(r, -1);
	assert_int_equal(err->step, FIVE_ERR_USAGE);
	if (strncmp(err->message, start, strlen(start)) != 0)
		fail_msg("\"%s\" does not start with \"%s\"", err->message, start);
}

static void
test_options_are_sized(void **state)
{
	struct later_options later;
	struct five_options o;
	struct five_error err;

	/* Not set up by five_options_init: refused before anything is read or sent. */
	memset(&o, 0, sizeof(o));
	o.port = "x";
	expect_usage(five_dial("127.0.0.1", &o, &err), &err, "struct five_options of 0 bytes");
	o.size = (size_t)-1;
	expect_usage(five_connect("127.0.0.1", "echo", &o, &err), &err, "struct five_options of");
	five_options_init(&o);
	assert_int_equal(o.size, sizeof(o));
	assert_null(o.port);
	assert_int_equal(o.transport, FIVE_SEALED);
	assert_int_equal(o.trust_on_first_use, 0);
	o.transport = FIVE_PLAIN;
	o.port = "x";
	expect_usage(five_dial("127.0.0.1", &o, &err), &err, "invalid port");
	/* A later program's options: read as far as this libfive knows them, the rest unset. */
	memset(&later, 0, sizeof(later));
	five_options_init(&later.known);
	later.known.size = sizeof(later);
	later.known.transport = FIVE_PLAIN;
	later.known.port = "x";
	expect_usage(five_dial("127.0.0.1", &later.known, &err), &err, "invalid port");
	/* ... and refused when it sets one this libfive does not have. */
	later.option_of_a_later_libfive = 1;
	expect_usage(five_dial("127.0.0.1", &later.known, &err), &err,
	             "options this libfive does not have");
	five_options_init(NULL);
}

/*
 * detachable is the last member so far: a program built before it (its
 * size ends at notice_arg) gets 0, and only a multiplexed session may be
 * detachable.
 */
static void
test_options_detachable(void **state)
{
	struct five_options o;
	struct five_error err;

	five_options_init(&o);
	assert_int_equal(o.detachable, 0);
	o.detachable = 1;
	expect_usage(five_connect("127.0.0.1", "echo", &o, &err), &err,
	             "a detachable session is a multiplexed one");
	/* An older program's struct: detachable lies beyond its size, and is not read. */
	o.size = offsetof(struct five_options, detachable);
	o.transport = FIVE_PLAIN;
	o.port = "x";
	expect_usage(five_connect("127.0.0.1", "echo", &o, &err), &err, "invalid port");
	assert_int_equal(five_session_detachable(NULL), 0);
}

/* Each step function, on a socket whose far end the test reads: nothing may reach it. */
static void
test_steps_are_plain_only(void **state)
{
	static const int encrypted[] = {FIVE_SEALED, FIVE_TLS};
	struct five_options o;
	struct five_error err;
	char c;
	size_t i;
	int sv[2];

	for (i = 0; i < sizeof(encrypted) / sizeof(encrypted[0]); i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		five_options_init(&o);
		o.transport = encrypted[i];
		expect_usage(five_dial("127.0.0.1", &o, &err), &err,
		             "five_dial is a step of plain TCPMUX");
		expect_usage(five_authenticate(sv[0], &o, &err), &err,
		             "five_authenticate is a step of plain TCPMUX");
		expect_usage(five_request(sv[0], "echo", &o, "early", 5, &err), &err,
		             "five_request is a step of plain TCPMUX");
		expect_usage(five_await(sv[0], &o, &err), &err,
		             "five_await is a step of plain TCPMUX");
		close(sv[0]);
		assert_int_equal(read(sv[1], &c, 1), 0);
		close(sv[1]);
	}
	/* NULL options are the defaults: sealed. */
	expect_usage(five_dial("127.0.0.1", NULL, &err), &err, "five_dial is a step");
	expect_usage(five_request(-1, "echo", NULL, NULL, 0, &err), &err, "five_request is a step");
}

struct maker {
	pthread_t thread;
	uint8_t pk[32];
	int r;
};

static void *
make_identity(void *arg)
{
	static const uint8_t server_pk[32] = {1};
	struct maker *m = arg;
	struct five_error err;
	uint8_t sk[32];

	m->r = identity_static_key(server_pk, sk, m->pk, NULL, 0, &err);
	return NULL;
}

/* Threads of one process making five's identity at once: one is made, and all use it. */
static void
test_identity_made_by_threads_at_once(void **state)
{
	struct maker m[THREADS];
	char dir[] = "/tmp/test_libfive.XXXXXX", path[sizeof(dir) + 16];
	size_t i;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/identity", dir);
	assert_int_equal(setenv("FIVE_IDENTITY_FILE", path, 1), 0);
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&m[i].thread, NULL, make_identity, &m[i]), 0);
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(m[i].thread, NULL), 0);
		assert_int_equal(m[i].r, 0);
		assert_memory_equal(m[i].pk, m[0].pk, sizeof(m[0].pk));
	}
	unsetenv("FIVE_IDENTITY_FILE");
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* A resolver as the system's would be with a DNS server that never answers. */
static int
silent_resolver(const char *host, const char *port, const struct addrinfo *hints,
                struct addrinfo **res)
{
	char c;

	if ((hints->ai_flags & AI_NUMERICHOST) != 0)
		return EAI_NONAME;
	/* Until the test lets it go: then, as if nothing was found. */
	if (read(blocks_until[0], &c, 1) < 0)
		return EAI_SYSTEM;
	return EAI_AGAIN;
}

/* A resolver that knows every name: it is 127.0.0.1. */
static int
knowing_resolver(const char *host, const char *port, const struct addrinfo *hints,
                 struct addrinfo **res)
{
	struct addrinfo numeric = *hints;

	if ((hints->ai_flags & AI_NUMERICHOST) != 0)
		return EAI_NONAME;
	numeric.ai_flags |= AI_NUMERICHOST;
	return getaddrinfo("127.0.0.1", port, &numeric, res);
}

static void
test_resolution_keeps_to_its_timeout(void **state)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	struct five_error err;
	uint64_t started;
	int i;

	assert_int_equal(pipe(blocks_until), 0);
	/* Several at once, each left behind when its time is up. */
	for (i = 0; i < THREADS; i++) {
		started = monotonic_ms();
		assert_int_equal(five_resolve(silent_resolver, "silent.example", "1", &hints,
		                              RESOLVE_TIMEOUT_MS, &res, &err),
		                 -1);
		assert_true(monotonic_ms() - started >= RESOLVE_TIMEOUT_MS);
		assert_true(monotonic_ms() - started < RESOLVE_LATE_MS);
		assert_int_equal(err.step, FIVE_ERR_RESOLVE);
		assert_string_equal(err.message, "silent.example: timed out after 100 ms");
		assert_null(res);
	}
	/* The resolvers answer at last: the lookups left behind end by themselves. */
	close(blocks_until[1]);
	poll(NULL, 0, SETTLE_MS);
	close(blocks_until[0]);
	/* An answer in time is taken, a failure in time is the resolver's. */
	assert_int_equal(five_resolve(knowing_resolver, "db.example", "5501", &hints,
	                              RESOLVE_TIMEOUT_MS, &res, &err),
	                 0);
	assert_non_null(res);
	freeaddrinfo(res);
	assert_int_equal(pipe(blocks_until), 0);
	close(blocks_until[1]);
	assert_int_equal(five_resolve(silent_resolver, "gone.example", "1", &hints,
	                              RESOLVE_TIMEOUT_MS, &res, &err),
	                 -1);
	assert_int_equal(err.step, FIVE_ERR_RESOLVE);
	assert_string_equal(err.message, "gone.example: Temporary failure in name resolution");
	close(blocks_until[0]);
	/* An address is no name: the system's resolver answers it at once. */
	assert_int_equal(
	        five_resolve(getaddrinfo, "127.0.0.1", "1", &hints, RESOLVE_TIMEOUT_MS, &res, &err),
	        0);
	freeaddrinfo(res);
}

/* A plain TCPMUX server for one connection: "+" to its request, then its bytes echoed. */
static void *
tcpmux_echo_once(void *arg)
{
	int l = *(int *)arg, c = accept(l, NULL, NULL);
	char buf[256];
	ssize_t n;

	if (c < 0)
		return NULL;
	/* The request line and what follows it come in one write from libfive. */
	if ((n = recv(c, buf, sizeof(buf), 0)) > 0 && send(c, "+\r\n", 3, 0) == 3) {
		char *line_end = memchr(buf, '\n', (size_t)n);

		if (line_end != NULL && line_end + 1 < buf + n)
			send(c, line_end + 1, (size_t)(buf + n - line_end - 1), 0);
	}
	close(c);
	return NULL;
}

static void
test_connect_from_an_event_loop(void **state)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	struct five_options o;
	struct five_pending *p;
	struct five_error err;
	struct pollfd pfd;
	char port[8], buf[16];
	pthread_t t;
	int l = socket(AF_INET, SOCK_STREAM, 0), fd;

	assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	snprintf(port, sizeof(port), "%u", ntohs(sin.sin_port));
	assert_int_equal(pthread_create(&t, NULL, tcpmux_echo_once, &l), 0);
	five_options_init(&o);
	o.transport = FIVE_PLAIN;
	o.port = port;
	p = five_connect_start("127.0.0.1", "echo", &o, "early", 5, &err);
	assert_non_null(p);
	/* The caller's loop waits on the descriptor, as it would with others. */
	pfd = (struct pollfd){.fd = five_pending_fd(p), .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	fd = five_connect_finish(p, &err);
	if (fd < 0)
		fail_msg("five_connect_finish: %s", err.message);
	assert_int_equal(recv(fd, buf, sizeof(buf), MSG_WAITALL), 5);
	assert_memory_equal(buf, "early", 5);
	close(fd);
	pthread_join(t, NULL);
	close(l);

	/* Nothing listens any more: the connect fails, and the failure is the result. */
	p = five_connect_start("127.0.0.1", "echo", &o, NULL, 0, &err);
	assert_non_null(p);
	assert_int_equal(five_connect_finish(p, &err), -1);
	assert_int_equal(err.step, FIVE_ERR_CONNECT);
	/*
	 * Given up once it is done: freed at once.  (One given up while it
	 * runs finishes on its thread, which must not still run at exit.)
	 */
	p = five_connect_start("127.0.0.1", "echo", &o, NULL, 0, NULL);
	assert_non_null(p);
	pfd = (struct pollfd){.fd = five_pending_fd(p), .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	five_connect_cancel(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_steps_keep_their_values),
	        cmocka_unit_test(test_no_error_struct_connect),
	        cmocka_unit_test(test_no_error_struct_steps),
	        cmocka_unit_test(test_no_error_struct_listen),
	        cmocka_unit_test(test_options_are_sized),
	        cmocka_unit_test(test_options_detachable),
	        cmocka_unit_test(test_steps_are_plain_only),
	        cmocka_unit_test(test_identity_made_by_threads_at_once),
	        cmocka_unit_test(test_resolution_keeps_to_its_timeout),
	        cmocka_unit_test(test_connect_from_an_event_loop),
	};

	return UNIT_RUN_WITH_SODIUM(tests, NULL, NULL);
}
