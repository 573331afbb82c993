#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

static const char *log_name = "five";
static enum log_level log_max = LOGL_INFO;
static bool log_short;     /* log_plain */
static bool log_relaying;  /* log_relay */
static log_sink_fn log_to; /* log_sink; NULL for standard error */

static const char *const level_names[] = {
        [LOGL_ERROR] = "error",
        [LOGL_WARN] = "warning",
        [LOGL_INFO] = "info",
        [LOGL_DEBUG] = "debug",
};

void
log_init(const char *progname, enum log_level max_level)
{
	log_name = progname;
	log_max = max_level;
}

void
log_plain(bool plain)
{
	log_short = plain;
}

void
log_sink(log_sink_fn sink)
{
	log_to = sink;
}

void
log_relay(bool relay)
{
	log_relaying = relay;
}

bool
log_enabled(enum log_level level)
{
	return level <= log_max;
}

static void
emit(enum log_level level, const char *name, long pid, const char *text)
{
	char stamp[32];
	struct timeval tv;
	struct tm tm;

	if (log_to != NULL) {
		log_to(level, name, pid, text);
		return;
	}
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One write per line, so lines from several processes do not interleave. */
	if (log_short)
		fprintf(stderr, "%s: %s: %s\n", name, level_names[level], text);
	else
		fprintf(stderr, "%s.%03ldZ %s[%ld] %s: %s\n", stamp, (long)(tv.tv_usec / 1000),
		        name, pid, level_names[level], text);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char text[LOG_LINE_MAX];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (log_relaying)
		fprintf(stderr, "<%d>%s\n", (int)level, text);
	else
		emit(level, log_name, (long)getpid(), text);
}

void
log_pass(const char *name, long pid, const char *line)
{
	if (line[0] == '<' && line[1] >= '0' && line[1] <= '0' + LOGL_DEBUG && line[2] == '>')
		emit((enum log_level)(line[1] - '0'), name, pid, line + 3);
	else
		emit(LOGL_ERROR, name, pid, line);
}

void
log_ratelimit_flush(struct log_ratelimit *rl, uint64_t now_ms)
{
	if (now_ms - rl->window_start_ms < LOG_WINDOW_MS)
		return;
	if (rl->suppressed > 0 && rl->what != NULL)
		log_warn("%s: %u suppressed", rl->what, rl->suppressed);
	else if (rl->suppressed > 0)
		log_warn("%u similar %s suppressed", rl->suppressed,
		         plural(rl->suppressed, "message", "messages"));
	rl->window_start_ms = now_ms;
	rl->lines = 0;
	rl->suppressed = 0;
}

bool
log_ratelimit_allow(struct log_ratelimit *rl, uint64_t now_ms)
{
	log_ratelimit_flush(rl, now_ms);
	if (rl->lines < LOG_BURST) {
		rl->lines++;
		return true;
	}
	rl->suppressed++;
	return false;
}
