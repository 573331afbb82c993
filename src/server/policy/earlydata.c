#include "server/policy/earlydata.h"

#include <sodium.h>
#include <stdlib.h>

#include "common/keytable.h"
#include "common/log.h"
#include "server/privsep/priv.h"
#include "server/privsep/privops.h"

#define NS_PER_S 1000000000ULL

_Static_assert(EARLY_CLAIM_TTL_S == 2 * PRIVOPS_EARLY_SKEW_S, "a claim outlives the skew");

struct early_guard {
	struct priv *priv;     /* not owned */
	struct keytable *last; /* the newest timestamp acted on, per client key */
	uint64_t floor;        /* ns: nothing at or below is acted on */
	uint64_t reserved;     /* ns: what priv has recorded as possibly acted on */
};

/* A key pushed out takes its timestamp into the floor: nothing at or below it is new. */
static void
on_evict(void *ctx, const struct keytable_value *v)
{
	struct early_guard *g = ctx;

	if (v->count > g->floor)
		g->floor = v->count;
}

struct early_guard *
early_guard_new(struct priv *priv)
{
	struct early_guard *g = calloc(1, sizeof(*g));

	if (g == NULL || (g->last = keytable_new(EARLY_FORGET_MS, EARLY_KEYS_MAX)) == NULL) {
		log_error("out of memory");
		free(g);
		return NULL;
	}
	g->priv = priv;
	keytable_on_evict(g->last, on_evict, g);
	if (priv_early_reserve(priv, 0, &g->floor) != 0) {
		log_error("cannot learn the 0-RTT floor");
		early_guard_free(g);
		return NULL;
	}
	g->reserved = g->floor;
	return g;
}

void
early_guard_claim_id(const uint8_t pk[32], const uint8_t stamp[12], uint8_t out[EARLY_CLAIM_ID_LEN])
{
	crypto_generichash_blake2b_state st;

	crypto_generichash_blake2b_init(&st, NULL, 0, EARLY_CLAIM_ID_LEN);
	crypto_generichash_blake2b_update(&st, pk, 32);
	crypto_generichash_blake2b_update(&st, stamp, 12);
	crypto_generichash_blake2b_final(&st, out, EARLY_CLAIM_ID_LEN);
}

void
early_guard_free(struct early_guard *g)
{
	if (g == NULL)
		return;
	keytable_free(g->last);
	free(g);
}

bool
early_guard_admit(struct early_guard *g, const uint8_t pk[32], uint64_t sec, uint32_t nsec,
                  uint64_t now_s, uint64_t now_ms)
{
	struct keytable_value *last;
	uint64_t stamp;

	if (sec + PRIVOPS_EARLY_SKEW_S < now_s || sec >= now_s + PRIVOPS_EARLY_FUTURE_S ||
	    nsec >= NS_PER_S)
		return false;
	stamp = sec * NS_PER_S + nsec;
	if (stamp <= g->floor)
		return false;
	/* Another worker may have acted on it: the monitor keeps every worker's last. */
	if (priv_shared(g->priv))
		return priv_early_admit(g->priv, pk, stamp) == 1;
	if ((last = keytable_get(g->last, pk, 32, now_ms, 1)) == NULL || stamp <= last->count)
		return false;
	if (stamp > g->reserved && priv_early_reserve(g->priv, stamp, &g->reserved) != 0)
		return false;
	last->count = stamp;
	last->stamp_ms = now_ms;
	return true;
}
