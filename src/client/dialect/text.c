/*
 * The client side of the text dialect: requests and replies, on a bare
 * descriptor (five_request, five_await) or on a five_conn.
 */
#include "client/dialect/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/base/error.h"
#include "client/base/options.h"
#include "client/base/sock.h"
#include "client/dialect/auth.h"
#include "client/dialect/redirect.h"
#include "client/dialect/token.h"
#include "client/transport/conn.h"
#include "common/util.h"
#include "five.h"
#include "proto/line.h"

/* "- redirect HOST PORT SERVICE" (docs/PROTOCOL.md section 2.13). */
#define REDIRECT_WORD "redirect "

unsigned
five_text_replies(const struct five_options *opts)
{
	return opts->vhost != NULL ? 2 : 1;
}

int
five_text_check_reply(const char *line, struct five_error *err)
{
	const char *text;
	int ok;

	if (reply_parse(line, &ok, &text) != 0)
		return five_fail(err, FIVE_ERR_PROTOCOL, "not a TCPMUX reply: \"%.64s\"", line);
	if (!ok && strncmp(text, REDIRECT_WORD, strlen(REDIRECT_WORD)) == 0)
		return five_redirect_fail(text + strlen(REDIRECT_WORD), err);
	if (!ok)
		return five_fail(err, FIVE_ERR_REFUSED, "%s", text[0] != '\0' ? text : "refused");
	return 0;
}

int
five_request(int fd, const char *service, const struct five_options *opts, const void *early,
             size_t len, struct five_error *err)
{
	struct five_error scratch;
	struct five_options o;
	uint8_t *msg;
	size_t n;
	int r;

	err = five_error_or(err, &scratch);
	if (five_options_resolve(opts, &o, err) != 0 ||
	    five_options_plain_step(&o, "five_request", err) != 0 ||
	    five_text_request(service, &o, early, len, &msg, &n, err) != 0)
		return -1;
	r = five_sock_send_all(fd, msg, n, err);
	free(msg);
	return r;
}

/* "SERVICE" or "SERVICE TOKEN", with its CRLF, into line[0..LINE_MAX_BYTES). */
static int
service_line(const char *service, const char *token, char line[LINE_MAX_BYTES],
             struct five_error *err)
{
	if (!name_valid(service))
		return five_fail(err, FIVE_ERR_USAGE, "invalid service name \"%.64s\"", service);
	if (token == NULL)
		return snprintf(line, LINE_MAX_BYTES, "%s\r\n", service);
	/* The line holds the name (at most NAME_MAX_LEN), a space, the token and CRLF. */
	if (five_token_check(token, LINE_MAX_BYTES - strlen(service) - 3, err) != 0)
		return -1;
	return snprintf(line, LINE_MAX_BYTES, "%s %s\r\n", service, token);
}

int
five_text_request(const char *service, const struct five_options *opts, const void *early,
                  size_t len, uint8_t **out, size_t *out_len, struct five_error *err)
{
	char lines[2 * LINE_MAX_BYTES], request[LINE_MAX_BYTES];
	const char *token = opts->token;
	uint8_t *msg;
	int n;

	if (token != NULL && opts->auth != NULL)
		return five_fail(err, FIVE_ERR_USAGE,
		                 "a token replaces authentication: not both at once");
	if (service_line(service, token, request, err) < 0)
		return -1;
	if (opts->vhost != NULL) {
		if (!vhost_name_valid(opts->vhost))
			return five_fail(err, FIVE_ERR_USAGE, "invalid vhost name");
		n = snprintf(lines, sizeof(lines), "HOST %s\r\n%s", opts->vhost, request);
	} else {
		n = snprintf(lines, sizeof(lines), "%s", request);
	}
	if ((msg = malloc((size_t)n + len)) == NULL)
		return five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
	memcpy(msg, lines, (size_t)n);
	if (len > 0)
		memcpy(msg + n, early, len);
	*out = msg;
	*out_len = (size_t)n + len;
	return 0;
}

int
five_await(int fd, const struct five_options *opts, struct five_error *err)
{
	struct five_error scratch;
	struct five_options o;
	char line[FIVE_TEXT_REPLY_MAX];
	unsigned i;

	err = five_error_or(err, &scratch);
	if (five_options_resolve(opts, &o, err) != 0 ||
	    five_options_plain_step(&o, "five_await", err) != 0)
		return -1;
	for (i = 0; i < five_text_replies(&o); i++)
		if (five_sock_read_line(fd, o.timeout_ms, line, sizeof(line), err) != 0 ||
		    five_text_check_reply(line, err) != 0)
			return -1;
	return 0;
}

/* Sends a then b as one piece: one segment for plain TCP, one record when sealed. */
static int
send_both(struct five_conn *c, const void *a, size_t a_len, const void *b, size_t b_len,
          struct five_error *err)
{
	uint8_t *msg;
	int r;

	if (a_len == 0)
		return b_len == 0 ? 0 : five_conn_send(c, b, b_len, err);
	if ((msg = malloc(a_len + b_len)) == NULL)
		return five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
	memcpy(msg, a, a_len);
	if (b_len > 0)
		memcpy(msg + a_len, b, b_len);
	r = five_conn_send(c, msg, a_len + b_len, err);
	free(msg);
	return r;
}

int
five_text_open(struct five_conn *c, const char *host, const struct five_options *o,
               const void *request, size_t len, struct five_error *err)
{
	char tail[FIVE_LINE_MAX];
	size_t tail_len = 0;

	/* Without authentication first, the request rides in the sealed handshake. */
	if (o->auth == NULL)
		return five_conn_open(c, host, o, request, len, err);
	if (five_conn_open(c, host, o, NULL, 0, err) != 0)
		return -1;
	/* An authentication's last line travels with the request. */
	if (five_auth_pipelined(c, o, tail, sizeof(tail), &tail_len, &c->replies_due, err) != 0 ||
	    send_both(c, tail, tail_len, request, len, err) != 0) {
		five_conn_close(c);
		return -1;
	}
	return 0;
}

int
five_text_await(struct five_conn *c, unsigned replies, struct five_error *err)
{
	char line[FIVE_LINE_MAX];

	for (; replies > 0; replies--)
		if (five_conn_read_line(c, line, sizeof(line), err) != 0 ||
		    five_text_check_reply(line, err) != 0)
			return -1;
	return 0;
}
