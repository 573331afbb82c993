/*
 * The options of every call, with their defaults.  Each exported function
 * resolves the caller's options once; every function below it takes
 * resolved ones (never NULL, every member there, defaults filled in).
 */
#ifndef FIVE_CLIENT_BASE_OPTIONS_H
#define FIVE_CLIENT_BASE_OPTIONS_H

#include "five.h"

/*
 * Copies opts (the defaults when NULL) into out, the members beyond
 * opts->size left at their defaults, every default filled in; out->size is
 * then sizeof(*out).  Returns 0, or -1 with err filled (FIVE_ERR_USAGE)
 * for a struct five_options not set up by five_options_init, or one that
 * sets options of a later libfive.
 */
int five_options_resolve(const struct five_options *opts, struct five_options *out,
                         struct five_error *err);

/*
 * The step functions (five_dial, five_request, five_authenticate,
 * five_await, named by what) speak plain TCPMUX on a bare descriptor:
 * with any other transport they would send in the clear what the caller
 * wanted encrypted.  Returns 0 when o->transport is FIVE_PLAIN, or -1
 * with err filled (FIVE_ERR_USAGE).
 */
int five_options_plain_step(const struct five_options *o, const char *what, struct five_error *err);

/* Tells o's notice callback text, when it has one and text is not empty. */
void five_notice(const struct five_options *o, const char *text);

#endif
