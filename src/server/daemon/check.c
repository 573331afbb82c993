#include "server/daemon/check.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/io.h"
#include "common/keyfile.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/tlsclients.h"
#include "proto/token.h"
#include "server/conf/clients.h"
#include "server/conf/revocations.h"
#include "server/conf/tlsfiles.h"
#include "server/policy/store.h"
#include "server/privsep/confine.h"
#include "server/privsep/privops.h"
#include "server/transport/tls.h"

#define CONNECT_WAIT_MS 1000 /* how long a backend has to accept */
#define WHY_MAX         (PATH_MAX + 64)

/* A user as a check needs it: who, and whether fived switches to it at all. */
struct worker {
	bool separated;
	uid_t uid;
	gid_t gid; /* its only group: the worker drops supplementary groups */
	char name[PRINCIPAL_NAME_MAX + 1];
};

static void
take_user(struct worker *w, const struct passwd *pw)
{
	w->separated = true;
	w->uid = pw->pw_uid;
	w->gid = pw->pw_gid;
	str_copy(w->name, pw->pw_name, sizeof(w->name));
}

/*
 * The worker's user and exec_user as the monitor chooses them (none
 * without separation).  0, or -1 after logging why start would refuse them.
 */
static int
find_users(const struct config *cfg, struct worker *w, struct worker *exec)
{
	const struct passwd *pw;
	char err[512];

	memset(w, 0, sizeof(*w));
	memset(exec, 0, sizeof(*exec));
	if (geteuid() != 0 || strcmp(cfg->user, "root") == 0)
		return 0;
	if (confine_check_accounts(cfg, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return -1;
	}
	if ((pw = confine_worker_account(cfg)) != NULL)
		take_user(w, pw);
	if ((pw = getpwnam(cfg->exec_user)) != NULL)
		take_user(exec, pw);
	return 0;
}

/* Whether the worker may do what (4 read, 2 write, 1 execute or search) with st. */
static bool
allowed(const struct worker *w, const struct stat *st, unsigned what)
{
	unsigned bits = (unsigned)st->st_mode;

	if (st->st_uid == w->uid)
		bits >>= 6;
	else if (st->st_gid == w->gid)
		bits >>= 3;
	return (bits & what) == what;
}

/* ... with path, every directory above it letting it through. */
static bool
worker_may(const struct worker *w, const char *path, unsigned what)
{
	char part[PATH_MAX];
	struct stat st;
	char *p;

	if (str_copy(part, path, sizeof(part)) >= sizeof(part))
		return false;
	for (p = strchr(part + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (stat(part, &st) != 0 || !allowed(w, &st, 1))
			return false;
		*p = '/';
	}
	return stat(path, &st) == 0 && allowed(w, &st, what);
}

/* Whether the directory a socket file would be made in exists; why says otherwise. */
static int
directory_of(const char *path, char *why, size_t why_size)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct stat st;

	snprintf(dir, sizeof(dir), "%.*s", slash > path ? (int)(slash - path) : 1, path);
	if (stat(dir, &st) != 0)
		snprintf(why, why_size, "directory %s %s", dir,
		         errno == ENOENT ? "does not exist" : strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		snprintf(why, why_size, "%s is not a directory", dir);
	else
		return 0;
	return -1;
}

/* Connects to sa, waiting at most CONNECT_WAIT_MS.  Returns 0 or an errno. */
static int
try_connect(const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	socklen_t elen = sizeof(int);
	int e = 0, n;

	if (fd < 0)
		return errno;
	if (connect(fd, sa, len) != 0) {
		if (errno != EINPROGRESS)
			e = errno;
		else if ((n = poll(&pfd, 1, CONNECT_WAIT_MS)) <= 0)
			e = n == 0 ? ETIMEDOUT : errno;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0)
			e = errno;
	}
	close(fd);
	return e;
}

/* --- the files start reads ---------------------------------------------------------------- */

static int
check_key(const char *path, const char *label, int flags, const char *what)
{
	char err[KEYFILE_ERR_MAX];
	int r = keyfile_check(path, label, flags, err, sizeof(err));

	if (r < 0) {
		log_error("%s", err);
		return -1;
	}
	if (r == KEYFILE_CREATED)
		log_info("%s does not exist yet: fived will create a new %s there", path, what);
	return 0;
}

static int
check_keys(const struct config *cfg, const char *key_path)
{
	char token[CONFIG_PATH_MAX + 80], sign[CONFIG_PATH_MAX + 80];
	int flags = privops_key_flags(cfg), r = 0;

	if (check_key(key_path, PRIVOPS_SERVER_KEY_LABEL, flags, "server key") != 0)
		r = -1;
	if (privops_token_key_path(key_path, token, sizeof(token)) != 0 ||
	    check_key(token, PRIVOPS_TOKEN_KEY_LABEL, flags, "token key") != 0)
		r = -1;
	if (privops_sign_key_path(cfg, key_path, sign, sizeof(sign)) != 0 ||
	    check_key(sign, PRIVOPS_SIGN_KEY_LABEL, flags, "signing key") != 0)
		r = -1;
	/* Never made by fived: every node must hold the same one. */
	if (cfg->cluster_key_file[0] != '\0' &&
	    check_key(cfg->cluster_key_file, PRIVOPS_CLUSTER_KEY_LABEL, 0, "cluster key") != 0)
		r = -1;
	return r;
}

/* A file read whole and handed to parse (which logs its errors); none when path is "". */
static int
check_file(const char *path, int (*parse)(const char *path, const char *text, size_t len))
{
	struct config_errors errs;
	char *text;
	size_t len;
	int r;

	if (path[0] == '\0')
		return 0;
	if (config_read_file(path, &text, &len, &errs) != 0) {
		config_errors_log(&errs);
		return -1;
	}
	r = parse(path, text, len);
	free(text);
	return r;
}

/* A file's text for a TLS context; logged and -1 when it cannot be read. */
static int
read_pem(const char *what, const char *path, char **text, size_t *len)
{
	int e;

	if ((e = io_read_file(path, CONFIG_FILE_MAX, text, len)) != 0) {
		log_error("%s %s: %s", what, path, strerror(-e));
		return -1;
	}
	return 0;
}

/* The context the worker would build, from the files start would read, made nowhere. */
static int
check_tls(const struct config *cfg, const char *key_path)
{
	char cert[PATH_MAX], key[PATH_MAX], why[PATH_MAX + 128];
	struct tls_pem pem = {.cert_name = cert, .key_name = key};
	char *cert_text = NULL, *key_text = NULL, *ca_text = NULL;
	struct tls_server *t = NULL;
	struct stat st;
	int r = -1;

	if (tls_files_paths(cfg, key_path, cert, sizeof(cert), key, sizeof(key)) != 0) {
		log_error("%s: path too long", key_path);
		return -1;
	}
	if (cfg->tls_certificate[0] == '\0' && stat(cert, &st) != 0) {
		log_info("%s does not exist yet: fived will make a self-signed TLS certificate "
		         "there",
		         cert);
		if (stat(key, &st) == 0 && tls_files_check_key(key, why, sizeof(why)) != 0) {
			log_error("%s", why);
			return -1;
		}
		if (cfg->tls_client_ca[0] == '\0')
			return 0;
		r = read_pem("tls_client_ca", cfg->tls_client_ca, &ca_text, &pem.ca_len);
		free(ca_text);
		return r;
	}
	if (tls_files_check_key(key, why, sizeof(why)) != 0) {
		log_error("%s", why);
		return -1;
	}
	if (read_pem("TLS certificate", cert, &cert_text, &pem.cert_len) != 0 ||
	    read_pem("TLS key", key, &key_text, &pem.key_len) != 0 ||
	    (cfg->tls_client_ca[0] != '\0' &&
	     read_pem("tls_client_ca", cfg->tls_client_ca, &ca_text, &pem.ca_len) != 0))
		goto out;
	pem.cert = cert_text;
	pem.key = key_text;
	pem.ca = ca_text;
	if ((t = tls_server_new(cfg, &pem)) != NULL)
		r = 0;
out:
	tls_server_free(t);
	free(cert_text);
	free(key_text);
	free(ca_text);
	return r;
}

static int
parse_tls_clients(const char *path, const char *text, size_t len)
{
	struct tls_clients clients;
	char err[CONFIG_ERRORS_MAX];
	int r = tlsclients_parse(path, text, len, false, &clients, err, sizeof(err));

	if (r != 0)
		log_error("%s", err);
	tlsclients_free(&clients);
	return r;
}

static int
parse_trusted(const char *path, const char *text, size_t len)
{
	struct token_trusted *trusted;
	char err[CONFIG_ERRORS_MAX];
	size_t n;
	int r = token_trusted_parse(text, len, path, &trusted, &n, err, sizeof(err));

	if (r != 0)
		log_error("%s", err);
	token_trusted_free(trusted);
	return r;
}

/* The revocation file: parsed, or to be made beside the key. */
static int
check_revocations(const struct config *cfg, const char *key_path)
{
	char path[CONFIG_PATH_MAX + 80], *text, err[KEYFILE_ERR_MAX];
	struct revocations rev;
	size_t len;
	int e, r = 0;

	if (privops_revocations_path(cfg, key_path, path, sizeof(path)) != 0) {
		log_error("%s: path too long for the revocation file", key_path);
		return -1;
	}
	if ((e = io_read_file(path, REVOCATIONS_FILE_MAX, &text, &len)) == -ENOENT) {
		if (keyfile_creatable(path,
		                      cfg->revocation_file[0] != '\0' ? 0 : privops_key_flags(cfg),
		                      err, sizeof(err)) != 0) {
			log_error("%s", err);
			return -1;
		}
		log_info("%s does not exist yet: fived will create it for revoked tokens", path);
		return 0;
	}
	if (e != 0) {
		log_error("%s: %s", path, strerror(-e));
		return -1;
	}
	revocations_init(&rev);
	if (revocations_parse(&rev, text, len, (uint64_t)time(NULL), err, sizeof(err)) != 0) {
		log_error("%s:%s", path, err);
		r = -1;
	}
	revocations_free(&rev);
	free(text);
	return r;
}

static int
check_chroot(const struct config *cfg, const struct worker *w)
{
	struct stat st;

	char err[CONFIG_PATH_MAX + 256];

	if (!w->separated || strcmp(cfg->chroot, "none") == 0)
		return 0;
	if (confine_check_root(cfg, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return -1;
	}
	if (stat(cfg->chroot, &st) != 0)
		log_info("%s does not exist yet: fived will create it for the worker's chroot",
		         cfg->chroot);
	return 0;
}

static int
check_authorized_clients(const struct config *cfg)
{
	struct config_errors errs;
	struct client_keys keys;
	char err[CONFIG_ERRORS_MAX], *text;
	size_t len;
	int r;

	if (cfg->authorized_clients[0] == '\0')
		return 0;
	if (config_read_file(cfg->authorized_clients, &text, &len, &errs) != 0) {
		config_errors_log(&errs);
		return -1;
	}
	r = clients_parse(cfg->authorized_clients, text, len, &keys, err, sizeof(err));
	free(text);
	if (r != 0)
		log_error("%s", err);
	clients_free(&keys);
	return r;
}

/* Opened as priv_open_audit_file does, but without creating it. */
static int
check_audit_log(const struct config *cfg)
{
	char err[KEYFILE_ERR_MAX];
	int fd;

	if (cfg->audit_log[0] != '/')
		return 0;
	fd = open(cfg->audit_log, O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno != ENOENT) {
		log_error("audit log %s: %s", cfg->audit_log, strerror(errno));
		return -1;
	}
	if (keyfile_creatable(cfg->audit_log, 0, err, sizeof(err)) != 0) {
		log_error("audit log %s", err);
		return -1;
	}
	log_info("audit log %s does not exist yet: fived will create it", cfg->audit_log);
	return 0;
}

/* --- listen addresses ---------------------------------------------------------------------- */

/*
 * Whether a can be listened on, short of binding it (the running fived
 * may hold the port): a TCP address must be one of this host's (bound
 * with port 0), a Unix socket's directory must exist.  shown begins the
 * error line.
 */
static int
check_listen(const struct addr_spec *a, const char *shown)
{
	struct sockaddr_storage sa = a->sa;
	struct stat st;
	char why[WHY_MAX];
	int fd, r = 0;

	if (a->kind == ADDR_UNIX) {
		r = directory_of(a->path, why, sizeof(why));
		if (r == 0 && lstat(a->path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
			snprintf(why, sizeof(why),
			         "%s is in the way: not a socket (fived "
			         "replaces only a socket nobody answers on)",
			         a->path);
			r = -1;
		}
	} else {
		if (sa.ss_family == AF_INET)
			((struct sockaddr_in *)&sa)->sin_port = 0;
		else
			((struct sockaddr_in6 *)&sa)->sin6_port = 0;
		if ((fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
		    bind(fd, (const struct sockaddr *)&sa, a->salen) != 0) {
			str_copy(why, strerror(errno), sizeof(why));
			r = -1;
		}
		if (fd >= 0)
			close(fd);
	}
	if (r != 0)
		log_error("%s: %s", shown, why);
	return r;
}

/* A local socket the configuration names (what: "control", "admin"), if it names one. */
static int
check_local_socket(const char *path, const char *what)
{
	struct addr_spec a = {.kind = ADDR_UNIX};
	char shown[ADDR_TEXT_MAX + 64];

	if (path[0] == '\0')
		return 0;
	str_copy(a.path, path, sizeof(a.path));
	snprintf(shown, sizeof(shown), "cannot open the %s socket %s", what, a.path);
	return check_listen(&a, shown);
}

static int
check_listeners(const struct config *cfg)
{
	char name[ADDR_TEXT_MAX], shown[ADDR_TEXT_MAX + 64];
	int r = 0;
	size_t i;

	for (i = 0; i < cfg->nlisten; i++) {
		addr_format(&cfg->listen[i], name, sizeof(name));
		snprintf(shown, sizeof(shown), "cannot listen on %s", name);
		if (check_listen(&cfg->listen[i], shown) != 0)
			r = -1;
	}
	/* Both are checked, so that -t says everything wrong at once. */
	if (check_local_socket(cfg->control_socket, "control") != 0)
		r = -1;
	if (check_local_socket(cfg->admin_socket, "admin") != 0)
		r = -1;
	if (cfg->has_metrics_listen) {
		addr_format(&cfg->metrics_listen, name, sizeof(name));
		snprintf(shown, sizeof(shown), "cannot open the metrics endpoint %s", name);
		if (check_listen(&cfg->metrics_listen, shown) != 0)
			r = -1;
	}
	return r;
}

/* --- backends -------------------------------------------------------------------------------- */

static int
check_exec(const struct service *svc, const struct worker *w)
{
	/* w: exec_user, which runs the program under privilege separation. */
	const char *prog = svc->argv[0];
	struct stat st;

	if (stat(prog, &st) != 0) {
		log_error("service %s: exec:%s: %s", svc->name, prog, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		log_error("service %s: exec:%s: not a regular file", svc->name, prog);
		return -1;
	}
	if (w->separated ? !worker_may(w, prog, 1) : access(prog, X_OK) != 0) {
		log_error("service %s: exec:%s: not executable%s%s", svc->name, prog,
		          w->separated ? " by exec_user " : "", w->separated ? w->name : "");
		return -1;
	}
	return 0;
}

static int
check_unix(const struct service *svc, const struct worker *w, const char *name)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int e;

	if (stat(svc->addr.path, &st) != 0) {
		log_error("service %s: %s: %s", svc->name, name, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_error("service %s: %s: not a socket", svc->name, name);
		return -1;
	}
	str_copy(sun.sun_path, svc->addr.path, sizeof(sun.sun_path));
	if ((e = try_connect((const struct sockaddr *)&sun, sizeof(sun))) != 0)
		log_warn("service %s: cannot reach %s now: %s", svc->name, name, strerror(e));
	else if (w->separated && !worker_may(w, svc->addr.path, 2))
		log_warn("service %s: %s: the worker's user %s may not connect to it", svc->name,
		         name, w->name);
	return 0;
}

static void
check_tcp(const struct service *svc, const char *name)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res, *ai;
	char port[8];
	int e = 0, r;

	if (svc->addr.numeric) {
		e = try_connect((const struct sockaddr *)&svc->addr.sa, svc->addr.salen);
	} else {
		snprintf(port, sizeof(port), "%u", (unsigned)svc->addr.port);
		if ((r = getaddrinfo(svc->addr.host, port, &hints, &res)) != 0) {
			log_warn("service %s: cannot resolve %s now: %s", svc->name, svc->addr.host,
			         gai_strerror(r));
			return;
		}
		for (ai = res; ai != NULL; ai = ai->ai_next)
			if ((e = try_connect(ai->ai_addr, ai->ai_addrlen)) == 0)
				break;
		freeaddrinfo(res);
	}
	if (e != 0)
		log_warn("service %s: cannot reach %s now: %s", svc->name, name, strerror(e));
}

/* A tcp: or unix: backend, if svc has one. */
static int
check_address(const struct service *svc, const struct worker *w)
{
	char name[ADDR_TEXT_MAX];

	if (svc->backend != BACKEND_TCP && svc->backend != BACKEND_UNIX)
		return 0;
	addr_format(&svc->addr, name, sizeof(name));
	if (svc->backend == BACKEND_TCP) {
		check_tcp(svc, name);
		return 0;
	}
	return check_unix(svc, w, name);
}

static int
check_backends(const struct config *cfg, const struct worker *w, const struct worker *exec)
{
	const struct service *svc;
	int r = 0;

	int i;

	for (svc = cfg->services; svc != NULL; svc = svc->next) {
		if (svc->backend == BACKEND_EXEC && check_exec(svc, exec) != 0)
			r = -1;
		if (check_address(svc, w) != 0)
			r = -1;
	}
	for (i = 0; i < LEGACY_PROTO_COUNT; i++)
		if (check_address(&cfg->legacy[i], w) != 0)
			r = -1;
	return r;
}

/* The file as the monitor will read it: its permissions, then its one line. */
static int
check_store_password(const struct config *cfg)
{
	const char *path = cfg->store_password_file;
	char why[CONFIG_PATH_MAX + 128], *text = NULL;
	size_t len = 0, password_len;
	int e, r = -1;

	if (path[0] == '\0')
		return 0;
	if (secret_file_check("store password file", path, why, sizeof(why)) != 0)
		log_error("%s", why);
	else if ((e = io_read_file(path, STORE_PASSWORD_MAX + 2, &text, &len)) != 0 && e != -EFBIG)
		log_error("store_password_file %s: %s", path, strerror(-e));
	else if (e != 0 || store_password_parse(text, len, &password_len) != 0)
		log_error("store_password_file %s: " STORE_PASSWORD_FORM, path, STORE_PASSWORD_MAX);
	else
		r = 0;
	if (text != NULL)
		explicit_bzero(text, len);
	free(text);
	return r;
}

int
check_workers(const struct config *cfg, bool separated)
{
	unsigned n = privops_workers(cfg);

	if (n > 1 && !separated) {
		log_error("workers = %u needs privilege separation: start fived as root, with user "
		          "not root",
		          n);
		return -1;
	}
	/* The last worker's admin socket is admin_socket.N-1. */
	if (n > 1 && cfg->admin_socket[0] != '\0' &&
	    snprintf(NULL, 0, "%s.%u", cfg->admin_socket, n - 1) > ADDR_PATH_MAX) {
		log_error("admin_socket %s is too long for workers = %u: %s.%u must fit in %d "
		          "bytes",
		          cfg->admin_socket, n, cfg->admin_socket, n - 1, ADDR_PATH_MAX);
		return -1;
	}
	return 0;
}

int
check_start(const struct config *cfg)
{
	char key_path[CONFIG_PATH_MAX + 64];
	struct worker w, exec;
	int r = 0;

	privops_key_path(cfg, key_path, sizeof(key_path));
	/* Each check logs what it finds: all of them run, so that one run shows every problem. */
	if (find_users(cfg, &w, &exec) != 0 || check_chroot(cfg, &w) != 0)
		r = -1;
	if (check_keys(cfg, key_path) != 0)
		r = -1;
	if (check_tls(cfg, key_path) != 0 || check_file(cfg->tls_clients, parse_tls_clients) != 0)
		r = -1;
	if (check_file(cfg->token_trusted_keys, parse_trusted) != 0 ||
	    check_revocations(cfg, key_path) != 0)
		r = -1;
	if (check_authorized_clients(cfg) != 0)
		r = -1;
	if (check_store_password(cfg) != 0)
		r = -1;
	if (check_audit_log(cfg) != 0)
		r = -1;
	if (check_listeners(cfg) != 0)
		r = -1;
	if (check_backends(cfg, &w, &exec) != 0)
		r = -1;
	if (check_workers(cfg, geteuid() == 0 && strcmp(cfg->user, "root") != 0) != 0)
		r = -1;
	return r;
}
