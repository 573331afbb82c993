/*
 * What privilege is kept for: the secret keys, the files only root may
 * read or write, and the answers to the worker's requests
 * (src/proto/privmsg.h) that need them.  Under privilege separation the
 * monitor holds a priv_state and answers through privops_answer; started
 * without separation, fived holds one itself and priv.c calls the same
 * function, so both paths run the same checks.
 *
 * The worker never holds a private key: it asks for each Diffie-Hellman
 * with the sealed static key (PRIV_DH), each token issued (PRIV_TOKEN_ISSUE),
 * each v4.local token opened (PRIV_TOKEN_OPEN) and each proof of identity
 * signed (PRIV_PROOF_SIGN).
 */
#ifndef FIVE_PRIVOPS_H
#define FIVE_PRIVOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/keytable.h"
#include "proto/privmsg.h"
#include "proto/proof.h"
#include "proto/token.h"
#include "server/conf/config.h"
#include "server/conf/revocations.h"

/* The sealed static key file when key_file is not set: as root, and for other users under $HOME. */
#define PRIVOPS_DEFAULT_KEY_FILE "/var/lib/fived/server.key"
#define PRIVOPS_USER_KEY_FILE    "/.local/state/fived/server.key"

/* The label in the static key's file (keyfile_load). */
#define PRIVOPS_SERVER_KEY_LABEL  "fived-server-key-v1"
#define PRIVOPS_TOKEN_KEY_LABEL   "fived-token-key-v1"
#define PRIVOPS_SIGN_KEY_LABEL    "fived-sign-key-v1"
#define PRIVOPS_CLUSTER_KEY_LABEL "fived-cluster-key-v1"

/* Beside the static key: the 0-RTT replay floor (see privops_early_reserve). */
#define PRIVOPS_EARLY_SUFFIX "-0rtt"

/*
 * A 0-RTT reservation covers this far past the timestamp that asked for
 * it, so that steady 0-RTT traffic writes the floor file about once per
 * this interval, and a restarted worker refuses 0-RTT for about as long.
 */
#define PRIVOPS_EARLY_AHEAD_NS (10ULL * 1000000000ULL)

/*
 * How far a 0-RTT timestamp may be behind our clock, and ahead of it, in
 * seconds.  Ahead is kept short: the floor follows the newest timestamp
 * acted on, so one client whose clock runs fast would otherwise keep every
 * client from 0-RTT for as long after a restart.  A client further ahead
 * only loses 0-RTT.
 */
#define PRIVOPS_EARLY_SKEW_S   600
#define PRIVOPS_EARLY_FUTURE_S 10

/* PRIV_KEYS's answer before the provider's name: three public keys and the name's length. */
#define PRIVOPS_KEYS_FIXED (3 * 32 + 1)

/*
 * Listening sockets the monitor keeps for the workers it starts: those
 * the configuration names (a TCP address's group of a socket a worker is
 * one), and an admin socket and a peer socket a worker.
 */
#define PRIVOPS_LISTEN_MAX (2 * CONFIG_LISTEN_MAX + 2 + 2 * WORKERS_MAX)

/* The supplementary groups the monitor sets aside while it connects as the worker. */
#define PRIVOPS_GROUPS_MAX 256

/* Tokens one identity may be issued per PRIVOPS_ISSUE_WINDOW_S, and how many identities are
 * tracked. */
#define PRIVOPS_ISSUE_WINDOW_S   3600
#define PRIVOPS_ISSUE_IDENTITIES 4096

/* The sealed handshake's static key.  In locked memory (sodium_malloc). */
struct server_secret {
	uint8_t sk[32];
	uint8_t pk[32];
};

/*
 * One address's socket, or with several workers a TCP address for
 * sessions: a socket for each worker, fds[i] worker i's
 * (sockets_listen_group).
 */
struct privops_listening {
	char address[ADDR_TEXT_MAX]; /* as the worker names it; "control:PATH" for the control
	                                socket */
	int fds[WORKERS_MAX];
	unsigned nfds;                       /* 1: every worker's */
	char unlink_path[ADDR_PATH_MAX + 1]; /* a socket file made for it, or "" */
};

/* Client keys whose newest 0-RTT timestamp the monitor keeps, with several workers. */
#define PRIVOPS_EARLY_KEYS_MAX  65536
#define PRIVOPS_EARLY_FORGET_MS (2ULL * PRIVOPS_EARLY_SKEW_S * 1000)

