/*
 * inetd's classic internal services, served inside fived: echo (RFC 862),
 * discard (RFC 863), daytime (RFC 867), chargen (RFC 864, rate-limited).
 * Each runs on one end of a socketpair whose other end is the session's
 * backend, so a session relays to a built-in exactly as to any backend.
 */
#ifndef FIVE_BUILTIN_H
#define FIVE_BUILTIN_H

#include <uv.h>

#include "server/conf/config.h"
#include "server/policy/budget.h"

/*
 * Starts svc's built-in on fd (which it takes over: the fd is closed with
 * the built-in).  Its output is charged to budget, which must outlive it
 * (the server's relay budget): echo reads no further while the budget is
 * reached and its output waits, as the relay does.  The built-in frees
 * itself when its peer goes away.  Returns 0 or a libuv error; on error
 * fd is not taken.
 */
int builtin_start(uv_loop_t *loop, int fd, const struct service *svc, struct budget *budget);

#endif
