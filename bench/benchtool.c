/*
 * benchtool: the backend and the load generators of fived's benchmarks.
 *
 *   benchtool serve [-l ADDR:PORT]... [-e ADDR:PORT]...
 *   benchtool ttfb  (-c ADDR:PORT | -A NAME:PORT | -x) [common] -n BYTES -r REPS [-i MS] [-q REQ]
 * [-- ARGV] benchtool tput  -c ADDR:PORT [common] -n BYTES -k STREAMS benchtool rate  -c ADDR:PORT
 * [common] -k CONCURRENT -d SECONDS -m MAX benchtool idle  -c ADDR:PORT [common] -k COUNT [-C
 * IN_FLIGHT] benchtool flood -c ADDR:PORT -M garbage|idle|longline|forged -d SECONDS -k CONCURRENT
 *                   -m MAX [-H HOLD] [-K KEY]
 *   benchtool clientkey -K KEY
 *
 * common: -p PREAMBLE (sent before the request: "echo\r\n" for fived),
 *         -s STRIP (the reply expected before the service's bytes: "+\r\n"),
 *         -t SECONDS (per-attempt timeout), -B A.B (bind to source addresses
 *         A.B.x.y, -S of them), -o FILE (CSV output), -L (STRIP is the start of
 *         a line: the rest of that line is skipped too, whatever it says, as
 *         for USP's connect message with its session id), -K KEY (fived's sealed
 *         handshake with the server key KEY, through libfive: the preamble
 *         and request travel in the first message), -X (the sealed handshake
 *         as a first contact every time: XX, the key it learns forgotten
 *         before the next session), -T (TLS 1.3 through libfive, the server's
 *         key learned the same way).  PREAMBLE, STRIP and REQ take C escapes
 *         \r \n \\.
 *
 * The backend ("serve") speaks a tiny protocol on -l listeners; the first
 * line a client sends picks what happens:
 *   "G n\n"  send n bytes at once, then wait for the client to close
 *   "E\n"    echo everything that follows
 *   other    hold the connection, discard what arrives
 * -e listeners are plain echo servers without the line.
 *
 * The floods: "garbage" connects, sends 1 KiB of random bytes and closes;
 * "forged" sends a sealed first message that passes fived's MAC (it is
 * made with the server's public key, -K) but whose Noise part is random, so
 * that fived does its Diffie-Hellman for nothing, and closes;
 * "longline" sends printable bytes without a newline until the server
 * closes or 1 MiB is out, then opens another; "idle" opens connections that
 * send nothing and holds up to HOLD of them, opening another whenever the
 * server closes one.  Every flood stops after SECONDS or MAX connections.
 *
 * "clientkey" prints the public key libfive presents to the server KEY
 * (for fived's authorized_clients), from $FIVE_IDENTITY_FILE.
 *
 * Times are CLOCK_MONOTONIC.  The time to first byte is measured from just
 * before the client's connect() (or fork(), with -x) to the read() that
 * returns the first byte of the service's answer, the session layer's own
 * reply (STRIP) not counted as answer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "client/keys/knownhosts.h"
#include "client/transport/conn.h"
#include "client/transport/seal.h"
#include "common/keyfile.h"
#include "proto/sealed.h"

#include "clock.h"
#include "loadaddr.h"

#define LISTEN_MAX      8
#define LISTEN_BACKLOG  65535
#define LINE_BYTES      64
#define IO_BYTES        (256 * 1024)
#define TEXT_BYTES      1024
#define EVENTS_MAX      256
#define MARK_BYTES      1000
#define GARBAGE_BYTES   1024
#define LONGLINE_LIMIT  (1024 * 1024)
#define LONGLINE_PIECE  4096 /* bytes per send() of a long line */
#define RANDOM_POOL     (64 * 1024)
#define DEFAULT_TIMEOUT 10.0
#define NS_PER_MS       1000000.0
#define MS_PER_S        1000
#define BYTES_PER_MB    1000000.0
#define HELD_TAG        (1ULL << 63) /* epoll data of a held flood connection */
#define DEFAULT_HOLD    5000

/* --- small things -------------------------------------------------------- */

static double
ms_since(int64_t t0, int64_t t)
{
	return (double)(t - t0) / NS_PER_MS;
}

