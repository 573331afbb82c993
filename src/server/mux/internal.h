/*
 * The framed session and its streams as the files of src/server/mux/ see
 * them: mux.c reads frames and keeps the session's windows, channel.c
 * moves one stream's bytes between its backend and the client.
 */
#ifndef FIVE_MUX_INTERNAL_H
#define FIVE_MUX_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "server/backend/backend.h"
#include "server/mux/mux.h"

/* Detachable sessions' copies may take this part of the relay budget: a half, at most. */
#define MUX_COPIES_SHARE 2

/*
 * Frames queued for the client past which no backend is read (and no
 * client frame taken, since each may ask for an answer): the session's
 * own backpressure, beside each stream's window.
 */
#define MUX_OUTPUT_HIGH (256 * 1024)
#define MUX_OUTPUT_LOW  (64 * 1024)

/* How often the round trip is measured again while a stream is open. */
#define MUX_PING_INTERVAL_MS (30 * 1000)

/*
 * Refused OPENs a session may send before it is ended: each costs a
 * decision, perhaps a token's signature, and an audit record, and in the
 * text dialect a refusal ends the connection.
 */
#define MUX_REFUSALS_MAX 32

/*
 * OPENs a session may cancel (RST) before their answer: each costs a
 * decision, audit records and a backend's connect for two small frames, and
 * frees its place among the pending opens at once, so without a bound a
 * client could keep a backend accepting and dropping connections as fast
 * as it can write.  A rate, not a count for the session's life: a
 * long-lived session (the shim's) cancels now and then when its
 * applications give up on a connect.
 */
#define MUX_CANCELS_BURST    32
#define MUX_CANCEL_REFILL_MS 1000

/* RECEIVED goes out at least once for this many bytes of session frames (section 12.3)... */
#define MUX_RECEIVED_EVERY (128 * 1024)
/* ...and within this long of any not yet acknowledged. */
#define MUX_RECEIVED_DELAY_MS 1000

/* The copies of session frames sent are kept in segments of this size. */
#define MUX_COPY_SEG_SIZE (16 * 1024)

/* Streams are found by id in this many lists. */
#define MUX_BUCKETS 64

/* One direction's receive window: what the peer may still send, and when to give it more. */
struct mux_rwin {
	uint64_t left;      /* credit the peer has */
	uint64_t size;      /* the window given, which grows */
	uint64_t consumed;  /* delivered onward, not yet given back */
	uint64_t credit_ns; /* when credit was last given (uv_hrtime) */
};

/* One stream.  Made by channel_open, freed by channel_release once its handles are closed. */
struct channel {
	struct mux *mux;
	uint32_t id;
	struct channel *next;   /* in its bucket */
	struct mux_grant grant; /* owns grant.caller */
	bool connected;         /* the backend is reached and ACCEPT sent */
	bool ended;             /* channel_end was called: closing */
	struct backend backend;
	uv_timer_t timer; /* connect deadline, then idle checks */
	unsigned closing; /* handles and requests closing */

	/* up: client -> backend */
	struct mux_rwin up;
	struct buf held;  /* before ACCEPT: what the client sent, at most one window */
	size_t up_queued; /* bytes in writes to the backend */
	bool up_fin;      /* the client sent FIN */
	bool up_shutting; /* ... so the backend's write side is being shut */
	bool up_shut;     /* ... and is shut */
	bool dropping;    /* a program stopped reading its input: the rest is dropped */

	/* down: backend -> client */
	uint64_t down_left; /* the client's credit for this stream */
	bool reading;       /* the backend is being read */
	bool down_fin;      /* the backend ended and FIN went out */

	uint64_t bytes_in, bytes_out;
	uint64_t last_activity_ms;
	uint64_t opened_ms;
	uint64_t opened_ns; /* uv_hrtime, for the time to reach the backend */
};

