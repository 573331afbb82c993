#include "server/policy.h"

#include <grp.h>
#include <pwd.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static bool
matches(const struct principal *p, const struct caller *c)
{
	size_t i;

	switch (p->kind) {
	case PRINCIPAL_USER:
		return strcmp(p->name, c->identity) == 0;
	case PRINCIPAL_KEY:
		return c->key_fingerprint[0] != '\0' && strcmp(p->name, c->key_fingerprint) == 0;
	case PRINCIPAL_GROUP:
		for (i = 0; i < c->ngroups; i++)
			if (strcmp(p->name, c->groups[i]) == 0)
				return true;
		return false;
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
	if (any_match(svc->deny, svc->ndeny, caller))
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
policy_load_groups(struct caller *caller)
{
	gid_t gids[CALLER_GROUPS_MAX];
	int n = CALLER_GROUPS_MAX, i;
	struct passwd *pw;
	struct group *gr;

	caller->ngroups = 0;
	if ((pw = getpwnam(caller->identity)) == NULL)
		return;
	/* A user in more groups than we keep is held to the first CALLER_GROUPS_MAX. */
	if (getgrouplist(caller->identity, pw->pw_gid, gids, &n) < 0)
		n = CALLER_GROUPS_MAX;
	for (i = 0; i < n && caller->ngroups < CALLER_GROUPS_MAX; i++) {
		if ((gr = getgrgid(gids[i])) == NULL)
			continue;
		str_copy(caller->groups[caller->ngroups++], gr->gr_name, sizeof(caller->groups[0]));
	}
}

void
caller_free(struct caller *c)
{
	if (c == NULL)
		return;
	sodium_memzero(c, sizeof(*c));
	free(c);
}
