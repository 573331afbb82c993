/*
 * five: reach a service on a host by its name, through fived.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/cli/forward.h"
#include "client/cli/session.h"
#include "common/util.h"
#include "five.h"

#define FIVE_VERSION "0.1.0"

/* Exit codes, as five(1) lists them. */
enum {
	EXIT_OK = 0,
	EXIT_LOCAL = 1,
	EXIT_USAGE = 2,
	EXIT_RESOLVE = 3,
	EXIT_CONNECT = 4,
	EXIT_REFUSED = 5,
	EXIT_PROTOCOL = 6,
};

static void
usage(FILE *out)
{
	fprintf(out, "usage: five [options] HOST SERVICE          relay standard input and output\n"
	             "       five [options] -L [ADDR:]PORT HOST SERVICE\n"
	             "                                            forward local connections\n"
	             "       five [options] list HOST             list the services HOST shows\n"
	             "\n"
	             "  -p PORT     fived's port (default 1, then 5501)\n"
	             "  -H VHOST    select a virtual host\n"
	             "  -t SECONDS  connect and reply timeout (default 10)\n"
	             "  -w          send nothing until the service is granted (for TCPMUX\n"
	             "              servers other than fived, which may drop pipelined bytes)\n"
	             "  -4, -6      IPv4 or IPv6 only\n"
	             "  -V          print the version\n");
}

static int
exit_code(enum five_step step)
{
	static const int codes[] = {
	        [FIVE_OK] = EXIT_OK,
	        [FIVE_ERR_SYSTEM] = EXIT_LOCAL,
	        [FIVE_ERR_USAGE] = EXIT_USAGE,
	        [FIVE_ERR_RESOLVE] = EXIT_RESOLVE,
	        [FIVE_ERR_CONNECT] = EXIT_CONNECT,
	        [FIVE_ERR_REFUSED] = EXIT_REFUSED,
	        [FIVE_ERR_PROTOCOL] = EXIT_PROTOCOL,
	};

	return (size_t)step < ARRAY_LEN(codes) ? codes[step] : EXIT_LOCAL;
}

static int
fail(const char *what, const struct five_error *err)
{
	fprintf(stderr, "five: %s: %s: %s\n", what, five_step_name(err->step), err->message);
	return exit_code(err->step);
}

static int
cmd_list(const char *host, const struct five_options *o)
{
	struct five_error err;
	char **names;
	size_t n, i;

	if (five_list(host, o, &names, &n, &err) != 0)
		return fail(host, &err);
	for (i = 0; i < n; i++)
		printf("%s\n", names[i]);
	five_free_names(names);
	return EXIT_OK;
}

static int
parse_timeout(const char *s, int *ms)
{
	uint64_t v;

	if (parse_duration_ms(s, 24 * 3600 * 1000, &v) != 0 || v == 0)
		return -1;
	*ms = (int)v;
	return 0;
}

int
main(int argc, char **argv)
{
	struct cli_request req = {0};
	struct five_options *o = &req.opts;
	struct five_auth auth = {0};
	struct five_error err = {.step = FIVE_OK};
	const char *forward = NULL;
	char what[600];
	int c;

	while ((c = getopt(argc, argv, "p:H:L:t:wa:i:l:46Vh")) != -1) {
		switch (c) {
		case 'p':
			o->port = optarg;
			break;
		case 'H':
			o->vhost = optarg;
			break;
		case 'L':
			forward = optarg;
			break;
		case 't':
			if (parse_timeout(optarg, &o->timeout_ms) != 0) {
				fprintf(stderr, "five: -t: expected seconds (or 500ms, 2m)\n");
				return EXIT_USAGE;
			}
			break;
		case 'w':
			req.wait_for_grant = true;
			break;
		case 'a':
			auth.methods = optarg;
			o->auth = &auth;
			break;
		case 'i':
			auth.key_file = optarg;
			o->auth = &auth;
			break;
		case 'l':
			auth.user = optarg;
			o->auth = &auth;
			break;
		case '4':
			o->family = AF_INET;
			break;
		case '6':
			o->family = AF_INET6;
			break;
		case 'V':
			printf("five %s\n", FIVE_VERSION);
			return EXIT_OK;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (o->auth != NULL && auth.methods == NULL)
		auth.methods = auth.key_file != NULL ? "pubkey" : "pubkey,password";
	if (argc == 2 && forward == NULL && strcmp(argv[0], "list") == 0)
		return cmd_list(argv[1], o);
	if (argc != 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	req.host = argv[0];
	req.service = argv[1];
	snprintf(what, sizeof(what), "%s %s", req.host, req.service);
	if (forward != NULL) {
		cli_forward(forward, &req, &err);
		return fail(what, &err);
	}
	if (cli_session(&req, STDIN_FILENO, STDOUT_FILENO, false, &err) != 0)
		return fail(what, &err);
	return EXIT_OK;
}
