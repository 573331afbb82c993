/*
 * The daemon as a whole: the event loop, the configuration in force, the
 * listeners, the live sessions, signals, reload and drain.
 */
#ifndef FIVE_SERVER_H
#define FIVE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "common/log.h"
#include "server/budget.h"
#include "server/clients.h"
#include "server/config.h"
#include "server/governor.h"
#include "server/seal.h"

struct auditlog;
struct control;
struct listener;
struct penalty_table;
struct priv;
struct early_guard;
struct session;
struct source_table;
struct tls_server;

struct server {
	uv_loop_t *loop;
	struct config *cfg; /* the configuration new sessions get; one reference */
	struct listener *listeners;
	struct session *sessions; /* every live session, newest first */
	size_t nsessions;
	size_t nending; /* of those, lingering after a final reply, held silently or closing */
	size_t nheld;   /* of those, strangers to a dark server held silently (S_DARK) */
	struct budget budget; /* relay_memory_max: what sessions' chunks and early bytes take */
	struct session *budget_held;  /* sessions with a direction held for the budget (relay.c) */
	struct source_table *sources; /* connections, and those yet to make a request, by source */
	struct penalty_table *source_failures;   /* authentication failures by source */
	struct penalty_table *identity_failures; /* and by identity */
	struct seal_keys keys;                   /* the static key's public half, for handshakes */
	struct governor gov;                     /* handshake load, cookies, budgets */
	struct client_keys clients;              /* authorized_clients */
	struct tls_server *tls;                  /* TLS context and tls_clients; owned */
	struct tokens *tokens;                   /* token keys and revocations; owned */
	struct early_guard *early;               /* which 0-RTT data may be acted on; owned */
	uv_timer_t gov_timer;
	struct priv *priv;
	struct control *control; /* the control socket, when configured */
	struct auditlog *audit;
	bool draining;
	int exit_status;
	uv_signal_t sig_hup, sig_term, sig_int;
	uv_timer_t drain_timer;
	struct log_ratelimit refusals;         /* log lines remote peers can cause */
	struct log_ratelimit backend_failures; /* ... of backends that cannot be reached */
	struct log_ratelimit fd_shortage;      /* ... of connections refused for descriptors */
	uint64_t fd_limit;                     /* RLIMIT_NOFILE, read at start */
	unsigned fd_reserve;    /* a connection accepted this close to the limit is refused */
	int spare_fd;           /* closed to answer a connection when accept runs out */
	bool audit_refusing;    /* audit_required, and sessions are refused for the audit log */
	uint64_t audit_refused; /* sessions refused since that began */
};

/*
 * Builds a server on loop with cfg (the server takes the reference),
 * getting its keys, files and sockets through priv, and opens its
 * listeners.  Returns 0, or -1 after logging why.
 */
int server_start(struct server *srv, uv_loop_t *loop, struct config *cfg, struct priv *priv);

/* Re-reads the configuration file; on any error keeps the one in force. */
void server_reload(struct server *srv);

/* Stops accepting, lets established streams finish for drain_timeout, then stops. */
void server_drain(struct server *srv);

/* Called by a session as it is freed; finishes a drain when it was the last. */
void server_session_gone(struct server *srv);

#endif
