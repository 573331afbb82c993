#include "proto/control.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "proto/line.h"

#define PREFIX_LEN(p) (sizeof(p) - 1)

#define REGISTER_PREFIX "REGISTER "
#define SIGN_AND_SPACE  2 /* "+ " or "- " before a reply's text */
#define REPLY_TEXT_MAX  (CONTROL_MESSAGE_MAX - SIGN_AND_SPACE - 1)

#define STREAM_PREFIX     "STREAM "
#define STREAM_JSON_FIRST '{'
#define STREAM_JSON_LAST  '}'
#define STREAM_MEMBERS    8 /* without those REGISTER's words ask for */
#define WORD_CHARS        "abcdefghijklmnopqrstuvwxyz0123456789_-"
#define REMOTE_PORT_MAX   65535
#define AUTH_METHOD_NONE  "none"
#define IDENTITY_EXTRA    "._@-" /* beside letters and digits */

static const char *const auth_methods[] = {
        AUTH_METHOD_NONE, "pubkey", "password", "token", "external",
};

static const char *const transports[] = {"plain", "sealed", "tls"};

/* REGISTER's words fived knows, and the bit of each. */
static const struct {
	const char *word;
	unsigned bit;
} known_words[] = {
        {CONTROL_WORD_TRANSPORT, CONTROL_WANTS_TRANSPORT},
        {CONTROL_WORD_STREAM, CONTROL_WANTS_STREAM},
};

static bool
printable(unsigned char c)
{
	return c >= 0x20 && c <= 0x7e;
}

/*
 * One line of at most CONTROL_MESSAGE_MAX bytes ending in its only "\n",
 * without NUL or other control characters.  Bytes above 0x7e pass here:
 * STREAM's JSON parser checks that they are UTF-8, and the other messages
 * allow printable ASCII only.
 */
