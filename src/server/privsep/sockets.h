/*
 * Creating listening sockets: the one privileged step of opening a
 * listener, done by the monitor under privilege separation.
 */
#ifndef FIVE_SOCKETS_H
#define FIVE_SOCKETS_H

#include <stdbool.h>

#include "common/addr.h"

#define SOCKETS_BACKLOG 1024

/* A Unix listener is a public entry point like a TCP port: restrict it with its directory. */
#define SOCKETS_UNIX_MODE 0666

/*
 * A non-blocking, close-on-exec socket listening on a: TCP (an IPv6
 * address listens on IPv6 only), or a Unix socket of type SOCK_STREAM, or
 * SOCK_SEQPACKET when seqpacket (the control socket).  A Unix socket file
 * left by a process that no longer answers on it is replaced.  Returns the
 * descriptor, or -errno.
 */
int sockets_listen(const struct addr_spec *a, bool seqpacket);

/*
 * Whether closing the TCP socket fd, or the death of this process, resets
 * the connection (SO_LINGER with a zero timeout) instead of ending it
 * cleanly: set on every relayed connection, so that a worker that dies
 * mid-stream is never taken for a stream that ended; cleared before an
 * orderly close.  For TCP sockets only.
 */
void sockets_reset_on_close(int fd, bool reset);

#endif
