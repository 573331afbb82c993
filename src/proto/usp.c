#include "proto/usp.h"

#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/util.h"
#include "crypto/sshkey.h"

#define B64 sodium_base64_VARIANT_ORIGINAL

/* The flags every encoder dumps with: one line, members in the order they were set. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER)

/* A client's name quoted in a reason: this many characters, then "...". */
#define QUOTE_MAX  24
#define QUOTE_SIZE (QUOTE_MAX + sizeof("..."))

#define LOCAL_HEADER     "v4.local."
#define PUBLIC_HEADER    "v4.public."
#define SESSION_ID_EXTRA "._:-"

#define NONCE_B64_SIZE sodium_base64_ENCODED_LEN(AUTH_NONCE_LEN, B64)

/* A member a message may carry, with its JSON type, and whether null may stand for it. */
struct member {
	const char *name;
	json_type type;
	bool required;
	bool nullable;
};

/* The members of each client message (8.2) but "message", which find_message checks. */
static const struct member initialize_members[] = {
        {"streams", JSON_ARRAY, true, false},   {"authentication", JSON_ARRAY, false, false},
        {"vhost", JSON_STRING, false, false},   {"client_session_id", JSON_STRING, false, false},
        {"multiplex", JSON_TRUE, false, false},
};

static const struct member stream_members[] = {
        {"application", JSON_STRING, true, false},
        {"token", JSON_STRING, false, false},
        {"parameters", JSON_OBJECT, false, false},
};

static const struct member menu_members[] = {
        {"vhost", JSON_STRING, false, false},
        {"client_session_id", JSON_STRING, false, false},
};

static const struct member invalidate_members[] = {
        {"tokens", JSON_ARRAY, true, false},
        {"client_session_id", JSON_STRING, false, false},
};

static const struct member pubkey_members[] = {
        {"user", JSON_STRING, true, false},
        {"key", JSON_STRING, true, false},
};

static const struct member signature_members[] = {
        {"signature", JSON_STRING, true, false},
};

static const struct member password_members[] = {
        {"user", JSON_STRING, true, false},
};

static const struct member response_members[] = {
        {"response", JSON_STRING, true, false},
};

static const struct member token_members[] = {
        {"token", JSON_STRING, true, false},
};

static const struct member proveauth_members[] = {
        {"hash", JSON_STRING, true, false},
        {"client_session_id", JSON_STRING, false, false},
};

static const struct member getsignkey_members[] = {
        {"client_session_id", JSON_STRING, false, false},
};

/* The email's forms (8.7): every member required, null where the email allows it. */
static const struct member session_request_members[] = {
        {"client_session_id", JSON_STRING, true, false},
        {"authorization_token", JSON_STRING, true, true},
        {"application_session", JSON_OBJECT, true, true},
};

static const struct member application_session_members[] = {
        {"token", JSON_STRING, true, true},
        {"action", JSON_STRING, true, false},
};

static const struct member service_request_members[] = {
        {"client_session_id", JSON_STRING, true, false},
        {"authorization_token", JSON_STRING, true, true},
        {"requested_services", JSON_OBJECT, true, false},
};

static const struct member auth_request_members[] = {
        {"auth_method", JSON_STRING, true, false},
};

static const char *const prompt_kinds[] = {
        [USP_PROMPT_ECHO_OFF] = "echo-off",
        [USP_PROMPT_ECHO_ON] = "echo-on",
        [USP_PROMPT_INFO] = "info",
        [USP_PROMPT_ERROR] = "error",
};

enum usp_line_status
usp_line_take(const uint8_t *data, size_t len, size_t *line_len, size_t *used)
{
	const uint8_t *lf = memchr(data, '\n', len < USP_LINE_MAX ? len : USP_LINE_MAX);
	size_t end;

	*line_len = 0;
	*used = 0;
	if (lf == NULL)
		return len >= USP_LINE_MAX ? USP_LINE_TOO_LONG : USP_LINE_NEED_MORE;
	end = (size_t)(lf - data);
	*used = end + 1;
	*line_len = end > 0 && data[end - 1] == '\r' ? end - 1 : end;
	return USP_LINE_OK;
}

static void say(char *reason, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes a reason for refusing a message into reason[0..USP_REASON_MAX). */
static void
say(char *reason, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, USP_REASON_MAX, fmt, ap);
	va_end(ap);
}

/* A client's name, fit for a reason and a log line: printable ASCII, short. */
static void
quote(const char *s, char out[QUOTE_SIZE])
{
	size_t i;

	for (i = 0; i < QUOTE_MAX && s[i] != '\0'; i++)
		out[i] = s[i] >= 0x20 && s[i] <= 0x7e && s[i] != '"' && s[i] != '\\' ? s[i] : '?';
	out[i] = '\0';
	if (s[i] != '\0')
		memcpy(out + i, "...", sizeof("..."));
}

/*
 * NUL bytes and the nesting depth, before jansson sees the line: its own
 * depth limit is 2048, and a line of brackets should cost nothing.
 */
static int
precheck(const char *p, size_t len, char *reason)
{
	size_t i, depth = 0;
	bool in_string = false, escaped = false;

	for (i = 0; i < len; i++) {
		if (p[i] == '\0') {
			say(reason, "NUL byte");
			return -1;
		}
		if (in_string) {
			if (escaped)
				escaped = false;
			else if (p[i] == '\\')
				escaped = true;
			else if (p[i] == '"')
				in_string = false;
		} else if (p[i] == '"') {
			in_string = true;
		} else if ((p[i] == '{' || p[i] == '[') && ++depth > USP_DEPTH_MAX) {
			say(reason, "nested more than %d levels", USP_DEPTH_MAX);
			return -1;
		} else if ((p[i] == '}' || p[i] == ']') && depth > 0) {
			depth--;
		}
	}
	return 0;
}

