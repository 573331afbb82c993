/*
 * five_connect for an event loop (five.h, five_connect_start): the
 * blocking work runs on a thread of libfive, and a pipe becomes readable
 * once it is done.  The caller owns the pending connect until
 * five_connect_finish or five_connect_cancel; after a cancel, the thread
 * frees it when it is done.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/base/thread.h"
#include "five.h"

struct five_pending {
	pthread_mutex_t lock;
	bool done;      /* the connect returned: fd and err are its result */
	bool cancelled; /* nobody will finish it: the thread frees it */
	int done_pipe[2];
	int fd;
	struct five_error err;
	const char *host, *service;
	const struct five_options *opts;
	void *early; /* a copy, owned */
	size_t len;
};

static void
pending_free(struct five_pending *p)
{
	close(p->done_pipe[0]);
	close(p->done_pipe[1]);
	pthread_mutex_destroy(&p->lock);
	free(p->early);
	free(p);
}

static void *
pending_run(void *arg)
{
	struct five_pending *p = arg;
	int fd = five_connect_early(p->host, p->service, p->opts, p->early, p->len, &p->err);
	bool cancelled;

	pthread_mutex_lock(&p->lock);
	p->fd = fd;
	p->done = true;
	cancelled = p->cancelled;
	/*
	 * The byte wakes the caller's loop; it goes under the lock, since the
	 * caller may free p as soon as the lock is let go.  One byte in an
	 * empty pipe cannot block.
	 */
	while (!cancelled && write(p->done_pipe[1], "", 1) < 0 && errno == EINTR)
		;
	pthread_mutex_unlock(&p->lock);
	if (cancelled) {
		if (fd >= 0)
			close(fd);
		pending_free(p);
	}
	return NULL;
}

struct five_pending *
five_connect_start(const char *host, const char *service, const struct five_options *opts,
                   const void *early, size_t len, struct five_error *err)
{
	struct five_error scratch;
	struct five_pending *p;

	err = five_error_or(err, &scratch);
	if ((p = calloc(1, sizeof(*p))) == NULL || (len > 0 && (p->early = malloc(len)) == NULL)) {
		free(p);
		five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
		return NULL;
	}
	if (pipe2(p->done_pipe, O_CLOEXEC) != 0) {
		free(p->early);
		free(p);
		five_fail(err, FIVE_ERR_SYSTEM, "cannot make a pipe");
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	if (len > 0)
		memcpy(p->early, early, len);
	p->len = len;
	p->host = host;
	p->service = service;
	p->opts = opts;
	p->fd = -1;
	if (five_thread_start(pending_run, p, NULL) != 0) {
		pending_free(p);
		five_fail(err, FIVE_ERR_SYSTEM, "cannot start a thread");
		return NULL;
	}
	return p;
}

int
five_pending_fd(const struct five_pending *p)
{
	return p->done_pipe[0];
}

int
five_connect_finish(struct five_pending *p, struct five_error *err)
{
	struct pollfd pfd = {.fd = p->done_pipe[0], .events = POLLIN};
	struct five_error scratch;
	int fd;

	err = five_error_or(err, &scratch);
	while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&p->lock);
	fd = p->fd;
	*err = p->err;
	pthread_mutex_unlock(&p->lock);
	pending_free(p);
	return fd;
}

void
five_connect_cancel(struct five_pending *p)
{
	bool done;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	done = p->done;
	p->cancelled = true;
	pthread_mutex_unlock(&p->lock);
	if (!done)
		return;
	if (p->fd >= 0)
		close(p->fd);
	pending_free(p);
}
