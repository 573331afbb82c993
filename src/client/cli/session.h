/*
 * One session of the five command: dial, request (pipelined with whatever
 * the application has already sent), relay.
 */
#ifndef FIVE_CLI_SESSION_H
#define FIVE_CLI_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "five.h"

/* Application bytes already waiting are sent in the same write as the request; at most: */
#define CLI_EARLY_MAX (16 * 1024)

/* What five says on a terminal once the service is granted: service, then host. */
#define CLI_CONNECTED_FORMAT "five: connected to %s on %s; type, Ctrl-D ends"

/* What the user asked for on the command line. */
struct cli_request {
	const char *host;
	const char *service;
	struct five_options opts;
	/*
	 * Send application bytes only after the grant.  fived holds pipelined
	 * bytes for the service; some other TCPMUX servers (xinetd) drop them.
	 */
	bool wait_for_grant;
	/* Ask in the USP dialect's messages (docs/PROTOCOL.md section 8), not request lines. */
	bool usp;
	/* five -L: every connection a stream of one multiplexed session (section 11). */
	bool multiplex;
};

/*
 * five --detachable HOST SERVICE: as cli_session on standard input and
 * output, but through a multiplexed session that outlives its
 * connections (docs/PROTOCOL.md section 12), with one stream.  Returns
 * 0, or -1 with err filled (the session's failure, a reset stream).
 */
int cli_session_detachable(const struct cli_request *req, int in_fd, int out_fd,
                           struct five_error *err);

/*
 * What five says on standard error of a detachable session's connection
 * (arg: the host's name): that it broke, and that it was attached again.
 * A mux_resume_fn.
 */
void cli_on_resume(void *arg, bool attached, const char *why, uint64_t ms);

/*
 * After the service ended its side, how long standard input may be quiet
 * before five ends its own: a service that ended its side may still read
 * what comes (an upload that keeps coming is relayed to its end).
 */
#define CLI_INPUT_QUIET_MS 1000

/* The relay's quiet_ms for standard input in_fd: none for a terminal, where nobody uploads. */
int cli_input_quiet_ms(int in_fd);

/* A five_options notice that goes to standard error as "five: TEXT". */
void cli_notice(void *arg, const char *text);

/*
 * Runs a session between the application's in_fd/out_fd and the requested
 * service.  out_is_socket: out_fd is a connected socket (five -L).
 * Otherwise (standard input and output): when in_fd is a terminal, the
 * grant is awaited and a line on standard error says that five is
 * waiting for input; and SIGHUP stops the relay, cleanly if in_fd has
 * ended (ssh sends it to its ProxyCommand as it exits).  taken (taken_len
 * bytes, at most CLI_EARLY_MAX) is what was read of in_fd already, sent
 * first.  Returns 0 or -1 with err filled.
 */
int cli_session(const struct cli_request *req, int in_fd, int out_fd, bool out_is_socket,
                const void *taken, size_t taken_len, struct five_error *err);

/*
 * cli_session for a forwarded connection conn (five -L's, the gateway's),
 * both its input and its output.  conn resets when closed unless the
 * session ended in order (0), also when the kernel closes it for a
 * process killed outright: an end in order would pass a cut stream off
 * as whole.  Returns 0, or -1 with err filled; the caller closes conn.
 */
int cli_session_forwarded(const struct cli_request *req, int conn, struct five_error *err);

/*
 * The step five names in its messages, and by its exit code, for step.
 * A server five does not trust (FIVE_ERR_TRUST) is "refused", exit code
 * 5, as it was before libfive told it apart from fived's own refusal:
 * five(1) documents both, and scripts read them.
 */
enum five_step cli_shown_step(enum five_step step);

#endif
