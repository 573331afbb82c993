#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/base/sock.h"
#include "client/cli/agent.h"
#include "client/cli/agentline.h"
#include "client/mux/mux.h"
#include "common/util.h"

#define AGENT_SESSIONS_MAX 64
#define AGENT_BACKLOG      64
/* A client sends its line at once: one that does not is dropped after this. */
#define AGENT_READ_MS 2000
/* How often idle sessions are looked for. */
#define AGENT_TICK_MS 1000
/* sd_listen_fds(3): the first descriptor systemd hands over. */
#define LISTEN_FDS_START 3

struct entry {
	char key[AGENT_LINE_MAX];
	struct five_session *s; /* owned by the agent; NULL: a free entry */
	uint64_t idle_since;
};

struct agent {
	struct entry e[AGENT_SESSIONS_MAX];
	uint64_t idle_ms;
	bool detachable; /* its sessions outlive their connections (section 12) */
};

/* The directory must be ours and no one else's: the socket in it is a key to our sessions. */
static int
check_dir(const char *dir, struct five_error *err)
{
	struct stat st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return five_fail(err, FIVE_ERR_SYSTEM, "%s: %s", dir, strerror(errno));
	if (lstat(dir, &st) != 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077) != 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "%s: not a directory of ours with mode 0700",
		                 dir);
	return 0;
}

int
cli_agent_path(char *path, size_t size, struct five_error *err)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int n;

	if (xdg != NULL && xdg[0] == '/')
		n = snprintf(dir, sizeof(dir), "%s/five", xdg);
	else
		n = snprintf(dir, sizeof(dir), "/tmp/five-%u", (unsigned)getuid());
	if (n < 0 || (size_t)n >= sizeof(dir) - sizeof("/agent.sock"))
		return five_fail(err, FIVE_ERR_SYSTEM, "the agent's directory name is too long");
	if (check_dir(dir, err) != 0)
		return -1;
	snprintf(path, size, "%s/agent.sock", dir);
	return 0;
}

int
cli_agent_dial(const char *path)
{
	return five_sock_dial_unix(path);
}

/* A line: prefix, then text. */
static void
reply(int fd, const char *prefix, const char *text)
{
	char line[FIVE_LINE_MAX];
	int n = snprintf(line, sizeof(line), "%s%s\n", prefix, text);

	if (n > 0 && send(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1,
	                  MSG_NOSIGNAL) < 0)
		return;
}

/* Closes sessions no stream has used for idle_ms, and those that take no more streams. */
static void
reap(struct agent *a)
{
	uint64_t now = monotonic_ms();
	size_t i;

	for (i = 0; i < AGENT_SESSIONS_MAX; i++) {
		struct entry *e = &a->e[i];

		if (e->s == NULL)
			continue;
		if (mux_streams_open(e->s) > 0) {
			e->idle_since = now;
			continue;
		}
		if (mux_usable(e->s) && now - e->idle_since < a->idle_ms)
			continue;
		five_session_close(e->s);
		e->s = NULL;
	}
}

/* The agent cannot ask anyone anything. */
static int
no_prompt(void *arg, const char *prompt, int echo, char *answer, size_t size)
{
	return -1;
}

static bool
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The session for r: held, or opened now.  NULL with err filled. */
static struct entry *
session_for(struct agent *a, struct agent_request *r, struct five_error *err)
{
	struct entry *free_e = NULL;
	size_t i;

	for (i = 0; i < AGENT_SESSIONS_MAX; i++) {
		if (a->e[i].s == NULL && free_e == NULL)
			free_e = &a->e[i];
		if (a->e[i].s != NULL && strcmp(a->e[i].key, r->key) == 0 && mux_usable(a->e[i].s))
			return &a->e[i];
	}
	if (free_e == NULL) {
		five_fail(err, FIVE_ERR_SYSTEM, "the agent holds too many sessions");
		return NULL;
	}
	/* A first contact pins a key, and tells the user: five does that, not the agent. */
	r->opts.trust_on_first_use = 0;
	r->opts.detachable = a->detachable;
	r->auth.ask = no_prompt;
	if ((free_e->s = five_session_open(r->host, &r->opts, err)) == NULL)
		return NULL;
	str_copy(free_e->key, r->key, sizeof(free_e->key));
	free_e->idle_since = monotonic_ms();
	return free_e;
}

static bool
our_user(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == getuid();
}

/* One client.  Returns true when told to stop. */
static bool
serve(struct agent *a, int conn)
{
	struct agent_request r;
	struct five_error err;
	struct entry *e;
	char line[AGENT_LINE_MAX];
	const char *why;

	if (!our_user(conn) ||
	    five_sock_read_line(conn, AGENT_READ_MS, line, sizeof(line), &err) != 0) {
		close(conn);
		return false;
	}
	if (strcmp(line, "stop") == 0) {
		reply(conn, "+", "");
		close(conn);
		return true;
	}
	if (agent_line_parse(line, &r, &why) != 0) {
		reply(conn, "! ", why);
	} else if (!same(r.known_hosts, getenv("FIVE_KNOWN_HOSTS")) ||
	           !same(r.identity_file, getenv("FIVE_IDENTITY_FILE"))) {
		reply(conn, "! ", "another known_hosts or identity file than the agent's");
	} else if ((e = session_for(a, &r, &err)) == NULL) {
		reply(conn, "! ", err.message);
	} else {
		reply(conn, "ready", "");
		e->idle_since = monotonic_ms();
		/* The connection is the stream's from here: fived's answer reaches it first. */
		mux_attach(e->s, conn, r.service, NULL, 0, false,
		           MUX_TELL_ANSWER | (r.marked_ends ? MUX_TELL_ENDS : 0), &err);
		return false;
	}
	close(conn);
	return false;
}

