/*
 * The USP dialect, client side (docs/PROTOCOL.md section 8), for one
 * stream: initialize (with a token when there is one, offering the
 * authentication protocols five can carry out), then, when fived answers
 * authenticate, the exchange in messages (pubkey or password), the token
 * fived gives for the stream, initialize again with it, and connect.
 * JSON is read and, but for a password's answer, written with jansson.
 */
#include "client/dialect/usp.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/base/error.h"
#include "client/dialect/auth.h"
#include "client/dialect/redirect.h"
#include "client/dialect/token.h"
#include "client/transport/conn.h"
#include "common/b64.h"
#include "common/util.h"
#include "crypto/sshkey.h"
#include "five.h"
#include "proto/auth.h"
#include "proto/line.h"
#include "proto/usp.h"

/* fived's longest message before connect is "token" for our one stream. */
#define READ_MAX (USP_TOKEN_MAX + 2048)

/* Ours is initialize with a token. */
#define WRITE_MAX (USP_TOKEN_MAX + 1024)

/* Messages read before connect: only PAM's prompts repeat, and PAM asks little. */
#define MESSAGES_MAX 32

/* Protocols offered: five carries out pubkey and password. */
#define OFFER_MAX 2

/* {"message":"response","response":"BASE64"} and LF. */
#define RESPONSE_B64_MAX                                                                           \
	sodium_base64_ENCODED_LEN(AUTH_RESPONSE_MAX, sodium_base64_VARIANT_ORIGINAL)
#define RESPONSE_MSG_MAX (RESPONSE_B64_MAX + 64)

/* Server text shown to the user: at most this much, printable ASCII only. */
#define SHOWN_MAX 256

#define B64_KEY_MAX sodium_base64_ENCODED_LEN(SSHKEY_SIG_BLOB_MAX, sodium_base64_VARIANT_ORIGINAL)

/* One negotiation.  msg is the last message read, owned; type points into it. */
struct usp {
	struct five_conn *c;
	const char *service;
	const struct five_options *o;
	const char *offered[OFFER_MAX];
	size_t noffered;
	json_t *msg;
	const char *type;
	unsigned nread;
	struct five_error *err;
};

/* --- messages ------------------------------------------------------------------ */

