/*
 * fivectl: asks a running fived over its admin socket (src/proto/admin.h)
 * about its sessions and counters, and tells it to end a session, reload
 * or revoke a token.  One request, one reply; with several workers, each
 * serving its own socket (the first's path, then PATH.1, PATH.2, ...),
 * the workers' replies made one (merge.h); docs/fivectl.8.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "fivectl/merge.h"
#include "proto/admin.h"

/* Exit statuses (fivectl.8). */
#define EXIT_REFUSED 1 /* fived said no */
#define EXIT_USAGE   2
#define EXIT_NOREACH 3 /* no fived to ask, or no sensible answer */

/* A worker that has not answered by then (stopped, stuck, or about to be restarted) never will. */
#define ANSWER_TIMEOUT_S 10

/* "revoke -": the token from standard input, so that it is not in ps. */
#define FROM_STDIN "-"

static void
usage(void)
{
	fprintf(stderr, "usage: fivectl [-s socket] [--json] sessions | stats | governor | reload\n"
	                "       fivectl [-s socket] [--json] kill ID | streams ID\n"
	                "       fivectl [-s socket] [--json] revoke TOKEN|JTI|-\n");
	exit(EXIT_USAGE);
}

/* A worker's socket: the first's is path, worker k's path.k. */
static void
worker_path(const char *path, unsigned k, char *out, size_t size)
{
	int n = k == 0 ? snprintf(out, size, "%s", path) : snprintf(out, size, "%s.%u", path, k);

	if (n < 0 || (size_t)n >= size) {
		fprintf(stderr, "fivectl: %s: path too long\n", path);
		exit(EXIT_USAGE);
	}
}

/*
 * A connection to worker k's socket, or -1 when k > 0 and no worker k
 * answers there (there are fewer workers): the first must answer.
 */
static int
dial(const char *path, unsigned k)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	struct timeval timeout = {.tv_sec = ANSWER_TIMEOUT_S};

	worker_path(path, k, sun.sun_path, sizeof(sun.sun_path));
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) >= 0 &&
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
		return fd;
	}
	if (k > 0 && (errno == ENOENT || errno == ECONNREFUSED)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fprintf(stderr, "fivectl: %s: %s (is admin_socket set in fived.conf?)\n", sun.sun_path,
	        strerror(errno));
	exit(EXIT_NOREACH);
}

/*
 * The reply.  A refused peer is answered at once and closed: when the
 * request was still unread, the kernel reports ECONNRESET first, and the
 * reply after it.
 */
static ssize_t
receive(int fd, char *msg)
{
	ssize_t n = recv(fd, msg, ADMIN_REPLY_MAX + 1, MSG_TRUNC);

	if (n < 0 && errno == ECONNRESET)
		n = recv(fd, msg, ADMIN_REPLY_MAX + 1, MSG_TRUNC);
	return n;
}

/*
 * Sends r to worker k: 1 with its reply's object in *body, 0 refused
 * with reason, -1 when there is no worker k.  Exits on a broken reply.
 */
static int
ask(const char *path, unsigned k, const struct admin_request *r, json_t **body, char *reason)
{
	char *msg = malloc(ADMIN_REPLY_MAX + 1);
	size_t len;
	ssize_t n;
	bool ok;
	int fd;

	if (msg == NULL || admin_request_encode(r, msg, ADMIN_REQUEST_MAX + 1, &len) != 0) {
		fprintf(stderr, "fivectl: %s\n",
		        msg == NULL ? "out of memory" : "malformed argument");
		exit(EXIT_USAGE);
	}
	if ((fd = dial(path, k)) < 0) {
		free(msg);
		return -1;
	}
	/* A refused peer's reply is already queued, and its socket closed: read it all the same. */
	send(fd, msg, len, MSG_NOSIGNAL);
	if ((n = receive(fd, msg)) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		worker_path(path, k, msg, ADMIN_REPLY_MAX);
		fprintf(stderr, "fivectl: %s: no answer within %d s\n", msg, ANSWER_TIMEOUT_S);
		exit(EXIT_NOREACH);
	}
	if (n <= 0 || n > ADMIN_REPLY_MAX ||
	    admin_reply_decode(msg, (size_t)n, &ok, body, reason) != 0) {
		fprintf(stderr, "fivectl: %s: no valid reply\n", path);
		exit(EXIT_NOREACH);
	}
	close(fd);
	free(msg);
	return ok ? 1 : 0;
}

