/*
 * An ssh-agent client (draft-miller-ssh-agent) over the agent's Unix
 * socket: lists the Ed25519 keys the agent holds and has it sign with one,
 * so users authenticate with keys whose secrets never leave the agent,
 * passphrase-protected ones included.  Each call opens its own connection
 * and closes it before returning; there is no state between calls.
 * sodium_init() must have been called.
 */
#ifndef FIVE_AGENT_H
#define FIVE_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/sshkey.h"

/* The largest reply read, and request sent: OpenSSH's agent has the same limit. */
#define AGENT_REPLY_MAX (256 * 1024)

/* Bytes a sign request can carry: room is left for the request's other fields. */
#define AGENT_DATA_MAX (AGENT_REPLY_MAX - 128)

/* Each call gives the agent this long, connecting included. */
#define AGENT_TIMEOUT_MS 5000

/* Error messages fit in this many bytes; longer ones are truncated. */
#define AGENT_ERR_MAX 256

/*
 * Asks the agent at sock_path (NULL: $SSH_AUTH_SOCK) for its keys and keeps
 * the Ed25519 ones, the first max of them, in keys[0..*n).  Returns 0, or -1
 * with *n = 0 and a message in err[0..err_size) (the agent is missing, does
 * not answer in time, refuses, or sends a malformed reply).
 */
int agent_list(const char *sock_path, uint8_t keys[][SSHKEY_ED25519_PUBLEN], size_t max, size_t *n,
               char *err, size_t err_size);

/*
 * Has the agent at sock_path (NULL: $SSH_AUTH_SOCK) sign data[0..len)
 * (len <= AGENT_DATA_MAX) with the Ed25519 key pk, and checks the signature
 * against pk before writing it to sig.  Returns 0, or -1 with sig zeroed
 * and a message in err[0..err_size) (among others when the agent does not
 * hold the key).
 */
int agent_sign(const char *sock_path, const uint8_t pk[SSHKEY_ED25519_PUBLEN], const uint8_t *data,
               size_t len, uint8_t sig[SSHKEY_ED25519_SIGLEN], char *err, size_t err_size);

#endif
