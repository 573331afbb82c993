/*
 * The metrics endpoint (metrics_listen): GET /metrics over HTTP/1.0,
 * answered with the counters in Prometheus's text format, on a Unix
 * socket or a loopback TCP address (the configuration refuses others).
 * One request a connection, bounded in size (HTTP_REQUEST_MAX) and time.
 */
#ifndef FIVE_SERVER_METRICS_H
#define FIVE_SERVER_METRICS_H

#include <stdint.h>

struct server;

/*
 * Connections served at once; at the limit, the one that has waited
 * longest for its request is closed to make room for the next.
 */
#define METRICS_CONNECTIONS_MAX 16

/* How long a connection may take from accept to the end of its response. */
#define METRICS_TIMEOUT_MS 5000

/* The one path served. */
#define METRICS_PATH "/metrics"

/* Opens the configured endpoint, if any.  Returns 0, or -1 after logging why. */
int metrics_open(struct server *srv);

/* Closes the endpoint and every connection to it. */
void metrics_close(struct server *srv);

/*
 * The heartbeat (priv_alive), called from the loop: with several
 * workers, it carries this worker's counters, which the worker that
 * answers a scrape adds to its own.
 */
void metrics_alive(struct server *srv, uint64_t now_ms);

/*
 * With several workers, at start: this worker goes on counting from the
 * counters the one it replaces last sent, so that the sums the endpoint
 * reports do not go back when a worker is restarted.
 */
void metrics_inherit(struct server *srv);

#endif
