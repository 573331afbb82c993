/*
 * Creating listening sockets: the one privileged step of opening a
 * listener, done by the monitor under privilege separation.
 */
#ifndef FIVE_SOCKETS_H
#define FIVE_SOCKETS_H

#include <stdbool.h>
#include <sys/un.h>
#include <uv.h>

#include "common/addr.h"

#define SOCKETS_BACKLOG 1024

/* A Unix listener is a public entry point like a TCP port: restrict it with its directory. */
#define SOCKETS_UNIX_MODE 0666

/*
 * A non-blocking, close-on-exec socket listening on a: TCP (an IPv6
 * address listens on IPv6 only), or a Unix socket of type SOCK_STREAM, or
 * SOCK_SEQPACKET when seqpacket (the control socket).  A Unix socket file
 * left by a process that no longer answers on it is replaced.  A TCP
 * listener for sessions has a relayed connection's options (below) set
 * before it listens: every connection it accepts is a copy of it, options
 * included, and needs none set again.  Returns the descriptor, or -errno.
 */
int sockets_listen(const struct addr_spec *a, bool seqpacket, bool sessions);

/*
 * n TCP sockets for sessions listening on a together (SO_REUSEPORT),
 * fds[0..n) in order, one for each worker: the kernel hands each new
 * connection to the one its source address picks (a hash of the source
 * tables' key, addr.h), so that every connection from one source goes
 * to one worker, whose tables then count all of them.  Returns 0, or
 * -errno (none left open).
 */
int sockets_listen_group(const struct addr_spec *a, unsigned n, int *fds);

/* A Unix stream socket listening on sun (len bytes, an abstract name): the descriptor, or -errno.
 */
int sockets_listen_abstract(const struct sockaddr_un *sun, socklen_t len);

/*
 * A relayed TCP connection's options: TCP_NODELAY, and the reset on close
 * (sockets_reset_on_close).  Returns 0, or -1 when the kernel refused one.
 */
int sockets_relayed(int fd);

/*
 * Whether fd has both options: a TCP listener made for sessions as above,
 * whose connections then have them too.  One that systemd made may not.
 */
bool sockets_are_relayed(int fd);

/*
 * Whether closing the TCP socket fd, or the death of this process, resets
 * the connection (SO_LINGER with a zero timeout) instead of ending it
 * cleanly: set on every relayed connection, so that a worker that dies
 * mid-stream is never taken for a stream that ended; cleared before an
 * orderly close.  For TCP sockets only; a listening socket's connections
 * inherit it.  Returns 0, or -1 when the kernel refused it.
 */
int sockets_reset_on_close(int fd, bool reset);

/*
 * Whether the peer reset the TCP connection of h whose end of stream was
 * just reported (false for any other handle): libuv reports the end when
 * the kernel says the connection hung up, without the read that would
 * have returned the reset, and a failed write may have taken the reset's
 * error first.  ours_ended: our side of it was asked to end (a shutdown),
 * which may close it in order.
 */
bool sockets_end_was_reset(const uv_handle_t *h, bool ours_ended);

/*
 * Whether the peer of h's TCP connection has acknowledged every byte
 * written to it (true for any other handle, or when the kernel will not
 * say): a reset drops what is not.
 */
bool sockets_all_acked(const uv_handle_t *h);

/*
 * Ends the write side of h's socket at once, if nothing is queued on it:
 * libuv's uv_shutdown waits a loop iteration for it and changes the epoll
 * set to do so.  False leaves it to uv_shutdown: bytes are queued, or h is
 * no socket.  A peer already gone counts as done, as for uv_shutdown.
 */
bool sockets_shut_now(uv_stream_t *h);

#endif
