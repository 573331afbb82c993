/*
 * Whether a sealed first message's early data may be acted on (0-RTT):
 * at most once per node, across restarts of the worker and of fived.
 *
 * In memory, the WireGuard rule: a client key's timestamps must grow,
 * within PRIVOPS_EARLY_SKEW_S of our clock.  Across restarts, a floor the
 * privileged side keeps on disk: early data is acted on only above the
 * floor, and the floor is raised past a timestamp (durably, a little
 * ahead so that this is rare) before the timestamp is acted on.  A new
 * worker starts above everything its predecessors may have acted on;
 * during the first seconds after a restart, clients fall back to the
 * 1-RTT path, which is always safe.  A client key pushed out of the full
 * table raises the floor to its last timestamp, so forgetting it cannot
 * reopen a replay.  With several workers (`workers`), a replay may come
 * from another address, to another worker: the table is then the
 * monitor's, one for all of them (PRIV_EARLY_ADMIT).
 *
 * early_guard_admit is the one question the sealed transport asks: a
 * store shared by several nodes answers it the same way.
 */
#ifndef FIVE_EARLYDATA_H
#define FIVE_EARLYDATA_H

#include <stdbool.h>
#include <stdint.h>

#include "server/privsep/privops.h"

struct priv;
struct early_guard;

/* Client keys whose last timestamp is kept, and for how long after it was used. */
#define EARLY_KEYS_MAX PRIVOPS_EARLY_KEYS_MAX
#define EARLY_FORGET_MS                                                                            \
	PRIVOPS_EARLY_FORGET_MS /* twice the skew: older ones fail the clock check */

/*
 * With a store (docs/CLUSTER.md), early data this node would act on is
 * claimed there first, under a hash of the client key and its timestamp,
 * for twice the clock skew allowed: whatever clocks the nodes keep within
 * it, a timestamp is too old everywhere before its claim is forgotten.
 */
#define EARLY_CLAIM_TTL_S  (2 * 600)
#define EARLY_CLAIM_ID_LEN 16

/* The claim's identifier for early data from client key pk stamped stamp (TAI64N). */
void early_guard_claim_id(const uint8_t pk[32], const uint8_t stamp[12],
                          uint8_t out[EARLY_CLAIM_ID_LEN]);

/* A guard asking priv for its floor.  Returns it (early_guard_free), or NULL after logging why. */
struct early_guard *early_guard_new(struct priv *priv);

void early_guard_free(struct early_guard *g);

/*
 * Whether early data from client key pk, stamped sec seconds and nsec
 * nanoseconds (TAI64N, as Unix time), may be acted on at now_s (Unix) /
 * now_ms (monotonic); if so it is recorded, and the same stamp is refused
 * from then on.  Refusal only means "use the 1-RTT path".
 */
bool early_guard_admit(struct early_guard *g, const uint8_t pk[32], uint64_t sec, uint32_t nsec,
                       uint64_t now_s, uint64_t now_ms);

#endif
