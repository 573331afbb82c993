/*
 * The control socket, fived's side: local applications register service
 * names (backend = register) and receive each granted stream as a
 * descriptor, with the caller's identity (the protocol is in
 * src/proto/control.h).  Only the Unix users a service lists in
 * register_users may register it; the socket's peer credentials say who
 * is connecting.
 */
#ifndef FIVE_SERVER_CONTROL_H
#define FIVE_SERVER_CONTROL_H

#include "server/backend/backend.h"

/* Registrations held from one application connection. */
#define CONTROL_CONNECTIONS_MAX 256

struct site;

/* Opens the configured control socket, if any.  Returns 0, or -1 after logging why. */
int control_open(struct site *site);

/* Closes the control socket and every application connection. */
void control_close(struct site *site);

/*
 * The backend of a registered service: hands one end of a new socketpair
 * to an application registered for b's service (in turn, when several
 * are), telling it who (the STREAM message), and keeps the other as the
 * backend.  Ends in backend_ready.
 */
void control_deliver(struct backend *b, const struct backend_who *who);

#endif