static bool
framed(const char *msg, size_t len)
{
	size_t i;

	if (len == 0 || len > CONTROL_MESSAGE_MAX || msg[len - 1] != '\n')
		return false;
	for (i = 0; i < len - 1; i++) {
		unsigned char c = (unsigned char)msg[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static bool
all_printable(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!printable((unsigned char)p[i]))
			return false;
	return true;
}

/* Whether p[0..n) is a service name; p need not be NUL-terminated. */
static bool
name_valid_n(const char *p, size_t n)
{
	char name[NAME_MAX_LEN + 1];

	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	memcpy(name, p, n);
	name[n] = '\0';
	return name_valid(name);
}

/* A reply's text: "registered <service>" after '+', any printable reason after '-'. */
static bool
reply_text_valid(bool ok, const char *text, size_t n)
{
	if (n == 0 || n > REPLY_TEXT_MAX || !all_printable(text, n))
		return false;
	if (!ok)
		return true;
	return n > PREFIX_LEN(CONTROL_REGISTERED) &&
	       memcmp(text, CONTROL_REGISTERED, PREFIX_LEN(CONTROL_REGISTERED)) == 0 &&
	       name_valid_n(text + PREFIX_LEN(CONTROL_REGISTERED),
	                    n - PREFIX_LEN(CONTROL_REGISTERED));
}

/* snprintf's result checked against both the buffer and the message bound. */
static int
finish(int n, size_t size, size_t *len)
{
	if (n < 0 || (size_t)n >= size || (size_t)n > CONTROL_MESSAGE_MAX)
		return -1;
	*len = (size_t)n;
	return 0;
}

int
control_register_encode(const char *service, unsigned wants, char *out, size_t size, size_t *len)
{
	char words[CONTROL_MESSAGE_MAX] = "";
	size_t i, n = 0;

	if (!name_valid(service))
		return -1;
	for (i = 0; i < ARRAY_LEN(known_words); i++) {
		if ((wants & known_words[i].bit) == 0)
			continue;
		wants &= ~known_words[i].bit;
		n += (size_t)snprintf(words + n, sizeof(words) - n, " %s", known_words[i].word);
	}
	if (wants != 0)
		return -1;
	return finish(snprintf(out, size, REGISTER_PREFIX "%s%s\n", service, words), size, len);
}

/* The bit of REGISTER's word p[0..n) (0 for one fived does not know), or -1 for no word. */
static long
word_bit(const char *p, size_t n)
{
	size_t i;

	if (n == 0 || n > CONTROL_WORD_MAX)
		return -1;
	for (i = 0; i < n; i++)
		if (strchr(WORD_CHARS, p[i]) == NULL)
			return -1;
	for (i = 0; i < ARRAY_LEN(known_words); i++)
		if (strlen(known_words[i].word) == n && memcmp(p, known_words[i].word, n) == 0)
			return (long)known_words[i].bit;
	return 0;
}

/* The words after the service, p[0..n): each a space and a word.  0, or -1. */
static int
register_words(const char *p, size_t n, unsigned *wants)
{
	const char *end = p + n, *word, *space;
	long bit;

	while (p < end) {
		if (*p != ' ')
			return -1;
		word = p + 1;
		space = memchr(word, ' ', (size_t)(end - word));
		p = space != NULL ? space : end;
		if ((bit = word_bit(word, (size_t)(p - word))) < 0)
			return -1;
		*wants |= (unsigned)bit;
	}
	return 0;
}

int
control_register_decode(const char *msg, size_t len, char service[NAME_MAX_LEN + 1],
                        unsigned *wants)
{
	const size_t skip = PREFIX_LEN(REGISTER_PREFIX);
	const char *name = msg + skip, *space;
	size_t n;

	memset(service, 0, NAME_MAX_LEN + 1);
	*wants = 0;
	if (!framed(msg, len) || !all_printable(msg, len - 1))
		return -1;
	if (len - 1 <= skip || memcmp(msg, REGISTER_PREFIX, skip) != 0)
		return -1;
	/* The name ends at the first space, which no name contains; words may follow. */
	space = memchr(name, ' ', len - 1 - skip);
	n = space != NULL ? (size_t)(space - name) : len - 1 - skip;
	if (!name_valid_n(name, n) || register_words(name + n, len - 1 - skip - n, wants) != 0) {
		*wants = 0;
		return -1;
	}
	memcpy(service, name, n);
	str_lower(service);
	return 0;
}

int
control_reply_encode(bool ok, const char *text, char *out, size_t size, size_t *len)
{
	if (!reply_text_valid(ok, text, strlen(text)))
		return -1;
	return finish(snprintf(out, size, "%c %s\n", ok ? '+' : '-', text), size, len);
}

int
control_reply_decode(const char *msg, size_t len, bool *ok, char *text, size_t size)
{
	size_t n;

	*ok = false;
	if (size > 0)
		text[0] = '\0';
	if (!framed(msg, len) || len < SIGN_AND_SPACE + 1)
		return -1;
	if ((msg[0] != '+' && msg[0] != '-') || msg[1] != ' ')
		return -1;
	n = len - SIGN_AND_SPACE - 1;
	if (!reply_text_valid(msg[0] == '+', msg + SIGN_AND_SPACE, n) || n >= size)
		return -1;
	memcpy(text, msg + SIGN_AND_SPACE, n);
	text[n] = '\0';
	*ok = msg[0] == '+';
	return 0;
}

/* Whether the array a of size bytes holds a NUL, so that string functions stay inside it. */
static bool
terminated(const char *a, size_t size)
{
	return memchr(a, '\0', size) != NULL;
}

static bool
session_valid(const char *s)
{
	size_t i;

	for (i = 0; i < CONTROL_SESSION_HEX; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[CONTROL_SESSION_HEX] == '\0';
}

static bool
identity_valid(const char *s)
{
	size_t n = strlen(s);
	size_t i;

	if (n == 0 || n > CONTROL_IDENTITY_MAX)
		return false;
	for (i = 0; i < n; i++) {
		bool alnum = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
		             (s[i] >= 'A' && s[i] <= 'Z');
		if (!alnum && strchr(IDENTITY_EXTRA, s[i]) == NULL)
			return false;
	}
	return true;
}

static bool
auth_method_valid(const char *s)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(auth_methods); i++)
		if (strcmp(s, auth_methods[i]) == 0)
			return true;
	return false;
}

static bool
transport_valid(const char *s)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(transports); i++)
		if (strcmp(s, transports[i]) == 0)
			return true;
	return s[0] == '\0';
}

static bool
remote_addr_valid(const char *s)
{
	unsigned char bytes[sizeof(struct in6_addr)];

	return s[0] == '\0' || inet_pton(AF_INET, s, bytes) == 1 ||
	       inet_pton(AF_INET6, s, bytes) == 1;
}

/* Every rule of the protocol, the agreement between members included. */
static bool
stream_valid(const struct control_stream *s)
{
	bool authenticated;

	if (!terminated(s->session, sizeof(s->session)) ||
	    !terminated(s->service, sizeof(s->service)) ||
	    !terminated(s->vhost, sizeof(s->vhost)) ||
	    !terminated(s->identity, sizeof(s->identity)) ||
	    !terminated(s->auth_method, sizeof(s->auth_method)) ||
	    !terminated(s->remote_addr, sizeof(s->remote_addr)) ||
	    !terminated(s->transport, sizeof(s->transport)))
		return false;
	if (!session_valid(s->session) || !name_valid(s->service) ||
	    (s->vhost[0] != '\0' && !vhost_name_valid(s->vhost)) ||
	    !auth_method_valid(s->auth_method) || !remote_addr_valid(s->remote_addr) ||
	    !transport_valid(s->transport))
		return false;
	if (s->has_identity ? !identity_valid(s->identity) : s->identity[0] != '\0')
		return false;
	authenticated = strcmp(s->auth_method, AUTH_METHOD_NONE) != 0;
	if (s->withheld && !authenticated)
		return false;
	return s->has_identity == (authenticated && !s->withheld);
}

