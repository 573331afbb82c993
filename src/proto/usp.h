/*
 * The USP dialect (docs/PROTOCOL.md section 8): one JSON object per line.
 * Framing, the strict decoder of the client's messages and the encoders of
 * the server's.  Pure code: no I/O, no globals.
 *
 * A message is malformed when it is not one JSON object (RFC 8259, UTF-8,
 * no NUL), nests deeper than USP_DEPTH_MAX, names a member not listed for
 * its "message" (or, in the email's forms, which have none, for the
 * member that tells the form), gives a member twice, or gives a value of
 * the wrong type or outside its bounds.  The decoder says which in a short reason that the
 * server sends as "malformed message: <reason>"; reasons quote at most a
 * few printable ASCII characters of what the client sent.
 */
#ifndef FIVE_USP_H
#define FIVE_USP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/paseto.h"
#include "proto/auth.h"
#include "proto/line.h"
#include "proto/proof.h"

/* A message with its LF (and optional CR) is at most this long. */
#define USP_LINE_MAX 65536

/*
 * On-demand execution's parameters (section 8.8): a JSON object a stream
 * carries to an exec: service, and the parameters a service accepts.
 */
/* The object written compactly, sorted, in ASCII: FIVE_PARAMETERS's value. */
#define PARAMS_BYTES_MAX 1024
/* Objects and arrays nest at most this deep, the parameters' own object being 1. */
#define PARAMS_DEPTH_MAX 3
/* Parameters one service accepts. */
#define PARAMS_KEYS_MAX 16
/* A parameter's name: [a-z_][a-z0-9_]*, at most this long. */
#define PARAMS_NAME_MAX 32

enum params_type {
	PARAM_STRING,
	PARAM_INTEGER,
	PARAM_NUMBER, /* an integer or a fraction */
	PARAM_BOOLEAN,
	PARAM_JSON, /* any value, within the depth */
};

/* What a service accepts: a service with none accepts no parameters. */
struct params_spec {
	struct {
		char name[PARAMS_NAME_MAX + 1];
		enum params_type type;
	} keys[PARAMS_KEYS_MAX];
	size_t n;
};

enum params_status {
	PARAMS_OK,
	PARAMS_NOT_OBJECT, /* not a JSON object */
	PARAMS_TOO_LARGE,  /* more than PARAMS_BYTES_MAX written out */
	PARAMS_TOO_DEEP,   /* nested more than PARAMS_DEPTH_MAX */
	PARAMS_BAD_NAME,   /* a name not of the form above */
	PARAMS_BAD_TEXT,   /* DEL in a string: JSON leaves it unescaped, no environment takes it */
	PARAMS_UNKNOWN,    /* a name the service does not accept */
	PARAMS_WRONG_TYPE, /* a value not of the type the service gives the name */
	PARAMS_NO_MEMORY,
};

/*
 * Adds one "NAME:TYPE" (TYPE string, integer, number, boolean or json) to
 * spec.  Returns 0, or -1 with *why set to a static message.
 */
int params_spec_add(struct params_spec *spec, const char *word, const char **why);

/*
 * Checks v's form (an object, valid names, the depth and the size) and
 * writes it compactly, its keys sorted, in ASCII, into out.
 */
enum params_status params_shape(const json_t *v, char out[PARAMS_BYTES_MAX + 1]);

/*
 * Checks the object text[0..len) (as params_shape wrote it, or anyone)
 * against spec: its form, then each name and its value's type.  On
 * PARAMS_UNKNOWN and PARAMS_WRONG_TYPE, name holds the parameter's name.
 */
enum params_status params_check(const char *text, size_t len, const struct params_spec *spec,
                                char name[PARAMS_NAME_MAX + 1]);

/* A refusal's words for status ("parameters too deep", ...); "" for PARAMS_OK. */
const char *params_status_text(enum params_status status);

/*
 * Objects and arrays nest at most this deep: {"streams":[{...}]} is 3, and
 * a stream's parameters, at 4, may nest PARAMS_DEPTH_MAX levels and one
 * more, which params_shape refuses by name.
 */
