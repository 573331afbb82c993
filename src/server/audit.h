/*
 * The audit log: one JSON object per line per session event, appended to
 * a file or written to standard output.
 */
#ifndef FIVE_AUDIT_H
#define FIVE_AUDIT_H

#include <jansson.h>

struct audit;

/*
 * Opens the log at path ("-": standard output, "": no log).  Returns the
 * log (freed with audit_close), or NULL after logging why.
 */
struct audit *audit_open(const char *path);

/* Closes and frees; NULL is a no-op. */
void audit_close(struct audit *a);

/* Writes record as one line, adding "time".  Takes the reference to record. */
void audit_write(struct audit *a, json_t *record);

#endif
