/*
 * The audit log: one JSON object per line per session event, appended to
 * a file or written to standard output.
 */
#ifndef FIVE_AUDITLOG_H
#define FIVE_AUDITLOG_H

#include <jansson.h>

struct auditlog;

/*
 * The log for the audit_log setting path: "-" is standard output, "" no
 * log, and an absolute path the file already opened as fd (by the
 * privileged side; the log takes it over).  Returns the log (freed with
 * auditlog_close), or NULL after logging why.
 */
struct auditlog *auditlog_open(const char *path, int fd);

/* Closes and frees; NULL is a no-op. */
void auditlog_close(struct auditlog *a);

/* Writes record as one line, adding "time".  Takes the reference to record. */
void auditlog_write(struct auditlog *a, json_t *record);

#endif
