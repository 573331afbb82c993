/*
 * The daemon as a whole: the event loop, the configuration in force, the
 * listeners, the live sessions, signals, reload and drain.
 */
#ifndef FIVE_SERVER_H
#define FIVE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "common/log.h"
#include "server/conf/config.h"
#include "server/policy/site.h"

struct acceptor;
struct admin;
struct metrics_server;
struct listener;

struct server {
	struct site site; /* what the sessions share; the daemon fills it */
	struct listener *listeners;
	struct admin *admin;            /* the admin socket, when configured */
	struct metrics_server *metrics; /* the metrics endpoint, when configured */
	struct acceptor *peers;         /* with several workers: ATTACHes the others pass on */
	uv_timer_t gov_timer;
	uint64_t ticks; /* of gov_timer */
	int exit_status;
	uv_signal_t sig_hup, sig_term, sig_int;
	uv_timer_t drain_timer;
	struct log_ratelimit fd_shortage; /* log lines of connections refused for descriptors */
	uint64_t fd_limit;                /* RLIMIT_NOFILE, read at start */
	unsigned fd_reserve; /* a connection accepted this close to the limit is refused */
	int spare_fd;        /* closed to answer a connection when accept runs out */
};

/*
 * Builds a server on loop with cfg (the server takes the reference),
 * getting its keys, files and sockets through priv, and opens its
 * listeners.  Returns 0, or -1 after logging why.
 */
int server_start(struct server *srv, uv_loop_t *loop, struct config *cfg, struct priv *priv);

/*
 * Re-reads the configuration file; on any error keeps the one in force.
 * Returns 0, or -1 when the new one was rejected (logged) or a drain is on.
 */
int server_reload(struct server *srv);

/* Stops accepting, lets established streams finish for drain_timeout, then stops. */
void server_drain(struct server *srv);

#endif
