/*
 * The worker's standard error, read by the monitor: each line the worker
 * writes (log_relay's "<LEVEL>message") is logged where the monitor logs,
 * as the worker's (log_pass).
 */
#ifndef FIVE_LOGPIPE_H
#define FIVE_LOGPIPE_H

#include <stddef.h>

#include "common/log.h"

/* A line longer than this is logged in pieces. */
#define LOGPIPE_LINE_MAX (LOG_LINE_MAX + 16)

struct logpipe {
	int fd;   /* the read end, non-blocking; -1 when none */
	long pid; /* the process writing to it */
	size_t len;
	char buf[LOGPIPE_LINE_MAX];
};

/* Before anything is opened: no pipe. */
void logpipe_init(struct logpipe *lp);

/*
 * Opens a pipe, closing any previous one (logpipe_close): the read end is
 * kept; returns the write end for the child's standard error (the caller
 * closes it once the child has it), or -1 (logged).
 */
int logpipe_open(struct logpipe *lp);

/* Logs each whole line that can be read now; at the end of the pipe, logpipe_close. */
void logpipe_read(struct logpipe *lp);

/* The writer is gone: what it wrote is logged, a last partial line too, and the pipe closed. */
void logpipe_close(struct logpipe *lp);

#endif
