/*
 * Reaching fived over TCP: every address of the host, IPv6 and IPv4
 * interleaved and raced as RFC 8305 (Happy Eyeballs) describes, the first
 * connection to complete wins.
 */
#include "client/dial/dial.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/base/options.h"
#include "client/base/sock.h"
#include "client/dial/resolve.h"
#include "common/util.h"
#include "five.h"

/* RFC 8305's recommended "Connection Attempt Delay". */
#define ATTEMPT_DELAY_MS 250
#define ADDRESSES_MAX    16
/* Ports tried: the one given, or FIVE_PORT then FIVE_FALLBACK_PORT. */
#define PORTS_MAX 2

/* One connection attempt, for the message when none succeeds. */
struct attempt {
	char addr[INET6_ADDRSTRLEN];
	const char *port;
	int error;
};

/* Every attempt of a dial, over every port. */
struct tried {
	struct attempt a[PORTS_MAX * ADDRESSES_MAX];
	size_t n;
};

struct race {
	struct pollfd pfd[ADDRESSES_MAX];
	struct attempt *attempt[ADDRESSES_MAX]; /* pfd[i]'s */
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

/* Records an attempt at ai's address on port (its error still 0). */
static struct attempt *
record(struct tried *t, const struct addrinfo *ai, const char *port)
{
	const void *in =
	        ai->ai_family == AF_INET6
	                ? (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
	                : (const void *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
	struct attempt *a = &t->a[t->n++];

	if (inet_ntop(ai->ai_family, in, a->addr, sizeof(a->addr)) == NULL)
		str_copy(a->addr, "?", sizeof(a->addr));
	a->port = port;
	a->error = 0;
	return a;
}

static void
failed(struct race *r, struct attempt *a, int error)
{
	r->last_errno = error;
	a->error = error;
}

/* Starts one attempt; returns a connected fd at once (rare), or -1 with the attempt queued. */
static int
start_attempt(struct race *r, const struct addrinfo *ai, struct attempt *a)
{
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0) {
		failed(r, a, errno);
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		failed(r, a, errno);
		close(fd);
		return -1;
	}
	r->pfd[r->active].fd = fd;
	r->pfd[r->active].events = POLLOUT;
	r->attempt[r->active] = a;
	r->active++;
	return -1;
}

/* Takes pfd[i] out of the race; the last one moves into its place. */
static void
drop(struct race *r, size_t i)
{
	r->active--;
	r->pfd[i] = r->pfd[r->active];
	r->attempt[i] = r->attempt[r->active];
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
			drop(r, i);
			return fd;
		}
		failed(r, r->attempt[i], err);
		close(r->pfd[i].fd);
		drop(r, i);
	}
	return -1;
}

