/*
 * Operations that need privilege, and privilege separation.
 *
 * Started as root, fived splits in two (as OpenSSH does): a small monitor
 * keeps root, the keys, the PAM service and the files only root may read;
 * the worker, which parses everything that comes from the network, is a
 * fresh fived process started by the monitor (a new address space each
 * time), confined (confine.h) and unprivileged, and asks the monitor for
 * the few privileged things it needs over a socket, one request at a time
 * (src/proto/privmsg.h).  Started as a normal user, fived does these
 * things itself (privops.h).  Either way the worker calls the same priv_*
 * functions.
 */
#ifndef FIVE_PRIV_H
#define FIVE_PRIV_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "server/conf/config.h"
#include "server/privsep/pam_helper.h"

struct priv_state;

/* The descriptor a worker started by the monitor finds its socket on. */
#define PRIV_WORKER_FD 3

/* The first argument that makes fived a worker. */
#define PRIV_WORKER_FLAG "--worker"

struct priv {
	bool separated;           /* a monitor answers; otherwise state does */
	int fd;                   /* to the monitor */
	struct priv_state *state; /* without a monitor; not owned */
	uv_loop_t *loop;          /* without a monitor: spawns the PAM helper */
	const char *config_name;  /* for messages: the file, or "(built-in)" */
	char self[PATH_MAX];      /* fived's executable, for the PAM helper */
	struct pam_slots pam;     /* without a monitor: the helpers running */
	uint64_t alive_ms;        /* when priv_alive last sent its heartbeat */
	unsigned index;           /* this worker's, of nworkers the monitor runs */
	unsigned nworkers;        /* 1 without a monitor */
	pid_t monitor;            /* the monitor's process id; 0 without one */
};

/* How often a worker tells its monitor that its loop runs (priv_alive). */
#define PRIV_ALIVE_MS 1000

/* The public halves of the keys the worker uses, and where they live. */
struct priv_keys {
	uint8_t server_pk[32];
	uint8_t token_pk[32];
	uint8_t sign_pk[32];                   /* signs proofs of identity */
	char provider[PROOF_PROVIDER_MAX + 1]; /* the name proofs carry; "" when none */
	char key_path[CONFIG_PATH_MAX + 64];
};

/* Without a monitor: priv answers through st (not owned). */
void priv_init_local(struct priv *p, struct priv_state *st, const char *config_name,
                     uv_loop_t *loop);

/*
 * In a worker the monitor started, worker index of nworkers: priv asks
 * the monitor on PRIV_WORKER_FD.
 */
void priv_init_worker(struct priv *p, const char *config_name, unsigned index, unsigned nworkers);

/*
 * Whether other workers serve beside this one: what must be one across
 * them (the 0-RTT timestamps acted on, revocations) is then asked of the
 * monitor, not of this worker's copy.
 */
bool priv_shared(const struct priv *p);

/*
 * With several workers: whether 0-RTT data from client key pk stamped
 * stamp_ns (in the clock window) is newer than any acted on, by any
 * worker, with the floor raised past it.  1 yes, 0 no, -1 the monitor failed.
 */
int priv_early_admit(struct priv *p, const uint8_t pk[32], uint64_t stamp_ns);

/* With several workers: whether token jti is revoked.  1 yes, 0 no, -1 the monitor failed. */
int priv_is_revoked(struct priv *p, const char *jti);

/*
 * With several workers: a connection to worker's peer socket (made by the
 * monitor, so that worker knows it for one of fived's).  A descriptor or
 * -errno.
 */
int priv_peer_connect(struct priv *p, unsigned worker);

/* Whether fd's other end is this worker's monitor (it made the connection). */
bool priv_from_monitor(const struct priv *p, int fd);

/*
 * Whether pk may authenticate user from peer_ip (keys_authorized).
 * Returns 1 or 0 with why filled for the log; -1 if the monitor failed.
 */
int priv_pubkey_check(struct priv *p, const char *user, const uint8_t pk[32], const char *peer_ip,
                      char *why, size_t why_size);

/*
 * Starts a PAM conversation for user; returns a socket speaking the
 * pamconv lines with it (the caller owns it), or -1 with *why (static)
 * when too many run already or it cannot be started.
 */
int priv_pam_start(struct priv *p, const struct config *cfg, const char *user, const char *peer_ip,
                   const char **why);

/*
 * The configuration to run with: the one the monitor has accepted, or
 * the file (the built-in one) read again; with several workers, with
 * this worker's share of the server's limits (config_share).  Returns
 * it, or NULL with errs filled.
 */
struct config *priv_config(struct priv *p, struct config_errors *errs);

/*
 * The text of a file the configuration names (authorized_clients, the TLS
 * files, token_trusted_keys), malloc'd into *text with a NUL after *len
 * bytes (the caller frees).  Returns 0, or -1 with err filled.
 */
int priv_file(struct priv *p, const char *path, char **text, size_t *len, char *err,
              size_t err_size);

/* What a listening socket is for: the control and admin sockets are local, and seqpacket. */
enum priv_socket {
	PRIV_SOCKET_LISTENER,
	PRIV_SOCKET_CONTROL,
	PRIV_SOCKET_ADMIN,
	PRIV_SOCKET_PEER, /* with several workers: this one's, for ATTACHes the others pass on */
};

/* A listening socket for a; a descriptor or -errno. */
int priv_listen(struct priv *p, const struct addr_spec *a, enum priv_socket kind);

/*
 * The audit log the configuration names: its file opened for appending, or
 * for the journal a datagram socket connected to the journal's (which a
 * chrooted worker could not reach by its path).  A descriptor or -errno.
 */
int priv_audit(struct priv *p);

