/*
 * five -L --multiplex: the connections a forwarder accepts become streams
 * of one multiplexed session (docs/PROTOCOL.md section 11), opened with
 * the first of them; a new one replaces it once it has failed or fived
 * takes no new streams on it.
 */
#ifndef FIVE_CLI_SHARED_H
#define FIVE_CLI_SHARED_H

#include <stdbool.h>

#include "client/cli/session.h"

/* Sessions that no longer take streams, kept until their streams are over. */
#define SHARED_RETIRED_MAX 8

struct shared {
	const struct cli_request *req;
	struct five_session *current; /* NULL until a connection comes, or after a failure */
	struct five_session *retired[SHARED_RETIRED_MAX];
	bool fallback; /* fived refused MULTIPLEX: one session per connection */
};

/*
 * Hands conn (which the session owns from then on) to the shared session
 * as a stream.  Returns true when it did (or gave conn up, with a message
 * on standard error), false when fived does not multiplex: the caller
 * serves conn on a session of its own.
 */
bool shared_take(struct shared *sh, int conn);

/* Closes the retired sessions whose streams are all over. */
void shared_reap(struct shared *sh);

/* Closes every session: the streams still open are reset (five_session_close). */
void shared_close(struct shared *sh);

#endif
