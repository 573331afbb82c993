/*
 * The metrics endpoint (metrics_listen): GET /metrics over HTTP/1.0,
 * answered with the counters in Prometheus's text format, on a Unix
 * socket or a loopback TCP address (the configuration refuses others).
 * One request a connection, bounded in size (HTTP_REQUEST_MAX) and time.
 */
#ifndef FIVE_SERVER_METRICS_H
#define FIVE_SERVER_METRICS_H

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

#endif
