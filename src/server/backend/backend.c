/*
 * Reaching a granted service's backend (backend.h).  Every path of
 * backend_start ends in exactly one call of ready(); the owner keeps the
 * time (connect_timeout) and calls backend_close when it gives up.
 */
#include "server/backend/backend.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "server/backend/builtin.h"
#include "server/backend/control.h"
#include "server/policy/policy.h"
#include "server/policy/site.h"
#include "server/privsep/priv.h"
#include "server/privsep/sockets.h"

#define ENV_MAX       20
#define ENV_VALUE_MAX (PARAMS_BYTES_MAX + 32) /* "NAME=value": parameters are the longest */
#define EXEC_PATH     "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

void
backend_ready(struct backend *b, int err)
{
	if (!b->waiting)
		return;
	b->waiting = false;
	b->ev->ready(b->owner, err);
}

static void connect_next(struct backend *b);

static struct backend *
backend_of(uv_handle_t *h)
{
	return h->data;
}

/* A failed address's handle is closed: the next address, unless the owner gave up meanwhile. */
static void
on_retry_closed(uv_handle_t *h)
{
	struct backend *b = backend_of(h);

	b->retrying = false;
	if (b->waiting)
		connect_next(b);
	else
		b->ev->closed(b->owner);
}

/* An address failed: the next one, if any, or the end of the attempt. */
static void
connect_failed(struct backend *b, int status)
{
	if (b->next_candidate != NULL) {
		log_debug("session %s: backend address failed: %s; trying the next", b->id,
		          uv_strerror(status));
		b->open = false;
		b->retrying = true;
		uv_close(&b->h.handle, on_retry_closed);
		return;
	}
	backend_ready(b, status);
}

static void
on_connected(uv_connect_t *req, int status)
{
	struct backend *b = req->data;
	uv_os_fd_t fd;

	if (!b->waiting)
		return;
	if (status == 0) {
		if (b->svc->backend == BACKEND_TCP && uv_fileno(&b->h.handle, &fd) == 0)
			sockets_relayed(fd);
		backend_ready(b, 0);
		return;
	}
	connect_failed(b, status);
}

/*
 * A socket for h whose connect, once the kernel holds a Fast Open cookie
 * for the backend, sends no SYN until the first write, which it carries
 * (TCP_FASTOPEN_CONNECT): connect then completes at once.  Without a
 * cookie, or where the kernel lacks the option, it is an ordinary connect.
 * Returns 0 or a libuv error code.
 */
static int
fastopen_socket(uv_tcp_t *h, int family)
{
	int fd, one = 1, r;

	if ((fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return uv_translate_sys_error(errno);
	if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)) != 0)
		log_debug("fastopen: %s; connecting without it", strerror(errno));
	if ((r = uv_tcp_open(h, fd)) != 0)
		close(fd);
	return r;
}

/* A connect that fails at once (an address family this host lacks) goes on as a late failure. */
static void
connect_tcp(struct backend *b, const struct sockaddr *sa)
{
	int r;

	uv_tcp_init(b->site->loop, &b->h.tcp);
	b->h.handle.data = b;
	b->open = true;
	b->connect_req.data = b;
	if (b->svc->fastopen && (r = fastopen_socket(&b->h.tcp, sa->sa_family)) != 0) {
		connect_failed(b, r);
		return;
	}
	if ((r = uv_tcp_connect(&b->connect_req, &b->h.tcp, sa, on_connected)) != 0)
		connect_failed(b, r);
}

static void
connect_next(struct backend *b)
{
	const struct addrinfo *ai = b->next_candidate;

	b->next_candidate = ai->ai_next;
	connect_tcp(b, ai->ai_addr);
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct backend *b = req->data;

	b->resolving = false;
	if (!b->waiting) {
		uv_freeaddrinfo(res);
		b->ev->closed(b->owner);
		return;
	}
	if (status != 0 || res == NULL) {
		uv_freeaddrinfo(res);
		backend_ready(b, status != 0 ? status : UV_EAI_NONAME);
		return;
	}
	b->candidates = res;
	b->next_candidate = res;
	connect_next(b);
}

static void
start_tcp(struct backend *b)
{
	const struct addr_spec *a = &b->svc->addr;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	char port[8];
	int r;

	if (a->numeric) {
		connect_tcp(b, (const struct sockaddr *)&a->sa);
		return;
	}
	snprintf(port, sizeof(port), "%u", a->port);
	b->resolve_req.data = b;
	if ((r = uv_getaddrinfo(b->site->loop, &b->resolve_req, on_resolved, a->host, port,
	                        &hints)) != 0) {
		backend_ready(b, r);
		return;
	}
	b->resolving = true;
}

void
backend_adopt(struct backend *b, int fd)
{
	int r;

	uv_pipe_init(b->site->loop, &b->h.pipe, 0);
	b->h.handle.data = b;
	b->open = true;
	if ((r = uv_pipe_open(&b->h.pipe, fd)) != 0) {
		close(fd);
		backend_ready(b, r);
		return;
	}
	backend_ready(b, 0);
}

