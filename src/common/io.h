/*
 * Blocking reads and writes of exact lengths, for the few places that do
 * blocking I/O (privilege separation, the PAM helper, the client).
 */
#ifndef FIVE_IO_H
#define FIVE_IO_H

#include <stddef.h>
#include <sys/types.h>

/* Reads exactly len bytes, retrying on EINTR.  Returns 0, or -1 at end of stream or error. */
int io_read_all(int fd, void *p, size_t len);

/* Writes exactly len bytes, retrying on EINTR.  Returns 0 or -1. */
int io_write_all(int fd, const void *p, size_t len);

/*
 * One sendmsg(2) of data[0..len) on the Unix socket sock, with the
 * descriptor fd attached when fd >= 0 (SCM_RIGHTS), retried on EINTR.
 * Returns what sendmsg returns.
 */
ssize_t io_send_with_fd(int sock, const void *data, size_t len, int fd, int flags);

/*
 * Reads the whole regular file path, at most max bytes, into *text
 * (malloc'd with a NUL after the *len bytes; the caller frees).  Returns
 * 0, or -errno (-EFBIG when larger than max, -EINVAL when not a regular
 * file) with *text NULL.
 */
int io_read_file(const char *path, size_t max, char **text, size_t *len);

/*
 * Replaces path with data[0..len) so that readers see the old file or the
 * new one, never a mix: writes path.new.PID with mode, syncs it, renames
 * it over path.  Returns 0, or -errno with nothing left behind.
 */
int io_replace_file(const char *path, const void *data, size_t len, int mode);

#endif
