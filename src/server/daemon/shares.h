/*
 * The counters the metrics endpoint reports, one worker's at a time.
 * With several workers (`workers`) each sends its own to the monitor
 * with its heartbeat; the one that answers a scrape adds the others'
 * last to its own, and a restarted one goes on from its predecessor's.
 */
#ifndef FIVE_SERVER_SHARES_H
#define FIVE_SERVER_SHARES_H

#include <stdint.h>

#include "server/policy/governor.h"
#include "server/policy/metrics.h"

struct server;
struct site;

/*
 * What one worker counts, as the exposition sums it.  A worker started
 * from another build of fived (replaced on disk, then
 * restarted) may have another layout: the size first says which.
 */
struct metrics_share {
	uint64_t size; /* sizeof(struct metrics_share) of the worker that sent it */
	struct metrics m;
	struct governor_counters handshakes;
	uint64_t open[METRICS_TRANSPORTS * METRICS_DIALECTS]; /* live sessions by pair */
	uint64_t live_in, live_out; /* bytes so far of the live sessions */
	uint64_t cpu_ns_total, cpu_percent, pending;
	uint64_t loaded, difficulty; /* the highest of the workers' */
	uint64_t store_up;           /* the lowest: every worker has its own connection */
	uint64_t budget_used, budget_max;
	uint64_t heap_in_use, heap_free;
};

/*
 * Every worker's counters into *total: this one's, and the others' last
 * (a dead one's counts, not what it had open).  Returns 0, or -1 when the
 * monitor could not give the others'.
 */
int shares_total(struct site *site, struct metrics_share *total);

/*
 * The heartbeat (priv_alive), called from the loop: with several
 * workers, it carries this worker's counters.
 */
void shares_alive(struct server *srv, uint64_t now_ms);

/*
 * With several workers, at start: this worker goes on counting from the
 * counters the one it replaces last sent, so that the sums the endpoint
 * reports do not go back when a worker is restarted.
 */
void shares_inherit(struct server *srv);

#endif
