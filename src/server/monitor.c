/*
 * The monitor: the privileged half of fived under privilege separation.
 *
 * It parses nothing from the network.  It answers the worker's requests
 * (src/proto/privmsg.h) one at a time; a request of the wrong type, size
 * or shape means the worker is no longer trustworthy, and the monitor
 * kills it and exits.  It also holds the configuration file and reloads it
 * on SIGHUP, passes SIGTERM and SIGINT on to the worker, reaps the PAM
 * helpers, and exits with the worker's status.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/io.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/privmsg.h"
#include "server/keys.h"
#include "server/pam_helper.h"
#include "server/priv.h"
#include "server/sockets.h"

#define WHY_MAX          256
#define UNIX_SOCKETS_MAX 64 /* socket files the monitor removes at exit */

struct monitor {
	int fd;
	pid_t worker;
	struct config *cfg;
	const char *config_path;
	char *text; /* the accepted configuration text */
	size_t len;
	const char *self;
	int sigfd;
	char *unix_sockets[UNIX_SOCKETS_MAX]; /* created for the worker, removed at exit */
	size_t nunix_sockets;
};

/* The worker cannot remove socket files in directories only root may write. */
static void __attribute__((noreturn)) finish(struct monitor *m, int status)
{
	size_t i;

	for (i = 0; i < m->nunix_sockets; i++)
		unlink(m->unix_sockets[i]);
	exit(status);
}

static void __attribute__((noreturn)) fatal_request(struct monitor *m, const char *what)
{
	log_error("monitor: %s from the worker; stopping it", what);
	kill(m->worker, SIGKILL);
	finish(m, 1);
}

