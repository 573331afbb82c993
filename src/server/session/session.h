/*
 * Client sessions, as the daemon sees them: one per accepted connection,
 * from accept to close.  The session list is the site's (site.h); each
 * session frees itself when it ends.
 */
#ifndef FIVE_SESSION_H
#define FIVE_SESSION_H

#include <stdbool.h>

struct site;

/*
 * Starts a session for a connection accepted onto fd, a TCP or Unix stream
 * socket, which the session takes over (it is closed on every failure).
 * busy, when not NULL, is the reason to refuse the connection at once,
 * before anything is read.
 */
void session_accept(struct site *site, int fd, bool is_tcp, const char *busy);

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

#endif
