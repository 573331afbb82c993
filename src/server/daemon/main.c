/*
 * fived: the session layer daemon.  Runs in the foreground, logs to
 * standard error, writes its audit log where the configuration says.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/keyfile.h"
#include "common/log.h"
#include "server/conf/config.h"
#include "server/daemon/check.h"
#include "server/daemon/server.h"
#include "server/privsep/activation.h"
#include "server/privsep/confine.h"
#include "server/privsep/logsink.h"
#include "server/privsep/monitor.h"
#include "server/privsep/notify.h"
#include "server/privsep/pam_helper.h"
#include "server/privsep/priv.h"
#include "server/privsep/privops.h"

#define FIVED_VERSION "0.1.0"

#define MALLOC_KEEP            (64 * 1024 * 1024)
#define MALLOC_MMAP_ABOVE      (1024 * 1024)
#define FD_RESERVE             64 /* listeners, logs, the monitor, libuv */
#define FD_PER_SESSION         3  /* client, backend, and an exec program's or a spare */
#define FD_PER_SPLICED_SESSION (FD_PER_SESSION + 6) /* two pipes, a duplicate of each socket */

static void
usage(FILE *out)
{
	fprintf(out, "usage: fived [-d] [-c FILE]\n"
	             "       fived -t [-c FILE]\n"
	             "       fived --print-key [-c FILE]\n"
	             "       fived --print-token-key [-c FILE]\n"
	             "       fived --print-sign-key [-c FILE]\n"
	             "       fived --print-builtin\n"
	             "\n"
	             "  -c FILE          configuration file (default: the built-in one)\n"
	             "  -t               check the configuration and exit\n"
	             "  -d               debug logging\n"
	             "  --print-builtin  print the built-in configuration\n"
	             "  --print-key      print the public key clients pin (made on first use)\n"
	             "  --print-token-key  print the token key and kid for token_trusted_keys\n"
	             "  --print-sign-key   print the key proofs of identity are signed with, and\n"
	             "                     the provider's name (as GETSIGNKEY tells them)\n"
	             "  -V               print the version\n");
}

static void
free_handle_data(uv_handle_t *h)
{
	free(h->data);
}

/*
 * After the loop: programs that outlived their sessions have process
 * handles still open (unreferenced, so they did not keep fived running).
 * Their data is the allocation that holds them.
 */
static void
close_leftover(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, h->type == UV_PROCESS ? free_handle_data : NULL);
}

/*
 * Reads the configuration; text keeps what it was parsed from, for the
 * monitor.  Errors are logged, or printed as FILE:LINE lines when bare.
 */
static struct config *
load(const char *path, char **text, size_t *len, bool bare)
{
	struct config_errors errs;
	struct config *cfg = NULL;

	if (path == NULL) {
		*len = strlen(config_builtin_text);
		*text = strdup(config_builtin_text);
	} else if (config_read_file(path, text, len, &errs) != 0) {
		config_errors_log(&errs);
		return NULL;
	}
	if (*text != NULL &&
	    (cfg = config_parse(path != NULL ? path : "(built-in)", *text, *len, &errs)) == NULL) {
		if (bare)
			fputs(errs.text, stderr);
		else
			config_errors_log(&errs);
	}
	return cfg;
}

/*
 * A relayed session holds two or three descriptors, six more while it is
 * spliced (fived.conf(5), splice): take what the hard limit allows.
 */
static void
raise_fd_limit(const struct config *cfg)
{
	uint64_t per_session = cfg->splice ? FD_PER_SPLICED_SESSION : FD_PER_SESSION;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < per_session * cfg->max_connections + FD_RESERVE)
		log_warn("the descriptor limit (%llu) is low for max_connections = %llu%s",
		         (unsigned long long)rl.rlim_cur, (unsigned long long)cfg->max_connections,
		         cfg->splice ? " with splice" : "");
}

static int
print_key(const struct config *cfg)
{
	char path[CONFIG_PATH_MAX + 64], b64[KEYFILE_B64_LEN], fp[KEYFILE_FP_MAX];
	struct server_secret *k;

	privops_key_path(cfg, path, sizeof(path));
	if (privops_load_server_key(path, privops_key_flags(cfg), &k) != 0)
		return 1;
	keyfile_b64(k->pk, b64);
	keyfile_fingerprint(k->pk, fp);
	printf("%s\n%s\n", b64, fp);
	sodium_free(k);
	return 0;
}

/* The token public key other nodes list in token_trusted_keys, and its kid. */
static int
print_token_key(const struct config *cfg)
{
	char path[CONFIG_PATH_MAX + 64], b64[KEYFILE_B64_LEN];
	struct token_key *k;

	privops_key_path(cfg, path, sizeof(path));
	if (privops_load_token_key(path, privops_key_flags(cfg), &k) != 0)
		return 1;
	keyfile_b64(k->pk, b64);
	printf("%s %s\n", b64, k->kid);
	token_key_wipe(k);
	sodium_free(k);
	return 0;
}

