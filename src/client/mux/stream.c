/*
 * One stream of a multiplexed session: its local descriptor read into
 * DATA within both windows, fived's DATA written to it, ends of stream
 * passed on (FIN <-> shutdown(SHUT_WR) and end of file), resets both ways.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/base/sock.h"
#include "client/mux/mux.h"
#include "common/util.h"
#include "proto/mux.h"

/* OPEN's fields before its data: three length bytes and the token's second. */
#define OPEN_FIXED_LEN 4

static bool
transient(void)
{
	return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
}

struct mux_stream *
mux_stream_new(uint32_t id, int fd, const char *service, const void *early, size_t len)
{
	struct mux_stream *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->id = id;
	st->fd = fd;
	str_copy(st->service, service, sizeof(st->service));
	buf_init(&st->early, len);
	/* fived may send at most the window we give: the buffer's cap says so too. */
	buf_init(&st->down, MUX_CLIENT_STREAM_WINDOW_MAX);
	if (len > 0 && buf_append(&st->early, early, len) != 0) {
		free(st);
		return NULL;
	}
	st->tx_window = MUX_STREAM_WINDOW;
	st->rx_window = MUX_STREAM_WINDOW;
	st->rx_size = MUX_STREAM_WINDOW;
	st->round_start = monotonic_ms();
	return st;
}

/* Frees st; its descriptor is closed if it still has one. */
void
mux_stream_free(struct mux_stream *st)
{
	if (st == NULL)
		return;
	if (st->fd >= 0)
		close(st->fd);
	buf_free(&st->early);
	buf_free(&st->down);
	free(st);
}

struct mux_stream *
mux_stream_find(struct five_session *s, uint32_t id)
{
	struct mux_stream *st;

	for (st = s->streams; st != NULL; st = st->next)
		if (st->id == id)
			return st;
	return NULL;
}

/* What both windows allow now, at most a frame's payload. */
static size_t
credit(const struct five_session *s, const struct mux_stream *st, size_t max)
{
	uint64_t c = st->tx_window < s->tx_window ? st->tx_window : s->tx_window;

	return c < max ? (size_t)c : max;
}

static void
spend(struct five_session *s, struct mux_stream *st, size_t n)
{
	st->tx_window -= n;
	s->tx_window -= n;
}

int
mux_stream_open(struct five_session *s, struct mux_stream *st)
{
	uint8_t frame[MUX_FRAME_MAX];
	size_t fixed = OPEN_FIXED_LEN + strlen(st->service) + (s->token ? strlen(s->token) : 0);
	size_t n = credit(s, st, fixed < MUX_PAYLOAD_MAX ? MUX_PAYLOAD_MAX - fixed : 0);
	size_t len;

	if (n > st->early.len)
		n = st->early.len;
	len = mux_encode_open(frame, sizeof(frame), st->id, st->service, "", s->token,
	                      st->early.data, n);
	if (mux_send_frame(s, frame, len) != 0 || mux_window_start(s, st) != 0)
		return -1;
	spend(s, st, n);
	buf_consume(&st->early, n);
	st->open_sent = true;
	s->open_streams++;
	return 0;
}

static int
send_data(struct five_session *s, struct mux_stream *st, const uint8_t *data, size_t n)
{
	uint8_t header[MUX_HEADER_LEN];

	mux_header(header, st->id, MUX_DATA, 0, n);
	if (mux_send_parts(s, header, sizeof(header), data, n) != 0)
		return -1;
	spend(s, st, n);
	return 0;
}

/* Early data the OPEN could not carry goes before anything read from the descriptor. */
static int
send_early(struct five_session *s, struct mux_stream *st)
{
	size_t n;

	while (st->early.len > 0 && (n = credit(s, st, MUX_PAYLOAD_MAX)) > 0) {
		if (n > st->early.len)
			n = st->early.len;
		if (send_data(s, st, st->early.data, n) != 0)
			return -1;
		buf_consume(&st->early, n);
	}
	return 0;
}

bool
mux_stream_wants_read(const struct five_session *s, const struct mux_stream *st)
{
	return st->open_sent && !st->over && !st->local_eof && st->early.len == 0 &&
	       credit(s, st, 1) > 0 && s->out.len < MUX_OUT_HIGH && s->copies.len < MUX_COPIES_MAX;
}

/*
 * Whether the application closed its end whole, not only its sending side:
 * a Unix socket says so (POLLHUP) once both ways are shut.  Its OPEN is
 * then cancelled rather than left holding a pending place until the
 * backend answers or times out.
 */
static bool
peer_gone(int fd)
{
	struct pollfd p = {.fd = fd, .events = 0};

	return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) != 0;
}

int
mux_stream_read(struct five_session *s, struct mux_stream *st)
{
	uint8_t data[MUX_PAYLOAD_MAX];
	size_t room = credit(s, st, sizeof(data));
	char mark = 0;
	ssize_t n;

	/* Other streams may have spent the session's window since the poll: a read of 0 is no end.
	 */
	if (room == 0)
		return 0;
	if (!st->marked)
		n = recv(st->fd, data, room, 0);
	else if ((n = five_sock_recv_marked(st->fd, data, room, &mark)) >= 0 && mark != 0)
		st->end_marked = mark == FIVE_MARK_END;
	if (mark != 0 && !st->end_marked)
		return mux_stream_reset(s, st, true, MUX_RST_RESET, "reset by the application");
	/* The mark alone: its end comes next. */
	if (n == 0 && mark != 0)
		return 0;
	if (n < 0 && transient())
		return 0;
	if (n < 0)
		return mux_stream_reset(s, st, true, MUX_RST_RESET, "reset by the application");
	if (n == 0 && !st->accepted && peer_gone(st->fd))
		return mux_stream_reset(s, st, true, MUX_RST_RESET,
		                        "the application went away before the answer");
	if (n == 0 && st->marked && !st->end_marked)
		return mux_stream_reset(s, st, true, MUX_RST_RESET,
		                        "the application ended without its end (it died)");
	if (n == 0) {
		st->local_eof = true;
		return 0;
	}
	return send_data(s, st, data, (size_t)n);
}

