/*
 * The five command's relay between an application's stream (standard
 * input and output, or a forwarded connection) and a session with fived.
 */
#ifndef FIVE_CLI_RELAY_H
#define FIVE_CLI_RELAY_H

#include <stdbool.h>

#include "five.h"

struct relay_ends {
	int in_fd;          /* what the application sends */
	int out_fd;         /* where what the service sends goes */
	int sock;           /* the session with fived, request already sent */
	bool out_is_socket; /* end out_fd with shutdown(), and wait for in_fd to end too */
	unsigned replies;   /* reply lines still due before the service is granted */
	bool hold_input;    /* send nothing until the grant (servers that drop pipelined bytes) */
	int timeout_ms;     /* for those replies */
};

/*
 * Moves bytes both ways until the session ends.  The application's bytes
 * flow at once, before the grant arrives (they were pipelined with the
 * request).  Returns 0, or -1 with err filled when the request is refused
 * or the session fails.
 */
int cli_relay(const struct relay_ends *e, struct five_error *err);

#endif
