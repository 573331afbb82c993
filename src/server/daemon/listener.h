/*
 * Listening sockets: TCP (IPv4, IPv6) and Unix.  Each accepted connection
 * becomes a session.
 *
 * fived accepts connections itself rather than through uv_listen: libuv,
 * out of descriptors, accepts and closes pending connections without a
 * word to them or to its caller.  Here a connection that arrives when
 * descriptors run short is answered "- server busy": one accepted onto a
 * descriptor within the reserve (listener_limits) is refused at once, and
 * when accept itself fails for lack of descriptors a spare one is freed to
 * take the connection and answer it.
 */
#ifndef FIVE_LISTENER_H
#define FIVE_LISTENER_H

#include <stdbool.h>
#include <uv.h>

#include "common/addr.h"

#define LISTENER_ACCEPT_BATCH 64  /* connections taken per wakeup: the loop serves the rest too */
#define LISTENER_PAUSE_MS     100 /* accepting stops this long when no connection can be answered */
#define LISTENER_RESERVE_MIN  16  /* descriptors kept free for sessions under way, at least */
#define LISTENER_RESERVE_MAX  1024

struct config;
struct server;

struct listener {
	struct listener *next;
	struct server *srv;
	char configured[ADDR_TEXT_MAX]; /* the listen entry it serves, canonical form */
	char bound[ADDR_TEXT_MAX]; /* what it is bound to (differs with a fallback or port 0) */
	int fd;                    /* the listening socket; owned */
	uv_poll_t poll;            /* readable: connections wait */
	uv_timer_t pause;          /* accepting resumes when it fires */
	unsigned handles;          /* handles not yet closed: freed at 0 */
	bool is_tcp;
	bool tuned; /* TCP: its connections inherit TCP_NODELAY and the reset on close */
	struct sockaddr_storage local;       /* TCP: what it is bound to */
	bool local_fixed;                    /* local is one address, not a wildcard */
	char unlink_path[ADDR_PATH_MAX + 1]; /* a Unix socket file to remove at close, or "" */
};

/*
 * Binds and listens on a (a TCP address must be numeric); configured names the listen entry it
 * serves. Returns a listener (closed with listener_close), or NULL with *err set to a libuv error
 * code.
 */
struct listener *listener_open(struct server *srv, const struct addr_spec *a,
                               const char *configured, int *err);

/*
 * Sets what cfg asks of a TCP listener's socket (defer_accept, tcp_fastopen), at open and
 * after a reload; nothing for a Unix socket.  A kernel that refuses an option is logged,
 * and the listener serves without it.
 */
void listener_tune(struct listener *l, const struct config *cfg);

/* Stops listening and frees the listener once its handles are closed. */
void listener_close(struct listener *l);

/*
 * Reads the descriptor limit, sets the reserve (an eighth of the limit,
 * LISTENER_RESERVE_MIN to LISTENER_RESERVE_MAX) and makes the spare
 * descriptor.  Called once, before the listeners open; returns 0 or -1
 * after logging why.  listener_limits_free closes the spare.
 */
int listener_limits(struct server *srv);
void listener_limits_free(struct server *srv);

#endif
