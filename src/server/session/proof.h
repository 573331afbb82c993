/*
 * Proofs of identity within a session (docs/PROTOCOL.md section 13):
 * PROVEAUTH signs, through the monitor, the session's identity with a
 * consumer's challenge; GETSIGNKEY tells the key that signs.  For both
 * dialects.
 */
#ifndef FIVE_SESSION_PROOF_H
#define FIVE_SESSION_PROOF_H

#include "proto/line.h"
#include "proto/proof.h"
#include "server/session/internal.h"

/*
 * A proof of the session's identity for the challenge hex (PROOF_HASH_HEX
 * lowercase hex digits), written into out[0..PROOF_SIZE), and its audit
 * record (proof_issued, with the challenge: the consumer is never known
 * here; and the multiplexed session's stream that asked, unless stream is
 * 0).  Returns 0, or -1 with *why the reply: "authentication required",
 * "not permitted: a token does not prove an identity", "invalid hash",
 * "cannot sign a proof".
 */
int session_prove(struct session *s, const char *hex, uint32_t stream, char out[PROOF_SIZE],
                  const char **why);

/* The signing key's public half as GETSIGNKEY sends it, and the provider's name ("" none). */
void session_signkey(const struct session *s, char key[PROOF_KEY_B64_SIZE], const char **provider);

/* A reply line of PROVEAUTH or GETSIGNKEY, with its CRLF, is shorter than this. */
#define PROOF_REPLY_MAX (PROOF_SIZE + 16)

/*
 * The text dialect's reply to "PROVEAUTH hex", "+ PROOF P" or "- REASON"
 * with its CRLF, into reply[0..PROOF_REPLY_MAX): its length.  As
 * session_prove, it audits.
 */
size_t session_prove_reply(struct session *s, const char *hex, uint32_t stream,
                           char reply[PROOF_REPLY_MAX]);

/* The text dialect's reply to GETSIGNKEY, with its CRLF, into reply[0..PROOF_REPLY_MAX). */
size_t session_signkey_reply(const struct session *s, char reply[PROOF_REPLY_MAX]);

/* The text dialect's "PROVEAUTH HASH": "+ PROOF P" or "- REASON"; the connection stays open. */
void session_prove_command(struct session *s, const struct cmd *c);

/* The text dialect's "GETSIGNKEY": "+ SIGNKEY KEY PROVIDER". */
void session_signkey_command(struct session *s);

#endif