/* Copies of session frames sent, in order; each charged to the relay budget. */
struct mux_copy_seg {
	struct mux_copy_seg *next;
	size_t len; /* bytes of data used */
	uint8_t data[MUX_COPY_SEG_SIZE];
};

/* A ticket as fived keeps it: the id, and only a hash of the secret. */
struct mux_ticket_ref {
	uint8_t id[MUX_TICKET_ID_LEN];
	uint8_t hash[MUX_TICKET_HASH_LEN];
};

/*
 * What resuming needs (section 12): both counts of session-frame bytes,
 * the copies not yet acknowledged, the ticket (resume.c).
 */
struct mux_resume {
	bool asked;                /* the client sent DETACHABLE */
	bool granted;              /* the session is detachable: counted in site->ndetachable */
	bool detached;             /* no connection: frames only go to the copies */
	uint64_t sent, received;   /* session-frame bytes sent and received, whole frames */
	uint64_t peer_received;    /* the client's last RECEIVED */
	uint64_t reported;         /* the count fived last told the client */
	uint64_t base;             /* the count of the first byte held in the copies */
	struct mux_copy_seg *head; /* owned, with every segment after it */
	struct mux_copy_seg *tail;
	size_t head_off;    /* bytes of head already dropped */
	uint32_t timeout_s; /* the detach timeout the ticket was granted with */
	struct mux_ticket_ref ticket;
	struct mux_ticket_ref prev; /* the ticket before the last ATTACH, while prev_valid */
	bool prev_valid;
	uv_timer_t timer; /* RECEIVED within MUX_RECEIVED_DELAY_MS */
};

struct mux {
	struct site *site;
	const struct config *cfg;
	char id[SESSION_ID_LEN + 1]; /* the session's: backends' log lines point here */
	const struct mux_events *ev;
	void *owner;

	struct buf in;               /* a frame not yet whole */
	uint32_t last_id;            /* the highest stream id the client opened */
	unsigned nopen;              /* streams that count against max_streams */
	unsigned npending;           /* OPENs not answered yet */
	unsigned nchannels;          /* streams not yet freed, ending ones included */
	unsigned nrefused;           /* OPENs refused so far */
	unsigned cancels_left;       /* OPENs the client may still reset before their answer */
	uint64_t cancels_counted_ms; /* when cancels_left was last refilled */
	struct channel *buckets[MUX_BUCKETS];

	struct mux_rwin up;  /* the session's window, client -> fived */
	uint64_t down_left;  /* the client's credit for the session */
	bool reading_client; /* as last asked of the session */

	uint8_t ping[MUX_PING_LEN]; /* the PING awaiting its ACK */
	uint64_t ping_sent_ns;      /* 0: none outstanding */
	uint64_t rtt_ns;            /* the last round trip measured; 0: none yet */

	uv_timer_t idle_timer, ping_timer;
	unsigned timers_open;
	struct mux *held_prev, *held_next; /* on the site's budget_muxes list, while held_listed */
	bool held_listed;
	bool draining; /* fived is shutting down: the session ends with its last stream */
	bool goaway;   /* no new streams: GOAWAY sent */
	bool closing;  /* mux_close was called */
	bool finished; /* ev->finish was called */
	bool freed;    /* mux_free was called while streams were still closing */
	uint64_t bytes_in, bytes_out; /* of streams no longer in the table */
	struct mux_resume resume;
};

/* --- mux.c, for channel.c -------------------------------------------------- */

/* Queues one frame to the client (a copy).  0, or -1 when the session is ending. */
int mux_send_frame(struct mux *m, const uint8_t *frame, size_t len);

/* Gives credit for what was delivered onward, when half a window is: grows it on a fast link. */
void mux_credit(struct mux *m, struct mux_rwin *w, uint32_t id);

/*
 * Bytes the client sent that will not be delivered (their stream is over
 * or refused): the session's window gets them back at once, or it would
 * shrink for good.
 */
void mux_discard(struct mux *m, size_t n);

