/*
 * The process that runs one PAM conversation (see pam_helper.c).
 */
#ifndef FIVE_PAM_HELPER_H
#define FIVE_PAM_HELPER_H

#include <stddef.h>
#include <stdint.h>

/* fived's first argument that makes it the helper, and the descriptor it talks on. */
#define PAM_HELPER_FLAG "--pam-helper"
#define PAM_HELPER_FD   3

/* Runs the conversation named by argv; the exit status of the helper. */
int pam_helper_main(int argc, char **argv);

struct pam_helper_args {
	char *argv[7];
	char timeout[24];
};

/* The command line to start a helper with (pointing into a and the arguments). */
void pam_helper_argv(struct pam_helper_args *a, const char *self, const char *service,
                     const char *user, const char *peer_ip, uint64_t timeout_ms);

#endif
