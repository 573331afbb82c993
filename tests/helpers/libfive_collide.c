/*
 * An application that defines, for purposes of its own, names libfive
 * uses inside itself (buf_init, log_init, str_copy), links libfive.a
 * statically, and still makes a session: libfive.a must keep its own
 * names to itself, or this program does not even link.
 * Usage: libfive_collide HOST PORT SERVICE MESSAGE
 * Prints what its own functions answer on one line, then what the
 * service sent back.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "five.h"

/* Each of these has a prototype here only: they are this program's, not libfive's. */
int buf_init(int n);
const char *log_init(void);
size_t str_copy(char *dst, const char *src, size_t size, int upper);

int
buf_init(int n)
{
	return n * 2;
}

const char *
log_init(void)
{
	return "the application's log";
}

/* Another str_copy: with one more argument, and shouting when asked to. */
size_t
str_copy(char *dst, const char *src, size_t size, int upper)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < size; i++)
		dst[i] = upper ? (char)toupper((unsigned char)src[i]) : src[i];
	dst[i] = '\0';
	return i;
}

int
main(int argc, char **argv)
{
	struct five_options o;
	struct five_error err;
	char buf[4096];
	ssize_t n;
	int fd;

	if (argc != 5)
		return 2;
	str_copy(buf, argv[4], sizeof(buf), 1);
	printf("%d %s %s\n", buf_init(21), log_init(), buf);
	fflush(stdout);
	five_options_init(&o);
	o.port = argv[2];
	o.trust_on_first_use = 1;
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
