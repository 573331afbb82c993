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
#include "server/server.h"

/* A Unix listener is a public entry point, like a TCP port. */
#define UNIX_LISTENER_MODE 0666

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
	if (l->unlink_path[0] != '\0')
		unlink(l->unlink_path);
	uv_close(&l->h.handle, free_listener);
}

static int
open_tcp(struct listener *l, const struct addr_spec *a)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char ip[ADDR_IP_MAX];
	uint16_t port;
	int r;

	l->is_tcp = true;
	uv_tcp_init(l->srv->loop, &l->h.tcp);
	l->h.handle.data = l;
	/* [::] means IPv6 only: IPv4 is listed separately, as it is written. */
	r = uv_tcp_bind(&l->h.tcp, (const struct sockaddr *)&a->sa,
	                a->sa.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
	if (r == 0)
		r = uv_listen(&l->h.stream, LISTEN_BACKLOG, on_connection);
	if (r == 0 && uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&ss, &len) == 0 &&
	    sockaddr_ip((struct sockaddr *)&ss, ip, &port) == 0) {
		struct addr_spec b = *a;
		b.port = port;
		str_copy(b.host, ip, sizeof(b.host));
		addr_format(&b, l->bound, sizeof(l->bound));
	}
	return r;
}

/* A socket file nobody answers on is left from a previous run and may be removed. */
static bool
stale_socket(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool stale;

	if (fd < 0)
		return false;
	str_copy(sun.sun_path, path, sizeof(sun.sun_path));
	stale = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 && errno == ECONNREFUSED;
	close(fd);
	return stale;
}

static int
open_unix(struct listener *l, const struct addr_spec *a)
{
	int r;

	l->is_tcp = false;
	uv_pipe_init(l->srv->loop, &l->h.pipe, 0);
	l->h.handle.data = l;
	r = uv_pipe_bind(&l->h.pipe, a->path);
	if (r == UV_EADDRINUSE && stale_socket(a->path)) {
		unlink(a->path);
		r = uv_pipe_bind(&l->h.pipe, a->path);
	}
	if (r != 0)
		return r;
	str_copy(l->unlink_path, a->path, sizeof(l->unlink_path));
	/* Restrict who may connect with the permissions of the directory. */
	if (chmod(a->path, UNIX_LISTENER_MODE) != 0)
		r = uv_translate_sys_error(errno);
	else
		r = uv_listen(&l->h.stream, LISTEN_BACKLOG, on_connection);
	addr_format(a, l->bound, sizeof(l->bound));
	return r;
}

struct listener *
listener_open(struct server *srv, const struct addr_spec *a, const char *configured, int *err)
{
	struct listener *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		*err = UV_ENOMEM;
		return NULL;
	}
	l->srv = srv;
	str_copy(l->configured, configured, sizeof(l->configured));
	*err = a->kind == ADDR_TCP ? open_tcp(l, a) : open_unix(l, a);
	if (*err != 0) {
		listener_close(l);
		return NULL;
	}
	return l;
}
