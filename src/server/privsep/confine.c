#include "server/privsep/confine.h"

#include <errno.h>
#include <grp.h>
#include <linux/sockios.h>
#include <openssl/ssl.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/io.h"
#include "common/log.h"
#include "common/util.h"

#define ROOT_MODE         0755
#define COPY_MODE         0644
#define COPY_MAX          (1024 * 1024)
#define CLONE_THREAD_FLAG 0x00010000 /* CLONE_THREAD: the only clone the worker may make */

/* The sanitizers read /proc and trace the process at exit: their builds get no chroot, no filter.
 */
#if defined(__SANITIZE_ADDRESS__)
static const bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
static const bool sanitized = true;
#else
static const bool sanitized = false;
#endif
#else
static const bool sanitized = false;
#endif

/* What name resolution reads: copied into the chroot. */
static const char *const resolver_files[] = {
        "/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf",
};

/* --- accounts ------------------------------------------------------------------------- */

struct passwd *
confine_worker_account(const struct config *cfg)
{
	struct passwd *pw;

	if (cfg->user[0] != '\0')
		return getpwnam(cfg->user);
	if ((pw = getpwnam("fived")) != NULL)
		return pw;
	return getpwnam("nobody");
}

static bool
has_exec_service(const struct config *cfg)
{
	const struct service *svc;

	for (svc = cfg->services; svc != NULL; svc = svc->next)
		if (svc->backend == BACKEND_EXEC)
			return true;
	return false;
}

int
confine_check_accounts(const struct config *cfg, char *err, size_t err_size)
{
	struct passwd *pw = confine_worker_account(cfg);
	uid_t worker;

	if (pw == NULL) {
		snprintf(err, err_size, "user %s does not exist",
		         cfg->user[0] != '\0' ? cfg->user : "nobody (nor fived)");
		return -1;
	}
	worker = pw->pw_uid;
	if (!has_exec_service(cfg))
		return 0;
	if ((pw = getpwnam(cfg->exec_user)) == NULL) {
		snprintf(err, err_size, "exec_user %s does not exist", cfg->exec_user);
		return -1;
	}
	if (pw->pw_uid == worker) {
		snprintf(err, err_size,
		         "exec_user %s is the worker's account: programs of exec services would "
		         "be able to signal and trace fived; create an account for fived "
		         "(useradd --system --no-create-home --shell /usr/sbin/nologin fived) or "
		         "set user or exec_user",
		         cfg->exec_user);
		return -1;
	}
	return 0;
}

/* --- the chroot directory ----------------------------------------------------------- */

/*
 * Walks dir from the root: each existing part must be a directory of
 * root's that nobody else may write (else another user could swap the
 * worker's root); with make, missing parts are made so.  Returns 0, or -1
 * with errno (EPERM for a part that is not as it must be).
 */
static int
walk_root_dir(const char *dir, bool make)
{
	char path[CONFIG_PATH_MAX + 8], *slash;
	struct stat st;

	str_copy(path, dir, sizeof(path));
	for (slash = strchr(path + 1, '/');; slash = strchr(slash + 1, '/')) {
		if (slash != NULL)
			*slash = '\0';
		if (make && mkdir(path, ROOT_MODE) != 0 && errno != EEXIST)
			return -1;
		if (lstat(path, &st) != 0) {
			if (!make && errno == ENOENT)
				return 0;
			return -1;
		}
		if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
			errno = EPERM;
			return -1;
		}
		if (slash == NULL)
			return 0;
		*slash = '/';
	}
}

int
confine_check_root(const struct config *cfg, char *err, size_t err_size)
{
	if (strcmp(cfg->chroot, "none") == 0 || walk_root_dir(cfg->chroot, false) == 0)
		return 0;
	snprintf(err, err_size,
	         "chroot %s: %s (it must be a directory owned by root that only root may write, "
	         "as must every directory above it)",
	         cfg->chroot, strerror(errno));
	return -1;
}

