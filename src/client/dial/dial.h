/*
 * Reaching fived over TCP (five_dial in five.h is the public entry).
 */
#ifndef FIVE_CLIENT_DIAL_H
#define FIVE_CLIENT_DIAL_H

#include <stdbool.h>
#include <stddef.h>

#include "five.h"

/* A TCP port as five takes one: decimal digits only, 1 to 65535. */
bool five_port_valid(const char *port);

/* five_dial, also telling which port answered (port_out, size bytes). */
int five_dial_port(const char *host, const struct five_options *opts, char *port_out, size_t size,
                   struct five_error *err);

#endif