/*
 * What fived answers: reload and revoke are the first worker's to
 * answer (fived's, for all of them); kill and streams, the worker's that
 * holds the session; the rest, every worker's, made one.  Exits on a
 * refusal.
 */
static json_t *
ask_all(const char *path, const struct admin_request *r)
{
	char reason[ADMIN_REASON_MAX + 1];
	bool one = r->command == ADMIN_RELOAD || r->command == ADMIN_REVOKE;
	bool holder = r->command == ADMIN_KILL || r->command == ADMIN_STREAMS;
	json_t *merged = NULL, *body;
	unsigned k;
	int got;

	for (k = 0; (got = ask(path, k, r, &body, reason)) >= 0; k++) {
		if (got == 1 && (one || holder))
			return body;
		if (got == 0 && (one || !holder))
			break;
		if (got == 0)
			continue;
		if (merged == NULL) {
			merged = body;
			continue;
		}
		got = merge_reply(r->command, merged, body);
		json_decref(body);
		if (got != 0) {
			fprintf(stderr, "fivectl: %s: the workers' replies differ in shape\n",
			        path);
			exit(EXIT_NOREACH);
		}
	}
	if (got == 0 || merged == NULL) {
		json_decref(merged);
		fprintf(stderr, "fivectl: refused: %s\n", reason);
		exit(EXIT_REFUSED);
	}
	return merged;
}

/* "name value" lines, nested objects' names joined with dots. */
static void
print_flat(const char *prefix, const json_t *o)
{
	char name[256];
	const char *key;
	json_t *v;
	char *text;

	json_object_foreach((json_t *)o, key, v)
	{
		snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] != '\0' ? "." : "", key);
		if (json_is_object(v)) {
			print_flat(name, v);
			continue;
		}
		text = json_dumps(v, JSON_ENCODE_ANY);
		printf("%s %s\n", name, text != NULL ? text : "?");
		free(text);
	}
}

static const char *
str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL && s[0] != '\0' ? s : "-";
}