/*
 * SIGTERM (a service manager's stop, kill's default) stops the agent as
 * `five agent -k` does: its sessions end with fived, rather than wait
 * there, detached, for an agent that will not come back.
 */
static volatile sig_atomic_t terminated;

static void
on_term(int sig)
{
	(void)sig;
	terminated = 1;
}

static void
run(int lfd, const char *path, uint64_t idle_ms, bool detachable)
{
	static struct agent a;
	struct sigaction term = {.sa_handler = on_term};
	struct pollfd pfd = {.fd = lfd, .events = POLLIN};
	size_t i;
	int conn;

	a.idle_ms = idle_ms;
	a.detachable = detachable;
	sigemptyset(&term.sa_mask);
	sigaction(SIGTERM, &term, NULL);
	while (!terminated) {
		reap(&a);
		if (poll(&pfd, 1, AGENT_TICK_MS) <= 0)
			continue;
		if ((conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
			continue;
		if (serve(&a, conn))
			break;
	}
	if (path != NULL)
		unlink(path);
	close(lfd);
	for (i = 0; i < AGENT_SESSIONS_MAX; i++)
		five_session_close(a.e[i].s);
}

static int
listen_at(const char *path, struct five_error *err)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	mode_t old;
	int fd, r;

	str_copy(sun.sun_path, path, sizeof(sun.sun_path));
	/* A socket nobody answers on is a stale one: an agent that died. */
	unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "socket: %s", strerror(errno));
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r != 0 || chmod(path, 0600) != 0 || listen(fd, AGENT_BACKLOG) != 0) {
		five_fail(err, FIVE_ERR_SYSTEM, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int
stop_agent(const char *path, struct five_error *err)
{
	char line[16];
	int fd = cli_agent_dial(path);

	if (fd < 0)
		return five_fail(err, FIVE_ERR_CONNECT, "no agent runs on %s", path);
	reply(fd, "stop", "");
	if (five_sock_read_line(fd, AGENT_READ_MS, line, sizeof(line), err) != 0) {
		close(fd);
		return -1;
	}
	close(fd);
	printf("unset %s;\n", AGENT_ENV);
	return 0;
}

/* Into the background: the parent prints what names the agent, and returns. */
static int
daemonize(int lfd, const char *path, uint64_t idle_ms, bool detachable, struct five_error *err)
{
	pid_t pid;
	int null;

	fflush(stdout);
	if ((pid = fork()) < 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "fork: %s", strerror(errno));
	if (pid > 0) {
		close(lfd);
		printf("%s=%s; export %s;\necho five agent pid %d;\n", AGENT_ENV, path, AGENT_ENV,
		       (int)pid);
		return 0;
	}
	setsid();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if ((null = open("/dev/null", O_RDWR)) >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	if (chdir("/") != 0)
		_exit(1);
	run(lfd, path, idle_ms, detachable);
	_exit(0);
}

/*
 * The listening socket systemd's socket activation handed over, as
 * sd_listen_fds(3) finds it (five does not link libsystemd): into *fd when
 * LISTEN_PID is this process.  The variables are unset, so that nothing
 * the agent starts takes them for its own.  Returns 1, 0 when nothing was
 * handed over, or -1 with err filled.
 */
static int
activated_socket(int *fd, struct five_error *err)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	uint64_t n, listening = 0;
	socklen_t len = sizeof(int);
	int on = 0;

	if (pid == NULL || fds == NULL || parse_uint(pid, UINT32_MAX, &n) != 0 ||
	    n != (uint64_t)getpid())
		return 0;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (parse_uint(fds, UINT32_MAX, &listening) != 0 || listening != 1)
		return five_fail(err, FIVE_ERR_SYSTEM,
		                 "socket activation: expected one socket, got %s", fds);
	if (getsockopt(LISTEN_FDS_START, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) != 0 || !on)
		return five_fail(err, FIVE_ERR_SYSTEM,
		                 "socket activation: descriptor %d is not a listening socket",
		                 LISTEN_FDS_START);
	fcntl(LISTEN_FDS_START, F_SETFD, FD_CLOEXEC);
	*fd = LISTEN_FDS_START;
	return 1;
}

int
cli_agent_foreground(uint64_t idle_ms, bool detachable, struct five_error *err)
{
	char bound_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd = -1, r;

	if ((r = activated_socket(&fd, err)) < 0)
		return -1;
	if (r == 0) {
		if (cli_agent_path(bound_path, sizeof(bound_path), err) != 0)
			return -1;
		if ((fd = cli_agent_dial(bound_path)) >= 0) {
			close(fd);
			return five_fail(err, FIVE_ERR_SYSTEM, "already running on %s", bound_path);
		}
		if ((fd = listen_at(bound_path, err)) < 0)
			return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* A socket systemd made is systemd's: it stays when the agent stops. */
	run(fd, r == 1 ? NULL : bound_path, idle_ms, detachable);
	return 0;
}

int
cli_agent(bool stop, uint64_t idle_ms, bool detachable, struct five_error *err)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;

	if (cli_agent_path(path, sizeof(path), err) != 0)
		return -1;
	if (stop)
		return stop_agent(path, err);
	if ((fd = cli_agent_dial(path)) >= 0) {
		close(fd);
		fprintf(stderr, "five agent: already running on %s\n", path);
		printf("%s=%s; export %s;\n", AGENT_ENV, path, AGENT_ENV);
		return 0;
	}
	if ((fd = listen_at(path, err)) < 0)
		return -1;
	return daemonize(fd, path, idle_ms, detachable, err);
}
