/*
 * The worker's confinement under privilege separation: an account of its
 * own, a directory it cannot leave or write (chroot), no way to gain
 * privilege again (no_new_privs), no core dumps or tracing by its own
 * user, and a seccomp allow-list of the system calls an event loop that
 * relays sockets needs.  Programs of exec services run under another
 * account (exec_user), never the worker's, so they cannot signal or
 * trace it.
 *
 * The chroot directory is not quite empty: it holds copies of the few
 * files name resolution reads (etc/hosts, etc/resolv.conf, ...), so that
 * backends named by host name still resolve, as postfix does for its
 * chroot.  The worker reaches everything else through the monitor.
 */
#ifndef FIVE_CONFINE_H
#define FIVE_CONFINE_H

#include <stddef.h>

#include <pwd.h>

#include "server/conf/config.h"

/* The worker's account: user, else "fived" if it exists, else "nobody"; NULL when missing. */
struct passwd *confine_worker_account(const struct config *cfg);

/*
 * Checks the accounts cfg names as the monitor will use them: the
 * worker's (user, else "fived", else "nobody") exists; when cfg has exec
 * services, exec_user exists and is not the worker's.  Returns 0, or -1
 * with err filled.
 */
int confine_check_accounts(const struct config *cfg, char *err, size_t err_size);

/*
 * Whether cfg's chroot directory, and every directory above it, as far as
 * they exist, belong to root and are writable by root alone.  Returns 0,
 * or -1 with err filled.
 */
int confine_check_root(const struct config *cfg, char *err, size_t err_size);

/*
 * Makes cfg's chroot directory (when chroot is not "none") ready for a
 * worker: created if missing, owned by root and writable by nobody else,
 * with fresh copies of the resolver's files.  Returns 0, or -1 after
 * logging why.
 */
int confine_prepare_root(const struct config *cfg);

/*
 * Confines the calling worker (running as root, started by the monitor):
 * loads what must be loaded before the file system goes away, enters the
 * chroot, becomes the worker's account, and installs the seccomp filter.
 * Returns 0, or -1 after logging why (the worker must then exit).
 */
int confine_worker(const struct config *cfg);

#endif
