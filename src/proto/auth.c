#include "proto/auth.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/b64.h"
#include "common/util.h"
#include "crypto/sshkey.h"

#define B64             sodium_base64_VARIANT_ORIGINAL
#define METHOD_NAME_MAX 16
#define LINE_WORDS_MAX  4

static const char *const method_names[AUTH_METHOD_COUNT] = {
        [AUTH_NONE] = "none",   [AUTH_PUBKEY] = "pubkey",     [AUTH_PASSWORD] = "password",
        [AUTH_TOKEN] = "token", [AUTH_EXTERNAL] = "external",
};

const char *
auth_method_name(enum auth_method m)
{
	return (unsigned)m < AUTH_METHOD_COUNT ? method_names[m] : "unknown";
}

int
auth_method_from_name(const char *name, enum auth_method *m)
{
	unsigned i;

	for (i = 0; i < AUTH_METHOD_COUNT; i++) {
		if (strcmp(name, method_names[i]) == 0) {
			*m = (enum auth_method)i;
			return 0;
		}
	}
	return -1;
}

static bool
method_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

int
auth_methods_parse(const char *list, enum auth_method *out, size_t max, size_t *n)
{
	char name[METHOD_NAME_MAX + 1];
	size_t len, items = 0;
	enum auth_method m;

	*n = 0;
	for (;;) {
		for (len = 0; method_char(list[len]); len++)
			if (len == METHOD_NAME_MAX)
				return -1;
		if (len == 0 || (list[len] != ',' && list[len] != '\0') ||
		    ++items > AUTH_METHODS_MAX)
			return -1;
		memcpy(name, list, len);
		name[len] = '\0';
		if (auth_method_from_name(name, &m) == 0 && *n < max)
			out[(*n)++] = m;
		if (list[len] == '\0')
			return 0;
		list += len + 1;
	}
}

bool
auth_user_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > AUTH_USER_MAX || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("_.-", s[i]) == NULL)
			return false;
	return true;
}

bool
auth_identity_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > AUTH_IDENTITY_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("._@+-", s[i]) == NULL)
			return false;
	return true;
}

/* Splits a copy of line at single spaces. */
static int
words_of(const char *line, char *copy, size_t size, const char **w, size_t max)
{
	size_t n = 0;
	char *p;

	if (str_copy(copy, line, size) >= size)
		return -1;
	for (p = copy; n < max; n++) {
		w[n] = p;
		if ((p = strchr(p, ' ')) == NULL)
			return (int)n + 1;
		*p++ = '\0';
	}
	return -1;
}

static int
parse_user(const char **w, int n, struct auth_line *out, const char **why)
{
	uint8_t blob[SSHKEY_BLOB_MAX];
	size_t len;

	if (n != 2 && n != 4) {
		*why = "expected USER name [ssh-ed25519 key]";
		return -1;
	}
	if (!auth_user_valid(w[1])) {
		*why = "invalid user name";
		return -1;
	}
	str_copy(out->user, w[1], sizeof(out->user));
	out->kind = AUTH_LINE_USER;
	if (n == 2)
		return 0;
	if (strcmp(w[2], SSHKEY_ED25519_NAME) != 0) {
		*why = "unsupported key type";
		return -1;
	}
	if (b64_decode(w[3], strlen(w[3]), NULL, B64, blob, sizeof(blob), &len) != 0 ||
	    sshkey_blob_decode(blob, len, out->pk) != 0) {
		*why = "malformed public key";
		return -1;
	}
	out->has_key = true;
	return 0;
}

int
auth_line_parse(const char *line, struct auth_line *out, const char **why)
{
	char copy[512];
	const char *w[LINE_WORDS_MAX];
	uint8_t blob[SSHKEY_SIG_BLOB_MAX];
	size_t len;
	int n;

	memset(out, 0, sizeof(*out));
	*why = "malformed authentication line";
	if ((n = words_of(line, copy, sizeof(copy), w, LINE_WORDS_MAX)) < 0)
		return -1;
	if (strcmp(w[0], "USER") == 0)
		return parse_user(w, n, out, why);
	if (n != 2)
		return -1;
	if (strcmp(w[0], "SIGNATURE") == 0) {
		out->kind = AUTH_LINE_SIGNATURE;
		if (b64_decode(w[1], strlen(w[1]), NULL, B64, blob, sizeof(blob), &len) != 0 ||
		    sshkey_sig_decode(blob, len, out->sig) != 0) {
			*why = "malformed signature";
			return -1;
		}
		return 0;
	}
	if (strcmp(w[0], "RESPONSE") == 0) {
		out->kind = AUTH_LINE_RESPONSE;
		if (b64_decode(w[1], strlen(w[1]), NULL, B64, out->response, sizeof(out->response),
		               &out->response_len) != 0) {
			*why = "malformed response";
			return -1;
		}
		return 0;
	}
	return -1;
}

int
auth_signed_data(const struct auth_signed *in, uint8_t *out, size_t size, size_t *len)
{
	uint8_t blob[SSHKEY_BLOB_MAX];
	size_t blob_len;
	struct sshkey_writer w;

	if (strlen(in->session_id) != AUTH_SESSION_ID_LEN || strlen(in->user) > AUTH_USER_MAX ||
	    in->binding_len > AUTH_BINDING_MAX ||
	    sshkey_blob_encode(in->pk, blob, sizeof(blob), &blob_len) != 0)
		return -1;
	sshkey_writer_init(&w, out, size);
	if (sshkey_put_string(&w, AUTH_PUBKEY_CONTEXT, strlen(AUTH_PUBKEY_CONTEXT)) != 0 ||
	    sshkey_put_string(&w, in->session_id, AUTH_SESSION_ID_LEN) != 0 ||
	    sshkey_put_string(&w, in->nonce, AUTH_NONCE_LEN) != 0 ||
	    sshkey_put_string(&w, in->user, strlen(in->user)) != 0 ||
	    sshkey_put_string(&w, blob, blob_len) != 0 ||
	    sshkey_put_string(&w, in->server_key,
	                      in->server_key != NULL ? AUTH_SERVER_KEY_LEN : 0) != 0 ||
	    sshkey_put_string(&w, in->binding, in->binding != NULL ? in->binding_len : 0) != 0)
		return -1;
	*len = w.len;
	return 0;
}