static void
die(const char *what)
{
	fprintf(stderr, "benchtool: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Decodes \r \n \\ \0 in place; returns the length. */
static size_t
unescape(char *s)
{
	char *r = s, *w = s;

	while (*r != '\0') {
		if (r[0] == '\\' && r[1] != '\0') {
			r++;
			*w++ = *r == 'r' ? '\r' : *r == 'n' ? '\n' : *r == 't' ? '\t' : *r;
			r++;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

static int
parse_addr(const char *spec, struct sockaddr_in *sin)
{
	char host[TEXT_BYTES];

	return load_parse_addr(spec, sin, host, sizeof(host));
}

static void
set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
percentile(double *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void
sleep_ms(double ms)
{
	int64_t ns = (int64_t)(ms * NS_PER_MS);
	struct timespec ts = {.tv_sec = (time_t)(ns / NS_PER_S), .tv_nsec = (long)(ns % NS_PER_S)};

	nanosleep(&ts, NULL);
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* --- options shared by the clients --------------------------------------- */

struct opts {
	struct sockaddr_in dst;
	bool have_dst;
	char pre[TEXT_BYTES], strip[TEXT_BYTES], req[TEXT_BYTES], mode[TEXT_BYTES];
	size_t pre_len, strip_len, req_len;
	bool have_req;
	bool strip_line; /* -L: skip the rest of the line that starts with strip */
	uint64_t bytes;
	long reps, streams, max, in_flight, sources, hold;
	double seconds, interval_ms, timeout;
	char bind_base[TEXT_BYTES];
	const char *out;
	char **argv; /* -x: the command after "--" */
	unsigned next_source;
	const char *key;  /* -K: sealed, with this server key */
	bool tls;         /* -T: TLS */
	bool libfive;     /* -K, -X or -T: sessions through libfive */
	const char *warm; /* -W SERVICE: each session a new stream of one multiplexed session */
	bool detachable;  /* -D: that session detachable */
	uint8_t server_pk[32];
	char host[INET_ADDRSTRLEN], port[8];
	/* -A NAME:PORT: resolved for every session, inside its time (the shim's getaddrinfo). */
	char name[TEXT_BYTES];
	char name_port[8];
};

/* The client's source address: 127.0.0.1 unless -B asked for many. */
static void
bind_source(int fd, struct opts *o)
{
	if (o->bind_base[0] == '\0')
		return;
	if (load_bind_source(fd, o->bind_base, o->next_source++ % (unsigned)o->sources) != 0)
		die("bind source");
}

/* A non-blocking connect; returns the socket (connect in progress) or -1. */
static int
start_connect(struct opts *o)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	bind_source(fd, o);
	set_nodelay(fd);
	if (connect(fd, (struct sockaddr *)&o->dst, sizeof(o->dst)) != 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* -A: the name's IPv4 address into o->dst, as a program finds it (getaddrinfo). */
static int
resolve(struct opts *o)
{
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;

	if (getaddrinfo(o->name, o->name_port, &hints, &res) != 0)
		return -1;
	memcpy(&o->dst, res->ai_addr, sizeof(o->dst));
	freeaddrinfo(res);
	return 0;
}

/* "NAME:PORT" into o->name and o->name_port. */
static int
parse_name(const char *spec, struct opts *o)
{
	const char *colon = strrchr(spec, ':');

	if (colon == NULL || (size_t)(colon - spec) >= sizeof(o->name) ||
	    strlen(colon + 1) >= sizeof(o->name_port) || colon[1] == '\0')
		return -1;
	memcpy(o->name, spec, (size_t)(colon - spec));
	o->name[colon - spec] = '\0';
	strcpy(o->name_port, colon + 1);
	return 0;
}

/* The first bytes a session sends: preamble, then the request. */
static size_t
opening(const struct opts *o, char *out, size_t size)
{
	size_t n = o->pre_len + o->req_len;

	if (n > size)
		return 0;
	memcpy(out, o->pre, o->pre_len);
	memcpy(out + o->pre_len, o->req, o->req_len);
	return n;
}

/* --- serve ------------------------------------------------------------------ */

enum conn_mode { C_LINE, C_SEND, C_ECHO, C_HOLD };

struct conn {
	int fd;
	bool listener, raw_echo, want_out;
	enum conn_mode mode;
	char line[LINE_BYTES];
	size_t line_len;
	uint64_t to_send;
	char *pending; /* echo bytes the peer has not taken yet */
	size_t pending_len;
};

static char pattern[IO_BYTES];

static void
serve_close(int ep, struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->pending);
	free(c);
}

static void
watch_out(int ep, struct conn *c, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};

	if (c->want_out != on) {
		c->want_out = on;
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	}
}

/* Sends what c owes; returns -1 when the peer is gone. */
static int
serve_flush(int ep, struct conn *c)
{
	ssize_t n;

	while (c->mode == C_SEND && c->to_send > 0) {
		size_t chunk = c->to_send < sizeof(pattern) ? (size_t)c->to_send : sizeof(pattern);
		if ((n = send(c->fd, pattern, chunk, MSG_NOSIGNAL)) < 0)
			break;
		c->to_send -= (uint64_t)n;
	}
	while (c->pending_len > 0) {
		if ((n = send(c->fd, c->pending, c->pending_len, MSG_NOSIGNAL)) < 0)
			break;
		memmove(c->pending, c->pending + n, c->pending_len - (size_t)n);
		c->pending_len -= (size_t)n;
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK && (c->to_send > 0 || c->pending_len > 0))
		return -1;
	watch_out(ep, c, (c->mode == C_SEND && c->to_send > 0) || c->pending_len > 0);
	return 0;
}

static int
serve_echo(int ep, struct conn *c, const char *data, size_t len)
{
	char *grown;

	if (len == 0)
		return 0;
	if ((grown = realloc(c->pending, c->pending_len + len)) == NULL)
		return -1;
	c->pending = grown;
	memcpy(c->pending + c->pending_len, data, len);
	c->pending_len += len;
	errno = 0;
	return serve_flush(ep, c);
}

/* The first line picks the mode; bytes after it belong to that mode. */
static int
serve_line(int ep, struct conn *c, const char *data, size_t len)
{
	const char *nl = memchr(data, '\n', len);
	size_t take = nl != NULL ? (size_t)(nl - data) + 1 : len;

	if (c->line_len + take >= sizeof(c->line)) {
		c->mode = C_HOLD;
		return 0;
	}
	memcpy(c->line + c->line_len, data, take);
	c->line_len += take;
	c->line[c->line_len] = '\0';
	if (nl == NULL)
		return 0;
	if (c->line[0] == 'G' && c->line[1] == ' ') {
		c->mode = C_SEND;
		c->to_send = strtoull(c->line + 2, NULL, 10);
		errno = 0;
		return serve_flush(ep, c);
	}
	if (c->line[0] == 'E') {
		c->mode = C_ECHO;
		return serve_echo(ep, c, data + take, len - take);
	}
	c->mode = C_HOLD;
	return 0;
}

static int
serve_read(int ep, struct conn *c)
{
	static char buf[IO_BYTES];
	ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	if (n == 0)
		return -1;
	if (c->raw_echo)
		return serve_echo(ep, c, buf, (size_t)n);
	switch (c->mode) {
	case C_LINE:
		return serve_line(ep, c, buf, (size_t)n);
	case C_ECHO:
		return serve_echo(ep, c, buf, (size_t)n);
	case C_SEND:
	case C_HOLD:
		break;
	}
	return 0;
}

static void
serve_accept(int ep, struct conn *l)
{
	for (;;) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;
		struct epoll_event ev = {.events = EPOLLIN};

		if (fd < 0)
			return;
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			close(fd);
			return;
		}
		set_nodelay(fd);
		c->fd = fd;
		c->raw_echo = l->raw_echo;
		ev.data.ptr = c;
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	}
}

static int
serve_listen(int ep, const char *spec, bool raw_echo)
{
	struct sockaddr_in sin;
	struct conn *l = calloc(1, sizeof(*l));
	struct epoll_event ev = {.events = EPOLLIN};
	int one = 1;

	if (l == NULL || parse_addr(spec, &sin) != 0)
		return -1;
	l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(l->fd, LISTEN_BACKLOG) != 0)
		die(spec);
	l->listener = true;
	l->raw_echo = raw_echo;
	ev.data.ptr = l;
	return epoll_ctl(ep, EPOLL_CTL_ADD, l->fd, &ev);
}

static int
cmd_serve(int argc, char **argv)
{
	struct epoll_event evs[EVENTS_MAX];
	int ep = epoll_create1(EPOLL_CLOEXEC), c, n, i;

	for (i = 0; i < (int)sizeof(pattern); i++)
		pattern[i] = (char)('a' + i % 26);
	while ((c = getopt(argc, argv, "l:e:")) != -1) {
		if ((c != 'l' && c != 'e') || serve_listen(ep, optarg, c == 'e') != 0) {
			fprintf(stderr, "benchtool serve: bad listener\n");
			return 2;
		}
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		if ((n = epoll_wait(ep, evs, EVENTS_MAX, -1)) < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (i = 0; i < n; i++) {
			struct conn *cn = evs[i].data.ptr;
			if (cn->listener) {
				serve_accept(ep, cn);
				continue;
			}
			if ((evs[i].events & (EPOLLERR | EPOLLHUP)) && !(evs[i].events & EPOLLIN)) {
				serve_close(ep, cn);
				continue;
			}
			if (evs[i].events & EPOLLOUT) {
				errno = 0;
				if (serve_flush(ep, cn) != 0) {
					serve_close(ep, cn);
					continue;
				}
			}
			if ((evs[i].events & EPOLLIN) && serve_read(ep, cn) != 0)
				serve_close(ep, cn);
		}
	}
}

/* --- one timed session (ttfb) -------------------------------------------- */

struct marks {
	int64_t t0, connected, first, k1000, last;
	const char *error;
	char reason[LINE_BYTES]; /* a refusal's text, when error points here */
};

/* Counts the answer's bytes as they come, after checking the strip prefix. */
struct reader {
	const struct opts *o;
	size_t stripped;
	bool line_skipped;
	uint64_t got;
	struct marks *m;
};

static int
consume(struct reader *r, const char *p, size_t n, int64_t t)
{
	size_t i = 0;

	while (i < n && r->stripped < r->o->strip_len) {
		if (p[i] != r->o->strip[r->stripped]) {
			r->m->error = "unexpected reply";
			if (r->stripped == 0 && p[i] == '-') {
				/* "- reason": the session layer said no; keep its reason */
				const char *end = memchr(p + i, '\r', n - i);
				int len = (int)((end != NULL ? (size_t)(end - p) : n) - i);
				snprintf(r->m->reason, sizeof(r->m->reason), "refused %.*s",
				         len < LINE_BYTES ? len : LINE_BYTES - 1, p + i);
				for (char *c = r->m->reason; *c != '\0'; c++)
					if (*c == ',' || (unsigned char)*c < ' ')
						*c = ' '; /* it goes into a CSV field */
				r->m->error = r->m->reason;
			}
			return -1;
		}
		i++;
		r->stripped++;
	}
	while (r->o->strip_line && !r->line_skipped && r->stripped == r->o->strip_len && i < n)
		r->line_skipped = p[i++] == '\n';
	if (i == n)
		return 0;
	if (r->got == 0)
		r->m->first = t;
	r->got += n - i;
	if (r->m->k1000 == 0 && r->got >= MARK_BYTES)
		r->m->k1000 = t;
	if (r->got >= r->o->bytes)
		r->m->last = t;
	return 0;
}

/* Reads fd until the answer is complete, the peer closes, or the deadline. */
static void
read_answer(int fd, struct reader *r, int64_t deadline)
{
	static char buf[IO_BYTES];

	while (r->m->last == 0 && r->m->error == NULL) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - now_ns();
		ssize_t n;

		if (left <= 0) {
			r->m->error = "timeout";
			return;
		}
		if (poll(&pfd, 1, (int)(left / 1000000) + 1) <= 0)
			continue;
		if ((n = read(fd, buf, sizeof(buf))) < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			r->m->error = "read error";
			return;
		}
		if (n == 0) {
			r->m->error = "closed early";
			return;
		}
		if (consume(r, buf, (size_t)n, now_ns()) != 0)
			return;
	}
}

static void
timed_socket(struct opts *o, struct marks *m)
{
	struct reader r = {.o = o, .m = m};
	char first[2 * TEXT_BYTES];
	size_t len = opening(o, first, sizeof(first));
	int64_t deadline = now_ns() + (int64_t)(o->timeout * NS_PER_S);
	struct pollfd pfd;
	socklen_t sl = sizeof(int);
	int fd, err = 0;

	m->t0 = now_ns();
	if (o->name[0] != '\0' && resolve(o) != 0) {
		m->error = "resolve failed";
		return;
	}
	if ((fd = start_connect(o)) < 0) {
		m->error = "connect failed";
		return;
	}
	pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
	if (poll(&pfd, 1, (int)(o->timeout * MS_PER_S)) != 1 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0 || err != 0) {
		m->error = err != 0 ? "connect refused" : "connect timeout";
		goto out;
	}
	m->connected = now_ns();
	if (send(fd, first, len, MSG_NOSIGNAL) != (ssize_t)len) {
		m->error = "send failed";
		goto out;
	}
	read_answer(fd, &r, deadline);
out:
	close(fd);
}

static void
timed_command(struct opts *o, struct marks *m)
{
	struct reader r = {.o = o, .m = m};
	char first[2 * TEXT_BYTES];
	size_t len = opening(o, first, sizeof(first));
	int64_t deadline;
	int in[2], out[2], status;
	pid_t pid;

	m->t0 = now_ns();
	deadline = m->t0 + (int64_t)(o->timeout * NS_PER_S);
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
		die("pipe");
	if ((pid = fork()) < 0)
		die("fork");
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execvp(o->argv[0], o->argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	if (write(in[1], first, len) != (ssize_t)len)
		m->error = "write to command failed";
	else
		read_answer(out[0], &r, deadline);
	close(in[1]);
	close(out[0]);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
}

/*
 * libfive's options for a session to o's server.  With -X and -T the
 * server's key is pinned in a known_hosts file of this thread's own, which
 * is removed before each session so that each one is a first contact.
 */
static void
sealed_options(const struct opts *o, struct five_options *fo)
{
	static _Thread_local char known_hosts[64];

	five_options_init(fo);
	fo->port = o->port;
	fo->server_key = o->key;
	fo->timeout_ms = (int)(o->timeout * MS_PER_S);
	fo->transport = o->tls ? FIVE_TLS : FIVE_SEALED;
	fo->detachable = o->detachable;
	if (o->key != NULL)
		return;
	snprintf(known_hosts, sizeof(known_hosts), "/tmp/benchtool-known-hosts.%ld.%lu",
	         (long)getpid(), (unsigned long)pthread_self());
	unlink(known_hosts);
	fo->known_hosts = known_hosts;
	fo->trust_on_first_use = 1;
}

/* Opens the records that come after the handshake and counts their bytes. */
static void
read_sealed(struct five_conn *c, struct reader *r, int64_t deadline)
{
	uint8_t raw[IO_BYTES], pt[RECORD_PLAINTEXT_MAX];
	size_t have = c->seal->pending_len, used, n, off;
	struct pollfd pfd;
	struct five_error ferr;
	ssize_t got;
	int st;

	memcpy(raw, c->seal->pending, have);
	if (consume(r, (const char *)c->in, c->in_len, now_ns()) != 0)
		return;
	while (r->m->last == 0 && r->m->error == NULL) {
		for (off = 0; off < have; off += used) {
			if (five_seal_unwrap(c->seal, raw + off, have - off, &used, pt, sizeof(pt),
			                     &n, &st, &ferr) != 0)
				st = RECORD_ERROR;
			if (st == RECORD_ERROR || st == RECORD_FINAL) {
				r->m->error = st == RECORD_FINAL ? "closed early" : "bad record";
				return;
			}
			if (st == RECORD_OK && consume(r, (const char *)pt, n, now_ns()) != 0)
				return;
		}
		have = 0;
		if (r->m->last != 0)
			return;
		pfd = (struct pollfd){.fd = c->fd, .events = POLLIN};
		if (poll(&pfd, 1, (int)((deadline - now_ns()) / 1000000) + 1) <= 0 ||
		    (got = recv(c->fd, raw, sizeof(raw), 0)) <= 0) {
			r->m->error = now_ns() >= deadline ? "timeout" : "closed early";
			return;
		}
		have = (size_t)got;
	}
}

static void
timed_sealed(struct opts *o, struct marks *m)
{
	struct reader r = {.o = o, .m = m};
	struct five_options fo;
	struct five_error err;
	struct five_conn c;
	char first[2 * TEXT_BYTES];
	size_t len = opening(o, first, sizeof(first));

	sealed_options(o, &fo);
	m->t0 = now_ns();
	if (five_conn_open(&c, o->host, &fo, first, len, &err) != 0) {
		snprintf(m->reason, sizeof(m->reason), "sealed %s", five_step_name(err.step));
		m->error = m->reason;
	} else {
		m->connected = now_ns();
		read_sealed(&c, &r, m->t0 + (int64_t)(o->timeout * NS_PER_S));
		five_conn_close(&c);
	}
	if (fo.known_hosts != NULL)
		unlink(fo.known_hosts);
}

/* The one multiplexed session of -W, opened by the first caller (before its timing starts). */
static struct five_session *
warm_session(const struct opts *o)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static struct five_session *s;
	struct five_options fo;
	struct five_error err;

	pthread_mutex_lock(&lock);
	if (s == NULL) {
		sealed_options(o, &fo);
		if ((s = five_session_open(o->host, &fo, &err)) == NULL)
			fprintf(stderr, "benchtool: -W: %s: %s\n", five_step_name(err.step),
			        err.message);
	}
	pthread_mutex_unlock(&lock);
	return s;
}

/* A new stream of the warm session: its OPEN carries the request (-q/-n), no round trip before. */
static void
timed_warm(struct opts *o, struct marks *m)
{
	struct reader r = {.o = o, .m = m};
	struct five_session *s = warm_session(o);
	char first[2 * TEXT_BYTES];
	size_t len = opening(o, first, sizeof(first));
	struct five_error err;
	int fd;

	m->t0 = now_ns();
	if (s == NULL || (fd = five_session_stream(s, o->warm, first, len, &err)) < 0) {
		snprintf(m->reason, sizeof(m->reason), "stream %s",
		         s == NULL ? "no session" : five_step_name(err.step));
		m->error = m->reason;
		return;
	}
	m->connected = now_ns();
	read_answer(fd, &r, m->t0 + (int64_t)(o->timeout * NS_PER_S));
	close(fd);
}

/* One session through libfive: sealed or TLS of its own, or a stream of the warm one. */
static void
timed_libfive(struct opts *o, struct marks *m)
{
	if (o->warm != NULL)
		timed_warm(o, m);
	else
		timed_sealed(o, m);
}

static int
cmd_ttfb(struct opts *o)
{
	FILE *out = o->out != NULL ? fopen(o->out, "w") : stdout;
	double *first = calloc((size_t)o->reps, sizeof(double));
	size_t ok = 0;
	long i;

	if (out == NULL || first == NULL)
		die("output");
	if (!o->have_req)
		o->req_len = (size_t)snprintf(o->req, sizeof(o->req), "G %llu\n",
		                              (unsigned long long)o->bytes);
	fprintf(out, "rep,ok,connect_ms,first_ms,b1000_ms,last_ms,error\n");
	for (i = 0; i < o->reps; i++) {
		struct marks m = {0};
		if (o->argv != NULL)
			timed_command(o, &m);
		else if (o->libfive)
			timed_libfive(o, &m);
		else
			timed_socket(o, &m);
		if (m.error == NULL)
			first[ok++] = ms_since(m.t0, m.first);
		fprintf(out, "%ld,%d,", i, m.error == NULL);
		if (m.connected != 0)
			fprintf(out, "%.3f", ms_since(m.t0, m.connected));
		if (m.error == NULL) {
			fprintf(out, ",%.3f,", ms_since(m.t0, m.first));
			if (m.k1000 != 0)
				fprintf(out, "%.3f", ms_since(m.t0, m.k1000));
			fprintf(out, ",%.3f,\n", ms_since(m.t0, m.last));
		} else {
			fprintf(out, ",,,,%s\n", m.error);
		}
		if (o->interval_ms > 0)
			sleep_ms(o->interval_ms);
	}
	if (out != stdout)
		fclose(out);
	fprintf(stderr, "ttfb: %zu/%ld ok, first byte median %.3f ms\n", ok, o->reps,
	        percentile(first, ok, 0.5));
	free(first);
	return ok == (size_t)o->reps ? 0 : 3;
}

/* --- resume: a detachable session's pause across cuts ---------------------- */

/* A round trip of one counter through the echo stream: 0, or -1 (with why) on loss or error. */
static int
echo_round(int fd, uint64_t counter, int64_t deadline, const char **why)
{
	uint8_t out[sizeof(counter)], back[sizeof(counter)];
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	size_t have = 0;
	ssize_t n;

	memcpy(out, &counter, sizeof(out));
	if (write(fd, out, sizeof(out)) != (ssize_t)sizeof(out)) {
		*why = "write failed";
		return -1;
	}
	while (have < sizeof(back)) {
		if (poll(&pfd, 1, (int)((deadline - now_ns()) / 1000000) + 1) <= 0) {
			*why = "timeout";
			return -1;
		}
		if ((n = read(fd, back + have, sizeof(back) - have)) <= 0) {
			*why = n == 0 ? "stream ended" : "read failed";
			return -1;
		}
		have += (size_t)n;
	}
	if (memcmp(out, back, sizeof(out)) != 0) {
		*why = "a byte was lost or reordered";
		return -1;
	}
	return 0;
}

/*
 * -k COUNT: COUNT MULTIPLEX sessions (detachable with -D), a stream of -W
 * SERVICE open in each, held until the process is killed (the bench kills
 * it, so that fived holds detachable ones detached, and measures what
 * they cost).
 */
static int
hold_sessions(struct opts *o)
{
	struct five_options fo;
	struct five_error err;
	long i;

	sealed_options(o, &fo);
	for (i = 0; i < o->streams; i++) {
		struct five_session *s = five_session_open(o->host, &fo, &err);

		if (s == NULL || five_session_stream(s, o->warm, NULL, 0, &err) < 0) {
			fprintf(stderr, "benchtool: resume -k: %s: %s\n", five_step_name(err.step),
			        err.message);
			break;
		}
	}
	printf("held=%ld\n", i);
	fflush(stdout);
	for (;;)
		pause();
	return 0;
}

/*
 * One detachable MULTIPLEX session (-K, -W SERVICE, an echo service) for
 * -d seconds: 8-byte counters echoed one at a time, each round trip's
 * start and length written as CSV.  Whoever runs it cuts the connection
 * meanwhile; a cut shows as one long round trip, and any byte lost,
 * repeated or out of order ends the run with an error.
 */
static int
cmd_resume(struct opts *o)
{
	FILE *out = o->out != NULL ? fopen(o->out, "w") : stdout;
	struct five_options fo;
	struct five_error err;
	struct five_session *s;
	const char *why = NULL;
	int64_t start = now_ns(), end = start + (int64_t)(o->seconds * NS_PER_S), t0;
	uint64_t counter = 0;
	int fd;

	if (o->streams > 1)
		return hold_sessions(o);
	if (out == NULL || o->warm == NULL)
		die("resume: -o and -W SERVICE");
	sealed_options(o, &fo);
	fo.detachable = 1;
	if ((s = five_session_open(o->host, &fo, &err)) == NULL ||
	    (fd = five_session_stream(s, o->warm, NULL, 0, &err)) < 0) {
		fprintf(stderr, "benchtool: resume: %s: %s\n", five_step_name(err.step),
		        err.message);
		return 3;
	}
	fprintf(out, "at_ms,rtt_ms\n");
	while ((t0 = now_ns()) < end) {
		if (echo_round(fd, counter++, t0 + (int64_t)(o->timeout * NS_PER_S), &why) != 0)
			break;
		fprintf(out, "%.3f,%.3f\n", ms_since(start, t0), ms_since(t0, now_ns()));
	}
	if (out != stdout)
		fclose(out);
	close(fd);
	five_session_close(s);
	fprintf(stderr, "resume: %llu round trips%s%s\n", (unsigned long long)counter,
	        why != NULL ? ", then " : "", why != NULL ? why : "");
	return why == NULL ? 0 : 3;
}

/* --- many sessions at once (tput, rate, idle, flood) --------------------- */

enum kind { K_TPUT, K_RATE, K_IDLE, K_GARBAGE, K_FORGED, K_FLOOD_IDLE, K_LONGLINE };

struct slot {
	int fd;
	bool busy, connected;
	uint64_t sent;
	struct reader r;
	struct marks m;
};

struct engine {
	struct opts *o;
	enum kind kind;
	int ep;
	struct slot *slots;
	int *held;
	long nheld, live, launched, done, failed, peer_closed;
	uint64_t bytes_in, bytes_out, payload;
	double *lat;
	size_t nlat;
	char random[RANDOM_POOL];
};

static bool
holds(enum kind k)
{
	return k == K_IDLE || k == K_FLOOD_IDLE;
}

static void
slot_end(struct engine *e, struct slot *s, bool ok)
{
	epoll_ctl(e->ep, EPOLL_CTL_DEL, s->fd, NULL);
	if (ok && holds(e->kind)) {
		/* A flood keeps watching what it holds, to open another when one is closed. */
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
		                         .data.u64 = HELD_TAG | (uint64_t)e->nheld};
		if (e->kind == K_FLOOD_IDLE)
			epoll_ctl(e->ep, EPOLL_CTL_ADD, s->fd, &ev);
		e->held[e->nheld++] = s->fd;
		e->live++;
	} else {
		close(s->fd);
	}
	e->payload += s->r.got;
	if (ok) {
		e->done++;
		if (e->kind == K_RATE)
			e->lat[e->nlat++] = ms_since(s->m.t0, s->m.last);
	} else {
		e->failed++;
	}
	s->busy = false;
}

static void
slot_launch(struct engine *e, struct slot *s)
{
	struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = s};

	memset(s, 0, sizeof(*s));
	s->r.o = e->o;
	s->r.m = &s->m;
	s->m.t0 = now_ns();
	e->launched++;
	if ((s->fd = start_connect(e->o)) < 0) {
		e->failed++;
		return;
	}
	s->busy = true;
	epoll_ctl(e->ep, EPOLL_CTL_ADD, s->fd, &ev);
}

/*
 * A sealed first message that passes the MAC check (made with the server's
 * public key) and whose Noise part is random: a fresh ephemeral each time,
 * so that neither the replay filter nor anything before the Diffie-Hellman
 * stops it.
 */
static void
send_forged(struct engine *e, int fd)
{
	struct sealed_initiation m = {.pattern = SEALED_IK, .suites = SEALED_SUITES_IMPLICIT};
	uint8_t noise[SEALED_IK1_MIN], out[SEALED_INITIATION_OVERHEAD + SEALED_IK1_MIN], key[32];
	size_t n;

	randombytes_buf(noise, sizeof(noise));
	m.noise = noise;
	m.noise_len = sizeof(noise);
	sealed_mac1_key(e->o->server_pk, key);
	if (sealed_initiation_encode(&m, key, NULL, out, sizeof(out), &n) == 0 &&
	    send(fd, out, n, MSG_NOSIGNAL) > 0)
		e->bytes_out += n;
}

/* The connection is up: send what this kind of session sends first. */
static bool
slot_connected(struct engine *e, struct slot *s)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
	char first[2 * TEXT_BYTES];
	size_t len;
	size_t off;

	s->connected = true;
	s->m.connected = now_ns();
	switch (e->kind) {
	case K_FLOOD_IDLE:
		slot_end(e, s, true);
		return true;
	case K_GARBAGE:
		off = (size_t)(e->launched * 7919) % (RANDOM_POOL - GARBAGE_BYTES);
		if (send(s->fd, e->random + off, GARBAGE_BYTES, MSG_NOSIGNAL) > 0)
			e->bytes_out += GARBAGE_BYTES;
		slot_end(e, s, true);
		return true;
	case K_FORGED:
		send_forged(e, s->fd);
		slot_end(e, s, true);
		return true;
	case K_LONGLINE:
		ev.events = EPOLLIN | EPOLLOUT;
		break;
	case K_TPUT:
	case K_RATE:
	case K_IDLE:
		len = opening(e->o, first, sizeof(first));
		if (send(s->fd, first, len, MSG_NOSIGNAL) != (ssize_t)len)
			return false;
		break;
	}
	epoll_ctl(e->ep, EPOLL_CTL_MOD, s->fd, &ev);
	return true;
}

