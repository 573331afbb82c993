/*
 * soakload: the client side of fived's soak (tests/soak/soak.py).
 *
 *   soakload -c ADDR:PORT -d SECONDS -o EVENTS.csv [-k HELD] [-r RATE [-C MAX]]
 *            [-B A.B -S SOURCES] [-K KEY -H KNOWN_HOSTS -y SEALED -T TLS -m MUX -M STREAMS]
 *            [-R RELAYPORT -D DETACH_STREAMS] [-s SEED]
 *
 * It keeps HELD long sessions open at once (plain TCPMUX and USP, half
 * each; three quarters to the service "echo", a quarter to "echo2", whose
 * backend the soak kills), opens RATE short ones a second besides
 * (skipping, and counting, those that would make more than MAX of them
 * under way), bound to SOURCES addresses A.B.x.y, and through libfive's
 * public API keeps SEALED sealed sessions, TLS ones, MUX multiplexed
 * sessions of STREAMS streams each, and one detachable multiplexed
 * session of DETACH_STREAMS streams reached through the soak's relay on
 * RELAYPORT.  Every service is an
 * echo: a session sends chunks of a pattern drawn from its own seed and
 * checks each byte it gets back against the same pattern at the same
 * offset, so a byte lost, repeated, reordered or changed anywhere on the
 * way is caught where it happens.
 *
 * One event loop (epoll) drives every session's bytes.  libfive's calls
 * block, so threads open its sessions and streams and hand their
 * descriptors to the loop through a pipe; the loop closes them when
 * their time is up.
 *
 * Each session's end is a line of EVENTS.csv:
 *   start_ms,end_ms,class,service,bytes,outcome,reason
 * (CLOCK_MONOTONIC milliseconds), outcome one of
 *   ok       it ran its course, every byte back and checked
 *   reset    it was ended on purpose with a TCP reset (SIGUSR1, below)
 *   refused  fived answered its request with a refusal (reason: its text)
 *   ended    the stream ended (end of file, reset) before its course was run
 *   stalled  no progress for STALL_MS while bytes were owed
 *   corrupt  a byte came back that is not the one sent at that offset
 * soak.py decides which ends a fault excuses.  A status line goes to
 * standard output every second.  SIGUSR1 makes the loop end a tenth of
 * its running plain sessions at once with a TCP reset, mid-stream (a
 * chunk just sent, its echo not read): clients that vanish.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "five.h"
#include "loadaddr.h"

#define SLOTS_MAX           32768
#define EVENTS_MAX          512
#define TICK_MS             10
#define STALL_MS            20000
#define STALL_DETACH_MS     60000 /* libfive gives a silent connection 30 s, then attaches again */
#define REPLY_MAX           512
#define IO_BYTES            65536
#define CHUNK_MIN           64
#define CHUNK_MAX           4096
#define SHORT_MIN           256
#define SHORT_MAX           16384
#define GAP_MIN_MS          500 /* between a held session's chunks */
#define GAP_MAX_MS          3000
#define LIFE_MIN_MS         20000 /* a held session's life */
#define LIFE_MAX_MS         90000
#define LIB_LIFE_MIN_MS     5000 /* a libfive session's or stream's life */
#define LIB_LIFE_MAX_MS     30000
#define DRAIN_MS            15000 /* at the end, time for the last chunks to come back */
#define OPEN_TIMEOUT_MS     10000
#define HELD_OPENS_PER_TICK 10  /* 1,000 a second at most */
#define RETRY_MS            200 /* a libfive opener after a failure */
#define SESSION_FAILURES    3   /* streams not opened in a row before a session is given up */
#define RESET_SHARE         10  /* SIGUSR1 resets one running plain session in this many */
#define MS_PER_S            1000
#define NS_PER_MS           1000000LL

enum cls { C_PLAIN, C_USP, C_SEALED, C_TLS, C_MUX, C_DETACH, C_COUNT };
static const char *const cls_name[C_COUNT] = {"plain", "usp", "sealed", "tls", "mux", "detach"};
static const char *const svc_name[] = {"echo", "echo2"};

enum phase { P_CONNECT, P_REPLY, P_RUN };

