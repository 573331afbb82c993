/*
 * Where fived's diagnostics go (the log key): standard error, syslog(3),
 * or the systemd journal.  Set in the processes that are not confined
 * (the monitor, fived in one process); the worker, whose chroot and
 * seccomp filter reach neither syslog's nor the journal's socket, writes
 * its lines to a pipe the monitor reads (logpipe.h) and logs as the
 * worker's.
 */
#ifndef FIVE_LOGSINK_H
#define FIVE_LOGSINK_H

#include "server/conf/config.h"

/*
 * Sends this process's lines (and those it passes on) to target.
 * Returns 0, or -1 (logged on standard error) when this build cannot:
 * the journal needs libsystemd.
 */
int logsink_set(enum config_log target);

#endif
