/*
 * Authentication in the text dialect: the AUTH method list, the lines a
 * client sends during an exchange, the bytes a pubkey signature covers, and
 * the line protocol between fived and the process that runs a PAM
 * conversation.  Pure code: no I/O, no globals.  docs/PROTOCOL.md section 4
 * is the specification.
 */
#ifndef FIVE_AUTH_H
#define FIVE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_USER_MAX       32 /* a user name, as POSIX systems allow */
#define AUTH_IDENTITY_MAX   64 /* any identity handed to a service */
#define AUTH_METHODS_MAX    8  /* methods one AUTH line may offer */
#define AUTH_NONCE_LEN      32
#define AUTH_PK_LEN         32  /* Ed25519 public key */
#define AUTH_SIG_LEN        64  /* Ed25519 signature */
#define AUTH_RESPONSE_MAX   256 /* a PAM answer, decoded */
#define AUTH_PROMPT_MAX     256 /* a PAM prompt or message, as sent on */
#define AUTH_SIGNED_MAX     512 /* the bytes a pubkey signature covers */
#define AUTH_BINDING_MAX    64  /* a channel binding value */
#define AUTH_SESSION_ID_LEN 32  /* the session id, hex */

/* The context string that starts every signed authentication message. */
#define AUTH_PUBKEY_CONTEXT "fived-auth-pubkey-v2"

enum auth_method {
	AUTH_NONE,
	AUTH_PUBKEY,
	AUTH_PASSWORD,
	AUTH_TOKEN,
	AUTH_EXTERNAL,
	AUTH_METHOD_COUNT,
};

/* "none", "pubkey", ... */
const char *auth_method_name(enum auth_method m);

/* The method a name designates; -1 for a name this implementation does not know. */
int auth_method_from_name(const char *name, enum auth_method *m);

/*
 * Parses "m1,m2,..." (at most AUTH_METHODS_MAX names of [a-z0-9-]).  Names
 * this implementation does not know are skipped, so a client may offer
 * methods from a later version.  Returns 0 with out[0..*n), or -1 for a
 * malformed list.
 */
int auth_methods_parse(const char *list, enum auth_method *out, size_t max, size_t *n);

/* Whether s is an acceptable user name: [A-Za-z_][A-Za-z0-9_.-]*, at most AUTH_USER_MAX. */
bool auth_user_valid(const char *s);

/* Whether s may be handed to a service as an identity: [A-Za-z0-9._@+-], at most AUTH_IDENTITY_MAX.
 */
bool auth_identity_valid(const char *s);

enum auth_line_kind {
	AUTH_LINE_USER,      /* USER name [ssh-ed25519 base64-blob] */
	AUTH_LINE_SIGNATURE, /* SIGNATURE base64-ssh-signature-blob */
	AUTH_LINE_RESPONSE,  /* RESPONSE base64-answer */
};

struct auth_line {
	enum auth_line_kind kind;
	char user[AUTH_USER_MAX + 1];
	bool has_key;
	uint8_t pk[AUTH_PK_LEN];
	uint8_t sig[AUTH_SIG_LEN];
	uint8_t response[AUTH_RESPONSE_MAX];
	size_t response_len;
};

/*
 * Parses one client line of an authentication exchange (a line as
 * line_take returns it).  Returns 0, or -1 with *why set to a message fit
 * for the client.
 */
int auth_line_parse(const char *line, struct auth_line *out, const char **why);

/* The server's static public key, as a signature names the server it is for. */
#define AUTH_SERVER_KEY_LEN 32

/* What a pubkey signature is bound to. */
struct auth_signed {
	const char *session_id; /* the session id, hex */
	const uint8_t *nonce;   /* the server's nonce, AUTH_NONCE_LEN bytes */
	const char *user;
	const uint8_t *pk;         /* the client's key, AUTH_PK_LEN bytes */
	const uint8_t *server_key; /* the server's, AUTH_SERVER_KEY_LEN; NULL: not known */
	const uint8_t *binding;    /* the channel binding; NULL on an unencrypted session */
	size_t binding_len;
};

/*
 * The bytes a pubkey signature covers, as SSH wire strings: the context,
 * the session id, the nonce, the user, the public key blob, the server's
 * key (empty when the client does not know it), the channel binding
 * (empty on an unencrypted session).  The server key keeps a signature
 * from being relayed to another server when nothing else binds it (an
 * unencrypted session).  Returns 0 with *len set, or -1 when out is too
 * small or an argument too long.
 */
int auth_signed_data(const struct auth_signed *in, uint8_t *out, size_t size, size_t *len);

/* Lines a client sends, written into out (NUL-terminated, with CRLF).  Return 0 or -1. */
int auth_user_line(const char *user, const uint8_t *pk /* or NULL */, char *out, size_t size);
int auth_signature_line(const uint8_t sig[AUTH_SIG_LEN], char *out, size_t size);
int auth_response_line(const uint8_t *answer, size_t len, char *out, size_t size);

/*
 * The PAM conversation, between the process running it and fived, one line
 * each way (without CR):
 *   to fived:   "P text" (prompt, echo off), "p text" (prompt, echo on),
 *               "I text" (information), "E text" (error message),
 *               "S user" (authenticated as user), "F" (failed)
 *   from fived: "A base64" (the answer to the last prompt)
 */
#define PAMCONV_LINE_MAX 512

enum pamconv_kind {
	PAMCONV_PROMPT_ECHO_OFF,
	PAMCONV_PROMPT_ECHO_ON,
	PAMCONV_INFO,
	PAMCONV_ERROR,
	PAMCONV_SUCCESS,
	PAMCONV_FAILURE,
	PAMCONV_ANSWER,
};

struct pamconv_msg {
	enum pamconv_kind kind;
	char text[AUTH_PROMPT_MAX + 1]; /* prompts and messages; the user for SUCCESS */
	uint8_t answer[AUTH_RESPONSE_MAX];
	size_t answer_len;
};

/* Parses one line (without its LF).  Returns 0 or -1. */
int pamconv_parse(const char *line, size_t len, struct pamconv_msg *out);

/*
 * Writes one message as a line ending in LF.  Text that is not printable
 * ASCII is replaced by '?' and cut at AUTH_PROMPT_MAX.  Returns the length,
 * or -1.
 */
int pamconv_encode(const struct pamconv_msg *m, char *out, size_t size);

#endif
