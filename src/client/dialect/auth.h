/*
 * The client side of AUTH (docs/PROTOCOL.md section 4), and its pieces
 * for the USP dialect's exchange.
 */
#ifndef FIVE_CLIENT_DIALECT_AUTH_H
#define FIVE_CLIENT_DIALECT_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "five.h"
#include "proto/auth.h"

struct five_conn;

/* Room for a login name, with its NUL. */
#define FIVE_AUTH_USER_MAX 256

/*
 * For a dialect that allows one authentication attempt per connection (USP),
 * the pieces of auth.c one at a time.  five_auth_user: a->user, or the
 * login name copied into buf[0..size) (FIVE_AUTH_USER_MAX is enough; NULL
 * when there is none).  five_auth_ask: the five_auth
 * ask contract, through a->ask, $FIVE_ASKPASS or /dev/tty.
 * five_auth_first_key: the key pubkey would offer first (the key file,
 * else ssh-agent's first key, else ~/.ssh/id_ed25519), FIVE_ERR_REFUSED
 * when there is none.  five_auth_sign: signs data with that key, found
 * again.  Each returns 0 or -1 with err filled.
 */
const char *five_auth_user(const struct five_auth *a, char *buf, size_t size);
int five_auth_ask(const struct five_auth *a, const char *prompt, int echo, char *answer,
                  size_t size);
int five_auth_first_key(const struct five_auth *a, uint8_t pk[AUTH_PK_LEN], struct five_error *err);

/*
 * Whether a pubkey signature on c can name the server: c is encrypted, or
 * the server's key is known.  Returns 0, or -1 with err filled.
 */
int five_auth_can_sign(const struct five_conn *c, struct five_error *err);

/*
 * Whether a password may go over o's transport (asked before the
 * connection is made, as USP's offer is): it is encrypted, or the caller
 * allowed it in the clear (o->password_in_clear).  Returns 0, or -1 with
 * err filled (FIVE_ERR_REFUSED, so that the next method may be tried).
 */
int five_auth_can_send_password(const struct five_options *o, struct five_error *err);

/*
 * The bytes a pubkey signature on c covers (PROTOCOL.md 4.2): the
 * challenge, the user and key, the server's key when c knows it, c's
 * channel binding.  Returns 0 with *len, or -1 with err filled
 * (FIVE_ERR_PROTOCOL: a challenge that does not fit).
 */
int five_auth_signed_data(const struct five_conn *c, const char *sid,
                          const uint8_t nonce[AUTH_NONCE_LEN], const char *user,
                          const uint8_t pk[AUTH_PK_LEN], uint8_t *out, size_t size, size_t *len,
                          struct five_error *err);
int five_auth_sign(const struct five_auth *a, const uint8_t pk[AUTH_PK_LEN], const uint8_t *data,
                   size_t len, uint8_t sig[AUTH_SIG_LEN], struct five_error *err);

/*
 * Authentication whose last step travels with the request: for pubkey,
 * the signature line is left in tail (to be sent before the request) and
 * *pending counts the reply to it still due; a password exchange is
 * finished here.  Returns 0 or -1 with err filled.
 */
int five_auth_pipelined(struct five_conn *c, const struct five_options *o, char *tail, size_t size,
                        size_t *tail_len, unsigned *pending, struct five_error *err);

#endif
