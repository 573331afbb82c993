/*
 * The engine: one thread per session, polling the session's socket and
 * every stream's local descriptor.  Only session-level backpressure (too
 * much queued toward fived) stops it reading the socket; a stream whose
 * reader is slow holds its own window's worth of bytes, and the others go
 * on.
 */
#include <errno.h>
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/mux/mux.h"
#include "client/transport/seal.h"
#include "common/util.h"
#include "proto/mux.h"

/* pfd[0]: the wake pipe; pfd[1]: the session's socket; then the streams. */
#define FIXED_FDS 2

void
mux_wake(struct five_session *s)
{
	uint8_t b = 1;

	/* A full pipe is already a wake-up. */
	if (write(s->wake[1], &b, 1) < 0 && errno != EAGAIN)
		return;
}

static void
drain_wake(struct five_session *s)
{
	uint8_t b[64];

	while (read(s->wake[0], b, sizeof(b)) > 0)
		;
}

/*
 * Measures the round trip at the start, then every MUX_PING_INTERVAL_MS
 * while a stream is open; a detachable session's connection is watched
 * with one every MUX_KEEPALIVE_MS, streams or not (section 12.6).
 */
static bool
pings(const struct five_session *s)
{
	return !s->ping_out &&
	       (s->rtt_ms == 0 || s->open_streams > 0 || s->resume == MUX_RESUME_ON);
}

static void
ping(struct five_session *s)
{
	uint8_t frame[MUX_HEADER_LEN + MUX_PING_LEN];
	uint64_t now = monotonic_ms();

	if (!pings(s) || now < s->next_ping)
		return;
	randombytes_buf(s->ping, sizeof(s->ping));
	if (mux_send_frame(s, frame, mux_encode_ping(frame, sizeof(frame), 0, s->ping)) != 0)
		return;
	s->ping_out = true;
	s->ping_at = now;
	s->next_ping = now + (s->resume == MUX_RESUME_ON ? MUX_KEEPALIVE_MS : MUX_PING_INTERVAL_MS);
}

/* Until the next PING, or what a detachable session has to do next; -1: no end. */
static int
poll_timeout(const struct five_session *s)
{
	uint64_t now = monotonic_ms();
	int ms = -1, resume = mux_resume_wait_ms(s);

	if (pings(s))
		ms = now >= s->next_ping ? 0 : (int)(s->next_ping - now);
	if (resume >= 0 && (ms < 0 || resume < ms))
		ms = resume;
	return ms;
}

/* New streams opened, cancelled ones reset, ends of stream passed on. */
static void
tend_streams(struct five_session *s)
{
	struct mux_stream *st;

	for (st = s->streams; st != NULL && !s->dead; st = st->next) {
		if (st->cancel && !st->over)
			mux_stream_reset(s, st, true, MUX_RST_RESET, st->why);
		else if (!st->open_sent && !st->over)
			mux_stream_open(s, st);
		mux_stream_settle(s, st);
	}
}

/* Streams that are over and that nobody waits for are freed. */
static void
sweep(struct five_session *s)
{
	struct mux_stream **p = &s->streams, *st;

	while ((st = *p) != NULL) {
		if (st->over && !st->waited && !mux_stream_marking(st)) {
			*p = st->next;
			mux_stream_free(st);
		} else {
			p = &st->next;
		}
	}
}

static size_t
count_streams(const struct five_session *s)
{
	const struct mux_stream *st;
	size_t n = 0;

	for (st = s->streams; st != NULL; st = st->next)
		n++;
	return n;
}

/* Which descriptors to wait for; by[i] is pfd[i]'s stream. */
static nfds_t
fill(struct five_session *s, struct pollfd *pfd, struct mux_stream **by)
{
	struct mux_stream *st;
	nfds_t n = FIXED_FDS;
	short ev;

	pfd[0] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
	ev = (!s->sock_eof && !s->final_seen && s->out.len < MUX_OUT_MAX ? POLLIN : 0) |
	     (mux_out_pending(s) ? POLLOUT : 0);
	pfd[1] = (struct pollfd){.fd = ev != 0 ? s->fd : -1, .events = ev};
	for (st = s->streams; st != NULL; st = st->next) {
		if (st->over && !mux_stream_marking(st))
			continue;
		if (st->over)
			ev = POLLOUT;
		else
			ev = (mux_stream_wants_read(s, st) ? POLLIN : 0) |
			     (st->down.len > 0 || mux_stream_end_due(st) ? POLLOUT : 0);
		if (ev == 0)
			continue;
		by[n] = st;
		pfd[n++] = (struct pollfd){.fd = st->fd, .events = ev};
	}
	return n;
}

static void
serve(struct five_session *s, const struct pollfd *pfd, struct mux_stream **by, nfds_t n)
{
	nfds_t i;

	if (pfd[0].revents != 0)
		drain_wake(s);
	if ((pfd[1].revents & ~POLLOUT) != 0 && mux_read_session(s) != 0)
		return;
	for (i = FIXED_FDS; i < n && !s->dead; i++) {
		struct mux_stream *st = by[i];

		if (pfd[i].revents != 0 && mux_stream_marking(st))
			mux_stream_mark(s, st);
		if (pfd[i].revents == 0 || st->over)
			continue;
		if ((pfd[i].events & POLLOUT) && st->down.len > 0 && mux_stream_write(s, st) != 0)
			continue;
		if ((pfd[i].events & POLLIN) && !st->over && mux_stream_read(s, st) != 0)
			continue;
	}
	if (!s->dead && mux_out_pending(s))
		mux_flush_session(s);
}

