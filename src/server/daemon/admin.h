/*
 * The admin socket, fived's side: fivectl lists and ends sessions, reads
 * the counters, reloads and revokes tokens (src/proto/admin.h has the
 * protocol, docs/fivectl.8 the commands).  Only root and the members of
 * admin_group may use it: the socket's peer credentials say who connects,
 * the monitor says whether that account may, and anyone else is told so
 * and logged.
 */
#ifndef FIVE_SERVER_ADMIN_H
#define FIVE_SERVER_ADMIN_H

struct server;

/* Connections served at once; more are closed at once. */
#define ADMIN_CONNECTIONS_MAX 16

/* How long a connection may take to send its request. */
#define ADMIN_REQUEST_TIMEOUT_MS 5000

/* Sessions listed in one reply (the reply says how many there are). */
#define ADMIN_SESSIONS_MAX 160

/* Streams of one session listed in one reply (the reply says how many there are). */
#define ADMIN_STREAMS_MAX 512

/* The reason in the audit record of a session ended by KILL. */
#define ADMIN_KILL_REASON "killed by fivectl"

/* Opens the configured admin socket, if any.  Returns 0, or -1 after logging why. */
int admin_open(struct server *srv);

/* Closes the admin socket and every connection to it. */
void admin_close(struct server *srv);

#endif
