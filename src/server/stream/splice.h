/*
 * A pipe to move one direction of a relay with splice(2): bytes go from a
 * socket into the pipe and from the pipe into the other socket without
 * ever being copied into fived's memory.  Only the calls, on descriptors
 * the caller owns and has made non-blocking; when to call them is the
 * caller's (stream.c).
 */
#ifndef FIVE_SPLICE_H
#define FIVE_SPLICE_H

#include <stddef.h>
#include <sys/types.h>

/* What a pipe holds; the kernel may round it up. */
#define SPLICE_PIPE_SIZE (64 * 1024)

struct splice_pipe {
	int rd, wr;  /* the pipe's ends, -1 when closed */
	size_t size; /* what it holds at most, as the kernel says */
	size_t held; /* bytes in it now */
};

/* A closed pipe: splice_pipe_close on it is a no-op. */
void splice_pipe_init(struct splice_pipe *p);

/*
 * Opens p, non-blocking and close-on-exec, empty, of SPLICE_PIPE_SIZE at
 * least.  Returns 0 or -errno (EPERM: the user may not have such a pipe).
 */
int splice_pipe_open(struct splice_pipe *p);

/* Closes p, discarding what it holds.  Safe more than once. */
void splice_pipe_close(struct splice_pipe *p);

/* Moves what fd has, up to the room in p, into p: bytes moved, 0 at fd's end, or -errno. */
ssize_t splice_pipe_in(struct splice_pipe *p, int fd);

/* Moves what p holds into fd, as far as fd takes it: bytes moved, or -errno. */
ssize_t splice_pipe_out(struct splice_pipe *p, int fd);

#endif
