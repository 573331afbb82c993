#include "server/daemon/shares.h"

#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/privmsg.h"
#include "server/daemon/server.h"
#include "server/policy/store.h"
#include "server/privsep/priv.h"
#include "server/session/session.h"

_Static_assert(sizeof(struct metrics_share) <= PRIVMSG_BLOB_MAX, "a share fits a heartbeat");

static bool
count_open(const struct session_info *i, void *arg)
{
	struct metrics_share *s = arg;

	s->open[metrics_transport(i->transport) * METRICS_DIALECTS + metrics_dialect(i->dialect)]++;
	s->live_in += i->bytes_in;
	s->live_out += i->bytes_out;
	return true;
}

/*
 * The worker's heap as its allocator counts it.  RSS alone cannot tell a leak from
 * freed memory the allocator keeps for the next peak (main.c keeps up to
 * MALLOC_KEEP of it on purpose); memory in use can.
 */
static void
count_heap(struct metrics_share *s)
{
#ifdef __SANITIZE_ADDRESS__
	(void)s; /* the sanitizer's allocator, which glibc's counts do not see */
#else
	struct mallinfo2 mi = mallinfo2();

	s->heap_in_use = mi.uordblks + mi.hblkhd;
	s->heap_free = mi.fordblks;
#endif
}

static void
share_of(struct site *site, struct metrics_share *s)
{
	const struct governor *g = &site->gov;

	memset(s, 0, sizeof(*s));
	s->size = sizeof(*s);
	s->m = site->metrics;
	s->handshakes = g->c;
	session_each(site, count_open, s);
	s->cpu_ns_total = g->cpu_ns_total;
	s->cpu_percent = g->percent;
	s->pending = g->pending;
	s->loaded = governor_wants_cookie(g, site->cfg);
	s->difficulty = governor_difficulty(g, site->cfg);
	s->store_up = site->store != NULL && store_up(site->store);
	s->budget_used = site->budget.used;
	s->budget_max = site->budget.max;
	count_heap(s);
}

