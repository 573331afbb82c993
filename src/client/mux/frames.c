/*
 * One frame from fived, checked against the streams we opened and the
 * windows we gave (section 11.3, 11.4, 11.7): anything fived must not send
 * ends the session, so that a confused or hostile server cannot make us
 * deliver bytes to the wrong stream or hold more than we allowed.
 */
#include <string.h>

#include "client/mux/mux.h"
#include "common/util.h"
#include "proto/mux.h"

static int
bad(struct five_session *s, const char *why)
{
	mux_fail(s, FIVE_ERR_PROTOCOL, why);
	return -1;
}

/* A stream we opened and that is not over, or NULL (over: its frames are dropped). */
static int
live_stream(struct five_session *s, const struct mux_frame *f, struct mux_stream **out)
{
	struct mux_stream *st;

	*out = NULL;
	if (f->id % 2 == 0)
		return bad(s, "protocol error: a frame on a stream the server opened");
	if (f->id >= s->next_id)
		return bad(s, "protocol error: a frame on a stream never opened");
	st = mux_stream_find(s, f->id);
	if (st != NULL && !st->open_sent)
		return bad(s, "protocol error: a frame on a stream not opened yet");
	if (st != NULL && !st->over)
		*out = st;
	return 0;
}

static int
on_data(struct five_session *s, const struct mux_frame *f)
{
	struct mux_stream *st;

	if (live_stream(s, f, &st) != 0)
		return -1;
	if (f->len > s->rx_window)
		return bad(s, "protocol error: data beyond the session's window");
	s->rx_window -= f->len;
	if (st == NULL)
		return mux_window_dropped(s, f->len);
	if (!st->answered)
		return bad(s, "protocol error: DATA before ACCEPT");
	if (st->remote_fin)
		return bad(s, "protocol error: DATA after FIN");
	if (f->len > st->rx_window)
		return bad(s, "protocol error: data beyond a stream's window");
	st->rx_window -= f->len;
	if (buf_append(&st->down, f->payload, f->len) != 0) {
		mux_fail(s, FIVE_ERR_SYSTEM, "out of memory for a stream");
		return -1;
	}
	return 0;
}

static int
on_accept(struct five_session *s, const struct mux_frame *f)
{
	struct mux_stream *st;

	if (live_stream(s, f, &st) != 0 || st == NULL)
		return st == NULL && !s->dead ? 0 : -1;
	if (st->answered)
		return bad(s, "protocol error: a second answer to an OPEN");
	st->answered = true;
	st->accepted = true;
	/* Before any DATA of the stream, which comes after ACCEPT. */
	if (st->announce && buf_append(&st->down, "+\n", 2) != 0) {
		mux_fail(s, FIVE_ERR_SYSTEM, "out of memory for a stream");
		return -1;
	}
	st->uncounted = st->announce ? 2 : 0;
	return 0;
}

static int
on_window(struct five_session *s, const struct mux_frame *f)
{
	struct mux_stream *st;

	if (f->id == 0)
		return mux_window_add(&s->tx_window, f->u.credit) == 0
		               ? 0
		               : bad(s, "protocol error: the session's window grew past 2^31-1");
	/* Credit may be in flight on a stream that is over, or the server's own ids. */
	if (f->id % 2 == 0 || f->id >= s->next_id || (st = mux_stream_find(s, f->id)) == NULL ||
	    st->over)
		return 0;
	return mux_window_add(&st->tx_window, f->u.credit) == 0
	               ? 0
	               : bad(s, "protocol error: a stream's window grew past 2^31-1");
}

static int
on_fin(struct five_session *s, const struct mux_frame *f)
{
	struct mux_stream *st;

	if (live_stream(s, f, &st) != 0 || st == NULL)
		return st == NULL && !s->dead ? 0 : -1;
	if (st->remote_fin)
		return bad(s, "protocol error: FIN after FIN");
	st->remote_fin = true;
	return 0;
}

static int
on_rst(struct five_session *s, const struct mux_frame *f)
{
	struct mux_stream *st;

	if (f->id % 2 == 0 || f->id >= s->next_id || (st = mux_stream_find(s, f->id)) == NULL ||
	    st->over)
		return 0;
	if (!st->answered) {
		st->answered = true;
		st->refused = true;
	}
	return mux_stream_reset(s, st, false, f->u.end.code,
	                        f->u.end.reason[0] != '\0' ? f->u.end.reason : "reset");
}

static int
on_ping(struct five_session *s, const struct mux_frame *f)
{
	uint8_t frame[MUX_HEADER_LEN + MUX_PING_LEN];
	uint64_t now;

	if (!(f->flags & MUX_FLAG_ACK))
		return mux_send_frame(
		        s, frame, mux_encode_ping(frame, sizeof(frame), MUX_FLAG_ACK, f->payload));
	/* An answer to nothing we asked is ignored (section 11.2). */
	if (!s->ping_out || memcmp(f->payload, s->ping, MUX_PING_LEN) != 0)
		return 0;
	now = monotonic_ms();
	s->ping_out = false;
	s->rtt_ms = now > s->ping_at ? now - s->ping_at : 1;
	return 0;
}

static int
on_goaway(struct five_session *s, const struct mux_frame *f)
{
	s->goaway = true;
	if (f->u.end.code == MUX_GOAWAY_PROTOCOL) {
		/* fived closes the session right after: its reason is the session's error. */
		mux_fail(s, FIVE_ERR_PROTOCOL,
		         f->u.end.reason[0] != '\0' ? f->u.end.reason : "protocol error");
		return -1;
	}
	return 0;
}

int
mux_handle_frame(struct five_session *s, const struct mux_frame *f)
{
	if (mux_resume_heard(s, f) != 0)
		return -1;
	switch (f->type) {
	case MUX_DATA:
		return on_data(s, f);
	case MUX_ACCEPT:
		return on_accept(s, f);
	case MUX_WINDOW:
		return on_window(s, f);
	case MUX_FIN:
		return on_fin(s, f);
	case MUX_RST:
		return on_rst(s, f);
	case MUX_PING:
		return on_ping(s, f);
	case MUX_GOAWAY:
		return on_goaway(s, f);
	case MUX_DETACHABLE:
		if (s->resume != MUX_RESUME_ASKED || f->u.detach.request)
			return bad(s, "protocol error: a DETACHABLE that answers nothing we asked");
		return mux_resume_answer(s, f);
	case MUX_RECEIVED:
		return mux_resume_received(s, f->u.received);
	case MUX_OPEN:
		break;
	}
	return bad(s, "protocol error: OPEN from the server");
}
