#include "server/priv.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/io.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/privmsg.h"
#include "server/clients.h"
#include "server/keys.h"
#include "server/pam_helper.h"
#include "server/sockets.h"

#define AUDIT_MODE 0640

/* --- talking to the monitor --------------------------------------------- */

/* Reads the header, and the descriptor that may come with it. */
static int
read_header(int fd, uint8_t hdr[PRIVMSG_HEADER], int *passed)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {hdr, PRIVMSG_HEADER};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;
	ssize_t n;

	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	*passed = -1;
	while ((n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (n <= 0)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (cm != NULL && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(passed, CMSG_DATA(cm), sizeof(int));
	return io_read_all(fd, hdr + n, PRIVMSG_HEADER - (size_t)n);
}

/*
 * One request, one reply.  *body (malloc'd, the caller frees) holds the
 * reply; *passed a descriptor that came with it, or -1.  A monitor that
 * answers out of turn is as fatal as one that is gone.
 */
static int
call(struct priv *p, const struct priv_request *req, struct priv_reply *reply, uint8_t **body,
     int *passed)
{
	uint8_t msg[PRIVMSG_REQUEST_MAX], hdr[PRIVMSG_HEADER];
	uint32_t type, len;
	size_t n;

	*body = NULL;
	if (privmsg_request_encode(req, msg, sizeof(msg), &n) != 0 ||
	    io_write_all(p->fd, msg, n) != 0 || read_header(p->fd, hdr, passed) != 0 ||
	    privmsg_header_decode(hdr, &type, &len, PRIVMSG_REPLY_MAX) != 0 || type != req->type ||
	    (*body = malloc(len + 1)) == NULL || io_read_all(p->fd, *body, len) != 0 ||
	    privmsg_reply_decode(*body, len, reply) != 0) {
		log_error("the monitor is gone or broken; stopping");
		kill(getpid(), SIGTERM);
		free(*body);
		*body = NULL;
		if (*passed >= 0)
			close(*passed);
		return -1;
	}
	return 0;
}

/* --- the operations, with or without a monitor ----------------------- */

int
priv_pubkey_check(struct priv *p, const struct config *cfg, const char *user, const uint8_t pk[32],
                  const char *peer_ip, char *why, size_t why_size)
{
	struct priv_request req = {.type = PRIV_PUBKEY_CHECK};
	struct priv_reply reply;
	uint8_t *body;
	int passed, ok;

	if (!p->separated)
		return keys_authorized(cfg, user, pk, peer_ip, why, why_size);
	str_copy(req.user, user, sizeof(req.user));
	memcpy(req.pk, pk, sizeof(req.pk));
	str_copy(req.peer_ip, peer_ip, sizeof(req.peer_ip));
	if (call(p, &req, &reply, &body, &passed) != 0)
		return -1;
	snprintf(why, why_size, "%.*s", (int)reply.text_len, (const char *)reply.text);
	ok = reply.ok;
	free(body);
	if (passed >= 0)
		close(passed);
	return ok;
}

static void
free_process(uv_handle_t *h)
{
	free(h);
}

static void
on_helper_exit(uv_process_t *proc, int64_t status, int signal)
{
	uv_close((uv_handle_t *)proc, free_process);
}

/* Without a monitor: this process starts the helper, and libuv reaps it. */
static int
spawn_helper(struct priv *p, const struct config *cfg, const char *user, const char *peer_ip,
             int fd)
{
	struct pam_helper_args args = {0};
	uv_stdio_container_t stdio[4];
	uv_process_options_t o;
	uv_process_t *proc = calloc(1, sizeof(*proc));
	int r;

	if (proc == NULL)
		return -1;
	pam_helper_argv(&args, p->self, cfg->pam_service, user, peer_ip, cfg->auth_timeout_ms);
	memset(&o, 0, sizeof(o));
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_IGNORE;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = STDERR_FILENO;
	stdio[3].flags = UV_INHERIT_FD;
	stdio[3].data.fd = fd;
	o.file = p->self;
	o.args = args.argv;
	o.stdio = stdio;
	o.stdio_count = 4;
	o.exit_cb = on_helper_exit;
	if ((r = uv_spawn(p->loop, proc, &o)) != 0) {
		log_error("cannot start the PAM helper: %s", uv_strerror(r));
		uv_close((uv_handle_t *)proc, free_process);
		return -1;
	}
	return 0;
}

int
priv_pam_start(struct priv *p, const struct config *cfg, const char *user, const char *peer_ip)
{
	struct priv_request req = {.type = PRIV_PAM_START};
	struct priv_reply reply;
	uint8_t *body;
	int sp[2], passed;

	if (!p->separated) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
			return -1;
		if (spawn_helper(p, cfg, user, peer_ip, sp[1]) != 0) {
			close(sp[0]);
			sp[0] = -1;
		}
		close(sp[1]);
		return sp[0];
	}
	str_copy(req.user, user, sizeof(req.user));
	str_copy(req.peer_ip, peer_ip, sizeof(req.peer_ip));
	if (call(p, &req, &reply, &body, &passed) != 0)
		return -1;
	free(body);
	if (!reply.ok && passed >= 0) {
		close(passed);
		passed = -1;
	}
	return passed;
}

struct config *
priv_config(struct priv *p, struct config_errors *errs)
{
	struct priv_request req = {.type = PRIV_CONFIG};
	struct priv_reply reply;
	struct config *cfg;
	uint8_t *body;
	int passed;

	if (!p->separated)
		return p->config_path != NULL ? config_load(p->config_path, errs)
		                              : config_parse("(built-in)", config_builtin_text,
		                                             strlen(config_builtin_text), errs);
	memset(errs, 0, sizeof(*errs));
	errs->count = 1;
	snprintf(errs->text, sizeof(errs->text), "the monitor did not answer\n");
	if (call(p, &req, &reply, &body, &passed) != 0)
		return NULL;
	if (passed >= 0)
		close(passed);
	cfg = config_parse(p->config_path != NULL ? p->config_path : "(built-in)",
	                   (const char *)reply.text, reply.text_len, errs);
	free(body);
	return cfg;
}

/* Reads a whole file the way the configuration is read: bounded, regular files only. */
static int
read_clients_file(const char *path, char **text, size_t *len, char *err, size_t err_size)
{
	struct config_errors errs;

	if (config_read_file(path, text, len, &errs) != 0) {
		snprintf(err, err_size, "%s", errs.text);
		err[strcspn(err, "\n")] = '\0';
		return -1;
	}
	return 0;
}

int
priv_clients(struct priv *p, const struct config *cfg, struct client_keys *out, char *err,
             size_t err_size)
{
	struct priv_request req = {.type = PRIV_CLIENTS};
	struct priv_reply reply;
	uint8_t *body;
	char *text = NULL;
	size_t len = 0;
	int passed, r;

	memset(out, 0, sizeof(*out));
	if (cfg->authorized_clients[0] == '\0')
		return 0;
	if (!p->separated) {
		if (read_clients_file(cfg->authorized_clients, &text, &len, err, err_size) != 0)
			return -1;
		r = clients_parse(cfg->authorized_clients, text, len, out, err, err_size);
		free(text);
		return r;
	}
	if (call(p, &req, &reply, &body, &passed) != 0)
		return -1;
	if (passed >= 0)
		close(passed);
	if (!reply.ok)
		snprintf(err, err_size, "%.*s", (int)reply.text_len, (const char *)reply.text);
	r = reply.ok ? clients_parse(cfg->authorized_clients, (const char *)reply.text,
	                             reply.text_len, out, err, err_size)
	             : -1;
	free(body);
	return r;
}

int
priv_listen(struct priv *p, const struct addr_spec *a, bool seqpacket)
{
	struct priv_request req = {.type = PRIV_LISTEN};
	struct priv_reply reply;
	uint8_t *body;
	uint64_t e;
	int passed;

	if (!p->separated)
		return sockets_listen(a, seqpacket);
	addr_format(a, req.address, sizeof(req.address));
	if (seqpacket) {
		/* The control socket: the monitor knows it by this prefix. */
		memmove(req.address + 8, req.address + 5, strlen(req.address + 5) + 1);
		memcpy(req.address, "control:", 8);
	}
	if (call(p, &req, &reply, &body, &passed) != 0)
		return -EIO;
	if (!reply.ok || passed < 0) {
		if (reply.text_len > 0 && reply.text_len < 8 &&
		    parse_uint((const char *)reply.text, 4096, &e) == 0) {
			free(body);
			return -(int)e;
		}
		free(body);
		return -EIO;
	}
	free(body);
	return passed;
}

int
priv_open_audit_file(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, AUDIT_MODE);
}

