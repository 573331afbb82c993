#include "shim/open.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/base/sock.h"
#include "client/cli/agentline.h"
#include "client/cli/session.h"
#include "common/util.h"
#include "proto/line.h"

void
shim_say(const char *fmt, ...)
{
	const char *path = secure_getenv(SHIM_LOG_ENV);
	int saved = errno, fd = STDERR_FILENO, n, m;
	char text[1024];
	va_list ap;

	n = snprintf(text, sizeof(text), "five-shim: ");
	va_start(ap, fmt);
	m = vsnprintf(text + n, sizeof(text) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = m < 0 ? n : n + m >= (int)sizeof(text) - 1 ? (int)sizeof(text) - 2 : n + m;
	text[n++] = '\n';
	if (path != NULL && path[0] != '\0' &&
	    (fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600)) < 0)
		fd = STDERR_FILENO;
	if (write(fd, text, (size_t)n) < 0) {
		/* Nowhere else to say it. */
	}
	if (fd != STDERR_FILENO)
		close(fd);
	errno = saved;
}

/* Whether message says the caller may not have the service. */
static bool
not_permitted(const char *message)
{
	static const char *const words[] = {"not permitted", "encryption required", "invalid token",
	                                    "authentication"};
	size_t i;

	for (i = 0; i < ARRAY_LEN(words); i++)
		if (strstr(message, words[i]) != NULL)
			return true;
	return false;
}

int
shim_errno(enum five_step step, const char *message)
{
	static const int connect_errors[] = {ECONNREFUSED, ETIMEDOUT, ENETUNREACH,
	                                     EHOSTUNREACH, EACCES,    EPERM};
	bool timed_out = strstr(message, "timed out") != NULL ||
	                 strstr(message, "timeout") != NULL ||
	                 strstr(message, "reply within") != NULL; /* sealed, TLS, text */
	size_t i;

	switch (step) {
	case FIVE_OK:
		return 0;
	case FIVE_ERR_REFUSED:
		return not_permitted(message) ? EACCES : timed_out ? ETIMEDOUT : ECONNREFUSED;
	case FIVE_ERR_TRUST:
		return EACCES;
	case FIVE_ERR_RESOLVE:
		return timed_out ? ETIMEDOUT : EHOSTUNREACH;
	case FIVE_ERR_CONNECT:
		/* dial.c's message begins with the reason of the first address tried. */
		for (i = 0; i < ARRAY_LEN(connect_errors); i++) {
			const char *text = strerror(connect_errors[i]);

			if (strncmp(message, text, strlen(text)) == 0)
				return connect_errors[i];
		}
		return timed_out ? ETIMEDOUT : EHOSTUNREACH;
	case FIVE_ERR_PROTOCOL:
		return timed_out ? ETIMEDOUT : EPROTO;
	case FIVE_ERR_USAGE:
		return EINVAL;
	case FIVE_ERR_SYSTEM:
	default:
		return strstr(message, "out of memory") != NULL ? ENOMEM : EIO;
	}
}

static void
notice(void *arg, const char *text)
{
	shim_say("%s", text);
}

/*
 * The request through the agent (agentline.h).  Returns the stream's
 * descriptor; -1 with err filled when the agent took the request and it
 * failed; or -2 when the agent cannot serve it (none runs, it declined):
 * then the caller goes direct, as five does.
 */
static int
through_agent(const struct cli_request *req, int timeout_ms, struct five_error *err)
{
	const char *path = secure_getenv(AGENT_ENV), *text;
	char line[AGENT_LINE_MAX], answer[FIVE_LINE_MAX];
	struct five_error ignored;
	int fd, ok;

	if (path == NULL || path[0] == '\0' || agent_line_encode(req, line, sizeof(line)) != 0 ||
	    (fd = five_sock_dial_unix(path)) < 0)
		return -2;
	if (five_sock_send_all(fd, line, strlen(line), &ignored) != 0 ||
	    five_sock_read_line(fd, timeout_ms, answer, sizeof(answer), &ignored) != 0 ||
	    strcmp(answer, "ready") != 0) {
		close(fd);
		return -2;
	}
	/* The agent has the session: fived's answer to the stream comes next, then its bytes. */
	if (five_sock_read_line(fd, timeout_ms, answer, sizeof(answer), err) != 0) {
		close(fd);
		return -1;
	}
	if (reply_parse(answer, &ok, &text) != 0 || !ok) {
		close(fd);
		err->step = ok ? FIVE_ERR_PROTOCOL : FIVE_ERR_REFUSED;
		str_copy(err->message, ok ? "not a reply from the agent" : text,
		         sizeof(err->message));
		return -1;
	}
	return fd;
}

void
shim_request(const struct shim_rule *rule, struct cli_request *req, struct five_auth *auth)
{
	struct five_options *o = &req->opts;

	memset(req, 0, sizeof(*req));
	memset(auth, 0, sizeof(*auth));
	req->host = rule->host;
	req->service = rule->service;
	five_options_init(o);
	o->transport = rule->transport;
	o->port = rule->fived_port[0] != '\0' ? rule->fived_port : NULL;
	o->vhost = rule->vhost[0] != '\0' ? rule->vhost : NULL;
	o->server_key = rule->key[0] != '\0' ? rule->key : NULL;
	o->timeout_ms = rule->timeout_ms > 0 ? rule->timeout_ms : FIVE_DEFAULT_TIMEOUT_MS;
	/* As five: a server met for the first time is pinned, and the user told. */
	o->trust_on_first_use = 1;
	if (rule->auth_pubkey) {
		auth->methods = "pubkey";
		auth->key_file = rule->identity[0] != '\0' ? rule->identity : NULL;
		auth->user = rule->user[0] != '\0' ? rule->user : NULL;
		o->auth = auth;
	}
}

int
shim_open(const struct shim_rule *rule, const char *name, unsigned port)
{
	struct five_error err = {.step = FIVE_OK};
	struct cli_request req;
	struct five_auth auth;
	int fd, e;

	shim_request(rule, &req, &auth);
	req.opts.notice = notice;
	fd = through_agent(&req, req.opts.timeout_ms, &err);
	if (fd == -2)
		fd = five_connect(rule->host, rule->service, &req.opts, &err);
	if (fd >= 0)
		return fd;
	e = shim_errno(err.step, err.message);
	shim_say("%s:%u: %s %s: %s: %s", name, port, rule->host, rule->service,
	         five_step_name(err.step), err.message);
	return -e;
}
