/*
 * What the client-side authentication targets share: the user's Ed25519 key
 * in a private file, the only key the client may offer (no ssh-agent, no
 * prompt on a terminal or through FIVE_ASKPASS), and a password prompt
 * answered, or given up, as the input's mode says.
 */
#ifndef FIVE_TESTS_FUZZ_USERKEY_H
#define FIVE_TESTS_FUZZ_USERKEY_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FUZZ_USER     "alice"
#define FUZZ_PASSWORD "correct horse"

/* tests/fuzz/corpus/sshkey/ed25519: an unencrypted OpenSSH key, for the fuzz targets only. */
static const char fuzz_user_key[] =
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
        "QyNTUxOQAAACDkJOvGcQ2LciG/0jKLAJeJK0dkCVkrZJawWphk/IcrywAAAIiWYrdelmK3\n"
        "XgAAAAtzc2gtZWQyNTUxOQAAACDkJOvGcQ2LciG/0jKLAJeJK0dkCVkrZJawWphk/Icryw\n"
        "AAAEDthi5+nFT1nM7QGgbL2+s7m8pfjiqXmPDgS5Jq1MLy8OQk68ZxDYtyIb/SMosAl4kr\n"
        "R2QJWStklrBamGT8hyvLAAAABHNlZWQB\n"
        "-----END OPENSSH PRIVATE KEY-----\n";

static char fuzz_user_key_path[] = "/tmp/fuzz_user_key.XXXXXX";

/* The five_auth ask callback: arg points to a bool, true when the user gives up. */
static int
fuzz_ask(void *arg, const char *prompt, int echo, char *answer, size_t size)
{
	(void)prompt;
	(void)echo;
	if (*(const bool *)arg)
		return -1;
	snprintf(answer, size, "%s", FUZZ_PASSWORD);
	return 0;
}

static void
fuzz_user_key_remove(void)
{
	unlink(fuzz_user_key_path);
}

/* Writes the key to fuzz_user_key_path, removed at exit; aborts when it cannot. */
static void
fuzz_user_key_write(void)
{
	int fd;

	unsetenv("SSH_AUTH_SOCK");
	unsetenv("FIVE_ASKPASS");
	if ((fd = mkstemp(fuzz_user_key_path)) < 0 ||
	    write(fd, fuzz_user_key, sizeof(fuzz_user_key) - 1) !=
	            (ssize_t)(sizeof(fuzz_user_key) - 1) ||
	    close(fd) != 0)
		abort();
	atexit(fuzz_user_key_remove);
}

/* LLVMFuzzerInitialize: fixed random bytes (fuzz_random.h), libsodium, the key written. */
#define FUZZ_INITIALIZE_USER_KEY()                                                                 \
	int LLVMFuzzerInitialize(int *argc, char ***argv)                                          \
	{                                                                                          \
		(void)argc;                                                                        \
		(void)argv;                                                                        \
		if (randombytes_set_implementation(&fuzz_random_impl) != 0 || sodium_init() < 0)   \
			abort();                                                                   \
		fuzz_user_key_write();                                                             \
		return 0;                                                                          \
	}

#endif
