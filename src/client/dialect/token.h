/*
 * Tokens, client side (docs/PROTOCOL.md section 9).
 */
#ifndef FIVE_CLIENT_DIALECT_TOKEN_H
#define FIVE_CLIENT_DIALECT_TOKEN_H

#include <stddef.h>

#include "five.h"

struct five_conn;

/*
 * Checks a token before it goes on the wire: 1 to max characters, each one
 * a token may hold ([A-Za-z0-9_.-]), so that it can neither end nor split
 * a line or a JSON string.  Returns 0, or -1 with err filled
 * (FIVE_ERR_USAGE).
 */
int five_token_check(const char *token, size_t max, struct five_error *err);

/*
 * Reads fived's answers to TOKEN on c, a connection the request went out
 * on: replies lines of '+' (authentication's, HOST's), then "+ TOKEN T",
 * T checked and copied into token[0..size).  Returns 0, or -1 with err
 * filled (FIVE_ERR_REFUSED with fived's reason, FIVE_ERR_PROTOCOL for an
 * answer that is not one).
 */
int five_token_read(struct five_conn *c, unsigned replies, char *token, size_t size,
                    struct five_error *err);

/*
 * five_issue_token, also telling the user's note of five_conn_open (a
 * server key pinned on first contact) in note[0..note_size) when note is
 * not NULL.
 */
int five_token_fetch(const char *host, const char *service, const char *bind, unsigned long ttl_s,
                     const struct five_options *opts, char *token, size_t size, char *note,
                     size_t note_size, struct five_error *err);

#endif