/* The public key consumers verify proofs with, and the name the proofs carry. */
static int
print_sign_key(const struct config *cfg)
{
	char key_path[CONFIG_PATH_MAX + 64], path[CONFIG_PATH_MAX + 64], b64[KEYFILE_B64_LEN];
	char name[PROOF_PROVIDER_MAX + 1];
	struct token_key *k;

	privops_key_path(cfg, key_path, sizeof(key_path));
	if (privops_sign_key_path(cfg, key_path, path, sizeof(path)) != 0) {
		log_error("%s: path too long for the signing key", key_path);
		return 1;
	}
	if (privops_load_sign_key(path, privops_key_flags(cfg), &k) != 0)
		return 1;
	keyfile_b64(k->pk, b64);
	token_key_wipe(k);
	sodium_free(k);
	if (privops_provider_name(cfg, name) != 0) {
		log_error("this host's name is not a provider name: set provider_name");
		return 1;
	}
	printf("%s %s\n", b64, name);
	return 0;
}

/* Runs the server on loop until it stops; its exit status. */
static int
serve(struct config *cfg, struct priv *priv, uv_loop_t *loop, const char *path)
{
	struct server srv;

	uv_loop_init(loop);
	priv->loop = loop;
	if (server_start(&srv, loop, cfg, priv) != 0) {
		config_unref(cfg);
		uv_loop_close(loop);
		return 1;
	}
	priv_ready(priv);
	log_info("fived %s started with %s", FIVED_VERSION,
	         path != NULL ? path : "the built-in configuration");
	if (path == NULL)
		log_info("try: echo hello | five 127.0.0.1 echo; five list 127.0.0.1");
	uv_run(loop, UV_RUN_DEFAULT);
	uv_walk(loop, close_leftover, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	return srv.exit_status;
}

/*
 * A worker the monitor started: fived PRIV_WORKER_FLAG INDEX/COUNT [-d]
 * [-c FILE], its monitor on PRIV_WORKER_FD.  It takes the configuration
 * from the monitor, confines itself, and serves.
 */
static int
worker_main(int argc, char **argv)
{
	const char *path = NULL, *name;
	struct config_errors errs;
	enum log_level level = LOGL_INFO;
	unsigned index, nworkers;
	struct config *cfg;
	struct priv priv;
	uv_loop_t loop;
	int i;

	if (argc < 3 || sscanf(argv[2], "%u/%u", &index, &nworkers) != 2 || nworkers == 0 ||
	    nworkers > WORKERS_MAX || index >= nworkers)
		return 2;
	for (i = 3; i < argc; i++) {
		if (strcmp(argv[i], "-d") == 0)
			level = LOGL_DEBUG;
		else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			path = argv[++i];
		else
			return 2;
	}
	log_init("fived", level);
	name = path != NULL ? path : "(built-in)";
	if (sodium_init() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	mallopt(M_TRIM_THRESHOLD, MALLOC_KEEP);
	mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_ABOVE);
	priv_init_worker(&priv, name, index, nworkers);
	if ((cfg = priv_config(&priv, &errs)) == NULL) {
		log_error("%s", errs.text);
		return 1;
	}
	/* The monitor reads standard error and logs where the configuration says. */
	log_relay(cfg->log != CONFIG_LOG_STDERR);
	if (confine_worker(cfg) != 0) {
		config_unref(cfg);
		return 1;
	}
	return serve(cfg, &priv, &loop, path);
}

/*
 * The monitor connects to Unix-socket backends for the worker, as the
 * worker's account would (confine_check_accounts made sure it exists).
 */
static void
worker_credentials(struct priv_state *st, const struct config *cfg)
{
	const struct passwd *pw = confine_worker_account(cfg);

	if (pw != NULL) {
		st->worker_uid = pw->pw_uid;
		st->worker_gid = pw->pw_gid;
	}
}

/*
 * Several workers are processes the monitor starts, each with its own
 * socket for an address (sockets_listen_group): one socket systemd
 * hands over cannot be split among them by source.
 */
static int
workers_possible(const struct config *cfg, bool separated, int activated)
{
	unsigned n = privops_workers(cfg);

	if (check_workers(cfg, separated) != 0)
		return -1;
	if (n > 1 && activated > 0) {
		log_error("workers = %u cannot share sockets systemd hands over: let fived open "
		          "its listeners (no socket unit), or set workers = 1",
		          n);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {{"print-builtin", no_argument, NULL, 'B'},
	                                         {"print-key", no_argument, NULL, 'K'},
	                                         {"print-token-key", no_argument, NULL, 'T'},
	                                         {"print-sign-key", no_argument, NULL, 'S'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	char self[PATH_MAX] = {0}, err[256];
	bool want_key = false, want_token_key = false, want_sign_key = false, separated;
	struct priv_state st;
	const char *path = NULL;
	enum log_level level = LOGL_INFO;
	bool check_only = false;
	struct priv priv;
	struct config *cfg;
	uv_loop_t loop;
	char *text = NULL;
	size_t len = 0;
	int c, activated;

	/*
	 * Nothing fived did not open itself goes further (to the worker, to
	 * programs): the helper and the worker keep only the socket they were
	 * started with.
	 */
	if (argc > 1 && strcmp(argv[1], PAM_HELPER_FLAG) == 0) {
		close_range(PAM_HELPER_FD + 1, ~0U, 0);
		return pam_helper_main(argc, argv);
	}
	if (argc > 1 && strcmp(argv[1], PRIV_WORKER_FLAG) == 0) {
		close_range(PRIV_WORKER_FD + 1, ~0U, 0);
		return worker_main(argc, argv);
	}
	log_init("fived", LOGL_INFO);
	/* Sockets systemd handed over (socket activation) are fived's own: kept. */
	if ((activated = activation_count()) < 0)
		return 1;
	close_range(STDERR_FILENO + 1 + (unsigned)activated, ~0U, 0);
	while ((c = getopt_long(argc, argv, "c:tdVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'd':
			level = LOGL_DEBUG;
			break;
		case 'B':
			fputs(config_builtin_text, stdout);
			return 0;
		case 'K':
			want_key = true;
			break;
		case 'T':
			want_token_key = true;
			break;
		case 'S':
			want_sign_key = true;
			break;
		case 'V':
			printf("fived %s\n", FIVED_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	log_init("fived", level);
	log_plain(check_only || want_key || want_token_key || want_sign_key);
	if (sodium_init() < 0) {
		log_error("libsodium failed to initialise");
		return 1;
	}
	if ((cfg = load(path, &text, &len, check_only)) == NULL) {
		free(text);
		return 1;
	}
	if (check_only || want_key || want_token_key || want_sign_key) {
		c = check_only && check_start(cfg) != 0;
		if (check_only && c == 0)
			printf("%s: configuration OK\n", path != NULL ? path : "(built-in)");
		if (c == 0)
			c = want_key         ? print_key(cfg)
			    : want_token_key ? print_token_key(cfg)
			    : want_sign_key  ? print_sign_key(cfg)
			                     : 0;
		config_unref(cfg);
		free(text);
		return c;
	}
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Relayed bytes go through 64 KiB buffers allocated per read: without
	 * this, glibc returns the top of the heap to the kernel after every
	 * burst and faults it in again (about one page fault per 4 KiB relayed).
	 */
	mallopt(M_TRIM_THRESHOLD, MALLOC_KEEP);
	mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_ABOVE);
	/* From here on, diagnostics go where the configuration sends them. */
	if (logsink_set(cfg->log) != 0)
		goto fail;
	raise_fd_limit(cfg);
	separated = geteuid() == 0 && strcmp(cfg->user, "root") != 0;
	if (separated && confine_check_accounts(cfg, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto fail;
	}
	/* Before any key file is made: a start that cannot go on leaves nothing behind. */
	if (workers_possible(cfg, separated, activated) != 0)
		goto fail;
	if (separated && cfg->user[0] == '\0' && getpwnam("fived") == NULL)
		log_warn(
		        "the worker runs as nobody, an account other daemons may share (they could "
		        "signal it): create one for fived (see fived(8))");
	/* The keys and what only root may read stay here, or with the monitor. */
	if (notify_init() != 0 || privops_init(&st, cfg, path, text, len) != 0)
		goto fail;
	free(text);
	text = NULL;
	if (activation_adopt(&st, cfg, activated) != 0) {
		privops_free(&st);
		goto fail;
	}
	if (separated) {
		worker_credentials(&st, cfg);
		if (readlink("/proc/self/exe", self, sizeof(self) - 1) <= 0) {
			log_error("cannot find fived's own executable: %s", strerror(errno));
			return 1;
		}
		config_unref(cfg);
		monitor_run(&st, self, level == LOGL_DEBUG);
	}
	log_info("running without privilege separation (%s)",
	         geteuid() != 0 ? "not started as root" : "user = root");
	priv_init_local(&priv, &st, path != NULL ? path : "(built-in)", NULL);
	c = serve(cfg, &priv, &loop, path);
	privops_free(&st);
	return c;
fail:
	config_unref(cfg);
	free(text);
	return 1;
}
