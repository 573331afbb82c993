#include "server/policy/auditlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "server/conf/config.h"

#define STDOUT_NAME       "(standard output)"
#define JOURNAL_NAME      "(the journal)"
#define JOURNAL_PREFIX    "FIVED_"
#define JOURNAL_NAME_MAX  64 /* the journal's longest field name */
#define JOURNAL_IDENT     "fived"
#define JOURNAL_TEXT_MAX  512 /* MESSAGE, cut there */
#define JOURNAL_LEN_BYTES 8   /* a binary value's little-endian length */

struct auditlog {
	int fd;        /* -1 when there is no log */
	bool owns_fd;  /* a file or socket we were given, not standard output */
	bool journal;  /* fd is a socket to the journal: an entry per record */
	char *name;    /* for messages */
	bool failing;  /* the last record was lost */
	int error;     /* why, an errno value */
	uint64_t lost; /* records lost and not yet reported */
	uint64_t last_report_ms;
};

static const char *
display_name(const char *path)
{
	if (strcmp(path, "-") == 0)
		return STDOUT_NAME;
	return strcmp(path, CONFIG_AUDIT_JOURNAL) == 0 ? JOURNAL_NAME : path;
}

struct auditlog *
auditlog_open(const char *path, int fd)
{
	struct auditlog *a = calloc(1, sizeof(*a));

	if (a == NULL || (a->name = strdup(display_name(path))) == NULL) {
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
			log_error("audit log %s: not opened", a->name);
			free(a->name);
			free(a);
			return NULL;
		}
		a->fd = fd;
		a->owns_fd = true;
		a->journal = strcmp(path, CONFIG_AUDIT_JOURNAL) == 0;
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

/* The record with "time" first, so that it reads and sorts well as text; NULL without memory. */
static json_t *
stamped(json_t *record)
{
	char stamp[40];
	struct timeval tv;
	struct tm tm;
	json_t *line;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + strlen(stamp), sizeof(stamp) - strlen(stamp), ".%03ldZ",
	         (long)(tv.tv_usec / 1000));
	if ((line = json_pack("{s:s}", "time", stamp)) != NULL &&
	    json_object_update(line, record) != 0) {
		json_decref(line);
		line = NULL;
	}
	return line;
}

