/*
 * A connection to fived as libfive talks on it before the relay starts,
 * whatever carries it: plain TCP, the sealed session, or TLS.
 */
#ifndef FIVE_CLIENT_TRANSPORT_CONN_H
#define FIVE_CLIENT_TRANSPORT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "five.h"

struct five_seal;

/* A connection to fived before the relay: plain, or through a sealed session. */
struct five_conn {
	int fd;
	struct five_seal *seal; /* NULL: plain */
	int timeout_ms;
	unsigned replies_due;     /* the dialect's: authentication replies still to come */
	char note[FIVE_LINE_MAX]; /* for the user: a server key pinned on first contact */
	uint8_t server_pk[32];    /* the server's static key, when known: signatures name it */
	bool has_server_pk;
	uint8_t in[FIVE_LINE_MAX * 4]; /* sealed: plaintext read ahead */
	size_t in_len;
};

/*
 * Dials host over o->transport and sends early (len bytes, may be 0): in
 * the sealed handshake's first message as far as it fits, the rest in
 * records right behind it.  Returns 0, or -1 with err filled and nothing
 * left open.
 */
int five_conn_open(struct five_conn *c, const char *host, const struct five_options *o,
                   const void *early, size_t len, struct five_error *err);

/* Sends data (sealed into records when the session is).  Returns 0 or -1. */
int five_conn_send(struct five_conn *c, const void *data, size_t len, struct five_error *err);

/* Reads one line (without its CRLF).  Returns 0 or -1. */
int five_conn_read_line(struct five_conn *c, char *line, size_t size, struct five_error *err);

/*
 * Ends a sealed or TLS session cleanly (five_seal_end) unless it has
 * ended already, then closes the connection.  What was sent before the
 * relay (the request, early bytes) was sent whole, so a connection given
 * up on a refusal or an error also ends cleanly: its stream is complete.
 */
void five_conn_close(struct five_conn *c);

#endif
