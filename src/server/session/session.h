/*
 * One client connection, from accept to close: the text dialect, the choice
 * of a service, reaching its backend, and relaying.  Every session ends
 * through session_close, in whatever state it is.
 */
#ifndef FIVE_SESSION_H
#define FIVE_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/addr.h"
#include "common/buf.h"
#include "proto/usp.h"
#include "server/conf/config.h"
#include "server/policy/sources.h"
#include "server/transport/transport.h"

#define SESSION_ID_BYTES 16
#define SESSION_ID_LEN   (2 * SESSION_ID_BYTES)

/*
 * Client bytes held before a service is granted: a request line and
 * pipelined data.  Reading pauses when less than one read's worth of room
 * (and what a transport may hold back) is left: see early_input.
 */
#define EARLY_DATA_MAX (64 * 1024)
#define SESSION_IN_MAX (USP_LINE_MAX + EARLY_DATA_MAX + TRANSPORT_SLACK)

/* Commands a client may send before it selects a service. */
#define COMMANDS_MAX 32

/* Reply text queued but not yet taken by a client that keeps sending commands. */
#define REPLY_BACKLOG_MAX (64 * 1024)

/* After a final reply: how long, and how many bytes, to read and discard. */
#define LINGER_MS        2000
#define LINGER_BYTES_MAX (256 * 1024)

/* ...and how long when many sessions are ending at once (a flood of refusals). */
#define LINGER_BUSY_MS 100

/* A connection refused at once: reads of what it already sent, dropped before it is closed. */
#define REJECT_DRAIN_READS 16

enum session_state {
	S_COMMAND,    /* reading request lines */
	S_AUTH,       /* reading the lines of an authentication exchange */
	S_AUTH_WAIT,  /* an exchange waits (PAM, a penalty delay); input is held */
	S_CONNECTING, /* a service was chosen; its backend is being reached */
	S_RELAY,      /* bytes flow both ways */
	S_LINGER,     /* a final reply is on its way; input is read and discarded */
	S_DARK,       /* a stranger to a dark server: told nothing, held until its deadline */
	S_CLOSED,     /* handles are closing; freed after the last close callback */
};

union stream_handle {
	uv_handle_t handle;
	uv_stream_t stream;
	uv_tcp_t tcp;
	uv_pipe_t pipe;
};

/*
 * One direction of a session, named by its destination: up is towards
 * the backend, down towards the client (replies included).
 */
struct relay_dir {
	uv_shutdown_t shutdown_req;
	bool eof;      /* the source side ended its stream */
	bool shut;     /* the shutdown of the destination's write side completed */
	bool paused;   /* reading the source is stopped: this session's queue is full */
	bool held;     /* reading the source is stopped: the relay budget is reached */
	bool dropping; /* the destination stopped reading (a program that exited): drop the rest */
	size_t queued; /* memory of the chunks written towards the destination, not yet freed */
	uint64_t bytes;
};

struct session {
	struct site *site;
	struct config *cfg; /* one reference, for the session's life */
	struct session *prev, *next;
	struct source_waiter waiter; /* among its source's connections yet to make a request */
	struct session *budget_prev, *budget_next; /* the server's budget_held list (relay.c) */
	bool budget_listed;
	enum session_state state;
	char id[SESSION_ID_LEN + 1];

	union stream_handle client;
	bool client_open;
	bool detected; /* the first byte has said which dialect or transport */
	struct sockaddr_storage peer, local;
	bool peer_is_ip;
	char peer_ip[ADDR_IP_MAX];
	uint16_t peer_port;
	uint8_t source_key[SOURCE_KEY_LEN];
	struct source *source; /* counted in the server's sources while set */

	struct caller *caller;      /* the authenticated identity, or NULL; owned */
	struct auth_exchange *auth; /* an authentication in progress, or NULL; owned */
	struct usp_session *usp;    /* the USP dialect's state, NULL for text; owned */
	bool dialect_known;         /* the first byte of plaintext has said which */
	unsigned auth_failures;
	bool encrypted;                         /* the session is sealed or in TLS */
	struct transport *transport;            /* NULL: plain TCP; owned, freed by session_free */
	uint8_t binding[TRANSPORT_BINDING_MAX]; /* channel binding for signatures; empty when plain
	                                         */
	size_t binding_len;

	const struct vhost *vhost;
	const struct service *svc;
	char requested[NAME_MAX_LEN + 1];
	unsigned commands;
	struct buf in;     /* client bytes not yet consumed, before S_RELAY */
	size_t in_charged; /* what of in is charged to the relay budget: its allocation */
	bool client_eof_early;
	uint64_t linger_bytes;

	uv_timer_t timer; /* request, connect, idle or linger deadline */
	uint64_t last_activity_ms;

	union stream_handle backend;
	bool backend_open;
	bool backend_reset; /* closed with a TCP reset, not an end of stream */
	uv_connect_t connect_req;
	uv_getaddrinfo_t resolve_req;
	bool resolving;
	struct addrinfo *candidates, *next_candidate;

