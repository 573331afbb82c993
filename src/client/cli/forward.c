#include "client/cli/forward.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/cli/session.h"
#include "client/cli/shared.h"
#include "client/cli/signals.h"
#include "client/dial/dial.h"
#include "common/util.h"
#include "crypto/aesgcm.h"

#define FORWARD_BACKLOG 128
#define SPEC_MAX        300
/* --multiplex: how often sessions no longer used are looked at, at most. */
#define REAP_MS 1000

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

	if (cli_session_forwarded(req, conn, &err) != 0)
		fprintf(stderr, "five: -L %s %s: %s: %s\n", req->host, req->service,
		        five_step_name(cli_shown_step(err.step)), err.message);
	close(conn);
	_exit(err.step == FIVE_OK ? 0 : 1);
}

/*
 * One connection on a session of its own, in a child process.  The
 * forwarder's end ends it too (SIGTERM, with what that does to its
 * connections), also when the forwarder was killed outright.
 */
static void
fork_serve(int lfd, int conn, const struct cli_request *req)
{
	pid_t parent = getpid();
	pid_t pid;

	if ((pid = fork()) == 0) {
		close(lfd);
		cli_signals_after_fork();
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
			raise(SIGTERM);
		serve(conn, req);
	}
	if (pid < 0)
		fprintf(stderr, "five: fork: %s\n", strerror(errno));
	close(conn);
}

/*
 * The next connection, or -1 after REAP_MS without one (or a transient
 * failure), or -2 with err filled, or -3 when told to stop.
 */
static int
next_conn(int lfd, int stop_fd, struct five_error *err)
{
	struct pollfd pfd[2] = {{.fd = lfd, .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
	int conn;

	if (poll(pfd, 2, REAP_MS) <= 0)
		return -1;
	if (pfd[1].revents != 0)
		return -3;
	if ((conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		return conn;
	if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
		return -1;
	if (errno == EMFILE || errno == ENFILE) {
		/* Out of descriptors: wait for streams and children to finish rather than spin. */
		poll(NULL, 0, 100);
		return -1;
	}
	five_fail(err, FIVE_ERR_SYSTEM, "accept: %s", strerror(errno));
	return -2;
}

int
cli_forward(const char *spec, const struct cli_request *req, struct five_error *err)
{
	struct sigaction sa = {.sa_handler = SIG_IGN, .sa_flags = SA_NOCLDWAIT};
	struct shared sh = {.req = req};
	int lfd, stop_fd, conn;

	if ((lfd = listen_on(spec, err)) < 0)
		return -1;
	/* Children are reaped by the kernel: no zombies, no SIGCHLD handling. */
	sigaction(SIGCHLD, &sa, NULL);
	/* A connection that goes away mid-write must not end the forwarder. */
	signal(SIGPIPE, SIG_IGN);
	/* Each child would otherwise load OpenSSL's AES-GCM anew: milliseconds a connection. */
	if (!req->multiplex && aesgcm_hardware())
		aesgcm_preload();
	stop_fd = cli_signals_catch(false);
	for (;;) {
		if (req->multiplex)
			shared_reap(&sh);
		if ((conn = next_conn(lfd, stop_fd, err)) == -2)
			return -1;
		if (conn == -3)
			break;
		if (conn < 0)
			continue;
		if (!req->multiplex || !shared_take(&sh, conn))
			fork_serve(lfd, conn, req);
	}
	/* Stopped: the shared sessions' streams are reset, at fived's backends too. */
	shared_close(&sh);
	cli_signals_die_if_caught();
	return 0;
}
