#include "server/privsep/logpipe.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define NAME "fived" /* the worker's, as it would name itself on standard error */

void
logpipe_init(struct logpipe *lp)
{
	lp->fd = -1;
	lp->pid = 0;
	lp->len = 0;
}

int
logpipe_open(struct logpipe *lp)
{
	int p[2];

	logpipe_close(lp);
	if (pipe2(p, O_CLOEXEC) != 0 || fcntl(p[0], F_SETFL, O_NONBLOCK) != 0) {
		log_error("cannot make a pipe for the worker's log: %s", strerror(errno));
		return -1;
	}
	lp->fd = p[0];
	return p[1];
}

/* Logs each whole line in buf; a full buffer without a newline is logged as it is. */
static void
pass_lines(struct logpipe *lp)
{
	char *nl;
	size_t n;

	while ((nl = memchr(lp->buf, '\n', lp->len)) != NULL || lp->len == sizeof(lp->buf) - 1) {
		n = nl != NULL ? (size_t)(nl - lp->buf) : lp->len;
		lp->buf[n] = '\0';
		log_pass(NAME, lp->pid, lp->buf);
		if (nl != NULL)
			n++; /* the newline */
		memmove(lp->buf, lp->buf + n, lp->len - n);
		lp->len -= n;
	}
}

/* Reads until the pipe is empty (0) or ended (1). */
static int
drain(struct logpipe *lp)
{
	ssize_t n;

	for (;;) {
		n = read(lp->fd, lp->buf + lp->len, sizeof(lp->buf) - 1 - lp->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? 1 : 0;
		lp->len += (size_t)n;
		pass_lines(lp);
	}
}

void
logpipe_read(struct logpipe *lp)
{
	if (lp->fd >= 0 && drain(lp) == 1)
		logpipe_close(lp);
}

void
logpipe_close(struct logpipe *lp)
{
	if (lp->fd < 0)
		return;
	drain(lp);
	if (lp->len > 0) {
		lp->buf[lp->len] = '\0';
		log_pass(NAME, lp->pid, lp->buf);
	}
	close(lp->fd);
	logpipe_init(lp);
}
