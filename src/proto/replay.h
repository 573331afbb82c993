/*
 * A replay filter for handshake initiations: remembers 16-byte fingerprints
 * (replay_fingerprint() of the client's ephemeral key) for
 * REPLAY_WINDOW_SECONDS, twice the cookie secret's lifetime, which is as long
 * as a cookie answer stays valid.  A fixed table: REPLAY_SLOTS entries in
 * buckets of REPLAY_WAYS, the bucket picked by a keyed hash so nobody can
 * aim fingerprints at one bucket.  When a bucket is full its oldest entry is
 * overwritten, so under a flood of more than REPLAY_SLOTS fresh handshakes in
 * one window the oldest are forgotten early; a sender must pass the cookie
 * and proof of work checks to get that far.
 *
 * Pure code: no I/O, no allocation, no globals.  replay_init() without a key
 * draws one from libsodium, so the process must have called sodium_init().
 */
#ifndef FIVE_REPLAY_H
#define FIVE_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define REPLAY_SLOTS          65536
#define REPLAY_WAYS           8 /* entries per bucket */
#define REPLAY_FP_LEN         16
#define REPLAY_KEY_LEN        32
#define REPLAY_WINDOW_SECONDS 240 /* 2 * SEALED_COOKIE_SECRET_SECONDS */

struct replay_entry {
	uint8_t fp[REPLAY_FP_LEN];
	uint64_t expires; /* unix time the entry stops counting; 0 when empty */
};

/* About 1.5 MiB: allocate it once (not on the stack) and keep it for the process. */
struct replay_filter {
	uint8_t key[REPLAY_KEY_LEN];
	struct replay_entry slots[REPLAY_SLOTS];
};

/*
 * Empties the filter and sets its bucket key: key (copied) when given, for
 * tests; otherwise a random one, which is what a server should use.
 */
void replay_init(struct replay_filter *f, const uint8_t *key);

/*
 * Looks fp up at time now (unix seconds) and remembers it.  Returns 1 when it
 * is fresh (not seen within REPLAY_WINDOW_SECONDS; it is added), or 0 when
 * it was seen (the entry keeps its original expiry).
 */
int replay_check_and_add(struct replay_filter *f, const uint8_t fp[REPLAY_FP_LEN], uint64_t now);

/* BLAKE2b-128 of data[0..len), the fingerprint to use. */
void replay_fingerprint(const uint8_t *data, size_t len, uint8_t out[REPLAY_FP_LEN]);

/* Zeroes the key and every entry. */
void replay_wipe(struct replay_filter *f);

#endif
