#include "client/cli/session.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/cli/relay.h"
#include "client/internal.h"

/* Application bytes already waiting are sent in the same write as the request. */
#define EARLY_MAX (16 * 1024)

/* Reads what in_fd holds right now, without waiting. */
static size_t
take_early(int in_fd, char *buf, size_t size)
{
	struct pollfd pfd = {.fd = in_fd, .events = POLLIN};
	ssize_t n;

	if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN))
		return 0;
	n = read(in_fd, buf, size);
	return n > 0 ? (size_t)n : 0;
}

int
cli_session(const struct cli_request *req, int in_fd, int out_fd, bool out_is_socket,
            struct five_error *err)
{
	struct five_options o;
	struct relay_ends e;
	char early[EARLY_MAX], tail[FIVE_LINE_MAX];
	size_t n = 0, tail_len = 0;
	unsigned pending = 0;
	int fd, r, one = 1;

	five_options_resolve(&req->opts, &o);
	if ((fd = five_dial(req->host, &o, err)) < 0)
		return -1;
	/* Small writes (keystrokes, request lines) must not wait for an ACK. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* An authentication's last line travels with the request. */
	if (o.auth != NULL &&
	    five_auth_pipelined(fd, &o, tail, sizeof(tail), &tail_len, &pending, err) != 0) {
		close(fd);
		return -1;
	}
	if (!req->wait_for_grant)
		n = take_early(in_fd, early, sizeof(early));
	if (five_request_after(fd, tail, tail_len, req->service, &o, early, n, err) != 0) {
		close(fd);
		return -1;
	}
	e = (struct relay_ends){
	        .in_fd = in_fd,
	        .out_fd = out_fd,
	        .sock = fd,
	        .out_is_socket = out_is_socket,
	        .replies = pending + five_replies_expected(&o),
	        .hold_input = req->wait_for_grant,
	        .timeout_ms = o.timeout_ms,
	};
	r = cli_relay(&e, err);
	close(fd);
	return r;
}