struct priv_state {
	struct config *cfg;   /* the configuration in force; one reference */
	const char *cfg_path; /* its file, or NULL for the built-in one */
	char *cfg_text;       /* what it was parsed from; owned */
	size_t cfg_len;
	char key_path[CONFIG_PATH_MAX + 64];
	struct server_secret *key;   /* owned, locked memory */
	struct token_key *token_key; /* owned, locked memory */
	struct token_key *sign_key;  /* signs proofs (PRIV_PROOF_SIGN); owned, locked memory */
	uint8_t *cluster_key; /* cluster_key_file's secret (32 bytes), or NULL; locked memory */
	char sign_path[CONFIG_PATH_MAX + 64];
	struct revocations revoked; /* the list and its file */
	char early_path[CONFIG_PATH_MAX + 64];
	uint64_t early_reserved; /* ns: no 0-RTT timestamp at or below it may be acted on again */
	int early_lock;          /* held for as long as this fived uses the key's floor, or -1 */
	struct keytable *issued; /* tokens issued per asking identity this hour; owned */
	struct keytable *early_last; /* with several workers: the newest 0-RTT timestamp acted on
	                                per client key (PRIV_EARLY_ADMIT); owned */
	uint64_t early_evicted;      /* ns: the newest timestamp of a key pushed out of it */
	unsigned nworkers;           /* the workers the monitor runs */
	uint64_t peer_token;         /* secret: in the names of the workers' peer sockets */
	unsigned asking;             /* the one whose request is answered */
	struct privops_listening listening[PRIVOPS_LISTEN_MAX];
	size_t nlistening;
	uid_t worker_uid; /* the credentials a Unix backend sees (PRIV_CONNECT) */
	gid_t worker_gid;
};

/* What a request is answered with: owned by the answer until privops_answer_clear. */
struct priv_answer {
	bool ok;
	uint8_t *text; /* malloc'd, or NULL */
	size_t len;
	int fd; /* passed with the answer, or -1 */
};

/*
 * Prepares st for cfg (read from cfg_path, NULL for the built-in one;
 * parsed from text[0..len); all copied or referenced): loads the sealed static key and the token
 * key, making each the first time; the revocations; the 0-RTT floor; makes the self-signed TLS pair
 * when none is configured.  Returns 0, or -1 after logging why (st is then freed).
 */
int privops_init(struct priv_state *st, struct config *cfg, const char *cfg_path, const char *text,
                 size_t len);

/* Frees everything st holds, wiping the keys and closing the sockets.  Safe after a failed init. */
void privops_free(struct priv_state *st);

/*
 * Installs a reloaded configuration (taking cfg's reference and text, a
 * malloc'd string), closing kept listening sockets it no longer names.
 * Returns 0, or -1 (nothing changed or taken) when it changes what needs
 * a restart.
 */
int privops_set_config(struct priv_state *st, struct config *cfg, char *text, size_t len);

/*
 * Answers req into *ans (ans->fd -1 and text NULL when it has none).
 * Returns 0, also for a refusal (ans->ok false, text a reason), or -1 when
 * the request asks for something no honest worker would (an address or
 * file the configuration does not name, a malformed key): the monitor then
 * treats the worker as compromised.  PRIV_PAM_START and PRIV_EXEC start
 * processes and are the caller's (monitor.c, priv.c); PRIV_RELOAD is the
 * monitor's alone (monitor.c).
 */
int privops_answer(struct priv_state *st, const struct priv_request *req, struct priv_answer *ans);

/* Frees what ans holds and closes its descriptor. */
void privops_answer_clear(struct priv_answer *ans);

/* How many workers the configuration asks for: workers, or for auto one a CPU. */
unsigned privops_workers(const struct config *cfg);

/* The requests that follow are worker index's, of nworkers. */
void privops_asking(struct priv_state *st, unsigned index, unsigned nworkers);

/*
 * How the key files and those fived makes beside them (token key,
 * self-signed TLS pair, revocations) are made when missing (keyfile_load's
 * flags): KEYFILE_CREATE, and KEYFILE_MKDIR when cfg sets no key_file,
 * since the default state directory is fived's own; a configured
 * directory must exist.
 */
int privops_key_flags(const struct config *cfg);

/* The revocation file: revocation_file, or beside the static key.  0, or -1 when too long. */
int privops_revocations_path(const struct config *cfg, const char *key_path, char *out,
                             size_t size);

/* The token key's file, beside the static key's.  Returns 0, or -1 when too long. */
int privops_token_key_path(const char *key_path, char *out, size_t size);

/*
 * The sealed static key and the token key (beside it) of key_path, each
 * made the first time (flags: privops_key_flags), into locked memory
 * (*out, freed with sodium_free; token_key_wipe the token key first).
 * A key made now is said in the log.  Return 0, or -1 after logging why.
 */
int privops_load_server_key(const char *key_path, int flags, struct server_secret **out);
int privops_load_token_key(const char *key_path, int flags, struct token_key **out);

/* The signing key's file: sign_key_file, or beside the static key.  0, or -1 when too long. */
int privops_sign_key_path(const struct config *cfg, const char *key_path, char *out, size_t size);

/*
 * The signing key (proofs of identity, docs/PROTOCOL.md section 13) in
 * path, made the first time (flags: privops_key_flags), into locked memory
 * as privops_load_token_key does.  Returns 0, or -1 after logging why.
 */
int privops_load_sign_key(const char *path, int flags, struct token_key **out);

/*
 * The provider's name proofs carry: provider_name, or this host's name.
 * Returns 0, or -1 (out "") when the host's name is not a valid one.
 */
int privops_provider_name(const struct config *cfg, char out[PROOF_PROVIDER_MAX + 1]);

/* The static key path fived uses for cfg: key_file, or the default for whoever runs it. */
void privops_key_path(const struct config *cfg, char *out, size_t size);

/* Closes every kept socket and removes the socket files made for them (at exit). */
void privops_close_listening(struct priv_state *st);

#endif
