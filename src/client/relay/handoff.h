/*
 * five_connect promises a descriptor of the service's bytes: a sealed or
 * TLS session is handed to the caller as one end of a socketpair, relayed
 * by a thread.
 */
#ifndef FIVE_CLIENT_RELAY_HANDOFF_H
#define FIVE_CLIENT_RELAY_HANDOFF_H

#include "five.h"

struct five_conn;

/*
 * A granted sealed connection as a descriptor of its bytes: returns one end of a
 * socketpair, relayed to c by a thread.  c is taken over (and left
 * closed) either way.  Returns the descriptor or -1 with err filled.
 */
int five_handoff(struct five_conn *c, const struct five_options *o, struct five_error *err);

#endif