static void
slot_event(struct engine *e, struct slot *s, uint32_t events)
{
	static char buf[IO_BYTES];
	socklen_t sl = sizeof(int);
	ssize_t n;
	int err = 0;

	if (!s->connected) {
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0 || err != 0 ||
		    !slot_connected(e, s))
			slot_end(e, s, false);
		return;
	}
	if (e->kind == K_LONGLINE && (events & EPOLLOUT)) {
		memset(buf, 'A', LONGLINE_PIECE);
		while (s->sent < LONGLINE_LIMIT &&
		       (n = send(s->fd, buf, LONGLINE_PIECE, MSG_NOSIGNAL)) > 0) {
			s->sent += (uint64_t)n;
			e->bytes_out += (uint64_t)n;
		}
		if (s->sent >= LONGLINE_LIMIT) {
			slot_end(e, s, true);
			return;
		}
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	if ((n = recv(s->fd, buf, sizeof(buf), 0)) < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			slot_end(e, s, e->kind == K_LONGLINE);
		return;
	}
	if (n == 0) {
		/* A flood connection the server closed did what it came for. */
		if (e->kind == K_LONGLINE)
			e->peer_closed++;
		slot_end(e, s, e->kind == K_LONGLINE);
		return;
	}
	e->bytes_in += (uint64_t)n;
	if (e->kind == K_LONGLINE)
		return;
	if (consume(&s->r, buf, (size_t)n, now_ns()) != 0) {
		slot_end(e, s, false);
		return;
	}
	if (s->m.last != 0)
		slot_end(e, s, true);
}

