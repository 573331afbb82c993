/*
 * A small program linked against libfive that registers a service with
 * fived over its control socket and serves the streams it is handed: each
 * gets one line saying who called, then an echo of what it sends until EOF.
 * Usage: register_echo CONTROL_PATH SERVICE [COUNT]
 * COUNT streams are served one after another, or streams forever without it.
 * Prints "registered" once the registration stands; on a libfive error
 * prints "error STEP: MESSAGE" and exits 1.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "five.h"

#define ECHO_BUFFER 4096
#define HEADER_MAX  1024

static int
write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The line that tells the peer what fived said about it. */
static int
write_header(int fd, const struct five_identity *id)
{
	char line[HEADER_MAX];
	int n;

	n = snprintf(line, sizeof(line),
	             "identity=%s method=%s withheld=%d service=%s vhost=%s remote=%s:%u "
	             "session=%s stream=%u encrypted=%d\n",
	             id->identity[0] != '\0' ? id->identity : "-", id->auth_method,
	             id->withheld ? 1 : 0, id->service, id->vhost, id->remote_addr, id->remote_port,
	             id->session, id->stream, id->encrypted);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	return write_all(fd, line, (size_t)n);
}

static void
serve(int fd, const struct five_identity *id)
{
	char buf[ECHO_BUFFER];
	ssize_t n;

	if (write_header(fd, id) != 0)
		return;
	for (;;) {
		if ((n = read(fd, buf, sizeof(buf))) < 0 && errno == EINTR)
			continue;
		if (n <= 0 || write_all(fd, buf, (size_t)n) != 0)
			return;
	}
}

int
main(int argc, char **argv)
{
	struct five_listener *l;
	struct five_identity id;
	struct five_error err;
	unsigned long count = 0, served;
	char *end;
	int fd, status = 0;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: register_echo CONTROL_PATH SERVICE [COUNT]\n");
		return 2;
	}
	if (argc == 4) {
		errno = 0;
		count = strtoul(argv[3], &end, 10);
		if (errno != 0 || end == argv[3] || *end != '\0' || argv[3][0] == '-') {
			fprintf(stderr, "register_echo: invalid count \"%s\"\n", argv[3]);
			return 2;
		}
	}
	/* A peer that leaves early must end its stream, not this program. */
	signal(SIGPIPE, SIG_IGN);
	if ((l = five_listen_at(argv[1], argv[2], &err)) == NULL) {
		printf("error %s: %s\n", five_step_name(err.step), err.message);
		return 1;
	}
	printf("registered\n");
	fflush(stdout);
	for (served = 0; argc < 4 || served < count; served++) {
		five_identity_init(&id);
		if ((fd = five_accept(l, &id, &err)) < 0) {
			printf("error %s: %s\n", five_step_name(err.step), err.message);
			status = 1;
			break;
		}
		serve(fd, &id);
		close(fd);
	}
	fflush(stdout);
	five_listener_close(l);
	return status;
}
