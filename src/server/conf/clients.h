/*
 * Clients known by their sealed-handshake static key (authorized_clients):
 * one "BASE64KEY IDENTITY" line each.  A client whose key is listed is
 * authenticated as that identity by the handshake itself (method
 * "external"), and may send its request in the first message (0-RTT).
 */
#ifndef FIVE_CLIENTS_H
#define FIVE_CLIENTS_H

#include <stddef.h>
#include <stdint.h>

#include "proto/auth.h"

#define CLIENTS_MAX      65536
#define CLIENTS_FILE_MAX (4 * 1024 * 1024)

struct client_key {
	uint8_t pk[32];
	char identity[AUTH_IDENTITY_MAX + 1];
};

struct client_keys {
	struct client_key *keys; /* sorted by pk */
	size_t n;
};

/*
 * Parses the file's text (name for messages).  Returns 0, or -1 with err
 * filled ("NAME:LINE: message").  Free with clients_free.
 */
int clients_parse(const char *name, const char *text, size_t len, struct client_keys *out,
                  char *err, size_t err_size);

void clients_free(struct client_keys *c);

/* The identity of the client with key pk, or NULL. */
const char *clients_identity(const struct client_keys *c, const uint8_t pk[32]);

#endif
