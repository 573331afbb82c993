#include "server/daemon/listener.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "server/conf/config.h"
#include "server/daemon/server.h"
#include "server/privsep/priv.h"
#include "server/privsep/sockets.h"
#include "server/session/session.h"

static const char BUSY[] = "server busy";

/* --- descriptors ----------------------------------------------------------- */

/* A descriptor that holds nothing, kept to be closed when accept runs out. */
static int
make_spare(void)
{
	return eventfd(0, EFD_CLOEXEC);
}

int
listener_limits(struct server *srv)
{
	struct rlimit rl;

	srv->spare_fd = -1;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		log_error("cannot read the descriptor limit: %s", strerror(errno));
		return -1;
	}
	srv->fd_limit = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
	srv->fd_reserve = srv->fd_limit / 8;
	if (srv->fd_reserve < LISTENER_RESERVE_MIN)
		srv->fd_reserve = LISTENER_RESERVE_MIN;
	if (srv->fd_reserve > LISTENER_RESERVE_MAX)
		srv->fd_reserve = LISTENER_RESERVE_MAX;
	if ((srv->spare_fd = make_spare()) < 0) {
		log_error("cannot make a spare descriptor: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void
listener_limits_free(struct server *srv)
{
	if (srv->spare_fd >= 0)
		close(srv->spare_fd);
	srv->spare_fd = -1;
}

/*
 * Says, within the log's rate limit, that a connection on fd is answered
 * busy for lack of descriptors: fd is within the reserve or, at_limit,
 * every descriptor is in use.  fd < 0: connections must wait.
 */
static void
note_shortage(struct listener *l, int fd, bool at_limit)
{
	struct server *srv = l->srv;
	unsigned long long limit = srv->fd_limit;

	if (!log_ratelimit_allow(&srv->fd_shortage, uv_now(srv->site.loop)))
		return;
	if (fd < 0)
		log_error("out of descriptors: all %llu in use; connections on %s wait until some "
		          "close",
		          limit, l->bound);
	else if (at_limit)
		log_error("out of descriptors: all %llu in use; a connection on %s is answered "
		          "\"%s\"",
		          limit, l->bound, BUSY);
	else
		log_error(
		        "out of descriptors: a connection on %s is answered \"%s\" (descriptor %d "
		        "of %llu; %u kept for sessions under way)",
		        l->bound, BUSY, fd, limit, srv->fd_reserve);
}

/* --- accepting ------------------------------------------------------------- */

static void on_readable(uv_poll_t *p, int status, int events);

static void
on_resume(uv_timer_t *t)
{
	struct listener *l = t->data;

	if (l->srv->spare_fd < 0)
		l->srv->spare_fd = make_spare();
	uv_poll_start(&l->poll, UV_READABLE, on_readable);
}

/* No connection can be taken now: stop trying for LISTENER_PAUSE_MS rather than spin. */
static void
pause_accepting(struct listener *l)
{
	uv_poll_stop(&l->poll);
	uv_timer_start(&l->pause, on_resume, LISTENER_PAUSE_MS, 0);
}

/* What a session is told of a connection accepted onto fd from peer (TCP; NULL: not known). */
static struct accepted_conn
accepted(const struct listener *l, int fd, const struct sockaddr_storage *peer)
{
	struct accepted_conn c = {.fd = fd, .kind = ACCEPTED_UNIX};

	if (l->is_tcp) {
		c.kind = l->tuned ? ACCEPTED_TCP_TUNED : ACCEPTED_TCP;
		c.peer = peer;
		c.local = l->local_fixed ? &l->local : NULL;
	}
	return c;
}

/* A connection accepted onto fd: a session, or a refusal when descriptors run short. */
static void
take(struct listener *l, int fd, const struct sockaddr_storage *peer)
{
	struct server *srv = l->srv;
	struct accepted_conn c = accepted(l, fd, peer);

	if ((uint64_t)fd + srv->fd_reserve >= srv->fd_limit) {
		note_shortage(l, fd, false);
		session_accept(&srv->site, &c, BUSY);
		return;
	}
	session_accept(&srv->site, &c, NULL);
}

/*
 * accept failed for lack of descriptors: the spare makes room for one
 * connection, answered busy and closed at once, and is made again.
 * Returns 0 when a connection was answered, 1 when none was waiting, -1
 * when there is no spare or accept still fails.
 */
static int
shed(struct listener *l)
{
	struct server *srv = l->srv;
	int fd, e;

	if (srv->spare_fd < 0)
		return -1;
	close(srv->spare_fd);
	fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	e = errno;
	if (fd >= 0) {
		struct accepted_conn c = accepted(l, fd, NULL);

		note_shortage(l, fd, true);
		session_accept(&srv->site, &c, BUSY);
	}
	srv->spare_fd = make_spare();
	if (fd >= 0)
		return 0;
	return e == EAGAIN || e == EWOULDBLOCK ? 1 : -1;
}

static void
on_readable(uv_poll_t *p, int status, int events)
{
	struct listener *l = p->data;
	struct server *srv = l->srv;
	struct sockaddr_storage peer;
	socklen_t len;
	int i, fd, e;

	(void)events;
	for (i = 0; status == 0 && i < LISTENER_ACCEPT_BATCH; i++) {
		if (uv_is_closing((uv_handle_t *)p))
			return;
		memset(&peer, 0, sizeof(peer));
		len = sizeof(peer);
		if ((fd = accept4(l->fd, (struct sockaddr *)&peer, &len,
		                  SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
			take(l, fd, &peer);
			continue;
		}
		e = errno;
		if (e == EINTR || e == ECONNABORTED)
			continue;
		if (e == EAGAIN || e == EWOULDBLOCK)
			return;
		if (e == EMFILE || e == ENFILE) {
			if ((e = shed(l)) == 0)
				continue;
			if (e > 0)
				return;
			note_shortage(l, -1, true);
		} else if (log_ratelimit_allow(&srv->site.refusals, uv_now(srv->site.loop))) {
			log_warn("accept on %s: %s", l->bound, strerror(e));
		}
		pause_accepting(l);
		return;
	}
	if (status < 0) {
		if (log_ratelimit_allow(&srv->site.refusals, uv_now(srv->site.loop)))
			log_warn("accept on %s: %s", l->bound, uv_strerror(status));
		pause_accepting(l);
	}
}

/* --- opening and closing ------------------------------------------------- */

static void
on_handle_closed(uv_handle_t *h)
{
	struct listener *l = h->data;

	if (--l->handles == 0)
		free(l);
}

void
listener_close(struct listener *l)
{
	/* Under privilege separation the monitor made the file and removes it. */
	if (l->unlink_path[0] != '\0' && !l->srv->site.priv->separated)
		unlink(l->unlink_path);
	/* The poll handle stops watching the socket before the socket is closed. */
	uv_close((uv_handle_t *)&l->poll, on_handle_closed);
	uv_close((uv_handle_t *)&l->pause, on_handle_closed);
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

/* TCP_DEFER_ACCEPT takes whole seconds: a part of one counts as one. */
static int
defer_seconds(uint64_t ms)
{
	uint64_t s = (ms + 999) / 1000;

	return s > INT_MAX ? INT_MAX : (int)s;
}

static void
set_option(struct listener *l, int name, int value, const char *key)
{
	if (setsockopt(l->fd, IPPROTO_TCP, name, &value, sizeof(value)) != 0)
		log_warn("%s on %s: %s; listening without it", key, l->bound, strerror(errno));
}

void
listener_tune(struct listener *l, const struct config *cfg)
{
	if (!l->is_tcp)
		return;
	l->tuned = sockets_are_relayed(l->fd);
	set_option(l, TCP_DEFER_ACCEPT, defer_seconds(cfg->defer_accept_ms), "defer_accept");
	set_option(l, TCP_FASTOPEN, (int)cfg->tcp_fastopen, "tcp_fastopen");
}

static bool
wildcard(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	return ss->ss_family != AF_INET6 ||
	       IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
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
		/* Bound to one address, it is every connection's own: none need ask. */
		l->local = ss;
		l->local_fixed = !wildcard(&ss);
	}
	addr_format(&b, l->bound, sizeof(l->bound));
}

struct listener *
listener_open(struct server *srv, const struct addr_spec *a, const char *configured, int *err)
{
	struct listener *l = calloc(1, sizeof(*l));
	int fd;

	if (l == NULL) {
		*err = UV_ENOMEM;
		return NULL;
	}
	l->srv = srv;
	str_copy(l->configured, configured, sizeof(l->configured));
	/* A listening, non-blocking socket. */
	if ((fd = priv_listen(srv->site.priv, a, PRIV_SOCKET_LISTENER)) < 0) {
		*err = uv_translate_sys_error(-fd);
		free(l);
		return NULL;
	}
	l->fd = fd;
	l->is_tcp = a->kind == ADDR_TCP;
	if (!l->is_tcp)
		str_copy(l->unlink_path, a->path, sizeof(l->unlink_path));
	note_bound(l, a, fd);
	uv_timer_init(srv->site.loop, &l->pause);
	l->pause.data = l;
	l->handles++;
	if ((*err = uv_poll_init(srv->site.loop, &l->poll, fd)) != 0) {
		if (l->unlink_path[0] != '\0' && !srv->site.priv->separated)
			unlink(l->unlink_path);
		close(fd);
		uv_close((uv_handle_t *)&l->pause, on_handle_closed);
		return NULL;
	}
	l->poll.data = l;
	l->handles++;
	if ((*err = uv_poll_start(&l->poll, UV_READABLE, on_readable)) != 0) {
		listener_close(l);
		return NULL;
	}
	return l;
}
