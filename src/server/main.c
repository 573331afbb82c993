/*
 * fived: the session layer daemon.  Runs in the foreground, logs to
 * standard error, writes its audit log where the configuration says.
 */
#include <getopt.h>
#include <malloc.h>
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
#include "server/check.h"
#include "server/config.h"
#include "server/pam_helper.h"
#include "server/priv.h"
#include "server/seal.h"
#include "server/server.h"
#include "server/tls.h"
#include "server/tokens.h"

#define FIVED_VERSION "0.1.0"

#define DEFAULT_KEY_FILE  "/var/lib/fived/server.key"
#define USER_KEY_FILE     "/.local/state/fived/server.key"
#define MALLOC_KEEP       (64 * 1024 * 1024)
#define MALLOC_MMAP_ABOVE (1024 * 1024)
#define FD_RESERVE        64 /* listeners, logs, the monitor, libuv */

static void
usage(FILE *out)
{
	fprintf(out, "usage: fived [-d] [-c FILE]\n"
	             "       fived -t [-c FILE]\n"
	             "       fived --print-key [-c FILE]\n"
	             "       fived --print-token-key [-c FILE]\n"
	             "       fived --print-builtin\n"
	             "\n"
	             "  -c FILE          configuration file (default: the built-in one)\n"
	             "  -t               check the configuration and exit\n"
	             "  -d               debug logging\n"
	             "  --print-builtin  print the built-in configuration\n"
	             "  --print-key      print the public key clients pin (made on first use)\n"
	             "  --print-token-key  print the token key and kid for token_trusted_keys\n"
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

/* The static key file: key_file, else a default that depends on who runs fived. */
static void
key_path(const struct config *cfg, char *out, size_t size)
{
	const char *home = getenv("HOME");

	if (cfg->key_file[0] != '\0')
		snprintf(out, size, "%s", cfg->key_file);
	else if (geteuid() == 0 || home == NULL)
		snprintf(out, size, "%s", DEFAULT_KEY_FILE);
	else
		snprintf(out, size, "%s%s", home, USER_KEY_FILE);
}

/*
 * Loads (or, the first time, creates) the sealed handshake's static key
 * into locked, guarded memory.  Returns it, or NULL after saying why.
 */
static struct server_key *
load_key(const struct config *cfg)
{
	struct server_key *k = sodium_malloc(sizeof(*k));
	char path[CONFIG_PATH_MAX + 64], err[KEYFILE_ERR_MAX], fp[KEYFILE_FP_MAX];
	int made = -1;

	key_path(cfg, path, sizeof(path));
	if (k == NULL || (made = keyfile_load(path, SEAL_KEY_LABEL, seal_key_flags(cfg), k->sk, err,
	                                      sizeof(err))) < 0) {
		log_error("%s", k == NULL ? "out of memory" : err);
		sodium_free(k);
		return NULL;
	}
	seal_key_derive(k);
	keyfile_fingerprint(k->pk, fp);
	if (made == KEYFILE_CREATED)
		log_info("created a new server key in %s (fingerprint %s)", path, fp);
	return k;
}

/* A relayed session holds two or three descriptors: take what the hard limit allows. */
static void
raise_fd_limit(const struct config *cfg)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 3 * cfg->max_connections + FD_RESERVE)
		log_warn("the descriptor limit (%llu) is low for max_connections = %llu",
		         (unsigned long long)rl.rlim_cur, (unsigned long long)cfg->max_connections);
}

static int
print_key(const struct config *cfg)
{
	struct server_key *k = load_key(cfg);
	char b64[KEYFILE_B64_LEN], fp[KEYFILE_FP_MAX];

	if (k == NULL)
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
	struct tokens *t;

	key_path(cfg, path, sizeof(path));
	if ((t = tokens_load(cfg, path, (uint64_t)time(NULL))) == NULL)
		return 1;
	keyfile_b64(t->key->pk, b64);
	printf("%s %s\n", b64, t->key->kid);
	tokens_free(t);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {{"print-builtin", no_argument, NULL, 'B'},
	                                         {"print-key", no_argument, NULL, 'K'},
	                                         {"print-token-key", no_argument, NULL, 'T'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	struct server_key *key;
	struct tls_server *tls;
	struct tokens *tokens;
	char key_file[CONFIG_PATH_MAX + 64];
	bool want_key = false, want_token_key = false;
	const char *path = NULL;
	enum log_level level = LOGL_INFO;
	bool check_only = false;
	struct server srv;
	struct priv priv;
	struct config *cfg;
	uv_loop_t loop;
	char *text = NULL;
	size_t len = 0;
	int c;

	if (argc > 1 && strcmp(argv[1], PAM_HELPER_FLAG) == 0)
		return pam_helper_main(argc, argv);
	log_init("fived", LOGL_INFO);
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
	log_plain(check_only || want_key || want_token_key);
	if (sodium_init() < 0) {
		log_error("libsodium failed to initialise");
		return 1;
	}
	if ((cfg = load(path, &text, &len, check_only)) == NULL) {
		free(text);
		return 1;
	}
	if (check_only || want_key || want_token_key) {
		key_path(cfg, key_file, sizeof(key_file));
		c = check_only && check_start(cfg, key_file) != 0;
		if (check_only && c == 0)
			printf("%s: configuration OK\n", path != NULL ? path : "(built-in)");
		if (c == 0)
			c = want_key ? print_key(cfg) : want_token_key ? print_token_key(cfg) : 0;
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
	raise_fd_limit(cfg);
	/* The TLS key, like the sealed one, may be readable by root alone: read it now. */
	key_path(cfg, key_file, sizeof(key_file));
	if ((key = load_key(cfg)) == NULL || (tls = tls_server_new(cfg, key_file)) == NULL) {
		config_unref(cfg);
		free(text);
		return 1;
	}
	if ((tokens = tokens_load(cfg, key_file, (uint64_t)time(NULL))) == NULL) {
		tls_server_free(tls);
		config_unref(cfg);
		free(text);
		return 1;
	}
	/* Under privilege separation the monitor stays in here; the worker returns. */
	if (priv_setup(&priv, cfg, path, text, len, &loop) != 0) {
		tokens_free(tokens);
		tls_server_free(tls);
		config_unref(cfg);
		free(text);
		return 1;
	}
	free(text);
	uv_loop_init(&loop);
	if (server_start(&srv, &loop, cfg, &priv, key, tls, tokens) != 0) {
		config_unref(cfg);
		uv_loop_close(&loop);
		return 1;
	}
	log_info("fived %s started with %s", FIVED_VERSION,
	         path != NULL ? path : "the built-in configuration");
	if (path == NULL)
		log_info("try: echo hello | five 127.0.0.1 echo; five list 127.0.0.1");
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_walk(&loop, close_leftover, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return srv.exit_status;
}
