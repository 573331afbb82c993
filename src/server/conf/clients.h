/*
 * Clients known by their sealed-handshake static key (authorized_clients):
 * one "BASE64KEY IDENTITY" line each.  A client whose key is listed is
 * authenticated as that identity by the handshake itself (method
 * "external"), and may send its request in the first message (0-RTT).
 */
#ifndef FIVE_CLIENTS_H
#define FIVE_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/auth.h"

#define CLIENTS_MAX      65536
#define CLIENTS_FILE_MAX (4 * 1024 * 1024)

/*
 * ss is the X25519 of the server's static key with pk, the same in every
 * sealed IK handshake with that client (WireGuard keeps it per peer too):
 * kept once the monitor has given it, so that a known client's handshake
 * asks the monitor once, not twice.  A secret: wiped with the table.
 */
struct client_key {
	uint8_t pk[32];
	char identity[AUTH_IDENTITY_MAX + 1];
	uint8_t ss[32];
	bool ss_known;
};

struct client_keys {
	struct client_key *keys; /* sorted by pk */
	size_t n;
	size_t filled; /* keys before this one have had their ss asked for */
};

/* How clients_fill has a key's ss computed (by the monitor): 0, or -1. */
typedef int (*clients_dh_fn)(void *ctx, const uint8_t pk[32], uint8_t ss[32]);

/*
 * Parses the file's text (name for messages).  Returns 0, or -1 with err
 * filled ("NAME:LINE: message").  Free with clients_free.
 */
int clients_parse(const char *name, const char *text, size_t len, struct client_keys *out,
                  char *err, size_t err_size);

void clients_free(struct client_keys *c);

/* The identity of the client with key pk, or NULL. */
const char *clients_identity(const struct client_keys *c, const uint8_t pk[32]);

/* The entry of the client with key pk, or NULL. */
struct client_key *clients_find(const struct client_keys *c, const uint8_t pk[32]);

/* Each ss known in from, into the same key's entry in to (a reload keeps what it can). */
void clients_carry(struct client_keys *to, const struct client_keys *from);

/* k's ss, asked of dh unless known: 0 with k->ss set, or -1. */
int clients_learn(struct client_key *k, clients_dh_fn dh, void *ctx);

/*
 * Asks dh for the ss of up to batch keys not known yet.  Returns whether
 * keys are left to ask for (a key dh fails for is not asked again).
 */
bool clients_fill(struct client_keys *c, size_t batch, clients_dh_fn dh, void *ctx);

#endif
