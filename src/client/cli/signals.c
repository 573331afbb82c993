#include "client/cli/signals.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/base/sock.h"
#include "client/relay/relay.h"

/* The descriptors looked at for TCP connections to reset, at most. */
#define RESET_FDS_MAX 65536

/* SIGPIPE: standard output's reader went away, and what five relays is cut. */
static const int stop_signals[] = {SIGHUP, SIGTERM, SIGINT, SIGPIPE};
#define STOP_SIGNALS (sizeof(stop_signals) / sizeof(stop_signals[0]))

static int reset_fds;
static int stop_pipe[2] = {-1, -1};
static volatile sig_atomic_t caught;
static volatile sig_atomic_t gently;

/* Async-signal-safe: system calls only. */
static void
reset_tcp_connections(void)
{
	int protocol;
	socklen_t len;

	for (int fd = 0; fd < reset_fds; fd++) {
		len = sizeof(protocol);
		if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 &&
		    protocol == IPPROTO_TCP)
			five_sock_reset_on_close(fd);
	}
}

/* With SA_RESETHAND: the signal, raised again, ends five once the handler returns. */
static void
on_end_at_once(int sig)
{
	reset_tcp_connections();
	raise(sig);
}

static void
on_stop(int sig)
{
	int saved = errno;
	char how = sig == SIGHUP && gently ? RELAY_STOP_AT_END : RELAY_STOP_NOW;
	ssize_t ignored = write(stop_pipe[1], &how, 1);

	(void)ignored;
	if (caught == 0 || sig != SIGHUP)
		caught = sig;
	errno = saved;
}

/* The descriptors five may hold: those reset_tcp_connections looks at. */
static int
fds_to_reset(void)
{
	struct rlimit rl;

	return getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < RESET_FDS_MAX ? (int)rl.rlim_cur
	                                                                         : RESET_FDS_MAX;
}

/* Handler for every stop signal that was not ignored when five started. */
static void
handle(void (*handler)(int), int flags)
{
	struct sigaction sa = {.sa_handler = handler, .sa_flags = flags};
	struct sigaction old;
	size_t i;

	reset_fds = fds_to_reset();
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < STOP_SIGNALS; i++)
		sigaddset(&sa.sa_mask, stop_signals[i]);
	for (i = 0; i < STOP_SIGNALS; i++)
		if (sigaction(stop_signals[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
			sigaction(stop_signals[i], &sa, NULL);
}

void
cli_signals_end_at_once(void)
{
	handle(on_end_at_once, SA_RESETHAND);
}

int
cli_signals_catch(bool hangup_gently)
{
	if (stop_pipe[0] < 0 && pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return -1;
	gently = hangup_gently;
	handle(on_stop, SA_RESTART);
	return stop_pipe[0];
}

void
cli_signals_after_fork(void)
{
	if (stop_pipe[0] >= 0) {
		close(stop_pipe[0]);
		close(stop_pipe[1]);
		stop_pipe[0] = stop_pipe[1] = -1;
	}
	caught = 0;
	cli_signals_end_at_once();
}

void
cli_signals_die_if_caught(void)
{
	int sig = caught;

	if (sig == 0)
		return;
	reset_tcp_connections();
	signal(sig, SIG_DFL);
	raise(sig);
}