static int
engine_run(struct engine *e)
{
	struct opts *o = e->o;
	struct epoll_event evs[EVENTS_MAX];
	int64_t start = now_ns(), stop_at, timeout = (int64_t)(o->timeout * NS_PER_S);
	bool flood = e->kind == K_GARBAGE || e->kind == K_FORGED || e->kind == K_FLOOD_IDLE ||
	             e->kind == K_LONGLINE;
	long i;
	int n, j;

	stop_at = o->seconds > 0 ? start + (int64_t)(o->seconds * NS_PER_S) : INT64_MAX;
	for (;;) {
		int64_t now = now_ns();
		long busy = 0;

		for (i = 0; i < o->in_flight; i++) {
			struct slot *s = &e->slots[i];
			if (s->busy && now - s->m.t0 > timeout)
				slot_end(e, s, false);
			if (!s->busy && e->launched < o->max && now < stop_at &&
			    (e->kind != K_FLOOD_IDLE || e->live + busy < o->hold))
				slot_launch(e, s);
			busy += s->busy;
		}
		if (flood ? now >= stop_at : busy == 0 && (e->launched >= o->max || now >= stop_at))
			break;
		n = epoll_wait(e->ep, evs, EVENTS_MAX, 10);
		for (j = 0; j < n; j++) {
			struct slot *s = evs[j].data.ptr;
			if (evs[j].data.u64 & HELD_TAG) {
				long k = (long)(evs[j].data.u64 & ~HELD_TAG);
				epoll_ctl(e->ep, EPOLL_CTL_DEL, e->held[k], NULL);
				close(e->held[k]);
				e->held[k] = -1;
				e->live--;
				e->peer_closed++;
			} else if (s->busy) {
				slot_event(e, s, evs[j].events);
			}
		}
	}
	/* Flood connections still open at the end are closed with the rest. */
	for (i = 0; i < o->in_flight; i++)
		if (e->slots[i].busy)
			slot_end(e, &e->slots[i], flood);
	return 0;
}

