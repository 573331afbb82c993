#include "server/session/sessiontoken.h"

#include <ctype.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "server/policy/policy.h"
#include "server/policy/site.h"
#include "server/policy/tokens.h"

/* "+ TOKEN " and CRLF around a token. */
#define TOKEN_REPLY_MAX (PASETO_TOKEN_SIZE + 16)

static const char *
vhost_name(const struct session *s)
{
	return s->vhost != NULL ? s->vhost->name : "";
}

/* The service a name designates for the session's caller, or NULL with *why. */
static const struct service *
permitted(const struct session *s, const char *application, const char **why)
{
	const struct service *svc = config_lookup(s->cfg, s->vhost, application);
	enum verdict v = svc != NULL ? policy_check(svc, s->caller) : POLICY_HIDDEN;

	if (v == POLICY_GRANT &&
	    (*why = session_refusal_now(s, application, s->caller, "unknown service")) == NULL)
		return svc;
	if (v != POLICY_GRANT)
		*why = v == POLICY_HIDDEN ? "unknown service" : "not permitted";
	return NULL;
}

int
session_token_issue(struct session *s, const char *application, const char *addr, uint64_t ttl,
                    char *out, const char **why)
{
	const struct service *svc;
	struct token_claims c;

	memset(&c, 0, sizeof(c));
	if (s->caller == NULL) {
		*why = "authentication required";
		return -1;
	}
	if (s->caller->method == AUTH_TOKEN) {
		*why = "not permitted: a token does not issue tokens";
		return -1;
	}
	if ((svc = permitted(s, application, why)) == NULL)
		return -1;
	if (ttl > s->cfg->token_max_ttl_s) {
		*why = "invalid lifetime";
		return -1;
	}
	str_copy(c.app, application, sizeof(c.app));
	c.has_sub = !svc->withhold_identity;
	if (c.has_sub)
		str_copy(c.sub, s->caller->identity, sizeof(c.sub));
	c.amr = s->caller->method;
	str_copy(c.vhost, vhost_name(s), sizeof(c.vhost));
	str_copy(c.addr, addr, sizeof(c.addr));
	if (tokens_issue(s->site->tokens, s->cfg, s->caller->identity, &c, (uint64_t)time(NULL),
	                 ttl > 0 ? ttl : s->cfg->token_ttl_s, out, PASETO_TOKEN_SIZE, why) != 0)
		return -1;
	session_audit(s, "token_issued",
	              json_pack("{s:s,s:s,s:s,s:I}", "service", c.app, "jti", c.jti, "addr", c.addr,
	                        "exp", (json_int_t)c.exp));
	return 0;
}

/* Whether the claims fit this session in vhost: the vhost, and its address when bound. */
static int
fits_session(const struct session *s, const struct vhost *vhost, const struct token_claims *c,
             const char **why)
{
	if (strcmp(c->vhost, vhost != NULL ? vhost->name : "") != 0) {
		*why = "for another vhost";
		return -1;
	}
	if (c->addr[0] != '\0' &&
	    !(s->peer_is_ip && token_addr_matches(c->addr, (const struct sockaddr *)&s->peer))) {
		*why = "bound to another address";
		return -1;
	}
	return 0;
}

/* The caller a token makes, for its service svc. */
static struct caller *
token_caller(struct session *s, const struct token_claims *c, const struct service *svc)
{
	struct caller *caller =
	        caller_new(c->has_sub ? c->sub : "", AUTH_TOKEN, s->site->priv, s->cfg);

	if (caller == NULL)
		return NULL;
	str_copy(caller->only_app, svc->name, sizeof(caller->only_app));
	caller->anonymous = !c->has_sub;
	return caller;
}

struct caller *
session_token_check(struct session *s, const char *application, const char *token,
                    struct token_claims *c, const char **why)
{
	return session_token_in(s, s->cfg, s->vhost, application, token, c, why);
}

struct caller *
session_token_in(struct session *s, const struct config *cfg, const struct vhost *vhost,
                 const char *application, const char *token, struct token_claims *c,
                 const char **why)
{
	const struct service *svc;
	struct caller *caller = NULL;

	if (tokens_open(s->site->tokens, token, (uint64_t)time(NULL), c, why) != 0)
		return NULL;
	if (application != NULL && strcmp(c->app, application) != 0)
		*why = "for another service";
	else if (fits_session(s, vhost, c, why) != 0)
		;
	else if ((svc = config_lookup(cfg, vhost, c->app)) == NULL)
		*why = "unknown service";
	else if ((caller = token_caller(s, c, svc)) == NULL)
		*why = "out of memory";
	else if (policy_check(svc, caller) != POLICY_GRANT)
		*why = "not permitted now";
	else
		return caller;
	caller_free(caller);
	return NULL;
}

void
session_take_caller(struct session *s, struct caller *caller, const struct token_claims *c)
{
	session_set_caller(s, caller,
	                   json_pack("{s:s,s:s}", "amr", auth_method_name(c->amr), "jti", c->jti));
}

struct caller *
session_token_take(struct session *s, const char *application, const char *token, const char **why)
{
	struct token_claims c;
	struct caller *caller = session_token_check(s, application, token, &c, why);

	if (caller != NULL)
		session_take_caller(s, caller, &c);
	return caller;
}

/* ADDR ("-" for none) and TTL of the TOKEN command; -1 with *why. */
static int
token_args(const struct cmd *c, char addr[TOKEN_ADDR_SIZE], uint64_t *ttl, const char **why)
{
	addr[0] = '\0';
	*ttl = 0;
	if (c->nargs >= 2 && strcmp(c->args[1], "-") != 0 &&
	    token_addr_canonical(c->args[1], addr) != 0) {
		*why = "invalid address";
		return -1;
	}
	if (c->nargs == 3 && (parse_uint(c->args[2], TOKEN_TTL_LIMIT, ttl) != 0 || *ttl == 0)) {
		*why = "invalid lifetime";
		return -1;
	}
	return 0;
}

void
session_token_command(struct session *s, const struct cmd *c)
{
	char app[NAME_MAX_LEN + 1], addr[TOKEN_ADDR_SIZE], token[PASETO_TOKEN_SIZE];
	char reply[TOKEN_REPLY_MAX];
	const char *why;
	uint64_t ttl;
	size_t i;
	int n;

	for (i = 0; c->args[0][i] != '\0' && i < NAME_MAX_LEN; i++)
		app[i] = (char)tolower((unsigned char)c->args[0][i]);
	app[i] = '\0';
	if (c->args[0][i] != '\0' || token_args(c, addr, &ttl, &why) != 0 ||
	    session_token_issue(s, app, addr, ttl, token, &why) != 0) {
		n = snprintf(reply, sizeof(reply), "- %s\r\n",
		             c->args[0][i] != '\0' ? "unknown service" : why);
	} else {
		n = snprintf(reply, sizeof(reply), "+ TOKEN %s\r\n", token);
	}
	if (n < 0 || (size_t)n >= sizeof(reply) || session_send(s, reply, (size_t)n) != 0)
		session_close(s, "out of memory");
}
