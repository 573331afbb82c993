/*
 * The monitor: the privileged half of fived under privilege separation.
 *
 * It parses nothing from the network.  It starts the workers (fived run
 * again with PRIV_WORKER_FLAG, `workers` of them: a fresh address space
 * each time, so that a crash teaches an attacker nothing about the next
 * one), answers their requests (src/proto/privmsg.h) one at a time, and
 * keeps the listening sockets, so that a worker that dies is replaced
 * without the service going away: its sessions are lost, connections
 * waiting in its backlog are not, and the other workers serve on.  A
 * request of the wrong type, size or shape means the worker is no longer
 * trustworthy: the monitor kills it and starts another.  Restarts back
 * off, each worker's by itself, and more than a few a minute wait for the
 * minute to pass; a worker that cannot start at all stops fived.
 *
 * It also holds the configuration file and reloads it on SIGHUP, passes
 * SIGTERM and SIGINT on to the workers, starts and reaps the PAM helpers
 * and the exec services' programs, and exits with the stopped workers'
 * status.  It is the process systemd knows (notify.h): it says when the
 * workers serve, when a reload starts and ends, when fived stops, and
 * feeds the watchdog only while every worker runs and has been heard from
 * within ALIVE_STALE_MS.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/io.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/privmsg.h"
#include "server/privsep/confine.h"
#include "server/privsep/logpipe.h"
#include "server/privsep/monitor.h"
#include "server/privsep/notify.h"
#include "server/privsep/pam_helper.h"
#include "server/privsep/priv.h"
#include "server/privsep/privops.h"

#define RESTARTS_WINDOW_MS 60000
#define RESTARTS_MAX       5     /* in RESTARTS_WINDOW_MS; more wait for the window */
#define BACKOFF_FIRST_MS   100   /* before the first restart */
#define BACKOFF_MAX_MS     5000  /* doubling up to this */
#define STABLE_MS          30000 /* a worker that ran this long resets the backoff */
#define REQUEST_TIMEOUT_S  5     /* a request's body must follow its header within this */
#define EXEC_ENV_MAX       24    /* variables the worker may pass to a program */
#define PROGRAMS_FIRST     64    /* room for running programs, doubled as needed */
#define EXEC_VALUE_MAX     512
#define WORKER_ENV_MAX     32 /* variables of the monitor's the worker may see */
#define RELOAD_REFUSED     "the configuration file has errors (see the log)"
#define EXEC_PATH          "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* A worker silent this long (it says it is alive every PRIV_ALIVE_MS) is stuck. */
#define ALIVE_STALE_MS (3 * PRIV_ALIVE_MS)

/*
 * The exec services' programs (each leads its own process group): a
 * stream cut short, or the worker's death, has its program killed, so
 * that it never takes the end of its input for the end of a whole
 * stream.  The worker names one by an id never used again, not by its
 * process id, which a later program may get.  A program is not reaped
 * while its stream lives: until then its leader, exited or not, holds
 * its process id, so that no other process group can have the id the
 * kill names.
 */
struct program {
	uint64_t id;
	pid_t pid;
	unsigned worker; /* whose stream it is */
	int held;        /* owned: the worker's end too, so that its death is no end of input */
	bool over;       /* its stream is over: reaped once it exits, and forgotten */
};

struct programs {
	struct program *run; /* owned; n of cap */
	size_t n, cap;
	uint64_t last_id;
};

struct worker {
	int fd;            /* to it; -1 while none runs */
	pid_t pid;         /* 0 while none runs */
	bool reloading;    /* signalled to reload; its PRIV_READY ends it */
	uint64_t heard_ms; /* its last request, or its start */
	uint64_t started_ms;
	uint64_t restart_at_ms; /* when to start it again; 0 for none pending */
	uint64_t backoff_ms;
	uint64_t restarts[RESTARTS_MAX]; /* when the last ones happened, a ring */
	size_t nrestarts;
	struct logpipe log; /* its standard error, unless fived logs there */
	/*
	 * Its last PRIV_ALIVE blob, its counters; owned, or NULL.  Kept when it
	 * dies, for its successor to go on counting from (PRIV_INHERIT).
	 */
	uint8_t *share;
	size_t share_len;
	bool share_live; /* sent by the worker that runs now */
};

