#include "client/base/sock.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client/base/error.h"
#include "common/util.h"

int
five_sock_send_all(int fd, const void *data, size_t len, struct five_error *err)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		if ((n = send(fd, p, len, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			return five_fail(err, FIVE_ERR_CONNECT, "send: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
five_sock_send_by(int fd, const void *data, size_t len, uint64_t deadline, struct five_error *err)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	const char *p = data;
	uint64_t now;
	ssize_t n;

	while (len > 0) {
		if ((n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT)) >= 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
			return five_fail(err, FIVE_ERR_CONNECT, "send: %s", strerror(errno));
		if ((now = monotonic_ms()) >= deadline)
			return five_fail(err, FIVE_ERR_CONNECT, "send: %s", strerror(ETIMEDOUT));
		if (poll(&pfd, 1, (int)(deadline - now)) < 0 && errno != EINTR)
			return five_fail(err, FIVE_ERR_SYSTEM, "poll: %s", strerror(errno));
	}
	return 0;
}

int
five_ms_left(uint64_t deadline)
{
	uint64_t now = monotonic_ms();

	return now >= deadline ? 0 : deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

int
five_sock_read_line(int fd, int timeout_ms, char *line, size_t size, struct five_error *err)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	uint64_t deadline = monotonic_ms() + (uint64_t)timeout_ms;
	size_t n = 0;
	ssize_t r;
	char c;

	for (;;) {
		if ((r = poll(&pfd, 1, five_ms_left(deadline))) == 0)
			return five_fail(err, FIVE_ERR_PROTOCOL, "no reply within %d ms",
			                 timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if ((r = recv(fd, &c, 1, 0)) < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return five_fail(err, FIVE_ERR_CONNECT, "recv: %s", strerror(errno));
		if (r == 0)
			return five_fail(err, FIVE_ERR_PROTOCOL,
			                 "connection closed before a reply");
		if (c == '\n')
			break;
		/* A line is text: a NUL would cut it short where C reads it. */
		if (c == '\0')
			return five_fail(err, FIVE_ERR_PROTOCOL, "a NUL byte in a reply line");
		if (n + 1 >= size)
			return five_fail(err, FIVE_ERR_PROTOCOL, "reply line too long");
		line[n++] = c;
	}
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	return 0;
}

int
five_sock_dial_unix(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (str_copy(sun.sun_path, path, sizeof(sun.sun_path)) >= sizeof(sun.sun_path) ||
	    (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* How long the loopback pair's own connection may take to be accepted. */
#define LOOPBACK_ACCEPT_MS 1000

int
five_sock_no_delay(int fd)
{
	int one = 1;

	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Accepts from l until the connection from mine comes: its fd, or -1. */
static int
accept_own(int l, const struct sockaddr_in *mine)
{
	uint64_t deadline = monotonic_ms() + LOOPBACK_ACCEPT_MS;
	struct pollfd pfd = {.fd = l, .events = POLLIN};
	struct sockaddr_in peer;
	socklen_t len;
	int fd, r;

	for (;;) {
		if ((r = poll(&pfd, 1, five_ms_left(deadline))) < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len = sizeof(peer);
		if ((fd = accept4(l, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC)) < 0)
			continue;
		if (len == sizeof(peer) && peer.sin_port == mine->sin_port &&
		    peer.sin_addr.s_addr == mine->sin_addr.s_addr)
			return fd;
		close(fd);
	}
	errno = ETIMEDOUT;
	return -1;
}

int
five_sock_loopback_pair(int pair[2])
{
	struct sockaddr_in addr = {.sin_family = AF_INET,
	                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_in mine; /* pair[0]'s own address, which the accepted peer must be */
	socklen_t len = sizeof(addr), mine_len = sizeof(mine);
	int l, c = -1, a = -1, e;

	if ((l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return -1;
	if (bind(l, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(l, 8) != 0 ||
	    getsockname(l, (struct sockaddr *)&addr, &len) != 0 ||
	    (c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(c, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    getsockname(c, (struct sockaddr *)&mine, &mine_len) != 0 ||
	    (a = accept_own(l, &mine)) < 0 || five_sock_no_delay(a) != 0 ||
	    five_sock_no_delay(c) != 0)
		goto fail;
	close(l);
	pair[0] = c;
	pair[1] = a;
	return 0;
fail:
	e = errno;
	close(l);
	if (c >= 0)
		close(c);
	if (a >= 0)
		close(a);
	errno = e;
	return -1;
}

void
five_sock_reset_on_close(int fd)
{
	struct linger reset = {.l_onoff = 1, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
}

void
five_sock_end_in_order(int fd)
{
	struct linger in_order = {.l_onoff = 0, .l_linger = 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &in_order, sizeof(in_order));
}

/* Room for the descriptors one read may bring: the mark's, and a few a peer might add. */
#define MARK_FDS_MAX 4

int
five_sock_send_mark(int fd, char mark)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = &mark, .iov_len = 1};
	struct msghdr m = {.msg_iov = &iov,
	                   .msg_iovlen = 1,
	                   .msg_control = control.buf,
	                   .msg_controllen = sizeof(control.buf)};
	struct cmsghdr *c;

	memset(&control, 0, sizeof(control));
	c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
		return 1;
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
}

/* Closes the descriptors a message brought; whether there were any. */
static bool
close_passed(struct msghdr *m)
{
	struct cmsghdr *c;
	bool any = (m->msg_flags & MSG_CTRUNC) != 0;
	size_t i, n;
	int fd;

	for (c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			close(fd);
		}
		any = true;
	}
	return any;
}

ssize_t
five_sock_recv_marked(int fd, void *buf, size_t len, char *mark)
{
	union {
		char buf[CMSG_SPACE(MARK_FDS_MAX * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr m = {.msg_iov = &iov,
	                   .msg_iovlen = 1,
	                   .msg_control = control.buf,
	                   .msg_controllen = sizeof(control.buf)};
	ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
	bool marked = n > 0 && close_passed(&m);

	*mark = marked ? ((char *)buf)[n - 1] : 0;
	return marked ? n - 1 : n;
}