static const char *
type_name(json_type t)
{
	switch (t) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_TRUE:
		return "true";
	default:
		return "a string";
	}
}

static const struct member *
find_member(const struct member *t, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(t[i].name, name) == 0)
			return &t[i];
	return NULL;
}

/*
 * Exactly the members of t[0..n) that are required, possibly some that are
 * not, each of its type, and known, a member checked already (NULL for
 * none).  where prefixes reasons about a nested object.
 */
static int
check_members(json_t *o, const struct member *t, size_t n, const char *known, const char *where,
              char *reason)
{
	char q[QUOTE_SIZE];
	const struct member *mb;
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(o, key, v)
	{
		if (known != NULL && strcmp(key, known) == 0)
			continue;
		if ((mb = find_member(t, n, key)) == NULL) {
			quote(key, q);
			say(reason, "%sunknown member \"%s\"", where, q);
			return -1;
		}
		if (json_typeof(v) != mb->type && !(mb->nullable && json_is_null(v))) {
			say(reason, "%s%s: expected %s%s", where, mb->name, type_name(mb->type),
			    mb->nullable ? " or null" : "");
			return -1;
		}
	}
	for (i = 0; i < n; i++) {
		if (t[i].required && json_object_get(o, t[i].name) == NULL) {
			say(reason, "%smissing member \"%s\"", where, t[i].name);
			return -1;
		}
	}
	return 0;
}

/* A string member that check_members let through, or NULL when absent. */
static const char *
string_of(json_t *o, const char *name)
{
	return json_string_value(json_object_get(o, name));
}

static bool
b64url_run(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
			return false;
	return true;
}

/* A PASETO v4 token in form: header, payload, optional footer.  The token layer does the rest. */
static bool
token_shaped(const char *s)
{
	size_t n = strlen(s), skip, body;
	const char *dot;

	if (n > USP_TOKEN_MAX)
		return false;
	if (strncmp(s, LOCAL_HEADER, strlen(LOCAL_HEADER)) == 0)
		skip = strlen(LOCAL_HEADER);
	else if (strncmp(s, PUBLIC_HEADER, strlen(PUBLIC_HEADER)) == 0)
		skip = strlen(PUBLIC_HEADER);
	else
		return false;
	s += skip;
	n -= skip;
	if ((dot = memchr(s, '.', n)) == NULL)
		return b64url_run(s, n);
	body = (size_t)(dot - s);
	return b64url_run(s, body) && b64url_run(dot + 1, n - body - 1);
}

static bool
session_id_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > USP_SESSION_ID_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr(SESSION_ID_EXTRA, s[i]) != NULL))
			return false;
	return true;
}

