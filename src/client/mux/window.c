/*
 * Credit back to fived (section 11.4).  A window's worth of bytes held
 * for a stream is the most its local reader can make us keep: credit is
 * returned only as the local side takes the bytes, once half a window has
 * gone.  A window the reader used whole in under two round trips is too
 * small for the path: it is doubled, up to a cap, so that a stream's
 * window grows toward the bandwidth-delay product.
 */
#include "client/mux/mux.h"
#include "common/util.h"
#include "proto/mux.h"

/* The credit a window's growth adds (0 or *size, which doubles), judged once a whole window went.
 */
static uint32_t
grow(uint32_t *size, uint64_t *round_start, uint64_t *round_bytes, uint32_t cap, uint64_t rtt_ms)
{
	uint64_t now = monotonic_ms();
	uint32_t extra = 0;

	if (*round_bytes < *size)
		return 0;
	if (rtt_ms > 0 && now - *round_start < 2 * rtt_ms && *size <= cap / 2) {
		extra = *size;
		*size *= 2;
	}
	*round_start = now;
	*round_bytes = 0;
	return extra;
}

static int
send_window(struct five_session *s, uint32_t id, uint64_t credit)
{
	uint8_t frame[MUX_HEADER_LEN + MUX_WINDOW_LEN];

	return mux_send_frame(s, frame,
	                      mux_encode_window(frame, sizeof(frame), id, (uint32_t)credit));
}

static int
session_credit(struct five_session *s, size_t n)
{
	uint64_t credit;

	s->rx_delivered += n;
	s->round_bytes += n;
	if (s->rx_delivered < s->rx_size / 2)
		return 0;
	credit = s->rx_delivered + grow(&s->rx_size, &s->round_start, &s->round_bytes,
	                                MUX_CLIENT_SESSION_WINDOW_MAX, s->rtt_ms);
	s->rx_delivered = 0;
	s->rx_window += credit;
	return send_window(s, 0, credit);
}

int
mux_window_start(struct five_session *s, struct mux_stream *st)
{
	uint32_t extra = s->stream_window > st->rx_size ? s->stream_window - st->rx_size : 0;

	if (extra == 0)
		return 0;
	st->rx_size += extra;
	st->rx_window += extra;
	return send_window(s, st->id, extra);
}

int
mux_window_dropped(struct five_session *s, size_t n)
{
	return session_credit(s, n);
}

int
mux_window_delivered(struct five_session *s, struct mux_stream *st, size_t n)
{
	uint64_t credit;

	st->rx_delivered += n;
	st->round_bytes += n;
	/* After fived's FIN no DATA comes: credit would be wasted on it. */
	if (!st->remote_fin && st->rx_delivered >= st->rx_size / 2) {
		credit = st->rx_delivered + grow(&st->rx_size, &st->round_start, &st->round_bytes,
		                                 MUX_CLIENT_STREAM_WINDOW_MAX, s->rtt_ms);
		if (st->rx_size > s->stream_window)
			s->stream_window = st->rx_size;
		st->rx_delivered = 0;
		st->rx_window += credit;
		if (send_window(s, st->id, credit) != 0)
			return -1;
	}
	return session_credit(s, n);
}
