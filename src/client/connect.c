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
five_request(int fd, const char *service, const struct five_options *opts, const void *early,
             size_t len, struct five_error *err)
{
	return five_request_after(fd, NULL, 0, service, opts, early, len, err);
}

int
five_request_after(int fd, const void *prefix, size_t prefix_len, const char *service,
                   const struct five_options *opts, const void *early, size_t len,
                   struct five_error *err)
{
	char lines[2 * LINE_MAX_BYTES];
	char *msg;
	int n, r;

	if (!name_valid(service))
		return five_fail(err, FIVE_ERR_USAGE, "invalid service name \"%.64s\"", service);
	if (opts != NULL && opts->vhost != NULL) {
		if (!vhost_name_valid(opts->vhost))
			return five_fail(err, FIVE_ERR_USAGE, "invalid vhost name");
		n = snprintf(lines, sizeof(lines), "HOST %s\r\n%s\r\n", opts->vhost, service);
	} else {
		n = snprintf(lines, sizeof(lines), "%s\r\n", service);
	}
	if ((msg = malloc(prefix_len + (size_t)n + len)) == NULL)
		return five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
	if (prefix_len > 0)
		memcpy(msg, prefix, prefix_len);
	memcpy(msg + prefix_len, lines, (size_t)n);
	if (len > 0)
		memcpy(msg + prefix_len + n, early, len);
	r = five_send_all(fd, msg, prefix_len + (size_t)n + len, err);
	free(msg);
	return r;
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
	int fd;

	if ((fd = five_dial(host, opts, err)) < 0)
		return -1;
	if (five_authenticate(fd, opts, err) != 0 ||
	    five_request(fd, service, opts, early, len, err) != 0 ||
	    five_await(fd, opts, err) != 0) {
		close(fd);
		return -1;
	}
	return fd;
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
read_list(int fd, int timeout_ms, char ***names, size_t *count, struct five_error *err)
{
	char line[REPLY_MAX];
	char **list = NULL, **grown;
	size_t n = 0;

	for (;;) {
		if (five_read_line(fd, timeout_ms, line, sizeof(line), err) != 0)
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
	char request[LINE_MAX_BYTES + 32];
	char line[REPLY_MAX];
	int fd, n, r = -1;

	five_options_resolve(opts, &o);
	if (o.vhost != NULL && !vhost_name_valid(o.vhost))
		return five_fail(err, FIVE_ERR_USAGE, "invalid vhost name");
	if ((fd = five_dial(host, &o, err)) < 0)
		return -1;
	if (five_authenticate(fd, &o, err) != 0)
		goto out;
	if (o.vhost != NULL)
		n = snprintf(request, sizeof(request), "HOST %s\r\nLIST\r\nQUIT\r\n", o.vhost);
	else
		n = snprintf(request, sizeof(request), "LIST\r\nQUIT\r\n");
	if (five_send_all(fd, request, (size_t)n, err) != 0)
		goto out;
	if (o.vhost != NULL && (five_read_line(fd, o.timeout_ms, line, sizeof(line), err) != 0 ||
	                        five_check_reply(line, err) != 0))
		goto out;
	if (five_read_line(fd, o.timeout_ms, line, sizeof(line), err) != 0 ||
	    five_check_reply(line, err) != 0)
		goto out;
	r = read_list(fd, o.timeout_ms, names, count, err);
out:
	close(fd);
	return r;
}
