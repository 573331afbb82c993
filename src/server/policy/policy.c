#include "server/policy/policy.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "server/privsep/priv.h"

/* Whether text (lines, or NULL) has a line that is exactly name. */
static bool
has_line(const char *text, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	for (p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p != NULL ? p + 1 : NULL)
		if (strncmp(p, name, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
			return true;
	return false;
}

/* A deny entry for a group refuses a caller whose groups are not all known. */
static bool
denies_unknown(const struct principal *list, size_t n, const struct caller *c)
{
	size_t i;

	if (!c->groups_unknown)
		return false;
	for (i = 0; i < n; i++)
		if (list[i].kind == PRINCIPAL_GROUP)
			return true;
	return false;
}

static bool
matches(const struct principal *p, const struct caller *c)
{
	switch (p->kind) {
	case PRINCIPAL_USER:
		return strcmp(p->name, c->identity) == 0;
	case PRINCIPAL_KEY:
		return c->key_fingerprint[0] != '\0' && strcmp(p->name, c->key_fingerprint) == 0;
	case PRINCIPAL_GROUP:
		return has_line(c->groups, p->name);
	}
	return false;
}

static bool
any_match(const struct principal *list, size_t n, const struct caller *c)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (matches(&list[i], c))
			return true;
	return false;
}

enum verdict
policy_check(const struct service *svc, const struct caller *caller)
{
	if (!svc->auth_required)
		return POLICY_GRANT;
	if (caller == NULL)
		return POLICY_HIDDEN;
	/* A caller who came with a token sees that token's application alone. */
	if (caller->only_app[0] != '\0' && strcmp(caller->only_app, svc->name) != 0)
		return POLICY_HIDDEN;
	/* Its issuer checked the policy for an identity the token does not show. */
	if (caller->anonymous)
		return svc->withhold_identity ? POLICY_GRANT : POLICY_DENIED;
	if (any_match(svc->deny, svc->ndeny, caller) ||
	    denies_unknown(svc->deny, svc->ndeny, caller))
		return POLICY_DENIED;
	if (svc->nallow == 0 || any_match(svc->allow, svc->nallow, caller))
		return POLICY_GRANT;
	return POLICY_DENIED;
}

bool
policy_listed(const struct service *svc, const struct caller *caller, bool for_help)
{
	if (for_help)
		return !svc->auth_required && !svc->encryption_required;
	return policy_check(svc, caller) == POLICY_GRANT;
}

void
policy_load_groups(struct caller *caller, struct priv *priv)
{
	unsigned long uid;
	size_t len;
	int r;

	free(caller->groups);
	caller->groups = NULL;
	caller->groups_unknown = false;
	if (!auth_user_valid(caller->identity))
		return;
	r = priv_account(priv, caller->identity, &uid, &caller->groups, &len);
	if (r < 0) {
		log_warn("cannot list every group of %s: group rules refuse it", caller->identity);
		caller->groups_unknown = true;
	}
}

struct caller *
caller_new(const char *identity, enum auth_method method, struct priv *priv,
           const struct config *cfg)
{
	struct caller *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	str_copy(c->identity, identity, sizeof(c->identity));
	c->method = method;
	if (cfg->names_groups)
		policy_load_groups(c, priv);
	else
		c->groups_unknown = true;
	return c;
}

void
caller_free(struct caller *c)
{
	if (c == NULL)
		return;
	free(c->groups);
	sodium_memzero(c, sizeof(*c));
	free(c);
}