static const char *
member(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* One message and its LF into out[0..size); takes msg.  Returns 0 or -1. */
static int
encode(json_t *msg, char *out, size_t size, size_t *len, struct five_error *err)
{
	size_t n;

	if (msg == NULL)
		return five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
	n = json_dumpb(msg, out, size - 1, JSON_COMPACT);
	json_decref(msg);
	if (n == 0 || n > size - 1)
		return five_fail(err, FIVE_ERR_USAGE, "message too long");
	out[n] = '\n';
	*len = n + 1;
	return 0;
}

static int
send_msg(struct usp *u, json_t *msg)
{
	char buf[WRITE_MAX];
	size_t len;

	if (encode(msg, buf, sizeof(buf), &len, u->err) != 0)
		return -1;
	return five_conn_send(u->c, buf, len, u->err);
}

static json_t *
initialize_msg(const char *service, const char *token, const char *vhost,
               const char *const *offered, size_t n)
{
	json_t *protocols = NULL;
	size_t i;

	/* Left out when none are offered; missing for want of memory, the message is not made. */
	if (n > 0 && (protocols = json_array()) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		json_array_append_new(protocols, json_string(offered[i]));
	return json_pack("{s:s, s:[{s:s, s:s*}], s:o*, s:s*}", "message", "initialize", "streams",
	                 "application", service, "token", token, "authentication", protocols,
	                 "vhost", vhost);
}

/* fived's error, with the protocols it supports when it lists them. */
static int
refused(struct usp *u)
{
	json_t *supported = json_object_get(u->msg, "supported");
	char text[SHOWN_MAX], list[SHOWN_MAX] = "", name[SHOWN_MAX];
	size_t i, used = 0;
	json_t *v;

	five_printable(member(u->msg, "error"), text, sizeof(text));
	json_array_foreach(supported, i, v)
	{
		five_printable(json_string_value(v), name, sizeof(name));
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i > 0 ? "," : "",
		                         name);
		if (used >= sizeof(list))
			break;
	}
	return five_fail(u->err, FIVE_ERR_REFUSED, "%s%s%s", text[0] != '\0' ? text : "refused",
	                 list[0] != '\0' ? "; supported: " : "", list);
}

/* fived's redirect (section 8.3), in the words of the text dialect's. */
static int
redirected(struct usp *u)
{
	const char *host = member(u->msg, "host"), *app = member(u->msg, "target_application");
	json_t *port = json_object_get(u->msg, "port");
	char where[REDIRECT_TEXT_SIZE];

	if (host == NULL || app == NULL || !json_is_integer(port) || json_integer_value(port) < 1 ||
	    json_integer_value(port) > 65535 || strlen(host) > REDIRECT_HOST_MAX ||
	    strlen(app) > NAME_MAX_LEN)
		return five_fail(u->err, FIVE_ERR_PROTOCOL, "malformed redirect");
	snprintf(where, sizeof(where), "%s %d %s", host, (int)json_integer_value(port), app);
	return five_redirect_fail(where, u->err);
}

/* The next message: an error is fived's refusal, reported as such. */
static int
read_msg(struct usp *u)
{
	char line[READ_MAX];
	json_error_t jerr;

	json_decref(u->msg);
	u->msg = NULL;
	if (++u->nread > MESSAGES_MAX)
		return five_fail(u->err, FIVE_ERR_PROTOCOL, "more than %d messages before connect",
		                 MESSAGES_MAX);
	if (five_conn_read_line(u->c, line, sizeof(line), u->err) != 0)
		return -1;
	u->msg = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(u->msg) || (u->type = member(u->msg, "message")) == NULL) {
		return five_fail(u->err, FIVE_ERR_PROTOCOL, "not a USP message: \"%.64s\"", line);
	}
	if (strcmp(u->type, "error") == 0)
		return refused(u);
	if (strcmp(u->type, "redirect") == 0)
		return redirected(u);
	return 0;
}

static int
unexpected(struct usp *u)
{
	char type[SHOWN_MAX];

	five_printable(u->type, type, sizeof(type));
	return five_fail(u->err, FIVE_ERR_PROTOCOL, "unexpected \"%.32s\" message", type);
}

static int
expect(struct usp *u, const char *type)
{
	if (read_msg(u) != 0)
		return -1;
	return strcmp(u->type, type) == 0 ? 0 : unexpected(u);
}

/* connect: the application is ours (fived writes it as configured, lowercase). */
static int
granted(struct usp *u)
{
	const char *app = member(u->msg, "application");

	if (app == NULL || strcasecmp(app, u->service) != 0)
		return five_fail(u->err, FIVE_ERR_PROTOCOL, "connect names another application");
	return 0;
}

/* token: the entry of our stream, a token or why there is none. */
static int
stream_token(struct usp *u, char *token, size_t size)
{
	json_t *streams = json_object_get(u->msg, "streams"), *st;
	const char *app, *t, *why;
	char text[SHOWN_MAX];
	size_t i;

	json_array_foreach(streams, i, st)
	{
		app = member(st, "application");
		if (app == NULL || strcasecmp(app, u->service) != 0)
			continue;
		if ((t = member(st, "token")) != NULL) {
			if (five_token_check(t, size - 1, u->err) != 0)
				return five_fail(u->err, FIVE_ERR_PROTOCOL, "fived sent no token");
			str_copy(token, t, size);
			return 0;
		}
		why = member(st, "error");
		five_printable(why, text, sizeof(text));
		return five_fail(u->err, FIVE_ERR_REFUSED, "%s", why != NULL ? text : "no token");
	}
	return five_fail(u->err, FIVE_ERR_PROTOCOL, "no token for %s", u->service);
}

