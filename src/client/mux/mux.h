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

/*
 * A detachable session (section 12).  Local descriptors are not read
 * while this much of what we sent is kept for fived (copies its RECEIVED
 * has not covered yet): what a break can make us send again is bounded.
 */
#define MUX_COPIES_MAX (4u * 1024 * 1024)
/*
 * RECEIVED goes at least once for every this many bytes of session frames
 * (section 12.3 asks for 131072: half of it leaves fived room to go on
 * sending while ours is on its way), and this long at most after a frame
 * it has not counted yet (12.3: within a second).
 */
#define MUX_RECEIVED_EVERY    (64u * 1024)
#define MUX_RECEIVED_DELAY_MS 200
/* Section 12.6: a PING this often; a connection silent this long is given up. */
#define MUX_KEEPALIVE_MS 15000
#define MUX_SILENCE_MS   30000
/* Attaching again: the delay between tries doubles from the first to the last. */
#define MUX_RETRY_FIRST_MS 100
#define MUX_RETRY_MAX_MS   5000

/* Where a session stands on section 12. */
enum mux_resume {
	MUX_RESUME_OFF,     /* not asked */
	MUX_RESUME_ASKED,   /* DETACHABLE sent, no answer yet: copies are kept */
	MUX_RESUME_ON,      /* granted: a broken connection is replaced */
	MUX_RESUME_REFUSED, /* refused: the session goes on, not detachable */
};

struct five_seal;

/*
 * Told when a stream ends: refused (fived's RST before ACCEPT), reason
 * (fived's RST, or the session's end; NULL for an end of stream or a
 * reset of ours).  Runs on the engine thread with the session's lock
 * held: it must not call into the session.
 */
typedef void (*mux_end_fn)(void *arg, uint32_t id, const char *service, bool refused,
                           const char *reason);

/*
 * Told when a detachable session's connection broke (attached: false,
 * why says how) and again once a new connection has attached (true,
 * after ms since the break).  Runs on the engine thread, with the
 * session's lock held: it must not call into the session.
 */
typedef void (*mux_resume_fn)(void *arg, bool attached, const char *why, uint64_t ms);

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
	bool marked;      /* its ends are marked (base/sock.h): five agent's streams */
	bool end_marked;  /* marked: the application marked its end in order */
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

	/* Section 12: a detachable session. */
	enum mux_resume resume;
	uint64_t tx_count, rx_count;    /* bytes of session frames sent (queued), received whole */
	uint64_t rx_reported;           /* rx_count as our last RECEIVED said it */
	uint64_t received_due;          /* when a RECEIVED is owed (monotonic ms); 0: none */
	struct buf copies;              /* session frames sent from the byte copies_base on */
	uint64_t copies_base;           /* the tx_count copies start at; fived's last RECEIVED */
	uint8_t ticket[MUX_TICKET_LEN]; /* a credential: wiped when replaced and at the end */
	uint32_t detach_timeout_s;
	char refusal[MUX_WHY_MAX]; /* fived's reason for refusing DETACHABLE */
	uint64_t last_rx_at;       /* when fived's last frame came (monotonic ms) */
	bool broken;               /* the connection broke: attach again (detach.c) */
	char broke_why[MUX_WHY_MAX];
	uint64_t broken_at;
	struct mux_redial *redial; /* how to reach fived again; owned by the session */
	mux_resume_fn on_resume;
	void *on_resume_arg;
};

/* open.c: a session from a connection that has entered framed mode. */
struct five_conn;
struct five_session *mux_session_new(struct five_conn *c, const struct five_options *o,
                                     struct five_error *err);
void mux_session_free(struct five_session *s);
/* Starts the engine thread.  Returns 0 or -1. */
int mux_session_start(struct five_session *s, struct five_error *err);
/*
 * Takes c's descriptor, its sealed session and what it read ahead as the
 * session's connection (the first, or one that attached), and closes
 * what is left of c, also on failure.  Returns 0 or -1 with err filled.
 */
int mux_take_conn(struct five_session *s, struct five_conn *c, struct five_error *err);

/* engine.c */
void *mux_engine_run(void *arg);
/* Interrupts the engine's poll, to look at what changed.  Lock held or not. */
void mux_wake(struct five_session *s);

/* wire.c: the session's socket. */
int mux_send_frame(struct five_session *s, const uint8_t *frame, size_t len);
/*
 * Queues one frame, head (its header, or all of it) then body: a session
 * frame (section 12.1) is counted, and copied while the session may be
 * resumed.  0, or -1 once the session has failed.
 */
int mux_send_parts(struct five_session *s, const uint8_t *head, size_t head_len,
                   const uint8_t *body, size_t body_len);
