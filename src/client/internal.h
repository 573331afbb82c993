/*
 * libfive's internal helpers, shared by its files and by the five command.
 */
#ifndef FIVE_CLIENT_INTERNAL_H
#define FIVE_CLIENT_INTERNAL_H

#include <stdbool.h>

#include "crypto/noise.h"
#include "crypto/record.h"
#include "five.h"

/* What a sealed session may have read past its handshake: a buffer of it. */
#define SEALED_PENDING_MAX (RECORD_HEADER_LEN + 2 * RECORD_WIRE_MAX)

/* Fills err and returns -1, so that callers can write "return five_fail(...)". */
int five_fail(struct five_error *err, enum five_step step, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Copies opts (or the defaults when NULL) into out, with defaults filled in. */
void five_options_resolve(const struct five_options *opts, struct five_options *out);

/*
 * Checks one reply line read from fived.  Returns 0 for '+', or -1 with
 * err filled (FIVE_ERR_REFUSED with the server's reason, FIVE_ERR_PROTOCOL
 * for a line that is not a reply).
 */
int five_check_reply(const char *line, struct five_error *err);

/* How many reply lines a request made with these options produces before the grant. */
unsigned five_replies_expected(const struct five_options *opts);

/* five_dial, also telling which port answered (port_out, size bytes). */
int five_dial_port(const char *host, const struct five_options *opts, char *port_out, size_t size,
                   struct five_error *err);

/* An established sealed session, client side. */
struct five_seal {
	struct record_sender tx;
	struct record_receiver rx;
	uint8_t hash[NOISE_HASHLEN]; /* the handshake hash: binds signatures to this session */
	bool early_taken;            /* the server acted on the early data in the handshake */
	int fd;
	uint8_t pending[SEALED_PENDING_MAX]; /* server bytes read after the handshake */
	size_t pending_len;
};

/*
 * Dials host and makes the sealed handshake; early (at most 16 KiB) goes
 * with it and reaches the service either way.  tofu: pin a first-contact
 * server's key (note then says so, for the user).  Returns the connected
 * descriptor with *seal, or -1 with err filled.
 */
int five_seal_open(const char *host, const struct five_options *o, const void *early,
                   size_t early_len, bool tofu, struct five_seal **seal, char *note,
                   size_t note_size, struct five_error *err);

void five_seal_free(struct five_seal *z);

/* Reads one line without reading past it.  Returns 0, or -1 with err filled. */
int five_read_line(int fd, int timeout_ms, char *line, size_t size, struct five_error *err);

/* Writes all of data.  Returns 0, or -1 with err filled. */
int five_send_all(int fd, const void *data, size_t len, struct five_error *err);

/*
 * Writes prefix (len bytes, may be 0), then the request for service, then
 * early, in one write.  Returns 0 or -1.
 */
int five_request_after(int fd, const void *prefix, size_t prefix_len, const char *service,
                       const struct five_options *opts, const void *early, size_t len,
                       struct five_error *err);

/*
 * Authentication whose last step travels with the request: for pubkey,
 * the signature line is left in tail (to be sent before the request) and
 * *pending counts the reply to it still due; a password exchange is
 * finished here.  Returns 0 or -1 with err filled.
 */
int five_auth_pipelined(int fd, const struct five_options *o, char *tail, size_t size,
                        size_t *tail_len, unsigned *pending, struct five_error *err);

#endif