#define USP_DEPTH_MAX (4 + PARAMS_DEPTH_MAX)

#define USP_STREAMS_MAX       8  /* initialize: streams */
#define USP_PROTOCOLS_MAX     8  /* initialize: authentication */
#define USP_PROTOCOL_NAME_MAX 32 /* one PROTOCOL: [a-z0-9-] */
#define USP_TOKENS_MAX        16 /* invalidate: tokens */
#define USP_TOKEN_MAX         PASETO_TOKEN_MAX
#define USP_SESSION_ID_MAX    64 /* a client's SESSION-ID: [A-Za-z0-9._:-] */

/*
 * The email's forms (section 8.7): an authorization token is this many
 * lowercase hex digits; an application menu index is at most this large.
 */
#define USP_AUTHZ_HEX    64
#define USP_INDEX_MAX    999999
#define USP_INDEX_DIGITS 6

/* fived's own session id: lowercase hex, as in the audit log. */
#define USP_SERVER_SESSION_ID_LEN AUTH_SESSION_ID_LEN

/* A decoder's reason, with its NUL. */
#define USP_REASON_MAX 128

enum usp_line_status {
	USP_LINE_NEED_MORE = 0, /* no LF yet, and still within USP_LINE_MAX */
	USP_LINE_OK = 1,        /* a line was found */
	USP_LINE_TOO_LONG = -1, /* USP_LINE_MAX bytes without an LF */
};

/*
 * Finds the first line in data[0..len).  On USP_LINE_OK the line is
 * data[0..*line_len), without its LF and without a CR just before the LF,
 * and *used counts the bytes it spanned with its terminator.  Nothing is
 * copied and no byte is judged here: usp_decode checks the contents.
 */
enum usp_line_status usp_line_take(const uint8_t *data, size_t len, size_t *line_len, size_t *used);

enum usp_type {
	USP_INITIALIZE,
	USP_MENU,
	USP_INVALIDATE,
	USP_PUBKEY,
	USP_SIGNATURE,
	USP_PASSWORD,
	USP_RESPONSE,
	USP_TOKEN,
	USP_PROVEAUTH,  /* section 13: a proof of the session's identity for a challenge */
	USP_GETSIGNKEY, /* section 13: the key proofs are signed with */
	/* The email's forms, without "message" (section 8.7): */
	USP_SESSION_REQUEST, /* {client_session_id, authorization_token, application_session} */
	USP_SERVICE_REQUEST, /* {client_session_id, authorization_token, requested_services} */
};

/* What an authorization_token member held. */
enum usp_authz {
	USP_AUTHZ_NULL,  /* null: none presented */
	USP_AUTHZ_GIVEN, /* USP_AUTHZ_HEX lowercase hex digits, in authz */
	USP_AUTHZ_OTHER, /* any other string: not one fived issues */
};

/* A session request's application_session. */
enum usp_action {
	USP_ACTION_NONE,  /* null: the application menu is asked for */
	USP_ACTION_BEGIN, /* "begin": the token's application (tokens[0]) */
	USP_ACTION_END,   /* "end": the token (tokens[0]) is given up */
};

struct usp_stream {
	char application[NAME_MAX_LEN + 1]; /* lowercased */
	char *token;                        /* NULL when none; owned by the message */
	char *parameters; /* as params_shape writes them; NULL when none; owned by the message */
};

/*
 * One client message.  Members that the message's type does not carry, and
 * optional members the client left out, are zero ("" for strings).  Tokens
 * are the only heap memory: malloc'd copies the message owns until
 * usp_msg_free().
 */
struct usp_msg {
	enum usp_type type;

	/* initialize, menu: lowercased; initialize, menu, invalidate: client_session_id. */
	char vhost[VHOST_MAX_LEN + 1];
	char client_session_id[USP_SESSION_ID_MAX + 1];

