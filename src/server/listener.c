#include "server/listener.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "server/priv.h"
#include "server/server.h"
#include "server/sockets.h"

static void
on_connection(uv_stream_t *st, int status)
{
	struct listener *l = st->data;

	if (status < 0) {
		log_warn("accept on %s: %s", l->bound, uv_strerror(status));
		return;
	}
	session_accept(l->srv, st, l->is_tcp);
}

static void
free_listener(uv_handle_t *h)
{
	free(h->data);
}

void
listener_close(struct listener *l)
{
	/* Under privilege separation the monitor made the file and removes it. */
	if (l->unlink_path[0] != '\0' && !l->srv->priv->separated)
		unlink(l->unlink_path);
	uv_close(&l->h.handle, free_listener);
}

/* What a listener is bound to, in the written form, for the log. */
static void
note_bound(struct listener *l, const struct addr_spec *a, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct addr_spec b = *a;
	char ip[ADDR_IP_MAX];
	uint16_t port;

	if (a->kind == ADDR_TCP && getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
	    sockaddr_ip((struct sockaddr *)&ss, ip, &port) == 0) {
		b.port = port;
		str_copy(b.host, ip, sizeof(b.host));
	}
	addr_format(&b, l->bound, sizeof(l->bound));
}

/* Wraps a listening descriptor from priv_listen in a libuv handle. */
static int
adopt(struct listener *l, const struct addr_spec *a, int fd)
{
	int r;

	l->is_tcp = a->kind == ADDR_TCP;
	if (l->is_tcp) {
		uv_tcp_init(l->srv->loop, &l->h.tcp);
		r = uv_tcp_open(&l->h.tcp, fd);
	} else {
		uv_pipe_init(l->srv->loop, &l->h.pipe, 0);
		r = uv_pipe_open(&l->h.pipe, fd);
		str_copy(l->unlink_path, a->path, sizeof(l->unlink_path));
	}
	l->h.handle.data = l;
	if (r != 0) {
		close(fd);
		return r;
	}
	note_bound(l, a, fd);
	return uv_listen(&l->h.stream, SOCKETS_BACKLOG, on_connection);
}

struct listener *
listener_open(struct server *srv, const struct addr_spec *a, const char *configured, int *err)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		*err = UV_ENOMEM;
		return NULL;
	}
	int fd;

	l->srv = srv;
	str_copy(l->configured, configured, sizeof(l->configured));
	if ((fd = priv_listen(srv->priv, a, false)) < 0) {
		*err = uv_translate_sys_error(-fd);
		free(l);
		return NULL;
	}
	if ((*err = adopt(l, a, fd)) != 0) {
		listener_close(l);
		return NULL;
	}
	return l;
}