static bool
server_id_valid(const char *s)
{
	size_t i;

	for (i = 0; i < USP_SERVER_SESSION_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[USP_SERVER_SESSION_ID_LEN] == '\0';
}

static bool
protocol_name_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > USP_PROTOCOL_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* A copy of a token for the message to own. */
static char *
token_copy(const char *s, char *reason)
{
	char *t = strdup(s);

	if (t == NULL)
		say(reason, "out of memory");
	return t;
}

/* A stream's parameters (section 8.8): their form only, not what the service takes. */
static int
parse_parameters(json_t *v, struct usp_stream *st, char *reason)
{
	char text[PARAMS_BYTES_MAX + 1];
	enum params_status status;

	if (v == NULL)
		return 0;
	if ((status = params_shape(v, text)) != PARAMS_OK) {
		say(reason, "streams: %s", params_status_text(status));
		return -1;
	}
	if ((st->parameters = strdup(text)) == NULL) {
		say(reason, "out of memory");
		return -1;
	}
	return 0;
}

static int
parse_stream(json_t *e, struct usp_stream *st, char *reason)
{
	const char *app, *token;

	if (!json_is_object(e)) {
		say(reason, "streams: expected objects");
		return -1;
	}
	if (check_members(e, stream_members, ARRAY_LEN(stream_members), NULL,
	                  "streams: ", reason) != 0)
		return -1;
	app = string_of(e, "application");
	if (!name_valid(app)) {
		say(reason, "streams: invalid application name");
		return -1;
	}
	str_copy(st->application, app, sizeof(st->application));
	str_lower(st->application);
	if (parse_parameters(json_object_get(e, "parameters"), st, reason) != 0)
		return -1;
	if ((token = string_of(e, "token")) == NULL)
		return 0;
	if (!token_shaped(token)) {
		say(reason, "streams: invalid token");
		return -1;
	}
	return (st->token = token_copy(token, reason)) != NULL ? 0 : -1;
}

/* The offered protocols: all checked for form, the known ones kept. */
static int
parse_protocols(json_t *a, struct usp_msg *m, char *reason)
{
	enum auth_method method;
	const char *name;
	json_t *e;
	size_t i;

	if (json_array_size(a) > USP_PROTOCOLS_MAX) {
		say(reason, "authentication: expected 0 to %d entries", USP_PROTOCOLS_MAX);
		return -1;
	}
	m->offered_protocols = json_array_size(a) > 0;
	json_array_foreach(a, i, e)
	{
		if ((name = json_string_value(e)) == NULL) {
			say(reason, "authentication: expected strings");
			return -1;
		}
		if (!protocol_name_valid(name)) {
			say(reason, "authentication: invalid protocol name");
			return -1;
		}
		/* "none" is how the text dialect's tables say "no method", not a protocol. */
		if (auth_method_from_name(name, &method) == 0 && method != AUTH_NONE)
			m->protocols[m->nprotocols++] = method;
	}
	return 0;
}

static int
parse_initialize(json_t *o, struct usp_msg *m, char *reason)
{
	json_t *streams = json_object_get(o, "streams");
	json_t *auth = json_object_get(o, "authentication");
	json_t *e;
	size_t i;

	if (json_array_size(streams) < 1 || json_array_size(streams) > USP_STREAMS_MAX) {
		say(reason, "streams: expected 1 to %d entries", USP_STREAMS_MAX);
		return -1;
	}
	json_array_foreach(streams, i, e)
	{
		if (parse_stream(e, &m->streams[i], reason) != 0)
			return -1;
		m->nstreams++;
	}
	m->multiplex = json_object_get(o, "multiplex") != NULL;
	return auth != NULL ? parse_protocols(auth, m, reason) : 0;
}

/* An array of 1 to USP_TOKENS_MAX tokens into m->tokens; where names it in reasons. */
static int
parse_token_list(json_t *tokens, struct usp_msg *m, const char *where, char *reason)
{
	const char *token;
	json_t *e;
	size_t i;

	if (json_array_size(tokens) < 1 || json_array_size(tokens) > USP_TOKENS_MAX) {
		say(reason, "%s: expected 1 to %d entries", where, USP_TOKENS_MAX);
		return -1;
	}
	json_array_foreach(tokens, i, e)
	{
		if ((token = json_string_value(e)) == NULL) {
			say(reason, "%s: expected strings", where);
			return -1;
		}
		if (!token_shaped(token)) {
			say(reason, "%s: invalid token", where);
			return -1;
		}
		if ((m->tokens[i] = token_copy(token, reason)) == NULL)
			return -1;
		m->ntokens++;
	}
	return 0;
}

static int
parse_invalidate(json_t *o, struct usp_msg *m, char *reason)
{
	return parse_token_list(json_object_get(o, "tokens"), m, "tokens", reason);
}

static int
parse_user(json_t *o, struct usp_msg *m, char *reason)
{
	const char *user = string_of(o, "user");

	if (!auth_user_valid(user)) {
		say(reason, "user: invalid name");
		return -1;
	}
	str_copy(m->user, user, sizeof(m->user));
	return 0;
}

/* Standard padded base64 of the member name, into out[0..size). */
static int
decode_b64(json_t *o, const char *name, uint8_t *out, size_t size, size_t *len, char *reason)
{
	json_t *v = json_object_get(o, name);

	if (b64_decode(json_string_value(v), json_string_length(v), NULL, B64, out, size, len) !=
	    0) {
		say(reason, "%s: invalid base64 or too long", name);
		return -1;
	}
	return 0;
}

static int
parse_pubkey(json_t *o, struct usp_msg *m, char *reason)
{
	uint8_t blob[SSHKEY_BLOB_MAX];
	size_t len;

	if (parse_user(o, m, reason) != 0 ||
	    decode_b64(o, "key", blob, sizeof(blob), &len, reason) != 0)
		return -1;
	if (sshkey_blob_decode(blob, len, m->pk) != 0) {
		say(reason, "key: not an Ed25519 public key blob");
		return -1;
	}
	return 0;
}

static int
parse_signature(json_t *o, struct usp_msg *m, char *reason)
{
	uint8_t blob[SSHKEY_SIG_BLOB_MAX];
	size_t len;

	if (decode_b64(o, "signature", blob, sizeof(blob), &len, reason) != 0)
		return -1;
	if (sshkey_sig_decode(blob, len, m->sig) != 0) {
		say(reason, "signature: not an Ed25519 signature blob");
		return -1;
	}
	return 0;
}

static int
parse_response(json_t *o, struct usp_msg *m, char *reason)
{
	if (decode_b64(o, "response", m->response, sizeof(m->response), &m->response_len, reason) !=
	    0)
		return -1;
	/* PAM takes the answer as a C string: a NUL would cut it short unseen. */
	if (memchr(m->response, '\0', m->response_len) != NULL) {
		say(reason, "response: NUL byte in the answer");
		return -1;
	}
	return 0;
}

static int
parse_token(json_t *o, struct usp_msg *m, char *reason)
{
	const char *token = string_of(o, "token");

	if (!token_shaped(token)) {
		say(reason, "token: invalid token");
		return -1;
	}
	if ((m->tokens[0] = token_copy(token, reason)) == NULL)
		return -1;
	m->ntokens = 1;
	return 0;
}

static int
parse_proveauth(json_t *o, struct usp_msg *m, char *reason)
{
	uint8_t hash[PROOF_HASH_LEN];
	const char *hex = string_of(o, "hash");

	if (proof_hash_parse(hex, hash) != 0) {
		say(reason, "hash: expected %d lowercase hex digits", PROOF_HASH_HEX);
		return -1;
	}
	str_copy(m->hash, hex, sizeof(m->hash));
	return 0;
}

/* --- the email's forms (section 8.7) ------------------------------------------- */

/* authorization_token: null, of the form fived issues, or any other string. */
static void
parse_authz(json_t *o, struct usp_msg *m)
{
	const char *t = string_of(o, "authorization_token");
	size_t i;

	m->authz_kind = t == NULL ? USP_AUTHZ_NULL : USP_AUTHZ_OTHER;
	if (t == NULL || strlen(t) != USP_AUTHZ_HEX)
		return;
	for (i = 0; i < USP_AUTHZ_HEX; i++)
		if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
			return;
	str_copy(m->authz, t, sizeof(m->authz));
	m->authz_kind = USP_AUTHZ_GIVEN;
}

static int
parse_session_request(json_t *o, struct usp_msg *m, char *reason)
{
	json_t *app = json_object_get(o, "application_session");
	const char *action, *token;

	parse_authz(o, m);
	if (json_is_null(app))
		return 0;
	if (check_members(app, application_session_members, ARRAY_LEN(application_session_members),
	                  NULL, "application_session: ", reason) != 0)
		return -1;
	action = string_of(app, "action");
	if (strcmp(action, "begin") == 0) {
		m->action = USP_ACTION_BEGIN;
	} else if (strcmp(action, "end") == 0) {
		m->action = USP_ACTION_END;
	} else {
		say(reason, "application_session: action: expected \"begin\" or \"end\"");
		return -1;
	}
	if ((token = string_of(app, "token")) == NULL || !token_shaped(token)) {
		say(reason, "application_session: token: expected a token");
		return -1;
	}
	if ((m->tokens[0] = token_copy(token, reason)) == NULL)
		return -1;
	m->ntokens = 1;
	return 0;
}

/* A menu index as the email writes it: "0", or 1 to USP_INDEX_MAX without a leading zero. */
static int
parse_index(const char *key, uint32_t *index)
{
	size_t i, n = strlen(key);
	uint32_t v = 0;

	if (n == 0 || n > USP_INDEX_DIGITS || (n > 1 && key[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (key[i] < '0' || key[i] > '9')
			return -1;
		v = v * 10 + (uint32_t)(key[i] - '0');
	}
	*index = v;
	return 0;
}

/* Index 0 as an object: the authentication method the client chose from the menu. */
static int
parse_auth_request(json_t *v, struct usp_msg *m, char *reason)
{
	enum auth_method method;
	const char *name;

	if (check_members(v, auth_request_members, ARRAY_LEN(auth_request_members), NULL,
	                  "requested_services: 0: ", reason) != 0)
		return -1;
	name = string_of(v, "auth_method");
	if (!protocol_name_valid(name)) {
		say(reason, "requested_services: 0: auth_method: invalid protocol name");
		return -1;
	}
	m->authenticate = true;
	m->offered_protocols = true;
	if (auth_method_from_name(name, &method) == 0 && method != AUTH_NONE)
		m->protocols[m->nprotocols++] = method;
	return 0;
}

/* Index 0: authentication (an object) or the invalidation of tokens (an array). */
static int
parse_index_zero(json_t *v, struct usp_msg *m, char *reason)
{
	if (json_is_array(v)) {
		m->invalidate = true;
		return parse_token_list(v, m, "requested_services: 0", reason);
	}
	if (json_is_object(v))
		return parse_auth_request(v, m, reason);
	say(reason, "requested_services: 0: expected an object or an array");
	return -1;
}

static int
parse_service_request(json_t *o, struct usp_msg *m, char *reason)
{
	json_t *services = json_object_get(o, "requested_services"), *v;
	char q[QUOTE_SIZE];
	const char *key;
	uint32_t index;

	parse_authz(o, m);
	if (json_object_size(services) == 0) {
		say(reason, "requested_services: expected at least one index");
		return -1;
	}
	json_object_foreach(services, key, v)
	{
		if (parse_index(key, &index) != 0) {
			quote(key, q);
			say(reason, "requested_services: \"%s\" is not an index", q);
			return -1;
		}
		if (index == 0) {
			if (parse_index_zero(v, m, reason) != 0)
				return -1;
			continue;
		}
		if (m->nservices == USP_STREAMS_MAX) {
			say(reason, "requested_services: at most %d applications", USP_STREAMS_MAX);
			return -1;
		}
		/* fived's applications take no request fields: their expected_request_body is {}.
		 */
		if (!json_is_object(v) || json_object_size(v) != 0) {
			say(reason, "requested_services: %u: expected {}", (unsigned)index);
			return -1;
		}
		m->services[m->nservices++] = index;
	}
	return 0;
}

/* vhost and client_session_id, wherever the message's members allow them. */
static int
parse_common(json_t *o, struct usp_msg *m, char *reason)
{
	const char *vhost = string_of(o, "vhost");
	const char *id = string_of(o, "client_session_id");

	if (vhost != NULL) {
		if (!vhost_name_valid(vhost)) {
			say(reason, "vhost: invalid name");
			return -1;
		}
		str_copy(m->vhost, vhost, sizeof(m->vhost));
		str_lower(m->vhost);
	}
	if (id != NULL) {
		if (!session_id_valid(id)) {
			say(reason, "client_session_id: invalid");
			return -1;
		}
		str_copy(m->client_session_id, id, sizeof(m->client_session_id));
	}
	return 0;
}

/* The client's messages; parse is NULL when the common members are all there is. */
static const struct message {
	const char *name;
	enum usp_type type;
	const struct member *members;
	size_t nmembers;
	int (*parse)(json_t *o, struct usp_msg *m, char *reason);
} messages[] = {
        {"initialize", USP_INITIALIZE, initialize_members, ARRAY_LEN(initialize_members),
         parse_initialize},
        {"menu", USP_MENU, menu_members, ARRAY_LEN(menu_members), NULL},
        {"invalidate", USP_INVALIDATE, invalidate_members, ARRAY_LEN(invalidate_members),
         parse_invalidate},
        {"pubkey", USP_PUBKEY, pubkey_members, ARRAY_LEN(pubkey_members), parse_pubkey},
        {"signature", USP_SIGNATURE, signature_members, ARRAY_LEN(signature_members),
         parse_signature},
        {"password", USP_PASSWORD, password_members, ARRAY_LEN(password_members), parse_user},
        {"response", USP_RESPONSE, response_members, ARRAY_LEN(response_members), parse_response},
        {"token", USP_TOKEN, token_members, ARRAY_LEN(token_members), parse_token},
        {"proveauth", USP_PROVEAUTH, proveauth_members, ARRAY_LEN(proveauth_members),
         parse_proveauth},
        {"getsignkey", USP_GETSIGNKEY, getsignkey_members, ARRAY_LEN(getsignkey_members), NULL},
};

/* The email's forms, which have no "message": each is told by the member named here. */
static const struct message email_forms[] = {
        {"application_session", USP_SESSION_REQUEST, session_request_members,
         ARRAY_LEN(session_request_members), parse_session_request},
        {"requested_services", USP_SERVICE_REQUEST, service_request_members,
         ARRAY_LEN(service_request_members), parse_service_request},
};

static const struct message *
find_message(json_t *o, char *reason)
{
	json_t *v = json_object_get(o, "message");
	char q[QUOTE_SIZE];
	size_t i;

	if (v == NULL) {
		for (i = 0; i < ARRAY_LEN(email_forms); i++)
			if (json_object_get(o, email_forms[i].name) != NULL)
				return &email_forms[i];
		say(reason, "missing member \"message\"");
		return NULL;
	}
	if (!json_is_string(v)) {
		say(reason, "message: expected a string");
		return NULL;
	}
	for (i = 0; i < ARRAY_LEN(messages); i++)
		if (strcmp(json_string_value(v), messages[i].name) == 0)
			return &messages[i];
	quote(json_string_value(v), q);
	say(reason, "unknown message \"%s\"", q);
	return NULL;
}

static json_t *
load(const char *line, size_t len, char *reason)
{
	json_error_t err;
	json_t *o;

	/* Any value, so that a line that is JSON but not an object can be called that. */
	o = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
	if (o == NULL) {
		switch (json_error_code(&err)) {
		case json_error_duplicate_key:
			say(reason, "duplicate member");
			break;
		case json_error_invalid_utf8:
			say(reason, "invalid UTF-8");
			break;
		case json_error_null_character:
			say(reason, "NUL in a string");
			break;
		case json_error_numeric_overflow:
			say(reason, "number out of range");
			break;
		default:
			say(reason, "not JSON");
			break;
		}
		return NULL;
	}
	if (!json_is_object(o)) {
		say(reason, "not an object");
		json_decref(o);
		return NULL;
	}
	return o;
}

/* A message refused for another reason still names its client's session: the error echoes it. */
static void
keep_client_id(json_t *o, struct usp_msg *m)
{
	const char *id = string_of(o, "client_session_id");

	if (id != NULL && session_id_valid(id))
		str_copy(m->client_session_id, id, sizeof(m->client_session_id));
}

int
usp_decode(const char *line, size_t len, struct usp_msg *m, char reason[USP_REASON_MAX])
{
	const struct message *msg;
	json_t *o = NULL;
	int r = -1;

	memset(m, 0, sizeof(*m));
	reason[0] = '\0';
	if (precheck(line, len, reason) != 0 || (o = load(line, len, reason)) == NULL)
		goto out;
	if ((msg = find_message(o, reason)) == NULL ||
	    check_members(o, msg->members, msg->nmembers, "message", "", reason) != 0)
		goto out;
	m->type = msg->type;
	if (parse_common(o, m, reason) != 0 ||
	    (msg->parse != NULL && msg->parse(o, m, reason) != 0))
		goto out;
	r = 0;
out:
	if (r != 0)
		usp_msg_free(m);
	if (r != 0 && o != NULL)
		keep_client_id(o, m);
	json_decref(o);
	return r;
}

/* Tokens are bearer credentials: wiped like any other. */
static void
free_token(char *t)
{
	if (t == NULL)
		return;
	sodium_memzero(t, strlen(t));
	free(t);
}

void
usp_msg_free(struct usp_msg *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < USP_STREAMS_MAX; i++) {
		free_token(m->streams[i].token);
		free(m->streams[i].parameters);
	}
	for (i = 0; i < USP_TOKENS_MAX; i++)
		free_token(m->tokens[i]);
	sodium_memzero(m, sizeof(*m));
}

/* --- encoders ------------------------------------------------------------- */

static bool
protocol_valid(enum auth_method p)
{
	return p > AUTH_NONE && p < AUTH_METHOD_COUNT;
}

/* Sets o[name] to v, taking v's reference; -1 (v released) when v is NULL or memory runs out. */
static int
set(json_t *o, const char *name, json_t *v)
{
	return json_object_set_new(o, name, v);
}

static json_t *
start(const char *message)
{
	json_t *o = json_object();

	if (o != NULL && set(o, "message", json_string(message)) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/*
 * The session ids, then the line: consumes o in every case.  set_failed is
 * whether setting the message's own members failed, which fails here.
 */
static int
finish(json_t *o, bool set_failed, const struct usp_ids *ids, char **out, size_t *len)
{
	char *buf = NULL;
	size_t n;
	int r = -1;

	if (set_failed || !server_id_valid(ids->server) ||
	    (ids->client[0] != '\0' && !session_id_valid(ids->client)))
		goto out;
	if (set(o, "server_session_id", json_string(ids->server)) != 0 ||
	    (ids->client[0] != '\0' && set(o, "client_session_id", json_string(ids->client)) != 0))
		goto out;
	/* The LF must fit within the line limit too. */
	if ((n = json_dumpb(o, NULL, 0, DUMP_FLAGS)) == 0 || n >= USP_LINE_MAX)
		goto out;
	if ((buf = malloc(n + 2)) == NULL || json_dumpb(o, buf, n, DUMP_FLAGS) != n)
		goto out;
	buf[n] = '\n';
	buf[n + 1] = '\0';
	*out = buf;
	*len = n + 1;
	buf = NULL;
	r = 0;
out:
	free(buf);
	json_decref(o);
	return r;
}

/* Every encoder starts with its outputs cleared, so a failure leaves *out NULL. */
static void
clear(char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
}

int
usp_encode_authenticate(const struct usp_ids *ids, enum auth_method protocol, char **out,
                        size_t *len)
{
	json_t *o;

	clear(out, len);
	if (!protocol_valid(protocol) || (o = start("authenticate")) == NULL)
		return -1;
	return finish(o, set(o, "protocol", json_string(auth_method_name(protocol))) != 0, ids, out,
	              len);
}

int
usp_encode_challenge(const struct usp_ids *ids, const char *session,
                     const uint8_t nonce[AUTH_NONCE_LEN], char **out, size_t *len)
{
	char b64[NONCE_B64_SIZE];
	json_t *o;
	bool failed;

	clear(out, len);
	if (!server_id_valid(session) || (o = start("challenge")) == NULL)
		return -1;
	sodium_bin2base64(b64, sizeof(b64), nonce, AUTH_NONCE_LEN, B64);
	failed = set(o, "session", json_string(session)) != 0 ||
	         set(o, "nonce", json_string(b64)) != 0;
	return finish(o, failed, ids, out, len);
}

int
usp_encode_prompt(const struct usp_ids *ids, enum usp_prompt_kind kind, const char *text,
                  char **out, size_t *len)
{
	json_t *o;
	bool failed;

	clear(out, len);
	if ((unsigned)kind >= ARRAY_LEN(prompt_kinds) || (o = start("prompt")) == NULL)
		return -1;
	failed = set(o, "kind", json_string(prompt_kinds[kind])) != 0 ||
	         set(o, "text", json_string(text)) != 0;
	return finish(o, failed, ids, out, len);
}

static json_t *
token_result(const struct usp_token_result *s)
{
	json_t *e;

	if (!name_valid(s->application) || (s->token == NULL) == (s->error == NULL))
		return NULL;
	if (s->token != NULL ? !token_shaped(s->token) : s->error[0] == '\0')
		return NULL;
	if ((e = json_object()) == NULL)
		return NULL;
	if (set(e, "application", json_string(s->application)) != 0 ||
	    (s->token != NULL ? set(e, "token", json_string(s->token))
	                      : set(e, "error", json_string(s->error))) != 0) {
		json_decref(e);
		return NULL;
	}
	return e;
}

int
usp_encode_token(const struct usp_ids *ids, const char *identity,
                 const struct usp_token_result *streams, size_t n, char **out, size_t *len)
{
	json_t *o, *a;
	bool failed;
	size_t i;

	clear(out, len);
	if (n < 1 || n > USP_STREAMS_MAX || (identity != NULL && !auth_identity_valid(identity)))
		return -1;
	if ((o = start("token")) == NULL)
		return -1;
	failed = (identity != NULL && set(o, "identity", json_string(identity)) != 0) ||
	         set(o, "streams", a = json_array()) != 0;
	for (i = 0; i < n && !failed; i++)
		failed = json_array_append_new(a, token_result(&streams[i])) != 0;
	return finish(o, failed, ids, out, len);
}

int
usp_encode_connect(const struct usp_ids *ids, const char *application, char **out, size_t *len)
{
	json_t *o;

	clear(out, len);
	if (!name_valid(application) || (o = start("connect")) == NULL)
		return -1;
	return finish(o, set(o, "application", json_string(application)) != 0, ids, out, len);
}

int
usp_encode_redirect(const struct usp_ids *ids, const char *application, const struct redirect *r,
                    char **out, size_t *len)
{
	json_t *o;
	bool failed;

	clear(out, len);
	if (!name_valid(application) || !redirect_host_valid(r->host) || r->port == 0 ||
	    !name_valid(r->service) || (o = start("redirect")) == NULL)
		return -1;
	failed = set(o, "application", json_string(application)) != 0 ||
	         set(o, "host", json_string(r->host)) != 0 ||
	         set(o, "port", json_integer(r->port)) != 0 ||
	         set(o, "target_application", json_string(r->service)) != 0;
	return finish(o, failed, ids, out, len);
}

int
usp_encode_multiplex(const struct usp_ids *ids, char **out, size_t *len)
{
	json_t *o;

	clear(out, len);
	if ((o = start("multiplex")) == NULL)
		return -1;
	return finish(o, false, ids, out, len);
}

/* An application and what it requires, its name under key: "application", or the email's "name". */
static json_t *
menu_entry(const struct usp_menu_entry *app, const char *key)
{
	json_t *e, *requires;

	if (!name_valid(app->application) || (e = json_object()) == NULL)
		return NULL;
	if (set(e, key, json_string(app->application)) != 0 ||
	    set(e, "requires", requires = json_array()) != 0 ||
	    (app->needs_authentication &&
	     json_array_append_new(requires, json_string("authentication")) != 0) ||
	    (app->needs_encryption &&
	     json_array_append_new(requires, json_string("encryption")) != 0)) {
		json_decref(e);
		return NULL;
	}
	return e;
}

int
usp_encode_menu(const struct usp_ids *ids, const struct usp_menu_entry *apps, size_t n, char **out,
                size_t *len)
{
	json_t *o, *a;
	bool failed;
	size_t i;

	clear(out, len);
	if ((o = start("menu")) == NULL)
		return -1;
	failed = set(o, "applications", a = json_array()) != 0;
	for (i = 0; i < n && !failed; i++)
		failed = json_array_append_new(a, menu_entry(&apps[i], "application")) != 0;
	return finish(o, failed, ids, out, len);
}

/* --- the email's forms (section 8.7) --- */

/* Index 0 before authentication: each method with the body that asks for it. */
static json_t *
auth_methods_entry(const enum auth_method *methods, size_t n)
{
	json_t *a = json_array(), *e;
	size_t i;

	for (i = 0; i < n && a != NULL; i++) {
		e = protocol_valid(methods[i])
		            ? json_pack("{s:s,s:{s:s}}", "auth_method",
		                        auth_method_name(methods[i]), "expected_request_body",
		                        "auth_method", "")
		            : NULL;
		/* json_array_append_new takes e, and releases it when it fails. */
		if (e == NULL || json_array_append_new(a, e) != 0) {
			json_decref(a);
			a = NULL;
		}
	}
	return a;
}

/* Index 0 once authenticated: the tokens to give up, as an array. */
static json_t *
invalidation_entry(void)
{
	return json_pack("{s:s,s:[s]}", "name", "token invalidation", "expected_request_body", "");
}

static json_t *
app_entry(const struct usp_menu_entry *app)
{
	json_t *e = menu_entry(app, "name");

	/* fived's applications take no request fields: the body is always empty. */
	if (e != NULL && set(e, "expected_request_body", json_object()) != 0) {
		json_decref(e);
		return NULL;
	}
	return e;
}

static int
set_index(json_t *o, uint32_t index, json_t *v)
{
	char key[USP_INDEX_DIGITS + 1];

	if (index > USP_INDEX_MAX) {
		json_decref(v);
		return -1;
	}
	snprintf(key, sizeof(key), "%u", (unsigned)index);
	return set(o, key, v);
}

static json_t *
app_menu(const struct usp_app_menu *menu)
{
	json_t *o = json_object();
	size_t i;

	if (o == NULL)
		return NULL;
	if (set_index(o, 0,
	              menu->authenticated ? invalidation_entry()
	                                  : auth_methods_entry(menu->methods, menu->nmethods)) != 0)
		goto fail;
	for (i = 0; i < menu->napps; i++)
		if (set_index(o, (uint32_t)(i + 1), app_entry(&menu->apps[i])) != 0)
			goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

int
usp_encode_app_menu(const struct usp_ids *ids, const struct usp_app_menu *menu, char **out,
                    size_t *len)
{
	json_t *o;

	clear(out, len);
	if ((o = json_object()) == NULL)
		return -1;
	return finish(o, set(o, "application_menu", app_menu(menu)) != 0, ids, out, len);
}

static json_t *
service_result(const struct usp_service_result *r)
{
	if (r->index == 0 || (r->token == NULL) == (r->error == NULL))
		return NULL;
	if (r->token != NULL)
		return token_shaped(r->token) ? json_pack("{s:s}", "token", r->token) : NULL;
	return r->error[0] != '\0' ? json_pack("{s:{s:s}}", "error", "message", r->error) : NULL;
}

int
usp_encode_service_answer(const struct usp_ids *ids, const struct usp_service_answer *a, char **out,
                          size_t *len)
{
	json_t *o;
	bool failed = false;
	size_t i;

	clear(out, len);
	if (a->authz != NULL && strlen(a->authz) != USP_AUTHZ_HEX)
		return -1;
	if ((o = json_object()) == NULL)
		return -1;
	if (a->authz != NULL)
		failed = set(o, "authorization_token", json_string(a->authz)) != 0;
	if (a->menu != NULL && !failed)
		failed = set(o, "application_menu", app_menu(a->menu)) != 0;
	if (a->invalidated && !failed)
		failed = a->count > USP_TOKENS_MAX ||
		         set_index(o, 0, json_pack("{s:I}", "invalidated", (json_int_t)a->count)) !=
		                 0;
	for (i = 0; i < a->nresults && !failed; i++)
		failed = set_index(o, a->results[i].index, service_result(&a->results[i])) != 0;
	return finish(o, failed, ids, out, len);
}

int
usp_encode_invalidated(const struct usp_ids *ids, size_t count, char **out, size_t *len)
{
	json_t *o;

	clear(out, len);
	/* One invalidate names at most USP_TOKENS_MAX tokens: more is a caller's bug. */
	if (count > USP_TOKENS_MAX || (o = start("invalidated")) == NULL)
		return -1;
	return finish(o, set(o, "count", json_integer((json_int_t)count)) != 0, ids, out, len);
}

int
usp_encode_proof(const struct usp_ids *ids, const char *proof, char **out, size_t *len)
{
	json_t *o;

	clear(out, len);
	if (strlen(proof) > PROOF_MAX ||
	    strncmp(proof, PUBLIC_HEADER, strlen(PUBLIC_HEADER)) != 0 || !token_shaped(proof) ||
	    (o = start("proof")) == NULL)
		return -1;
	return finish(o, set(o, "proof", json_string(proof)) != 0, ids, out, len);
}

int
usp_encode_signkey(const struct usp_ids *ids, const char *key, const char *provider, char **out,
                   size_t *len)
{
	uint8_t pk[TOKEN_PK_LEN];
	json_t *o;
	bool failed;

	clear(out, len);
	if (proof_key_parse(key, pk) != 0 || !proof_provider_valid(provider) ||
	    (o = start("signkey")) == NULL)
		return -1;
	failed = set(o, "key", json_string(key)) != 0 ||
	         set(o, "provider", json_string(provider)) != 0;
	return finish(o, failed, ids, out, len);
}

static json_t *
protocol_list(const enum auth_method *p, size_t n)
{
	json_t *a;
	size_t i;

	if (n > USP_PROTOCOLS_MAX || (a = json_array()) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (!protocol_valid(p[i]) ||
		    json_array_append_new(a, json_string(auth_method_name(p[i]))) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

int
usp_encode_error(const struct usp_ids *ids, const char *error, const char *application,
                 const enum auth_method *supported, size_t nsupported, char **out, size_t *len)
{
	json_t *o;
	bool failed;

	clear(out, len);
	if (error[0] == '\0' || (application != NULL && !name_valid(application)))
		return -1;
	if ((o = start("error")) == NULL)
		return -1;
	failed = set(o, "error", json_string(error)) != 0 ||
	         (application != NULL && set(o, "application", json_string(application)) != 0) ||
	         (supported != NULL &&
	          set(o, "supported", protocol_list(supported, nsupported)) != 0);
	return finish(o, failed, ids, out, len);
}

/* --- parameters (section 8.8) ---------------------------------------------- */

#define PARAMS_DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)

static const char *const type_names[] = {
        [PARAM_STRING] = "string",   [PARAM_INTEGER] = "integer", [PARAM_NUMBER] = "number",
        [PARAM_BOOLEAN] = "boolean", [PARAM_JSON] = "json",
};

static bool
name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= PARAMS_NAME_MAX && !(s[0] >= '0' && s[0] <= '9') &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

int
params_spec_add(struct params_spec *spec, const char *word, const char **why)
{
	const char *colon = strchr(word, ':');
	char name[PARAMS_NAME_MAX + 2];
	size_t i;

	*why = "expected NAME:TYPE, TYPE string, integer, number, boolean or json";
	if (colon == NULL || (size_t)(colon - word) >= sizeof(name))
		return -1;
	memcpy(name, word, (size_t)(colon - word));
	name[colon - word] = '\0';
	if (!name_ok(name)) {
		*why = "a parameter's name is [a-z_][a-z0-9_]*, at most 32 characters";
		return -1;
	}
	for (i = 0; i < spec->n; i++) {
		if (strcmp(spec->keys[i].name, name) == 0) {
			*why = "a parameter named twice";
			return -1;
		}
	}
	if (spec->n == PARAMS_KEYS_MAX) {
		*why = "more than 16 parameters";
		return -1;
	}
	for (i = 0; i < ARRAY_LEN(type_names); i++) {
		if (strcmp(colon + 1, type_names[i]) == 0) {
			str_copy(spec->keys[spec->n].name, name, sizeof(spec->keys[0].name));
			spec->keys[spec->n].type = (enum params_type)i;
			spec->n++;
			return 0;
		}
	}
	return -1;
}

/* Whether v nests at most PARAMS_DEPTH_MAX - level more levels; stops one past the limit. */
static bool
depth_ok(const json_t *v, unsigned level)
{
	const char *key;
	json_t *e;
	size_t i;

	if (!json_is_object(v) && !json_is_array(v))
		return true;
	if (level > PARAMS_DEPTH_MAX)
		return false;
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
		{
			if (!depth_ok(e, level + 1))
				return false;
		}
		return true;
	}
	json_object_foreach((json_t *)v, key, e)
	{
		if (!depth_ok(e, level + 1))
			return false;
	}
	return true;
}

enum params_status
params_shape(const json_t *v, char out[PARAMS_BYTES_MAX + 1])
{
	const char *key;
	json_t *e;
	size_t n;

	out[0] = '\0';
	if (!json_is_object(v))
		return PARAMS_NOT_OBJECT;
	if (!depth_ok(v, 1))
		return PARAMS_TOO_DEEP;
	json_object_foreach((json_t *)v, key, e)
	{
		if (!name_ok(key))
			return PARAMS_BAD_NAME;
	}
	n = json_dumpb(v, out, PARAMS_BYTES_MAX, PARAMS_DUMP_FLAGS);
	if (n == 0)
		return PARAMS_NO_MEMORY;
	if (n > PARAMS_BYTES_MAX) {
		out[0] = '\0';
		return PARAMS_TOO_LARGE;
	}
	out[n] = '\0';
	if (memchr(out, 0x7f, n) != NULL) {
		out[0] = '\0';
		return PARAMS_BAD_TEXT;
	}
	return PARAMS_OK;
}

static bool
type_ok(const json_t *v, enum params_type t)
{
	switch (t) {
	case PARAM_STRING:
		return json_is_string(v);
	case PARAM_INTEGER:
		return json_is_integer(v);
	case PARAM_NUMBER:
		return json_is_number(v);
	case PARAM_BOOLEAN:
		return json_is_boolean(v);
	case PARAM_JSON:
		return true;
	}
	return false;
}

/* Each name of o accepted by spec, with a value of its type. */
static enum params_status
against(const json_t *o, const struct params_spec *spec, char name[PARAMS_NAME_MAX + 1])
{
	const char *key;
	json_t *e;
	size_t i;

	json_object_foreach((json_t *)o, key, e)
	{
		str_copy(name, key, PARAMS_NAME_MAX + 1);
		for (i = 0; i < spec->n && strcmp(spec->keys[i].name, key) != 0; i++)
			;
		if (i == spec->n)
			return PARAMS_UNKNOWN;
		if (!type_ok(e, spec->keys[i].type))
			return PARAMS_WRONG_TYPE;
	}
	name[0] = '\0';
	return PARAMS_OK;
}

enum params_status
params_check(const char *text, size_t len, const struct params_spec *spec,
             char name[PARAMS_NAME_MAX + 1])
{
	char shaped[PARAMS_BYTES_MAX + 1];
	enum params_status st;
	json_t *o;

	name[0] = '\0';
	/* The text is taken as params_shape writes it: longer is too large, whatever its blanks. */
	if (len > PARAMS_BYTES_MAX)
		return PARAMS_TOO_LARGE;
	if ((o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return PARAMS_NOT_OBJECT;
	st = params_shape(o, shaped);
	if (st == PARAMS_OK)
		st = against(o, spec, name);
	json_decref(o);
	return st;
}

const char *
params_status_text(enum params_status status)
{
	switch (status) {
	case PARAMS_OK:
		return "";
	case PARAMS_NOT_OBJECT:
		return "parameters: expected an object";
	case PARAMS_TOO_LARGE:
		return "parameters too large";
	case PARAMS_TOO_DEEP:
		return "parameters too deep";
	case PARAMS_BAD_NAME:
		return "invalid parameter name";
	case PARAMS_BAD_TEXT:
		return "parameters: a DEL character";
	case PARAMS_UNKNOWN:
		return "parameter not accepted";
	case PARAMS_WRONG_TYPE:
		return "parameter of the wrong type";
	case PARAMS_NO_MEMORY:
		return "out of memory";
	}
	return "parameters refused";
}
