/*
 * The client side of a multiplexed session (docs/PROTOCOL.md section 11):
 * one connection to fived, many streams, each relayed between a local
 * descriptor and the session by one engine thread.
 *
 * Every field of a session and of its streams is guarded by the session's
 * lock: the engine holds it except while it waits in poll(2); the callers
 * of five_session_* take it for a moment to add a stream, cancel one or
 * wait for an answer (the cond).
 */
#ifndef FIVE_CLIENT_MUX_MUX_H
#define FIVE_CLIENT_MUX_MUX_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "crypto/record.h"
#include "five.h"
#include "proto/mux.h"

/* What a stream's window, and the session's, may grow to (section 11.4). */
#define MUX_CLIENT_STREAM_WINDOW_MAX  (16u * 1024 * 1024)
#define MUX_CLIENT_SESSION_WINDOW_MAX (64u * 1024 * 1024)

/* Local descriptors are not read while this much is queued toward fived. */
#define MUX_OUT_HIGH (4 * MUX_FRAME_MAX)
/*
 * The session socket is not read while this much is queued toward fived:
 * the session-level backpressure (what reading makes us send is small:
 * PING answers, WINDOW credit).
 */
#define MUX_OUT_MAX (1024 * 1024)

/* How often the round trip is measured while a stream is open. */
#define MUX_PING_INTERVAL_MS 30000

/* Sealed: fived's records before they are opened; records before they are sent. */
#define MUX_RAW_MAX  (4 * RECORD_WIRE_MAX)
#define MUX_WIRE_MAX (4 * RECORD_WIRE_MAX)
/* Plaintext from fived: a partial frame and the record behind it. */
#define MUX_IN_MAX (MUX_FRAME_MAX + RECORD_PLAINTEXT_MAX)

/* Reasons said to the owner of a stream that fived did not end. */
#define MUX_WHY_MAX (MUX_REASON_MAX + 1)

struct five_seal;

/*
 * Told when a stream ends: refused (fived's RST before ACCEPT), reason
 * (fived's RST, or the session's end; NULL for an end of stream or a
 * reset of ours).  Runs on the engine thread with the session's lock
 * held: it must not call into the session.
 */
typedef void (*mux_end_fn)(void *arg, uint32_t id, const char *service, bool refused,
                           const char *reason);

struct mux_stream {
	struct mux_stream *next;
	uint32_t id;
	int fd; /* the local end, owned by the stream: closed when it is over */
	char service[MUX_SERVICE_MAX + 1];
	struct buf early; /* first data not yet sent (OPEN carries what the windows allow) */

	/* Toward fived. */
	uint64_t tx_window; /* credit fived gave on this stream */
	bool open_sent, local_eof, fin_sent;

	/* From fived: at most the credit we gave is held. */
	struct buf down;
	uint64_t rx_window;    /* credit fived has left on this stream */
	uint32_t rx_size;      /* the window we give */
	uint64_t rx_delivered; /* delivered since the last WINDOW */
	uint64_t round_start;  /* when the current window's worth began to be delivered */
	uint64_t round_bytes;
	bool remote_fin, local_shut;

	/* Its answer, and its end. */
	bool answered, accepted, refused, over;
	char why[MUX_WHY_MAX];
	bool waited;      /* a caller waits for the answer: freed only once it has looked */
	bool announce;    /* the answer goes to fd first: "+" LF, or "-" reason LF (five agent) */
	size_t uncounted; /* bytes at the head of down that are that answer, not fived's */
	bool cancel;      /* asked to be reset (RST RESET) */
};

struct five_session {
	pthread_mutex_t lock;
	pthread_cond_t changed; /* broadcast after every engine step */
	pthread_t thread;
	bool thread_started;
	int wake[2]; /* a byte on wake[1] interrupts the engine's poll */

	int fd;                 /* the connection to fived, non-blocking */
	struct five_seal *seal; /* NULL: plain */
	int timeout_ms;
	char *token; /* every OPEN's token, or NULL */

	uint32_t next_id;
	struct mux_stream *streams;
	size_t open_streams;

	/* From fived. */
	uint8_t raw[MUX_RAW_MAX]; /* sealed records not yet opened */
	size_t raw_len;
	uint8_t in[MUX_IN_MAX]; /* plaintext: frames */
	size_t in_len;
	bool sock_eof, final_seen;

	/* Toward fived. */
	struct buf out;             /* frames not yet sealed or sent */
	uint8_t wire[MUX_WIRE_MAX]; /* sealed records not yet sent */
	size_t wire_len;

