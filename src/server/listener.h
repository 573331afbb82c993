/*
 * Listening sockets: TCP (IPv4, IPv6) and Unix.  Each accepted connection
 * becomes a session.
 */
#ifndef FIVE_LISTENER_H
#define FIVE_LISTENER_H

#include <stdbool.h>

#include "common/addr.h"
#include "server/session.h"

struct listener {
	struct listener *next;
	struct server *srv;
	char configured[ADDR_TEXT_MAX]; /* the listen entry it serves, canonical form */
	char bound[ADDR_TEXT_MAX]; /* what it is bound to (differs with a fallback or port 0) */
	union stream_handle h;
	bool is_tcp;
	char unlink_path[ADDR_PATH_MAX + 1]; /* a Unix socket file to remove at close, or "" */
};

/*
 * Binds and listens on a (a TCP address must be numeric); configured names the listen entry it
 * serves. Returns a listener (closed with listener_close), or NULL with *err set to a libuv error
 * code.
 */
struct listener *listener_open(struct server *srv, const struct addr_spec *a,
                               const char *configured, int *err);

/* Stops listening and frees the listener once its handle is closed. */
void listener_close(struct listener *l);

#endif