/* The public keys.  Returns 0 or -1. */
int priv_keys(struct priv *p, struct priv_keys *out);

/* X25519 of the server's static key with pub, into shared; a noise_dh_fn (ctx a struct priv). */
int priv_dh(void *p, const uint8_t pub[32], uint8_t shared[32]);

/*
 * Issues a token of format (enum token_format) with the claims message
 * claims[0..len), asked for by identity ("" when none), into out[0..size).
 * Returns 0, or -1 with *why (static).
 */
int priv_token_issue(struct priv *p, const char *identity, int format, const char *claims,
                     size_t len, char *out, size_t size, const char **why);

/*
 * Authenticates and decrypts a v4.local token of this node, unpacked
 * (paseto_v4_local_unpack) into body and footer; the claims message into
 * m[0..m_size).  Returns 0 with *mlen, or -1.
 */
int priv_token_open(struct priv *p, const uint8_t *body, size_t blen, const char *footer,
                    uint8_t *m, size_t m_size, size_t *mlen);

/*
 * Has the monitor sign a proof of identity (docs/PROTOCOL.md section 13)
 * for identity, authenticated by method, of the challenge hash, into
 * out[0..size) (PROOF_SIZE suffices).  Returns 0, or -1 with *why
 * (static): the monitor's refusal, or "cannot sign a proof".
 */
int priv_proof_sign(struct priv *p, const char *identity, enum auth_method method,
                    const uint8_t hash[PROOF_HASH_LEN], char *out, size_t size, const char **why);

/* Records that jti is revoked until exp.  Returns 0, or -1 with err filled. */
int priv_revoke(struct priv *p, const char *jti, uint64_t exp, char *err, size_t err_size);

/* The revocations in force as "JTI EXP" lines (malloc'd; the caller frees).  Returns 0 or -1. */
int priv_revoked(struct priv *p, char **text, size_t *len);

/*
 * Makes sure no restart can act on 0-RTT data stamped stamp_ns again:
 * *floor is then a bound (ns) at or above stamp_ns below which early data
 * is recorded as possibly seen.  stamp_ns 0 asks only for the bound.
 * Returns 0, or -1 (refuse the early data).
 */
int priv_early_reserve(struct priv *p, uint64_t stamp_ns, uint64_t *floor);

/*
 * The cluster's cookie secret (32 bytes) of a cookie bucket, the current
 * one or a neighbour (cluster_key_file).  Returns 0, or -1 after logging why.
 */
int priv_cookie_secret(struct priv *p, uint64_t bucket, uint8_t out[32]);

/*
 * Starts the program of the exec service svc with env (NULL-terminated
 * "NAME=value" strings) under exec_user, its standard input and output a
 * socket; returns the other end (the caller owns it) with *program the
 * program's id for priv_exec_end, or -errno.
 */
int priv_exec(struct priv *p, const char *svc, char *const env[], uint64_t *program);

/*
 * program's stream is over: cut short, it is killed (and what it
 * started); in order, it runs on.  Until then, the worker's death kills it.
 */
void priv_exec_end(struct priv *p, uint64_t program, bool cut);

/* Connects to the Unix backend path; a connected descriptor, or -errno. */
int priv_connect(struct priv *p, const char *path);

/*
 * Tells the monitor this worker serves: its start, or a reload, is done.
 * Without a monitor, tells systemd itself (notify.h).
 */
void priv_ready(struct priv *p);

/* A reload starts.  Only without a monitor, which knows it first, is systemd told. */
void priv_reloading(struct priv *p);

/* fived stops.  Only without a monitor, which knows it first, is systemd told. */
void priv_stopping(struct priv *p);

/*
 * Called periodically from the loop (now_ms monotonic): at most every
 * PRIV_ALIVE_MS, tells the monitor that the loop runs, so that it keeps
 * systemd's watchdog fed; without a monitor, feeds it itself.  With
 * several workers, share (len bytes, at most PRIVMSG_BLOB_MAX; NULL for
 * none) is this worker's counters, which the monitor keeps for the others
 * (priv_shares).
 */
void priv_alive(struct priv *p, uint64_t now_ms, const void *share, size_t len);

/* Whether priv_alive would tell the monitor now. */
bool priv_alive_due(const struct priv *p, uint64_t now_ms);

/*
 * With several workers: every worker's last share, each after a byte of
 * PRIV_SHARE_* flags, in *blobs (malloc'd; the caller frees it).  Returns
 * 0, or -1 (logged).
 */
int priv_shares(struct priv *p, char **blobs, size_t *len);

/*
 * With several workers, at start: the last share of the worker this one
 * replaces, to go on counting from, in *blob (malloc'd; *len 0 for a
 * first worker).  Returns 0, or -1 (logged).
 */
int priv_inherit(struct priv *p, char **blob, size_t *len);

/*
 * The uid of user and the names of all its groups, a line each, malloc'd
 * into *groups (the caller frees).  Returns 0, 1 when there is no such
 * user, or -1 when its groups cannot all be had.
 */
int priv_account(struct priv *p, const char *user, unsigned long *uid, char **groups, size_t *len);

/*
 * Whether uid may use the admin socket: root, or an account in
 * admin_group.  Returns 1, or 0 with why (the reason, for the log and the
 * peer), or -1 when the monitor did not answer.
 */
int priv_admin(struct priv *p, unsigned long uid, char *why, size_t why_size);

/*
 * Has the monitor read its configuration file again, as on SIGHUP, but
 * without signalling this worker: the caller reloads next.  Without a
 * monitor, nothing (priv_config reads the file).  Returns 0, or -1 with
 * err filled.
 */
int priv_reload(struct priv *p, char *err, size_t err_size);

#endif
