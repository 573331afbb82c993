/*
 * A hostile fived answering AUTH in the text dialect (docs/PROTOCOL.md
 * section 4), as libfive reads it (src/client/dialect/auth.c) through
 * five_authenticate, its public entry point: the input's lines are fived's
 * replies, written to one end of a socketpair that then ends its stream;
 * five_authenticate runs on the other.  What the client sends (AUTH, USER,
 * SIGNATURE, RESPONSE lines) is left unread.
 *
 * Byte 0 is a mode, the rest fived's replies:
 *
 *   bits 0-1   the methods the client tries: pubkey, password, both
 *              (pubkey first), both (password first)
 *   bit 2      the prompt's answer is refused (the user gives up)
 *
 * The pubkey is a fixed Ed25519 key written to a private file at start;
 * the server's key is given, as a pinned one would be, so the client signs.
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

#include "five.h"
#include "fuzz.h"
#include "fuzz_random.h"

#define MODE_AUTH_MASK 0x03
#define MODE_NO_ANSWER 0x04

#define TIMEOUT_MS 200
#define USER       "alice"
#define PASSWORD   "correct horse"
/* 32 bytes of 0x5a, base64: the server key the signature names. */
#define SERVER_KEY "WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo="

/* tests/fuzz/corpus/sshkey/ed25519: an unencrypted OpenSSH key, for this harness only. */
static const char key_text[] =
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
        "QyNTUxOQAAACDkJOvGcQ2LciG/0jKLAJeJK0dkCVkrZJawWphk/IcrywAAAIiWYrdelmK3\n"
        "XgAAAAtzc2gtZWQyNTUxOQAAACDkJOvGcQ2LciG/0jKLAJeJK0dkCVkrZJawWphk/Icryw\n"
        "AAAEDthi5+nFT1nM7QGgbL2+s7m8pfjiqXmPDgS5Jq1MLy8OQk68ZxDYtyIb/SMosAl4kr\n"
        "R2QJWStklrBamGT8hyvLAAAABHNlZWQB\n"
        "-----END OPENSSH PRIVATE KEY-----\n";

static const char *const methods[] = {"pubkey", "password", "pubkey,password",
                                      "password,pubkey"};

static char key_path[] = "/tmp/fuzz_client_auth.XXXXXX";

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
	/* Only the key file: no agent of the user's, no prompt on a terminal or program. */
	unsetenv("SSH_AUTH_SOCK");
	unsetenv("FIVE_ASKPASS");
	if ((fd = mkstemp(key_path)) < 0 ||
	    write(fd, key_text, sizeof(key_text) - 1) != (ssize_t)(sizeof(key_text) - 1) ||
	    close(fd) != 0)
		abort();
	atexit(remove_key);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct five_options o;
	struct five_auth a;
	struct five_error err;
	int sv[2];
	bool refuse;
	ssize_t n;

	if (size < 1)
		return 0;
	fuzz_random_reset();
	refuse = (data[0] & MODE_NO_ANSWER) != 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	/* Replies beyond the socket's buffer would block: they are cut there. */
	n = send(sv[1], data + 1, size - 1, MSG_DONTWAIT);
	(void)n;
	shutdown(sv[1], SHUT_WR);

	memset(&a, 0, sizeof(a));
	a.methods = methods[data[0] & MODE_AUTH_MASK];
	a.user = USER;
	a.key_file = key_path;
	a.ask = ask;
	a.ask_arg = &refuse;
	five_options_init(&o);
	o.timeout_ms = TIMEOUT_MS;
	o.transport = FIVE_PLAIN;
	o.auth = &a;
	o.server_key = SERVER_KEY;
	five_authenticate(sv[0], &o, &err);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
