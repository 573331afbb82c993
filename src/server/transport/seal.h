/*
 * The sealed transport, fived's side: the Noise handshake (IK, or XX for
 * first contact) with the stateless cookie and proof of work under load,
 * 0-RTT for known clients, then secretstream records.  docs/PROTOCOL.md
 * section 6.  The static key's private half stays with the privileged
 * side (privops.h): each Diffie-Hellman with it is asked of the monitor.
 */
#ifndef FIVE_SEAL_H
#define FIVE_SEAL_H

#include "server/transport/transport.h"

/*
 * A sealed transport for a connection whose first byte was
 * SEALED_INITIATION: everything the client sends goes through it from
 * then on.  The session owns it (ops->free); NULL when memory is short.
 */
struct transport *seal_new(const struct transport_link *link);

#endif
