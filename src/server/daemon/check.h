/*
 * fived -t: what fived would meet at start with a configuration, checked
 * without starting.  Parsing is config_parse's; this is the rest: the
 * accounts, the chroot, the key files, TLS, the files of client keys and
 * tokens, the audit log, the listen addresses and the backends.
 */
#ifndef FIVE_CHECK_H
#define FIVE_CHECK_H

#include <stdbool.h>

#include "server/conf/config.h"

/*
 * Checks, as the user running it (the one that should start fived), what
 * start would do with cfg.  Logs as an error everything start would fail
 * on, and everything that would make a service fail at once (an exec:
 * program that is missing or not executable by exec_user, a unix: backend
 * that is not a socket); as
 * info each file start would create; as a warning each backend that does
 * not accept a connection now, which start does not need.  Creates,
 * binds and changes nothing: a listen address is checked by binding its
 * IP address to a free port, and backends see one connection each.
 * Returns 0 when start would get past everything, -1 otherwise.
 */
int check_start(const struct config *cfg);

/*
 * Whether cfg's workers can run: several need privilege separation
 * (separated: fived started as root, user not root), and each worker's
 * admin socket path must fit.  Returns 0, or -1 after logging why.
 */
int check_workers(const struct config *cfg, bool separated);

#endif