	/* initialize */
	struct usp_stream streams[USP_STREAMS_MAX];
	size_t nstreams;
	/*
	 * The offered protocols this implementation knows, in the client's
	 * order; names it does not know were checked for form and skipped.
	 */
	enum auth_method protocols[USP_PROTOCOLS_MAX];
	size_t nprotocols;
	/* Whether any protocol was offered, known or not: flow 4 rather than 6. */
	bool offered_protocols;
	/* initialize: "multiplex": true, the streams inside this connection (section 11). */
	bool multiplex;

	/* invalidate: tokens[0..ntokens); token: tokens[0], ntokens 1.  Owned. */
	char *tokens[USP_TOKENS_MAX];
	size_t ntokens;

	/* pubkey, password */
	char user[AUTH_USER_MAX + 1];
	/* pubkey: the key from the OpenSSH blob */
	uint8_t pk[AUTH_PK_LEN];
	/* signature: the signature from the OpenSSH signature blob */
	uint8_t sig[AUTH_SIG_LEN];
	/* response: the decoded answer, without NUL bytes; a secret */
	uint8_t response[AUTH_RESPONSE_MAX];
	size_t response_len;

	/* proveauth: the challenge, PROOF_HASH_HEX lowercase hex digits */
	char hash[PROOF_HASH_SIZE];

	/* session request, service request */
	enum usp_authz authz_kind;
	char authz[USP_AUTHZ_HEX + 1];
	/* session request: application_session; its token is tokens[0] */
	enum usp_action action;
	/*
	 * service request: index 0 as an object asks for authentication with
	 * its "auth_method" (offered_protocols, protocols[0..nprotocols), as
	 * initialize's "authentication" would); as an array, invalidation of
	 * tokens[0..ntokens).  The other indices, in the client's order, are
	 * services[0..nservices).
	 */
	bool authenticate;
	bool invalidate;
	uint32_t services[USP_STREAMS_MAX];
	size_t nservices;
};

/*
 * Decodes one line of len bytes (as usp_line_take found it, without its
 * terminator; NUL bytes in it make it malformed) into *m.  Returns 0, the
 * caller then owning *m until usp_msg_free(m); or -1 with a NUL-terminated
 * reason in reason[0..USP_REASON_MAX) and *m zeroed, nothing allocated,
 * but for a valid client_session_id the line carried (the error echoes it).
 * jansson's own copies of the line's strings are freed, not wiped: a
 * caller holding a password answer wipes its input buffer, and only that.
 */
int usp_decode(const char *line, size_t len, struct usp_msg *m, char reason[USP_REASON_MAX]);

/* Frees the tokens of *m and wipes all of it (the response is a password).  NULL is a no-op. */
void usp_msg_free(struct usp_msg *m);

/*
 * What every server message carries: fived's session id
 * (USP_SERVER_SESSION_ID_LEN lowercase hex digits) and the client's, "" until
 * the client has sent one.
 */
struct usp_ids {
	char server[USP_SERVER_SESSION_ID_LEN + 1];
	char client[USP_SESSION_ID_MAX + 1];
};

/* A PROMPT's kind: whether the client answers, and whether it echoes the answer. */
enum usp_prompt_kind {
	USP_PROMPT_ECHO_OFF,
	USP_PROMPT_ECHO_ON,
	USP_PROMPT_INFO,
	USP_PROMPT_ERROR,
};

/* One stream of a "token" message: exactly one of token and error is not NULL. */
struct usp_token_result {
	const char *application;
	const char *token;
	const char *error;
};

/* One application of a "menu" message, with what the session still lacks for it. */
struct usp_menu_entry {
	const char *application;
	bool needs_authentication;
	bool needs_encryption;
};

/*
 * The encoders.  Each writes one compact JSON object, "message" first, the
 * message's members in the order of section 8.3, then "server_session_id"
 * and, when ids->client is not "", "client_session_id"; then "\n".  *out is
 * malloc'd and NUL-terminated, the caller frees it; *len does not count the
 * NUL.  Each returns 0, or -1 with *out NULL when an argument breaks the
 * rules a client checks (names, session ids, token shapes, UTF-8), the
 * message would exceed USP_LINE_MAX, or memory runs out.
 */