	struct relay_dir up;   /* client -> backend */
	struct relay_dir down; /* backend -> client */

	uint64_t started_ms;
	unsigned closing_handles;
	const char *close_reason;
};

/*
 * Starts a session for a connection accepted onto fd, a TCP or Unix stream
 * socket, which the session takes over (it is closed on every failure).
 * busy, when not NULL, is the reason to refuse the connection at once,
 * before anything is read.  The session is owned by site's session list and
 * frees itself when it ends.
 */
void session_accept(struct site *site, int fd, bool is_tcp, const char *busy);

/*
 * Ends the session: writes the audit record, stops every timer and
 * I/O, closes every handle.  Safe to call in any state, and more than once.
 */
void session_close(struct session *s, const char *reason);

/*
 * Ends the session after its client's stream turned out truncated or
 * damaged: a TCP backend is reset rather than closed, so that the service
 * never takes a cut-short stream for a complete one.
 */
void session_abort(struct session *s, const char *reason);

/* Sends "- reason" and closes gracefully, discarding what the client still sends. */
void session_refuse(struct session *s, const char *reason);

/*
 * session_refuse with the reply already written, text[0..len): reason
 * (static) goes to the log and the audit record.
 */
void session_refuse_with(struct session *s, const char *reason, const char *text, size_t len);

/* The client may use svc: reach its backend (the reply comes with the relay). */
void session_start_service(struct session *s, const struct service *svc);

/* Closes gracefully after what is already queued, reading and discarding meanwhile. */
void session_finish(struct session *s, const char *reason);

/* Called by the backend code when the service's backend is reached (err 0) or not. */
void session_backend_ready(struct session *s, int err);

/*
 * Writes a JSON audit record for this session with extra fields (a stolen
 * json_t *).  Returns 0, or -1 when the record was lost (and counted).
 */
int session_audit(struct session *s, const char *event, void *extra);

/* Queues bytes to the client, copying them.  Returns 0 or -1. */
int session_send(struct session *s, const void *data, size_t len);

/*
 * Makes caller (owned from now on) the session's identity and writes its
 * "authenticated" audit record, with extra fields (a json_t *, stolen, may
 * be NULL).  Only a token may replace an identity the session has: any
 * other second one is refused (freed) with -1.  Returns 0 or -1.
 */
struct caller;
int session_set_caller(struct session *s, struct caller *caller, void *extra);

/* Moves the session to a new state, logging the transition at debug level. */
void session_set_state(struct session *s, enum session_state next);

/* (Re)starts reading the client. */
void session_read_client(struct session *s);

/* Handles the complete lines held from the client while the state reads lines. */
void session_process_input(struct session *s);

/* The deadline for the request phase, from now (after an authentication). */
void session_restart_request_timer(struct session *s);

/* The deadline for an authentication exchange, from now. */
void session_start_auth_timer(struct session *s);

/* The identity a service may learn: NULL when none, or when the service withholds it. */
const char *session_identity(const struct session *s);

/* Whether the service may learn the client's address (not when it withholds identity). */
bool session_shows_peer(const struct session *s);

/*
 * Relay (relay.c): answers "+" to the client, writes header (a PROXY
 * header, may be empty) and the held early bytes to the backend, and starts
 * moving bytes both ways.
 */
void relay_start(struct session *s, const void *header, size_t header_len);

/* Relay: a read result from the client while in S_RELAY. */
void relay_client_data(struct session *s, ssize_t nread, const uv_buf_t *buf);

/*
 * The allocation callback for reading a session's client or backend
 * (handle data: the session): a chunk charged to the relay budget, as
 * large as budget_read_size allows.
 */
void relay_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/*
 * Queues a copy of data to dst (through the transport, for the client),
 * charged to the relay budget when dst is the client or the backend.
 * Returns 0 or -1.
 */
int relay_write_copy(struct session *s, uv_stream_t *dst, const void *data, size_t len);

/*
 * Queues a chunk's first len bytes to the client, raw: for transports,
 * whose chunks are charged to the relay budget (s->site->budget).  The
 * chunk is freed when written, or at once on failure.  Returns 0 or -1.
 */
struct chunk;
int relay_client_write(struct session *s, struct chunk *c, size_t len);

/* The relay budget fell below its low-water mark: every held direction reads again (arg: site). */
void relay_budget_low(void *arg);

/* Takes a closing session off the list of sessions held for the budget. */
void relay_forget(struct session *s);

/* Frees the client bytes held before the relay (s->in) and releases their charge. */
void session_drop_input(struct session *s);

/* Backends (backend.c): starts reaching s->svc's backend; ends in session_backend_ready. */
void backend_start(struct session *s);

/* The close callback of every session handle. */
void session_handle_closed(uv_handle_t *h);

/* Frees a closed session once no handle close and no request is outstanding. */
void session_release(struct session *s);

#endif