/*
 * Of n bytes at the front of down that leave it, those fived sent: the
 * answer's line (announce) is ours, and has no credit.
 */
static size_t
counted(struct mux_stream *st, size_t n)
{
	size_t ours = n < st->uncounted ? n : st->uncounted;

	st->uncounted -= ours;
	return n - ours;
}

int
mux_stream_write(struct five_session *s, struct mux_stream *st)
{
	ssize_t n = send(st->fd, st->down.data, st->down.len, MSG_NOSIGNAL);
	size_t k;

	if (n < 0 && transient())
		return 0;
	if (n < 0)
		return mux_stream_reset(s, st, true, MUX_RST_RESET, "closed by the application");
	buf_consume(&st->down, (size_t)n);
	k = counted(st, (size_t)n);
	return k > 0 ? mux_window_delivered(s, st, k) : 0;
}

/*
 * Bytes of down that will not be written: the session's window has them
 * back (the stream's is over), or fived would hold back every stream's
 * bytes once enough streams had ended so.
 */
static int
drop_down(struct five_session *s, struct mux_stream *st)
{
	size_t k = counted(st, st->down.len);

	buf_free(&st->down);
	return k > 0 ? mux_window_dropped(s, k) : 0;
}

/* Best effort, on a socket that was just made: a line is smaller than its buffer. */
static void
announce_refusal(int fd, const char *why)
{
	char line[MUX_WHY_MAX + 4];
	int n = snprintf(line, sizeof(line), "- %s\n", why);

	if (send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return;
}

int
mux_stream_reset(struct five_session *s, struct mux_stream *st, bool send, uint8_t code,
                 const char *why)
{
	uint8_t frame[MUX_HEADER_LEN + 1 + MUX_REASON_MAX];
	int r = 0;

	if (st->over)
		return 0;
	if (send && st->open_sent)
		r = mux_send_frame(s, frame,
		                   mux_encode_rst(frame, sizeof(frame), st->id, code, why));
	if (st->announce && !st->accepted && st->fd >= 0)
		announce_refusal(st->fd, why);
	str_copy(st->why, why, sizeof(st->why));
	/*
	 * Marked, what came before the reset goes before its mark, as a TCP
	 * reset leaves readable what had arrived.  A TCP connection (five -L)
	 * learns of the reset as a reset, which drops what it had not taken:
	 * mux_attach set it to reset when closed.
	 */
	if (st->fd >= 0 && st->marked && st->accepted) {
		mux_stream_mark(s, st);
	} else {
		if (drop_down(s, st) != 0)
			r = -1;
		if (st->fd >= 0) {
			close(st->fd);
			st->fd = -1;
		}
	}
	st->over = true;
	if (st->open_sent)
		s->open_streams--;
	/* The owner hears fived's reasons; its own resets it knows of. */
	if (s->on_end != NULL)
		s->on_end(s->on_end_arg, st->id, st->service, st->refused, send ? NULL : st->why);
	return r;
}

void
mux_stream_mark(struct five_session *s, struct mux_stream *st)
{
	ssize_t n = 0;
	size_t k;
	int sent = -1;

	if (st->down.len > 0 &&
	    (n = send(st->fd, st->down.data, st->down.len, MSG_NOSIGNAL | MSG_DONTWAIT)) > 0) {
		buf_consume(&st->down, (size_t)n);
		if ((k = counted(st, (size_t)n)) > 0)
			(void)mux_window_dropped(s, k);
	}
	if (n < 0 && transient())
		return;
	if (n >= 0 && st->down.len > 0)
		return;
	(void)drop_down(s, st);
	if (n >= 0 && (sent = five_sock_send_mark(st->fd, FIVE_MARK_RESET)) == 0)
		return;
	/* The reason is best effort: the mark alone says that the stream was reset. */
	if (n >= 0 && sent == 1)
		(void)send(st->fd, st->why, strlen(st->why), MSG_NOSIGNAL | MSG_DONTWAIT);
	close(st->fd);
	st->fd = -1;
}

void
mux_stream_settle(struct five_session *s, struct mux_stream *st)
{
	uint8_t frame[MUX_HEADER_LEN];

	if (st->over || !st->open_sent)
		return;
	if (send_early(s, st) != 0)
		return;
	if (st->local_eof && st->early.len == 0 && !st->fin_sent) {
		if (mux_send_frame(s, frame,
		                   mux_encode_empty(frame, sizeof(frame), st->id, MUX_FIN)) != 0)
			return;
		st->fin_sent = true;
	}
	if (mux_stream_end_due(st)) {
		/* Marked: the end's mark goes first (poll asks for room when it has to wait). */
		if (st->marked && five_sock_send_mark(st->fd, FIVE_MARK_END) == 0)
			return;
		shutdown(st->fd, SHUT_WR);
		st->local_shut = true;
	}
	if (!st->fin_sent || !st->local_shut)
		return;
	/* Both directions ended: the stream is over, its id never used again. */
	five_sock_end_in_order(st->fd);
	close(st->fd);
	st->fd = -1;
	st->over = true;
	s->open_streams--;
	if (s->on_end != NULL)
		s->on_end(s->on_end_arg, st->id, st->service, false, NULL);
}
