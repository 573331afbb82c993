/*
 * A program linked against libfive that uses one multiplexed session.
 *
 *   libfive_mux HOST PORT streams SERVICE N BYTES
 *	opens N streams to SERVICE (an echo), each from a thread of its own,
 *	sends BYTES bytes of its own pattern on each and checks every byte
 *	that comes back; prints "ok N" or the first error.
 *   libfive_mux HOST PORT request SERVICE MESSAGE TIMEOUT_MS
 *	five_session_request: prints the reply, or the error.
 *   libfive_mux HOST PORT open SERVICE
 *	five_session_stream once: prints "ok" or the error.
 *
 * LIBFIVE_TRANSPORT: "plain", "tofu", or the server's key, as for
 * libfive_client; "tls-tofu": TLS, pinning a new server's key.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "five.h"

#define STREAMS_MAX 64
#define CHUNK       8192

struct job {
	struct five_session *s;
	const char *service;
	size_t bytes;
	unsigned index;
	char error[FIVE_LINE_MAX + 64];
};

static uint8_t
pattern(unsigned index, size_t at)
{
	return (uint8_t)((at * 31 + index * 7 + (at >> 9)) & 0xff);
}

/* Sends the pattern and checks what comes back, both at once (an echo answers as it reads). */
static void
exchange(struct job *j, int fd)
{
	struct pollfd pfd = {.fd = fd};
	uint8_t out[CHUNK], in[CHUNK];
	size_t sent = 0, got = 0, i, n;
	ssize_t r;

	/* Up to the service's end of stream: the stream then ends cleanly both ways. */
	for (;;) {
		pfd.events = POLLIN | (sent < j->bytes ? POLLOUT : 0);
		if (poll(&pfd, 1, 20000) <= 0) {
			snprintf(j->error, sizeof(j->error), "stream %u: stalled at %zu", j->index,
			         got);
			return;
		}
		if ((pfd.revents & POLLOUT) && sent < j->bytes) {
			n = j->bytes - sent < sizeof(out) ? j->bytes - sent : sizeof(out);
			for (i = 0; i < n; i++)
				out[i] = pattern(j->index, sent + i);
			if ((r = send(fd, out, n, MSG_DONTWAIT)) > 0)
				sent += (size_t)r;
			if (sent == j->bytes)
				shutdown(fd, SHUT_WR);
		}
		if (!(pfd.revents & (POLLIN | POLLHUP)))
			continue;
		if ((r = recv(fd, in, sizeof(in), MSG_DONTWAIT)) <= 0) {
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r == 0 && got == j->bytes)
				return;
			snprintf(j->error, sizeof(j->error), "stream %u: ended at %zu", j->index,
			         got);
			return;
		}
		for (i = 0; i < (size_t)r; i++)
			if (got + i >= j->bytes || in[i] != pattern(j->index, got + i)) {
				snprintf(j->error, sizeof(j->error), "stream %u: byte %zu differs",
				         j->index, got + i);
				return;
			}
		got += (size_t)r;
	}
}

static void *
run(void *arg)
{
	struct job *j = arg;
	struct five_error err;
	int fd = five_session_stream(j->s, j->service, NULL, 0, &err);

	if (fd < 0) {
		snprintf(j->error, sizeof(j->error), "error %s: %s", five_step_name(err.step),
		         err.message);
		return NULL;
	}
	exchange(j, fd);
	close(fd);
	return NULL;
}

static int
streams(struct five_session *s, const char *service, unsigned n, size_t bytes)
{
	static struct job jobs[STREAMS_MAX];
	pthread_t t[STREAMS_MAX];
	unsigned i;

	if (n > STREAMS_MAX)
		return 2;
	for (i = 0; i < n; i++) {
		jobs[i] = (struct job){.s = s, .service = service, .bytes = bytes, .index = i};
		if (pthread_create(&t[i], NULL, run, &jobs[i]) != 0)
			return 1;
	}
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < n; i++)
		if (jobs[i].error[0] != '\0') {
			printf("%s\n", jobs[i].error);
			return 1;
		}
	printf("ok %u\n", n);
	return 0;
}

static int
request(struct five_session *s, const char *service, const char *message, int timeout_ms)
{
	struct five_error err;
	char reply[4096];
	size_t n;

	if (five_session_request(s, service, message, strlen(message), reply, sizeof(reply), &n,
	                         timeout_ms, &err) != 0) {
		printf("error %s: %s\n", five_step_name(err.step), err.message);
		return 1;
	}
	fwrite(reply, 1, n, stdout);
	return 0;
}

static int
open_one(struct five_session *s, const char *service)
{
	struct five_error err;
	int fd = five_session_stream(s, service, NULL, 0, &err);

	if (fd < 0) {
		printf("error %s: %s\n", five_step_name(err.step), err.message);
		return 1;
	}
	close(fd);
	printf("ok\n");
	return 0;
}

int
main(int argc, char **argv)
{
	struct five_options o;
	struct five_error err;
	struct five_session *s;
	const char *mode;
	int r = 2;

	if (argc < 5)
		return 2;
	five_options_init(&o);
	o.port = argv[2];
	mode = getenv("LIBFIVE_TRANSPORT");
	if (mode != NULL && strcmp(mode, "plain") == 0)
		o.transport = FIVE_PLAIN;
	else if (mode != NULL && strcmp(mode, "tls-tofu") == 0)
		o.transport = FIVE_TLS;
	else if (mode != NULL && strcmp(mode, "tofu") != 0)
		o.server_key = mode;
	o.trust_on_first_use = mode != NULL && strstr(mode, "tofu") != NULL;
	if ((s = five_session_open(argv[1], &o, &err)) == NULL) {
		printf("error %s: %s\n", five_step_name(err.step), err.message);
		return 1;
	}
	if (strcmp(argv[3], "streams") == 0 && argc == 7)
		r = streams(s, argv[4], (unsigned)atoi(argv[5]), (size_t)atol(argv[6]));
	else if (strcmp(argv[3], "request") == 0 && argc == 7)
		r = request(s, argv[4], argv[5], atoi(argv[6]));
	else if (strcmp(argv[3], "open") == 0)
		r = open_one(s, argv[4]);
	five_session_close(s);
	return r;
}