static uint64_t
highest(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Another worker's share is its word: its reasons are bounded before anything reads them. */
static void
share_bound(struct metrics_share *s)
{
	unsigned i;

	if (s->m.nrefusals > METRICS_REASONS_MAX)
		s->m.nrefusals = METRICS_REASONS_MAX;
	for (i = 0; i < s->m.nrefusals; i++)
		s->m.refusals[i].reason[METRICS_REASON_LEN] = '\0';
}

/* Another worker's share (bounded) added to into. */
static void
share_add(struct metrics_share *into, const struct metrics_share *from)
{
	unsigned i;

	metrics_add(&into->m, &from->m);
	into->handshakes.initiations += from->handshakes.initiations;
	into->handshakes.handshakes += from->handshakes.handshakes;
	into->handshakes.cookies += from->handshakes.cookies;
	into->handshakes.dropped_mac += from->handshakes.dropped_mac;
	into->handshakes.dropped_rate += from->handshakes.dropped_rate;
	into->handshakes.dropped_cookie += from->handshakes.dropped_cookie;
	into->handshakes.dropped_work += from->handshakes.dropped_work;
	into->handshakes.dropped_replay += from->handshakes.dropped_replay;
	into->handshakes.failed += from->handshakes.failed;
	into->handshakes.early_refused += from->handshakes.early_refused;
	into->handshakes.audit_lost += from->handshakes.audit_lost;
	for (i = 0; i < METRICS_TRANSPORTS * METRICS_DIALECTS; i++)
		into->open[i] += from->open[i];
	into->live_in += from->live_in;
	into->live_out += from->live_out;
	into->cpu_ns_total += from->cpu_ns_total;
	into->cpu_percent += from->cpu_percent;
	into->pending += from->pending;
	into->loaded = highest(into->loaded, from->loaded);
	into->difficulty = highest(into->difficulty, from->difficulty);
	into->store_up = into->store_up < from->store_up ? into->store_up : from->store_up;
	into->budget_used += from->budget_used;
	into->budget_max += from->budget_max;
	into->heap_in_use += from->heap_in_use;
	into->heap_free += from->heap_free;
}

/*
 * What a dead worker no longer has: its sessions and their load.  The
 * bytes they had moved stay counted, as its successor counts them.
 */
static void
share_of_the_dead(struct metrics_share *s)
{
	memset(s->open, 0, sizeof(s->open));
	s->cpu_percent = s->pending = s->loaded = s->difficulty = 0;
	s->budget_used = s->budget_max = s->heap_in_use = s->heap_free = 0;
	s->store_up = 1; /* no say in the lowest */
}

/*
 * The share at blobs[at..len) into *s: its length, or 0 when there is
 * none whole; *readable false when it is of another layout (another
 * build of fived), which only its length is read of.
 */
static size_t
share_at(const char *blobs, size_t at, size_t len, struct metrics_share *s, bool *readable)
{
	uint64_t size;

	if (len - at < sizeof(size))
		return 0;
	memcpy(&size, blobs + at, sizeof(size));
	if (size < sizeof(size) || size > len - at)
		return 0;
	if ((*readable = size == sizeof(*s))) {
		memcpy(s, blobs + at, sizeof(*s));
		share_bound(s);
	}
	return (size_t)size;
}

/*
 * This worker's counts as its last heartbeat gave them, in place of its
 * own counts now: every worker answering a scrape then adds the same
 * figures, and a counter read through one worker and then another never
 * goes back.
 */
static void
counts_of(struct metrics_share *into, const struct metrics_share *sent)
{
	into->m = sent->m;
	into->handshakes = sent->handshakes;
	into->live_in = sent->live_in;
	into->live_out = sent->live_out;
	into->cpu_ns_total = sent->cpu_ns_total;
}

/*
 * The next readable share of priv_shares' answer blobs[*at..len) into
 * *s, with its flags; false at the end.
 */
static bool
next_share(const char *blobs, size_t len, size_t *at, uint8_t *flags, struct metrics_share *s)
{
	bool readable = false;
	size_t n;

	while (!readable && *at < len) {
		*flags = (uint8_t)blobs[(*at)++];
		if ((n = share_at(blobs, *at, len, s, &readable)) == 0)
			return false;
		*at += n;
	}
	return readable;
}

int
shares_total(struct site *site, struct metrics_share *total)
{
	struct metrics_share other;
	size_t len, at;
	uint8_t flags;
	char *blobs;

	share_of(site, total);
	if (!priv_shared(site->priv))
		return 0;
	if (priv_shares(site->priv, &blobs, &len) != 0)
		return -1;
	/* Before its first heartbeat, this worker's own counts are its own (inherited). */
	for (at = 0; next_share(blobs, len, &at, &flags, &other);)
		if ((flags & PRIV_SHARE_ASKING) && (flags & PRIV_SHARE_LIVE))
			counts_of(total, &other);
	for (at = 0; next_share(blobs, len, &at, &flags, &other);) {
		if (flags & PRIV_SHARE_ASKING)
			continue;
		if (!(flags & PRIV_SHARE_LIVE))
			share_of_the_dead(&other);
		share_add(total, &other);
	}
	free(blobs);
	return 0;
}

void
shares_inherit(struct server *srv)
{
	struct site *site = &srv->site;
	struct metrics_share last;
	bool readable;
	char *blob;
	size_t len;

	if (!priv_shared(site->priv) || priv_inherit(site->priv, &blob, &len) != 0)
		return;
	if (share_at(blob, 0, len, &last, &readable) != 0 && readable) {
		site->metrics = last.m;
		site->metrics.closed_bytes_in += last.live_in;
		site->metrics.closed_bytes_out += last.live_out;
		site->gov.c = last.handshakes;
		site->gov.cpu_ns_total = last.cpu_ns_total;
	}
	free(blob);
}

void
shares_alive(struct server *srv, uint64_t now_ms)
{
	struct priv *priv = srv->site.priv;
	struct metrics_share *mine = NULL;

	/* Counted only when the heartbeat goes: it walks every session. */
	if (priv_shared(priv) && priv_alive_due(priv, now_ms) &&
	    (mine = malloc(sizeof(*mine))) != NULL)
		share_of(&srv->site, mine);
	priv_alive(priv, now_ms, mine, mine != NULL ? sizeof(*mine) : 0);
	free(mine);
}
