#include "client/cli/relay.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/internal.h"
#include "common/util.h"
#include "proto/line.h"

#define RELAY_BUFFER (64 * 1024)

struct pipe_buf {
	char data[RELAY_BUFFER];
	size_t len;
};

struct relay {
	const struct relay_ends *e;
	struct pipe_buf up, down;
	char reply[LINE_MAX_BYTES];
	size_t reply_len;
	unsigned replies_due;
	bool in_eof, sock_eof, sock_shut, out_shut;
	uint64_t deadline;
};

static bool
transient(void)
{
	return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
}

/* Bytes from fived before the grant: reply lines, then the service's first bytes. */
static int
take_replies(struct relay *r, const char *p, size_t n, struct five_error *err)
{
	size_t i;

	for (i = 0; i < n && r->replies_due > 0; i++) {
		if (p[i] != '\n') {
			if (r->reply_len == sizeof(r->reply) - 1)
				return five_fail(err, FIVE_ERR_PROTOCOL, "reply line too long");
			r->reply[r->reply_len++] = p[i];
			continue;
		}
		if (r->reply_len > 0 && r->reply[r->reply_len - 1] == '\r')
			r->reply_len--;
		r->reply[r->reply_len] = '\0';
		r->reply_len = 0;
		if (five_check_reply(r->reply, err) != 0)
			return -1;
		r->replies_due--;
	}
	memcpy(r->down.data + r->down.len, p + i, n - i);
	r->down.len += n - i;
	return 0;
}

static int
read_sock(struct relay *r, struct five_error *err)
{
	char tmp[RELAY_BUFFER];
	size_t room = sizeof(r->down.data) - r->down.len;
	ssize_t n = recv(r->e->sock, tmp, room, 0);

	if (n < 0)
		return transient() ? 0
		                   : five_fail(err, FIVE_ERR_CONNECT, "recv: %s", strerror(errno));
	if (n == 0) {
		r->sock_eof = true;
		if (r->replies_due > 0)
			return five_fail(err, FIVE_ERR_PROTOCOL,
			                 "connection closed before a reply");
		return 0;
	}
	return take_replies(r, tmp, (size_t)n, err);
}

static int
read_in(struct relay *r)
{
	ssize_t n = read(r->e->in_fd, r->up.data + r->up.len, sizeof(r->up.data) - r->up.len);

	if (n < 0 && transient())
		return 0;
	if (n <= 0) {
		r->in_eof = true;
		return 0;
	}
	r->up.len += (size_t)n;
	return 0;
}

/* Writes as much of b as fd takes.  Returns 0, or -1 when fd is gone. */
static int
flush(int fd, struct pipe_buf *b, bool is_socket)
{
	ssize_t n =
	        is_socket ? send(fd, b->data, b->len, MSG_NOSIGNAL) : write(fd, b->data, b->len);

	if (n < 0)
		return transient() ? 0 : -1;
	memmove(b->data, b->data + n, b->len - (size_t)n);
	b->len -= (size_t)n;
	return 0;
}

/* Ends of stream travel on: an application EOF becomes a shutdown towards fived, and back. */
static void
propagate_ends(struct relay *r)
{
	if (r->in_eof && r->up.len == 0 && !r->sock_shut) {
		shutdown(r->e->sock, SHUT_WR);
		r->sock_shut = true;
	}
	if (r->sock_eof && r->down.len == 0 && !r->out_shut) {
		if (r->e->out_is_socket)
			shutdown(r->e->out_fd, SHUT_WR);
		r->out_shut = true;
	}
}

static bool
finished(const struct relay *r)
{
	/* On standard output, the session is over when fived's side is; a forwarded
	 * connection is over when both sides are. */
	return r->out_shut && (!r->e->out_is_socket || r->sock_shut);
}

static int
poll_timeout(const struct relay *r)
{
	uint64_t now = monotonic_ms();

	if (r->replies_due == 0)
		return -1;
	return now >= r->deadline ? 0 : (int)(r->deadline - now);
}

static int
step(struct relay *r, struct five_error *err)
{
	const struct relay_ends *e = r->e;
	struct pollfd pfd[4] = {{.fd = -1}, {.fd = -1}, {.fd = -1}, {.fd = -1}};
	int n;

	if (!r->in_eof && r->up.len < sizeof(r->up.data) && !(e->hold_input && r->replies_due > 0))
		pfd[0] = (struct pollfd){.fd = e->in_fd, .events = POLLIN};
	if (!r->sock_eof && r->down.len < sizeof(r->down.data))
		pfd[1] = (struct pollfd){.fd = e->sock, .events = POLLIN};
	if (r->up.len > 0)
		pfd[2] = (struct pollfd){.fd = e->sock, .events = POLLOUT};
	if (r->down.len > 0)
		pfd[3] = (struct pollfd){.fd = e->out_fd, .events = POLLOUT};
	if ((n = poll(pfd, 4, poll_timeout(r))) < 0)
		return errno == EINTR
		               ? 0
		               : five_fail(err, FIVE_ERR_SYSTEM, "poll: %s", strerror(errno));
	if (n == 0)
		return five_fail(err, FIVE_ERR_PROTOCOL, "no reply within %d ms", e->timeout_ms);
	if (pfd[1].revents != 0 && read_sock(r, err) != 0)
		return -1;
	if (pfd[0].revents != 0)
		read_in(r);
	if (pfd[2].revents != 0 && flush(e->sock, &r->up, true) != 0)
		return five_fail(err, FIVE_ERR_CONNECT, "send: %s", strerror(errno));
	if (pfd[3].revents != 0 && flush(e->out_fd, &r->down, e->out_is_socket) != 0) {
		/* The application stopped reading: nothing more can be delivered. */
		r->down.len = 0;
		r->sock_eof = true;
	}
	propagate_ends(r);
	return 0;
}

int
cli_relay(const struct relay_ends *e, struct five_error *err)
{
	struct relay *r = calloc(1, sizeof(*r));
	int result = 0;

	if (r == NULL)
		return five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
	r->e = e;
	r->replies_due = e->replies;
	r->deadline = monotonic_ms() + (uint64_t)e->timeout_ms;
	while (result == 0 && !finished(r))
		result = step(r, err);
	free(r);
	return result;
}