static long long
num(const json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static void
print_sessions(const json_t *body)
{
	char who[128], src[96], service[80];
	const json_t *s;
	size_t i;

	printf("%-32s %-10s %-12s %-16s %-24s %-24s %-7s %10s %10s %8s\n", "ID", "STATE", "SERVICE",
	       "VHOST", "IDENTITY/METHOD", "SOURCE", "TRANSP", "IN", "OUT", "AGE(s)");
	json_array_foreach(json_object_get(body, "sessions"), i, s)
	{
		snprintf(who, sizeof(who), "%s/%s", str(s, "identity"), str(s, "method"));
		/* An IPv6 address in brackets, or its last group would read as the port. */
		snprintf(src, sizeof(src),
		         strchr(str(s, "src"), ':') != NULL ? "[%s]:%lld" : "%s:%lld",
		         str(s, "src"), num(s, "src_port"));
		/* A multiplexed session's service column says how many streams it carries. */
		if (strcmp(str(s, "state"), "multiplex") == 0)
			snprintf(service, sizeof(service), "MULTIPLEX:%lld", num(s, "streams"));
		else
			snprintf(service, sizeof(service), "%s", str(s, "service"));
		printf("%-32s %-10s %-12s %-16s %-24s %-24s %-7s %10lld %10lld %8lld\n",
		       str(s, "id"), str(s, "state"), service, str(s, "vhost"), who, src,
		       str(s, "transport"), num(s, "bytes_in"), num(s, "bytes_out"),
		       num(s, "age_ms") / 1000);
	}
	if (num(body, "shown") < num(body, "total"))
		printf("(%lld sessions, the newest %lld shown)\n", num(body, "total"),
		       num(body, "shown"));
}

static int
by_stream_id(const void *a, const void *b)
{
	long long x = num(*(json_t *const *)a, "id"), y = num(*(json_t *const *)b, "id");

	return (x > y) - (x < y);
}

/* A multiplexed session's streams, by stream id (fived lists them in no order). */
static void
print_streams(const json_t *body)
{
	const json_t *streams = json_object_get(body, "streams");
	size_t i, n = json_array_size(streams);
	json_t **sorted = calloc(n + 1, sizeof(*sorted));

	if (sorted == NULL) {
		fprintf(stderr, "fivectl: out of memory\n");
		exit(EXIT_NOREACH);
	}
	for (i = 0; i < n; i++)
		sorted[i] = json_array_get(streams, i);
	qsort(sorted, n, sizeof(*sorted), by_stream_id);
	printf("%10s %-16s %-10s %10s %10s %8s\n", "STREAM", "SERVICE", "STATE", "IN", "OUT",
	       "AGE(s)");
	for (i = 0; i < n; i++)
		printf("%10lld %-16s %-10s %10lld %10lld %8lld\n", num(sorted[i], "id"),
		       str(sorted[i], "service"),
		       json_is_true(json_object_get(sorted[i], "connected")) ? "open"
		                                                             : "connecting",
		       num(sorted[i], "bytes_in"), num(sorted[i], "bytes_out"),
		       num(sorted[i], "age_ms") / 1000);
	if (num(body, "shown") < num(body, "total"))
		printf("(%lld streams, %lld shown)\n", num(body, "total"), num(body, "shown"));
	free(sorted);
}

static void
too_long(void)
{
	fprintf(stderr, "fivectl: the argument is longer than %d characters\n", ADMIN_ARG_MAX);
	exit(EXIT_USAGE);
}

/* The argument of revoke -, a line from standard input. */
static void
read_arg(char *arg, size_t size)
{
	if (fgets(arg, (int)size, stdin) == NULL) {
		fprintf(stderr, "fivectl: nothing on standard input\n");
		exit(EXIT_USAGE);
	}
	if (strchr(arg, '\n') == NULL && !feof(stdin))
		too_long();
	arg[strcspn(arg, "\r\n")] = '\0';
}

/* The command's argument, as given, or from standard input. */
static void
take_arg(const char *given, char *arg, size_t size)
{
	if (strcmp(given, FROM_STDIN) == 0)
		read_arg(arg, size);
	else if (strlen(given) >= size)
		too_long();
	else
		str_copy(arg, given, size);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"json", no_argument, NULL, 'j'}, {"socket", required_argument, NULL, 's'}, {0}};
	const char *path = secure_getenv(ADMIN_SOCKET_ENV);
	struct admin_request *r = calloc(1, sizeof(*r));
	bool json = false;
	json_t *body;
	int c;

	while ((c = getopt_long(argc, argv, "js:", longopts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (c == 's')
			path = optarg;
		else
			usage();
	}
	if (r == NULL || optind >= argc || (r->command = admin_command_named(argv[optind])) == 0 ||
	    argc - optind != (admin_command_has_arg(r->command) ? 2 : 1))
		usage();
	if (admin_command_has_arg(r->command))
		take_arg(argv[optind + 1], r->arg, sizeof(r->arg));
	body = ask_all(path != NULL ? path : ADMIN_SOCKET_DEFAULT, r);
	if (json)
		json_dumpf(body, stdout, JSON_COMPACT);
	else if (r->command == ADMIN_SESSIONS)
		print_sessions(body);
	else if (r->command == ADMIN_STREAMS)
		print_streams(body);
	else
		print_flat("", body);
	if (json)
		putchar('\n');
	json_decref(body);
	free(r);
	return 0;
}
