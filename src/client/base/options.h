/*
 * The options of every call, with their defaults.
 */
#ifndef FIVE_CLIENT_BASE_OPTIONS_H
#define FIVE_CLIENT_BASE_OPTIONS_H

#include "five.h"

/* Copies opts (or the defaults when NULL) into out, with defaults filled in. */
void five_options_resolve(const struct five_options *opts, struct five_options *out);

#endif
