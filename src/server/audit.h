/*
 * The audit log: one JSON object per line per session event, appended to
 * a file or written to standard output.
 */
#ifndef FIVE_AUDIT_H
#define FIVE_AUDIT_H

#include <jansson.h>

struct audit;

/*
 * The log for the audit_log setting path: "-" is standard output, "" no
 * log, and an absolute path the file already opened as fd (by the
 * privileged side; the log takes it over).  Returns the log (freed with
 * audit_close), or NULL after logging why.
 */
struct audit *audit_open(const char *path, int fd);

/* Closes and frees; NULL is a no-op. */
void audit_close(struct audit *a);

/* Writes record as one line, adding "time".  Takes the reference to record. */
void audit_write(struct audit *a, json_t *record);

#endif