struct monitor {
	struct priv_state *st;
	struct worker workers[WORKERS_MAX];
	unsigned nworkers;
	unsigned asking; /* the worker whose request is being answered */
	const char *self;
	bool debug;
	int sigfd;
	bool stopping; /* a stop signal was passed on: the workers' exits are fived's */
	int status;    /* while stopping: the worst exit status yet */
	bool served;   /* a worker has started and served: until then a death is a failed start */
	uint64_t watchdog_ms;    /* half of systemd's watchdog timeout; 0 when there is none */
	uint64_t watchdog_at_ms; /* when to feed the watchdog next */
	bool starving;           /* the watchdog was last not fed: said once */
	struct pam_slots pam;
	struct programs programs;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
signal_workers(const struct monitor *m, int sig)
{
	unsigned i;

	for (i = 0; i < m->nworkers; i++)
		if (m->workers[i].pid > 0)
			kill(m->workers[i].pid, sig);
}

/*
 * The workers cannot remove socket files in directories only root may
 * write; a worker still running when fived gives up is not left behind.
 */
static void __attribute__((noreturn)) finish(struct monitor *m, int status)
{
	signal_workers(m, SIGKILL);
	privops_close_listening(m->st);
	free(m->programs.run);
	exit(status);
}

static void
drop_worker(struct worker *w, const char *why)
{
	log_error("monitor: %s; stopping the worker", why);
	if (w->pid > 0)
		kill(w->pid, SIGKILL);
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

/* --- the worker's life ------------------------------------------------------- */

/* In a child about to exec: fd as descriptor target, open across the exec. */
static int
keep_as(int fd, int target)
{
	if (fd != target)
		return dup2(fd, target) == target ? 0 : -1;
	return fcntl(fd, F_SETFD, 0);
}

/*
 * Whether the worker may see a variable of the monitor's environment: the
 * time zone and the locale; what shapes the dynamic linker, the C
 * library's allocator and its resolver (the worker resolves backends'
 * names); the sanitizers' options and nss_wrapper's (tests); nothing
 * else, since the monitor's environment may hold what the less trusted
 * process has no need of (a service manager's credentials, an
 * administrator's secrets).
 */
static bool
worker_env_allowed(const char *entry)
{
	static const char *const prefixes[] = {"TZ=",
	                                       "LANG=",
	                                       "LC_",
	                                       "LD_PRELOAD=",
	                                       "LD_LIBRARY_PATH=",
	                                       "GLIBC_TUNABLES=",
	                                       "LOCALDOMAIN=",
	                                       "RES_OPTIONS=",
	                                       "HOSTALIASES=",
	                                       "ASAN_OPTIONS=",
	                                       "UBSAN_OPTIONS=",
	                                       "LSAN_OPTIONS=",
	                                       "NSS_WRAPPER_"};
	size_t i;

	for (i = 0; i < ARRAY_LEN(prefixes); i++)
		if (strncmp(entry, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/* In the child: worker index, its monitor on fd, its standard error on logfd unless -1. */
static void
exec_worker(struct monitor *m, unsigned index, int fd, int logfd)
{
	char *env[WORKER_ENV_MAX + 1], which[32];
	const char *argv[8];
	size_t n = 0, nenv = 0;
	sigset_t none;
	char **e;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	notify_forget();
	/* Signals go to the monitor, which passes them on. */
	setpgid(0, 0);
	if (keep_as(fd, PRIV_WORKER_FD) != 0 ||
	    (logfd >= 0 && dup2(logfd, STDERR_FILENO) != STDERR_FILENO))
		_exit(127);
	snprintf(which, sizeof(which), "%u/%u", index, m->nworkers);
	argv[n++] = m->self;
	argv[n++] = PRIV_WORKER_FLAG;
	argv[n++] = which;
	if (m->debug)
		argv[n++] = "-d";
	if (m->st->cfg_path != NULL) {
		argv[n++] = "-c";
		argv[n++] = m->st->cfg_path;
	}
	argv[n] = NULL;
	for (e = environ; *e != NULL && nenv < WORKER_ENV_MAX; e++)
		if (worker_env_allowed(*e))
			env[nenv++] = *e;
	env[nenv] = NULL;
	execve(m->self, (char *const *)argv, env);
	_exit(127);
}

static int
start_worker(struct monitor *m, unsigned index)
{
	struct timeval timeout = {.tv_sec = REQUEST_TIMEOUT_S};
	struct worker *w = &m->workers[index];
	int sp[2], logfd = -1;
	pid_t pid;

	w->restart_at_ms = 0;
	if (confine_prepare_root(m->st->cfg) != 0)
		return -1;
	if (m->st->cfg->log != CONFIG_LOG_STDERR && (logfd = logpipe_open(&w->log)) < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
		log_error("cannot start the worker: %s", strerror(errno));
		if (logfd >= 0)
			close(logfd);
		return -1;
	}
	setsockopt(sp[0], SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	pid = fork();
	if (pid == 0)
		exec_worker(m, index, sp[1], logfd);
	if (logfd >= 0)
		close(logfd);
	close(sp[1]);
	if (pid < 0) {
		log_error("cannot start the worker: %s", strerror(errno));
		close(sp[0]);
		return -1;
	}
	w->log.pid = (long)pid;
	w->fd = sp[0];
	w->pid = pid;
	w->started_ms = w->heard_ms = now_ms();
	log_debug("monitor: worker %u started as %ld", index, (long)pid);
	return 0;
}

/*
 * When the next restart may happen: at once, or once the oldest of the
 * last RESTARTS_MAX restarts is a window old.  Never: a worker that keeps
 * dying (a crash someone can trigger, a kill by another user of its
 * account) slows restarts down, but must not end the service for good.
 */
static uint64_t
restart_allowed_at(const struct worker *w, uint64_t now)
{
	uint64_t oldest;

	if (w->nrestarts < RESTARTS_MAX)
		return now;
	oldest = w->restarts[w->nrestarts % RESTARTS_MAX];
	return now - oldest >= RESTARTS_WINDOW_MS ? now : oldest + RESTARTS_WINDOW_MS;
}

static void
describe_exit(int status, char *out, size_t size)
{
	if (WIFSIGNALED(status))
		snprintf(out, size, "was killed by signal %d (%s)%s", WTERMSIG(status),
		         strsignal(WTERMSIG(status)),
		         WTERMSIG(status) == SIGSYS ? ": a system call outside its allow-list"
		                                    : "");
	else
		snprintf(out, size, "exited with status %d", WEXITSTATUS(status));
}

/*
 * The program's id, or 0 when there is no room: it cannot be ended, and
 * must not run.  fd is the worker's end of its stream.
 */
static uint64_t
programs_add(struct programs *p, pid_t pid, unsigned worker, int fd)
{
	struct program *grown;
	int held;

	if ((held = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return 0;
	if (p->n == p->cap) {
		grown = reallocarray(p->run, p->cap > 0 ? 2 * p->cap : PROGRAMS_FIRST,
		                     sizeof(*grown));
		if (grown == NULL) {
			close(held);
			return 0;
		}
		p->run = grown;
		p->cap = p->cap > 0 ? 2 * p->cap : PROGRAMS_FIRST;
	}
	p->run[p->n] =
	        (struct program){.id = ++p->last_id, .pid = pid, .worker = worker, .held = held};
	p->n++;
	return p->last_id;
}

/* Where worker's live program of that id is, or p->n when none has it. */
static size_t
programs_find(const struct programs *p, unsigned worker, uint64_t id)
{
	size_t i;

	for (i = 0;
	     i < p->n && (p->run[i].id != id || p->run[i].worker != worker || p->run[i].over); i++)
		;
	return i;
}

/* Reaps the programs whose streams are over and that have exited. */
static void
programs_reap(struct programs *p)
{
	size_t i = 0;

	while (i < p->n) {
		if (p->run[i].over && waitpid(p->run[i].pid, NULL, WNOHANG) != 0)
			p->run[i] = p->run[--p->n];
		else
			i++;
	}
}

/*
 * The program's stream is over: in order, or cut short, when the program
 * and what it started are killed.  Its leader is still the monitor's
 * child, exited or not, so the group's id is still the program's.
 */
static void
programs_end(struct programs *p, size_t i, bool cut)
{
	if (cut)
		kill(-p->run[i].pid, SIGKILL);
	close(p->run[i].held);
	p->run[i].held = -1;
	p->run[i].over = true;
}

static bool
workers_running(const struct monitor *m)
{
	unsigned i;

	for (i = 0; i < m->nworkers; i++)
		if (m->workers[i].pid > 0)
			return true;
	return false;
}

/* While stopping: fived's status is the worst of its workers'. */
static void
stopped(struct monitor *m, int status)
{
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;

	if (code > m->status)
		m->status = code;
	if (!workers_running(m))
		finish(m, m->status);
}

static void
schedule_restart(struct worker *w, unsigned index, int status)
{
	uint64_t now = now_ms();
	char how[128];

	describe_exit(status, how, sizeof(how));
	w->backoff_ms =
	        now - w->started_ms >= STABLE_MS || w->backoff_ms == 0
	                ? BACKOFF_FIRST_MS
	                : (w->backoff_ms * 2 < BACKOFF_MAX_MS ? w->backoff_ms * 2 : BACKOFF_MAX_MS);
	w->restart_at_ms = now + w->backoff_ms;
	if (restart_allowed_at(w, now) > w->restart_at_ms)
		w->restart_at_ms = restart_allowed_at(w, now);
	w->restarts[w->nrestarts++ % RESTARTS_MAX] = w->restart_at_ms;
	log_error("worker %u %s; its sessions are lost; a new worker starts in %llu ms%s", index,
	          how, (unsigned long long)(w->restart_at_ms - now),
	          w->restart_at_ms - now > BACKOFF_MAX_MS ? " (too many deaths within a minute)"
	                                                  : "");
}

static void
worker_exited(struct monitor *m, unsigned index, int status)
{
	struct worker *w = &m->workers[index];
	size_t i;

	/* Programs whose streams it had not ended: cut short, with the worker's sessions. */
	for (i = 0; i < m->programs.n; i++)
		if (!m->programs.run[i].over && m->programs.run[i].worker == index)
			programs_end(&m->programs, i, true);
	programs_reap(&m->programs);
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	w->pid = 0;
	w->reloading = false;
	w->share_live = false;
	logpipe_close(&w->log);
	if (m->stopping)
		stopped(m, status);
	/* The first worker could not start (its reason is logged): neither can the next. */
	else if (!m->served)
		finish(m, WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : 1);
	else
		schedule_restart(w, index, status);
}

static void
reap(struct monitor *m)
{
	unsigned i;
	int status;
	pid_t pid;

	/* PAM helpers are in the monitor's process group; the workers and programs lead theirs. */
	while ((pid = waitpid(0, &status, WNOHANG)) > 0)
		pam_slots_release(&m->pam, (long)pid);
	for (i = 0; i < m->nworkers; i++)
		if (m->workers[i].pid > 0 &&
		    waitpid(m->workers[i].pid, &status, WNOHANG) == m->workers[i].pid)
			worker_exited(m, i, status);
	programs_reap(&m->programs);
}

/* --- replies ------------------------------------------------------------------- */

/* Sends the asking worker a reply, with a descriptor attached when fd >= 0 (closed here). */
static void
reply(struct monitor *m, enum priv_type type, bool ok, const void *text, size_t len, int fd)
{
	struct worker *w = &m->workers[m->asking];
	size_t n, size = PRIVMSG_HEADER + 16 + len;
	uint8_t *out = malloc(size);
	ssize_t sent = -1;

	if (out != NULL && privmsg_reply_encode(type, ok, text, len, out, size, &n) == 0) {
		sent = io_send_with_fd(w->fd, out, n, fd, MSG_NOSIGNAL);
		if (sent > 0 && (size_t)sent < n &&
		    io_write_all(w->fd, out + sent, n - (size_t)sent) != 0)
			sent = -1;
	}
	if (out != NULL)
		sodium_memzero(out, size);
	free(out);
	if (fd >= 0)
		close(fd);
	if (sent < 0)
		drop_worker(w, "a reply cannot be sent");
}

static void
reply_text(struct monitor *m, enum priv_type type, bool ok, const char *text, int fd)
{
	reply(m, type, ok, text, strlen(text), fd);
}

/* --- processes: PAM helpers and exec programs ------------------------------ */

/* What a child is, before it runs another program: no blocked or ignored signals. */
static void
child_signals(void)
{
	sigset_t none;
	int sig;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	notify_forget();
}

static void
do_pam(struct monitor *m, const struct priv_request *req)
{
	const struct config *cfg = m->st->cfg;
	struct pam_helper_args args = {0};
	struct pam_slot *slot;
	const char *why;
	int sp[2];
	pid_t pid;

	if ((slot = pam_slots_take(&m->pam, req->peer_ip, cfg->max_pam_helpers,
	                           cfg->max_pam_helpers_per_source, &why)) == NULL) {
		reply_text(m, PRIV_PAM_START, false, why, -1);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
		pam_slots_release(&m->pam, slot->id);
		reply_text(m, PRIV_PAM_START, false, strerror(errno), -1);
		return;
	}
	pam_helper_argv(&args, m->self, cfg->pam_service, req->user, req->peer_ip,
	                cfg->auth_timeout_ms);
	if ((pid = fork()) == 0) {
		child_signals();
		if (keep_as(sp[1], PAM_HELPER_FD) != 0)
			_exit(127);
		execv(m->self, args.argv);
		_exit(127);
	}
	close(sp[1]);
	if (pid < 0) {
		pam_slots_release(&m->pam, slot->id);
		close(sp[0]);
		reply_text(m, PRIV_PAM_START, false, strerror(errno), -1);
		return;
	}
	slot->id = (long)pid;
	reply_text(m, PRIV_PAM_START, true, "", sp[0]);
}

/* The variable that carries a USP stream's parameters (docs/PROTOCOL.md section 8.8). */
#define PARAMETERS_VAR "FIVE_PARAMETERS"

static bool
is_parameters(const char *entry)
{
	return strncmp(entry, PARAMETERS_VAR "=", strlen(PARAMETERS_VAR) + 1) == 0;
}

/*
 * The parameters in env, if any, are ones svc accepts: the worker checked
 * them, and the monitor believes no worker.
 */
static bool
parameters_allowed(const struct service *svc, char **env)
{
	char name[PARAMS_NAME_MAX + 1];
	const char *text;
	size_t i;

	for (i = 0; env[i] != NULL; i++) {
		if (!is_parameters(env[i]))
			continue;
		text = env[i] + strlen(PARAMETERS_VAR) + 1;
		return svc->params.n > 0 &&
		       params_check(text, strlen(text), &svc->params, name) == PARAMS_OK;
	}
	return true;
}

/* The variables a program may be given, as backend.c sets them. */
static bool
env_allowed(const char *entry)
{
	static const char *const names[] = {
	        "PROTO",           "FIVE_SERVICE",     "FIVE_VHOST",
	        "FIVE_SESSION_ID", "FIVE_AUTH_METHOD", "FIVE_IDENTITY",
	        "TCPREMOTEINFO",   "FIVE_REMOTE_ADDR", "FIVE_REMOTE_PORT",
	        "TCPREMOTEIP",     "TCPREMOTEPORT",    "TCPLOCALIP",
	        "TCPLOCALPORT",    "FIVE_STREAM",      PARAMETERS_VAR,
	};
	const char *eq = strchr(entry, '='), *c;
	size_t i;

	if (eq == NULL ||
	    strlen(eq + 1) > (is_parameters(entry) ? PARAMS_BYTES_MAX : EXEC_VALUE_MAX))
		return false;
	for (c = eq + 1; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
	for (i = 0; i < ARRAY_LEN(names); i++)
		if (strlen(names[i]) == (size_t)(eq - entry) &&
		    strncmp(entry, names[i], (size_t)(eq - entry)) == 0)
			return true;
	return false;
}

/* Splits the request's NUL-separated environment into env; -1 when any entry is not allowed. */
static int
exec_env(const struct priv_request *req, char **env, size_t max)
{
	size_t n = 0, off = 0, len;

	env[n++] = (char *)"PATH=" EXEC_PATH;
	while (off < req->blob_len) {
		len = strnlen((const char *)req->blob + off, req->blob_len - off);
		if (off + len == req->blob_len || n + 1 >= max ||
		    !env_allowed((const char *)req->blob + off))
			return -1;
		env[n++] = (char *)req->blob + off;
		off += len + 1;
	}
	env[n] = NULL;
	return 0;
}

static const struct service *
exec_service(const struct config *cfg, const char *name)
{
	const struct service *svc;

	for (svc = cfg->services; svc != NULL; svc = svc->next)
		if (svc->backend == BACKEND_EXEC && strcmp(svc->name, name) == 0)
			return svc;
	return NULL;
}

/*
 * The child's side: becomes exec_user and runs the program with standard
 * input and output on fd, standard error shared, and no other descriptor.
 * If anything fails before the program runs, errno goes to report, kept
 * as descriptor 3, close-on-exec: a successful exec closes it with nothing
 * written.
 */
static void __attribute__((noreturn))
run_program(const struct service *svc, const struct passwd *pw, int fd, int report, char **env)
{
	int e;

	child_signals();
	setsid();
	if (dup2(fd, STDIN_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0 ||
	    (report != STDERR_FILENO + 1 && dup3(report, STDERR_FILENO + 1, O_CLOEXEC) < 0) ||
	    close_range(STDERR_FILENO + 2, ~0U, 0) != 0 ||
	    initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0 || chdir("/") != 0) {
		e = errno;
	} else if (setuid(0) == 0) {
		e = EPERM;
	} else {
		execve(svc->argv[0], svc->argv, env);
		e = errno;
	}
	if (write(STDERR_FILENO + 1, &e, sizeof(e)) < 0)
		_exit(126);
	_exit(127);
}

/* Starts the program (*pid); a socket to it, or -errno when it could not be run. */
static int
spawn_program(const struct service *svc, const struct passwd *pw, char **env, pid_t *pid_out)
{
	int sp[2], report[2], e = 0;
	ssize_t n;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
		return -errno;
	if (pipe2(report, O_CLOEXEC) != 0) {
		e = errno;
		close(sp[0]);
		close(sp[1]);
		return -e;
	}
	if ((pid = fork()) == 0)
		run_program(svc, pw, sp[1], report[1], env);
	e = pid < 0 ? errno : 0;
	close(sp[1]);
	close(report[1]);
	while (pid > 0 && (n = read(report[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	close(report[0]);
	if (e != 0) {
		/* It leads a group of its own: the monitor's reaping does not reach it. */
		if (pid > 0)
			waitpid(pid, NULL, 0);
		close(sp[0]);
		return -e;
	}
	*pid_out = pid;
	return sp[0];
}

/* Starts an exec service's program under exec_user; the worker gets a socket to it. */
static int
do_exec(struct monitor *m, const struct priv_request *req)
{
	char *env[EXEC_ENV_MAX + 2], err[16], id[24];
	const struct service *svc;
	struct passwd *pw;
	uint64_t program = 0;
	pid_t pid = 0;
	int fd;

	if (exec_env(req, env, ARRAY_LEN(env)) != 0)
		return -1;
	if ((svc = exec_service(m->st->cfg, req->arg)) == NULL) {
		log_error("the worker asked to run service %s, which is not an exec service",
		          req->arg);
		reply_text(m, PRIV_EXEC, false, "1", -1);
		return 0;
	}
	if (!parameters_allowed(svc, env)) {
		log_error("the worker passed service %s parameters it does not accept", svc->name);
		reply_text(m, PRIV_EXEC, false, "1", -1);
		return 0;
	}
	if ((pw = getpwnam(m->st->cfg->exec_user)) == NULL) {
		log_error("cannot run %s: exec_user %s does not exist", svc->argv[0],
		          m->st->cfg->exec_user);
		reply_text(m, PRIV_EXEC, false, "2", -1);
		return 0;
	}
	if ((fd = spawn_program(svc, pw, env, &pid)) >= 0 &&
	    (program = programs_add(&m->programs, pid, m->asking, fd)) == 0) {
		kill(-pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(fd);
		fd = -ENOMEM;
	}
	if (fd < 0) {
		log_warn("service %s: cannot run %s: %s", svc->name, svc->argv[0], strerror(-fd));
		snprintf(err, sizeof(err), "%d", -fd);
		reply_text(m, PRIV_EXEC, false, err, -1);
		return 0;
	}
	snprintf(id, sizeof(id), "%llu", (unsigned long long)program);
	reply_text(m, PRIV_EXEC, true, id, fd);
	return 0;
}

/*
 * The worker ends a program's stream: cut short (PRIV_EXEC_END), the
 * program and what it started are killed before the worker closes its
 * end, so that none of them reads the end of its input as the end of a
 * whole stream; in order (PRIV_EXEC_DONE), it runs on as it will.
 */
static void
end_program(struct monitor *m, const struct priv_request *req)
{
	size_t i = programs_find(&m->programs, m->asking, req->number);

	if (i < m->programs.n) {
		programs_end(&m->programs, i, req->type == PRIV_EXEC_END);
		programs_reap(&m->programs);
	}
	reply_text(m, req->type, true, "", -1);
}

/* --- requests ------------------------------------------------------------------- */

/* A worker's counters, kept as it sent them: the monitor does not read them. */
static void
keep_share(struct worker *w, const struct priv_request *req)
{
	uint8_t *copy;

	if (req->blob_len == 0 || (copy = malloc(req->blob_len)) == NULL)
		return;
	memcpy(copy, req->blob, req->blob_len);
	free(w->share);
	w->share = copy;
	w->share_len = req->blob_len;
	w->share_live = true;
}

/*
 * Every worker's last counters, each after whether its worker runs and
 * whether it is the asking one's, for the asking worker's metrics: a dead
 * one's counters still count (its successor goes on from them), what it
 * had open no longer does.
 */
static void
answer_shares(struct monitor *m)
{
	uint8_t *all = malloc((1 + PRIVMSG_BLOB_MAX) * (size_t)m->nworkers);
	const struct worker *w;
	size_t len = 0;
	unsigned i;

	if (all == NULL) {
		reply_text(m, PRIV_SHARES, false, "out of memory", -1);
		return;
	}
	for (i = 0; i < m->nworkers; i++) {
		w = &m->workers[i];
		if (w->share == NULL)
			continue;
		all[len++] = (w->share_live ? PRIV_SHARE_LIVE : 0) |
		             (i == m->asking ? PRIV_SHARE_ASKING : 0);
		memcpy(all + len, w->share, w->share_len);
		len += w->share_len;
	}
	reply(m, PRIV_SHARES, true, all, len, -1);
	free(all);
}

/* A worker starting: its predecessor's last counters, to go on from; nothing for a first. */
static void
answer_inherit(struct monitor *m)
{
	const struct worker *w = &m->workers[m->asking];

	if (w->share_live || w->share == NULL)
		reply(m, PRIV_INHERIT, true, "", 0, -1);
	else
		reply(m, PRIV_INHERIT, true, w->share, w->share_len, -1);
}

static int take_config(struct monitor *m);
static void signal_reload(struct monitor *m, unsigned except);
static void worker_ready(struct monitor *m);

static int
answer_request(struct monitor *m, const struct priv_request *req)
{
	struct priv_answer ans;

	if (req->type == PRIV_PAM_START) {
		do_pam(m, req);
		return 0;
	}
	if (req->type == PRIV_EXEC)
		return do_exec(m, req);
	if (req->type == PRIV_EXEC_END || req->type == PRIV_EXEC_DONE) {
		end_program(m, req);
		return 0;
	}
	/* fivectl reload: the worker that asked reloads once answered, unsignalled; the others are
	 * signalled. */
	if (req->type == PRIV_RELOAD) {
		if (take_config(m) == 0) {
			reply(m, req->type, true, "", 0, -1);
			signal_reload(m, m->asking);
		} else {
			reply(m, req->type, false, RELOAD_REFUSED, strlen(RELOAD_REFUSED), -1);
		}
		return 0;
	}
	if (req->type == PRIV_READY)
		worker_ready(m);
	if (req->type == PRIV_ALIVE)
		keep_share(&m->workers[m->asking], req);
	if (req->type == PRIV_SHARES) {
		answer_shares(m);
		return 0;
	}
	if (req->type == PRIV_INHERIT) {
		answer_inherit(m);
		return 0;
	}
	privops_asking(m->st, m->asking, m->nworkers);
	if (privops_answer(m->st, req, &ans) != 0) {
		privops_answer_clear(&ans);
		return -1;
	}
	reply(m, req->type, ans.ok, ans.text, ans.len, ans.fd);
	ans.fd = -1;
	privops_answer_clear(&ans);
	return 0;
}

/*
 * The worker writes a request whole and waits for its answer, so one read
 * takes the header and usually the body too (a system call fewer per
 * request); a byte beyond the body would be a second request in flight.
 */
static void
serve_request(struct monitor *m, unsigned index)
{
	static uint8_t msg[PRIVMSG_HEADER + PRIVMSG_REQUEST_MAX];
	static struct priv_request req;
	struct worker *w = &m->workers[index];
	uint8_t *body = msg + PRIVMSG_HEADER;
	uint32_t type, len;
	ssize_t n;

	m->asking = index;
	while ((n = read(w->fd, msg, sizeof(msg))) < 0 && errno == EINTR)
		;
	if (n == 0) {
		/* The worker closed its end: it is exiting, and SIGCHLD follows. */
		close(w->fd);
		w->fd = -1;
		return;
	}
	if (n < PRIVMSG_HEADER ||
	    privmsg_header_decode(msg, &type, &len, PRIVMSG_REQUEST_MAX) != 0 ||
	    (size_t)n - PRIVMSG_HEADER > len ||
	    io_read_all(w->fd, body + (n - PRIVMSG_HEADER), len - (size_t)(n - PRIVMSG_HEADER)) !=
	            0 ||
	    privmsg_request_decode(type, body, len, &req) != 0 || answer_request(m, &req) != 0)
		drop_worker(w, "a malformed request from the worker");
	else
		w->heard_ms = now_ms();
	sodium_memzero(msg, sizeof(msg));
}

/* --- signals ----------------------------------------------------------------------- */

/* Takes the configuration file again if it is valid.  Returns 0, or -1 after logging why. */
static int
take_config(struct monitor *m)
{
	struct config_errors errs;
	struct config *cfg;
	char *text;
	size_t len;
	char err[256];

	if (m->st->cfg_path == NULL)
		return 0;
	if (config_read_file(m->st->cfg_path, &text, &len, &errs) != 0 ||
	    (cfg = config_parse(m->st->cfg_path, text, len, &errs)) == NULL) {
		log_error("reload rejected, keeping the running configuration");
		config_errors_log(&errs);
		free(text); /* read, but not valid */
		return -1;
	}
	if (cfg->log != m->st->cfg->log)
		log_warn("log changes only with a restart: the new value is not in force");
	if (privops_workers(cfg) != m->nworkers)
		log_warn("workers changes only with a restart: %u workers go on", m->nworkers);
	if (confine_check_accounts(cfg, err, sizeof(err)) != 0) {
		log_error("reload rejected, keeping the running configuration: %s", err);
		config_unref(cfg);
		free(text);
		return -1;
	}
	if (privops_set_config(m->st, cfg, text, len) != 0) {
		config_unref(cfg);
		free(text);
		return -1;
	}
	confine_prepare_root(m->st->cfg);
	return 0;
}

static bool
workers_reloading(const struct monitor *m)
{
	unsigned i;

	for (i = 0; i < m->nworkers; i++)
		if (m->workers[i].reloading)
			return true;
	return false;
}

/* Each running worker but except (UINT_MAX for none) is told to reload. */
static void
signal_reload(struct monitor *m, unsigned except)
{
	unsigned i;

	for (i = 0; i < m->nworkers; i++)
		if (i != except && m->workers[i].pid > 0 && kill(m->workers[i].pid, SIGHUP) == 0)
			m->workers[i].reloading = true;
}

/*
 * The asking worker serves: after its start, or after a reload.  A
 * restarted worker serves as the last one did: systemd need not hear of
 * it; READY=1 follows the first start and a signalled reload, once no
 * worker is still reloading.
 */
static void
worker_ready(struct monitor *m)
{
	bool told = m->workers[m->asking].reloading;

	m->workers[m->asking].reloading = false;
	if ((!m->served || told) && !workers_reloading(m))
		notify_ready();
	m->served = true;
	log_debug("monitor: worker %u serves", m->asking);
}

/*
 * SIGHUP: the file again if it is valid, then the workers.  systemd hears
 * RELOADING=1, then READY=1 once every worker told has reloaded (their
 * PRIV_READY), or at once when none was told.
 */
static void
reload(struct monitor *m)
{
	notify_reloading();
	if (take_config(m) == 0)
		signal_reload(m, UINT_MAX);
	if (!workers_reloading(m))
		notify_ready();
}

static void
handle_signal(struct monitor *m)
{
	struct signalfd_siginfo si;

	if (read(m->sigfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return;
	if (si.ssi_signo == SIGHUP) {
		reload(m);
	} else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
		/* New connections are refused from now on, as the worker drains. */
		notify_stopping();
		m->stopping = true;
		privops_close_listening(m->st);
		if (!workers_running(m))
			finish(m, 0);
		signal_workers(m, SIGTERM);
	} else if (si.ssi_signo == SIGCHLD) {
		reap(m);
	}
}

/* How long poll may wait: until a pending restart or the watchdog's turn, or for ever. */
static int
poll_timeout(const struct monitor *m)
{
	uint64_t now = now_ms(), at = 0;
	unsigned i;

	for (i = 0; i < m->nworkers; i++)
		if (m->workers[i].restart_at_ms != 0 &&
		    (at == 0 || m->workers[i].restart_at_ms < at))
			at = m->workers[i].restart_at_ms;
	if (m->watchdog_ms > 0 && (at == 0 || m->watchdog_at_ms < at))
		at = m->watchdog_at_ms;
	if (at == 0)
		return -1;
	return at > now ? (int)(at - now) : 0;
}

/* The first worker that does not run or answer, or NULL when all do. */
static const struct worker *
worker_stuck(const struct monitor *m, uint64_t now)
{
	unsigned i;

	for (i = 0; i < m->nworkers; i++)
		if (m->workers[i].pid <= 0 || m->workers[i].fd < 0 ||
		    now - m->workers[i].heard_ms > ALIVE_STALE_MS)
			return &m->workers[i];
	return NULL;
}

/* Fed only while every worker runs and answers: a stuck one lets systemd act. */
static void
feed_watchdog(struct monitor *m)
{
	uint64_t now = now_ms();
	const struct worker *stuck;

	if (m->watchdog_ms == 0 || now < m->watchdog_at_ms)
		return;
	m->watchdog_at_ms = now + m->watchdog_ms;
	if ((stuck = worker_stuck(m, now)) == NULL) {
		notify_watchdog();
		m->starving = false;
	} else if (!m->starving) {
		m->starving = true;
		log_warn("monitor: worker %u %s; the systemd watchdog is not fed",
		         (unsigned)(stuck - m->workers),
		         stuck->pid > 0 ? "does not answer" : "is not running");
	}
}

/* Each worker's link and log pipe, after the signals at pfd[0]; returns how many entries. */
static nfds_t
poll_set(const struct monitor *m, struct pollfd *pfd)
{
	nfds_t n = 1;
	unsigned i;

	pfd[0] = (struct pollfd){.fd = m->sigfd, .events = POLLIN};
	for (i = 0; i < m->nworkers; i++) {
		pfd[n++] = (struct pollfd){.fd = m->workers[i].fd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = m->workers[i].log.fd, .events = POLLIN};
	}
	return n;
}

/* Requests answered and logs read, worker by worker; then restarts that are due. */
static void
serve_workers(struct monitor *m, const struct pollfd *pfd)
{
	uint64_t now = now_ms();
	struct worker *w;
	unsigned i;

	for (i = 0; i < m->nworkers; i++) {
		w = &m->workers[i];
		if (pfd[2 + 2 * i].revents & (POLLIN | POLLHUP))
			logpipe_read(&w->log);
		if (w->fd >= 0 && (pfd[1 + 2 * i].revents & (POLLIN | POLLHUP)))
			serve_request(m, i);
		if (w->pid == 0 && w->restart_at_ms != 0 && now >= w->restart_at_ms &&
		    !m->stopping && start_worker(m, i) != 0)
			finish(m, 1);
	}
}

void
monitor_run(struct priv_state *st, const char *self, bool debug)
{
	static struct monitor m;
	struct pollfd pfd[1 + 2 * WORKERS_MAX];
	unsigned i;
	sigset_t set;

	m = (struct monitor){.st = st,
	                     .self = self,
	                     .debug = debug,
	                     .nworkers = privops_workers(st->cfg),
	                     .watchdog_ms = notify_watchdog_interval_ms()};
	log_init("fived-monitor", debug ? LOGL_DEBUG : LOGL_INFO);
	for (i = 0; i < m.nworkers; i++) {
		m.workers[i].fd = -1;
		logpipe_init(&m.workers[i].log);
	}
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if ((m.sigfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0)
		finish(&m, 1);
	for (i = 0; i < m.nworkers; i++)
		if (start_worker(&m, i) != 0)
			finish(&m, 1);
	for (;;) {
		nfds_t n = poll_set(&m, pfd);

		if (poll(pfd, n, poll_timeout(&m)) < 0 && errno != EINTR)
			finish(&m, 1);
		if (pfd[0].revents & POLLIN)
			handle_signal(&m);
		serve_workers(&m, pfd);
		feed_watchdog(&m);
	}
}
