/*
 * The handshake governor: how loaded fived is by handshakes, and what it
 * asks of clients because of it.
 *
 * Load is the CPU time spent in handshakes over the last second, as a
 * percentage of a core, or the number of handshakes waiting.  Above
 * handshake_cpu_high fived is loaded: it answers first messages with a
 * cookie and a proof-of-work demand instead of doing any Diffie-Hellman,
 * raising the demanded work each tick the load stays high; below
 * handshake_cpu_low it lowers the work again and, at the minimum,
 * stops asking (hysteresis).  Independently, each source (an IPv4 address
 * or an IPv6 /64) has a token bucket of handshakes per second, a larger
 * one for clients that present a valid cookie, so that one source cannot
 * take all the handshake CPU.
 */
#ifndef FIVE_GOVERNOR_H
#define FIVE_GOVERNOR_H

#include <stdbool.h>
#include <stdint.h>

#include "common/addr.h"
#include "proto/replay.h"
#include "proto/sealed.h"
#include "server/conf/config.h"
#include "server/policy/budget.h"

#define GOVERNOR_TICK_MS       250
#define GOVERNOR_PENDING_HIGH  512 /* handshakes waiting: loaded whatever the CPU says */
#define GOVERNOR_COOKIE_FACTOR 4   /* a valid cookie buys this many times the budget */
#define GOVERNOR_SOURCES_MAX   65536
#define GOVERNOR_REPORT_MS     10000

struct keytable;

struct governor_counters {
	uint64_t initiations;    /* first messages seen */
	uint64_t handshakes;     /* completed */
	uint64_t cookies;        /* cookie replies sent */
	uint64_t dropped_mac;    /* bad mac1 */
	uint64_t dropped_rate;   /* over a source's budget */
	uint64_t dropped_cookie; /* a cookie that is not ours, or stale */
	uint64_t dropped_work;   /* not enough proof of work */
	uint64_t dropped_replay; /* an ephemeral key seen before */
	uint64_t failed;         /* Noise failed after the checks */
	uint64_t early_refused;  /* 0-RTT data the store did not let us act on */
	uint64_t audit_lost;     /* audit records that could not be written */
};

struct governor {
	struct priv *priv; /* asked for the cluster's cookie secrets; not owned */
	struct sealed_cookie_secrets secrets;
	uint64_t secrets_asked;       /* the bucket (+1) the monitor was last asked for; 0 never */
	struct replay_filter *replay; /* owned */
	struct keytable *budget;      /* per source, without a cookie; owned */
	struct keytable *cookie_budget; /* per source, with a valid cookie; owned */
	uint64_t window_start_ms;
	uint64_t cpu_ns;       /* in handshakes, in the current window */
	uint64_t cpu_ns_total; /* in handshakes, since the start */
	unsigned percent;      /* the last full window, percent of a core */
	unsigned pending;      /* handshakes started, not finished */
	bool loaded;
	unsigned difficulty; /* bits demanded while loaded */
	uint64_t last_report_ms;
	struct governor_counters c, reported;
	uint64_t reported_pauses; /* the relay budget's count at the last report */
};

/* Returns 0, or -1 when memory is short.  governor_free undoes it. */
struct priv;
int governor_init(struct governor *g, struct priv *priv);
void governor_free(struct governor *g);

/*
 * Every GOVERNOR_TICK_MS: rolls the load window, adjusts load and
 * difficulty, logs changes.  The same line says how much of the relay
 * budget is used and how many readers it paused since the last line, and
 * pauses alone are worth a line (at most every GOVERNOR_REPORT_MS).
 */
void governor_tick(struct governor *g, const struct config *cfg, const struct budget *relay,
                   uint64_t now_ms);

/*
 * Brings the cookie secrets to the bucket of now (Unix seconds): with
 * cluster_key_file, the cluster's (from the monitor, once per bucket), so
 * that every node makes and takes the same cookies; without it, or when
 * the monitor cannot give them, random ones of this node.
 */
void governor_secrets_update(struct governor *g, const struct config *cfg, uint64_t now);

/* Whether first messages must now come with a cookie and work. */
bool governor_wants_cookie(const struct governor *g, const struct config *cfg);

/* The proof of work demanded now, in leading zero bits. */
unsigned governor_difficulty(const struct governor *g, const struct config *cfg);

/*
 * Takes one handshake from source's budget (the cookie budget when
 * with_cookie).  Returns true when there was one.
 */
bool governor_admit(struct governor *g, const struct config *cfg,
                    const uint8_t source[SOURCE_KEY_LEN], bool with_cookie, uint64_t now_ms);

/* Adds the CPU time of one handshake's Diffie-Hellman work. */
void governor_charge(struct governor *g, uint64_t cpu_ns);

/* The CPU time of this thread so far, in nanoseconds (to charge handshakes). */
uint64_t governor_thread_ns(void);

#endif
