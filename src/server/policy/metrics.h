/*
 * Counters for the metrics endpoint (metrics_listen), kept by the
 * sessions as things happen: sessions closed by transport and dialect,
 * refusals by reason, authentication failures by method, relayed bytes
 * of closed sessions, and the time backends take to be reached.  What is
 * true of the live sessions now (how many, their bytes so far) is read
 * from them when asked (session_each), so that nothing here can drift.
 * Pure: no I/O.
 */
#ifndef FIVE_METRICS_H
#define FIVE_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/auth.h"

/* Transports and dialects, as labels. */
#define METRICS_TRANSPORTS 3 /* plain, sealed, tls */
#define METRICS_DIALECTS   4 /* none (no request yet), text, usp, legacy (a legacy backend's) */

/* Distinct refusal reasons counted each by itself; any more count as "other". */
#define METRICS_REASONS_MAX 64
#define METRICS_REASON_LEN  96

/* The backend connect histogram's upper bounds, in microseconds; then +Inf. */
#define METRICS_CONNECT_BUCKETS 12

struct metrics_reason {
	char reason[METRICS_REASON_LEN + 1];
	uint64_t count;
};

struct metrics {
	uint64_t accepted;
	uint64_t closed[METRICS_TRANSPORTS][METRICS_DIALECTS];
	uint64_t closed_bytes_in, closed_bytes_out;
	struct metrics_reason refusals[METRICS_REASONS_MAX];
	unsigned nrefusals;
	uint64_t refusals_other;
	uint64_t auth_failures[AUTH_METHOD_COUNT];
	uint64_t connect_buckets[METRICS_CONNECT_BUCKETS + 1]; /* the last: above every bound */
	uint64_t connect_count, connect_sum_us, connect_failures;
};

/* The label names, by index. */
extern const char *const metrics_transport_names[METRICS_TRANSPORTS];
extern const char *const metrics_dialect_names[METRICS_DIALECTS];
extern const uint64_t metrics_connect_bounds_us[METRICS_CONNECT_BUCKETS];

/* The index of a transport ("plain", "sealed", "tls") or dialect ("none", "text", "usp", "legacy").
 */
unsigned metrics_transport(const char *name);
unsigned metrics_dialect(const char *name);

/* A session closed, with its transport, dialect and relayed bytes. */
void metrics_closed(struct metrics *m, const char *transport, const char *dialect, uint64_t in,
                    uint64_t out);

/* A session refused for reason (copied; truncated to METRICS_REASON_LEN). */
void metrics_refused(struct metrics *m, const char *reason);

/*
 * Another worker's counters (workers) added to into's: reasons are
 * counted by their text, whichever order each worker met them in.
 */
void metrics_add(struct metrics *into, const struct metrics *from);

/* An authentication that failed, by method. */
void metrics_auth_failed(struct metrics *m, enum auth_method method);

/* A backend reached after us microseconds (ok), or not reached at all. */
void metrics_connect(struct metrics *m, bool ok, uint64_t us);

#endif
