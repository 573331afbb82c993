/*
 * The client side of the text dialect: requests, replies, LIST.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/internal.h"
#include "common/util.h"
#include "five.h"
#include "proto/line.h"

/* Replies longer than a request line are not the protocol. */
#define REPLY_MAX LINE_MAX_BYTES

/* LIST replies are bounded too: a server listing more is refused. */
#define LIST_NAMES_MAX 4096

int
five_fail(struct five_error *err, enum five_step step, const char *fmt, ...)
{
	va_list ap;

	err->step = step;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -1;
}

const char *
five_step_name(enum five_step step)
{
	static const char *const names[] = {
	        [FIVE_OK] = "ok",
	        [FIVE_ERR_SYSTEM] = "system",
	        [FIVE_ERR_USAGE] = "usage",
	        [FIVE_ERR_RESOLVE] = "resolve",
	        [FIVE_ERR_CONNECT] = "connect",
	        [FIVE_ERR_REFUSED] = "refused",
	        [FIVE_ERR_PROTOCOL] = "protocol",
	};

	return (size_t)step < ARRAY_LEN(names) ? names[step] : "unknown";
}

void
five_options_resolve(const struct five_options *opts, struct five_options *out)
{
	if (opts != NULL)
		*out = *opts;
	else
		memset(out, 0, sizeof(*out));
	if (out->timeout_ms <= 0)
		out->timeout_ms = FIVE_DEFAULT_TIMEOUT_MS;
}

unsigned
five_replies_expected(const struct five_options *opts)
{
	return opts != NULL && opts->vhost != NULL ? 2 : 1;
}

int
five_check_reply(const char *line, struct five_error *err)
{
	const char *text;
	int ok;

	if (reply_parse(line, &ok, &text) != 0)
		return five_fail(err, FIVE_ERR_PROTOCOL, "not a TCPMUX reply: \"%.64s\"", line);
	if (!ok)
		return five_fail(err, FIVE_ERR_REFUSED, "%s", text[0] != '\0' ? text : "refused");
	return 0;
}

