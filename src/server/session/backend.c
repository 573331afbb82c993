/*
 * Reaching a granted service's backend: connecting to a TCP or Unix socket
 * (trying each address of a name in turn, within connect_timeout), running
 * a program per connection, or starting a built-in service.  Every path ends
 * in exactly one call of session_backend_ready.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "server/policy/policy.h"
#include "server/policy/site.h"
#include "server/privsep/priv.h"
#include "server/privsep/sockets.h"
#include "server/session/builtin.h"
#include "server/session/control.h"
#include "server/session/session.h"

#define ENV_MAX       20
#define ENV_VALUE_MAX 512
#define EXEC_PATH     "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static void
on_connect_timeout(uv_timer_t *t)
{
	session_backend_ready(t->data, UV_ETIMEDOUT);
}

static void connect_next(struct session *s);

static void
on_retry_closed(uv_handle_t *h)
{
	struct session *s = h->data;

	s->closing_handles--;
	if (s->state == S_CONNECTING)
		connect_next(s);
	else
		session_release(s);
}

/* An address failed: the next one, if any, or the end of the attempt. */
static void
connect_failed(struct session *s, int status)
{
	if (s->next_candidate != NULL) {
		log_debug("session %s: backend address failed: %s; trying the next", s->id,
		          uv_strerror(status));
		s->backend_open = false;
		s->closing_handles++;
		uv_close(&s->backend.handle, on_retry_closed);
		return;
	}
	session_backend_ready(s, status);
}

static void
on_connected(uv_connect_t *req, int status)
{
	struct session *s = req->data;
	uv_os_fd_t fd;

	if (s->state != S_CONNECTING)
		return;
	if (status == 0) {
		if (s->svc->backend == BACKEND_TCP && uv_fileno(&s->backend.handle, &fd) == 0) {
			uv_tcp_nodelay(&s->backend.tcp, 1);
			sockets_reset_on_close(fd, true);
		}
		session_backend_ready(s, 0);
		return;
	}
	connect_failed(s, status);
}

/* A connect that fails at once (an address family this host lacks) goes on as a late failure. */
static void
connect_tcp(struct session *s, const struct sockaddr *sa)
{
	int r;

	uv_tcp_init(s->site->loop, &s->backend.tcp);
	s->backend.handle.data = s;
	s->backend_open = true;
	s->connect_req.data = s;
	if ((r = uv_tcp_connect(&s->connect_req, &s->backend.tcp, sa, on_connected)) != 0)
		connect_failed(s, r);
}

static void
connect_next(struct session *s)
{
	const struct addrinfo *ai = s->next_candidate;

	s->next_candidate = ai->ai_next;
	connect_tcp(s, ai->ai_addr);
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct session *s = req->data;

	s->resolving = false;
	if (s->state != S_CONNECTING) {
		uv_freeaddrinfo(res);
		session_release(s);
		return;
	}
	if (status != 0 || res == NULL) {
		uv_freeaddrinfo(res);
		session_backend_ready(s, status != 0 ? status : UV_EAI_NONAME);
		return;
	}
	s->candidates = res;
	s->next_candidate = res;
	connect_next(s);
}

static void
start_tcp(struct session *s)
{
	const struct addr_spec *a = &s->svc->addr;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	char port[8];
	int r;

	if (a->numeric) {
		connect_tcp(s, (const struct sockaddr *)&a->sa);
		return;
	}
	snprintf(port, sizeof(port), "%u", a->port);
	s->resolve_req.data = s;
	if ((r = uv_getaddrinfo(s->site->loop, &s->resolve_req, on_resolved, a->host, port,
	                        &hints)) != 0) {
		session_backend_ready(s, r);
		return;
	}
	s->resolving = true;
}

/* A descriptor already connected (or failed): the backend is reached, or not. */
static void
adopt_backend(struct session *s, int fd)
{
	int r;

	uv_pipe_init(s->site->loop, &s->backend.pipe, 0);
	s->backend.handle.data = s;
	s->backend_open = true;
	if ((r = uv_pipe_open(&s->backend.pipe, fd)) != 0) {
		close(fd);
		session_backend_ready(s, r);
		return;
	}
	session_backend_ready(s, 0);
}

/*
 * Under privilege separation the worker sees no file system: the monitor
 * connects to the socket (as the worker's user) and hands it over.
 */
static void
start_unix(struct session *s)
{
	int fd;

	if (s->site->priv->separated) {
		if ((fd = priv_connect(s->site->priv, s->svc->addr.path)) < 0)
			session_backend_ready(s, uv_translate_sys_error(-fd));
		else
			adopt_backend(s, fd);
		return;
	}
	uv_pipe_init(s->site->loop, &s->backend.pipe, 0);
	s->backend.handle.data = s;
	s->backend_open = true;
	s->connect_req.data = s;
	uv_pipe_connect(&s->connect_req, &s->backend.pipe, s->svc->addr.path, on_connected);
}

