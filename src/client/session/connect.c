/*
 * What a caller of libfive gets: a session to a service (five_connect),
 * or the list of services (five_list), over the text dialect.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/base/error.h"
#include "client/base/options.h"
#include "client/dialect/redirect.h"
#include "client/dialect/text.h"
#include "client/relay/handoff.h"
#include "client/transport/conn.h"
#include "common/util.h"
#include "five.h"
#include "proto/line.h"

/* LIST replies are bounded too: a server listing more is refused. */
#define LIST_NAMES_MAX 4096

/* One attempt: the request to host, up to fived's grant. */
static int
connect_once(struct five_conn *c, const char *host, const char *service,
             const struct five_options *o, const void *early, size_t len, struct five_error *err)
{
	uint8_t *request;
	size_t n;
	int r;

	if (five_text_request(service, o, early, len, &request, &n, err) != 0)
		return -1;
	r = five_text_open(c, host, o, request, n, err);
	free(request);
	if (r != 0)
		return -1;
	if (five_text_await(c, c->replies_due + five_text_replies(o), err) != 0) {
		five_conn_close(c);
		return -1;
	}
	return 0;
}

int
five_connect_early(const char *host, const char *service, const struct five_options *opts,
                   const void *early, size_t len, struct five_error *err)
{
	struct five_error scratch;
	struct five_options o;
	struct five_hop hop;
	struct five_conn c;

	err = five_error_or(err, &scratch);
	if (host == NULL || service == NULL || (early == NULL && len > 0))
		return five_fail(err, FIVE_ERR_USAGE, "no host, service or early data");
	if (five_options_resolve(opts, &o, err) != 0)
		return -1;
	/* Only framed mode can be resumed (docs/PROTOCOL.md section 12). */
	if (o.detachable)
		return five_fail(err, FIVE_ERR_USAGE,
		                 "a detachable session is a multiplexed one: five_session_open");
	five_hop_start(&hop, host, service, &o);
	while (connect_once(&c, hop.host, hop.service, &hop.o, early, len, err) != 0)
		if (!five_hop_next(&hop, err))
			return -1;
	/* A plain connection is the caller's as it is; a sealed one needs a relay. */
	if (c.seal == NULL)
		return c.fd;
	return five_handoff(&c, &hop.o, err);
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

/*
 * A service's line in LIST: its name (lowercase), perhaps words after it
 * that later versions add.  A command is in capitals; it is no service.
 * Nor is anything that is not a service's name: the names are printed,
 * and a hostile server's bytes must not reach a terminal.
 */
static bool
service_line(const char *line, size_t *name_len)
{
	char name[FIVE_TEXT_REPLY_MAX];
	size_t i, n = strcspn(line, " ");

	if (n == 0 || n >= sizeof(name))
		return false;
	for (i = 0; i < n; i++)
		if (isupper((unsigned char)line[i]))
			return false;
	memcpy(name, line, n);
	name[n] = '\0';
	*name_len = n;
	return name_valid(name);
}

/* Reads LIST's lines up to ".", collecting the services' names. */
static int
read_list(struct five_conn *c, char ***names, size_t *count, struct five_error *err)
{
	char line[FIVE_TEXT_REPLY_MAX];
	char **list = NULL, **grown;
	size_t n = 0, len;

	for (;;) {
		if (five_conn_read_line(c, line, sizeof(line), err) != 0)
			goto fail;
		if (strcmp(line, ".") == 0)
			break;
		if (!service_line(line, &len))
			continue;
		if (n == LIST_NAMES_MAX) {
			five_fail(err, FIVE_ERR_PROTOCOL, "more than %d services listed",
			          LIST_NAMES_MAX);
			goto fail;
		}
		if ((grown = realloc(list, (n + 2) * sizeof(*list))) == NULL)
			goto nomem;
		list = grown;
		if ((list[n] = strndup(line, len)) == NULL)
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
	struct five_error scratch;
	struct five_options o;
	struct five_conn c;
	char request[LINE_MAX_BYTES + 32];
	int n, r = -1;

	err = five_error_or(err, &scratch);
	if (host == NULL || names == NULL || count == NULL)
		return five_fail(err, FIVE_ERR_USAGE, "no host, or nowhere for the names");
	if (five_options_resolve(opts, &o, err) != 0)
		return -1;
	if (o.vhost != NULL && !vhost_name_valid(o.vhost))
		return five_fail(err, FIVE_ERR_USAGE, "invalid vhost name");
	if (o.vhost != NULL)
		n = snprintf(request, sizeof(request), "HOST %s\r\nLIST\r\nQUIT\r\n", o.vhost);
	else
		n = snprintf(request, sizeof(request), "LIST\r\nQUIT\r\n");
	if (five_text_open(&c, host, &o, request, (size_t)n, err) != 0)
		return -1;
	if (five_text_await(&c, c.replies_due + (o.vhost != NULL ? 2 : 1), err) == 0)
		r = read_list(&c, names, count, err);
	five_conn_close(&c);
	return r;
}
