/*
 * fived: the session layer daemon.  Runs in the foreground, logs to
 * standard error, writes its audit log where the configuration says.
 */
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/config.h"
#include "server/pam_helper.h"
#include "server/priv.h"
#include "server/server.h"

#define FIVED_VERSION "0.1.0"

static void
usage(FILE *out)
{
	fprintf(out, "usage: fived [-d] [-c FILE]\n"
	             "       fived -t [-c FILE]\n"
	             "       fived --print-builtin\n"
	             "\n"
	             "  -c FILE          configuration file (default: the built-in one)\n"
	             "  -t               check the configuration and exit\n"
	             "  -d               debug logging\n"
	             "  --print-builtin  print the built-in configuration\n"
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

/* Reads the configuration; text keeps what it was parsed from, for the monitor. */
static struct config *
load(const char *path, char **text, size_t *len)
{
	struct config_errors errs;
	struct config *cfg = NULL;

	if (path == NULL) {
		*len = strlen(config_builtin_text);
		*text = strdup(config_builtin_text);
	} else if (config_read_file(path, text, len, &errs) != 0) {
		fputs(errs.text, stderr);
		return NULL;
	}
	if (*text != NULL &&
	    (cfg = config_parse(path != NULL ? path : "(built-in)", *text, *len, &errs)) == NULL)
		fputs(errs.text, stderr);
	return cfg;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {{"print-builtin", no_argument, NULL, 'B'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
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
	if (sodium_init() < 0) {
		log_error("libsodium failed to initialise");
		return 1;
	}
	if ((cfg = load(path, &text, &len)) == NULL) {
		free(text);
		return 1;
	}
	if (check_only) {
		printf("%s: configuration OK\n", path != NULL ? path : "(built-in)");
		config_unref(cfg);
		free(text);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	/* Under privilege separation the monitor stays in here; the worker returns. */
	if (priv_setup(&priv, cfg, path, text, len, &loop) != 0) {
		config_unref(cfg);
		free(text);
		return 1;
	}
	free(text);
	uv_loop_init(&loop);
	if (server_start(&srv, &loop, cfg, &priv) != 0) {
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
