#include "server/privsep/logsink.h"

#include <stdio.h>
#include <syslog.h>

#include "common/log.h"

#ifdef FIVE_HAVE_SYSTEMD
#include <systemd/sd-journal.h>
#endif

#define IDENT_MAX 64 /* "NAME[PID]" */

static const int priorities[] = {
        [LOGL_ERROR] = LOG_ERR,
        [LOGL_WARN] = LOG_WARNING,
        [LOGL_INFO] = LOG_INFO,
        [LOGL_DEBUG] = LOG_DEBUG,
};

/*
 * The tag is "NAME[PID]" of the process the line is from (the worker's,
 * for its lines), not that of the monitor which sends it.  openlog keeps
 * the pointer and, once connected, reuses its socket.
 */
static void
to_syslog(enum log_level level, const char *name, long pid, const char *text)
{
	static char ident[IDENT_MAX];

	snprintf(ident, sizeof(ident), "%s[%ld]", name, pid);
	openlog(ident, LOG_NDELAY, LOG_DAEMON);
	syslog(priorities[level], "%s", text);
}

#ifdef FIVE_HAVE_SYSTEMD

/*
 * SYSLOG_PID names the process the line is from; the journal adds the
 * sender's own _PID.  A line the journal does not take goes to standard
 * error, so that an error is never lost for want of a journal.
 */
static void
to_journal(enum log_level level, const char *name, long pid, const char *text)
{
	if (sd_journal_send("MESSAGE=%s", text, "PRIORITY=%d", priorities[level],
	                    "SYSLOG_IDENTIFIER=%s", name, "SYSLOG_PID=%ld", pid,
	                    "SYSLOG_FACILITY=%d", LOG_DAEMON >> 3, NULL) < 0)
		fprintf(stderr, "%s[%ld] %s (the journal is unreachable)\n", name, pid, text);
}

#endif

int
logsink_set(enum config_log target)
{
	switch (target) {
	case CONFIG_LOG_STDERR:
		log_sink(NULL);
		return 0;
	case CONFIG_LOG_SYSLOG:
		log_sink(to_syslog);
		return 0;
	case CONFIG_LOG_JOURNAL:
#ifdef FIVE_HAVE_SYSTEMD
		log_sink(to_journal);
		return 0;
#else
		log_error("log = journal: this fived was built without libsystemd; use syslog, or "
		          "build with libsystemd-dev");
		return -1;
#endif
	}
	return -1;
}