int mux_read_session(struct five_session *s);
/*
 * Takes the frames a new connection read ahead (behind the reply to
 * MULTIPLEX or ATTACH): nothing on the socket may say they are there.
 * 0, or -1 once the session has failed.
 */
int mux_read_ahead(struct five_session *s);
int mux_flush_session(struct five_session *s);
bool mux_out_pending(const struct five_session *s);
/* Ends the session: fails it with why (fived sees a truncated stream) when why != NULL. */
void mux_fail(struct five_session *s, enum five_step step, const char *why);
/*
 * The connection broke (step and why say how): a detachable session is
 * marked to attach again, any other fails as mux_fail.
 */
void mux_broken(struct five_session *s, enum five_step step, const char *why);

/* detach.c: section 12, a session that outlives its connection. */
struct mux_redial;
/*
 * What attaching again needs: host, o's members (strings copied; no
 * authentication, no first-use pinning), and for a sealed session the
 * server key c's handshake proved, which every later one must prove.
 * Returns it (the session's once set as its redial, freed with it), or
 * NULL with err filled.
 */
struct mux_redial *mux_redial_new(const char *host, const struct five_options *o,
                                  const struct five_conn *c, struct five_error *err);
void mux_redial_free(struct mux_redial *d);
/* fived's DETACHABLE (an answer to ours) and RECEIVED.  0, or -1 once the session failed. */
int mux_resume_answer(struct five_session *s, const struct mux_frame *f);
int mux_resume_received(struct five_session *s, uint64_t count);
/* A frame from fived came: it is counted, and owes a RECEIVED.  0, or -1 once failed. */
int mux_resume_heard(struct five_session *s, const struct mux_frame *f);
/* What is due now: a RECEIVED, giving up a silent connection.  0 or -1. */
int mux_resume_tick(struct five_session *s);
/* Milliseconds until mux_resume_tick has something to do; -1: nothing. */
int mux_resume_wait_ms(const struct five_session *s);
/*
 * The connection broke: attaches again (the lock released while it
 * dials), or fails the session once the detach timeout has passed, fived
 * refused for good, or the session is being closed.
 */
void mux_reattach(struct five_session *s);
/* Sets the break and attach callback (before the session's first break). */
void mux_on_resume(struct five_session *s, mux_resume_fn fn, void *arg);

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
 * waited: the caller will wait for the answer with mux_await.  tell:
 * what fd hears besides the stream's bytes, MUX_TELL_* or'ed.
 */
uint32_t mux_attach(struct five_session *s, int fd, const char *service, const void *early,
                    size_t len, bool waited, unsigned tell, struct five_error *err);
/* fived's answer is written to fd before any byte of the stream, as a line, "+" or "- REASON". */
#define MUX_TELL_ANSWER 1u
/*
 * Ends are marked (base/sock.h): after the answer, a reset is told to fd
 * by its mark and its reason, and fived's end in order behind its mark;
 * an end of fd's input counts as one in order only behind its mark, and
 * otherwise resets the stream (the application died).
 */
#define MUX_TELL_ENDS 2u
/*
 * A stream over whose fd waits to take what came before its reset, then
 * the mark: sends them as it can, then closes fd.
 */
void mux_stream_mark(struct five_session *s, struct mux_stream *st);

/* fived's end of the stream, with all before it delivered, is still to be passed on to fd. */
static inline bool
mux_stream_end_due(const struct mux_stream *st)
{
	return !st->over && st->remote_fin && st->down.len == 0 && !st->local_shut;
}

/* Over with its fd still open: only a reset's mark keeps it, until fd takes it. */
static inline bool
mux_stream_marking(const struct mux_stream *st)
{
	return st->over && st->fd >= 0;
}
/* Waits until deadline (monotonic_ms) for fived's answer to stream id.  0 or -1. */
int mux_await(struct five_session *s, uint32_t id, uint64_t deadline, struct five_error *err);
/* Resets stream id (RST RESET, why) if it is not over yet. */
void mux_cancel(struct five_session *s, uint32_t id, const char *why);
/* Whether new streams may be opened: not failed, closing, or told GOAWAY. */
bool mux_usable(struct five_session *s);
/* Streams not over yet. */
size_t mux_streams_open(struct five_session *s);
/*
 * Waits until every stream is over, the session failed, or ms passed: an
 * application's end, just sent, then goes out before a close would reset
 * its stream.
 */
void mux_await_streams_over(struct five_session *s, uint64_t ms);
/* Sets the stream end callback (before the first stream). */
void mux_on_end(struct five_session *s, mux_end_fn fn, void *arg);
/* Whether the session has failed (not closed by its owner): -1 with err filled, else 0. */
int mux_failed(struct five_session *s, struct five_error *err);

#endif