/*
 * Under privilege separation the worker sees no file system: the monitor
 * connects to the socket (as the worker's user) and hands it over.
 */
static void
start_unix(struct backend *b)
{
	int fd;

	if (b->site->priv->separated) {
		if ((fd = priv_connect(b->site->priv, b->svc->addr.path)) < 0)
			backend_ready(b, uv_translate_sys_error(-fd));
		else
			backend_adopt(b, fd);
		return;
	}
	uv_pipe_init(b->site->loop, &b->h.pipe, 0);
	b->h.handle.data = b;
	b->open = true;
	b->connect_req.data = b;
	uv_pipe_connect(&b->connect_req, &b->h.pipe, b->svc->addr.path, on_connected);
}

/* Another worker: the monitor connects to its peer socket (priv_peer_connect). */
static void
start_worker(struct backend *b)
{
	int fd = priv_peer_connect(b->site->priv, b->svc->worker);

	if (fd < 0)
		backend_ready(b, uv_translate_sys_error(-fd));
	else
		backend_adopt(b, fd);
}

/* --- local backends: exec and built-in, over a socketpair ---------------- */

/* A program run for a session.  proc.data points to it; it is freed when proc is closed. */
struct child {
	uv_process_t proc;
	char session[SESSION_ID_LEN + 1];
	struct backend *backend; /* whose stream it serves, until either ends */
};

static void
free_child(uv_handle_t *h)
{
	free(h->data);
}

static void
on_child_exit(uv_process_t *proc, int64_t status, int signal)
{
	struct child *c = proc->data;

	log_debug("session %s: program exited, status %lld, signal %d", c->session,
	          (long long)status, signal);
	if (c->backend != NULL) {
		c->backend->child = NULL;
		/* Its group outlives it in what it started; emptied, the id is free for others. */
		if (kill(-proc->pid, 0) != 0)
			c->backend->group = 0;
	}
	uv_close((uv_handle_t *)proc, free_child);
}

/* Appends "NAME=value" to env, truncating overlong values. */
static void
env_add(char **env, size_t *n, const char *name, const char *value)
{
	char text[ENV_VALUE_MAX];

	snprintf(text, sizeof(text), "%s=%s", name, value);
	if (*n < ENV_MAX && (env[*n] = strdup(text)) != NULL)
		(*n)++;
}

/* The program's environment; PATH only when this process runs it (the monitor sets its own). */
static void
build_env(const struct backend_who *who, const char *service, char **env, bool with_path)
{
	char port[8], stream[12], ip[ADDR_IP_MAX];
	uint16_t lport;
	size_t n = 0;

	if (with_path)
		env_add(env, &n, "PATH", EXEC_PATH);
	env_add(env, &n, "PROTO", "FIVE");
	env_add(env, &n, "FIVE_SERVICE", service);
	env_add(env, &n, "FIVE_VHOST", who->vhost);
	env_add(env, &n, "FIVE_SESSION_ID", who->session_id);
	if (who->stream != 0) {
		snprintf(stream, sizeof(stream), "%u", (unsigned)who->stream);
		env_add(env, &n, "FIVE_STREAM", stream);
	}
	env_add(env, &n, "FIVE_AUTH_METHOD", who->method);
	if (who->identity != NULL) {
		env_add(env, &n, "FIVE_IDENTITY", who->identity);
		env_add(env, &n, "TCPREMOTEINFO", who->identity);
	}
	if (who->peer_shown) {
		snprintf(port, sizeof(port), "%u", who->peer_port);
		env_add(env, &n, "FIVE_REMOTE_ADDR", who->peer_ip);
		env_add(env, &n, "FIVE_REMOTE_PORT", port);
		env_add(env, &n, "TCPREMOTEIP", who->peer_ip);
		env_add(env, &n, "TCPREMOTEPORT", port);
	}
	if (who->parameters != NULL)
		env_add(env, &n, "FIVE_PARAMETERS", who->parameters);
	if (who->peer_shown && sockaddr_ip(who->local, ip, &lport) == 0) {
		snprintf(port, sizeof(port), "%u", lport);
		env_add(env, &n, "TCPLOCALIP", ip);
		env_add(env, &n, "TCPLOCALPORT", port);
	}
	env[n] = NULL;
}

