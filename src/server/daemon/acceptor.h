/*
 * A listening socket the monitor made for one of the daemon's own
 * endpoints (the admin socket, the metrics endpoint, the peer socket), polled: each
 * connection accepted on it is handed over as a descriptor.
 */
#ifndef FIVE_SERVER_ACCEPTOR_H
#define FIVE_SERVER_ACCEPTOR_H

#include <uv.h>

#include "common/addr.h"
#include "server/privsep/priv.h"

struct acceptor;

/*
 * Each accepted connection: a non-blocking, close-on-exec descriptor that
 * the callee owns from then on (and closes when it does not want it).
 */
typedef void (*acceptor_fn)(void *arg, int fd);

/*
 * Has priv listen on a (kind) and accepts on loop, handing each connection
 * to take(arg, fd); what names the endpoint in log lines.  Returns the
 * acceptor (acceptor_close ends it), or NULL after logging why.
 */
struct acceptor *acceptor_open(uv_loop_t *loop, struct priv *priv, const struct addr_spec *a,
                               enum priv_socket kind, const char *what, acceptor_fn take,
                               void *arg);

/* Stops accepting and closes the socket; frees the acceptor once closed.  NULL is a no-op. */
void acceptor_close(struct acceptor *acc);

#endif
