/*
 * What every session of a worker shares: the loop, the configuration in
 * force, the rate tables and budgets, the key material's public halves, the
 * link to the monitor, the audit log, and the list of live sessions.  The
 * daemon (struct server) owns one and fills it; sessions only read it and
 * update the counters and tables in it.  Sessions never reach the daemon
 * above it: when the last one is gone they call session_gone.
 */
#ifndef FIVE_SITE_H
#define FIVE_SITE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "common/log.h"
#include "common/randpool.h"
#include "proto/sealed.h"
#include "server/conf/clients.h"
#include "server/conf/config.h"
#include "server/policy/budget.h"
#include "server/policy/governor.h"
#include "server/policy/metrics.h"

/* A session's id: random bytes (the site's pool), in hexadecimal. */
#define SESSION_ID_BYTES 16
#define SESSION_ID_LEN   (2 * SESSION_ID_BYTES)

struct auditlog;
struct control;
struct early_guard;
struct penalty_table;
struct priv;
struct session;
struct source_table;
struct mux;
struct stream;
struct tls_server;
struct tokens;

struct site {
	uv_loop_t *loop;
	struct config *cfg;       /* the configuration new sessions get; one reference */
	struct session *sessions; /* every live session, newest first */
	size_t nsessions;
	size_t nending;   /* of those, lingering after a final reply, held silently or closing */
	size_t nheld;     /* of those, strangers to a dark server held silently (S_DARK) */
	size_t ndetached; /* of those, detached (S_DETACHED): each keeps a place for its return */
	bool draining;    /* no new request is served */
	struct budget budget; /* relay_memory_max: what sessions' chunks and early bytes take */
	struct stream *budget_held; /* streams with a direction held for the budget (stream.c) */
	struct mux *budget_muxes;   /* multiplexed sessions waiting for the budget (mux.c) */
	size_t mux_streams;         /* streams open in multiplexed sessions, all together */
	size_t ndetachable;         /* detachable sessions, attached or detached (max_detachable) */
	uint64_t copies; /* bytes their copies take, of the relay budget (mux/resume.c) */
	struct source_table *sources; /* connections, and those yet to make a request, by source */
	struct penalty_table *source_failures;   /* authentication failures by source */
	struct penalty_table *identity_failures; /* and by identity */
	struct sealed_server_keys keys;          /* the static key's public half, for handshakes */
	struct governor gov;                     /* handshake load, cookies, budgets */
	struct metrics metrics;                  /* what metrics_listen reports */
	struct client_keys clients;              /* authorized_clients */
	struct tls_server *tls;                  /* TLS context and tls_clients; owned */
	struct tokens *tokens;                   /* token keys and revocations; owned */
	uint8_t sign_pk[32];                     /* the signing key's public half (GETSIGNKEY) */
	char provider[PROOF_PROVIDER_MAX + 1];   /* the name proofs carry; "" when none */
	struct early_guard *early;               /* which 0-RTT data may be acted on; owned */
	struct store *store;     /* shared with other nodes (docs/CLUSTER.md), or NULL; owned */
	struct priv *priv;       /* the monitor, or its checks in-process */
	struct service *workers; /* with several: each worker, as a backend for ATTACH; owned */
	struct control *control; /* the control socket, when configured */
	struct auditlog *audit;
	struct log_ratelimit refusals;         /* log lines remote peers can cause */
	struct log_ratelimit backend_failures; /* ... of backends that cannot be reached */
	bool audit_refusing;    /* audit_required, and sessions are refused for the audit log */
	uint64_t audit_refused; /* sessions refused since that began */
	struct randpool ids;    /* the bytes of sessions' ids */

	/* Called as each session is freed (a drain ends with the last one). */
	void (*session_gone)(void *arg);
	void *session_gone_arg;
};

/*
 * What counts against max_connections: the sessions not yet ending, and
 * the streams of multiplexed ones, each holding a backend's descriptor.
 */
static inline size_t
site_connections(const struct site *site)
{
	return site->nsessions - site->nending + site->mux_streams;
}

#endif