/* fived ended its side: fine once no stream is open, a cut otherwise. */
static void
check_end(struct five_session *s)
{
	/* Bytes left unopened at the end are a record cut in two: no FINAL behind them. */
	if (s->dead || !(s->sock_eof || s->final_seen))
		return;
	/* Without its proper end, a detachable session's connection broke (section 12.4). */
	if (s->seal != NULL && !s->final_seen)
		mux_broken(s, FIVE_ERR_PROTOCOL, "the session was cut short");
	else if (s->seal == NULL && s->open_streams > 0)
		mux_broken(s, FIVE_ERR_CONNECT, "fived ended the session with streams open");
	else if (s->open_streams > 0)
		mux_fail(s, FIVE_ERR_CONNECT, "fived ended the session with streams open");
	else
		mux_fail(s, FIVE_ERR_CONNECT, "fived ended the session");
}

/* One round: what changed, a wait, what came.  The lock is held but during poll. */
static int
step(struct five_session *s)
{
	size_t max = FIXED_FDS + count_streams(s);
	struct pollfd *pfd = calloc(max, sizeof(*pfd));
	struct mux_stream **by = calloc(max, sizeof(*by));
	nfds_t n;
	int r;

	if (pfd == NULL || by == NULL) {
		mux_fail(s, FIVE_ERR_SYSTEM, "out of memory");
		goto out;
	}
	tend_streams(s);
	ping(s);
	mux_resume_tick(s);
	/* Bytes read ahead, with the handshake or an ATTACH, may hold fived's end already. */
	check_end(s);
	if (s->broken)
		mux_reattach(s);
	if (!s->dead && mux_out_pending(s))
		mux_flush_session(s);
	n = fill(s, pfd, by);
	pthread_cond_broadcast(&s->changed);
	if (s->dead || s->closing)
		goto out;
	pthread_mutex_unlock(&s->lock);
	r = poll(pfd, n, poll_timeout(s));
	pthread_mutex_lock(&s->lock);
	if (r < 0 && errno != EINTR)
		mux_fail(s, FIVE_ERR_SYSTEM, strerror(errno));
	else if (r > 0)
		serve(s, pfd, by, n);
	tend_streams(s);
	check_end(s);
	if (s->broken)
		mux_reattach(s);
	sweep(s);
out:
	free(pfd);
	free(by);
	return s->dead || s->closing ? -1 : 0;
}

/* Sends what is queued, waiting for room until the deadline. */
static void
flush_by(struct five_session *s, uint64_t deadline)
{
	struct pollfd pfd = {.fd = s->fd, .events = POLLOUT};
	uint64_t now;

	while (!s->dead && mux_out_pending(s) && (now = monotonic_ms()) < deadline) {
		if (mux_flush_session(s) != 0 || !mux_out_pending(s))
			break;
		if (poll(&pfd, 1, (int)(deadline - now)) < 0 && errno != EINTR)
			break;
	}
}

/* Plain: our end, then fived's read up to its end, so that a close does not reset. */
static void
linger_plain(struct five_session *s, uint64_t deadline)
{
	struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
	uint8_t drop[4096];
	uint64_t now;

	shutdown(s->fd, SHUT_WR);
	while ((now = monotonic_ms()) < deadline && poll(&pfd, 1, (int)(deadline - now)) > 0)
		if (recv(s->fd, drop, sizeof(drop), 0) <= 0)
			break;
}

/*
 * The session ends.  Closing: every stream still open is reset (RST
 * RESET), and the session's stream ends cleanly (FINAL, close_notify, a
 * half-close) once they are sent.  Failed: streams are cut, and a sealed
 * session ends without FINAL, so that fived takes it for a truncation.
 */
static void
finish(struct five_session *s)
{
	/* Without a connection (a detachable session not attached again) there is nothing to end.
	 */
	bool clean = s->fd >= 0 && (!s->dead || s->error.step == FIVE_ERR_CONNECT);
	uint64_t deadline = monotonic_ms() + (uint64_t)s->timeout_ms;
	struct mux_stream *st;

	for (st = s->streams; st != NULL; st = st->next)
		mux_stream_reset(s, st, clean, MUX_RST_RESET,
		                 s->dead ? s->error.message : "session closed");
	if (clean)
		flush_by(s, deadline);
	if (s->seal != NULL && clean && !s->dead)
		five_seal_end(s->seal, s->fd, s->timeout_ms);
	else if (s->seal != NULL && clean && s->final_seen)
		five_seal_end(s->seal, s->fd, s->timeout_ms);
	else if (clean && s->seal == NULL)
		linger_plain(s, monotonic_ms() + FIVE_LINGER_MS);
	if (!clean && s->seal != NULL)
		s->seal->ended = true;
	/* Failed: fived learns at once, rather than when the application closes the session. */
	if (!clean && s->fd >= 0)
		shutdown(s->fd, SHUT_RDWR);
	if (!s->dead)
		five_fail(&s->error, FIVE_ERR_USAGE, "the session is closed");
	s->dead = true;
	s->finished = true;
	pthread_cond_broadcast(&s->changed);
}

void *
mux_engine_run(void *arg)
{
	struct five_session *s = arg;

	pthread_mutex_lock(&s->lock);
	mux_read_ahead(s);
	while (step(s) == 0)
		;
	finish(s);
	sweep(s);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}
