/*
 * The session's socket: frames out (sealed into records when the session
 * is encrypted), frames in (records opened, then frames decoded and
 * handled as they complete).  Nothing here waits: the engine polls.
 */
#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/mux/mux.h"
#include "client/transport/seal.h"
#include "common/util.h"
#include "proto/mux.h"

static bool
transient(void)
{
	return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
}

void
mux_fail(struct five_session *s, enum five_step step, const char *why)
{
	if (s->dead)
		return;
	s->dead = true;
	five_fail(&s->error, step, "%s", why);
}

void
mux_broken(struct five_session *s, enum five_step step, const char *why)
{
	if (s->dead || s->broken)
		return;
	/* Closing, the session ends with this connection: nothing is left to resume. */
	if (s->resume != MUX_RESUME_ON || s->redial == NULL || s->closing) {
		mux_fail(s, step, why);
		return;
	}
	s->broken = true;
	s->broken_at = monotonic_ms();
	str_copy(s->broke_why, why, sizeof(s->broke_why));
}

/* Where the frame's type is in its header (section 11.2: id, then type). */
#define TYPE_AT 4

int
mux_send_parts(struct five_session *s, const uint8_t *head, size_t head_len, const uint8_t *body,
               size_t body_len)
{
	bool keep = s->resume == MUX_RESUME_ASKED || s->resume == MUX_RESUME_ON;

	if (head_len <= TYPE_AT || buf_append(&s->out, head, head_len) != 0 ||
	    (body_len > 0 && buf_append(&s->out, body, body_len) != 0))
		goto fail;
	if (!mux_type_counted(head[TYPE_AT]))
		return 0;
	s->tx_count += head_len + body_len;
	/* What fived has not said it received may have to be sent again (section 12.2). */
	if (keep && (buf_append(&s->copies, head, head_len) != 0 ||
	             (body_len > 0 && buf_append(&s->copies, body, body_len) != 0)))
		goto fail;
	return 0;
fail:
	mux_fail(s, FIVE_ERR_SYSTEM, "out of memory for frames");
	return -1;
}

int
mux_send_frame(struct five_session *s, const uint8_t *frame, size_t len)
{
	return mux_send_parts(s, frame, len, NULL, 0);
}

bool
mux_out_pending(const struct five_session *s)
{
	return s->out.len > 0 || s->wire_len > 0;
}

/* Sealed: frames into records, as far as the wire buffer has room. */
static int
seal_out(struct five_session *s)
{
	struct five_error err;
	size_t piece, n;

	while (s->out.len > 0 && sizeof(s->wire) - s->wire_len >= RECORD_WIRE_MAX) {
		piece = s->out.len < FIVE_WRAP_MAX ? s->out.len : FIVE_WRAP_MAX;
		if (five_seal_wrap(s->seal, s->out.data, piece, false, s->wire + s->wire_len,
		                   sizeof(s->wire) - s->wire_len, &n, &err) != 0) {
			mux_fail(s, err.step, err.message);
			return -1;
		}
		s->wire_len += n;
		buf_consume(&s->out, piece);
	}
	return 0;
}

int
mux_flush_session(struct five_session *s)
{
	uint8_t *data = s->seal != NULL ? s->wire : s->out.data;
	size_t len;
	ssize_t n;

	/* Broken: what is queued goes on the connection that attaches, from the copies. */
	if (s->broken)
		return 0;
	if (s->seal != NULL && seal_out(s) != 0)
		return -1;
	len = s->seal != NULL ? s->wire_len : s->out.len;
	if (len == 0)
		return 0;
	if ((n = send(s->fd, data, len, MSG_NOSIGNAL)) < 0) {
		if (transient())
			return 0;
		mux_broken(s, FIVE_ERR_CONNECT, strerror(errno));
		return -1;
	}
	if (s->seal == NULL) {
		buf_consume(&s->out, (size_t)n);
		return 0;
	}
	memmove(s->wire, s->wire + n, s->wire_len - (size_t)n);
	s->wire_len -= (size_t)n;
	return seal_out(s);
}

/* Every complete frame of s->in, handled in order. */
static int
take_frames(struct five_session *s)
{
	struct mux_frame f;
	const char *why = NULL;
	size_t at = 0, used;
	enum mux_status st = MUX_NEED_MORE;
	int r = 0;

	while (r == 0 && (st = mux_decode(s->in + at, s->in_len - at, &f, &used, &why)) == MUX_OK) {
		r = mux_handle_frame(s, &f);
		at += used;
	}
	/* DETACHABLE's answer carries the ticket. */
	sodium_memzero(&f, sizeof(f));
	if (r == 0 && st == MUX_BAD) {
		/* Fail closed: whatever else fived sends cannot be trusted to be framed. */
		mux_fail(s, FIVE_ERR_PROTOCOL, why);
		r = -1;
	}
	memmove(s->in, s->in + at, s->in_len - at);
	s->in_len -= at;
	return r;
}

/* Sealed: opens the records read, taking the frames of each as it comes. */
static int
open_records(struct five_session *s)
{
	struct five_error err;
	size_t used = 0, consumed, n;
	int st, r = 0;

	while (r == 0 && used < s->raw_len && !s->final_seen) {
		if (five_seal_unwrap(s->seal, s->raw + used, s->raw_len - used, &consumed,
		                     s->in + s->in_len, sizeof(s->in) - s->in_len, &n, &st,
		                     &err) != 0) {
			mux_fail(s, err.step, err.message);
			r = -1;
			break;
		}
		used += consumed;
		if (st == RECORD_NEED_MORE)
			break;
		if (st == RECORD_FINAL)
			s->final_seen = true;
		s->in_len += n;
		r = take_frames(s);
	}
	memmove(s->raw, s->raw + used, s->raw_len - used);
	s->raw_len -= used;
	return r;
}

int
mux_read_ahead(struct five_session *s)
{
	if (s->seal != NULL && s->raw_len > 0)
		return open_records(s);
	return s->in_len > 0 ? take_frames(s) : 0;
}

int
mux_read_session(struct five_session *s)
{
	uint8_t *dst = s->seal != NULL ? s->raw + s->raw_len : s->in + s->in_len;
	size_t room = s->seal != NULL ? sizeof(s->raw) - s->raw_len : sizeof(s->in) - s->in_len;
	ssize_t n;

	if (s->broken)
		return -1;
	if ((n = recv(s->fd, dst, room, 0)) < 0) {
		if (transient())
			return 0;
		mux_broken(s, FIVE_ERR_CONNECT, strerror(errno));
		return -1;
	}
	if (n == 0) {
		s->sock_eof = true;
		return 0;
	}
	if (s->seal == NULL) {
		s->in_len += (size_t)n;
		return take_frames(s);
	}
	s->raw_len += (size_t)n;
	return open_records(s);
}