int
five_send_all(int fd, const void *data, size_t len, struct five_error *err)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		if ((n = send(fd, p, len, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			return five_fail(err, FIVE_ERR_CONNECT, "send: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
five_send_by(int fd, const void *data, size_t len, uint64_t deadline, struct five_error *err)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	const char *p = data;
	uint64_t now;
	ssize_t n;

	while (len > 0) {
		if ((n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT)) >= 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
			return five_fail(err, FIVE_ERR_CONNECT, "send: %s", strerror(errno));
		if ((now = monotonic_ms()) >= deadline)
			return five_fail(err, FIVE_ERR_CONNECT, "send: %s", strerror(ETIMEDOUT));
		if (poll(&pfd, 1, (int)(deadline - now)) < 0 && errno != EINTR)
			return five_fail(err, FIVE_ERR_SYSTEM, "poll: %s", strerror(errno));
	}
	return 0;
}

int
five_request(int fd, const char *service, const struct five_options *opts, const void *early,
             size_t len, struct five_error *err)
{
	uint8_t *msg;
	size_t n;
	int r;

	if (five_request_text(service, opts, early, len, &msg, &n, err) != 0)
		return -1;
	r = five_send_all(fd, msg, n, err);
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
five_request_text(const char *service, const struct five_options *opts, const void *early,
                  size_t len, uint8_t **out, size_t *out_len, struct five_error *err)
{
	char lines[2 * LINE_MAX_BYTES], request[LINE_MAX_BYTES];
	const char *token = opts != NULL ? opts->token : NULL;
	uint8_t *msg;
	int n;

	if (token != NULL && opts->auth != NULL)
		return five_fail(err, FIVE_ERR_USAGE,
		                 "a token replaces authentication: not both at once");
	if (service_line(service, token, request, err) < 0)
		return -1;
	if (opts != NULL && opts->vhost != NULL) {
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
five_read_line(int fd, int timeout_ms, char *line, size_t size, struct five_error *err)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	size_t n = 0;
	ssize_t r;
	char c;

	for (;;) {
		if ((r = poll(&pfd, 1, timeout_ms)) == 0)
			return five_fail(err, FIVE_ERR_PROTOCOL, "no reply within %d ms",
			                 timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if ((r = recv(fd, &c, 1, 0)) < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return five_fail(err, FIVE_ERR_CONNECT, "recv: %s", strerror(errno));
		if (r == 0)
			return five_fail(err, FIVE_ERR_PROTOCOL,
			                 "connection closed before a reply");
		if (c == '\n')
			break;
		if (n + 1 >= size)
			return five_fail(err, FIVE_ERR_PROTOCOL, "reply line too long");
		line[n++] = c;
	}
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	return 0;
}

int
five_await(int fd, const struct five_options *opts, struct five_error *err)
{
	struct five_options o;
	char line[REPLY_MAX];
	unsigned i;

	five_options_resolve(opts, &o);
	for (i = 0; i < five_replies_expected(&o); i++)
		if (five_read_line(fd, o.timeout_ms, line, sizeof(line), err) != 0 ||
		    five_check_reply(line, err) != 0)
			return -1;
	return 0;
}

int
five_connect_early(const char *host, const char *service, const struct five_options *opts,
                   const void *early, size_t len, struct five_error *err)
{
	struct five_options o;
	struct five_conn c;
	uint8_t *request;
	size_t n;
	int r;

	five_options_resolve(opts, &o);
	if (five_request_text(service, &o, early, len, &request, &n, err) != 0)
		return -1;
	r = five_conn_open(&c, host, &o, request, n, err);
	free(request);
	if (r != 0)
		return -1;
	if (five_conn_await(&c, c.replies_due + five_replies_expected(&o), err) != 0) {
		five_conn_close(&c);
		return -1;
	}
	/* A plain connection is the caller's as it is; a sealed one needs a relay. */
	if (c.seal == NULL)
		return c.fd;
	return five_handoff(&c, &o, err);
}

int
five_connect(const char *host, const char *service, const struct five_options *opts,
             struct five_error *err)
{
	return five_connect_early(host, service, opts, NULL, 0, err);
}

void
five_free_names(char **names)
{
	size_t i;

	for (i = 0; names != NULL && names[i] != NULL; i++)
		free(names[i]);
	free(names);
}

/* Reads "service NAME" lines up to ".", collecting the names. */
static int
read_list(struct five_conn *c, char ***names, size_t *count, struct five_error *err)
{
	char line[REPLY_MAX];
	char **list = NULL, **grown;
	size_t n = 0;

	for (;;) {
		if (five_conn_read_line(c, line, sizeof(line), err) != 0)
			goto fail;
		if (strcmp(line, ".") == 0)
			break;
		if (strncmp(line, "service ", 8) != 0)
			continue;
		if (n == LIST_NAMES_MAX) {
			five_fail(err, FIVE_ERR_PROTOCOL, "more than %d services listed",
			          LIST_NAMES_MAX);
			goto fail;
		}
		if ((grown = realloc(list, (n + 2) * sizeof(*list))) == NULL)
			goto nomem;
		list = grown;
		if ((list[n] = strdup(line + 8)) == NULL)
			goto nomem;
		list[++n] = NULL;
	}
	if (list == NULL && (list = calloc(1, sizeof(*list))) == NULL) {
		five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
		return -1;
	}
	*names = list;
	*count = n;
	return 0;
nomem:
	five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
fail:
	if (list != NULL)
		list[n] = NULL;
	five_free_names(list);
	return -1;
}

int
five_list(const char *host, const struct five_options *opts, char ***names, size_t *count,
          struct five_error *err)
{
	struct five_options o;
	struct five_conn c;
	char request[LINE_MAX_BYTES + 32];
	int n, r = -1;

	five_options_resolve(opts, &o);
	if (o.vhost != NULL && !vhost_name_valid(o.vhost))
		return five_fail(err, FIVE_ERR_USAGE, "invalid vhost name");
	if (o.vhost != NULL)
		n = snprintf(request, sizeof(request), "HOST %s\r\nLIST\r\nQUIT\r\n", o.vhost);
	else
		n = snprintf(request, sizeof(request), "LIST\r\nQUIT\r\n");
	if (five_conn_open(&c, host, &o, request, (size_t)n, err) != 0)
		return -1;
	if (five_conn_await(&c, c.replies_due + (o.vhost != NULL ? 2 : 1), err) == 0)
		r = read_list(&c, names, count, err);
	five_conn_close(&c);
	return r;
}
