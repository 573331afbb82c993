/*
 * five's side of five agent (agent.h): a service request made through the
 * agent named by FIVE_AGENT_SOCK, when it can be.
 */
#ifndef FIVE_CLI_AGENTUSE_H
#define FIVE_CLI_AGENTUSE_H

#include <stdbool.h>

#include "client/cli/session.h"
#include "five.h"

/*
 * Relays in_fd and out_fd through the agent as a stream for req.  Sets
 * *direct (and returns 0) when the agent cannot serve it: none runs, the
 * request needs what the agent cannot do (a password, a token), or it
 * declined; the caller then goes direct.  Otherwise returns as
 * cli_session does: 0, or -1 with err filled (FIVE_ERR_REFUSED with
 * fived's reason).  A stream of a multiplexed session learns no more of a
 * redirect than its word (docs/PROTOCOL.md section 2.13): when what was
 * read of in_fd before the answer fits in taken (CLI_EARLY_MAX bytes;
 * *taken_len says how many), *direct is set then too, so that a session
 * of five's own can learn where to go, and send them.
 */
int cli_agent_session(const struct cli_request *req, int in_fd, int out_fd, char *taken,
                      size_t *taken_len, bool *direct, struct five_error *err);

#endif
