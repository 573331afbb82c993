/*
 * Moving bytes between an application's stream (standard input and
 * output, a forwarded connection, or one end of a socketpair handed to a
 * libfive caller) and a session with fived, plain or sealed.
 */
#ifndef FIVE_CLIENT_RELAY_H
#define FIVE_CLIENT_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "five.h"

struct five_seal;

struct relay_ends {
	int in_fd;              /* what the application sends */
	int out_fd;             /* where what the service sends goes */
	int sock;               /* the session with fived, request already sent */
	struct five_seal *seal; /* the sealed session's records, or NULL for plain */
	bool out_is_socket;     /* end out_fd with shutdown(), and wait for in_fd to end too */
	unsigned replies;       /* reply lines still due before the service is granted */
	bool hold_input; /* send nothing until the grant (servers that drop pipelined bytes) */
	int timeout_ms;  /* for those replies */
	const uint8_t *initial; /* bytes from fived already decrypted, to take first */
	size_t initial_len;
};

/*
 * Moves bytes both ways until the session ends.  The application's bytes
 * flow at once, before the grant arrives (they were pipelined with the
 * request).  A sealed session ends its direction with a FINAL record, and
 * a stream from fived that ends without one is reported as truncated.
 * Returns 0, or -1 with err filled when the request is refused or the
 * session fails.
 */
int five_relay(const struct relay_ends *e, struct five_error *err);

#endif