/* --- local backends: exec and built-in, over a socketpair ---------------- */

/* A program run for a session.  proc.data points to it; it is freed when proc is closed. */
struct child {
	uv_process_t proc;
	char session[SESSION_ID_LEN + 1];
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
build_env(const struct session *s, char **env, bool with_path)
{
	char port[8], ip[ADDR_IP_MAX];
	uint16_t lport;
	size_t n = 0;

	if (with_path)
		env_add(env, &n, "PATH", EXEC_PATH);
	env_add(env, &n, "PROTO", "FIVE");
	env_add(env, &n, "FIVE_SERVICE", s->svc->name);
	env_add(env, &n, "FIVE_VHOST", s->vhost != NULL ? s->vhost->name : "");
	env_add(env, &n, "FIVE_SESSION_ID", s->id);
	env_add(env, &n, "FIVE_AUTH_METHOD",
	        auth_method_name(s->caller != NULL ? s->caller->method : AUTH_NONE));
	if (session_identity(s) != NULL) {
		env_add(env, &n, "FIVE_IDENTITY", session_identity(s));
		env_add(env, &n, "TCPREMOTEINFO", session_identity(s));
	}
	if (session_shows_peer(s)) {
		snprintf(port, sizeof(port), "%u", s->peer_port);
		env_add(env, &n, "FIVE_REMOTE_ADDR", s->peer_ip);
		env_add(env, &n, "FIVE_REMOTE_PORT", port);
		env_add(env, &n, "TCPREMOTEIP", s->peer_ip);
		env_add(env, &n, "TCPREMOTEPORT", port);
	}
	if (session_shows_peer(s) &&
	    sockaddr_ip((const struct sockaddr *)&s->local, ip, &lport) == 0) {
		snprintf(port, sizeof(port), "%u", lport);
		env_add(env, &n, "TCPLOCALIP", ip);
		env_add(env, &n, "TCPLOCALPORT", port);
	}
	env[n] = NULL;
}

static int
spawn_program(struct session *s, int fd)
{
	char *env[ENV_MAX + 1];
	uv_stdio_container_t stdio[3];
	uv_process_options_t o;
	struct child *c;
	size_t i;
	int r;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return UV_ENOMEM;
	memcpy(c->session, s->id, sizeof(c->session));
	c->proc.data = c;
	build_env(s, env, true);
	memset(&o, 0, sizeof(o));
	stdio[0].flags = UV_INHERIT_FD;
	stdio[0].data.fd = fd;
	stdio[1] = stdio[0];
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = STDERR_FILENO;
	o.file = s->svc->argv[0];
	o.args = s->svc->argv;
	o.env = env;
	o.stdio = stdio;
	o.stdio_count = 3;
	o.exit_cb = on_child_exit;
	r = uv_spawn(s->site->loop, &c->proc, &o);
	for (i = 0; env[i] != NULL; i++)
		free(env[i]);
	if (r != 0) {
		uv_close((uv_handle_t *)&c->proc, free_child);
		return r;
	}
	/* A program that outlives its session must not keep fived running at exit. */
	uv_unref((uv_handle_t *)&c->proc);
	return 0;
}

/* Under privilege separation the monitor runs the program, as exec_user. */
static void
start_program_elsewhere(struct session *s)
{
	char *env[ENV_MAX + 1];
	size_t i;
	int fd;

	build_env(s, env, false);
	fd = priv_exec(s->site->priv, s->svc->name, env);
	for (i = 0; env[i] != NULL; i++)
		free(env[i]);
	if (fd < 0)
		session_backend_ready(s, uv_translate_sys_error(-fd));
	else
		adopt_backend(s, fd);
}

static void
start_local(struct session *s)
{
	int sp[2];
	int r;

	if (s->svc->backend == BACKEND_EXEC && s->site->priv->separated) {
		start_program_elsewhere(s);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
		session_backend_ready(s, UV_EMFILE);
		return;
	}
	if (s->svc->backend == BACKEND_EXEC)
		r = spawn_program(s, sp[1]);
	else
		r = builtin_start(s->site->loop, sp[1], s->svc, &s->site->budget);
	if (s->svc->backend == BACKEND_EXEC || r != 0)
		close(sp[1]);
	if (r != 0) {
		close(sp[0]);
		session_backend_ready(s, r);
		return;
	}
	adopt_backend(s, sp[0]);
}

void
backend_start(struct session *s)
{
	uv_timer_start(&s->timer, on_connect_timeout, s->svc->connect_timeout_ms, 0);
	switch (s->svc->backend) {
	case BACKEND_TCP:
		start_tcp(s);
		break;
	case BACKEND_UNIX:
		start_unix(s);
		break;
	case BACKEND_EXEC:
	case BACKEND_BUILTIN:
		start_local(s);
		break;
	case BACKEND_REGISTER:
		control_deliver(s);
		break;
	case BACKEND_NONE:
		session_backend_ready(s, UV_EINVAL);
		break;
	}
}
