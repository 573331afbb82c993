/*
 * Name resolution that keeps to a timeout (five_options.timeout_ms):
 * getaddrinfo has none, and a resolver that never answers would hold a
 * caller of libfive for as long as the system's resolver retries.
 */
#ifndef FIVE_CLIENT_DIAL_RESOLVE_H
#define FIVE_CLIENT_DIAL_RESOLVE_H

#include <netdb.h>

#include "five.h"

/* getaddrinfo's signature: getaddrinfo itself, or a test's stand-in for it. */
typedef int (*five_resolver)(const char *host, const char *port, const struct addrinfo *hints,
                             struct addrinfo **res);

/*
 * resolver(host, port, hints, res), waited for at most timeout_ms.  A
 * numeric host is resolved at once; a name, in a thread of its own, which
 * is left to finish alone (and free what it found) when the time is up.
 * Returns 0 with *res (freeaddrinfo), or -1 with err filled:
 * FIVE_ERR_RESOLVE ("HOST: timed out after N ms", or the resolver's own
 * error), FIVE_ERR_SYSTEM when no thread can be started.
 */
int five_resolve(five_resolver resolver, const char *host, const char *port,
                 const struct addrinfo *hints, int timeout_ms, struct addrinfo **res,
                 struct five_error *err);

#endif
