/*
 * The AUTH command: a session's authentication exchange, pubkey (Ed25519
 * challenge-response against authorized_keys) or password (a PAM
 * conversation carried over the session).  docs/PROTOCOL.md section 4.
 */
#ifndef FIVE_SERVER_AUTH_H
#define FIVE_SERVER_AUTH_H

#include <stdbool.h>

#include "proto/auth.h"
#include "proto/line.h"
#include "server/session/internal.h"

/* Handles "AUTH m1,m2,...": picks a method and starts its exchange, or refuses. */
void auth_begin(struct session *s, const struct cmd *c);

/* Handles one client line while the session is in S_AUTH. */
void auth_line(struct session *s, const char *line);

/* Starts the exchange of a method the session may use (auth_method_usable). */
void auth_start(struct session *s, enum auth_method method);

/* One message of the exchange, however it came; NULL for one out of turn. */
void auth_input(struct session *s, const struct auth_line *l);

/* The token method's one message: the token. */
void auth_token(struct session *s, const char *token);

/* Whether method m can be used on this session now (enabled, and allowed unencrypted). */
bool auth_method_usable(const struct session *s, enum auth_method m);

/* Ends an exchange in progress, if any (the session is closing). */
void auth_abort(struct session *s);

#endif
