/*
 * The sealed transport, fived's side: the Noise handshake (IK, or XX for
 * first contact) with the stateless cookie and proof of work under load,
 * 0-RTT for known clients, then secretstream records.  docs/PROTOCOL.md
 * section 6.
 */
#ifndef FIVE_SEAL_H
#define FIVE_SEAL_H

#include <stdbool.h>
#include <stdint.h>

#include "server/session/session.h"

/*
 * The server's static public key and what is derived from it.  The
 * private half stays with the privileged side (privops.h): each
 * Diffie-Hellman with it is asked of priv.
 */
struct seal_keys {
	uint8_t pk[32];
	uint8_t mac1_ik[32];   /* mac1 key for initiations made with our key */
	uint8_t mac1_xx[32];   /* and for first contact (a zero key) */
	uint8_t cookie_ik[32]; /* the keys COOKIE messages are sealed under */
	uint8_t cookie_xx[32];
};

/* Fills k from the public key pk. */
void seal_keys_derive(struct seal_keys *k, const uint8_t pk[32]);

/*
 * Makes the sealed transport the session's: the client's first byte was
 * SEALED_INITIATION, and everything it sends goes through the transport
 * from then on.  Returns 0, or -1 when memory is short.
 */
int seal_attach(struct session *s);

#endif