/* --- pubkey --------------------------------------------------------------------- */

/* The challenge's session id and nonce, as section 4.2 has them. */
static int
challenge(struct usp *u, char sid[AUTH_SESSION_ID_LEN + 1], uint8_t nonce[AUTH_NONCE_LEN])
{
	const char *session = member(u->msg, "session"), *n = member(u->msg, "nonce");
	size_t len;

	if (session == NULL || strlen(session) != AUTH_SESSION_ID_LEN || n == NULL ||
	    b64_decode(n, strlen(n), NULL, sodium_base64_VARIANT_ORIGINAL, nonce, AUTH_NONCE_LEN,
	               &len) != 0 ||
	    len != AUTH_NONCE_LEN)
		return five_fail(u->err, FIVE_ERR_PROTOCOL, "malformed challenge");
	memcpy(sid, session, AUTH_SESSION_ID_LEN + 1);
	return 0;
}

/* Base64 of the OpenSSH blob of a key (sig NULL) or of a signature. */
static int
blob_b64(const uint8_t *pk, const uint8_t *sig, char out[B64_KEY_MAX], struct five_error *err)
{
	uint8_t blob[SSHKEY_SIG_BLOB_MAX];
	size_t len;

	if (sig != NULL ? sshkey_sig_encode(sig, blob, sizeof(blob), &len)
	                : sshkey_blob_encode(pk, blob, sizeof(blob), &len))
		return five_fail(err, FIVE_ERR_SYSTEM, "cannot encode a key or signature");
	sodium_bin2base64(out, B64_KEY_MAX, blob, len, sodium_base64_VARIANT_ORIGINAL);
	return 0;
}

/* One attempt per connection: the first key five has. */
static int
pubkey(struct usp *u, const char *user)
{
	const struct five_auth *a = u->o->auth;
	char key[B64_KEY_MAX], signature[B64_KEY_MAX], sid[AUTH_SESSION_ID_LEN + 1];
	uint8_t pk[AUTH_PK_LEN], nonce[AUTH_NONCE_LEN], data[AUTH_SIGNED_MAX], sig[AUTH_SIG_LEN];
	size_t len;

	if (five_auth_can_sign(u->c, u->err) != 0 || five_auth_first_key(a, pk, u->err) != 0 ||
	    blob_b64(pk, NULL, key, u->err) != 0)
		return -1;
	if (send_msg(u, json_pack("{s:s, s:s, s:s}", "message", "pubkey", "user", user, "key",
	                          key)) != 0 ||
	    expect(u, "challenge") != 0 || challenge(u, sid, nonce) != 0)
		return -1;
	if (five_auth_signed_data(u->c, sid, nonce, user, pk, data, sizeof(data), &len, u->err) !=
	            0 ||
	    five_auth_sign(a, pk, data, len, sig, u->err) != 0 ||
	    blob_b64(NULL, sig, signature, u->err) != 0)
		return -1;
	if (send_msg(u, json_pack("{s:s, s:s}", "message", "signature", "signature", signature)) !=
	    0)
		return -1;
	return expect(u, "token");
}

/* --- password -------------------------------------------------------------------- */

/*
 * The answer to one prompt.  Written by hand into buffers wiped here, not
 * through jansson, whose copies are freed without being wiped; base64
 * needs no escaping.
 */
