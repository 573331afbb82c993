/*
 * five_connect promises a descriptor that reads and writes the service's
 * bytes.  A sealed session's are sealed and opened on the way, so the
 * caller gets one end of a socketpair, and a thread of libfive relays
 * between the other end and the session until both directions have ended
 * (five.h tells callers what that means for them).
 */
#include "client/relay/handoff.h"
#include "client/base/thread.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/relay/relay.h"
#include "client/transport/conn.h"
#include "client/transport/seal.h"

/* Owned by the relay thread once it runs; freed by it. */
struct handoff {
	struct relay_ends ends;
	struct five_seal *seal;
	uint8_t initial[FIVE_LINE_MAX * 4];
};

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

	/* A failure here shows to the caller as its socket ending early, or reset. */
	if (five_relay(&h->ends, &err) != 0) {
		struct linger reset = {.l_onoff = 1, .l_linger = 0};

		setsockopt(h->ends.in_fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
	}
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

	if (h == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
		free(h);
		five_conn_close(c);
		return five_fail(err, FIVE_ERR_SYSTEM, "cannot make a socketpair");
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
	if (start_thread(h) != 0) {
		handoff_free(h);
		close(pair[0]);
		return five_fail(err, FIVE_ERR_SYSTEM, "cannot start a relay thread");
	}
	return pair[0];
}
