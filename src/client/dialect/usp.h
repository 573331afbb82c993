/*
 * The USP dialect, client side (docs/PROTOCOL.md section 8).
 */
#ifndef FIVE_CLIENT_DIALECT_USP_H
#define FIVE_CLIENT_DIALECT_USP_H

#include <stddef.h>

#include "five.h"

struct five_conn;

/*
 * Dials host over o->transport and asks for service in the USP dialect
 * (docs/PROTOCOL.md section 8): initialize with o->token when set, offering
 * the protocols of o->auth that five can carry out (pubkey when a key is at
 * hand, password); when fived asks, the exchange, the stream's token and
 * initialize again, up to fived's connect.  early (only without o->auth:
 * an exchange reads messages) goes right after the first initialize.
 * Returns 0 with c ready for the relay (c->in holding what followed
 * connect), or -1 with err filled (FIVE_ERR_REFUSED: fived's error) and
 * nothing left open.
 */
int five_usp_open(struct five_conn *c, const char *host, const char *service,
                  const struct five_options *o, const void *early, size_t early_len,
                  struct five_error *err);

/*
 * five_usp_open's part after dialing, on c (connected, the first
 * initialize sent): fived's answers read up to its connect, the exchange
 * and the second initialize answered on the way.  For tests, which feed c
 * a server's messages without dialing.  Returns 0, or -1 with err filled;
 * c is left open either way.
 */
int five_usp_negotiate(struct five_conn *c, const char *service, const struct five_options *o,
                       struct five_error *err);

#endif
