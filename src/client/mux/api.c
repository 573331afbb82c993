/*
 * libfive's multiplexed sessions (five.h): open one, open streams on it
 * (as descriptors, or as one request and its reply), close it.  The
 * engine thread does the I/O; these calls hand it streams and wait on the
 * session's cond for what it has to say.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/base/options.h"
#include "client/base/sock.h"
#include "client/dialect/text.h"
#include "client/dialect/token.h"
#include "client/mux/mux.h"
#include "client/transport/conn.h"
#include "common/util.h"
#include "five.h"
#include "proto/line.h"

/* The last odd id a client may open: ids are 32 bits, and never reused. */
#define MUX_LAST_ID 0xffffffffu

static struct timespec
abs_time(uint64_t deadline_ms)
{
	struct timespec ts;
	uint64_t now = monotonic_ms(), left = deadline_ms > now ? deadline_ms - now : 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(left / 1000);
	ts.tv_nsec += (long)(left % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* HOST, MULTIPLEX, and DETACHABLE right behind it (pipelined: one round trip for both). */
static size_t
request_lines(const struct five_options *o, char *buf, size_t size)
{
	int n;

	if (o->vhost != NULL)
		n = snprintf(buf, size, "HOST %s\r\nMULTIPLEX\r\n", o->vhost);
	else
		n = snprintf(buf, size, "MULTIPLEX\r\n");
	if (o->detachable)
		n += (int)mux_encode_detach_request((uint8_t *)buf + n, size - (size_t)n);
	return (size_t)n;
}

static int
check_options(const struct five_options *o, struct five_error *err)
{
	if (o->token != NULL && o->auth != NULL)
		return five_fail(err, FIVE_ERR_USAGE,
		                 "a token replaces authentication: not both at once");
	if (o->token != NULL && five_token_check(o->token, MUX_TOKEN_MAX, err) != 0)
		return -1;
	if (o->vhost != NULL && !vhost_name_valid(o->vhost))
		return five_fail(err, FIVE_ERR_USAGE, "invalid vhost name");
	return 0;
}

/*
 * fived's answer to DETACHABLE, which came with MULTIPLEX's: a refusal
 * is told to the caller (the session goes on), a failure is the open's.
 * Returns 0 or -1 with err filled.
 */
static int
await_detachable(struct five_session *s, const struct five_options *o, struct five_error *err)
{
	struct timespec until = abs_time(monotonic_ms() + (uint64_t)o->timeout_ms);
	char note[FIVE_LINE_MAX];
	bool refused;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	while (s->resume == MUX_RESUME_ASKED && !s->dead && r == 0)
		if (pthread_cond_timedwait(&s->changed, &s->lock, &until) == ETIMEDOUT)
			r = five_fail(err, FIVE_ERR_PROTOCOL, "no answer to DETACHABLE in time");
	if (r == 0 && s->dead)
		r = five_fail(err, s->error.step, "%s", s->error.message);
	refused = r == 0 && s->resume == MUX_RESUME_REFUSED;
	if (refused)
		snprintf(note, sizeof(note),
		         "fived refused to make the session detachable (%s): it goes on, not "
		         "detachable",
		         s->refusal);
	pthread_mutex_unlock(&s->lock);
	if (refused)
		five_notice(o, note);
	return r;
}

struct five_session *
five_session_open(const char *host, const struct five_options *opts, struct five_error *err)
{
	struct five_error scratch;
	struct five_options o;
	struct five_conn c;
	struct five_session *s;
	struct mux_redial *d = NULL;
	char buf[2 * LINE_MAX_BYTES];
	size_t n;

	err = five_error_or(err, &scratch);
	if (host == NULL) {
		five_fail(err, FIVE_ERR_USAGE, "no host");
		return NULL;
	}
	if (five_options_resolve(opts, &o, err) != 0 || check_options(&o, err) != 0)
		return NULL;
	n = request_lines(&o, buf, sizeof(buf));
	if (five_text_open(&c, host, &o, buf, n, err) != 0)
		return NULL;
	if (five_text_await(&c, c.replies_due + five_text_replies(&o), err) != 0 ||
	    (o.detachable && (d = mux_redial_new(host, &o, &c, err)) == NULL)) {
		five_conn_close(&c);
		return NULL;
	}
	/* The session owns the connection from here on, and d once it is made. */
	if ((s = mux_session_new(&c, &o, err)) == NULL) {
		mux_redial_free(d);
		return NULL;
	}
	s->redial = d;
	if (mux_session_start(s, err) != 0 || (o.detachable && await_detachable(s, &o, err) != 0)) {
		five_session_close(s);
		return NULL;
	}
	return s;
}

int
five_session_detachable(struct five_session *s)
{
	int on;

	if (s == NULL)
		return 0;
	pthread_mutex_lock(&s->lock);
	on = s->resume == MUX_RESUME_ON && !s->dead;
	pthread_mutex_unlock(&s->lock);
	return on;
}

bool
mux_usable(struct five_session *s)
{
	bool ok;

	pthread_mutex_lock(&s->lock);
	ok = !s->dead && !s->closing && !s->goaway && s->next_id < MUX_LAST_ID;
	pthread_mutex_unlock(&s->lock);
	return ok;
}

/* Streams not over yet.  Lock held. */
static size_t
count_open(const struct five_session *s)
{
	const struct mux_stream *st;
	size_t n = 0;

	for (st = s->streams; st != NULL; st = st->next)
		n += !st->over;
	return n;
}

size_t
mux_streams_open(struct five_session *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = count_open(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

void
mux_await_streams_over(struct five_session *s, uint64_t ms)
{
	struct timespec until = abs_time(monotonic_ms() + ms);

	pthread_mutex_lock(&s->lock);
	while (!s->dead && count_open(s) > 0)
		if (pthread_cond_timedwait(&s->changed, &s->lock, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&s->lock);
}

void
mux_on_end(struct five_session *s, mux_end_fn fn, void *arg)
{
	pthread_mutex_lock(&s->lock);
	s->on_end = fn;
	s->on_end_arg = arg;
	pthread_mutex_unlock(&s->lock);
}

int
mux_failed(struct five_session *s, struct five_error *err)
{
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if (s->dead && !s->closing)
		r = five_fail(err, s->error.step, "%s", s->error.message);
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* Why no new stream may be opened, or 0.  Lock held. */
static int
refuse_new(struct five_session *s, struct five_error *err)
{
	if (s->dead)
		return five_fail(err, s->error.step, "%s", s->error.message);
	if (s->closing)
		return five_fail(err, FIVE_ERR_USAGE, "the session is closing");
	if (s->goaway)
		return five_fail(err, FIVE_ERR_REFUSED, "the server takes no new streams");
	if (s->next_id >= MUX_LAST_ID)
		return five_fail(err, FIVE_ERR_REFUSED, "no stream ids left on this session");
	return 0;
}

uint32_t
mux_attach(struct five_session *s, int fd, const char *service, const void *early, size_t len,
           bool waited, unsigned tell, struct five_error *err)
{
	struct mux_stream *st, **tail;
	uint32_t id = 0;

	if (!name_valid(service) || strlen(service) > MUX_SERVICE_MAX) {
		close(fd);
		five_fail(err, FIVE_ERR_USAGE, "invalid service name \"%.64s\"", service);
		return 0;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	/* Until the stream ends in order: five killed outright resets a forwarded connection. */
	five_sock_reset_on_close(fd);
	pthread_mutex_lock(&s->lock);
	if (refuse_new(s, err) != 0) {
		close(fd);
	} else if ((st = mux_stream_new(s->next_id, fd, service, early, len)) == NULL) {
		close(fd);
		five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
	} else {
		/* At the tail: OPENs go out in the order of their ids, which must grow. */
		for (tail = &s->streams; *tail != NULL; tail = &(*tail)->next)
			;
		*tail = st;
		st->waited = waited;
		st->announce = (tell & MUX_TELL_ANSWER) != 0;
		st->marked = (tell & MUX_TELL_ENDS) != 0;
		id = st->id;
		s->next_id += 2;
	}
	pthread_mutex_unlock(&s->lock);
	if (id != 0)
		mux_wake(s);
	return id;
}

void
mux_cancel(struct five_session *s, uint32_t id, const char *why)
{
	struct mux_stream *st;

	pthread_mutex_lock(&s->lock);
	if ((st = mux_stream_find(s, id)) != NULL && !st->over && !st->cancel) {
		st->cancel = true;
		str_copy(st->why, why, sizeof(st->why));
	}
	pthread_mutex_unlock(&s->lock);
	mux_wake(s);
}

/* What became of a stream fived answered.  Lock held. */
static int
answer(const struct mux_stream *st, struct five_error *err)
{
	if (st->accepted)
		return 0;
	return five_fail(err, FIVE_ERR_REFUSED, "%s", st->why[0] != '\0' ? st->why : "refused");
}

int
mux_await(struct five_session *s, uint32_t id, uint64_t deadline, struct five_error *err)
{
	struct timespec until = abs_time(deadline);
	struct mux_stream *st;
	int r = -1;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		if ((st = mux_stream_find(s, id)) == NULL) {
			five_fail(err, FIVE_ERR_SYSTEM, "stream %u is gone", (unsigned)id);
			break;
		}
		if (st->answered) {
			r = answer(st, err);
			break;
		}
		if (s->dead) {
			five_fail(err, s->error.step, "%s", s->error.message);
			break;
		}
		if (st->over) {
			five_fail(err, FIVE_ERR_SYSTEM, "%s", st->why);
			break;
		}
		if (pthread_cond_timedwait(&s->changed, &s->lock, &until) == ETIMEDOUT) {
			five_fail(err, FIVE_ERR_PROTOCOL, "no answer in time: timed out");
			st->cancel = true;
			str_copy(st->why, "timed out", sizeof(st->why));
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (r != 0)
		mux_wake(s);
	return r;
}

/*
 * Lets the engine free stream id once it is over.  Returns 0, or -1 with
 * err filled when it was reset (or the session failed) before its end.
 */
static int
release(struct five_session *s, uint32_t id, struct five_error *err)
{
	struct mux_stream *st;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if ((st = mux_stream_find(s, id)) != NULL) {
		if (st->over && st->why[0] != '\0')
			r = five_fail(err, s->dead ? s->error.step : FIVE_ERR_CONNECT,
			              "stream reset: %s", s->dead ? s->error.message : st->why);
		st->waited = false;
	}
	pthread_mutex_unlock(&s->lock);
	mux_wake(s);
	return r;
}

/* What every stream needs: a session, a service, bytes wherever there is a length.  0 or -1. */
static int
stream_args(const struct five_session *s, const char *service, const void *data, size_t len,
            struct five_error *err)
{
	if (s == NULL || service == NULL || (data == NULL && len > 0))
		return five_fail(err, FIVE_ERR_USAGE, "no %s",
		                 s == NULL         ? "session"
		                 : service == NULL ? "service"
		                                   : "data");
	return 0;
}

int
five_session_stream(struct five_session *s, const char *service, const void *early, size_t len,
                    struct five_error *err)
{
	struct five_error ignored, scratch;
	uint64_t deadline;
	int pair[2];
	uint32_t id;

	err = five_error_or(err, &scratch);
	if (stream_args(s, service, early, len, err) != 0)
		return -1;
	deadline = monotonic_ms() + (uint64_t)s->timeout_ms;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "cannot make a socketpair");
	/* pair[1] is the stream's from now on. */
	if ((id = mux_attach(s, pair[1], service, early, len, true, 0, err)) == 0) {
		close(pair[0]);
		return -1;
	}
	if (mux_await(s, id, deadline, err) != 0) {
		release(s, id, &ignored);
		close(pair[0]);
		return -1;
	}
	release(s, id, &ignored);
	return pair[0];
}

/* Reads the reply on fd until its end, the deadline, or more than size. */
static int
read_reply(int fd, uint8_t *reply, size_t size, size_t *got, uint64_t deadline,
           struct five_error *err)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	uint8_t extra;
	uint64_t now;
	ssize_t n;

	for (*got = 0;;) {
		if ((now = monotonic_ms()) >= deadline || poll(&pfd, 1, (int)(deadline - now)) == 0)
			return five_fail(err, FIVE_ERR_PROTOCOL, "no reply in time: timed out");
		/* Room spent: one more byte tells a reply of exactly size from a longer one. */
		n = *got < size ? recv(fd, reply + *got, size - *got, 0) : recv(fd, &extra, 1, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return five_fail(err, FIVE_ERR_CONNECT, "recv: %s", strerror(errno));
		if (n == 0)
			return 0;
		if (*got == size)
			return five_fail(err, FIVE_ERR_USAGE, "the reply is larger than %zu bytes",
			                 size);
		*got += (size_t)n;
	}
}

int
five_session_request(struct five_session *s, const char *service, const void *request, size_t len,
                     void *reply, size_t size, size_t *reply_len, int timeout_ms,
                     struct five_error *err)
{
	struct five_error ignored, scratch;
	int pair[2], r = -1;
	uint64_t deadline;
	uint32_t id;
	size_t got = 0;

	err = five_error_or(err, &scratch);
	if (reply_len != NULL)
		*reply_len = 0;
	if (stream_args(s, service, request, len, err) != 0 ||
	    stream_args(s, service, reply, size, err) != 0)
		return -1;
	deadline = monotonic_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : s->timeout_ms);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "cannot make a socketpair");
	/* The request is all there is: FIN goes right behind the OPEN that carries it. */
	shutdown(pair[0], SHUT_WR);
	if ((id = mux_attach(s, pair[1], service, request, len, true, 0, err)) == 0) {
		close(pair[0]);
		return -1;
	}
	if (mux_await(s, id, deadline, err) != 0) {
		release(s, id, &ignored);
		goto out;
	}
	if (read_reply(pair[0], reply, size, &got, deadline, err) != 0) {
		/* Cancelled: fived resets the backend, and drops what is in flight. */
		mux_cancel(s, id, err->step == FIVE_ERR_USAGE ? "reply too large" : "timed out");
		release(s, id, &ignored);
		goto out;
	}
	r = release(s, id, err);
out:
	if (reply_len != NULL)
		*reply_len = got;
	close(pair[0]);
	return r;
}

void
five_session_close(struct five_session *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->closing = true;
	pthread_mutex_unlock(&s->lock);
	mux_wake(s);
	if (s->thread_started)
		pthread_join(s->thread, NULL);
	mux_session_free(s);
}
