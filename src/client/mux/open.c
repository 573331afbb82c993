/*
 * A multiplexed session is made of a connection to fived that has
 * entered framed mode (`+ MULTIPLEX`): what the connection read ahead
 * (plaintext, and records not yet opened) is the start of fived's frames.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/base/thread.h"
#include "client/mux/mux.h"
#include "client/transport/conn.h"
#include "client/transport/seal.h"
#include "common/util.h"

int
mux_take_conn(struct five_session *s, struct five_conn *c, struct five_error *err)
{
	if (c->in_len > sizeof(s->in) ||
	    (c->seal != NULL && c->seal->pending_len > sizeof(s->raw))) {
		five_conn_close(c);
		return five_fail(err, FIVE_ERR_PROTOCOL, "too much before the first frame");
	}
	memcpy(s->in, c->in, c->in_len);
	s->in_len = c->in_len;
	if (c->seal != NULL) {
		memcpy(s->raw, c->seal->pending, c->seal->pending_len);
		s->raw_len = c->seal->pending_len;
		c->seal->pending_len = 0;
	}
	s->fd = c->fd;
	s->seal = c->seal;
	c->fd = -1;
	c->seal = NULL;
	five_conn_close(c);
	if (fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK) != 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "cannot make the session non-blocking");
	return 0;
}

/* The session owns c from here on, also when this fails: c is closed then. */
struct five_session *
mux_session_new(struct five_conn *c, const struct five_options *o, struct five_error *err)
{
	struct five_session *s = calloc(1, sizeof(*s));
	pthread_condattr_t attr;

	if (s == NULL) {
		five_conn_close(c);
		five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
		return NULL;
	}
	s->fd = -1;
	s->wake[0] = s->wake[1] = -1;
	pthread_mutex_init(&s->lock, NULL);
	/* Callers wait for answers until deadlines taken from the monotonic clock. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->changed, &attr);
	pthread_condattr_destroy(&attr);
	buf_init(&s->out, SIZE_MAX);
	s->timeout_ms = o->timeout_ms;
	s->next_id = 1;
	s->tx_window = MUX_SESSION_WINDOW;
	s->rx_window = MUX_SESSION_WINDOW;
	s->rx_size = MUX_SESSION_WINDOW;
	s->stream_window = MUX_STREAM_WINDOW;
	s->round_start = monotonic_ms();
	s->last_rx_at = s->round_start;
	/* The caller sent DETACHABLE behind MULTIPLEX: every session frame is kept from here. */
	s->resume = o->detachable ? MUX_RESUME_ASKED : MUX_RESUME_OFF;
	buf_init(&s->copies, SIZE_MAX);
	if (mux_take_conn(s, c, err) != 0)
		goto fail;
	if (o->token != NULL && (s->token = strdup(o->token)) == NULL) {
		five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
		goto fail;
	}
	if (pipe2(s->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
		five_fail(err, FIVE_ERR_SYSTEM, "cannot make a pipe");
		goto fail;
	}
	return s;
fail:
	five_conn_close(c);
	mux_session_free(s);
	return NULL;
}

/* The engine must have returned (or never started). */
void
mux_session_free(struct five_session *s)
{
	struct mux_stream *st;

	if (s == NULL)
		return;
	while ((st = s->streams) != NULL) {
		s->streams = st->next;
		mux_stream_free(st);
	}
	if (s->seal != NULL && !s->seal->ended)
		s->seal->ended = true; /* never started: ended without FINAL */
	if (s->fd >= 0)
		close(s->fd);
	five_seal_free(s->seal);
	if (s->wake[0] >= 0)
		close(s->wake[0]);
	if (s->wake[1] >= 0)
		close(s->wake[1]);
	free(s->token);
	mux_redial_free(s->redial);
	sodium_memzero(s->ticket, sizeof(s->ticket));
	buf_free(&s->copies);
	buf_free(&s->out);
	sodium_memzero(s->in, sizeof(s->in));
	pthread_cond_destroy(&s->changed);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int
mux_session_start(struct five_session *s, struct five_error *err)
{
	if (five_thread_start(mux_engine_run, s, &s->thread) != 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "cannot start the session's thread");
	s->thread_started = true;
	return 0;
}
