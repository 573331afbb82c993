/*
 * five agent's local protocol, on its Unix socket (five(1), AGENT).
 *
 *	C: open host=H service=S [port=P] [transport=plain|tls] [key=K]
 *	        [vhost=V] [auth=pubkey] [key_file=F] [user=U] [tls_cert=F]
 *	        [tls_key=F] [known_hosts=F] [identity_file=F] [ends=all-marked] LF
 *	A: "ready" LF              the agent has a session for it
 *	   "! REASON" LF           it has none and will not: go direct
 *	A: "+" LF | "- REASON" LF  fived's answer to the stream
 *	then the connection is the stream, both ways.
 *
 *	C: stop LF                 A: "+" LF, and the agent exits
 *
 * ends=all-marked: the stream's ends are marked both ways (base/sock.h):
 * after "+", a reset comes as a mark and its reason and an end in order
 * behind its mark, so that neither a reset nor the agent's death passes
 * for a complete stream, and five marks its own end in order, so that a
 * five that dies resets the stream; five always asks (an agent too old
 * to know it refuses the value, and five goes direct).
 *
 * A value is printable and has no space: a request that needs one goes
 * direct.  The client may send the stream's first bytes right behind its
 * line: they wait in the socket until the stream is opened.
 */
#ifndef FIVE_CLI_AGENTLINE_H
#define FIVE_CLI_AGENTLINE_H

#include <stdbool.h>
#include <stddef.h>

#include "client/cli/session.h"
#include "five.h"

#define AGENT_LINE_MAX  4096
#define AGENT_VALUE_MAX 1024
#define AGENT_ENV       "FIVE_AGENT_SOCK"

/* A request as the agent reads it: options pointing into its own strings. */
struct agent_request {
	char line[AGENT_LINE_MAX];
	const char *host, *service;
	struct five_options opts;
	struct five_auth auth;
	const char *known_hosts, *identity_file; /* the client's, or NULL: as the agent's */
	bool marked_ends;                        /* ends=all-marked */
	char key[AGENT_LINE_MAX]; /* what picks the session: the line without the service */
};

/*
 * The open line for req into line[0..size), with its LF.  Returns 0, or
 * -1 when the request cannot go through the agent (a password, a token,
 * USP, -w, a value with a space).
 */
int agent_line_encode(const struct cli_request *req, char *line, size_t size);

/* Parses an open line (without its LF) into r.  Returns 0, or -1 with why set. */
int agent_line_parse(const char *line, struct agent_request *r, const char **why);

#endif