struct sess {
	int fd;
	uint8_t cls, svc, phase;
	bool busy, held, want_out;
	uint64_t seed, sent, want, got;
	size_t reply_len;
	char reply[REPLY_MAX];
	int64_t t0, progress, next_chunk, end_at;
};

/* A descriptor a libfive opener hands the loop. */
struct handoff {
	int fd;
	uint8_t cls, svc;
	int64_t t0;
};

struct opts {
	struct sockaddr_in dst;
	char host[INET_ADDRSTRLEN], port[8], relay_port[8];
	const char *key, *events, *known_hosts;
	char bind_base[32];
	long held, rate, short_max, sources, sealed, tls, mux, mux_streams, detach_streams;
	double seconds;
	uint64_t seed;
};

static struct opts o;
static struct sess *slots;
static int *free_list;
static long nfree, slots_used; /* slots_used: past the highest slot ever taken */
static int ep, handoff_pipe[2];
static FILE *events;
static volatile sig_atomic_t reset_asked;
static atomic_bool stopping, loop_over;
static atomic_long lib_live[C_COUNT], lib_failed_opens;
static long live[C_COUNT], launched, ended[8], held_live, short_live, skipped, next_source;
static uint64_t bytes_checked;

static const char *const outcome_name[] = {"ok", "reset", "refused", "ended", "stalled", "corrupt"};
enum outcome { O_OK, O_RESET, O_REFUSED, O_ENDED, O_STALLED, O_CORRUPT, O_COUNT };

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * MS_PER_S + ts.tv_nsec / NS_PER_MS;
}

static uint64_t
splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The bytes [off, off + n) of the stream seeded with seed: eight of them per word drawn. */
static void
pattern_fill(uint64_t seed, uint64_t off, uint8_t *out, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint64_t at = off + i, word = splitmix(seed ^ (at / 8));
		unsigned b;

		for (b = (unsigned)(at % 8); b < 8 && i < n; b++, i++)
			out[i] = (uint8_t)(word >> (8 * b));
	}
}

/* The load's own random numbers (one thread only: the loop). */
static uint64_t
draw(uint64_t lo, uint64_t hi)
{
	static uint64_t state;

	state = splitmix(state + o.seed);
	return lo + state % (hi - lo + 1);
}

static void
die(const char *what)
{
	fprintf(stderr, "soakload: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* --- a session's end ------------------------------------------------------ */

static void
unwatch(struct sess *s)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
}

static void
sess_end(struct sess *s, enum outcome out, const char *reason)
{
	char why[REPLY_MAX];
	size_t i;

	snprintf(why, sizeof(why), "%s", reason != NULL ? reason : "");
	for (i = 0; why[i] != '\0'; i++)
		if (why[i] == ',' || (unsigned char)why[i] < ' ' || (unsigned char)why[i] > '~')
			why[i] = ' ';
	unwatch(s);
	if (out == O_RESET) {
		struct linger hard = {.l_onoff = 1, .l_linger = 0};
		setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
	}
	close(s->fd);
	fprintf(events, "%lld,%lld,%s,%s,%llu,%s,%s\n", (long long)s->t0, (long long)now_ms(),
	        cls_name[s->cls], svc_name[s->svc], (unsigned long long)s->got, outcome_name[out],
	        why);
	ended[out]++;
	live[s->cls]--;
	if (s->held && (s->cls == C_PLAIN || s->cls == C_USP))
		held_live--;
	else if (s->cls == C_PLAIN || s->cls == C_USP)
		short_live--;
	if (s->cls >= C_SEALED)
		atomic_fetch_sub(&lib_live[s->cls], 1);
	s->busy = false;
	free_list[nfree++] = (int)(s - slots);
}

static void
watch(struct sess *s, bool out)
{
	struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0),
	                         .data.u32 = (uint32_t)(s - slots)};

	if (epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev) != 0)
		epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
	s->want_out = out;
}

