/*
 * Client sessions, as the daemon sees them: one per accepted connection,
 * from accept to close.  The session list is the site's (site.h); each
 * session frees itself when it ends.
 */
#ifndef FIVE_SESSION_H
#define FIVE_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "common/addr.h"
#include "proto/auth.h"
#include "proto/line.h"
#include "server/policy/site.h"

struct mux;

/* One live session as an operator sees it (fivectl sessions): a copy, taken now. */
struct session_info {
	char id[SESSION_ID_LEN + 1];
	const char *state;                    /* session_state_name; static */
	char identity[AUTH_IDENTITY_MAX + 1]; /* "" before any authentication */
	const char *method;                   /* auth_method_name, or "none"; static */
	char src[ADDR_IP_MAX];                /* the client's address, "local" on a Unix socket */
	uint16_t src_port;                    /* 0 on a Unix socket */
	char vhost[VHOST_MAX_LEN + 1];        /* "" when none was chosen */
	char service[NAME_MAX_LEN + 1];       /* granted, or asked for; "" before a request */
	const char *transport;                /* "plain", "sealed" or "tls"; static */
	const char *dialect;                  /* "none" (no request yet), "text" or "usp"; static */
	uint64_t bytes_in, bytes_out;         /* relayed to the backend and back */
	uint64_t age_ms;
	unsigned streams; /* open: those of a multiplexed session, 1 while relaying, else 0 */
	/* A multiplexed session's, for mux_each_stream during the call only; else NULL. */
	const struct mux *mux;
};

/* What a connection's socket is, as accepted. */
enum accepted {
	ACCEPTED_UNIX,
	ACCEPTED_TCP,       /* TCP_NODELAY and reset on close are still to be set */
	ACCEPTED_TCP_TUNED, /* it has both from its listener already */
	ACCEPTED_PEER,      /* another worker passing on an ATTACH (a Unix socket) */
};

/* A connection as its listener accepted it. */
struct accepted_conn {
	int fd;
	enum accepted kind;
	const struct sockaddr_storage *peer;  /* accept(2)'s answer, or NULL: asked of the socket */
	const struct sockaddr_storage *local; /* the listener's address, not a wildcard, or NULL */
};

/*
 * Starts a session for the connection c, whose socket the session takes
 * over (it is closed on every failure).  busy, when not NULL, is the
 * reason to refuse the connection at once, before anything is read.
 */
void session_accept(struct site *site, const struct accepted_conn *c, const char *busy);

/*
 * Stopping: sessions that have not been granted a service (authenticating
 * ones too) are refused ("server shutting down"), strangers held by a
 * dark server closed; the others may finish.
 */
void session_drain_all(struct site *site);

/*
 * A relayed client whose backend is behind is not read, so its reset would
 * go unseen until idle_timeout, holding its backend connection, its queued
 * bytes and a place among its source's connections: each such client's
 * socket is asked whether it was reset, and a reset one ends its session
 * (its backend is reset too).  A client that only ended its side (FIN) may
 * still be waiting for the answer: it is left alone.
 */
void session_reap_reset_clients(struct site *site);

/* Ends every session now, with reason (static). */
void session_close_all(struct site *site, const char *reason);

/*
 * Calls each(info, arg) for every live session, newest first, until it
 * returns false.  each must not end sessions: it only reads the copy.
 */
void session_each(struct site *site, bool (*each)(const struct session_info *info, void *arg),
                  void *arg);

/*
 * Ends the session with this id now, with reason (static) in its audit
 * record.  Returns 0, or -1 when no live session has it (one already
 * closing counts as gone).
 */
int session_kill(struct site *site, const char *id, const char *reason);

#endif
