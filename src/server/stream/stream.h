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
	/* The stream is over (reason: static); the owner closes the session. */
	void (*ended)(void *owner, const char *reason);
};

/*
 * One direction of a stream, named by its destination: up is towards the
 * backend, down towards the client (replies included).
 */
struct relay_dir {
	uv_shutdown_t shutdown_req;
	bool eof;      /* the source side ended its stream */
	bool shut;     /* the shutdown of the destination's write side completed */
	bool paused;   /* reading the source is stopped: this stream's queue is full */
	bool held;     /* reading the source is stopped: the relay budget is reached */
	bool dropping; /* the destination stopped reading (a program that exited): drop the rest */
	size_t queued; /* memory of the chunks written towards the destination, not yet freed */
	uint64_t bytes;
};

struct stream {
	struct site *site;
	const char *id;               /* the session's, for log lines */
	uv_stream_t *client;          /* the session's client socket */
	struct transport *const *transport; /* the session's transport (NULL: plain), as it changes */
	const struct service *svc;    /* NULL until stream_grant */
	struct backend backend;
	struct relay_dir up;   /* client -> backend */
	struct relay_dir down; /* backend -> client */
	bool relaying;         /* bytes flow both ways */
	bool over;             /* stream_close was called: nothing more is done */
	uint64_t last_activity_ms;
	struct stream *held_prev, *held_next; /* on the site's budget_held list */
	bool held_listed;
	const struct stream_events *ev;
	void *owner;
};

/*
 * Prepares st for a session: client and transport are the session's and
 * outlive the stream.  Nothing is started.
 */
void stream_init(struct stream *st, struct site *site, const char *id, uv_stream_t *client,
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

/* Frees what the stream keeps after its close. */
void stream_free(struct stream *st);

#endif