static struct sess *
sess_new(int fd, enum cls c, int svc, bool held)
{
	struct sess *s;
	int64_t t = now_ms();

	if (nfree == 0)
		return NULL;
	s = &slots[free_list[--nfree]];
	if (s - slots >= slots_used)
		slots_used = s - slots + 1;
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->cls = (uint8_t)c;
	s->svc = (uint8_t)svc;
	s->busy = true;
	s->held = held;
	s->seed = draw(1, UINT64_MAX - 1);
	s->t0 = s->progress = t;
	s->end_at = held ? t + (int64_t)draw(LIFE_MIN_MS, LIFE_MAX_MS) : t;
	if (c >= C_SEALED)
		s->end_at = t + (int64_t)draw(LIB_LIFE_MIN_MS, LIB_LIFE_MAX_MS);
	s->phase = c >= C_SEALED ? P_RUN : P_CONNECT;
	s->next_chunk = t;
	live[c]++;
	launched++;
	return s;
}

/* --- sending and checking ----------------------------------------------------- */

/* Writes the pattern from s->sent up to s->want, as far as the socket takes it. */
static int
sess_flush(struct sess *s)
{
	uint8_t buf[IO_BYTES];

	while (s->sent < s->want) {
		size_t n =
		        s->want - s->sent < sizeof(buf) ? (size_t)(s->want - s->sent) : sizeof(buf);
		ssize_t w;

		pattern_fill(s->seed, s->sent, buf, n);
		if ((w = send(s->fd, buf, n, MSG_NOSIGNAL)) < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -1;
		}
		s->sent += (uint64_t)w;
	}
	if ((s->sent < s->want) != s->want_out)
		watch(s, s->sent < s->want);
	return 0;
}

static void
sess_chunk(struct sess *s, int64_t t)
{
	uint64_t n = s->held || s->cls >= C_SEALED ? draw(CHUNK_MIN, CHUNK_MAX)
	                                           : draw(SHORT_MIN, SHORT_MAX);

	s->want = s->sent + n;
	s->next_chunk = INT64_MAX;
	s->progress = t;
	if (sess_flush(s) != 0)
		sess_end(s, O_ENDED, "send failed");
}

/* Checks what came back against what was sent; returns -1 at the first wrong byte. */
static int
sess_check(struct sess *s, const uint8_t *p, size_t n)
{
	uint8_t want[IO_BYTES];

	if (s->got + n > s->sent || n > sizeof(want))
		return -1;
	pattern_fill(s->seed, s->got, want, n);
	if (memcmp(p, want, n) != 0)
		return -1;
	s->got += n;
	bytes_checked += n;
	return 0;
}

/* The reply to the request: "+" (TCPMUX), {"message":"connect",...} (USP). */
static void
sess_reply(struct sess *s, const char *p, size_t n, int64_t t)
{
	static const char usp_ok[] = "{\"message\":\"connect\"";
	const char *nl;
	size_t take;

	nl = memchr(p, '\n', n);
	take = nl != NULL ? (size_t)(nl - p) + 1 : n;
	if (s->reply_len + take >= sizeof(s->reply)) {
		sess_end(s, O_ENDED, "reply too long");
		return;
	}
	memcpy(s->reply + s->reply_len, p, take);
	s->reply_len += take;
	s->reply[s->reply_len] = '\0';
	if (nl == NULL)
		return;
	if (take != n) {
		sess_end(s, O_CORRUPT, "bytes before any were sent");
		return;
	}
	if (s->cls == C_PLAIN ? strcmp(s->reply, "+\r\n") != 0
	                      : strncmp(s->reply, usp_ok, sizeof(usp_ok) - 1) != 0) {
		sess_end(s, O_REFUSED, s->reply);
		return;
	}
	s->phase = P_RUN;
	s->progress = t;
	s->next_chunk = t;
}

static void
sess_readable(struct sess *s, int64_t t)
{
	uint8_t buf[IO_BYTES];
	ssize_t n = recv(s->fd, buf, sizeof(buf), 0);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		sess_end(s, s->phase == P_REPLY ? O_REFUSED : O_ENDED,
		         n == 0 ? "end of stream" : strerror(errno));
		return;
	}
	if (s->phase == P_REPLY) {
		sess_reply(s, (const char *)buf, (size_t)n, t);
		return;
	}
	if (sess_check(s, buf, (size_t)n) != 0) {
		sess_end(s, O_CORRUPT, "a byte differs from the one sent");
		return;
	}
	s->progress = t;
	if (s->got < s->want)
		return;
	if (!s->held && s->cls < C_SEALED)
		sess_end(s, O_OK, NULL);
	else
		s->next_chunk = t + (int64_t)draw(GAP_MIN_MS, GAP_MAX_MS);
}

