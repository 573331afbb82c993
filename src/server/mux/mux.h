/*
 * A session in framed mode (MULTIPLEX, docs/PROTOCOL.md section 11): the
 * frames a client sends, the streams they open, each with its own
 * backend, and the frames that go back.  The session above hands it the
 * client's plaintext and carries its frames to the client; it reports up
 * only through the events it was given.
 */
#ifndef FIVE_MUX_SERVER_H
#define FIVE_MUX_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/mux.h"
#include "server/backend/backend.h"
#include "server/policy/site.h"

struct caller;
struct chunk;
struct config;
struct site;

/* What an OPEN was granted: the service, and who its backend may learn the caller is. */
struct mux_grant {
	struct config *cfg; /* one reference: svc and vhost live in it */
	const struct service *svc;
	struct caller *caller; /* a token's identity for this stream, owned; NULL: the session's */
	const char *vhost;     /* the vhost's name, "" for none; the configuration's */
	const char *identity;  /* who the stream is for, "" for none: for the audit log */
	/*
	 * The session id the backend learns: the session's, or, for a service
	 * that withholds identity, one of the stream's own, so that services
	 * of one session cannot tie it to the session's other streams.
	 * who.session_id points here (mux_grant_fix after a copy).
	 */
	char session_id[SESSION_ID_LEN + 1];
	struct backend_who who;
	struct source *source; /* its place among its source's connections, until unlinked */
};

/* Points g->who at g's own session id again, after g was copied. */
static inline void
mux_grant_fix(struct mux_grant *g)
{
	g->who.session_id = g->session_id;
}

/* A command stream's reply (section 13.1) is at most this long. */
#define MUX_REPLY_MAX 2048

struct mux_events {
	/*
	 * An OPEN that names a command (PROVEAUTH, GETSIGNKEY: section 13.1)
	 * and carries the whole request: returns the reply's length (1 to
	 * MUX_REPLY_MAX), written into reply; 0 when the OPEN names a service;
	 * -1 with *code and *reason (static) for its RST.
	 */
	int (*command)(void *owner, const struct mux_frame *open, char reply[MUX_REPLY_MAX],
	               uint8_t *code, const char **reason);
	/*
	 * Decides an OPEN for stream id: fills *g and returns 0, or returns -1
	 * with *reason (static, the text dialect's) for its RST REFUSED.
	 */
	int (*authorize)(void *owner, uint32_t id, const struct mux_frame *open,
	                 struct mux_grant *g, const char **reason);
	/*
	 * A place for a new stream among the connections of the session's
	 * source (sources.h), or NULL when its source has no place left.
	 */
	struct source *(*source_place)(void *owner);
	/* The PROXY header the stream's service asks for: its length (0: none), or -1. */
	int (*header)(void *owner, const struct mux_grant *g, uint32_t id, uint8_t *out,
	              size_t size);
	/* An audit record (extra: a json_t *, stolen).  0, or -1 when it was lost. */
	int (*audit)(void *owner, const char *event, void *extra);
	/* Frames for the client: takes the chunk (freed when written, or at once on failure). */
	int (*send)(void *owner, struct chunk *c, size_t len);
	/* What is queued for the client and not yet written, in bytes. */
	size_t (*queued)(void *owner);
	/* Reads the client (on) or stops reading it: its frames wait in the kernel. */
	void (*read_client)(void *owner, bool on);
	/* The session is over: it ends gracefully after what is queued; reason is static. */
	void (*finish)(void *owner, const char *reason);
	/* One of the streams mux_close counted is freed. */
	void (*closed)(void *owner);
	/*
	 * The client asks to be detachable (section 12.2): 0 to grant, or a
	 * refusal's code (enum mux_detach_code) with *reason (static).
	 */
	int (*detach_allowed)(void *owner, const char **reason);
};

/* What fived keeps of a ticket's secret: a hash. */
#define MUX_TICKET_HASH_LEN 32

struct mux;

/* Framed mode for a session (id: the session's, outlives the mux).  NULL when memory is short. */
struct mux *mux_new(struct site *site, const struct config *cfg, const char *id,
                    const struct mux_events *ev, void *owner);

