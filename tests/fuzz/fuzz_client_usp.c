/*
 * A hostile fived in the USP dialect, as libfive reads it
 * (src/client/dialect/usp.c, jansson): the input's lines are fived's
 * messages after the client's first initialize, read through
 * five_usp_negotiate on one end of a socketpair whose other end holds them
 * and has ended its stream.  What the client sends back (its pubkey, its
 * signature, its password's answers, the second initialize) is left unread.
 *
 * Byte 0 is a mode, the rest fived's messages:
 *
 *   bits 0-1   authentication offered: none, password, pubkey, both
 *   bit 2      the prompt's answer is refused (the user gives up)
 *   bit 3      the session has a token (no authentication then)
 *
 * The pubkey is a fixed Ed25519 key written to a private file at start;
 * the server's key is known, as a pinned one would be, so the client signs.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "client/dialect/usp.h"
#include "client/transport/conn.h"
#include "five.h"
#include "fuzz.h"
#include "fuzz_random.h"

#define MODE_AUTH_MASK 0x03
#define MODE_NO_ANSWER 0x04
#define MODE_TOKEN     0x08

#define TIMEOUT_MS 200
#define SERVICE    "echo"
#define USER       "alice"
#define TOKEN      "tok.fuzz-1"
#define PASSWORD   "correct horse"

/* tests/fuzz/corpus/sshkey/ed25519: an unencrypted OpenSSH key, for this harness only. */
static const char key_text[] =
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
        "QyNTUxOQAAACDkJOvGcQ2LciG/0jKLAJeJK0dkCVkrZJawWphk/IcrywAAAIiWYrdelmK3\n"
        "XgAAAAtzc2gtZWQyNTUxOQAAACDkJOvGcQ2LciG/0jKLAJeJK0dkCVkrZJawWphk/Icryw\n"
        "AAAEDthi5+nFT1nM7QGgbL2+s7m8pfjiqXmPDgS5Jq1MLy8OQk68ZxDYtyIb/SMosAl4kr\n"
        "R2QJWStklrBamGT8hyvLAAAABHNlZWQB\n"
        "-----END OPENSSH PRIVATE KEY-----\n";

static const char *const methods[] = {NULL, "password", "pubkey", "pubkey,password"};

static char key_path[] = "/tmp/fuzz_client_usp.XXXXXX";

static int
ask(void *arg, const char *prompt, int echo, char *answer, size_t size)
{
	(void)prompt;
	(void)echo;
	if (*(const bool *)arg)
		return -1;
	snprintf(answer, size, "%s", PASSWORD);
	return 0;
}

static void
remove_key(void)
{
	unlink(key_path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int fd;

	(void)argc;
	(void)argv;
	if (randombytes_set_implementation(&fuzz_random_impl) != 0 || sodium_init() < 0)
		abort();
	/* Only the key file: no agent of the user's, no prompt on a terminal. */
	unsetenv("SSH_AUTH_SOCK");
	if ((fd = mkstemp(key_path)) < 0 ||
	    write(fd, key_text, sizeof(key_text) - 1) != (ssize_t)(sizeof(key_text) - 1) ||
	    close(fd) != 0)
		abort();
	atexit(remove_key);
	return 0;
}

static void
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) <= 0)
			abort();
		p += n;
		len -= (size_t)n;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct five_options o;
	struct five_auth a;
	struct five_conn c;
	struct five_error err;
	int sv[2];
	bool refuse;
	uint8_t mode;

	if (size < 1)
		return 0;
	fuzz_random_reset();
	mode = data[0];
	refuse = (mode & MODE_NO_ANSWER) != 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	write_all(sv[1], data + 1, size - 1);
	shutdown(sv[1], SHUT_WR);

	memset(&a, 0, sizeof(a));
	a.methods = methods[mode & MODE_AUTH_MASK];
	a.user = USER;
	a.key_file = key_path;
	a.ask = ask;
	a.ask_arg = &refuse;
	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.timeout_ms = TIMEOUT_MS;
	o.transport = FIVE_PLAIN;
	if ((mode & MODE_TOKEN) != 0)
		o.token = TOKEN;
	else if (a.methods != NULL)
		o.auth = &a;

	memset(&c, 0, sizeof(c));
	c.fd = sv[0];
	c.timeout_ms = TIMEOUT_MS;
	/* A pinned server key: signatures name it. */
	memset(c.server_pk, 0x5a, sizeof(c.server_pk));
	c.has_server_pk = true;
	five_usp_negotiate(&c, SERVICE, &o, &err);
	five_conn_close(&c);
	close(sv[1]);
	return 0;
}