static void
sess_request(struct sess *s)
{
	char line[REPLY_MAX];
	int len;

	if (s->cls == C_PLAIN)
		len = snprintf(line, sizeof(line), "%s\r\n", svc_name[s->svc]);
	else
		len = snprintf(
		        line, sizeof(line),
		        "{\"message\":\"initialize\",\"streams\":[{\"application\":\"%s\"}]}\n",
		        svc_name[s->svc]);
	if (send(s->fd, line, (size_t)len, MSG_NOSIGNAL) != len) {
		sess_end(s, O_REFUSED, "request not sent");
		return;
	}
	s->phase = P_REPLY;
	watch(s, false);
}

static void
sess_event(struct sess *s, uint32_t evs, int64_t t)
{
	socklen_t sl = sizeof(int);
	int err = 0;

	if (s->phase == P_CONNECT) {
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0 || err != 0) {
			sess_end(s, O_REFUSED, strerror(err));
			return;
		}
		sess_request(s);
		return;
	}
	if ((evs & EPOLLOUT) && sess_flush(s) != 0) {
		sess_end(s, O_ENDED, "send failed");
		return;
	}
	if (evs & (EPOLLIN | EPOLLHUP | EPOLLERR))
		sess_readable(s, t);
}

/* --- opening the loop's own sessions (plain, USP) ---------------------------- */

static void
bind_source(int fd)
{
	if (o.bind_base[0] == '\0')
		return;
	if (load_bind_source(fd, o.bind_base, (unsigned long)(next_source++ % o.sources)) != 0)
		die("bind source");
}

static void
open_text(bool held)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sess *s;
	enum cls c = draw(0, 1) ? C_USP : C_PLAIN;
	int svc = draw(0, 3) == 0;

	if (fd < 0)
		return;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bind_source(fd);
	if ((s = sess_new(fd, c, svc, held)) == NULL) {
		close(fd);
		return;
	}
	if (held)
		held_live++;
	else
		short_live++;
	if (connect(fd, (struct sockaddr *)&o.dst, sizeof(o.dst)) != 0 && errno != EINPROGRESS) {
		sess_end(s, O_REFUSED, strerror(errno));
		return;
	}
	watch(s, true);
}

/* --- libfive's sessions, opened by threads -------------------------------------- */

static void
hand_over(int fd, enum cls c, int svc, int64_t t0)
{
	struct handoff h = {.fd = fd, .cls = (uint8_t)c, .svc = (uint8_t)svc, .t0 = t0};

	atomic_fetch_add(&lib_live[c], 1);
	if (write(handoff_pipe[1], &h, sizeof(h)) != (ssize_t)sizeof(h))
		die("handoff");
}

static void
lib_options(struct five_options *fo, enum cls c)
{
	five_options_init(fo);
	fo->port = c == C_DETACH ? o.relay_port : o.port;
	fo->timeout_ms = OPEN_TIMEOUT_MS;
	fo->transport = c == C_TLS ? FIVE_TLS : FIVE_SEALED;
	fo->server_key = c == C_TLS ? NULL : o.key;
	fo->known_hosts = o.known_hosts;
	fo->detachable = c == C_DETACH;
	/* TLS pins fived's key at its first session (one thread opens them: no race). */
	fo->trust_on_first_use = c == C_TLS;
}

static void
pause_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / MS_PER_S,
	                      .tv_nsec = (long)(ms % MS_PER_S) * NS_PER_MS};

	nanosleep(&ts, NULL);
}

struct opener {
	enum cls c;
	long target; /* this thread's share of its class's sessions or streams */
	long mine;
	pthread_t thread;
	uint64_t seed;
};

/* sealed and TLS: a session of their own each, five_connect's descriptor. */
static void *
single_opener(void *arg)
{
	struct opener *op = arg;
	struct five_options fo;
	struct five_error err;

	lib_options(&fo, op->c);
	while (!atomic_load(&stopping)) {
		int svc, fd;
		int64_t t0 = now_ms();

		if (atomic_load(&lib_live[op->c]) >= op->target) {
			pause_ms(TICK_MS * 5);
			continue;
		}
		op->seed = splitmix(op->seed);
		svc = op->seed % 4 == 0;
		if ((fd = five_connect(o.host, svc_name[svc], &fo, &err)) < 0) {
			atomic_fetch_add(&lib_failed_opens, 1);
			pause_ms(RETRY_MS);
			continue;
		}
		hand_over(fd, op->c, svc, t0);
	}
	return NULL;
}