/* After "+ MULTIPLEX": measures the round trip, starts the idle deadline.  0 or -1. */
int mux_start(struct mux *m);

/*
 * A stream the client asked for outside a frame (USP's initialize): opened
 * as an OPEN without data would be, with the next stream id (1, 3, 5...).
 */
void mux_open(struct mux *m, const char *service, const char *token);

/* The client's plaintext: frames, whole or in parts. */
void mux_input(struct mux *m, const uint8_t *data, size_t len);

/* The client's stream ended (properly): streams still open are cut short. */
void mux_client_ended(struct mux *m);

/* Bytes queued for the client were written: streams held for it may read again. */
void mux_client_drained(struct mux *m);

/* fived is draining: GOAWAY, no new stream, the session ends with its last stream. */
void mux_drain(struct mux *m);

/*
 * The session is closing: every stream still open is cut short (its
 * backend reset).  Returns how many ev->closed calls follow.  Safe more
 * than once.
 */
unsigned mux_close(struct mux *m);

/*
 * The relay budget fell below its low-water mark (arg: site): sessions
 * that withheld credit, or stopped reading backends, for it go on.
 */
void mux_budget_low(void *arg);

/* Frees the mux once its streams are freed.  NULL is a no-op. */
void mux_free(struct mux *m);

/* The bytes every stream of the session moved so far, to backends (in) and back (out). */
void mux_bytes(const struct mux *m, uint64_t *in, uint64_t *out);

/* Streams open now. */
unsigned mux_open_streams(const struct mux *m);

/* One open stream, as fivectl shows it (mux_each_stream). */
struct mux_stream_info {
	uint32_t id;
	const char *service;          /* the configured name; valid during the call only */
	bool connected;               /* its backend is reached (ACCEPT sent) */
	uint64_t bytes_in, bytes_out; /* to its backend, and back */
	uint64_t age_ms;              /* since its OPEN */
};

/*
 * Calls each with every stream open now, in no particular order, until
 * each returns false.  each must not open or close streams.
 */
void mux_each_stream(const struct mux *m,
                     bool (*each)(const struct mux_stream_info *info, void *arg), void *arg);

/* --- resuming (docs/PROTOCOL.md section 12; resume.c) ------------------------ */

/* Whether the session is detachable (its DETACHABLE was granted). */
bool mux_detachable(const struct mux *m);

/*
 * The connection broke: nothing is written from now on, frames sent go
 * only to the copies, backends are read as far as the client's windows
 * and detach_queue_max allow, and a frame cut short is forgotten (the
 * client sends it again whole).
 */
void mux_detach(struct mux *m);

/* Whether the session is detached. */
bool mux_detached(const struct mux *m);

/* Whether ticket is this session's (its id, and its secret, compared in constant time). */
bool mux_ticket_is(const struct mux *m, const uint8_t ticket[MUX_TICKET_LEN]);

/* Whether the client's received count is a point fived can resume from: not dropped, sent. */
bool mux_resume_point(const struct mux *m, uint64_t received);

/*
 * Attaching with ticket (which mux_ticket_is accepted): a new ticket in
 * out (the caller wipes it), which replaces the current one; ticket stays
 * valid as well until the first frame of the new connection.  Returns
 * fived's received count; *timeout_s is the detach timeout.
 */
uint64_t mux_rekey(struct mux *m, const uint8_t ticket[MUX_TICKET_LEN], uint8_t out[MUX_TICKET_LEN],
                   uint32_t *timeout_s);

/* The session's events go to owner from now on (an attaching connection's session). */
void mux_set_owner(struct mux *m, void *owner);

/*
 * On the new connection, after "+ ATTACHED": every session frame after
 * the client's received count is sent again, and the session goes on.
 * 0, or -1 when memory is short (the session should end).
 */
int mux_attached(struct mux *m, uint64_t received);

/*
 * Nobody attached within the detach timeout: every stream's backend sees
 * its input end and is closed (not reset).
 */
void mux_end_gently(struct mux *m, const char *reason);

#endif