static int
run_race(struct addrinfo **addrs, size_t n, const char *port, int timeout_ms, struct tried *t,
         int *last_errno)
{
	struct race r = {.active = 0, .last_errno = ECONNREFUSED};
	uint64_t deadline = monotonic_ms() + (uint64_t)timeout_ms, started = 0, now;
	struct attempt *a;
	size_t next = 0, i;
	int fd = -1, wait;

	while (fd < 0) {
		now = monotonic_ms();
		if (next < n && (r.active == 0 || now - started >= ATTEMPT_DELAY_MS)) {
			started = now;
			a = record(t, addrs[next], port);
			if ((fd = start_attempt(&r, addrs[next++], a)) >= 0)
				break;
			continue;
		}
		if (r.active == 0 || now >= deadline) {
			for (i = 0; now >= deadline && i < r.active; i++)
				failed(&r, r.attempt[i], ETIMEDOUT);
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

/* Appends fmt's text to out[0..size), which holds *len bytes. */
static void __attribute__((format(printf, 4, 5)))
append(char *out, size_t size, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*len >= size)
		return;
	va_start(ap, fmt);
	n = vsnprintf(out + *len, size - *len, fmt, ap);
	va_end(ap);
	*len = n < 0 ? size : *len + (size_t)n;
}

static bool
alike(const struct attempt *a, const struct attempt *b, bool same_addr)
{
	return a->error == b->error && (!same_addr || strcmp(a->addr, b->addr) == 0);
}

/* Whether an attempt before the i-th failed alike (the same error, and address if same_addr). */
static bool
told_before(const struct tried *t, size_t i, bool same_addr)
{
	size_t j;

	for (j = 0; j < i; j++)
		if (alike(&t->a[j], &t->a[i], same_addr))
			return true;
	return false;
}

/*
 * "Connection refused (tried 127.0.0.1 port 1 and port 5501)": every
 * attempt, by error, then by address.
 */
static int
fail_tried(const struct tried *t, int last_errno, struct five_error *err)
{
	char text[sizeof(err->message)];
	size_t len = 0, i, j, k;

	if (t->n == 0)
		return five_fail(err, FIVE_ERR_CONNECT, "%s", strerror(last_errno));
	for (i = 0; i < t->n; i++) {
		if (told_before(t, i, false))
			continue;
		append(text, sizeof(text), &len, "%s%s (tried ", len > 0 ? "; " : "",
		       strerror(t->a[i].error));
		for (j = i; j < t->n; j++) {
			if (!alike(&t->a[j], &t->a[i], false) || told_before(t, j, true))
				continue;
			append(text, sizeof(text), &len, "%s%s port %s", j > i ? ", " : "",
			       t->a[j].addr, t->a[j].port);
			for (k = j + 1; k < t->n; k++)
				if (alike(&t->a[k], &t->a[j], true))
					append(text, sizeof(text), &len, " and port %s",
					       t->a[k].port);
		}
		append(text, sizeof(text), &len, ")");
	}
	return five_fail(err, FIVE_ERR_CONNECT, "%s", text);
}

/*
 * One port: every address of host, raced.  Resolving and connecting share
 * o->timeout_ms.  Returns a descriptor, or -1.
 */
static int
dial_port(const char *host, const char *port, const struct five_options *o, struct tried *t,
          struct five_error *err, int *last_errno)
{
	/* Both families whatever the local addresses: the race sorts out what works. */
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL, *addrs[ADDRESSES_MAX];
	uint64_t deadline = monotonic_ms() + (uint64_t)o->timeout_ms, now;
	size_t n;
	int fd;

	hints.ai_family = o->family;
	if (five_resolve(getaddrinfo, host, port, &hints, o->timeout_ms, &res, err) != 0)
		return -1;
	n = interleave(res, addrs);
	now = monotonic_ms();
	fd = run_race(addrs, n, port, now < deadline ? (int)(deadline - now) : 0, t, last_errno);
	freeaddrinfo(res);
	if (fd < 0) {
		fail_tried(t, *last_errno, err);
		return -1;
	}
	set_blocking(fd, true);
	five_sock_no_delay(fd);
	return fd;
}

bool
five_port_valid(const char *port)
{
	uint64_t v;

	return parse_uint(port, 65535, &v) == 0 && v > 0;
}

int
five_dial_port(const char *host, const struct five_options *opts, char *port_out, size_t size,
               struct five_error *err)
{
	struct five_options o;
	struct tried *t;
	const char *port;
	int fd, last_errno = 0;

	if (five_options_resolve(opts, &o, err) != 0)
		return -1;
	if (o.port != NULL && !five_port_valid(o.port))
		return five_fail(err, FIVE_ERR_USAGE, "invalid port \"%.16s\": expected 1 to 65535",
		                 o.port);
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
	port = o.port != NULL ? o.port : FIVE_PORT;
	fd = dial_port(host, port, &o, t, err, &last_errno);
	if (fd < 0 && o.port == NULL && err->step == FIVE_ERR_CONNECT &&
	    last_errno == ECONNREFUSED) {
		port = FIVE_FALLBACK_PORT;
		fd = dial_port(host, port, &o, t, err, &last_errno);
	}
	if (fd >= 0 && port_out != NULL)
		str_copy(port_out, port, size);
	free(t);
	return fd;
}

int
five_dial(const char *host, const struct five_options *opts, struct five_error *err)
{
	struct five_error scratch;
	struct five_options o;

	err = five_error_or(err, &scratch);
	if (five_options_resolve(opts, &o, err) != 0 ||
	    five_options_plain_step(&o, "five_dial", err) != 0)
		return -1;
	return five_dial_port(host, &o, NULL, 0, err);
}
