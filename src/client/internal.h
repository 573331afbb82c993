/*
 * libfive's internal helpers, shared by its files and by the five command.
 */
#ifndef FIVE_CLIENT_INTERNAL_H
#define FIVE_CLIENT_INTERNAL_H

#include "five.h"

/* Fills err and returns -1, so that callers can write "return five_fail(...)". */
int five_fail(struct five_error *err, enum five_step step, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Copies opts (or the defaults when NULL) into out, with defaults filled in. */
void five_options_resolve(const struct five_options *opts, struct five_options *out);

/*
 * Checks one reply line read from fived.  Returns 0 for '+', or -1 with
 * err filled (FIVE_ERR_REFUSED with the server's reason, FIVE_ERR_PROTOCOL
 * for a line that is not a reply).
 */
int five_check_reply(const char *line, struct five_error *err);

/* How many reply lines a request made with these options produces before the grant. */
unsigned five_replies_expected(const struct five_options *opts);

#endif