int
confine_prepare_root(const struct config *cfg)
{
	char dir[CONFIG_PATH_MAX + 8], copy[CONFIG_PATH_MAX + 32], *text;
	size_t i, len;
	int e;

	if (strcmp(cfg->chroot, "none") == 0)
		return 0;
	snprintf(dir, sizeof(dir), "%s/etc", cfg->chroot);
	if (walk_root_dir(dir, true) != 0) {
		log_error("chroot %s: %s (it must be a directory owned by root that only root "
		          "may write, as must its parents)",
		          cfg->chroot, strerror(errno));
		return -1;
	}
	for (i = 0; i < ARRAY_LEN(resolver_files); i++) {
		snprintf(copy, sizeof(copy), "%s%s", cfg->chroot, resolver_files[i]);
		if ((e = io_read_file(resolver_files[i], COPY_MAX, &text, &len)) != 0) {
			unlink(copy);
			continue;
		}
		e = io_replace_file(copy, text, len, COPY_MODE);
		free(text);
		if (e != 0) {
			log_error("%s: %s", copy, strerror(-e));
			return -1;
		}
	}
	return 0;
}

/* --- the worker ----------------------------------------------------------------------- */

/* What must be loaded while the files are there: OpenSSL's configuration, the time zone. */
static void
preload(void)
{
	SSL_CTX *ctx;

	OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL);
	if ((ctx = SSL_CTX_new(TLS_server_method())) != NULL)
		SSL_CTX_free(ctx);
	tzset();
}

/* No capability can come back, whatever runs in this process later. */
static void
drop_bounding_set(void)
{
	int cap;

	for (cap = 0; prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0; cap++)
		;
}

static int
become(const struct passwd *pw)
{
	if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		log_error("cannot become %s: %s", pw->pw_name, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		log_error("privileges could not be dropped for good");
		return -1;
	}
	return 0;
}

/* The system calls an event loop that relays sockets makes, and no others. */
static const int allowed_calls[] = {
        SCMP_SYS(read),
        SCMP_SYS(write),
        SCMP_SYS(readv),
        SCMP_SYS(writev),
        SCMP_SYS(pread64),
        SCMP_SYS(close),
        SCMP_SYS(fstat),
        SCMP_SYS(newfstatat),
        SCMP_SYS(statx),
        SCMP_SYS(lseek),
        SCMP_SYS(ftruncate), /* the audit log: a record a full disk cut short is taken back */
        SCMP_SYS(openat),
        SCMP_SYS(mmap),
        SCMP_SYS(munmap),
        SCMP_SYS(mprotect),
        SCMP_SYS(mremap),
        SCMP_SYS(madvise),
        SCMP_SYS(brk),
        SCMP_SYS(mlock),
        SCMP_SYS(munlock),
        SCMP_SYS(rt_sigaction),
        SCMP_SYS(rt_sigprocmask),
        SCMP_SYS(rt_sigreturn),
        SCMP_SYS(sigaltstack),
        SCMP_SYS(pipe2),
        SCMP_SYS(socketpair),
        SCMP_SYS(dup),
        SCMP_SYS(dup3),
        SCMP_SYS(fcntl),
        SCMP_SYS(epoll_create1),
        SCMP_SYS(epoll_ctl),
        SCMP_SYS(epoll_wait),
        SCMP_SYS(epoll_pwait),
        SCMP_SYS(eventfd2),
        SCMP_SYS(accept4),
        SCMP_SYS(connect),
        SCMP_SYS(setsockopt),
        SCMP_SYS(listen),
        SCMP_SYS(getsockopt),
        SCMP_SYS(getsockname),
        SCMP_SYS(getpeername),
        SCMP_SYS(shutdown),
        SCMP_SYS(sendto),
        SCMP_SYS(recvfrom),
        SCMP_SYS(sendmsg),
        SCMP_SYS(recvmsg),
        SCMP_SYS(sendmmsg),
        SCMP_SYS(poll),
        SCMP_SYS(ppoll),
        SCMP_SYS(clock_gettime),
        SCMP_SYS(clock_nanosleep),
        SCMP_SYS(nanosleep),
        SCMP_SYS(gettimeofday),
        SCMP_SYS(getpid),
        SCMP_SYS(gettid),
        SCMP_SYS(getppid),
        SCMP_SYS(getuid),
        SCMP_SYS(geteuid),
        SCMP_SYS(getgid),
        SCMP_SYS(getegid),
        SCMP_SYS(tgkill),
        SCMP_SYS(exit),
        SCMP_SYS(exit_group),
        SCMP_SYS(futex),
        SCMP_SYS(set_robust_list),
        SCMP_SYS(rseq),
        SCMP_SYS(sched_yield),
        SCMP_SYS(sched_getaffinity),
        SCMP_SYS(getrandom),
        SCMP_SYS(restart_syscall),
        SCMP_SYS(prlimit64),
        SCMP_SYS(splice),
        SCMP_SYS(uname),
};

