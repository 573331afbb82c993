/*
 * Diagnostics, one line per message: on standard error, or to a sink the
 * program sets (fived's syslog and journal), or relayed through another
 * process that reads this one's standard error (fived's worker).
 */
#ifndef FIVE_LOG_H
#define FIVE_LOG_H

#include <stdbool.h>
#include <stdint.h>

/* A message's text; longer ones are cut. */
#define LOG_LINE_MAX 1024

enum log_level {
	LOGL_ERROR,
	LOGL_WARN,
	LOGL_INFO,
	LOGL_DEBUG,
};

/*
 * Sets the program name printed on every line and the most verbose level
 * printed.  Before this is called the name is "five" and the level is INFO.
 */
void log_init(const char *progname, enum log_level max_level);

/*
 * Lines without the time and the process id, "NAME: LEVEL: message", for
 * a command that a person runs and reads at once (fived -t).
 */
void log_plain(bool plain);

/*
 * Writes one line "TIME NAME[PID] LEVEL: message" to standard error, or
 * gives it to the sink, or writes it for relaying.
 */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Where lines go instead of standard error: each line's level, process name and id, text. */
typedef void (*log_sink_fn)(enum log_level level, const char *name, long pid, const char *text);

/* Sets the sink (NULL: standard error, the default). */
void log_sink(log_sink_fn sink);

/*
 * For a process whose standard error another one reads and logs
 * (log_pass): each line is written as "<LEVEL>message", the level a digit.
 */
void log_relay(bool relay);

/*
 * Logs one line (without its newline) that a relaying process named name,
 * of id pid, wrote: at its level, as that process.  A line without a
 * level (a crash report, say) is logged as an error.
 */
void log_pass(const char *name, long pid, const char *line);

#define log_error(...) log_msg(LOGL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOGL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOGL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOGL_DEBUG, __VA_ARGS__)

/* Whether messages at this level are printed: lets callers skip formatting. */
bool log_enabled(enum log_level level);

/*
 * A limit on lines a remote peer can cause: at most LOG_BURST lines per
 * LOG_WINDOW_MS, then one summary of how many were suppressed.  A flood of
 * bad requests must not turn into a flood of disk writes.
 */
#define LOG_BURST     20
#define LOG_WINDOW_MS 1000

struct log_ratelimit {
	uint64_t window_start_ms;
	unsigned lines;
	unsigned suppressed;
	const char *what; /* the summary's "WHAT: N suppressed"; NULL: "N similar messages" */
};

/* True when a line may be printed now (now_ms from a monotonic clock). */
bool log_ratelimit_allow(struct log_ratelimit *rl, uint64_t now_ms);

/*
 * Once the window is over, says how many lines it suppressed, if any.
 * Called periodically, so that the count is said even when no further
 * line comes.
 */
void log_ratelimit_flush(struct log_ratelimit *rl, uint64_t now_ms);

#endif
