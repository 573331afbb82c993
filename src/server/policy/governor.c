#include "server/policy/governor.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/keytable.h"
#include "common/log.h"
#include "server/privsep/priv.h"

#define WINDOW_MS     1000
#define BUDGET_FORGET 60000 /* a source's bucket is forgotten a minute after its last use */
#define MILLI         1000  /* tokens are counted in thousandths */

int
governor_init(struct governor *g, struct priv *priv)
{
	memset(g, 0, sizeof(*g));
	g->priv = priv;
	g->replay = malloc(sizeof(*g->replay));
	g->budget = keytable_new(BUDGET_FORGET, GOVERNOR_SOURCES_MAX);
	g->cookie_budget = keytable_new(BUDGET_FORGET, GOVERNOR_SOURCES_MAX);
	if (g->replay == NULL || g->budget == NULL || g->cookie_budget == NULL) {
		governor_free(g);
		return -1;
	}
	replay_init(g->replay, NULL);
	return 0;
}

void
governor_free(struct governor *g)
{
	if (g->replay != NULL)
		replay_wipe(g->replay);
	free(g->replay);
	keytable_free(g->budget);
	keytable_free(g->cookie_budget);
	sealed_cookie_secrets_wipe(&g->secrets);
	memset(g, 0, sizeof(*g));
}

void
governor_secrets_update(struct governor *g, const struct config *cfg, uint64_t now)
{
	uint64_t bucket = sealed_cookie_bucket(now);
	uint8_t cur[SEALED_KEY_LEN], prev[SEALED_KEY_LEN];

	if (cfg->cluster_key_file[0] == '\0' || g->secrets_asked == bucket + 1) {
		sealed_cookie_secrets_update(&g->secrets, now);
		return;
	}
	g->secrets_asked = bucket + 1;
	if (bucket > 0 && priv_cookie_secret(g->priv, bucket, cur) == 0 &&
	    priv_cookie_secret(g->priv, bucket - 1, prev) == 0)
		sealed_cookie_secrets_set(&g->secrets, bucket, cur, prev);
	else
		sealed_cookie_secrets_update(&g->secrets, now);
	sodium_memzero(cur, sizeof(cur));
	sodium_memzero(prev, sizeof(prev));
}

uint64_t
governor_thread_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
governor_charge(struct governor *g, uint64_t cpu_ns)
{
	g->cpu_ns += cpu_ns;
	g->cpu_ns_total += cpu_ns;
}

static void
report(struct governor *g, const struct budget *relay, uint64_t now_ms, const char *why)
{
	const struct governor_counters *c = &g->c, *r = &g->reported;

	log_info("handshakes: %s; load %u%%, %s, work %u bits; last %llus: %llu first messages, "
	         "%llu done, %llu cookies sent, dropped for mac %llu, rate %llu, cookie %llu, "
	         "work %llu, replay %llu; %llu failed; audit records lost %llu; relay memory %llu "
	         "of %llu bytes, %llu pauses",
	         why, g->percent, g->loaded ? "loaded" : "not loaded",
	         g->loaded ? g->difficulty : 0,
	         (unsigned long long)((now_ms - g->last_report_ms) / 1000),
	         (unsigned long long)(c->initiations - r->initiations),
	         (unsigned long long)(c->handshakes - r->handshakes),
	         (unsigned long long)(c->cookies - r->cookies),
	         (unsigned long long)(c->dropped_mac - r->dropped_mac),
	         (unsigned long long)(c->dropped_rate - r->dropped_rate),
	         (unsigned long long)(c->dropped_cookie - r->dropped_cookie),
	         (unsigned long long)(c->dropped_work - r->dropped_work),
	         (unsigned long long)(c->dropped_replay - r->dropped_replay),
	         (unsigned long long)(c->failed - r->failed),
	         (unsigned long long)(c->audit_lost - r->audit_lost),
	         (unsigned long long)relay->used, (unsigned long long)relay->max,
	         (unsigned long long)(relay->pauses - g->reported_pauses));
	g->reported = *c;
	g->reported_pauses = relay->pauses;
	g->last_report_ms = now_ms;
}