/*
 * Whether the relay budget is spent: then no credit is given and no
 * backend read, and the session waits on the site's list for the budget
 * to fall below its low-water mark (mux_budget_low).
 */
bool mux_budget_hold(struct mux *m);

/*
 * Whether m is detachable and the copies of all detachable sessions
 * together take their share of the relay budget (MUX_COPIES_SHARE): then
 * no backend of m is read, and m waits on the same list for the copies to
 * fall below three quarters of it (mux_copies_released).  Without the
 * share, clients that never acknowledge could hold the whole budget in
 * copies, and stall every session's relay until their detach timeouts.
 */
bool mux_copies_hold(struct mux *m);

/* The copies of detachable sessions took n bytes less: held sessions may go on. */
void mux_copies_released(struct site *site, uint64_t n);

/* Whether frames for the client are backed up: the client is not read meanwhile. */
bool mux_output_full(const struct mux *m);

/*
 * Whether no backend may be read now: frames for the client are backed
 * up, or the copies kept for resuming are at detach_queue_max.
 */
bool mux_down_full(const struct mux *m);

/* Sends one frame to the client, c taken; counted and copied when it is a session frame. */
int mux_emit(struct mux *m, struct chunk *c, size_t len);

/* Every stream reads its backend again if it may. */
void mux_resume_streams(struct mux *m);

/* The protocol was broken: GOAWAY PROTOCOL with why, and the session ends. */
void mux_fail(struct mux *m, const char *why);

/* A stream is gone from the table (its handles may still be closing). */
void mux_unlink(struct mux *m, struct channel *ch);

/* A stream joins the table, as OPEN made it. */
void mux_channel_linked(struct mux *m, struct channel *ch);

/* A stream is freed: the session may end or free. */
void mux_channel_freed(struct mux *m);

/* --- resume.c: DETACHABLE, RECEIVED and the copies (section 12) ------------ */

void resume_init(struct mux *m);

/* A frame fived sends: counted, and copied once the session is detachable.  0 or -1. */
int resume_sent(struct mux *m, const uint8_t *frame, size_t len);

/* A whole frame received (used bytes): counted; RECEIVED goes out when due. */
void resume_frame_in(struct mux *m, const struct mux_frame *f, size_t used);

/* The client's DETACHABLE: granted, refused, or a protocol error. */
void resume_on_detachable(struct mux *m, const struct mux_frame *f);

/* The client's RECEIVED: copies it covers are dropped, or a protocol error. */
void resume_on_received(struct mux *m, uint64_t count);

/* Whether the copies are at detach_queue_max. */
bool resume_copies_full(const struct mux *m);

/* The session ends: the timer closes (timers_open), the session is no longer detachable. */
void resume_close(struct mux *m);

/* Frees the copies and releases their charge. */
void resume_free(struct mux *m);

/* --- channel.c ------------------------------------------------------------ */

/* A granted OPEN: takes g, holds data, starts reaching the backend.  NULL when memory is short. */
struct channel *channel_open(struct mux *m, uint32_t id, struct mux_grant *g, const uint8_t *data,
                             size_t len);

/* DATA from the client (already within its windows). */
void channel_data(struct channel *ch, const uint8_t *data, size_t len);

/* FIN from the client. */
void channel_fin(struct channel *ch);

/* WINDOW from the client: credit for what goes to it. */
void channel_window(struct channel *ch, uint32_t credit);

/* Reads the backend again if it may: credit, and room towards the client. */
void channel_resume(struct channel *ch);

/*
 * Ends the stream: RST code/reason to the client unless code is 0, the
 * backend reset (reset) or closed, an audit record.  Safe more than once.
 */
void channel_end(struct channel *ch, uint8_t code, const char *reason, bool reset);

/*
 * Ends the stream properly: its backend's input ends (shutdown of the
 * write side, as after a FIN), then it is closed; no RST to the client.
 */
void channel_end_gently(struct channel *ch, const char *reason);

#endif
