/*
 * five_connect promises a descriptor that reads and writes the service's
 * bytes.  A sealed session's are sealed and opened on the way, so the
 * caller gets one end of a loopback TCP connection (a socketpair would
 * have no reset to show a cut stream by), and a thread of libfive relays
 * between the other end and the session until both directions have ended
 * (five.h tells callers what that means for them).
 */
#include "client/relay/handoff.h"
#include "client/base/thread.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/base/sock.h"
#include "client/relay/relay.h"
#include "client/transport/conn.h"
#include "client/transport/seal.h"
#include "common/util.h"

/*
 * At exit, how long libfive waits for relays whose application has ended
 * its side: time enough to send the session's end (FINAL), which a
 * process that closes its descriptor and exits at once would otherwise
 * cut short.
 */
#define HANDOFF_EXIT_WAIT_MS 500

/* Owned by the relay thread once it runs; freed by it. */
struct handoff {
	struct relay_ends ends;
	struct five_seal *seal;
	uint8_t initial[FIVE_LINE_MAX * 4];
	struct handoff *prev, *next; /* among the live relays */
};

/* The relays running now, for the wait at exit. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_gone = PTHREAD_COND_INITIALIZER;
static struct handoff *live;
static pthread_once_t at_exit_once = PTHREAD_ONCE_INIT;

/* Whether the application has ended its side of h: its end of the pair says so. */
static bool
application_ended(const struct handoff *h)
{
	struct pollfd p = {.fd = h->ends.in_fd, .events = POLLRDHUP};

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP)) != 0;
}

static bool
any_ending(void)
{
	const struct handoff *h;

	for (h = live; h != NULL; h = h->next)
		if (application_ended(h))
			return true;
	return false;
}

/* At exit: relays whose application is done get a moment to end their sessions properly. */
static void
wait_at_exit(void)
{
	uint64_t deadline = monotonic_ms() + HANDOFF_EXIT_WAIT_MS;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += HANDOFF_EXIT_WAIT_MS / 1000;
	ts.tv_nsec += (HANDOFF_EXIT_WAIT_MS % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&live_lock);
	while (any_ending() && monotonic_ms() < deadline &&
	       pthread_cond_timedwait(&live_gone, &live_lock, &ts) == 0)
		;
	pthread_mutex_unlock(&live_lock);
}

/* A child after fork has none of its parent's relay threads. */
static void
forget_in_child(void)
{
	live = NULL;
	pthread_mutex_init(&live_lock, NULL);
}

static void
register_at_exit(void)
{
	atexit(wait_at_exit);
	pthread_atfork(NULL, NULL, forget_in_child);
}

static void
live_add(struct handoff *h)
{
	pthread_once(&at_exit_once, register_at_exit);
	pthread_mutex_lock(&live_lock);
	h->prev = NULL;
	h->next = live;
	if (live != NULL)
		live->prev = h;
	live = h;
	pthread_mutex_unlock(&live_lock);
}

static void
live_remove(struct handoff *h)
{
	pthread_mutex_lock(&live_lock);
	if (h->prev != NULL)
		h->prev->next = h->next;
	else
		live = h->next;
	if (h->next != NULL)
		h->next->prev = h->prev;
	pthread_cond_broadcast(&live_gone);
	pthread_mutex_unlock(&live_lock);
}

static void
handoff_free(struct handoff *h)
{
	close(h->ends.sock);
	close(h->ends.in_fd);
	five_seal_free(h->seal);
	free(h);
}

static void *
handoff_run(void *arg)
{
	struct handoff *h = arg;
	struct five_error err;

	/* A failure here, a cut stream among them, shows to the caller as a reset. */
	if (five_relay(&h->ends, &err) != 0)
		five_sock_reset_on_close(h->ends.in_fd);
	live_remove(h);
	handoff_free(h);
	return NULL;
}

/* The thread takes no signals: they are the application's. */
static int
start_thread(struct handoff *h)
{
	return five_thread_start(handoff_run, h, NULL);
}

int
five_handoff(struct five_conn *c, const struct five_options *o, struct five_error *err)
{
	struct handoff *h = calloc(1, sizeof(*h));
	int pair[2];

	if (h == NULL || five_sock_loopback_pair(pair) != 0) {
		free(h);
		five_conn_close(c);
		return five_fail(err, FIVE_ERR_SYSTEM, "cannot make a loopback pair: %s",
		                 strerror(errno));
	}
	memcpy(h->initial, c->in, c->in_len);
	h->seal = c->seal;
	h->ends = (struct relay_ends){
	        .in_fd = pair[1],
	        .out_fd = pair[1],
	        .sock = c->fd,
	        .seal = c->seal,
	        .out_is_socket = true,
	        .timeout_ms = o->timeout_ms,
	        .initial = h->initial,
	        .initial_len = c->in_len,
	        .stop_fd = -1,
	};
	c->fd = -1;
	c->seal = NULL;
	five_conn_close(c);
	live_add(h);
	if (start_thread(h) != 0) {
		live_remove(h);
		handoff_free(h);
		close(pair[0]);
		return five_fail(err, FIVE_ERR_SYSTEM, "cannot start a relay thread");
	}
	return pair[0];
}