	/* Session windows, as the stream ones. */
	uint64_t tx_window, rx_window, rx_delivered, round_start, round_bytes;
	uint32_t rx_size;
	/*
	 * The largest window a stream of this session grew to: the path's
	 * bandwidth-delay product as far as the session learned it.  A new
	 * stream starts with it (a WINDOW right behind its OPEN), instead of
	 * growing again from the protocol's initial window.
	 */
	uint32_t stream_window;

	/* The round trip. */
	uint8_t ping[MUX_PING_LEN];
	bool ping_out;
	uint64_t ping_at, next_ping, rtt_ms;

	bool goaway;   /* fived takes no new stream */
	bool closing;  /* five_session_close: reset what is open, end the session */
	bool dead;     /* the session is over; error says why */
	bool finished; /* the engine has returned */
	struct five_error error;

	mux_end_fn on_end;
	void *on_end_arg;
};

/* open.c: a session from a connection that has entered framed mode. */
struct five_conn;
struct five_session *mux_session_new(struct five_conn *c, const struct five_options *o,
                                     struct five_error *err);
void mux_session_free(struct five_session *s);
/* Starts the engine thread.  Returns 0 or -1. */
int mux_session_start(struct five_session *s, struct five_error *err);

/* engine.c */
void *mux_engine_run(void *arg);
/* Interrupts the engine's poll, to look at what changed.  Lock held or not. */
void mux_wake(struct five_session *s);

/* wire.c: the session's socket. */
int mux_send_frame(struct five_session *s, const uint8_t *frame, size_t len);
int mux_read_session(struct five_session *s);
int mux_flush_session(struct five_session *s);
bool mux_out_pending(const struct five_session *s);
/* Ends the session: fails it with why (fived sees a truncated stream) when why != NULL. */
void mux_fail(struct five_session *s, enum five_step step, const char *why);

/* frames.c: one frame from fived.  Returns 0, or -1 once the session has failed. */
struct mux_frame;
int mux_handle_frame(struct five_session *s, const struct mux_frame *f);

/* stream.c */
struct mux_stream *mux_stream_new(uint32_t id, int fd, const char *service, const void *early,
                                  size_t len);
void mux_stream_free(struct mux_stream *st);
struct mux_stream *mux_stream_find(struct five_session *s, uint32_t id);
/* Sends its OPEN (with what of the early data the windows allow).  0 or -1. */
int mux_stream_open(struct five_session *s, struct mux_stream *st);
/* What the local descriptor offers now: DATA, FIN, an RST.  0 or -1. */
int mux_stream_read(struct five_session *s, struct mux_stream *st);
/* Delivers held bytes to the local descriptor, and returns credit.  0 or -1. */
int mux_stream_write(struct five_session *s, struct mux_stream *st);
/* Whether the local descriptor should be polled for input. */
bool mux_stream_wants_read(const struct five_session *s, const struct mux_stream *st);
/* Resets the stream (RST code why, unless fived reset it: send false).  0 or -1. */
int mux_stream_reset(struct five_session *s, struct mux_stream *st, bool send, uint8_t code,
                     const char *why);
/* Ends of stream passed on, and a stream over once both directions are. */
void mux_stream_settle(struct five_session *s, struct mux_stream *st);

/* window.c: credit returned as the local side consumes, and the windows' growth. */
int mux_window_delivered(struct five_session *s, struct mux_stream *st, size_t n);
/* A new stream's window, raised to what the session's streams grew to: a WINDOW.  0 or -1. */
int mux_window_start(struct five_session *s, struct mux_stream *st);
/* Credit for DATA dropped (its stream over): the session's window only.  0 or -1. */
int mux_window_dropped(struct five_session *s, size_t n);

/* api.c, for the five command (-L, the agent): the engine-side work of five_session_stream. */
/*
 * Hands fd (a connected socket, owned by the session from now on, also
 * on failure) to the session as a new stream for service, with early
 * bytes first.  Returns the stream's id, or 0 with err filled.
 * waited: the caller will wait for the answer with mux_await.  announce:
 * fived's answer is written to fd before any byte of the stream, as a
 * line, "+" or "- REASON".
 */
uint32_t mux_attach(struct five_session *s, int fd, const char *service, const void *early,
                    size_t len, bool waited, bool announce, struct five_error *err);
/* Waits until deadline (monotonic_ms) for fived's answer to stream id.  0 or -1. */
int mux_await(struct five_session *s, uint32_t id, uint64_t deadline, struct five_error *err);
/* Resets stream id (RST RESET, why) if it is not over yet. */
void mux_cancel(struct five_session *s, uint32_t id, const char *why);
/* Whether new streams may be opened: not failed, closing, or told GOAWAY. */
bool mux_usable(struct five_session *s);
/* Streams not over yet. */
size_t mux_streams_open(struct five_session *s);
/* Sets the stream end callback (before the first stream). */
void mux_on_end(struct five_session *s, mux_end_fn fn, void *arg);

#endif
