/*
 * Tokens within a session (docs/PROTOCOL.md section 9): issuing one for
 * the session's identity, and taking one as the identity of a caller,
 * for both dialects.
 */
#ifndef FIVE_SESSIONTOKEN_H
#define FIVE_SESSIONTOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "proto/line.h"
#include "proto/token.h"
#include "server/session/internal.h"

/*
 * Issues a token for application (a name as the client asked for it in
 * the session's vhost), for the session's caller, bound to addr ("" for
 * none, else canonical), living ttl seconds (0: token_ttl).  Returns 0 with
 * the token in out[0..PASETO_TOKEN_SIZE), or -1 with *why the reply.
 */
int session_token_issue(struct session *s, const char *application, const char *addr, uint64_t ttl,
                        char *out, const char **why);

/*
 * Takes a token as this session's caller.  application: the stream it must
 * be for, or NULL for any (AUTH token).  Returns a caller the session now
 * owns (s->caller, replacing any), or NULL with *why for the audit log.
 */
struct caller *session_token_take(struct session *s, const char *application, const char *token,
                                  const char **why);

/*
 * The checks of session_token_take without taking: returns a caller the
 * caller owns, with *c the token's claims, or NULL with *why.
 */
struct caller *session_token_check(struct session *s, const char *application, const char *token,
                                   struct token_claims *c, const char **why);

/*
 * session_token_check for a stream in vhost (NULL: the default view) of
 * cfg, not the session's.
 */
struct caller *session_token_in(struct session *s, const struct config *cfg,
                                const struct vhost *vhost, const char *application,
                                const char *token, struct token_claims *c, const char **why);

/* Makes caller (from session_token_check, for claims c) the session's, and audits it. */
void session_take_caller(struct session *s, struct caller *caller, const struct token_claims *c);

/* The text dialect's "TOKEN SERVICE [ADDR|-] [TTL]". */
void session_token_command(struct session *s, const struct cmd *c);

#endif
