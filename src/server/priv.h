/*
 * Operations that need privilege, and privilege separation.
 *
 * Started as root, fived splits in two (as OpenSSH does): a small monitor
 * keeps root, the PAM service and the keys; the worker, which parses
 * everything that comes from the network, runs as an unprivileged user and
 * asks the monitor for the few privileged things it needs, over a socket,
 * one fixed-size request at a time (src/proto/privmsg.h).  Started as a
 * normal user, fived does these things itself.  Either way the worker
 * calls the same priv_* functions.
 */
#ifndef FIVE_PRIV_H
#define FIVE_PRIV_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "server/config.h"

struct priv {
	bool separated;          /* a monitor answers; otherwise this process does */
	int fd;                  /* to the monitor */
	uv_loop_t *loop;         /* without a monitor: spawns the PAM helper */
	const char *config_path; /* without a monitor: NULL for the built-in configuration */
	char self[PATH_MAX];     /* fived's executable, for the PAM helper */
};

/*
 * Prepares priv: when running as root and cfg names a user other than
 * root, forks the monitor, which never returns from this call, and
 * returns in the worker with privileges dropped to that user (default
 * "fived" if it exists, else "nobody").  Otherwise notes once that there
 * is no separation.  Returns 0, or -1 after logging why.
 */
int priv_setup(struct priv *p, struct config *cfg, const char *config_path, const char *config_text,
               size_t config_len, uv_loop_t *loop);

/*
 * Whether pk may authenticate user from peer_ip (keys_authorized).
 * Returns 1 or 0 with why filled for the log; -1 if the monitor failed.
 */
int priv_pubkey_check(struct priv *p, const struct config *cfg, const char *user,
                      const uint8_t pk[32], const char *peer_ip, char *why, size_t why_size);

/*
 * Starts a PAM conversation for user; returns a socket speaking the
 * pamconv lines with it (the caller owns it), or -1.
 */
int priv_pam_start(struct priv *p, const struct config *cfg, const char *user, const char *peer_ip);

/*
 * The configuration to reload: read from the file (or the monitor's last
 * accepted one).  Returns it, or NULL with errs filled.
 */
struct config *priv_config(struct priv *p, struct config_errors *errs);

/*
 * The authorized_clients file cfg names, parsed into out (freed with
 * clients_free; empty when cfg names none).  Returns 0, or -1 with err.
 */
struct client_keys;
int priv_clients(struct priv *p, const struct config *cfg, struct client_keys *out, char *err,
                 size_t err_size);

/* A listening socket for a (seqpacket: the control socket); a descriptor or -errno. */
int priv_listen(struct priv *p, const struct addr_spec *a, bool seqpacket);

/* The audit log file named by cfg (an absolute path), opened for appending; a descriptor or -1. */
int priv_audit(struct priv *p, const struct config *cfg);

/* The monitor's side (monitor.c): serves requests on fd until worker exits. */
void monitor_run(int fd, pid_t worker, struct config *cfg, const char *config_path,
                 const char *text, size_t len, const char *self) __attribute__((noreturn));

/* Opens an audit log file for appending, as the privileged side does. */
int priv_open_audit_file(const char *path);

#endif