static long
count_closed(const int *fds, long n)
{
	long i, closed = 0;

	for (i = 0; i < n; i++) {
		struct pollfd pfd = {.fd = fds[i], .events = POLLIN | POLLRDHUP};
		if (fds[i] >= 0 && poll(&pfd, 1, 0) == 1 &&
		    (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			closed++;
	}
	return closed;
}

static int
cmd_many(struct opts *o, enum kind kind)
{
	struct engine *e = calloc(1, sizeof(*e));
	int64_t t0, t1;
	double cpu0 = cpu_seconds(), secs;
	long i;
	int fd;

	if (e == NULL)
		die("calloc");
	e->o = o;
	e->kind = kind;
	e->ep = epoll_create1(EPOLL_CLOEXEC);
	if (o->in_flight <= 0)
		o->in_flight = o->streams;
	if (o->max <= 0)
		o->max = o->in_flight;
	e->slots = calloc((size_t)o->in_flight, sizeof(*e->slots));
	e->held = calloc((size_t)o->max, sizeof(int));
	e->lat = calloc((size_t)o->max, sizeof(double));
	if (e->slots == NULL || e->held == NULL || e->lat == NULL)
		die("calloc");
	if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) < 0 ||
	    read(fd, e->random, sizeof(e->random)) != (ssize_t)sizeof(e->random))
		die("/dev/urandom");
	close(fd);
	if (!o->have_req) {
		if (kind == K_TPUT)
			o->req_len = (size_t)snprintf(o->req, sizeof(o->req), "G %llu\n",
			                              (unsigned long long)o->bytes);
		else
			o->req_len = (size_t)snprintf(o->req, sizeof(o->req), "E\nx");
	}
	if (kind == K_RATE || kind == K_IDLE)
		o->bytes = 1;
	t0 = now_ns();
	engine_run(e);
	t1 = now_ns();
	secs = (double)(t1 - t0) / NS_PER_S;
	switch (kind) {
	case K_TPUT:
		printf("bytes=%llu seconds=%.6f MBps=%.3f failed=%ld cpu=%.3f\n",
		       (unsigned long long)e->payload, secs,
		       (double)e->payload / BYTES_PER_MB / secs, e->failed, cpu_seconds() - cpu0);
		break;
	case K_RATE:
		printf("sessions=%ld failed=%ld seconds=%.3f rate=%.1f cpu=%.3f", e->done,
		       e->failed, secs, (double)e->done / secs, cpu_seconds() - cpu0);
		printf(" p50_ms=%.3f", percentile(e->lat, e->nlat, 0.5));
		printf(" p90_ms=%.3f", percentile(e->lat, e->nlat, 0.9));
		printf(" p99_ms=%.3f\n", percentile(e->lat, e->nlat, 0.99));
		break;
	case K_IDLE:
		printf("ready held=%ld failed=%ld seconds=%.3f\n", e->nheld, e->failed, secs);
		fflush(stdout);
		while (read(0, e->random, sizeof(e->random)) > 0)
			;
		printf("closed_by_peer=%ld\n", count_closed(e->held, e->nheld));
		break;
	case K_GARBAGE:
	case K_FORGED:
	case K_FLOOD_IDLE:
	case K_LONGLINE:
		printf("connections=%ld failed=%ld held_at_end=%ld bytes_out=%llu bytes_in=%llu "
		       "closed_by_server=%ld seconds=%.3f\n",
		       e->done, e->failed, e->live - count_closed(e->held, e->nheld),
		       (unsigned long long)e->bytes_out, (unsigned long long)e->bytes_in,
		       e->peer_closed, secs);
		break;
	}
	fflush(stdout);
	for (i = 0; i < e->nheld; i++)
		if (e->held[i] >= 0)
			close(e->held[i]);
	return e->failed > 0 && kind == K_TPUT ? 3 : 0;
}