int usp_encode_authenticate(const struct usp_ids *ids, enum auth_method protocol, char **out,
                            size_t *len);

/* session: fived's session id (as in ids->server); nonce: AUTH_NONCE_LEN bytes. */
int usp_encode_challenge(const struct usp_ids *ids, const char *session,
                         const uint8_t nonce[AUTH_NONCE_LEN], char **out, size_t *len);

/* text: UTF-8, already stripped of what a terminal should not see. */
int usp_encode_prompt(const struct usp_ids *ids, enum usp_prompt_kind kind, const char *text,
                      char **out, size_t *len);

/*
 * identity: an identity as auth_identity_valid() accepts, or NULL when none
 * may be shown.  streams[0..n), 1 to USP_STREAMS_MAX entries.
 */
int usp_encode_token(const struct usp_ids *ids, const char *identity,
                     const struct usp_token_result *streams, size_t n, char **out, size_t *len);

int usp_encode_connect(const struct usp_ids *ids, const char *application, char **out, size_t *len);

/*
 * "redirect": application, asked for, is at r (section 8.3); the server
 * closes after it.
 */
int usp_encode_redirect(const struct usp_ids *ids, const char *application,
                        const struct redirect *r, char **out, size_t *len);

/* "multiplex": frames from the end of its line on (section 8.4, several streams). */
int usp_encode_multiplex(const struct usp_ids *ids, char **out, size_t *len);

/* apps[0..n), possibly none; "requires" lists authentication before encryption. */
int usp_encode_menu(const struct usp_ids *ids, const struct usp_menu_entry *apps, size_t n,
                    char **out, size_t *len);

int usp_encode_invalidated(const struct usp_ids *ids, size_t count, char **out, size_t *len);

/*
 * The email's numbered application menu (section 8.7): index 0 lists
 * methods[0..nmethods) while the session is not authenticated, or offers
 * token invalidation once it is; apps[i] is index i + 1.
 */
struct usp_app_menu {
	bool authenticated;
	const enum auth_method *methods;
	size_t nmethods;
	const struct usp_menu_entry *apps;
	size_t napps;
};

/* One requested service's answer: exactly one of token and error is not NULL. */
struct usp_service_result {
	uint32_t index;
	const char *token;
	const char *error;
};

/* The answer to a service request: each part is left out when NULL or false. */
struct usp_service_answer {
	const char *authz;               /* USP_AUTHZ_HEX hex digits, after an authentication */
	const struct usp_app_menu *menu; /* the new menu, after an authentication */
	bool invalidated;                /* index 0 invalidated count tokens */
	size_t count;
	const struct usp_service_result *results;
	size_t nresults;
};

/* {"application_menu": {...}} */
int usp_encode_app_menu(const struct usp_ids *ids, const struct usp_app_menu *menu, char **out,
                        size_t *len);

/* {"authorization_token":..., "application_menu":..., "0":..., "N": {"token"|"error"}} */
int usp_encode_service_answer(const struct usp_ids *ids, const struct usp_service_answer *a,
                              char **out, size_t *len);

/* proof: a proof as proof_sign writes it (a v4.public token of at most PROOF_MAX characters). */
int usp_encode_proof(const struct usp_ids *ids, const char *proof, char **out, size_t *len);

/* key: the signing key as proof_key_format writes it; provider: a valid provider name. */
int usp_encode_signkey(const struct usp_ids *ids, const char *key, const char *provider, char **out,
                       size_t *len);

/*
 * error: the text, non-empty.  application: the stream it is about, or
 * NULL.  supported: the protocols fived could have used (written with "no
 * common authentication protocol"), supported[0..nsupported) with
 * nsupported <= USP_PROTOCOLS_MAX, or NULL to leave the member out.
 */
int usp_encode_error(const struct usp_ids *ids, const char *error, const char *application,
                     const enum auth_method *supported, size_t nsupported, char **out, size_t *len);

#endif
