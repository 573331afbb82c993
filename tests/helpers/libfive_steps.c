/*
 * A small program linked against libfive that makes a session with the
 * step functions: five_dial, five_authenticate, five_request, five_await,
 * then writes its fourth argument and prints what comes back.
 * Usage: libfive_steps HOST PORT SERVICE MESSAGE
 * LIBFIVE_TRANSPORT: "sealed" or "tls" asks for that transport (which the
 * steps refuse); unset, plain.  LIBFIVE_KEY_FILE and LIBFIVE_USER:
 * authenticate with pubkey as that user; LIBFIVE_SERVER_KEY: the
 * server's key (five_options.server_key).
 * On a libfive error prints "error FUNCTION STEP: MESSAGE" and exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "five.h"

#define REPLY_BUFFER 4096

static int
failed(const char *function, const struct five_error *err)
{
	printf("error %s %s: %s\n", function, five_step_name(err->step), err->message);
	return 1;
}

static void
choose_transport(struct five_options *o)
{
	const char *t = getenv("LIBFIVE_TRANSPORT");

	if (t != NULL && strcmp(t, "sealed") == 0)
		o->transport = FIVE_SEALED;
	else if (t != NULL && strcmp(t, "tls") == 0)
		o->transport = FIVE_TLS;
	else
		o->transport = FIVE_PLAIN;
}

int
main(int argc, char **argv)
{
	struct five_options o;
	struct five_auth auth = {.methods = "pubkey"};
	struct five_error err;
	char buf[REPLY_BUFFER];
	ssize_t n;
	int fd;

	if (argc != 5)
		return 2;
	five_options_init(&o);
	o.port = argv[2];
	choose_transport(&o);
	o.server_key = getenv("LIBFIVE_SERVER_KEY");
	if ((auth.key_file = getenv("LIBFIVE_KEY_FILE")) != NULL) {
		auth.user = getenv("LIBFIVE_USER");
		o.auth = &auth;
	}
	if ((fd = five_dial(argv[1], &o, &err)) < 0)
		return failed("five_dial", &err);
	if (five_authenticate(fd, &o, &err) != 0)
		return failed("five_authenticate", &err);
	if (five_request(fd, argv[3], &o, NULL, 0, &err) != 0)
		return failed("five_request", &err);
	if (five_await(fd, &o, &err) != 0)
		return failed("five_await", &err);
	if (write(fd, argv[4], strlen(argv[4])) < 0)
		return 1;
	shutdown(fd, SHUT_WR);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	close(fd);
	return 0;
}
