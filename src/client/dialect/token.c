/*
 * Tokens, client side (docs/PROTOCOL.md section 9): obtaining one with the
 * text dialect's TOKEN command after authentication, and checking one
 * before it goes into a request.
 */
#include "client/dialect/token.h"

#include <stdio.h>
#include <string.h>

#include "client/base/error.h"
#include "client/base/options.h"
#include "client/dialect/text.h"
#include "client/transport/conn.h"
#include "common/util.h"
#include "five.h"
#include "proto/line.h"

/* The longest ADDR of TOKEN: an IPv6 address in its longest text form, and "/128". */
#define BIND_MAX 64

/* "+ TOKEN " before the token in fived's answer. */
#define TOKEN_REPLY_PREFIX "+ TOKEN "

/* The answer's line: the prefix, a token, CRLF. */
#define TOKEN_REPLY_MAX (sizeof(TOKEN_REPLY_PREFIX) + FIVE_TOKEN_SIZE)

/* A PASETO token is base64url parts joined by dots: nothing that could end or split a line. */
static bool
token_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

int
five_token_check(const char *token, size_t max, struct five_error *err)
{
	size_t i;

	for (i = 0; token[i] != '\0'; i++)
		if (!token_char(token[i]))
			return five_fail(err, FIVE_ERR_USAGE,
			                 "not a token: character %zu is not one of [A-Za-z0-9_.-]",
			                 i + 1);
	if (i == 0)
		return five_fail(err, FIVE_ERR_USAGE, "the token is empty");
	if (i > max)
		return five_fail(err, FIVE_ERR_USAGE,
		                 "the token is too long (%zu characters, at most %zu)", i, max);
	return 0;
}

/* An address or prefix, checked only for the characters one has: fived judges the rest. */
static bool
bind_valid(const char *bind)
{
	size_t n = strlen(bind);

	return n > 0 && n <= BIND_MAX && strspn(bind, "0123456789abcdefABCDEF.:/") == n;
}

/* "[HOST VHOST] TOKEN SERVICE ADDR|- [TTL] QUIT", each line with its CRLF. */
static int
token_request(const char *service, const char *bind, unsigned long ttl_s,
              const struct five_options *o, char *out, size_t size, struct five_error *err)
{
	char vhost[LINE_MAX_BYTES] = "", ttl[24] = "";
	int n;

	if (!name_valid(service))
		return five_fail(err, FIVE_ERR_USAGE, "invalid service name \"%.64s\"", service);
	if (bind != NULL && !bind_valid(bind))
		return five_fail(err, FIVE_ERR_USAGE, "invalid address \"%.64s\"", bind);
	if (o->vhost != NULL && !vhost_name_valid(o->vhost))
		return five_fail(err, FIVE_ERR_USAGE, "invalid vhost name");
	if (o->vhost != NULL)
		snprintf(vhost, sizeof(vhost), "HOST %s\r\n", o->vhost);
	if (ttl_s > 0)
		snprintf(ttl, sizeof(ttl), " %lu", ttl_s);
	/* QUIT: fived closes once it has answered, and the session ends cleanly. */
	n = snprintf(out, size, "%sTOKEN %s %s%s\r\nQUIT\r\n", vhost, service,
	             bind != NULL ? bind : "-", ttl);
	if (n < 0 || (size_t)n >= size)
		return five_fail(err, FIVE_ERR_USAGE, "request too long");
	return 0;
}

/* Reads fived's answer to TOKEN into token[0..size). */
static int
read_token(struct five_conn *c, char *token, size_t size, struct five_error *err)
{
	char line[TOKEN_REPLY_MAX];
	const char *t = line + strlen(TOKEN_REPLY_PREFIX);

	if (five_conn_read_line(c, line, sizeof(line), err) != 0)
		return -1;
	if (strncmp(line, TOKEN_REPLY_PREFIX, strlen(TOKEN_REPLY_PREFIX)) != 0)
		return five_text_check_reply(line, err) == 0
		               ? five_fail(err, FIVE_ERR_PROTOCOL, "not a token: \"%.64s\"", line)
		               : -1;
	if (five_token_check(t, FIVE_TOKEN_SIZE - 1, err) != 0)
		return five_fail(err, FIVE_ERR_PROTOCOL, "fived's answer is not a token");
	if (str_copy(token, t, size) >= size)
		return five_fail(err, FIVE_ERR_USAGE, "the token is longer than %zu bytes",
		                 size - 1);
	return 0;
}

int
five_token_read(struct five_conn *c, unsigned replies, char *token, size_t size,
                struct five_error *err)
{
	if (five_text_await(c, replies, err) != 0)
		return -1;
	return read_token(c, token, size, err);
}

/* One connection: [AUTH,] TOKEN, the answer. */
static int
fetch_once(const char *host, const struct five_options *o, const char *request, char *token,
           size_t size, char *note, size_t note_size, struct five_error *err)
{
	struct five_conn c;
	int r;

	if (five_text_open(&c, host, o, request, strlen(request), err) != 0)
		return -1;
	if (note != NULL)
		str_copy(note, c.note, note_size);
	r = five_token_read(&c, c.replies_due + (o->vhost != NULL ? 1 : 0), token, size, err);
	five_conn_close(&c);
	return r;
}

int
five_token_fetch(const char *host, const char *service, const char *bind, unsigned long ttl_s,
                 const struct five_options *opts, char *token, size_t size, char *note,
                 size_t note_size, struct five_error *err)
{
	struct five_options o, bare;
	char request[3 * LINE_MAX_BYTES];

	if (five_options_resolve(opts, &o, err) != 0)
		return -1;
	if (o.auth == NULL && o.transport == FIVE_PLAIN)
		return five_fail(err, FIVE_ERR_USAGE, "a token is issued after authentication");
	if (o.token != NULL)
		return five_fail(err, FIVE_ERR_USAGE, "a token does not issue tokens");
	if (size == 0)
		return five_fail(err, FIVE_ERR_USAGE, "no room for the token");
	if (token_request(service, bind, ttl_s, &o, request, sizeof(request), err) != 0)
		return -1;
	if (o.transport == FIVE_PLAIN)
		return fetch_once(host, &o, request, token, size, note, note_size, err);
	/*
	 * A sealed or TLS handshake may have authenticated us already
	 * (authorized_clients, a client certificate), and fived refuses AUTH
	 * then: ask without it first, and authenticate only when told to.
	 */
	bare = o;
	bare.auth = NULL;
	if (fetch_once(host, &bare, request, token, size, note, note_size, err) == 0)
		return 0;
	if (o.auth == NULL || err->step != FIVE_ERR_REFUSED ||
	    strstr(err->message, "authentication required") == NULL)
		return -1;
	return fetch_once(host, &o, request, token, size, NULL, 0, err);
}

int
five_issue_token(const char *host, const char *service, const char *bind, unsigned long ttl_s,
                 const struct five_options *opts, char *token, size_t size, struct five_error *err)
{
	struct five_error scratch;

	return five_token_fetch(host, service, bind, ttl_s, opts, token, size, NULL, 0,
	                        five_error_or(err, &scratch));
}
