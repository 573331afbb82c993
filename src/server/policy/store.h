/*
 * The state several nodes share (docs/CLUSTER.md), in a store that speaks
 * the Redis protocol (Redis, Valkey, KeyDB), reached through hiredis on
 * the worker's event loop:
 *
 *   fived:0rtt:ID   a 0-RTT first message acted on: SET NX with an expiry,
 *                   so that at most one node of the cluster acts on it
 *   fived:epoch     when the store began to hold claims (SET NX at each
 *                   connection): a store that restarted empty forgot its
 *                   claims, so nothing stamped at or before its epoch is
 *                   claimed
 *   fived:revoked   a sorted set, token id by expiry, read at start and
 *                   after every reconnection
 *   fived:revoked   also a pub/sub channel: "JTI EXP", pushed to every node
 *   fived:issued:HOUR:ID  tokens issued to an identity (ID: a hash of it) in
 *                   an hour of Unix time, by every node: INCR, with an expiry
 *
 * Failing closed: a claim the store does not answer within store_timeout,
 * or made while it is unreachable, is answered STORE_UNREACHABLE, and its
 * early data is not acted on (the client's 1-RTT path serves it).  The
 * revocations known stay enforced; once the list has not been current
 * for revocation_stale_max, tokens are refused (store_revocations_current).
 */
#ifndef FIVE_STORE_H
#define FIVE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "server/conf/config.h"

#define STORE_ID_LEN      16   /* a claim's identifier: a hash of what is claimed */
#define STORE_RETRY_MS    500  /* between attempts to reach an unreachable store */
#define STORE_TICK_MS     20   /* how often timeouts are looked for */
#define STORE_PENDING_MAX 4096 /* claims awaiting an answer; more are answered unreachable */
/*
 * An epoch starts this much after the node that starts it reads its
 * clock: a node whose clock is behind by less cannot start an epoch
 * before claims the emptied store had.  Node clocks must agree (NTP).
 */
#define STORE_EPOCH_MARGIN_S 1

enum store_answer {
	STORE_FRESH,       /* claimed now: nobody had */
	STORE_SEEN,        /* claimed before, by this node or another */
	STORE_UNREACHABLE, /* no answer in time: act as if seen */
};

typedef void (*store_claim_fn)(void *arg, enum store_answer answer);

struct store_events {
	/* A revocation read from the store, or pushed by a node (this one too). */
	void (*revoked)(void *arg, const char *jti, uint64_t exp);
	/*
	 * The store was reached again, or found emptied: it may have lost the
	 * revocations, which every node then records there again, and pushes
	 * (store_revoke): a node that started since has read an empty list.
	 */
	void (*reconnected)(void *arg);
	void *arg;
};

struct store;
struct store_claim;

/* store_password_file holds one line, its end (LF or CRLF) optional. */
#define STORE_PASSWORD_MAX  1024
#define STORE_PASSWORD_FORM "expected one line of 1 to %d bytes" /* and STORE_PASSWORD_MAX */

/*
 * Whether text[0..len) is a store_password_file's content; *password_len
 * is then the length of the password at its start.  Returns 0 or -1.
 */
int store_password_parse(const char *text, size_t len, size_t *password_len);

/*
 * A store for cfg's store address, connecting at once (and again whenever
 * the connection is lost), authenticated on each connection with AUTH
 * when password (store_password_file's text, password_len bytes) is not
 * NULL: copied.  Returns it (store_free), or NULL after logging why; NULL
 * too, silently, when cfg names no store.
 */
struct store *store_new(uv_loop_t *loop, const struct config *cfg, const char *password,
                        size_t password_len, const struct store_events *ev);

/* Closes the connections; pending claims are not answered.  NULL is a no-op. */
void store_free(struct store *st);

/*
 * Claims id, for something stamped stamp_s (Unix time), for ttl_s
 * seconds.  cb is called once, later, with the answer, unless
 * store_claim_cancel is called first.  Returns the claim, or NULL (cb
 * never called) when the store is unreachable now, or stamp_s is not
 * after the store's epoch.
 */
struct store_claim *store_claim(struct store *st, const uint8_t id[STORE_ID_LEN], uint64_t stamp_s,
                                uint64_t ttl_s, store_claim_fn cb, void *arg);

/* The claim's callback will not be called.  NULL is a no-op. */
void store_claim_cancel(struct store_claim *c);

/*
 * Records a revocation in the store and pushes it to every node.  Returns
 * 0 when it was sent, or -1 when the store is unreachable now.
 */
int store_revoke(struct store *st, const char *jti, uint64_t exp);

/*
 * Whether the revocations this node knows may be relied on now: the list
 * was read and the push channel has been up since, or it went down less
 * than revocation_stale_max ago (as the store was made with; 0: always).
 * NULL, no store: always.
 */
bool store_revocations_current(const struct store *st);

/*
 * The tokens issued to identity this hour by the whole cluster, as this
 * node last learned it (0 when it does not know), and counting one more.
 * The count is learned with the answer to this node's own last count, so
 * a node may issue one token past the quota before it knows: at most one
 * per node and hour.  Without the store, the count stays what was known.
 */
uint64_t store_issued(struct store *st, const char *identity);
void store_count_issued(struct store *st, const char *identity);

/* Whether both connections are up (the metrics endpoint, fivectl). */
bool store_up(const struct store *st);

#endif