/*
 * Whether a session whose stream could not be opened is over.  A stream
 * that gets no answer in time (the detachable session's connection gone
 * silent, until libfive attaches again) says nothing of the session, and
 * closing it would reset every stream it holds: a detachable session is
 * over when libfive says it is no longer detachable, another one after a
 * few failures in a row.
 */
static bool
session_gone(struct five_session *s, enum cls c, const struct five_error *err, int *failures)
{
	/* Before the refusal's shortcut: a session that could not attach again (its worker
	 * killed, its ticket with it) ends with fived's refusal, and needs replacing. */
	if (c == C_DETACH)
		return !five_session_detachable(s);
	if (err->step == FIVE_ERR_REFUSED)
		return false;
	return ++*failures >= SESSION_FAILURES;
}

/* MUX and DETACH: one session, streams opened in it; a new session once it has failed. */
static void *
mux_opener(void *arg)
{
	struct opener *op = arg;
	struct five_options fo;
	struct five_error err;
	struct five_session *s = NULL;
	int failures = 0;

	lib_options(&fo, op->c);
	while (!atomic_load(&stopping)) {
		int svc, fd;
		int64_t t0 = now_ms();

		if (s == NULL && (s = five_session_open(o.host, &fo, &err)) == NULL) {
			atomic_fetch_add(&lib_failed_opens, 1);
			pause_ms(RETRY_MS);
			continue;
		}
		if (atomic_load(&lib_live[op->c]) >= op->target) {
			pause_ms(TICK_MS * 5);
			continue;
		}
		op->seed = splitmix(op->seed);
		/* The detachable session's streams stay on echo: the backend fault is not theirs.
		 */
		svc = op->c == C_MUX && op->seed % 4 == 0;
		if ((fd = five_session_stream(s, svc_name[svc], NULL, 0, &err)) < 0) {
			atomic_fetch_add(&lib_failed_opens, 1);
			if (session_gone(s, op->c, &err, &failures)) {
				five_session_close(s);
				s = NULL;
			}
			pause_ms(RETRY_MS);
			continue;
		}
		failures = 0;
		hand_over(fd, op->c, svc, t0);
	}
	/* Closing the session resets its streams: the loop ends them first. */
	while (atomic_load(&lib_live[op->c]) > 0 && !atomic_load(&loop_over))
		pause_ms(TICK_MS * 5);
	five_session_close(s);
	return NULL;
}

static void
take_handoffs(void)
{
	struct handoff h;
	struct sess *s;

	while (read(handoff_pipe[0], &h, sizeof(h)) == (ssize_t)sizeof(h)) {
		fcntl(h.fd, F_SETFL, fcntl(h.fd, F_GETFL) | O_NONBLOCK);
		if ((s = sess_new(h.fd, (enum cls)h.cls, h.svc, true)) == NULL) {
			close(h.fd);
			atomic_fetch_sub(&lib_live[h.cls], 1);
			continue;
		}
		s->t0 = h.t0;
		watch(s, false);
	}
}

static void
start_openers(struct opener *ops, size_t *n)
{
	struct {
		enum cls c;
		long target, threads;
		void *(*fn)(void *);
	} plan[] = {
	        {C_SEALED, o.sealed, 4, single_opener},
	        {C_TLS, o.tls, 1, single_opener},
	        {C_MUX, o.mux * o.mux_streams, o.mux, mux_opener},
	        {C_DETACH, o.detach_streams, 1, mux_opener},
	};
	size_t i;
	long t;

	*n = 0;
	for (i = 0; i < sizeof(plan) / sizeof(plan[0]); i++) {
		if (plan[i].target <= 0 || (plan[i].c == C_DETACH && o.relay_port[0] == '\0'))
			continue;
		for (t = 0; t < plan[i].threads; t++) {
			struct opener *op = &ops[(*n)++];
			op->c = plan[i].c;
			op->target = plan[i].target;
			op->seed = o.seed + (uint64_t)*n;
			if (pthread_create(&op->thread, NULL, plan[i].fn, op) != 0)
				die("pthread_create");
		}
	}
}

