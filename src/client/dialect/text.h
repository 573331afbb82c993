/*
 * The text dialect, client side (docs/PROTOCOL.md sections 3 to 5):
 * request lines, reply lines, and a connection opened with the request
 * (and authentication) already sent.
 */
#ifndef FIVE_CLIENT_DIALECT_TEXT_H
#define FIVE_CLIENT_DIALECT_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "five.h"
#include "proto/line.h"

/* Replies longer than a request line are not the protocol. */
#define FIVE_TEXT_REPLY_MAX LINE_MAX_BYTES

struct five_conn;

/*
 * Checks one reply line read from fived.  Returns 0 for '+', or -1 with
 * err filled (FIVE_ERR_REFUSED with the server's reason, FIVE_ERR_PROTOCOL
 * for a line that is not a reply).
 */
int five_text_check_reply(const char *line, struct five_error *err);

/* How many reply lines a request made with these options produces before the grant. */
unsigned five_text_replies(const struct five_options *opts);

/*
 * The request for service (HOST first when opts->vhost; "SERVICE TOKEN"
 * when opts->token), followed by early, in a buffer the caller frees
 * (*out, *out_len bytes).  Returns 0 or -1 (FIVE_ERR_USAGE for an invalid
 * name or token, or a token with opts->auth).
 */
int five_text_request(const char *service, const struct five_options *opts, const void *early,
                      size_t len, uint8_t **out, size_t *out_len, struct five_error *err);

/*
 * Dials host over o->transport, authenticates as o->auth says, and sends
 * request (the request lines and any first bytes of the application, len
 * bytes): in the sealed handshake when nothing comes before it, else
 * right after the last authentication line.  The replies are left to
 * read: c->replies_due for authentication, then the request's own.
 * Returns 0, or -1 with err filled and nothing left open.
 */
int five_text_open(struct five_conn *c, const char *host, const struct five_options *o,
                   const void *request, size_t len, struct five_error *err);

/* Reads replies lines, each of which must be '+'.  Returns 0 or -1. */
int five_text_await(struct five_conn *c, unsigned replies, struct five_error *err);

#endif
