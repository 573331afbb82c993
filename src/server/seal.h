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

#include "server/config.h"
#include "server/session.h"

/* The server's static key and what is derived from it, kept in locked memory. */
struct server_key {
	uint8_t sk[32];
	uint8_t pk[32];
	uint8_t mac1_ik[32];   /* mac1 key for initiations made with our key */
	uint8_t mac1_xx[32];   /* and for first contact (a zero key) */
	uint8_t cookie_ik[32]; /* the keys COOKIE messages are sealed under */
	uint8_t cookie_xx[32];
};

/* Derives the rest of k from k->sk. */
void seal_key_derive(struct server_key *k);

/* The label of the key's file (keyfile_load). */
#define SEAL_KEY_LABEL "fived-server-key-v1"

/*
 * How the key's file, and the files fived makes beside it (token key,
 * self-signed TLS pair), are made when missing (keyfile_load's flags):
 * KEYFILE_CREATE, and KEYFILE_MKDIR when cfg sets no key_file, since the
 * default state directory is fived's own; a configured directory must exist.
 */
int seal_key_flags(const struct config *cfg);

/*
 * Makes the sealed transport the session's: the client's first byte was
 * SEALED_INITIATION, and everything it sends goes through the transport
 * from then on.  Returns 0, or -1 when memory is short.
 */
int seal_attach(struct session *s);

#endif