/* Anything dropped since the last report: worth a line, at most every GOVERNOR_REPORT_MS. */
static bool
drops_since_report(const struct governor *g)
{
	const struct governor_counters *c = &g->c, *r = &g->reported;

	return c->dropped_mac != r->dropped_mac || c->dropped_rate != r->dropped_rate ||
	       c->dropped_cookie != r->dropped_cookie || c->dropped_work != r->dropped_work ||
	       c->dropped_replay != r->dropped_replay || c->cookies != r->cookies ||
	       c->audit_lost != r->audit_lost;
}

void
governor_tick(struct governor *g, const struct config *cfg, const struct budget *relay,
              uint64_t now_ms)
{
	bool was_loaded = g->loaded;
	unsigned was_difficulty = g->difficulty;

	/* The first tick starts the clocks: windows and reports count from fived's start. */
	if (g->last_report_ms == 0) {
		g->last_report_ms = now_ms;
		g->window_start_ms = now_ms;
	}
	governor_secrets_update(g, cfg, (uint64_t)time(NULL));
	if (now_ms - g->window_start_ms >= WINDOW_MS) {
		g->percent = (unsigned)(g->cpu_ns / 10000 / (now_ms - g->window_start_ms));
		g->cpu_ns = 0;
		g->window_start_ms = now_ms;
	}
	if (g->percent >= cfg->handshake_cpu_high || g->pending >= GOVERNOR_PENDING_HIGH) {
		if (!g->loaded)
			g->difficulty = (unsigned)cfg->pow_min;
		else if (g->difficulty < cfg->pow_max)
			g->difficulty++;
		g->loaded = true;
	} else if (g->loaded && g->percent < cfg->handshake_cpu_low &&
	           g->pending < GOVERNOR_PENDING_HIGH / 2) {
		if (g->difficulty > cfg->pow_min)
			g->difficulty--;
		else
			g->loaded = false;
	}
	if (g->loaded != was_loaded || g->difficulty != was_difficulty)
		report(g, relay, now_ms, g->loaded != was_loaded ? "load changed" : "work changed");
	else if (now_ms - g->last_report_ms >= GOVERNOR_REPORT_MS &&
	         (drops_since_report(g) || relay->pauses != g->reported_pauses))
		report(g, relay, now_ms, "summary");
}

bool
governor_wants_cookie(const struct governor *g, const struct config *cfg)
{
	return cfg->cookie_always || g->loaded;
}

unsigned
governor_difficulty(const struct governor *g, const struct config *cfg)
{
	if (g->loaded)
		return g->difficulty;
	return cfg->cookie_always ? (unsigned)cfg->pow_min : 0;
}

bool
governor_admit(struct governor *g, const struct config *cfg, const uint8_t source[SOURCE_KEY_LEN],
               bool with_cookie, uint64_t now_ms)
{
	struct keytable *t = with_cookie ? g->cookie_budget : g->budget;
	uint64_t rate = cfg->handshake_rate * (with_cookie ? GOVERNOR_COOKIE_FACTOR : 1);
	uint64_t capacity = 2 * rate * MILLI;
	struct keytable_value *v = keytable_get(t, source, SOURCE_KEY_LEN, now_ms, 1);
	uint64_t refill;

	/* Out of memory: refuse, as for a source over its budget. */
	if (v == NULL)
		return false;
	/* The value counts what the source has spent (a new one: nothing), refilled over time. */
	refill = (now_ms - v->stamp_ms) * rate;
	v->count = v->count > refill ? v->count - refill : 0;
	v->stamp_ms = now_ms;
	if (v->count + MILLI > capacity)
		return false;
	v->count += MILLI;
	return true;
}