/* --- sealed sessions, many at once (libfive blocks: a thread per slot) ------- */

struct sealed_rate {
	struct opts *o;
	pthread_mutex_t lock;
	int64_t stop_at;
	long launched, done, failed;
	double *lat;
	size_t nlat;
};

/* Takes a session to run, or says the run is over. */
static bool
sealed_take(struct sealed_rate *sr)
{
	bool go;

	pthread_mutex_lock(&sr->lock);
	go = sr->launched < sr->o->max && now_ns() < sr->stop_at;
	sr->launched += go;
	pthread_mutex_unlock(&sr->lock);
	return go;
}

static void *
sealed_worker(void *arg)
{
	struct sealed_rate *sr = arg;

	while (sealed_take(sr)) {
		struct marks m = {0};
		timed_libfive(sr->o, &m);
		pthread_mutex_lock(&sr->lock);
		if (m.error == NULL) {
			sr->done++;
			sr->lat[sr->nlat++] = ms_since(m.t0, m.last);
		} else {
			sr->failed++;
		}
		pthread_mutex_unlock(&sr->lock);
	}
	return NULL;
}

/* rate and tput with -K: the same sessions as without, each one sealed. */
static int
cmd_sealed_many(struct opts *o, enum kind kind)
{
	struct sealed_rate sr = {.o = o};
	pthread_t *t = calloc((size_t)o->streams, sizeof(*t));
	double cpu0 = cpu_seconds(), secs;
	int64_t t0 = now_ns();
	long i;

	if (kind == K_TPUT || o->max <= 0)
		o->max = o->streams;
	sr.lat = calloc((size_t)o->max, sizeof(double));
	if (t == NULL || sr.lat == NULL)
		die("calloc");
	if (!o->have_req && kind == K_TPUT)
		o->req_len = (size_t)snprintf(o->req, sizeof(o->req), "G %llu\n",
		                              (unsigned long long)o->bytes);
	else if (!o->have_req)
		o->req_len = (size_t)snprintf(o->req, sizeof(o->req), "E\nx");
	if (kind == K_RATE)
		o->bytes = 1;
	pthread_mutex_init(&sr.lock, NULL);
	sr.stop_at = o->seconds > 0 ? t0 + (int64_t)(o->seconds * NS_PER_S) : INT64_MAX;
	for (i = 0; i < o->streams; i++)
		if (pthread_create(&t[i], NULL, sealed_worker, &sr) != 0)
			die("pthread_create");
	for (i = 0; i < o->streams; i++)
		pthread_join(t[i], NULL);
	secs = (double)(now_ns() - t0) / NS_PER_S;
	if (kind == K_TPUT) {
		printf("bytes=%llu seconds=%.6f MBps=%.3f failed=%ld cpu=%.3f\n",
		       (unsigned long long)(o->bytes * (uint64_t)sr.done), secs,
		       (double)o->bytes * (double)sr.done / BYTES_PER_MB / secs, sr.failed,
		       cpu_seconds() - cpu0);
	} else {
		printf("sessions=%ld failed=%ld seconds=%.3f rate=%.1f cpu=%.3f", sr.done,
		       sr.failed, secs, (double)sr.done / secs, cpu_seconds() - cpu0);
		printf(" p50_ms=%.3f", percentile(sr.lat, sr.nlat, 0.5));
		printf(" p90_ms=%.3f", percentile(sr.lat, sr.nlat, 0.9));
		printf(" p99_ms=%.3f\n", percentile(sr.lat, sr.nlat, 0.99));
	}
	free(t);
	free(sr.lat);
	return kind == K_TPUT && sr.failed > 0 ? 3 : 0;
}