int
control_stream_encode(const struct control_stream *s, char *out, size_t size, size_t *len)
{
	char json[CONTROL_MESSAGE_MAX];
	json_t *o = NULL;
	size_t n;
	int r = -1;

	if (!stream_valid(s))
		goto out;
	o = json_pack("{s:s, s:s, s:s, s:s?, s:s, s:b, s:s, s:i}", "session", s->session, "service",
	              s->service, "vhost", s->vhost, "identity",
	              s->has_identity ? s->identity : NULL, "auth_method", s->auth_method,
	              "withheld", (int)s->withheld, "remote_addr", s->remote_addr, "remote_port",
	              (int)s->remote_port);
	if (o == NULL || (s->transport[0] != '\0' &&
	                  json_object_set_new(o, "transport", json_string(s->transport)) != 0))
		goto out;
	if (s->has_stream && json_object_set_new(o, "stream", json_integer(s->stream)) != 0)
		goto out;
	if ((n = json_dumpb(o, json, sizeof(json), JSON_COMPACT)) == 0 || n > sizeof(json))
		goto out;
	r = finish(snprintf(out, size, STREAM_PREFIX "%.*s\n", (int)n, json), size, len);
out:
	json_decref(o);
	return r;
}

/* Copies the string member key into dst; -1 unless it is a string that fits, without NUL. */
static int
get_string(const json_t *o, const char *key, char *dst, size_t size)
{
	const json_t *v = json_object_get(o, key);
	size_t n;

	if (!json_is_string(v))
		return -1;
	n = json_string_length(v);
	if (n >= size || strlen(json_string_value(v)) != n)
		return -1;
	memcpy(dst, json_string_value(v), n + 1);
	return 0;
}

/* transport and stream, when present, into t. */
static int
optional_members(const json_t *o, struct control_stream *t)
{
	const json_t *v;
	json_int_t n;

	if (json_object_get(o, "transport") != NULL &&
	    (get_string(o, "transport", t->transport, sizeof(t->transport)) != 0 ||
	     t->transport[0] == '\0'))
		return -1;
	if ((v = json_object_get(o, "stream")) == NULL)
		return 0;
	if (!json_is_integer(v) || (n = json_integer_value(v)) < 0 || n > UINT32_MAX)
		return -1;
	t->has_stream = true;
	t->stream = (uint32_t)n;
	return 0;
}

int
control_stream_decode(const char *msg, size_t len, struct control_stream *s)
{
	const size_t skip = PREFIX_LEN(STREAM_PREFIX);
	struct control_stream t;
	const json_t *v;
	json_t *o = NULL;
	json_int_t port;
	int r = -1;

	memset(s, 0, sizeof(*s));
	memset(&t, 0, sizeof(t));
	if (!framed(msg, len) || len < skip + 3 || memcmp(msg, STREAM_PREFIX, skip) != 0)
		goto out;
	/* Exactly one space, then the object and nothing else up to the "\n". */
	if (msg[skip] != STREAM_JSON_FIRST || msg[len - 2] != STREAM_JSON_LAST)
		goto out;
	o = json_loadb(msg + skip, len - skip - 1, JSON_REJECT_DUPLICATES, NULL);
	/*
	 * Duplicates are refused, so eight members that are all found are
	 * exactly these eight; beyond them, only transport and stream.
	 */
	if (!json_is_object(o) || optional_members(o, &t) != 0 ||
	    json_object_size(o) != STREAM_MEMBERS + (size_t)(t.transport[0] != '\0') + t.has_stream)
		goto out;
	if (get_string(o, "session", t.session, sizeof(t.session)) != 0 ||
	    get_string(o, "service", t.service, sizeof(t.service)) != 0 ||
	    get_string(o, "vhost", t.vhost, sizeof(t.vhost)) != 0 ||
	    get_string(o, "auth_method", t.auth_method, sizeof(t.auth_method)) != 0 ||
	    get_string(o, "remote_addr", t.remote_addr, sizeof(t.remote_addr)) != 0)
		goto out;
	v = json_object_get(o, "identity");
	if (json_is_string(v)) {
		if (get_string(o, "identity", t.identity, sizeof(t.identity)) != 0)
			goto out;
		t.has_identity = true;
	} else if (!json_is_null(v)) {
		goto out;
	}
	v = json_object_get(o, "withheld");
	if (!json_is_boolean(v))
		goto out;
	t.withheld = json_is_true(v);
	v = json_object_get(o, "remote_port");
	if (!json_is_integer(v))
		goto out;
	port = json_integer_value(v);
	if (port < 0 || port > REMOTE_PORT_MAX)
		goto out;
	t.remote_port = (uint16_t)port;
	if (!stream_valid(&t))
		goto out;
	*s = t;
	r = 0;
out:
	json_decref(o);
	return r;
}
