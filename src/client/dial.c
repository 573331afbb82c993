/*
 * Reaching fived over TCP: every address of the host, IPv6 and IPv4
 * interleaved and raced as RFC 8305 (Happy Eyeballs) describes, the first
 * connection to complete wins.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/internal.h"
#include "common/util.h"
#include "five.h"

/* RFC 8305's recommended "Connection Attempt Delay". */
#define ATTEMPT_DELAY_MS 250
#define ADDRESSES_MAX    16

struct race {
	struct pollfd pfd[ADDRESSES_MAX];
	size_t active;
	int last_errno;
};

/* Up to ADDRESSES_MAX addresses, families alternating, led by the resolver's first choice. */
static size_t
interleave(struct addrinfo *res, struct addrinfo **out)
{
	struct addrinfo *lead[ADDRESSES_MAX], *other[ADDRESSES_MAX], *ai;
	size_t nlead = 0, nother = 0, n = 0, i;

	for (ai = res; ai != NULL && nlead + nother < ADDRESSES_MAX; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		if (ai->ai_family == res->ai_family)
			lead[nlead++] = ai;
		else
			other[nother++] = ai;
	}
	for (i = 0; i < nlead || i < nother; i++) {
		if (i < nlead)
			out[n++] = lead[i];
		if (i < nother)
			out[n++] = other[i];
	}
	return n;
}

static void
set_blocking(int fd, bool blocking)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags >= 0)
		fcntl(fd, F_SETFL, blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK);
}

/* Starts one attempt; returns a connected fd at once (rare), or -1 with the attempt queued. */
static int
start_attempt(struct race *r, const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0) {
		r->last_errno = errno;
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		r->last_errno = errno;
		close(fd);
		return -1;
	}
	r->pfd[r->active].fd = fd;
	r->pfd[r->active].events = POLLOUT;
	r->active++;
	return -1;
}

/* Checks attempts poll reported; returns the first that connected, or -1. */
static int
collect(struct race *r)
{
	size_t i = 0;
	int err;
	socklen_t len;

	while (i < r->active) {
		if (r->pfd[i].revents == 0) {
			i++;
			continue;
		}
		len = sizeof(err);
		if (getsockopt(r->pfd[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err == 0) {
			int fd = r->pfd[i].fd;
			r->pfd[i] = r->pfd[--r->active];
			return fd;
		}
		r->last_errno = err;
		close(r->pfd[i].fd);
		r->pfd[i] = r->pfd[--r->active];
	}
	return -1;
}

static int
run_race(struct addrinfo **addrs, size_t n, int timeout_ms, int *last_errno)
{
	struct race r = {.active = 0, .last_errno = ECONNREFUSED};
	uint64_t deadline = monotonic_ms() + (uint64_t)timeout_ms, started = 0, now;
	size_t next = 0, i;
	int fd = -1, wait;

	while (fd < 0) {
		now = monotonic_ms();
		if (next < n && (r.active == 0 || now - started >= ATTEMPT_DELAY_MS)) {
			started = now;
			if ((fd = start_attempt(&r, addrs[next++])) >= 0)
				break;
			continue;
		}
		if (r.active == 0 || now >= deadline) {
			if (now >= deadline)
				r.last_errno = ETIMEDOUT;
			break;
		}
		wait = (int)(deadline - now);
		if (next < n && started + ATTEMPT_DELAY_MS - now < (uint64_t)wait)
			wait = (int)(started + ATTEMPT_DELAY_MS - now);
		for (i = 0; i < r.active; i++)
			r.pfd[i].revents = 0;
		if (poll(r.pfd, r.active, wait) < 0 && errno != EINTR) {
			r.last_errno = errno;
			break;
		}
		fd = collect(&r);
	}
	for (i = 0; i < r.active; i++)
		close(r.pfd[i].fd);
	*last_errno = r.last_errno;
	return fd;
}

static int
dial_port(const char *host, const char *port, const struct five_options *o, struct five_error *err,
          int *last_errno)
{
	/* Both families whatever the local addresses: the race sorts out what works. */
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL, *addrs[ADDRESSES_MAX];
	size_t n;
	int r, fd, one = 1;

	hints.ai_family = o->family;
	if ((r = getaddrinfo(host, port, &hints, &res)) != 0) {
		five_fail(err, FIVE_ERR_RESOLVE, "%s: %s", host, gai_strerror(r));
		return -1;
	}
	n = interleave(res, addrs);
	fd = run_race(addrs, n, o->timeout_ms, last_errno);
	freeaddrinfo(res);
	if (fd < 0) {
		five_fail(err, FIVE_ERR_CONNECT, "%s port %s: %s", host, port,
		          strerror(*last_errno));
		return -1;
	}
	set_blocking(fd, true);
	/* Handshake messages and request lines are small writes that must not wait for an ACK. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int
five_dial_port(const char *host, const struct five_options *opts, char *port_out, size_t size,
               struct five_error *err)
{
	struct five_options o;
	const char *port;
	int fd, last_errno = 0;

	five_options_resolve(opts, &o);
	port = o.port != NULL ? o.port : FIVE_PORT;
	fd = dial_port(host, port, &o, err, &last_errno);
	if (fd < 0 && o.port == NULL && err->step == FIVE_ERR_CONNECT &&
	    last_errno == ECONNREFUSED) {
		port = FIVE_FALLBACK_PORT;
		fd = dial_port(host, port, &o, err, &last_errno);
	}
	if (fd >= 0 && port_out != NULL)
		str_copy(port_out, port, size);
	return fd;
}

int
five_dial(const char *host, const struct five_options *opts, struct five_error *err)
{
	return five_dial_port(host, opts, NULL, 0, err);
}