/* The key libfive shows fived's server KEY: what authorized_clients lists. */
static int
cmd_clientkey(const struct opts *o)
{
	uint8_t sk[32], pk[32];
	char b64[KEYFILE_B64_LEN];
	struct five_error err;

	if (identity_static_key(o->server_pk, sk, pk, NULL, 0, &err) != 0) {
		fprintf(stderr, "benchtool: %s\n", err.message);
		return 1;
	}
	sodium_memzero(sk, sizeof(sk));
	keyfile_b64(pk, b64);
	printf("%s\n", b64);
	return 0;
}

/* --- main ------------------------------------------------------------------- */

static void
usage(void)
{
	fprintf(stderr,
	        "usage: benchtool serve [-l ADDR:PORT]... [-e ADDR:PORT]...\n"
	        "       benchtool ttfb (-c ADDR:PORT | -A NAME:PORT | -x) [opts] -n BYTES -r REPS "
	        "[-- "
	        "ARGV]\n"
	        "       benchtool tput -c ADDR:PORT [opts] -n BYTES -k STREAMS\n"
	        "       benchtool rate -c ADDR:PORT [opts] -k CONCURRENT -d SECONDS -m MAX\n"
	        "       benchtool idle -c ADDR:PORT [opts] -k COUNT [-C IN_FLIGHT]\n"
	        "       benchtool flood -c ADDR:PORT -M garbage|idle|longline|forged -d S -k N -m "
	        "MAX\n"
	        "                 [-H HOLD]\n"
	        "       benchtool clientkey -K KEY\n"
	        "       benchtool resume -c ADDR:PORT -K KEY -W SERVICE (-d SECONDS -o CSV | -k "
	        "COUNT [-D])\n"
	        "opts: -p PREAMBLE -s STRIP [-L] -q REQUEST -t TIMEOUT -i INTERVAL_MS -o CSV\n"
	        "      -B A.B -S SOURCES (bind to source addresses A.B.x.y)\n"
	        "      -K KEY (sealed, with fived's server key; ttfb, tput, rate, flood -M "
	        "forged)\n"
	        "      -X (sealed, a first contact each time), -T (TLS): ttfb, tput, rate\n"
	        "      -W SERVICE: with -K, each session a new stream of one MULTIPLEX session\n"
	        "      -D: with -W, that session detachable\n");
}

