/*
 * A session for a connect the shim took over: through the agent of
 * $FIVE_AGENT_SOCK when it can serve it (as five does), else libfive's
 * five_connect in the calling thread; and what the program is told when
 * it fails (an errno, fived's reason on standard error or in the file
 * $FIVE_SHIM_LOG names).
 */
#ifndef FIVE_SHIM_OPEN_H
#define FIVE_SHIM_OPEN_H

#include "client/cli/session.h"
#include "five.h"
#include "shim/conf.h"

#define SHIM_LOG_ENV "FIVE_SHIM_LOG"

/*
 * The request rule says, into *req (pointing into rule, which must
 * outlive it) and *auth (which req points to when the rule has
 * auth=pubkey): the transport, fived's port, vhost, key, timeout, and
 * trust on first use, as five's own defaults have it.
 */
void shim_request(const struct shim_rule *rule, struct cli_request *req, struct five_auth *auth);

/*
 * Opens the session rule says for the program's connect to name:port,
 * waiting for fived's grant (at most the rule's timeout for each step).
 * Returns a descriptor of the service's stream, which the caller owns, or
 * -errno having said why (shim_say).
 */
int shim_open(const struct shim_rule *rule, const char *name, unsigned port);

/*
 * The errno a program is given for a session that failed at step with
 * message: ECONNREFUSED for a refusal, EACCES for one that says the
 * caller may not, ETIMEDOUT, EHOSTUNREACH, ...
 */
int shim_errno(enum five_step step, const char *message);

/* One line, "five-shim: " and the text, to $FIVE_SHIM_LOG (appended) or standard error. */
void shim_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
