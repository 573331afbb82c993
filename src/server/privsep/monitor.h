/*
 * The monitor (monitor.c): the privileged process of privilege
 * separation, which starts the worker and answers its requests.
 */
#ifndef FIVE_MONITOR_H
#define FIVE_MONITOR_H

#include <stdbool.h>

#include "server/privsep/privops.h"

/*
 * Runs the monitor with st (prepared by privops_init) until fived stops:
 * starts the worker (self run with PRIV_WORKER_FLAG, -d when debug),
 * restarts it when it dies, and exits with the status of the worker that
 * was asked to stop.
 */
void monitor_run(struct priv_state *st, const char *self, bool debug) __attribute__((noreturn));

#endif
