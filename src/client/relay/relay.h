/*
 * Moving bytes between an application's stream (standard input and
 * output, a forwarded connection, or one end of a socketpair handed to a
 * libfive caller) and a session with fived, plain or sealed.
 */
#ifndef FIVE_CLIENT_RELAY_RELAY_H
#define FIVE_CLIENT_RELAY_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "five.h"

struct five_seal;

/* What relay_ends.stop_fd carries: how to stop. */
#define RELAY_STOP_AT_END 'e'
#define RELAY_STOP_NOW    'n'

struct relay_ends {
	int in_fd;              /* what the application sends */
	int out_fd;             /* where what the service sends goes */
	int sock;               /* the session with fived, request already sent */
	struct five_seal *seal; /* the sealed session's records, or NULL for plain */
	bool out_is_socket;     /* end out_fd with shutdown(), and wait for in_fd to end too */
	/*
	 * Not out_is_socket: once fived's side has ended, in_fd is still
	 * relayed while it keeps coming (a service that ended its side may
	 * still read), and the application's side ends when in_fd ends or has
	 * been quiet this long.  0: with fived's side.
	 */
	int quiet_ms;
	bool marked_ends;         /* plain: ends are marked both ways (base/sock.h; five agent) */
	unsigned replies;         /* reply lines still due before the service is granted */
	const char *granted_note; /* said on standard error once they are in; NULL: nothing */
	bool hold_input; /* send nothing until the grant (servers that drop pipelined bytes) */
	int timeout_ms;  /* for those replies */
	const uint8_t *initial; /* bytes from fived already decrypted, to take first */
	size_t initial_len;
	/*
	 * Readable: stop, as the byte read says.  RELAY_STOP_AT_END: what
	 * in_fd holds is taken without waiting; the session then ends cleanly
	 * if in_fd has ended, and is cut short (FIVE_ERR_SYSTEM) if not.
	 * RELAY_STOP_NOW: cut short, sock reset whatever ended before (a
	 * sealed session's FINAL gone out, say).  -1: none.
	 */
	int stop_fd;
	/*
	 * Where the bytes of in_fd read before the grant are kept, after the
	 * resend_len already there: a request refused with a redirect has
	 * forwarded none of them, so they can go to the next server.  NULL:
	 * not kept.
	 */
	char *resend;
	size_t resend_size, *resend_len;
	/* Set once a byte of in_fd has been read that resend could not keep; NULL: nobody asks. */
	bool *input_read;
};

/*
 * Moves bytes both ways until the session ends.  The application's bytes
 * flow at once, before the grant arrives (they were pipelined with the
 * request).  A sealed session ends its direction with a FINAL record
 * (TLS: close_notify) whenever the relay stops without failing: at the
 * application's end of stream, when fived's side ended first (and in_fd
 * went quiet: quiet_ms), when the request is refused; a session that fails while the application's
 * stream is on its way ends without, as a truncation.  A stream from
 * fived that ends without FINAL is reported as truncated.  Returns 0, or
 * -1 with err filled when the request is refused or the session fails.
 */
int five_relay(const struct relay_ends *e, struct five_error *err);

#endif