/* The record as one line of compact JSON, newline included; NULL when out of memory. */
static char *
format_line(json_t *line, size_t *len)
{
	const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
	char *text = NULL;
	size_t n;

	if ((n = json_dumpb(line, NULL, 0, flags)) == 0 || (text = malloc(n + 1)) == NULL ||
	    json_dumpb(line, text, n, flags) != n) {
		free(text);
		return NULL;
	}
	text[n] = '\n';
	*len = n + 1;
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

/* --- the journal ------------------------------------------------------------------- */

/*
 * One field in the native protocol: NAME=value and a newline, or, for a
 * value holding a newline, NAME, a newline, the value's length and the
 * value.  Returns 0, or -1 when the entry would pass AUDITLOG_ENTRY_MAX.
 */
static int
put_field(struct buf *b, const char *name, const char *value, size_t len)
{
	bool binary = memchr(value, '\n', len) != NULL;
	uint8_t le[JOURNAL_LEN_BYTES];
	uint64_t n = len;
	size_t i;

	for (i = 0; i < sizeof(le); i++)
		le[i] = (uint8_t)(n >> (8 * i));
	if (buf_append(b, name, strlen(name)) != 0 ||
	    (binary ? buf_append(b, "\n", 1) != 0 || buf_append(b, le, sizeof(le)) != 0
	            : buf_append(b, "=", 1) != 0) ||
	    buf_append(b, value, len) != 0 || buf_append(b, "\n", 1) != 0)
		return -1;
	return 0;
}

/* A record's field as the journal names it: FIVED_ and the key upper-cased, [A-Z0-9_] only. */
static void
field_name(const char *key, char name[JOURNAL_NAME_MAX + 1])
{
	size_t n = str_copy(name, JOURNAL_PREFIX, JOURNAL_NAME_MAX + 1);

	for (; *key != '\0' && n < JOURNAL_NAME_MAX; key++, n++) {
		if (*key >= 'a' && *key <= 'z')
			name[n] = (char)(*key - 'a' + 'A');
		else if ((*key >= 'A' && *key <= 'Z') || (*key >= '0' && *key <= '9'))
			name[n] = *key;
		else
			name[n] = '_';
	}
	name[n] = '\0';
}

/* A string as it is; anything else (numbers, booleans, objects) as compact JSON. */
static int
put_value(struct buf *b, const char *name, json_t *v)
{
	char *text;
	int r;

	if (json_is_string(v))
		return put_field(b, name, json_string_value(v), json_string_length(v));
	if ((text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
		return -1;
	r = put_field(b, name, text, strlen(text));
	free(text);
	return r;
}

static const char *
text_of(json_t *line, const char *key)
{
	const char *v = json_string_value(json_object_get(line, key));

	return v != NULL ? v : "-";
}

/* "EVENT session ID from SRC[ service NAME]", for people reading the journal. */
static int
put_message(struct buf *b, json_t *line)
{
	const char *service = json_string_value(json_object_get(line, "service"));
	char text[JOURNAL_TEXT_MAX];

	snprintf(text, sizeof(text), "%s session %s from %s%s%s", text_of(line, "event"),
	         text_of(line, "session"), text_of(line, "src"), service != NULL ? " service " : "",
	         service != NULL ? service : "");
	return put_field(b, "MESSAGE", text, strlen(text));
}

/* Refusals and failures stand out at notice; the rest is info. */
static int
priority(json_t *line)
{
	const char *event = text_of(line, "event");
	size_t n = strlen(event);

	if ((n >= strlen("refused") && strcmp(event + n - strlen("refused"), "refused") == 0) ||
	    (n >= strlen("failed") && strcmp(event + n - strlen("failed"), "failed") == 0))
		return LOG_NOTICE;
	return LOG_INFO;
}

/* The entry for line into b.  Returns 0, or -1 when out of memory or over AUDITLOG_ENTRY_MAX. */
static int
format_entry(struct buf *b, json_t *line)
{
	char name[JOURNAL_NAME_MAX + 1], prio[4];
	const char *key;
	json_t *v;
	size_t len = 0;
	char *whole;
	int r;

	snprintf(prio, sizeof(prio), "%d", priority(line));
	if (put_message(b, line) != 0 ||
	    put_field(b, "MESSAGE_ID", AUDITLOG_MESSAGE_ID, strlen(AUDITLOG_MESSAGE_ID)) != 0 ||
	    put_field(b, "PRIORITY", prio, strlen(prio)) != 0 ||
	    put_field(b, "SYSLOG_IDENTIFIER", JOURNAL_IDENT, strlen(JOURNAL_IDENT)) != 0)
		return -1;
	json_object_foreach(line, key, v)
	{
		field_name(key, name);
		if (put_value(b, name, v) != 0)
			return -1;
	}
	/* The record as the file would hold it, without its newline. */
	if ((whole = format_line(line, &len)) == NULL)
		return -1;
	r = put_field(b, JOURNAL_PREFIX "RECORD", whole, len - 1);
	free(whole);
	return r;
}

/* One datagram, whole.  Returns 0, or an errno value. */
static int
send_datagram(int fd, const void *data, size_t len)
{
	ssize_t n;

	while ((n = write(fd, data, len)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return errno;
	return (size_t)n == len ? 0 : EIO;
}

/*
 * Sends line as one entry.  Returns 0, or an errno value: EMSGSIZE for an
 * entry that cannot be made (over AUDITLOG_ENTRY_MAX, or, far less likely,
 * out of memory).
 */
static int
send_entry(struct auditlog *a, json_t *line)
{
	struct buf b;
	int e;

	buf_init(&b, AUDITLOG_ENTRY_MAX);
	e = format_entry(&b, line) == 0 ? send_datagram(a->fd, b.data, b.len) : EMSGSIZE;
	buf_free(&b);
	return e;
}

/* --- writing ------------------------------------------------------------------------ */

/* The record in the file (or on standard output) as one line.  Returns 0, or an errno value. */
static int
append_line(struct auditlog *a, json_t *line)
{
	size_t len = 0;
	char *text = format_line(line, &len);
	int e = text != NULL ? put(a, text, len) : ENOMEM;

	free(text);
	return e;
}

int
auditlog_write(struct auditlog *a, json_t *record)
{
	json_t *line;
	uint64_t now;
	int e;

	if (a == NULL || a->fd < 0 || record == NULL) {
		json_decref(record);
		return 0;
	}
	line = stamped(record);
	json_decref(record);
	if (line == NULL)
		e = ENOMEM;
	else
		e = a->journal ? send_entry(a, line) : append_line(a, line);
	json_decref(line);
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