static int
spawn_program(struct backend *b, const struct backend_who *who, int fd)
{
	char *env[ENV_MAX + 1];
	uv_stdio_container_t stdio[3];
	uv_process_options_t o;
	struct child *c;
	size_t i;
	int r;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return UV_ENOMEM;
	str_copy(c->session, b->id, sizeof(c->session));
	c->proc.data = c;
	build_env(who, b->svc->name, env, true);
	memset(&o, 0, sizeof(o));
	stdio[0].flags = UV_INHERIT_FD;
	stdio[0].data.fd = fd;
	stdio[1] = stdio[0];
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = STDERR_FILENO;
	o.file = b->svc->argv[0];
	o.args = b->svc->argv;
	o.env = env;
	o.stdio = stdio;
	o.stdio_count = 3;
	o.exit_cb = on_child_exit;
	/* A group of its own (setsid), to be killed whole with a stream cut short. */
	o.flags = UV_PROCESS_DETACHED;
	r = uv_spawn(b->site->loop, &c->proc, &o);
	for (i = 0; env[i] != NULL; i++)
		free(env[i]);
	if (r != 0) {
		uv_close((uv_handle_t *)&c->proc, free_child);
		return r;
	}
	/* A program that outlives its session must not keep fived running at exit. */
	uv_unref((uv_handle_t *)&c->proc);
	c->backend = b;
	b->child = c;
	b->group = c->proc.pid;
	return 0;
}

/* Under privilege separation the monitor runs the program, as exec_user. */
static void
start_program_elsewhere(struct backend *b, const struct backend_who *who)
{
	char *env[ENV_MAX + 1];
	size_t i;
	int fd;

	build_env(who, b->svc->name, env, false);
	fd = priv_exec(b->site->priv, b->svc->name, env, &b->program);
	for (i = 0; env[i] != NULL; i++)
		free(env[i]);
	if (fd < 0)
		backend_ready(b, uv_translate_sys_error(-fd));
	else
		backend_adopt(b, fd);
}

static void
start_local(struct backend *b, const struct backend_who *who)
{
	int sp[2];
	int r;

	if (b->svc->backend == BACKEND_EXEC && b->site->priv->separated) {
		start_program_elsewhere(b, who);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
		backend_ready(b, UV_EMFILE);
		return;
	}
	if (b->svc->backend == BACKEND_EXEC)
		r = spawn_program(b, who, sp[1]);
	else
		r = builtin_start(b->site->loop, sp[1], b->svc, &b->site->budget);
	if (b->svc->backend == BACKEND_EXEC || r != 0)
		close(sp[1]);
	if (r != 0) {
		close(sp[0]);
		backend_ready(b, r);
		return;
	}
	backend_adopt(b, sp[0]);
}

void
backend_init(struct backend *b, struct site *site, const struct service *svc, const char *id,
             const struct backend_events *ev, void *owner)
{
	memset(b, 0, sizeof(*b));
	b->site = site;
	b->svc = svc;
	b->id = id;
	b->ev = ev;
	b->owner = owner;
}

void
backend_start(struct backend *b, const struct backend_who *who)
{
	b->waiting = true;
	switch (b->svc->backend) {
	case BACKEND_TCP:
		start_tcp(b);
		break;
	case BACKEND_UNIX:
		start_unix(b);
		break;
	case BACKEND_WORKER:
		start_worker(b);
		break;
	case BACKEND_EXEC:
	case BACKEND_BUILTIN:
		start_local(b, who);
		break;
	case BACKEND_REGISTER:
		control_deliver(b, who);
		break;
	case BACKEND_NONE:
	case BACKEND_REDIRECT: /* answered by the session, never started */
		backend_ready(b, UV_EINVAL);
		break;
	}
}

/*
 * A program's stream has no reset: a program whose stream is cut short
 * is killed before its input ends, lest it take that end for the end of
 * a whole stream.  Either way the program and b part here.
 */
static void
end_program(struct backend *b)
{
	if (b->program > 0)
		priv_exec_end(b->site->priv, b->program, b->reset);
	if (b->reset && b->group > 0)
		kill(-b->group, SIGKILL);
	if (b->child != NULL)
		b->child->backend = NULL;
	b->child = NULL;
	b->program = 0;
	b->group = 0;
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct backend *b = backend_of(h);

	b->ev->closed(b->owner);
}

unsigned
backend_close(struct backend *b)
{
	unsigned pending = 0;
	uv_os_fd_t fd;

	if (b->closed)
		return 0;
	b->closed = true;
	b->waiting = false;
	if (b->resolving) {
		uv_cancel((uv_req_t *)&b->resolve_req);
		pending++;
	}
	if (b->retrying)
		pending++;
	end_program(b);
	if (!b->open)
		return pending;
	b->open = false;
	pending++;
	if (b->reset && b->h.handle.type == UV_TCP &&
	    uv_tcp_close_reset(&b->h.tcp, on_handle_closed) == 0)
		return pending;
	/*
	 * An orderly close: a TCP peer sees the end of the stream, not a
	 * reset.  Or a reset after all: libuv refuses uv_tcp_close_reset while
	 * a shutdown of the write side is under way (the client had ended its
	 * direction), and the handle would never close; a zero linger time
	 * resets it the same way.
	 */
	if (b->h.handle.type == UV_TCP && uv_fileno(&b->h.handle, &fd) == 0)
		sockets_reset_on_close(fd, b->reset);
	uv_close(&b->h.handle, on_handle_closed);
	return pending;
}

void
backend_free(struct backend *b)
{
	uv_freeaddrinfo(b->candidates);
	b->candidates = b->next_candidate = NULL;
}
