#include "server/daemon/acceptor.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"

struct acceptor {
	uv_poll_t poll;
	int fd;
	acceptor_fn take;
	void *arg;
	bool unlink; /* a Unix socket made by this process, not by a monitor */
	char path[ADDR_PATH_MAX + 1];
};

static void
on_accept(uv_poll_t *p, int status, int events)
{
	struct acceptor *acc = p->data;
	int fd;

	while ((fd = accept4(acc->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0)
		acc->take(acc->arg, fd);
}

struct acceptor *
acceptor_open(uv_loop_t *loop, struct priv *priv, const struct addr_spec *a, enum priv_socket kind,
              const char *what, acceptor_fn take, void *arg)
{
	struct acceptor *acc;
	char text[ADDR_TEXT_MAX];
	int fd;

	addr_format(a, text, sizeof(text));
	if ((fd = priv_listen(priv, a, kind)) < 0) {
		log_error("cannot open the %s %s: %s", what, text, strerror(-fd));
		return NULL;
	}
	if ((acc = calloc(1, sizeof(*acc))) == NULL) {
		log_error("out of memory");
		close(fd);
		return NULL;
	}
	acc->fd = fd;
	acc->take = take;
	acc->arg = arg;
	acc->unlink = a->kind == ADDR_UNIX && !priv->separated;
	memcpy(acc->path, a->path, sizeof(acc->path));
	uv_poll_init(loop, &acc->poll, fd);
	acc->poll.data = acc;
	uv_poll_start(&acc->poll, UV_READABLE, on_accept);
	log_info("%s on %s", what, text);
	return acc;
}

static void
free_acceptor(uv_handle_t *h)
{
	struct acceptor *acc = h->data;

	close(acc->fd);
	free(acc);
}

void
acceptor_close(struct acceptor *acc)
{
	if (acc == NULL)
		return;
	/* Under a monitor, the monitor made the file and removes it. */
	if (acc->unlink)
		unlink(acc->path);
	uv_close((uv_handle_t *)&acc->poll, free_acceptor);
}
