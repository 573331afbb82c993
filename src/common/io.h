/*
 * Blocking reads and writes of exact lengths, for the few places that do
 * blocking I/O (privilege separation, the PAM helper, the client).
 */
#ifndef FIVE_IO_H
#define FIVE_IO_H

#include <stddef.h>

/* Reads exactly len bytes, retrying on EINTR.  Returns 0, or -1 at end of stream or error. */
int io_read_all(int fd, void *p, size_t len);

/* Writes exactly len bytes, retrying on EINTR.  Returns 0 or -1. */
int io_write_all(int fd, const void *p, size_t len);

#endif
