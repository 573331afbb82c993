/*
 * The USP dialect within a session (docs/PROTOCOL.md section 8): a client
 * whose first byte is '{' sends JSON messages; each initialize is decided
 * stream by stream, an authentication is carried in messages, and tokens
 * come back for the streams.  The codec is proto/usp.c; this is the state.
 */
#ifndef FIVE_USPSESSION_H
#define FIVE_USPSESSION_H

#include <stdint.h>

#include "proto/auth.h"
#include "proto/line.h"
#include "server/session/internal.h"

/* Makes s speak USP.  Returns 0 or -1 (out of memory). */
int usp_session_start(struct session *s);

/* Frees the USP state of s, if any. */
void usp_session_free(struct session *s);

/* Handles the complete messages held in s->in while the session reads them. */
void usp_session_take(struct session *s);

/* "error" with text, then the session ends; reason (static) is for the audit log. */
void usp_refuse(struct session *s, const char *reason, const char *text);

/* The replies the rest of the session code sends in USP's words.  Return 0 or -1. */
int usp_send_connect(struct session *s);
/* "redirect" to r for the application asked for, then the session ends (a refusal). */
void usp_send_redirect(struct session *s, const struct redirect *r);
void usp_send_authenticate(struct session *s, enum auth_method method);
void usp_send_challenge(struct session *s, const uint8_t nonce[AUTH_NONCE_LEN]);
void usp_send_prompt(struct session *s, enum pamconv_kind kind, const char *text);

/* After a successful exchange: a token (or an error) for each stream that asked. */
void usp_authenticated(struct session *s);

#endif
