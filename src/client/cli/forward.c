#include "client/cli/forward.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/cli/session.h"
#include "client/dial/dial.h"
#include "common/util.h"

#define FORWARD_BACKLOG 128
#define SPEC_MAX        300

/* Splits "PORT", "ADDR:PORT" or "[V6]:PORT" into addr and port (pointing into buf). */
static int
split_spec(const char *spec, char *buf, const char **addr, const char **port)
{
	char *colon;

	if (str_copy(buf, spec, SPEC_MAX) >= SPEC_MAX)
		return -1;
	*addr = "127.0.0.1";
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		*close = '\0';
		*addr = buf + 1;
		*port = close + 2;
	} else if ((colon = strrchr(buf, ':')) != NULL) {
		*colon = '\0';
		*addr = buf;
		*port = colon + 1;
	} else {
		*port = buf;
	}
	return five_port_valid(*port) ? 0 : -1;
}

static int
listen_on(const char *spec, struct five_error *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICHOST};
	struct addrinfo *res;
	char buf[SPEC_MAX];
	const char *addr, *port;
	int fd, r, one = 1;

	if (split_spec(spec, buf, &addr, &port) != 0)
		return five_fail(err, FIVE_ERR_USAGE,
		                 "-L %s: expected [ADDR:]PORT, PORT from 1 to 65535", spec);
	if ((r = getaddrinfo(addr, port, &hints, &res)) != 0)
		return five_fail(err, FIVE_ERR_USAGE, "-L %s: %s", spec, gai_strerror(r));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, FORWARD_BACKLOG) != 0) {
		five_fail(err, FIVE_ERR_SYSTEM, "-L %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* The child serving one forwarded connection. */
static void __attribute__((noreturn)) serve(int conn, const struct cli_request *req)
{
	struct five_error err = {.step = FIVE_OK};

	if (cli_session(req, conn, conn, true, &err) != 0)
		fprintf(stderr, "five: -L %s %s: %s: %s\n", req->host, req->service,
		        five_step_name(cli_shown_step(err.step)), err.message);
	close(conn);
	_exit(err.step == FIVE_OK ? 0 : 1);
}

int
cli_forward(const char *spec, const struct cli_request *req, struct five_error *err)
{
	struct sigaction sa = {.sa_handler = SIG_IGN, .sa_flags = SA_NOCLDWAIT};
	int lfd, conn;
	pid_t pid;

	if ((lfd = listen_on(spec, err)) < 0)
		return -1;
	/* Children are reaped by the kernel: no zombies, no SIGCHLD handling. */
	sigaction(SIGCHLD, &sa, NULL);
	for (;;) {
		if ((conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				/* Out of descriptors: wait for children to finish rather than spin.
				 */
				poll(NULL, 0, 100);
				continue;
			}
			return five_fail(err, FIVE_ERR_SYSTEM, "accept: %s", strerror(errno));
		}
		if ((pid = fork()) == 0) {
			close(lfd);
			serve(conn, req);
		}
		if (pid < 0)
			fprintf(stderr, "five: fork: %s\n", strerror(errno));
		close(conn);
	}
}