static int
respond(struct usp *u, const char *prompt, int echo)
{
	char answer[AUTH_RESPONSE_MAX + 1], b64[RESPONSE_B64_MAX], msg[RESPONSE_MSG_MAX];
	int n = -1;

	if (five_auth_ask(u->o->auth, prompt, echo, answer, sizeof(answer)) != 0) {
		five_fail(u->err, FIVE_ERR_REFUSED, "no answer to \"%s\"", prompt);
		goto out;
	}
	sodium_bin2base64(b64, sizeof(b64), (const uint8_t *)answer, strlen(answer),
	                  sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(msg, sizeof(msg), "{\"message\":\"response\",\"response\":\"%s\"}\n", b64);
	if (n < 0 || (size_t)n >= sizeof(msg) || five_conn_send(u->c, msg, (size_t)n, u->err) != 0)
		n = -1;
out:
	sodium_memzero(answer, sizeof(answer));
	sodium_memzero(b64, sizeof(b64));
	sodium_memzero(msg, sizeof(msg));
	return n < 0 ? -1 : 0;
}

/* PAM's conversation, prompt by prompt, until fived gives the token. */
static int
password(struct usp *u, const char *user)
{
	char text[SHOWN_MAX];
	const char *kind;

	if (send_msg(u, json_pack("{s:s, s:s}", "message", "password", "user", user)) != 0)
		return -1;
	for (;;) {
		if (read_msg(u) != 0)
			return -1;
		if (strcmp(u->type, "token") == 0)
			return 0;
		if (strcmp(u->type, "prompt") != 0 || (kind = member(u->msg, "kind")) == NULL)
			return unexpected(u);
		five_printable(member(u->msg, "text"), text, sizeof(text));
		if (strcmp(kind, "info") == 0 || strcmp(kind, "error") == 0)
			fprintf(stderr, "%s\n", text);
		else if (strcmp(kind, "echo-off") != 0 && strcmp(kind, "echo-on") != 0)
			return five_fail(u->err, FIVE_ERR_PROTOCOL, "unknown prompt kind");
		else if (respond(u, text, strcmp(kind, "echo-on") == 0) != 0)
			return -1;
	}
}

/* --- the negotiation ------------------------------------------------------------- */

/* The protocols the options allow and five can use: pubkey only with a key at hand. */
static int
offer(struct usp *u)
{
	const struct five_auth *a = u->o->auth;
	enum auth_method m[AUTH_METHODS_MAX];
	uint8_t pk[AUTH_PK_LEN];
	char login[FIVE_AUTH_USER_MAX];
	const char *user;
	bool refused = false;
	size_t n, i;

	if (a == NULL)
		return 0;
	if ((user = five_auth_user(a, login, sizeof(login))) == NULL || !auth_user_valid(user))
		return five_fail(u->err, FIVE_ERR_USAGE, "invalid user name \"%.32s\"",
		                 user != NULL ? user : "");
	if (auth_methods_parse(a->methods != NULL ? a->methods : "pubkey", m, AUTH_METHODS_MAX,
	                       &n) != 0)
		return five_fail(u->err, FIVE_ERR_USAGE, "unknown authentication methods \"%s\"",
		                 a->methods);
	for (i = 0; i < n && u->noffered < OFFER_MAX; i++) {
		if (m[i] == AUTH_PASSWORD) {
			if (five_auth_can_send_password(u->o, u->err) == 0)
				u->offered[u->noffered++] = auth_method_name(m[i]);
			else
				refused = true;
		} else if (m[i] == AUTH_PUBKEY) {
			if (five_auth_first_key(a, pk, u->err) == 0)
				u->offered[u->noffered++] = auth_method_name(m[i]);
			else if (u->err->step == FIVE_ERR_REFUSED)
				refused = true;
			else
				return -1;
		}
	}
	/* Without a key, or in the clear, the method's error (already in err) says why. */
	if (u->noffered == 0)
		return refused ? -1 : five_fail(u->err, FIVE_ERR_USAGE, "no method five can use");
	return 0;
}

/* authenticate: the exchange of the protocol fived picked among those offered. */
static int
authenticate(struct usp *u)
{
	const char *protocol = member(u->msg, "protocol");
	char login[FIVE_AUTH_USER_MAX];
	const char *user;
	size_t i;

	/* Nothing offered (no o->auth: a token, or none) is never asked for. */
	for (i = 0; protocol != NULL && i < u->noffered; i++)
		if (strcmp(protocol, u->offered[i]) == 0)
			break;
	if (protocol == NULL || i == u->noffered)
		return five_fail(u->err, FIVE_ERR_PROTOCOL,
		                 "fived asked for a protocol not offered");
	/* offer() checked the user. */
	user = five_auth_user(u->o->auth, login, sizeof(login));
	return strcmp(protocol, "pubkey") == 0 ? pubkey(u, user) : password(u, user);
}

/* From fived's first answer to connect. */
static int
negotiate(struct usp *u)
{
	char token[USP_TOKEN_MAX + 1];
	int r;

	if (read_msg(u) != 0)
		return -1;
	if (strcmp(u->type, "connect") == 0)
		return granted(u);
	if (strcmp(u->type, "authenticate") != 0)
		return unexpected(u);
	if (authenticate(u) != 0 || stream_token(u, token, sizeof(token)) != 0)
		return -1;
	/* The session keeps its vhost: the second initialize needs none. */
	r = send_msg(u, initialize_msg(u->service, token, NULL, NULL, 0));
	sodium_memzero(token, sizeof(token));
	if (r != 0 || expect(u, "connect") != 0)
		return -1;
	return granted(u);
}

/* The first initialize, and early behind it, into a buffer the caller frees. */
static int
first_request(struct usp *u, const void *early, size_t early_len, uint8_t **out, size_t *len)
{
	char line[WRITE_MAX];
	size_t n;

	if (encode(initialize_msg(u->service, u->o->token, u->o->vhost, u->offered, u->noffered),
	           line, sizeof(line), &n, u->err) != 0)
		return -1;
	if ((*out = malloc(n + early_len)) == NULL)
		return five_fail(u->err, FIVE_ERR_SYSTEM, "out of memory");
	memcpy(*out, line, n);
	if (early_len > 0)
		memcpy(*out + n, early, early_len);
	*len = n + early_len;
	return 0;
}

static int
check_request(const char *service, const struct five_options *o, size_t early_len,
              struct five_error *err)
{
	if (!name_valid(service))
		return five_fail(err, FIVE_ERR_USAGE, "invalid service name \"%.64s\"", service);
	if (o->vhost != NULL && !vhost_name_valid(o->vhost))
		return five_fail(err, FIVE_ERR_USAGE, "invalid vhost name");
	if (o->token != NULL && o->auth != NULL)
		return five_fail(err, FIVE_ERR_USAGE,
		                 "a token replaces authentication: not both at once");
	if (o->token != NULL && five_token_check(o->token, USP_TOKEN_MAX, err) != 0)
		return -1;
	/* During an exchange, what the client sends is read as messages. */
	if (early_len > 0 && o->auth != NULL)
		return five_fail(err, FIVE_ERR_USAGE, "no early data before an authentication");
	return 0;
}

int
five_usp_negotiate(struct five_conn *c, const char *service, const struct five_options *o,
                   struct five_error *err)
{
	struct usp u = {.c = c, .service = service, .o = o, .err = err};
	int r = -1;

	if (offer(&u) == 0)
		r = negotiate(&u);
	json_decref(u.msg);
	return r;
}

int
five_usp_open(struct five_conn *c, const char *host, const char *service,
              const struct five_options *o, const void *early, size_t early_len,
              struct five_error *err)
{
	struct usp u = {.c = c, .service = service, .o = o, .err = err};
	struct five_options direct = *o;
	uint8_t *request = NULL;
	size_t len;
	int r = -1;

	c->fd = -1;
	c->seal = NULL;
	if (check_request(service, o, early_len, err) != 0 || offer(&u) != 0 ||
	    first_request(&u, early, early_len, &request, &len) != 0)
		goto out;
	/* Authentication is in messages here, not the text dialect's AUTH lines. */
	direct.auth = NULL;
	direct.token = NULL;
	if (five_conn_open(c, host, &direct, request, len, err) != 0)
		goto out;
	if ((r = negotiate(&u)) != 0)
		five_conn_close(c);
out:
	free(request);
	json_decref(u.msg);
	return r;
}