/* --- the loop ------------------------------------------------------------------ */

static void
on_usr1(int sig)
{
	reset_asked = 1;
}

/* Ends a tenth of the running plain sessions with a reset, a chunk just sent. */
static void
reset_some(void)
{
	long i, n = 0;

	for (i = 0; i < slots_used; i++) {
		struct sess *s = &slots[i];
		if (!s->busy || s->cls != C_PLAIN || s->phase != P_RUN || draw(1, RESET_SHARE) != 1)
			continue;
		s->want = s->sent + CHUNK_MAX;
		sess_flush(s);
		if (s->busy) {
			sess_end(s, O_RESET, "reset by the client on purpose");
			n++;
		}
	}
	printf("reset %ld\n", n);
}

/* Timers: chunks due, lives over, stalls. */
static void
sweep(int64_t t, bool draining)
{
	long i;

	for (i = 0; i < slots_used; i++) {
		struct sess *s = &slots[i];
		bool owed;

		if (!s->busy)
			continue;
		owed = s->phase != P_RUN || s->got < s->want;
		if (owed && t - s->progress > (s->cls == C_DETACH ? STALL_DETACH_MS : STALL_MS)) {
			sess_end(s, O_STALLED, s->phase == P_RUN ? "no echo" : "no reply");
			continue;
		}
		if (s->phase != P_RUN || owed || t < s->next_chunk)
			continue;
		if ((s->sent > 0 && t >= s->end_at) || draining)
			sess_end(s, O_OK, NULL);
		else if (!draining)
			sess_chunk(s, t);
	}
}

static void
status(int64_t t)
{
	long n = 0;
	int c;

	for (c = 0; c < C_COUNT; c++)
		n += live[c];
	printf("t=%lld live=%ld", (long long)t, n);
	for (c = 0; c < C_COUNT; c++)
		printf(" %s=%ld", cls_name[c], live[c]);
	printf(" launched=%ld skipped=%ld bytes=%llu", launched, skipped,
	       (unsigned long long)bytes_checked);
	for (c = 0; c < O_COUNT; c++)
		printf(" %s=%ld", outcome_name[c], ended[c]);
	printf(" lib_open_failures=%ld\n", atomic_load(&lib_failed_opens));
	fflush(stdout);
	fflush(events);
}

static void
run(void)
{
	struct epoll_event evs[EVENTS_MAX];
	struct epoll_event pev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
	int64_t start = now_ms(), stop_at = start + (int64_t)(o.seconds * MS_PER_S);
	int64_t next_status = start, next_tick = start;
	double owed = 0;
	int n, j, k;

	epoll_ctl(ep, EPOLL_CTL_ADD, handoff_pipe[0], &pev);
	for (;;) {
		int64_t t = now_ms();
		bool draining = t >= stop_at;
		long busy = launched -
		            (ended[0] + ended[1] + ended[2] + ended[3] + ended[4] + ended[5]);

		if (draining && !atomic_load(&stopping))
			atomic_store(&stopping, true);
		if (draining && (busy == 0 || t >= stop_at + DRAIN_MS))
			break;
		if (t >= next_tick) {
			if (!draining) {
				owed += (double)o.rate * (double)(t - next_tick + TICK_MS) /
				        MS_PER_S;
				for (; owed >= 1; owed--) {
					if (short_live < o.short_max)
						open_text(false);
					else
						skipped++;
				}
				/* Lost ones come back at a bounded rate, not as a storm. */
				for (k = 0;
				     k < HELD_OPENS_PER_TICK && held_live < o.held && nfree > 0;
				     k++)
					open_text(true);
			}
			sweep(t, draining);
			next_tick = t + TICK_MS;
		}
		if (reset_asked) {
			reset_asked = 0;
			reset_some();
		}
		if (t >= next_status) {
			status(t);
			next_status += MS_PER_S;
		}
		n = epoll_wait(ep, evs, EVENTS_MAX, TICK_MS);
		t = now_ms();
		for (j = 0; j < n; j++) {
			if (evs[j].data.u32 == UINT32_MAX)
				take_handoffs();
			else if (slots[evs[j].data.u32].busy)
				sess_event(&slots[evs[j].data.u32], evs[j].events, t);
		}
	}
	for (j = 0; j < slots_used; j++)
		if (slots[j].busy)
			sess_end(&slots[j], O_STALLED,
			         slots[j].phase == P_CONNECT ? "still connecting at the end"
			         : slots[j].phase == P_REPLY ? "no reply at the end"
			                                     : "no echo at the end");
	atomic_store(&loop_over, true);
	status(now_ms());
}

