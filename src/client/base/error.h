/*
 * How libfive's functions fail, one convention for every file of
 * src/client and the five command:
 *
 *   - A function that can fail takes a struct five_error *err (last) and
 *     returns 0 on success (or a descriptor, or a pointer), and -1 (or
 *     NULL) on failure with err filled, usually as
 *     "return five_fail(err, FIVE_ERR_..., ...)".  Which step failed and
 *     the message are what the user sees: the function that finds the
 *     failure fills err, and its callers pass the -1 on untouched (or
 *     fill err anew when they know better what failed).
 *   - A second kind of answer is an out-parameter (bool *found), never a
 *     third return value; no function returns -errno, or leaves its
 *     reason in errno alone.
 *   - Exceptions, each said at its declaration: the five_auth ask
 *     callback's contract (five.h); five_tls_wrap and five_tls_unwrap,
 *     which stand in for crypto/record.h's record_seal and record_open
 *     and keep their contract; keys/agent.h, an ssh-agent client tested
 *     on its own, which writes its reason into the caller's buffer as
 *     src/common does; and what cannot fail, or whose failure nobody
 *     could act on, which returns void.
 *   - err may be NULL where a caller of libfive passes it: every exported
 *     function swaps in a scratch struct (five_error_or), and five_fail
 *     itself takes NULL.
 *   - Helpers static to a file may answer in three values (done, go on,
 *     failed); that answer never leaves the file.
 */
#ifndef FIVE_CLIENT_BASE_ERROR_H
#define FIVE_CLIENT_BASE_ERROR_H

#include "five.h"

/*
 * Fills err (unless it is NULL) and returns -1, so that callers can write
 * "return five_fail(...)".  Messages quote what servers send: every byte
 * outside printable ASCII becomes '?', so that a hostile server cannot
 * write to the user's terminal through them.
 */
int five_fail(struct five_error *err, enum five_step step, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/*
 * err, or scratch (emptied) when err is NULL.  Every exported function
 * takes a NULL err (errors are then not reported), but what it calls may
 * read err back (err->step, to choose what to do next): it begins with
 * "err = five_error_or(err, &scratch);" so that inside libfive err is
 * never NULL.
 */
struct five_error *five_error_or(struct five_error *err, struct five_error *scratch);

/*
 * text (NULL: empty) as it may be shown to a user: at most size - 1 bytes,
 * each outside printable ASCII replaced by '?'.  out may be text.
 */
void five_printable(const char *text, char *out, size_t size);

#endif
