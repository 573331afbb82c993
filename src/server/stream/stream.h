/*
 * A stream: one service request inside a session, once it is granted.  It
 * owns the service's backend and moves bytes between the session's client
 * and that backend, with backpressure, the relay budget, half-close and
 * byte counts.  Every byte for the client goes through it (replies too),
 * so that what the client has not read yet counts in one place.
 *
 * It knows the session above it only through the events it was given:
 * read the client again, and the stream is over.
 */
#ifndef FIVE_STREAM_H
#define FIVE_STREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "server/backend/backend.h"

struct chunk;
struct site;
struct transport;

struct stream_events {
	/* The backend is reached (err 0) or not (a libuv error); once per stream_grant. */
	void (*backend_ready)(void *owner, int err);
	/* One of the handles or requests stream_close_backend counted is done. */
	void (*backend_closed)(void *owner);
	/* Read the client again: its bytes come back through stream_client_data. */
	void (*read_client)(void *owner);
	/*
	 * The stream is over (reason: static); the owner closes the session.
	 * failed: cut short (a read or a write failed: a reset, a peer gone),
	 * and then neither end may see it end in order, as a complete stream
	 * ends: the owner resets both connections.
	 */
	void (*ended)(void *owner, const char *reason, bool failed);
	/*
	 * The backend reset the stream (reason: static): the client's bytes
	 * are no longer wanted, and what came before the reset goes to the
	 * client before ended(failed) comes.  The owner stops reading the
	 * client, and bounds the wait.
	 */
	void (*cut)(void *owner, const char *reason);
	/* Bytes queued for the client were written. */
	void (*client_written)(void *owner);
};

struct stream;

/*
 * A stream for a session, to be freed with stream_free once the session's
 * handles are closed: client, transport and id are the session's and
 * outlive the stream.  Nothing is started.  NULL when memory is short.
 */
struct stream *stream_new(struct site *site, const char *id, uv_stream_t *client,
                          struct transport *const *transport, const struct stream_events *ev,
                          void *owner);

/* The service is granted: reaches its backend for who; ends in ev->backend_ready. */
void stream_grant(struct stream *st, const struct service *svc, const struct backend_who *who);

/* Whatever ends the stream from now on, its backend sees a reset, not an end of stream. */
void stream_reset_backend(struct stream *st);

/*
 * Closes the backend (the stream may still write to the client): returns
 * how many ev->backend_closed calls follow.  Safe more than once.
 */
unsigned stream_close_backend(struct stream *st);

/*
 * Starts moving bytes both ways: header (a PROXY header, may be empty)
 * and early[0..early_len) (what the client sent before the grant) go to
 * the backend first; the client's end already came when client_ended.
 * Returns 0, or -1 when memory is short.
 */
int stream_relay(struct stream *st, const void *header, size_t header_len, const void *early,
                 size_t early_len, bool client_ended);

/* A read result from the client while relaying. */
void stream_client_data(struct stream *st, ssize_t nread, const uv_buf_t *buf);

/* Queues a copy of data to the client (through the transport).  Returns 0 or -1. */
int stream_client_write_copy(struct stream *st, const void *data, size_t len);

/*
 * Queues a chunk's first len bytes to the client, raw: for transports.
 * The chunk is freed when written, or at once on failure.  Returns 0 or -1.
 */
int stream_client_write(struct stream *st, struct chunk *c, size_t len);

/* The relay budget fell below its low-water mark: every held direction reads again (arg: site). */
void stream_budget_low(void *arg);

/*
 * The session is closing: the stream does nothing more, leaves the
 * budget's list and closes its backend.  Returns how many
 * ev->backend_closed calls follow.
 */
unsigned stream_close(struct stream *st);

/* Frees the stream (after its close).  NULL is a no-op. */
void stream_free(struct stream *st);

/* The bytes moved from the client to the backend (in) and back (out). */
void stream_bytes(const struct stream *st, uint64_t *in, uint64_t *out);

/*
 * Whether the client is not being read while relaying (its bytes wait for
 * a backend that is behind, or it ended its side): then its reset goes
 * unseen.
 */
bool stream_client_stalled(const struct stream *st);

/* When a byte last moved either way (uv_now), for idle timeouts. */
uint64_t stream_last_activity(const struct stream *st);

#endif
