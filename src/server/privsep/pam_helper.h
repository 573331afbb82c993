/*
 * The process that runs one PAM conversation (see pam_helper.c).
 */
#ifndef FIVE_PAM_HELPER_H
#define FIVE_PAM_HELPER_H

#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"

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

/*
 * The PAM helpers running, each a root process for as long as a client
 * takes to answer: capped in all and per client source (an IPv4 address,
 * an IPv6 /64), as sshd's MaxStartups caps unauthenticated connections.
 */
#define PAM_SLOTS_MAX 1024 /* the largest max_pam_helpers */

struct pam_slot {
	long id; /* a process id, or another handle; 0 when free */
	char source[ADDR_IP_MAX];
};

struct pam_slots {
	struct pam_slot slot[PAM_SLOTS_MAX];
	size_t used;
};

/*
 * Takes a slot for a helper from peer_ip ("" for a local client) within
 * the caps max and per_source.  Returns the slot (give it its id), or
 * NULL with why (static) when a cap is reached.
 */
struct pam_slot *pam_slots_take(struct pam_slots *s, const char *peer_ip, uint64_t max,
                                uint64_t per_source, const char **why);

/* Frees the slot of the helper id; an unknown id is ignored. */
void pam_slots_release(struct pam_slots *s, long id);

#endif
