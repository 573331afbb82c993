/*
 * Who may use which service.  A service with auth = none is open to every
 * client.  One with auth = required is invisible to a client that has not
 * authenticated (it answers as a service that does not exist), and, once
 * the client has, open to an identity that matches an allow entry (or any
 * identity when there are none) and no deny entry: deny wins.
 */
#ifndef FIVE_POLICY_H
#define FIVE_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/auth.h"
#include "server/conf/config.h"

/* An authenticated caller, as policy sees it. */
struct caller {
	char identity[AUTH_IDENTITY_MAX + 1];
	enum auth_method method;
	char key_fingerprint[PRINCIPAL_NAME_MAX + 1]; /* "" unless the method was pubkey */
	char *groups;        /* its Unix groups' names, a line each; malloc'd, or NULL */
	bool groups_unknown; /* a Unix user whose groups could not all be had */
	char only_app[NAME_MAX_LEN + 1]; /* a token's service ([service:NAME]); "" for any */
	bool anonymous;                  /* a token without its identity (identity = withhold) */
};

enum verdict {
	POLICY_GRANT,
	POLICY_HIDDEN, /* answer as for an unknown service */
	POLICY_DENIED, /* "- not permitted" */
};

/* The verdict for caller (NULL: not authenticated) on svc. */
enum verdict policy_check(const struct service *svc, const struct caller *caller);

/*
 * Whether svc is listed to caller by LIST (granted ones only) or HELP
 * (for_help: only services that need nothing more than a plain connection:
 * neither authentication nor encryption).
 */
bool policy_listed(const struct service *svc, const struct caller *caller, bool for_help);

/*
 * Fills caller->groups with the names of every Unix group identity
 * belongs to (none when it is not a Unix user), asking priv.  When the
 * list cannot be had whole, the caller is marked groups_unknown: no allow
 * entry for a group matches it, and any deny entry for a group refuses
 * it.  Call it once, when a caller authenticates.
 */
struct priv;
void policy_load_groups(struct caller *caller, struct priv *priv);

/*
 * A caller for identity, authenticated by method, with its groups
 * (policy_load_groups) when cfg has a rule that names a group; without
 * one, its groups are not asked for (a request to the monitor, and the
 * account lookup there) and it is marked groups_unknown, so that a group
 * rule of another configuration never grants it.  The caller owns it
 * (caller_free); NULL when memory is short.
 */
struct config;
struct caller *caller_new(const char *identity, enum auth_method method, struct priv *priv,
                          const struct config *cfg);

/* Wipes and frees a caller.  NULL is a no-op. */
void caller_free(struct caller *c);

#endif
