#include "client/cli/agentline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* Appends " name=value" when value is set.  Returns 0, or -1 when it cannot be carried. */
static int
put(char *line, size_t size, const char *name, const char *value)
{
	size_t len = strlen(line), i;
	int n;

	if (value == NULL)
		return 0;
	if (value[0] == '\0' || strlen(value) > AGENT_VALUE_MAX)
		return -1;
	for (i = 0; value[i] != '\0'; i++)
		if (value[i] <= ' ' || value[i] > '~')
			return -1;
	n = snprintf(line + len, size - len, " %s=%s", name, value);
	return n > 0 && (size_t)n < size - len ? 0 : -1;
}

static const char *
transport_name(int transport)
{
	return transport == FIVE_PLAIN ? "plain" : transport == FIVE_TLS ? "tls" : NULL;
}

/* The agent cannot prompt: pubkey only, or nothing. */
static bool
pubkey_only(const struct five_auth *a)
{
	return a == NULL || (a->methods != NULL && strcmp(a->methods, "pubkey") == 0);
}

int
agent_line_encode(const struct cli_request *req, char *line, size_t size)
{
	const struct five_options *o = &req->opts;
	const struct five_auth *a = o->auth;

	if (!pubkey_only(a) || o->token != NULL || req->usp || req->wait_for_grant ||
	    req->multiplex)
		return -1;
	str_copy(line, "open", size);
	if (put(line, size, "host", req->host) != 0 ||
	    put(line, size, "service", req->service) != 0 ||
	    put(line, size, "port", o->port) != 0 ||
	    put(line, size, "transport", transport_name(o->transport)) != 0 ||
	    put(line, size, "key", o->server_key) != 0 || put(line, size, "vhost", o->vhost) != 0 ||
	    put(line, size, "auth", a != NULL ? "pubkey" : NULL) != 0 ||
	    put(line, size, "key_file", a != NULL ? a->key_file : NULL) != 0 ||
	    put(line, size, "user", a != NULL ? a->user : NULL) != 0 ||
	    put(line, size, "tls_cert", o->tls_certificate) != 0 ||
	    put(line, size, "tls_key", o->tls_key) != 0 ||
	    put(line, size, "known_hosts", getenv("FIVE_KNOWN_HOSTS")) != 0 ||
	    put(line, size, "identity_file", getenv("FIVE_IDENTITY_FILE")) != 0 ||
	    put(line, size, "ends", "all-marked") != 0)
		return -1;
	if (strlen(line) + 2 > size)
		return -1;
	strcat(line, "\n");
	return 0;
}

/* One name=value token into r.  Returns 0 or -1. */
static int
take(struct agent_request *r, const char *name, const char *value)
{
	struct five_options *o = &r->opts;

	if (strcmp(name, "host") == 0)
		r->host = value;
	else if (strcmp(name, "service") == 0)
		r->service = value;
	else if (strcmp(name, "port") == 0)
		o->port = value;
	else if (strcmp(name, "transport") == 0 && strcmp(value, "plain") == 0)
		o->transport = FIVE_PLAIN;
	else if (strcmp(name, "transport") == 0 && strcmp(value, "tls") == 0)
		o->transport = FIVE_TLS;
	else if (strcmp(name, "key") == 0)
		o->server_key = value;
	else if (strcmp(name, "vhost") == 0)
		o->vhost = value;
	else if (strcmp(name, "auth") == 0 && strcmp(value, "pubkey") == 0)
		o->auth = &r->auth;
	else if (strcmp(name, "key_file") == 0)
		r->auth.key_file = value;
	else if (strcmp(name, "user") == 0)
		r->auth.user = value;
	else if (strcmp(name, "tls_cert") == 0)
		o->tls_certificate = value;
	else if (strcmp(name, "tls_key") == 0)
		o->tls_key = value;
	else if (strcmp(name, "known_hosts") == 0)
		r->known_hosts = value;
	else if (strcmp(name, "identity_file") == 0)
		r->identity_file = value;
	else if (strcmp(name, "ends") == 0 && strcmp(value, "all-marked") == 0)
		r->marked_ends = true;
	else
		return -1;
	return 0;
}

/* The session's key: every token but the stream's own (service, ends), in the order sent. */
static void
add_key(struct agent_request *r, const char *name, const char *value)
{
	size_t len = strlen(r->key);

	if (strcmp(name, "service") != 0 && strcmp(name, "ends") != 0)
		snprintf(r->key + len, sizeof(r->key) - len, " %s=%s", name, value);
}

int
agent_line_parse(const char *line, struct agent_request *r, const char **why)
{
	char *tok, *save = NULL, *eq;

	memset(r, 0, sizeof(*r));
	five_options_init(&r->opts);
	r->auth.methods = "pubkey";
	if (str_copy(r->line, line, sizeof(r->line)) >= sizeof(r->line) ||
	    strncmp(r->line, "open ", 5) != 0) {
		*why = "not an open request";
		return -1;
	}
	for (tok = strtok_r(r->line + 5, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		if ((eq = strchr(tok, '=')) == NULL || eq[1] == '\0') {
			*why = "malformed request";
			return -1;
		}
		*eq = '\0';
		if (take(r, tok, eq + 1) != 0) {
			*why = "unknown request field";
			return -1;
		}
		add_key(r, tok, eq + 1);
	}
	if (r->host == NULL || r->service == NULL) {
		*why = "host and service required";
		return -1;
	}
	return 0;
}
