/*
 * five through a running agent (five agent): the request goes to the agent
 * as one line, and the connection to it becomes the stream.  Whenever the
 * agent cannot serve the request (none runs, it declines, its session
 * cannot be had), five goes direct, silently.
 */
#include "client/cli/agentuse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/base/sock.h"
#include "client/cli/agent.h"
#include "client/cli/agentline.h"
#include "client/cli/session.h"
#include "client/cli/signals.h"
#include "client/relay/relay.h"

/* The agent's socket named by the environment, connected; or -1. */
static int
dial(void)
{
	const char *path = getenv(AGENT_ENV);

	return path != NULL && path[0] != '\0' ? cli_agent_dial(path) : -1;
}

int
cli_agent_session(const struct cli_request *req, int in_fd, int out_fd, char *taken,
                  size_t *taken_len, bool *direct, struct five_error *err)
{
	char line[AGENT_LINE_MAX], answer[FIVE_LINE_MAX], note[2 * FIVE_LINE_MAX];
	struct five_error ignored;
	struct relay_ends ends;
	bool input_read = false;
	int fd, r;

	*direct = true;
	if (agent_line_encode(req, line, sizeof(line)) != 0 || (fd = dial()) < 0)
		return 0;
	/* "ready" comes once the agent has the session: until then five may still go direct. */
	if (five_sock_send_all(fd, line, strlen(line), &ignored) != 0 ||
	    five_sock_read_line(
	            fd, req->opts.timeout_ms > 0 ? req->opts.timeout_ms : FIVE_DEFAULT_TIMEOUT_MS,
	            answer, sizeof(answer), &ignored) != 0 ||
	    strcmp(answer, "ready") != 0) {
		close(fd);
		return 0;
	}
	*direct = false;
	snprintf(note, sizeof(note), CLI_CONNECTED_FORMAT, req->service, req->host);
	/* The stream's first bytes go at once; fived's answer comes first on the way back. */
	ends = (struct relay_ends){
	        .in_fd = in_fd,
	        .out_fd = out_fd,
	        .sock = fd,
	        .quiet_ms = cli_input_quiet_ms(in_fd),
	        .replies = 1,
	        .granted_note = isatty(in_fd) ? note : NULL,
	        .marked_ends = true,
	        .timeout_ms =
	                req->opts.timeout_ms > 0 ? req->opts.timeout_ms : FIVE_DEFAULT_TIMEOUT_MS,
	        .stop_fd = cli_signals_catch(true),
	        .resend = taken,
	        .resend_size = CLI_EARLY_MAX,
	        .resend_len = taken_len,
	        .input_read = &input_read,
	};
	r = five_relay(&ends, err);
	close(fd);
	cli_signals_die_if_caught();
	if (r == 0 || err->step != FIVE_ERR_REFUSED || strcmp(err->message, "redirect") != 0)
		return r;
	if (input_read)
		return req->opts.no_redirect
		               ? r
		               : five_fail(
		                         err, FIVE_ERR_REFUSED,
		                         "redirect, which a stream of the agent's session cannot "
		                         "follow after %d KiB of input: five --no-agent follows it",
		                         CLI_EARLY_MAX / 1024);
	/* A session of its own, sent what was read, follows it or names where it goes. */
	*direct = true;
	return 0;
}
