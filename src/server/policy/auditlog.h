/*
 * The audit log: one JSON object per line per session event, appended to
 * a file or written to standard output; or one entry per record in the
 * systemd journal, in its native protocol (one datagram: NAME=value
 * lines, or NAME, a newline, a 64-bit little-endian length and the bytes
 * for a value with a newline), sent on a socket the privileged side
 * connected, since the worker's chroot hides the journal's.  An entry has
 * MESSAGE (a line for people), MESSAGE_ID (AUDITLOG_MESSAGE_ID),
 * PRIORITY, SYSLOG_IDENTIFIER, each field of the record as FIVED_NAME
 * (upper-cased) and the whole record as FIVED_RECORD.
 *
 * A record is written whole or not at all: it goes out in one write(2),
 * and a write that comes back short (a full disk) is completed or, failing
 * that, taken back by truncating the file to where the record began.  Lost
 * records are counted and reported on standard error at error level, at
 * once when the log fails and then at most every AUDITLOG_REPORT_MS.
 */
#ifndef FIVE_AUDITLOG_H
#define FIVE_AUDITLOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define AUDITLOG_REPORT_MS 10000

/* Every audit entry in the journal: journalctl MESSAGE_ID=... lists them. */
#define AUDITLOG_MESSAGE_ID "d9a49acd3c894f9c8648b9bb7314b181"

/* The largest journal entry sent; a record needing more is lost. */
#define AUDITLOG_ENTRY_MAX (64 * 1024)

struct auditlog;

/*
 * The log for the audit_log setting path: "-" is standard output, "" no
 * log, an absolute path the file already opened as fd, and "journal" the
 * journal, fd a datagram socket connected to it (either opened by the
 * privileged side; the log takes fd over).  Returns the log (freed with
 * auditlog_close), or NULL after logging why.
 */
struct auditlog *auditlog_open(const char *path, int fd);

/* Reports records lost and not yet reported, closes and frees; NULL is a no-op. */
void auditlog_close(struct auditlog *a);

/*
 * Writes record as one line (or journal entry), adding "time".  Takes the
 * reference to record.  Returns 0, or -1 when the record was lost (none
 * of it is left in the log, unless the log is a pipe or terminal that a
 * write cut short).
 */
int auditlog_write(struct auditlog *a, json_t *record);

/* Reports losses not yet reported once AUDITLOG_REPORT_MS passed; called periodically. */
void auditlog_tick(struct auditlog *a);

#endif