int
priv_audit(struct priv *p, const struct config *cfg)
{
	struct priv_request req = {.type = PRIV_AUDIT};
	struct priv_reply reply;
	uint8_t *body;
	int passed;

	if (!p->separated)
		return priv_open_audit_file(cfg->audit_log);
	if (call(p, &req, &reply, &body, &passed) != 0)
		return -1;
	free(body);
	return reply.ok ? passed : -1;
}

/* --- the split ------------------------------------------------------------ */

static struct passwd *
worker_user(const struct config *cfg)
{
	struct passwd *pw;

	if (cfg->user[0] != '\0')
		return getpwnam(cfg->user);
	if ((pw = getpwnam("fived")) != NULL)
		return pw;
	return getpwnam("nobody");
}

static int
drop_privileges(const struct passwd *pw)
{
	if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		log_error("cannot become %s: %s", pw->pw_name, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || chdir("/") != 0) {
		log_error("privileges could not be dropped for good");
		return -1;
	}
	return 0;
}

int
priv_setup(struct priv *p, struct config *cfg, const char *config_path, const char *config_text,
           size_t config_len, uv_loop_t *loop)
{
	struct passwd *pw;
	pid_t monitor = getpid(), worker;
	ssize_t n;
	int sp[2];

	memset(p, 0, sizeof(*p));
	p->fd = -1;
	p->loop = loop;
	p->config_path = config_path;
	if ((n = readlink("/proc/self/exe", p->self, sizeof(p->self) - 1)) <= 0) {
		log_error("cannot find fived's own executable: %s", strerror(errno));
		return -1;
	}
	p->self[n] = '\0';
	if (geteuid() != 0 || strcmp(cfg->user, "root") == 0) {
		log_info("running without privilege separation (%s)",
		         geteuid() != 0 ? "not started as root" : "user = root");
		return 0;
	}
	if ((pw = worker_user(cfg)) == NULL) {
		log_error("user %s does not exist", cfg->user[0] ? cfg->user : "nobody");
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0 || (worker = fork()) < 0) {
		log_error("cannot start the worker: %s", strerror(errno));
		return -1;
	}
	if (worker > 0) {
		close(sp[1]);
		monitor_run(sp[0], worker, cfg, config_path, config_text, config_len, p->self);
	}
	close(sp[0]);
	/* Signals go to the monitor, which passes them on; the worker dies with it. */
	setpgid(0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != monitor ||
	    drop_privileges(pw) != 0)
		_exit(1);
	log_info("privilege separation: worker runs as %s", pw->pw_name);
	p->separated = true;
	p->fd = sp[1];
	return 0;
}