/* System calls allowed only with one argument equal to a value. */
static const struct {
	int call;
	unsigned arg;
	scmp_datum_t value;
} allowed_with[] = {
        /* Sockets of the families fived speaks, no others (no raw, no netlink). */
        {SCMP_SYS(socket), 0, AF_INET},
        {SCMP_SYS(socket), 0, AF_INET6},
        {SCMP_SYS(socket), 0, AF_UNIX},
        /*
         * ioctl only to make a descriptor non-blocking or close-on-exec, to
         * count input, or to ask what a TCP peer has not acknowledged yet.
         */
        {SCMP_SYS(ioctl), 1, FIONBIO},
        {SCMP_SYS(ioctl), 1, FIOCLEX},
        {SCMP_SYS(ioctl), 1, FIONREAD},
        {SCMP_SYS(ioctl), 1, SIOCOUTQ},
};

static int
add_rules(scmp_filter_ctx f)
{
	size_t i;
	int r = 0;

	for (i = 0; i < ARRAY_LEN(allowed_calls) && r == 0; i++)
		r = seccomp_rule_add(f, SCMP_ACT_ALLOW, allowed_calls[i], 0);
	for (i = 0; i < ARRAY_LEN(allowed_with) && r == 0; i++)
		r = seccomp_rule_add(
		        f, SCMP_ACT_ALLOW, allowed_with[i].call, 1,
		        SCMP_CMP(allowed_with[i].arg, SCMP_CMP_EQ, allowed_with[i].value));
	/* Threads (libuv's pool), never processes; clone3 hides its flags, so glibc falls back. */
	if (r == 0)
		r = seccomp_rule_add(
		        f, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
		        SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD_FLAG, CLONE_THREAD_FLAG));
	if (r == 0)
		r = seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/*
	 * glibc's getaddrinfo asks the kernel for the host's addresses over
	 * netlink to sort a name's several addresses (RFC 6724); refused, it
	 * sorts without them.  A refusal, not a kill: any client can make the
	 * worker resolve a backend's name.
	 */
	if (r == 0)
		r = seccomp_rule_add(f, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
		                     SCMP_A0(SCMP_CMP_EQ, AF_NETLINK));
	/* Signals to itself only: a stop it gives itself when the monitor is gone. */
	if (r == 0)
		r = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
		                     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
	return r;
}

static int
install_filter(void)
{
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int r;

	if (f == NULL)
		return -1;
	r = add_rules(f);
	if (r == 0)
		r = seccomp_load(f);
	seccomp_release(f);
	if (r != 0)
		log_error("cannot install the seccomp filter: %s", strerror(-r));
	return r == 0 ? 0 : -1;
}

int
confine_worker(const struct config *cfg)
{
	pid_t monitor = getppid();
	struct passwd *pw = confine_worker_account(cfg);
	bool chrooted = !sanitized && strcmp(cfg->chroot, "none") != 0;

	if (pw == NULL) {
		log_error("user %s does not exist", cfg->user[0] ? cfg->user : "nobody");
		return -1;
	}
	preload();
	if (chrooted && (chroot(cfg->chroot) != 0 || chdir("/") != 0)) {
		log_error("cannot enter the chroot %s: %s", cfg->chroot, strerror(errno));
		return -1;
	}
	drop_bounding_set();
	if (become(pw) != 0)
		return -1;
	/* Set after the change of user, which clears it; the monitor may have gone meanwhile. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != monitor ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_DUMPABLE, 0) != 0) {
		log_error("cannot confine the worker: %s", strerror(errno));
		return -1;
	}
	if (!sanitized && install_filter() != 0)
		return -1;
	log_info("privilege separation: worker runs as %s%s%s, %s", pw->pw_name,
	         chrooted ? ", chroot " : "", chrooted ? cfg->chroot : "",
	         sanitized ? "sanitizer build: no chroot, no seccomp" : "seccomp on");
	return 0;
}
