/*
 * five -L: a local forwarder.  Every connection accepted on a local
 * address becomes its own session to a service.
 */
#ifndef FIVE_CLI_FORWARD_H
#define FIVE_CLI_FORWARD_H

#include "client/cli/session.h"
#include "five.h"

/*
 * Listens on spec ("PORT", "ADDR:PORT" or "[V6ADDR]:PORT"; the address
 * defaults to 127.0.0.1) and serves until a signal ends it (signals.h).
 * Returns only on a setup failure: -1 with err filled.
 */
int cli_forward(const char *spec, const struct cli_request *req, struct five_error *err);

#endif
