#include "server/policy/auditlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

struct auditlog {
	int fd;        /* -1 when there is no log */
	bool owns_fd;  /* a file we were given, not standard output */
	char *name;    /* for messages */
	bool failing;  /* the last record was lost */
	int error;     /* why, an errno value */
	uint64_t lost; /* records lost and not yet reported */
	uint64_t last_report_ms;
};

struct auditlog *
auditlog_open(const char *path, int fd)
{
	struct auditlog *a = calloc(1, sizeof(*a));

	if (a == NULL ||
	    (a->name = strdup(strcmp(path, "-") == 0 ? "(standard output)" : path)) == NULL) {
		log_error("out of memory opening the audit log");
		free(a);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	a->fd = -1;
	if (strcmp(path, "-") == 0) {
		a->fd = STDOUT_FILENO;
	} else if (path[0] != '\0') {
		if (fd < 0) {
			log_error("audit log %s: not opened", path);
			free(a->name);
			free(a);
			return NULL;
		}
		a->fd = fd;
		a->owns_fd = true;
	}
	return a;
}

static void
report(struct auditlog *a, uint64_t now_ms)
{
	if (a->lost == 0)
		return;
	log_error("audit log %s: cannot write (%s): %llu %s lost since the last report", a->name,
	          strerror(a->error), (unsigned long long)a->lost,
	          plural(a->lost, "record", "records"));
	a->lost = 0;
	a->last_report_ms = now_ms;
}

void
auditlog_close(struct auditlog *a)
{
	if (a == NULL)
		return;
	report(a, monotonic_ms());
	if (a->owns_fd)
		close(a->fd);
	free(a->name);
	free(a);
}

void
auditlog_tick(struct auditlog *a)
{
	uint64_t now = monotonic_ms();

	if (a != NULL && now - a->last_report_ms >= AUDITLOG_REPORT_MS)
		report(a, now);
}

/* The record as one line, "time" first so that the log reads and sorts well as text. */
static char *
format_line(json_t *record, size_t *len)
{
	const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
	char stamp[40], *text = NULL;
	struct timeval tv;
	struct tm tm;
	json_t *line;
	size_t n;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + strlen(stamp), sizeof(stamp) - strlen(stamp), ".%03ldZ",
	         (long)(tv.tv_usec / 1000));
	if ((line = json_pack("{s:s}", "time", stamp)) == NULL ||
	    json_object_update(line, record) != 0 || (n = json_dumpb(line, NULL, 0, flags)) == 0 ||
	    (text = malloc(n + 1)) == NULL || json_dumpb(line, text, n, flags) != n) {
		free(text);
		text = NULL;
	} else {
		text[n] = '\n';
		*len = n + 1;
	}
	json_decref(line);
	return text;
}

/*
 * Takes back the first done bytes of a record the file system took only
 * part of: the file ends at the current offset (it is appended to).
 */
static void
take_back(struct auditlog *a, size_t done)
{
	off_t end = lseek(a->fd, 0, SEEK_CUR);

	if (end >= (off_t)done && ftruncate(a->fd, end - (off_t)done) == 0)
		return;
	log_error("audit log %s: a record was cut short and cannot be removed: %s", a->name,
	          strerror(errno));
}

/*
 * Writes text[0..len) in one write; when the file system takes only part of
 * it, the rest in another.  If that fails too, what was written is taken
 * back.  Returns 0, or an errno value.
 */
static int
put(struct auditlog *a, const char *text, size_t len)
{
	size_t done = 0;
	ssize_t n;
	int e;

	while (done < len) {
		if ((n = write(a->fd, text + done, len - done)) > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		e = n < 0 ? errno : EIO;
		if (done > 0)
			take_back(a, done);
		return e;
	}
	return 0;
}

int
auditlog_write(struct auditlog *a, json_t *record)
{
	uint64_t now;
	size_t len = 0;
	char *text;
	int e;

	if (a == NULL || a->fd < 0 || record == NULL) {
		json_decref(record);
		return 0;
	}
	text = format_line(record, &len);
	json_decref(record);
	e = text != NULL ? put(a, text, len) : ENOMEM;
	free(text);
	now = monotonic_ms();
	if (e == 0) {
		if (a->failing && a->lost > 0)
			log_error("audit log %s: written again; %llu %s lost since the last report",
			          a->name, (unsigned long long)a->lost,
			          plural(a->lost, "record", "records"));
		else if (a->failing)
			log_info("audit log %s: written again", a->name);
		if (a->failing)
			a->last_report_ms = now;
		a->lost = 0;
		a->failing = false;
		return 0;
	}
	a->lost++;
	a->error = e;
	/* The first loss is said at once, the next ones at most every AUDITLOG_REPORT_MS. */
	if (!a->failing || now - a->last_report_ms >= AUDITLOG_REPORT_MS)
		report(a, now);
	a->failing = true;
	return -1;
}
