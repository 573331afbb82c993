#include "server/policy/metrics.h"

#include <string.h>

#include "common/util.h"

const char *const metrics_transport_names[METRICS_TRANSPORTS] = {"plain", "sealed", "tls"};
const char *const metrics_dialect_names[METRICS_DIALECTS] = {"none", "text", "usp", "legacy"};

/* From half a millisecond (a local backend) to ten seconds (connect_timeout's order). */
const uint64_t metrics_connect_bounds_us[METRICS_CONNECT_BUCKETS] = {
        500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 2500000, 10000000,
};

static unsigned
index_of(const char *const *names, unsigned n, const char *name)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return 0;
}

unsigned
metrics_transport(const char *name)
{
	return index_of(metrics_transport_names, METRICS_TRANSPORTS, name);
}

unsigned
metrics_dialect(const char *name)
{
	return index_of(metrics_dialect_names, METRICS_DIALECTS, name);
}

void
metrics_closed(struct metrics *m, const char *transport, const char *dialect, uint64_t in,
               uint64_t out)
{
	m->closed[metrics_transport(transport)][metrics_dialect(dialect)]++;
	m->closed_bytes_in += in;
	m->closed_bytes_out += out;
}

static void
count_refusals(struct metrics *m, const char *reason, uint64_t n)
{
	char key[METRICS_REASON_LEN + 1];
	unsigned i;

	str_copy(key, reason, sizeof(key));
	for (i = 0; i < m->nrefusals; i++) {
		if (strcmp(m->refusals[i].reason, key) == 0) {
			m->refusals[i].count += n;
			return;
		}
	}
	if (m->nrefusals == METRICS_REASONS_MAX) {
		m->refusals_other += n;
		return;
	}
	str_copy(m->refusals[m->nrefusals].reason, key, sizeof(key));
	m->refusals[m->nrefusals++].count = n;
}

void
metrics_refused(struct metrics *m, const char *reason)
{
	count_refusals(m, reason, 1);
}

static void
add_all(uint64_t *into, const uint64_t *from, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		into[i] += from[i];
}

void
metrics_add(struct metrics *into, const struct metrics *from)
{
	unsigned i;

	into->accepted += from->accepted;
	add_all(&into->closed[0][0], &from->closed[0][0], METRICS_TRANSPORTS * METRICS_DIALECTS);
	into->closed_bytes_in += from->closed_bytes_in;
	into->closed_bytes_out += from->closed_bytes_out;
	for (i = 0; i < from->nrefusals && i < METRICS_REASONS_MAX; i++)
		count_refusals(into, from->refusals[i].reason, from->refusals[i].count);
	into->refusals_other += from->refusals_other;
	add_all(into->auth_failures, from->auth_failures, AUTH_METHOD_COUNT);
	add_all(into->connect_buckets, from->connect_buckets, METRICS_CONNECT_BUCKETS + 1);
	into->connect_count += from->connect_count;
	into->connect_sum_us += from->connect_sum_us;
	into->connect_failures += from->connect_failures;
}

void
metrics_auth_failed(struct metrics *m, enum auth_method method)
{
	if ((unsigned)method < AUTH_METHOD_COUNT)
		m->auth_failures[method]++;
}

void
metrics_connect(struct metrics *m, bool ok, uint64_t us)
{
	unsigned i;

	if (!ok) {
		m->connect_failures++;
		return;
	}
	for (i = 0; i < METRICS_CONNECT_BUCKETS && us > metrics_connect_bounds_us[i]; i++)
		;
	m->connect_buckets[i]++;
	m->connect_count++;
	m->connect_sum_us += us;
}
