/*
 * Blocking writes and line reads on a connected socket, failing as
 * base/error.h says.
 */
#ifndef FIVE_CLIENT_BASE_SOCK_H
#define FIVE_CLIENT_BASE_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "five.h"

/* A stream connection to the Unix socket at path (close-on-exec), or -1. */
int five_sock_dial_unix(const char *path);

/*
 * Reads one line (its LF, and a CR before it, taken off) into line[0..size),
 * without reading past it.  timeout_ms bounds the whole line, not the silence
 * between its bytes: a server that trickles a byte at a time cannot hold the
 * client longer.  Returns 0, or -1 with err filled.
 */
int five_sock_read_line(int fd, int timeout_ms, char *line, size_t size, struct five_error *err);

/* Milliseconds until deadline (monotonic_ms()), for poll: 0 once it has passed. */
int five_ms_left(uint64_t deadline);

/* Writes all of data.  Returns 0, or -1 with err filled. */
int five_sock_send_all(int fd, const void *data, size_t len, struct five_error *err);

/*
 * Writes all of data on the socket fd, waiting for room until deadline
 * (monotonic_ms()) at most.  Returns 0, or -1 with err filled.
 */
int five_sock_send_by(int fd, const void *data, size_t len, uint64_t deadline,
                      struct five_error *err);

/*
 * Ends told on a Unix stream socket, which has no reset of its own and
 * whose end a process's death makes too (five agent's streams,
 * agentline.h), by a mark: one byte carrying a descriptor (SCM_RIGHTS),
 * always the last of the read that takes it, so that the reader finds it
 * whatever came before.  Every end is marked, both ways: an end of stream
 * behind FIVE_MARK_END is one in order, behind FIVE_MARK_RESET (its
 * reason follows as text) a reset, and without a mark the peer died.
 */
#define FIVE_MARK_END   'E'
#define FIVE_MARK_RESET 'R'

/*
 * Sends the mark on fd, the descriptor it carries being fd itself (the
 * reader closes it at once), without waiting.  Returns 1 when sent, 0
 * when fd has no room yet, -1 when it cannot be sent.
 */
int five_sock_send_mark(int fd, char mark);

/*
 * recv() that finds a mark: *mark is the mark that ended the bytes read
 * (not counted in what is returned), or 0.  Descriptors that came are
 * closed.  Returns what recv() returns.
 */
ssize_t five_sock_recv_marked(int fd, void *buf, size_t len, char *mark);

/* Small writes (keystrokes, request lines) go without waiting for an ACK: 0 or -1. */
int five_sock_no_delay(int fd);

/*
 * A connected pair of loopback TCP sockets, close-on-exec, TCP_NODELAY:
 * what a socketpair gives, with TCP's reset, so that a stream handed to an
 * application can show a cut (five_sock_reset_on_close) as a cut, not as
 * an end of file.  pair[0] connected to pair[1], which a listener on an
 * ephemeral port accepted; the listener is closed at once, and a
 * connection that is not pair[0]'s (another process's, in that moment) is
 * closed.  Returns 0, or -1 with errno set.
 */
int five_sock_loopback_pair(int pair[2]);

/*
 * Makes fd's close reset its TCP connection (SO_LINGER 0): the peer
 * learns of a stream cut short.  One system call, async-signal-safe.
 */
void five_sock_reset_on_close(int fd);

/*
 * Undoes five_sock_reset_on_close once fd's stream has ended in order:
 * its close ends the connection in order too.  A stream whose descriptor
 * is armed from its start resets when five dies outright (SIGKILL), as
 * the kernel would otherwise end it in order.
 */
void five_sock_end_in_order(int fd);

#endif