static void
set_text(char *dst, size_t *len, const char *src)
{
	snprintf(dst, TEXT_BYTES, "%s", src);
	*len = unescape(dst);
}

int
main(int argc, char **argv)
{
	struct opts o = {.timeout = DEFAULT_TIMEOUT,
	                 .reps = 1,
	                 .streams = 1,
	                 .sources = 1,
	                 .hold = DEFAULT_HOLD};
	const char *cmd;
	bool exec_mode = false;
	int c;

	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (argc < 2) {
		usage();
		return 2;
	}
	cmd = argv[1];
	argc--;
	argv++;
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(argc, argv);
	while ((c = getopt(argc, argv, "c:A:xp:s:Lq:n:r:i:k:d:m:C:t:B:S:M:H:o:K:XTW:D")) != -1) {
		switch (c) {
		case 'c':
			if (parse_addr(optarg, &o.dst) != 0) {
				usage();
				return 2;
			}
			o.have_dst = true;
			inet_ntop(AF_INET, &o.dst.sin_addr, o.host, sizeof(o.host));
			snprintf(o.port, sizeof(o.port), "%u", ntohs(o.dst.sin_port));
			break;
		case 'A':
			if (parse_name(optarg, &o) != 0) {
				usage();
				return 2;
			}
			o.have_dst = true;
			break;
		case 'K':
			if (sodium_init() < 0 || keyfile_b64_decode(optarg, o.server_pk) != 0) {
				fprintf(stderr, "benchtool: -K: not a server key\n");
				return 2;
			}
			o.key = optarg;
			o.libfive = true;
			break;
		case 'X':
			o.libfive = true;
			break;
		case 'W':
			o.warm = optarg;
			o.libfive = true;
			break;
		case 'T':
			o.tls = o.libfive = true;
			break;
		case 'D':
			o.detachable = true;
			break;
		case 'x':
			exec_mode = true;
			break;
		case 'p':
			set_text(o.pre, &o.pre_len, optarg);
			break;
		case 's':
			set_text(o.strip, &o.strip_len, optarg);
			break;
		case 'L':
			o.strip_line = true;
			break;
		case 'q':
			set_text(o.req, &o.req_len, optarg);
			o.have_req = true;
			break;
		case 'n':
			o.bytes = strtoull(optarg, NULL, 10);
			break;
		case 'r':
			o.reps = strtol(optarg, NULL, 10);
			break;
		case 'i':
			o.interval_ms = strtod(optarg, NULL);
			break;
		case 'k':
			o.streams = strtol(optarg, NULL, 10);
			break;
		case 'd':
			o.seconds = strtod(optarg, NULL);
			break;
		case 'm':
			o.max = strtol(optarg, NULL, 10);
			break;
		case 'C':
			o.in_flight = strtol(optarg, NULL, 10);
			break;
		case 't':
			o.timeout = strtod(optarg, NULL);
			break;
		case 'B':
			snprintf(o.bind_base, sizeof(o.bind_base), "%s", optarg);
			break;
		case 'S':
			o.sources = strtol(optarg, NULL, 10);
			break;
		case 'H':
			o.hold = strtol(optarg, NULL, 10);
			break;
		case 'M':
			snprintf(o.mode, sizeof(o.mode), "%s", optarg);
			break;
		case 'o':
			o.out = optarg;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (strcmp(cmd, "clientkey") == 0 && o.key != NULL)
		return cmd_clientkey(&o);
	if (exec_mode) {
		if (optind >= argc) {
			usage();
			return 2;
		}
		o.argv = argv + optind;
	} else if (!o.have_dst || o.sources < 1) {
		usage();
		return 2;
	}
	if (strcmp(cmd, "ttfb") == 0)
		return cmd_ttfb(&o);
	if (strcmp(cmd, "resume") == 0 && o.key != NULL)
		return cmd_resume(&o);
	if ((strcmp(cmd, "rate") == 0 || strcmp(cmd, "tput") == 0) && o.libfive)
		return cmd_sealed_many(&o, cmd[0] == 'r' ? K_RATE : K_TPUT);
	if (strcmp(cmd, "tput") == 0)
		return cmd_many(&o, K_TPUT);
	if (strcmp(cmd, "rate") == 0) {
		o.in_flight = o.streams;
		return cmd_many(&o, K_RATE);
	}
	if (strcmp(cmd, "idle") == 0) {
		o.max = o.streams;
		return cmd_many(&o, K_IDLE);
	}
	if (strcmp(cmd, "flood") == 0) {
		o.in_flight = o.streams;
		if (strcmp(o.mode, "garbage") == 0)
			return cmd_many(&o, K_GARBAGE);
		if (strcmp(o.mode, "idle") == 0)
			return cmd_many(&o, K_FLOOD_IDLE);
		if (strcmp(o.mode, "longline") == 0)
			return cmd_many(&o, K_LONGLINE);
		if (strcmp(o.mode, "forged") == 0 && o.key != NULL)
			return cmd_many(&o, K_FORGED);
	}
	usage();
	return 2;
}
