/*
 * A session as the files of src/server/session/ see it: its state, and the
 * calls the dialects (text.c, uspsession.c), the authentication exchange
 * (auth.c) and the TOKEN command (sessiontoken.c) make on it.  Outside
 * this folder a session is opaque (session.h).  Every session ends through
 * session_close, in whatever state it is.
 */
#ifndef FIVE_SESSION_INTERNAL_H
#define FIVE_SESSION_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/addr.h"
#include "common/buf.h"
#include "legacy/legacy.h"
#include "proto/usp.h"
#include "server/conf/config.h"
#include "server/mux/mux.h"
#include "server/policy/site.h"
#include "server/policy/sources.h"
#include "server/session/session.h"
#include "server/session/state.h"
#include "server/stream/stream.h"
#include "server/transport/transport.h"

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

/*
 * The backend reset the stream: how long what came before may take to
 * reach the client, acknowledged, before the client's reset goes anyway;
 * and how often the kernel is asked whether all of it was.
 */
#define CUT_DELIVERY_MS 5000
#define CUT_POLL_MS     10

/* A connection refused at once: reads of what it already sent, dropped before it is closed. */
#define REJECT_DRAIN_READS 16

union client_handle {
	uv_handle_t handle;
	uv_stream_t stream;
	uv_tcp_t tcp;
	uv_pipe_t pipe;
};

struct session {
	struct site *site;
	struct config *cfg; /* one reference, for the session's life */
	struct session *prev, *next;
	struct source_waiter waiter; /* among its source's connections yet to make a request */
	enum session_state state;
	char id[SESSION_ID_LEN + 1];

	union client_handle client;
	bool client_open;
	bool client_reset; /* session_abort: the client's TCP connection is reset, not ended */
	struct sockaddr_storage peer, local;
	bool proxy_pending; /* from a balancer: its PROXY header comes first */
	bool from_worker;   /* another worker passes on its client's ATTACH (attach.c) */
	bool peer_is_ip;
	char peer_ip[ADDR_IP_MAX];
	uint16_t peer_port;
	uint8_t source_key[SOURCE_KEY_LEN];
	struct source *source; /* counted in the server's sources while set */
	/*
	 * Let in beyond max_per_source or max_connections for a detached
	 * session's return (sources.h, admit): the refusal of anything but an
	 * ATTACH, or NULL.
	 */
	const char *attach_only;

	struct caller *caller;      /* the authenticated identity, or NULL; owned */
	struct auth_exchange *auth; /* an authentication in progress, or NULL; owned */
	struct usp_session *usp;    /* the USP dialect's state, NULL for text; owned */
	bool dialect_known;         /* the first byte of plaintext has said which: text or USP */
	bool legacy_watch;        /* legacy_* set, no verdict yet: the first bytes are looked at */
	enum legacy_proto legacy; /* handed to this legacy backend; LEGACY_PROTO_COUNT: not */
	unsigned auth_failures;
	bool encrypted;                         /* the session is sealed or in TLS */
	struct transport *transport;            /* NULL: plain TCP; owned, freed by session_free */
	const char *transport_was;              /* the name of the last one freed (static) */
	uint8_t binding[TRANSPORT_BINDING_MAX]; /* channel binding for signatures; empty when plain
	                                         */
	size_t binding_len;

	const struct vhost *vhost;
	bool host_asked; /* a bare HOST listed the vhosts: the next line names one */
	const struct service *svc;
	char requested[NAME_MAX_LEN + 1];
	char *parameters; /* a USP stream's, for an exec: service (section 8.8), or NULL; owned */
	unsigned commands;
	struct buf in;     /* client bytes not yet consumed, before S_RELAY */
	size_t in_charged; /* what of in is charged to the relay budget: its allocation */
	bool client_eof_early;
	uint64_t linger_bytes;

	uv_timer_t timer;             /* request, connect, idle or linger deadline */
	uint64_t request_deadline_ms; /* when the request phase must have been granted */
	uint64_t connect_started_ns;  /* uv_hrtime as the backend was asked for */

	struct stream *stream; /* the service request, its backend and relay; every client write */
	struct mux *mux;       /* framed mode (MULTIPLEX): the streams; NULL before; owned */

	/* ATTACH while its penalty delay runs (attach.c); wiped once it is decided */
	uint8_t attach_ticket[MUX_TICKET_LEN];
	uint64_t attach_received;

	uint64_t started_ms;
	unsigned closing_handles;
	const char *close_reason;
	uint64_t cut_deadline_ms; /* the backend reset: when the client's reset goes anyway; or 0 */
	bool cut_written;         /* ...and what came before it was written to the client */
};

/*
 * Ends the session: writes the audit record, stops every timer and
 * I/O, closes every handle.  Safe to call in any state, and more than once.
 */
void session_close(struct session *s, const char *reason);

/*
 * Ends the session after its stream was cut short (the client's turned
 * out truncated or damaged, a read or a write failed): a TCP backend and
 * the client's TCP connection are reset rather than ended in order, so
 * that neither takes a cut-short stream for a complete one.
 */
void session_abort(struct session *s, const char *reason);

/*
 * The client's connection broke (reason: static): a detachable session
 * in framed mode detaches (session_detach), any other is aborted.
 */
void session_broken(struct session *s, const char *why);

/* A detachable session's connection broke: it waits for an ATTACH (muxsession.c). */
void session_detach(struct session *s, const char *why);

/* Ends a detached session nobody will attach: its backends reset, or ended (detach_end). */
void session_end_detached(struct session *s, const char *why);

