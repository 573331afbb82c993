/*
 * One session of the five command: dial, request (pipelined with whatever
 * the application has already sent), relay.
 */
#ifndef FIVE_CLI_SESSION_H
#define FIVE_CLI_SESSION_H

#include <stdbool.h>

#include "five.h"

/*
 * Runs a session between the application's in_fd/out_fd and service on
 * host.  out_is_socket: out_fd is a connected socket (five -L).  Returns 0
 * or -1 with err filled.
 */
int cli_session(const char *host, const char *service, const struct five_options *opts,
		int in_fd, int out_fd, bool out_is_socket, struct five_error *err);

#endif
