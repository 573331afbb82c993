/* splice(2) through a pipe (splice.h). */
#include "server/stream/splice.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* SPLICE_F_MOVE: pages move rather than copy where the kernel can; NONBLOCK: never wait. */
#define SPLICE_FLAGS (SPLICE_F_MOVE | SPLICE_F_NONBLOCK)

void
splice_pipe_init(struct splice_pipe *p)
{
	p->rd = p->wr = -1;
	p->size = p->held = 0;
}

int
splice_pipe_open(struct splice_pipe *p)
{
	int fds[2], size;

	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
		return -errno;
	/*
	 * A user over its pipe pages (fs.pipe-user-pages-soft) gets pipes of two
	 * pages and cannot resize them: so small, they would move bytes slower
	 * than copies do, and the caller copies instead.
	 */
	if ((size = fcntl(fds[1], F_SETPIPE_SZ, SPLICE_PIPE_SIZE)) < 0) {
		size = -errno;
		close(fds[0]);
		close(fds[1]);
		return size;
	}
	p->rd = fds[0];
	p->wr = fds[1];
	p->size = (size_t)size;
	p->held = 0;
	return 0;
}

void
splice_pipe_close(struct splice_pipe *p)
{
	if (p->rd >= 0)
		close(p->rd);
	if (p->wr >= 0)
		close(p->wr);
	splice_pipe_init(p);
}

ssize_t
splice_pipe_in(struct splice_pipe *p, int fd)
{
	ssize_t n;

	do
		n = splice(fd, NULL, p->wr, NULL, p->size - p->held, SPLICE_FLAGS);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	p->held += (size_t)n;
	return n;
}

ssize_t
splice_pipe_out(struct splice_pipe *p, int fd)
{
	ssize_t n;

	do
		n = splice(p->rd, NULL, fd, NULL, p->held, SPLICE_FLAGS);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	p->held -= (size_t)n;
	return n;
}