/* Sends a reply, with a descriptor attached when fd >= 0. */
static void
reply(struct monitor *m, enum priv_type type, bool ok, const void *text, size_t len, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	uint8_t *out;
	size_t n, size = PRIVMSG_HEADER + 16 + len;
	struct iovec iov;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;
	ssize_t sent;

	if ((out = malloc(size)) == NULL ||
	    privmsg_reply_encode(type, ok, text, len, out, size, &n) != 0)
		fatal_request(m, "a reply that cannot be built");
	iov.iov_base = out;
	iov.iov_len = n;
	if (fd >= 0) {
		memset(cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	while ((sent = sendmsg(m->fd, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (sent > 0 && (size_t)sent < n && io_write_all(m->fd, out + sent, n - (size_t)sent) != 0)
		sent = -1;
	free(out);
	if (fd >= 0)
		close(fd);
	if (sent < 0) {
		kill(m->worker, SIGTERM);
		finish(m, 1);
	}
}

static void
reply_text(struct monitor *m, enum priv_type type, bool ok, const char *text, int fd)
{
	reply(m, type, ok, text, strlen(text), fd);
}

static void
do_pubkey(struct monitor *m, const struct priv_request *req)
{
	char why[WHY_MAX];
	int ok = keys_authorized(m->cfg, req->user, req->pk, req->peer_ip, why, sizeof(why));

	reply_text(m, PRIV_PUBKEY_CHECK, ok == 1, why, -1);
}

static void
do_pam(struct monitor *m, const struct priv_request *req)
{
	struct pam_helper_args args = {0};
	int sp[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
		reply_text(m, PRIV_PAM_START, false, strerror(errno), -1);
		return;
	}
	pam_helper_argv(&args, m->self, m->cfg->pam_service, req->user, req->peer_ip,
	                m->cfg->auth_timeout_ms);
	if ((pid = fork()) == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (dup2(sp[1], PAM_HELPER_FD) < 0)
			_exit(127);
		execv(m->self, args.argv);
		_exit(127);
	}
	close(sp[1]);
	if (pid < 0) {
		close(sp[0]);
		reply_text(m, PRIV_PAM_START, false, strerror(errno), -1);
		return;
	}
	reply_text(m, PRIV_PAM_START, true, "", sp[0]);
}

static void
do_listen(struct monitor *m, const struct priv_request *req)
{
	struct addr_spec a;
	const char *address = req->address, *why;
	bool control = strncmp(address, "control:", 8) == 0;
	char path[ADDR_TEXT_MAX], err[16];
	int fd;

	if (control) {
		snprintf(path, sizeof(path), "unix:%s", address + 8);
		address = path;
	}
	if (addr_parse(address, &a, &why) != 0 || (control && a.kind != ADDR_UNIX))
		fatal_request(m, "an invalid listen address");
	if ((fd = sockets_listen(&a, control)) < 0) {
		snprintf(err, sizeof(err), "%d", -fd);
		reply_text(m, PRIV_LISTEN, false, err, -1);
		return;
	}
	if (a.kind == ADDR_UNIX && m->nunix_sockets < UNIX_SOCKETS_MAX &&
	    (m->unix_sockets[m->nunix_sockets] = strdup(a.path)) != NULL)
		m->nunix_sockets++;
	reply_text(m, PRIV_LISTEN, true, "", fd);
}

static void
do_audit(struct monitor *m)
{
	int fd = -1;

	if (m->cfg->audit_log[0] == '/')
		fd = priv_open_audit_file(m->cfg->audit_log);
	reply_text(m, PRIV_AUDIT, fd >= 0, fd >= 0 ? "" : strerror(errno), fd);
}

/* The authorized_clients file of the monitor's own configuration. */
static void
do_clients(struct monitor *m)
{
	struct config_errors errs;
	char *text;
	size_t len;

	if (m->cfg->authorized_clients[0] == '\0') {
		reply(m, PRIV_CLIENTS, true, "", 0, -1);
		return;
	}
	if (config_read_file(m->cfg->authorized_clients, &text, &len, &errs) != 0) {
		reply_text(m, PRIV_CLIENTS, false, errs.text, -1);
		return;
	}
	reply(m, PRIV_CLIENTS, true, text, len, -1);
	free(text);
}

static void
serve_request(struct monitor *m)
{
	uint8_t hdr[PRIVMSG_HEADER], body[PRIVMSG_REQUEST_MAX];
	struct priv_request req;
	uint32_t type, len;
	ssize_t n;

	if ((n = read(m->fd, hdr, sizeof(hdr))) == 0) {
		/* The worker closed its end: it is exiting, and SIGCHLD follows. */
		close(m->fd);
		m->fd = -1;
		return;
	}
	if (n != (ssize_t)sizeof(hdr) ||
	    privmsg_header_decode(hdr, &type, &len, PRIVMSG_REQUEST_MAX) != 0 ||
	    io_read_all(m->fd, body, len) != 0 ||
	    privmsg_request_decode(type, body, len, &req) != 0)
		fatal_request(m, "a malformed request");
	switch (req.type) {
	case PRIV_PUBKEY_CHECK:
		do_pubkey(m, &req);
		break;
	case PRIV_PAM_START:
		do_pam(m, &req);
		break;
	case PRIV_CONFIG:
		reply(m, PRIV_CONFIG, true, m->text, m->len, -1);
		break;
	case PRIV_LISTEN:
		do_listen(m, &req);
		break;
	case PRIV_AUDIT:
		do_audit(m);
		break;
	case PRIV_CLIENTS:
		do_clients(m);
		break;
	}
}

/* SIGHUP: take the file again if it is valid, then tell the worker. */
static void
reload(struct monitor *m)
{
	struct config_errors errs;
	struct config *cfg;
	char *text;
	size_t len;

	if (m->config_path == NULL) {
		kill(m->worker, SIGHUP);
		return;
	}
	if (config_read_file(m->config_path, &text, &len, &errs) != 0 ||
	    (cfg = config_parse(m->config_path, text, len, &errs)) == NULL) {
		log_error("reload rejected, keeping the running configuration:\n%s", errs.text);
		return;
	}
	config_unref(m->cfg);
	free(m->text);
	m->cfg = cfg;
	m->text = text;
	m->len = len;
	kill(m->worker, SIGHUP);
}

static void
reap(struct monitor *m)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != m->worker)
			continue;
		if (WIFSIGNALED(status))
			log_error("worker killed by signal %d", WTERMSIG(status));
		finish(m, WIFEXITED(status) ? WEXITSTATUS(status) : 1);
	}
}

static void
handle_signal(struct monitor *m)
{
	struct signalfd_siginfo si;

	if (read(m->sigfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return;
	if (si.ssi_signo == SIGHUP)
		reload(m);
	else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
		kill(m->worker, SIGTERM);
	else if (si.ssi_signo == SIGCHLD)
		reap(m);
}

void
monitor_run(int fd, pid_t worker, struct config *cfg, const char *config_path, const char *text,
            size_t len, const char *self)
{
	struct monitor m = {
	        .fd = fd, .worker = worker, .cfg = cfg, .config_path = config_path, .self = self};
	struct pollfd pfd[2];
	sigset_t set;

	log_init("fived-monitor", log_enabled(LOGL_DEBUG) ? LOGL_DEBUG : LOGL_INFO);
	if ((m.text = malloc(len)) == NULL)
		exit(1);
	memcpy(m.text, text, len);
	m.len = len;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if ((m.sigfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0) {
		kill(worker, SIGKILL);
		exit(1);
	}
	reap(&m);
	for (;;) {
		pfd[0] = (struct pollfd){.fd = m.fd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = m.sigfd, .events = POLLIN};
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			exit(1);
		if (pfd[1].revents & POLLIN)
			handle_signal(&m);
		if (m.fd >= 0 && (pfd[0].revents & (POLLIN | POLLHUP)))
			serve_request(&m);
	}
}
