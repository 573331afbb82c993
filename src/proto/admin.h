/*
 * The admin socket: how fivectl asks a running fived about its sessions
 * and tells it what to do (docs/fivectl.8, docs/PROTOCOL.md section 10).
 *
 * Transport.  A Unix socket of type SOCK_SEQPACKET at the path fived's
 * admin_socket names: one message is one sendmsg() and one recvmsg().
 * One request and one reply a connection; fived closes after the reply.
 * A peer that may not use the socket is sent a refusal as it connects,
 * and closed: when its request was still unread, its next recv() reports
 * ECONNRESET, and the one after it the refusal.
 *
 * A request is one line of at most ADMIN_REQUEST_MAX bytes, its "\n" at
 * the very end, printable ASCII otherwise:
 *
 *	SESSIONS | STATS | GOVERNOR | RELOAD	no argument
 *	KILL <id> | STREAMS <id>		a session id: ADMIN_SESSION_HEX
 *						lowercase hex digits
 *	REVOKE <token-or-jti>			1 to ADMIN_ARG_MAX characters,
 *						no space
 *
 * The reply is "+ <json>\n", one JSON object in compact form (no "\n"
 * inside), or "- <reason>\n", reason printable ASCII; at most
 * ADMIN_REPLY_MAX bytes either way.  What each object holds is fived's
 * business (fivectl.8); this module checks the framing and that the
 * object is one.
 *
 * Pure code: bytes in, results out; no I/O, no globals.  Every decoder
 * checks all of the above and returns -1 on any deviation.
 */
#ifndef FIVE_ADMIN_H
#define FIVE_ADMIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "crypto/paseto.h"

/* Where fivectl looks without -s, and the variable it reads first. */
#define ADMIN_SOCKET_DEFAULT "/run/fived/admin.sock"
#define ADMIN_SOCKET_ENV     "FIVECTL_SOCKET"

/* A session id as fived writes it (SESSION_ID_LEN). */
#define ADMIN_SESSION_HEX 32

/* REVOKE's argument: a whole token, or a token id. */
#define ADMIN_ARG_MAX PASETO_TOKEN_MAX

/* The longest verb and its space, the argument, the "\n". */
#define ADMIN_REQUEST_MAX (16 + ADMIN_ARG_MAX)

/* A reply, its "\n" included: room for the longest session list fived sends. */
#define ADMIN_REPLY_MAX (128 * 1024)

/* A refusal's reason. */
#define ADMIN_REASON_MAX 256

enum admin_command {
	ADMIN_SESSIONS = 1,
	ADMIN_KILL,
	ADMIN_STATS,
	ADMIN_GOVERNOR,
	ADMIN_RELOAD,
	ADMIN_REVOKE,
	ADMIN_STREAMS,
};

struct admin_request {
	enum admin_command command;
	char arg[ADMIN_ARG_MAX + 1]; /* "" for the commands without one */
};

/*
 * Writes r as a request into out (size bytes; NUL-terminated too).
 * Returns 0 with *len, or -1 when r breaks the rules above or out is too
 * small.
 */
int admin_request_encode(const struct admin_request *r, char *out, size_t size, size_t *len);

/* Parses a request of len bytes into *r.  Returns 0, or -1 with *r zeroed. */
int admin_request_decode(const char *msg, size_t len, struct admin_request *r);

/* The command named word ("sessions", "kill": fivectl's words), or 0. */
enum admin_command admin_command_named(const char *word);

/* Whether command takes an argument (KILL, REVOKE, STREAMS). */
bool admin_command_has_arg(enum admin_command command);

/*
 * Writes "+ <body>\n" (body: an object, dumped compact) into out (size
 * bytes, NUL-terminated too).  Returns 0 with *len, or -1 when body is
 * not an object or the reply does not fit in size or ADMIN_REPLY_MAX.
 */
int admin_reply_ok(const json_t *body, char *out, size_t size, size_t *len);

/* Writes "- <reason>\n".  Returns 0 with *len, or -1 for a reason the rules refuse. */
int admin_reply_refuse(const char *reason, char *out, size_t size, size_t *len);

/*
 * Parses a reply of len bytes.  "+": *body is the object (the caller
 * json_decref's it), reason "".  "-": *body NULL, the reason copied into
 * reason (ADMIN_REASON_MAX + 1 bytes).  Returns 0 with *ok, or -1 with
 * *body NULL and *ok false for anything else.
 */
int admin_reply_decode(const char *msg, size_t len, bool *ok, json_t **body,
                       char reason[ADMIN_REASON_MAX + 1]);

#endif