/* Appends base64 of p to "prefix" and CRLF. */
static int
b64_line(const char *prefix, const uint8_t *p, size_t n, char *out, size_t size)
{
	size_t used = strlen(prefix);

	if (used + sodium_base64_ENCODED_LEN(n, B64) + 2 > size)
		return -1;
	memcpy(out, prefix, used);
	sodium_bin2base64(out + used, size - used, p, n, B64);
	used += strlen(out + used);
	memcpy(out + used, "\r\n", 3);
	return 0;
}

int
auth_user_line(const char *user, const uint8_t *pk, char *out, size_t size)
{
	uint8_t blob[SSHKEY_BLOB_MAX];
	char prefix[AUTH_USER_MAX + 32];
	size_t blob_len;
	int n;

	if (!auth_user_valid(user))
		return -1;
	if (pk == NULL) {
		n = snprintf(out, size, "USER %s\r\n", user);
		return n < 0 || (size_t)n >= size ? -1 : 0;
	}
	if (sshkey_blob_encode(pk, blob, sizeof(blob), &blob_len) != 0)
		return -1;
	snprintf(prefix, sizeof(prefix), "USER %s %s ", user, SSHKEY_ED25519_NAME);
	return b64_line(prefix, blob, blob_len, out, size);
}

int
auth_signature_line(const uint8_t sig[AUTH_SIG_LEN], char *out, size_t size)
{
	uint8_t blob[SSHKEY_SIG_BLOB_MAX];
	size_t blob_len;

	if (sshkey_sig_encode(sig, blob, sizeof(blob), &blob_len) != 0)
		return -1;
	return b64_line("SIGNATURE ", blob, blob_len, out, size);
}

int
auth_response_line(const uint8_t *answer, size_t len, char *out, size_t size)
{
	if (len > AUTH_RESPONSE_MAX)
		return -1;
	return b64_line("RESPONSE ", answer, len, out, size);
}

/* --- the PAM conversation ----------------------------------------------- */

static const struct {
	char tag;
	enum pamconv_kind kind;
} pamconv_tags[] = {
        {'P', PAMCONV_PROMPT_ECHO_OFF}, {'p', PAMCONV_PROMPT_ECHO_ON}, {'I', PAMCONV_INFO},
        {'E', PAMCONV_ERROR},           {'S', PAMCONV_SUCCESS},        {'F', PAMCONV_FAILURE},
        {'A', PAMCONV_ANSWER},
};

static bool
printable_text(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static int
pamconv_body(struct pamconv_msg *out, const char *body, size_t n)
{
	switch (out->kind) {
	case PAMCONV_FAILURE:
		return n == 0 ? 0 : -1;
	case PAMCONV_ANSWER:
		return b64_decode(body, n, NULL, B64, out->answer, sizeof(out->answer),
		                  &out->answer_len);
	case PAMCONV_SUCCESS:
		if (n == 0 || n > AUTH_IDENTITY_MAX)
			return -1;
		memcpy(out->text, body, n);
		return auth_identity_valid(out->text) ? 0 : -1;
	default:
		if (n > AUTH_PROMPT_MAX || !printable_text(body, n))
			return -1;
		memcpy(out->text, body, n);
		return 0;
	}
}

int
pamconv_parse(const char *line, size_t len, struct pamconv_msg *out)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	if (len == 0 || len >= PAMCONV_LINE_MAX || memchr(line, '\0', len) != NULL)
		return -1;
	for (i = 0; i < ARRAY_LEN(pamconv_tags); i++) {
		if (line[0] != pamconv_tags[i].tag)
			continue;
		out->kind = pamconv_tags[i].kind;
		if (len == 1)
			return pamconv_body(out, "", 0);
		if (line[1] != ' ')
			return -1;
		return pamconv_body(out, line + 2, len - 2);
	}
	return -1;
}

int
pamconv_encode(const struct pamconv_msg *m, char *out, size_t size)
{
	char text[AUTH_PROMPT_MAX + 1];
	size_t t, i, n;
	int r;

	for (t = 0; t < ARRAY_LEN(pamconv_tags); t++)
		if (pamconv_tags[t].kind == m->kind)
			break;
	if (t == ARRAY_LEN(pamconv_tags) || size < PAMCONV_LINE_MAX)
		return -1;
	if (m->kind == PAMCONV_FAILURE)
		return snprintf(out, size, "F\n");
	if (m->kind == PAMCONV_ANSWER) {
		if (m->answer_len > AUTH_RESPONSE_MAX)
			return -1;
		out[0] = 'A';
		out[1] = ' ';
		sodium_bin2base64(out + 2, size - 3, m->answer, m->answer_len, B64);
		n = strlen(out);
		out[n] = '\n';
		out[n + 1] = '\0';
		return (int)n + 1;
	}
	n = strnlen(m->text, AUTH_PROMPT_MAX);
	for (i = 0; i < n; i++)
		text[i] = printable_text(&m->text[i], 1) ? m->text[i] : '?';
	text[n] = '\0';
	r = snprintf(out, size, "%c %s\n", pamconv_tags[t].tag, text);
	return r < 0 || (size_t)r >= size ? -1 : r;
}
