/*
 * A small program linked against libfive: connects to a service with
 * five_connect, writes its third argument, prints what comes back.
 * Usage: libfive_client HOST PORT SERVICE MESSAGE [VHOST]
 * LIBFIVE_TRANSPORT: "plain", "tofu" (sealed, pinning a new server's key),
 * or the server's key; unset, sealed with known_hosts only.
 * LIBFIVE_TOKEN: a token to ask for the service with (five_options.token).
 * LIBFIVE_NO_REDIRECT: set, redirects are not followed (five_options.no_redirect).
 * Each notice libfive gives is printed on standard error as "notice: TEXT".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "five.h"

static void
print_notice(void *arg, const char *text)
{
	fprintf(stderr, "%s: %s\n", (const char *)arg, text);
}

int
main(int argc, char **argv)
{
	struct five_options o;
	struct five_error err;
	const char *mode;
	char buf[4096];
	ssize_t n;
	int fd;

	if (argc < 5)
		return 2;
	five_options_init(&o);
	o.port = argv[2];
	o.vhost = argc > 5 ? argv[5] : NULL;
	o.token = getenv("LIBFIVE_TOKEN");
	o.no_redirect = getenv("LIBFIVE_NO_REDIRECT") != NULL;
	o.notice = print_notice;
	o.notice_arg = "notice";
	if ((mode = getenv("LIBFIVE_TRANSPORT")) != NULL && strcmp(mode, "plain") == 0)
		o.transport = FIVE_PLAIN;
	else if (mode != NULL && strcmp(mode, "tofu") == 0)
		o.trust_on_first_use = 1;
	else if (mode != NULL)
		o.server_key = mode;
	if ((fd = five_connect(argv[1], argv[3], &o, &err)) < 0) {
		printf("error %s: %s\n", five_step_name(err.step), err.message);
		return 1;
	}
	if (write(fd, argv[4], strlen(argv[4])) < 0)
		return 1;
	shutdown(fd, SHUT_WR);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	close(fd);
	return 0;
}
