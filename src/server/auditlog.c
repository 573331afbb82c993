#include "server/auditlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

struct auditlog {
	FILE *out;     /* NULL when there is no log */
	bool owns_out; /* a file we opened, not standard output */
};

struct auditlog *
auditlog_open(const char *path, int fd)
{
	struct auditlog *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (strcmp(path, "-") == 0) {
		a->out = stdout;
		setvbuf(stdout, NULL, _IOLBF, 0);
	} else if (path[0] != '\0') {
		if (fd < 0 || (a->out = fdopen(fd, "a")) == NULL) {
			log_error("audit log %s: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			free(a);
			return NULL;
		}
		setvbuf(a->out, NULL, _IOLBF, 0);
		a->owns_out = true;
	}
	return a;
}

void
auditlog_close(struct auditlog *a)
{
	if (a == NULL)
		return;
	if (a->owns_out)
		fclose(a->out);
	free(a);
}

void
auditlog_write(struct auditlog *a, json_t *record)
{
	char stamp[40];
	struct timeval tv;
	struct tm tm;
	json_t *line;

	if (a == NULL || a->out == NULL || record == NULL) {
		json_decref(record);
		return;
	}
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + strlen(stamp), sizeof(stamp) - strlen(stamp), ".%03ldZ",
	         (long)(tv.tv_usec / 1000));
	/* "time" first, so that the log reads and sorts well as text. */
	line = json_pack("{s:s}", "time", stamp);
	json_object_update(line, record);
	if (json_dumpf(line, a->out, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0)
		fputc('\n', a->out);
	json_decref(line);
	json_decref(record);
}
