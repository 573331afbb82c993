#include "client/dialect/redirect.h"

#include <stdio.h>
#include <string.h>

#include "client/base/error.h"
#include "client/base/options.h"
#include "common/util.h"

int
five_redirect_fail(const char *where, struct five_error *err)
{
	char text[REDIRECT_TEXT_SIZE];
	struct redirect r;
	const char *why;

	if (redirect_parse(where, &r, &why) != 0)
		return five_fail(err, FIVE_ERR_PROTOCOL, "malformed redirect: %s", why);
	/* One form on the wire (docs/PROTOCOL.md 2.13): the service in lowercase, too. */
	redirect_format(&r, text);
	if (strcmp(text, where) != 0)
		return five_fail(err, FIVE_ERR_PROTOCOL,
		                 "malformed redirect: the service not in lowercase");
	return five_fail(err, FIVE_ERR_REDIRECT, "%s", text);
}

void
five_hop_start(struct five_hop *hop, const char *host, const char *service,
               const struct five_options *o)
{
	memset(hop, 0, sizeof(*hop));
	hop->host = host;
	hop->service = service;
	hop->o = *o;
}

/* Whether methods ("pubkey,password"; NULL is "pubkey") has pubkey. */
static bool
has_pubkey(const char *methods)
{
	size_t n;

	if (methods == NULL)
		return true;
	for (; *methods != '\0'; methods += n + (methods[n] == ',')) {
		n = strcspn(methods, ",");
		if (n == strlen("pubkey") && strncmp(methods, "pubkey", n) == 0)
			return true;
	}
	return false;
}

/*
 * Nothing that was for the first server goes to the next: its pinned key,
 * a bearer token, its vhost, a password; a pubkey signature covers the
 * new server's own challenge, so the key may sign there.  A caller who
 * gave the first server's key wanted no trust on first use: the next
 * server must then be pinned already.
 */
static void
options_for_next(struct five_hop *hop)
{
	struct five_options *o = &hop->o;

	o->port = hop->port;
	if (o->server_key != NULL)
		o->trust_on_first_use = 0;
	o->server_key = NULL;
	o->token = NULL;
	o->vhost = NULL;
	if (o->auth != NULL && has_pubkey(o->auth->methods)) {
		hop->auth = *o->auth;
		hop->auth.methods = "pubkey";
		o->auth = &hop->auth;
	} else {
		o->auth = NULL;
	}
}

bool
five_hop_next(struct five_hop *hop, const struct five_error *err)
{
	char note[FIVE_LINE_MAX];
	struct redirect r;
	const char *why;

	if (err->step != FIVE_ERR_REDIRECT || hop->o.no_redirect ||
	    hop->count == FIVE_REDIRECTS_MAX || redirect_parse(err->message, &r, &why) != 0)
		return false;
	hop->count++;
	str_copy(hop->host_buf, r.host, sizeof(hop->host_buf));
	str_copy(hop->service_buf, r.service, sizeof(hop->service_buf));
	snprintf(hop->port, sizeof(hop->port), "%u", (unsigned)r.port);
	hop->host = hop->host_buf;
	hop->service = hop->service_buf;
	options_for_next(hop);
	snprintf(note, sizeof(note), "redirected to %s port %s, service %s", hop->host, hop->port,
	         hop->service);
	five_notice(&hop->o, note);
	return true;
}