/*
 * Closes the client's connection (and then frees its transport), leaving
 * the session as it is.  Safe more than once.
 */
void session_drop_connection(struct session *s);

/*
 * Ends a session whose mux another session adopted (s->mux is NULL by
 * then): closes what is left, without an audit record of its own, since
 * the session goes on under the adopting one.
 */
void session_retire(struct session *s);

/*
 * A request made after a reload, on a connection accepted before it, is
 * judged by the configuration the connection was accepted under and by
 * the one in force: both must grant it, so that a service withdrawn or a
 * permission taken away holds for connections already open (a
 * multiplexed session's streams are judged by the one in force alone,
 * muxsession.c).  service as the client named it, for caller.  NULL when
 * the configuration in force grants it too (or is the session's own),
 * else the refusal: hidden where the service is not there for caller, or
 * "not permitted".
 */
const char *session_refusal_now(const struct session *s, const char *service,
                                const struct caller *caller, const char *hidden);

/*
 * A read of client bytes before any relay: appended to s->in (the read's
 * chunk released) and noted as input.  0, or -1 after closing the session
 * with over when s->in cannot take it.  nread < 0 (an end) is the caller's.
 */
int session_hold_read(struct session *s, ssize_t nread, const uv_buf_t *buf, const char *over);

/* Sends "- reason" and closes gracefully, discarding what the client still sends. */
void session_refuse(struct session *s, const char *reason);

/* A connection that may only ATTACH (attach_only) is refused here: true, or false if not one. */
bool session_only_attaches(struct session *s);

/*
 * A refusal, reason (static), in the log, the metrics and the audit log,
 * the connection left as it is: what session_refuse records.
 */
void session_record_refusal(struct session *s, const char *reason);

/*
 * session_refuse with the reply already written, text[0..len): reason
 * (static) goes to the log and the audit record.
 */
void session_refuse_with(struct session *s, const char *reason, const char *text, size_t len);

/* The client may use svc: reach its backend (the reply comes with the relay). */
/*
 * The name of what carries s: its transport's, else what carried it
 * before it was detached, or what carries the client of another worker
 * that passes on its ATTACH; "plain" for none.
 */
const char *session_transport_name(const struct session *s);

void session_start_service(struct session *s, const struct service *svc);

/*
 * The backend is reached: the stream writes header (may be empty) and the
 * held bytes to it and moves bytes both ways; the client is answered "+"
 * first when answer is set.
 */
void session_start_relay(struct session *s, const void *header, size_t header_len, bool answer);

/* Closes gracefully after what is already queued, reading and discarding meanwhile. */
void session_finish(struct session *s, const char *reason);

/* Sends text[0..len) as the last reply, then closes as session_finish does. */
void session_finish_with(struct session *s, const char *text, size_t len);

/*
 * The client ended its stream before a complete request: told nothing on
 * a dark server, ended properly inside a transport, closed otherwise.
 */
void session_ended_before_request(struct session *s);

/*
 * TLS from now on ("+ SUCCESS" was sent): what the client sent after its
 * TLS line is the start of its ClientHello.
 */
void session_start_tls(struct session *s);

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

/*
 * Moves the session to a new state (state.h), logging the move at debug
 * level.  A move the table does not allow is a fault: it is logged as an
 * error and the session is closed instead.
 */
void session_set_state(struct session *s, enum session_state next);

/* (Re)starts reading the client. */
void session_read_client(struct session *s);

/* Handles the complete lines held from the client while the state reads lines. */
void session_process_input(struct session *s);

/* The deadline for the request phase, from now (after an authentication). */
void session_restart_request_timer(struct session *s);

/* The deadline for an authentication exchange, from now. */
void session_start_auth_timer(struct session *s);

/*
 * What the backend of svc may learn of caller (NULL: none) in vhost, for
 * stream (0: the session's only one): svc may withhold identity and address.
 */
struct backend_who;
void session_who(const struct session *s, const struct service *svc, const struct caller *caller,
                 const struct vhost *vhost, uint32_t stream, struct backend_who *who);

/* The PROXY header svc asks for, telling who: its length (0 for none), or -1. */
int session_proxy_header(const struct session *s, const struct service *svc,
                         const struct backend_who *who, uint8_t *out, size_t size);

/*
 * The bytes held while a connection's first bytes were looked at (transition.c)
 * are fived's: the transport or dialect their first byte picks takes them,
 * and then the client's end if eof.  The request phase's deadline holds.
 */
void session_detected(struct session *s, bool eof);

/* Charges s->in to the relay budget by what it takes now. */
void session_note_input(struct session *s);

/* The deadline of the request phase, as it was set at the start: what is left of it. */
void session_resume_request_timer(struct session *s);

/* Frees the client bytes held before the relay (s->in) and releases their charge. */
void session_drop_input(struct session *s);

/* The bytes moved to backends (in) and back (out), by the session's one stream or its many. */
void session_bytes(const struct session *s, uint64_t *in, uint64_t *out);

/* Plaintext from the client of a session in framed mode (muxsession.c). */
void session_mux_input(struct session *s, ssize_t nread, const uv_buf_t *buf);

/* One of the closes the session counted (closing_handles) is done: the session may be freed. */
void session_closed_one(struct session *s);

/* The close callback of every session handle. */
void session_handle_closed(uv_handle_t *h);

/* Frees a closed session once no handle close and no request is outstanding. */
void session_release(struct session *s);

#endif