/* --- main ------------------------------------------------------------------------ */

static int
parse_addr(const char *spec)
{
	if (load_parse_addr(spec, &o.dst, o.host, sizeof(o.host)) != 0)
		return -1;
	snprintf(o.port, sizeof(o.port), "%s", strrchr(spec, ':') + 1);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr,
	        "usage: soakload -c ADDR:PORT -d SECONDS -o EVENTS [-k HELD] [-r RATE -C MAX]\n"
	        "       [-B A.B -S SOURCES] [-K KEY -H KNOWN_HOSTS -y SEALED -T TLS\n"
	        "       -m MUX -M STREAMS] [-R RELAYPORT -D DETACH_STREAMS] [-s SEED]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct opener ops[16];
	struct rlimit rl;
	size_t nops, i;
	int c;

	o.sources = 1;
	o.mux_streams = 1;
	o.short_max = SLOTS_MAX;
	while ((c = getopt(argc, argv, "c:d:o:k:r:C:B:S:K:H:y:T:m:M:R:D:s:")) != -1) {
		switch (c) {
		case 'c':
			if (parse_addr(optarg) != 0)
				usage();
			break;
		case 'd':
			o.seconds = strtod(optarg, NULL);
			break;
		case 'o':
			o.events = optarg;
			break;
		case 'k':
			o.held = strtol(optarg, NULL, 10);
			break;
		case 'r':
			o.rate = strtol(optarg, NULL, 10);
			break;
		case 'C':
			o.short_max = strtol(optarg, NULL, 10);
			break;
		case 'B':
			snprintf(o.bind_base, sizeof(o.bind_base), "%s", optarg);
			break;
		case 'S':
			o.sources = strtol(optarg, NULL, 10);
			break;
		case 'K':
			o.key = optarg;
			break;
		case 'H':
			o.known_hosts = optarg;
			break;
		case 'y':
			o.sealed = strtol(optarg, NULL, 10);
			break;
		case 'T':
			o.tls = strtol(optarg, NULL, 10);
			break;
		case 'm':
			o.mux = strtol(optarg, NULL, 10);
			break;
		case 'M':
			o.mux_streams = strtol(optarg, NULL, 10);
			break;
		case 'R':
			snprintf(o.relay_port, sizeof(o.relay_port), "%s", optarg);
			break;
		case 'D':
			o.detach_streams = strtol(optarg, NULL, 10);
			break;
		case 's':
			o.seed = strtoull(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (o.host[0] == '\0' || o.events == NULL || o.seconds <= 0 || o.sources < 1 || o.mux > 8 ||
	    ((o.sealed > 0 || o.mux > 0 || o.detach_streams > 0) && o.key == NULL) ||
	    (o.tls > 0 && o.known_hosts == NULL))
		usage();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, on_usr1);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((events = fopen(o.events, "w")) == NULL)
		die(o.events);
	fprintf(events, "start_ms,end_ms,class,service,bytes,outcome,reason\n");
	slots = calloc(SLOTS_MAX, sizeof(*slots));
	free_list = calloc(SLOTS_MAX, sizeof(*free_list));
	if (slots == NULL || free_list == NULL)
		die("calloc");
	for (c = SLOTS_MAX - 1; c >= 0; c--)
		free_list[nfree++] = c;
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    pipe2(handoff_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		die("epoll");
	/* The openers block on the pipe rather than lose a descriptor. */
	fcntl(handoff_pipe[1], F_SETFL, fcntl(handoff_pipe[1], F_GETFL) & ~O_NONBLOCK);
	start_openers(ops, &nops);
	run();
	for (i = 0; i < nops; i++)
		pthread_join(ops[i].thread, NULL);
	fclose(events);
	return 0;
}
