#include "client/relay/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/base/sock.h"
#include "client/dialect/text.h"
#include "client/transport/seal.h"
#include "common/util.h"
#include "crypto/record.h"
#include "proto/line.h"

#define RELAY_BUFFER (64 * 1024)
/* Sealed: bytes from fived before decryption, records before sending. */
#define RAW_BUFFER  (RELAY_BUFFER + RECORD_WIRE_MAX)
#define WIRE_BUFFER (4 * RECORD_WIRE_MAX)
_Static_assert(RAW_BUFFER >= SEALED_PENDING_MAX, "a sealed session's pending bytes fit in raw");

struct pipe_buf {
	uint8_t data[RELAY_BUFFER];
	size_t len;
};

struct relay {
	const struct relay_ends *e;
	struct pipe_buf up, down; /* plaintext: application -> fived, fived -> application */
	uint8_t raw[RAW_BUFFER];  /* sealed: fived's records not yet opened */
	size_t raw_len;
	uint8_t wire[WIRE_BUFFER]; /* sealed: records not yet sent */
	size_t wire_len;
	char reply[LINE_MAX_BYTES];
	size_t reply_len;
	unsigned replies_due;
	bool in_eof, sock_eof, sock_shut, out_shut, final_seen;
	bool stopped;            /* told to stop (stop_fd) after in_fd ended */
	bool cut;                /* cut short (a signal, the output gone): the session resets */
	bool quiet;              /* fived's side ended, and in_fd was then quiet for quiet_ms */
	uint64_t quiet_deadline; /* when in_fd will have been quiet long enough */
	bool reset;              /* marked_ends: a reset's mark came; what follows is the reason */
	bool end_marked;         /* marked_ends: the mark of an end in order came */
	const char *bad_end;     /* marked_ends: how the stream's end broke the rule, or NULL */
	/* sock failed ("recv" or "send", errno): reported once what came before is written out */
	const char *broke_on;
	int broke;
	char reset_why[FIVE_LINE_MAX];
	size_t reset_why_len;
	uint64_t deadline;
};

static bool
transient(void)
{
	return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
}

/* Bytes from fived before the grant: reply lines, then the service's first bytes. */
static int
take_replies(struct relay *r, const uint8_t *p, size_t n, struct five_error *err)
{
	size_t i;

	for (i = 0; i < n && r->replies_due > 0; i++) {
		if (p[i] == '\0')
			return five_fail(err, FIVE_ERR_PROTOCOL, "a NUL byte in a reply line");
		if (p[i] != '\n') {
			if (r->reply_len == sizeof(r->reply) - 1)
				return five_fail(err, FIVE_ERR_PROTOCOL, "reply line too long");
			r->reply[r->reply_len++] = (char)p[i];
			continue;
		}
		if (r->reply_len > 0 && r->reply[r->reply_len - 1] == '\r')
			r->reply_len--;
		r->reply[r->reply_len] = '\0';
		r->reply_len = 0;
		if (five_text_check_reply(r->reply, err) != 0)
			return -1;
		if (--r->replies_due == 0 && r->e->granted_note != NULL)
			fprintf(stderr, "%s\n", r->e->granted_note);
	}
	memcpy(r->down.data + r->down.len, p + i, n - i);
	r->down.len += n - i;
	return 0;
}

/* Sealed: opens the records held while there is room for what they may hold. */
static int
open_records(struct relay *r, struct five_error *err)
{
	struct five_seal *z = r->e->seal;
	uint8_t pt[RECORD_PLAINTEXT_MAX];
	size_t used = 0, consumed, n;
	int st = RECORD_NEED_MORE, result = 0;

	while (used < r->raw_len && sizeof(r->down.data) - r->down.len >= sizeof(pt)) {
		result = five_seal_unwrap(z, r->raw + used, r->raw_len - used, &consumed, pt,
		                          sizeof(pt), &n, &st, err);
		used += consumed;
		if (result != 0)
			break;
		if (st == RECORD_FINAL)
			r->final_seen = true;
		if (st == RECORD_OK && (result = take_replies(r, pt, n, err)) != 0)
			break;
		if (st != RECORD_OK)
			break;
	}
	memmove(r->raw, r->raw + used, r->raw_len - used);
	r->raw_len -= used;
	sodium_memzero(pt, sizeof(pt));
	return result;
}

/*
 * Plain: recv(), which with marked_ends finds the marks (base/sock.h):
 * after a reset's, what follows is kept as the reason; after an end's,
 * only the end may follow; an end without either is the agent's death.
 * Bytes that are not the application's are taken as a read that found
 * nothing (EAGAIN).
 */
static ssize_t
recv_plain(struct relay *r, uint8_t *dst, size_t room)
{
	size_t keep = sizeof(r->reset_why) - 1 - r->reset_why_len;
	char mark;
	ssize_t n;

	if (!r->e->marked_ends)
		return recv(r->e->sock, dst, room, 0);
	if (r->end_marked) {
		if ((n = recv(r->e->sock, dst, room, 0)) > 0)
			r->bad_end = "bytes after the end of the agent's stream";
		return n > 0 ? -1 : n;
	}
	if (!r->reset) {
		n = five_sock_recv_marked(r->e->sock, dst, room, &mark);
		r->reset = mark != 0 && mark != FIVE_MARK_END;
		r->end_marked = mark == FIVE_MARK_END;
		/*
		 * Unmarked, the end or a reset (bytes it had not read) is the
		 * agent's death; before the answer, "closed before a reply" says it.
		 */
		if ((n == 0 || (n < 0 && errno == ECONNRESET)) && mark == 0 &&
		    r->replies_due == 0) {
			r->bad_end = "the agent's stream ended without its end (the agent died?)";
			return -1;
		}
		if (n != 0 || mark == 0)
			return n;
	} else {
		/*
		 * The agent's end goes with the mark (it carries it); with bytes
		 * of ours unread there, the socket then says ECONNRESET where it
		 * would say EOF: the end of the reason either way.
		 */
		if ((n = recv(r->e->sock, dst, room, 0)) < 0 && errno == ECONNRESET)
			return 0;
		if (n <= 0)
			return n;
		keep = (size_t)n < keep ? (size_t)n : keep;
		memcpy(r->reset_why + r->reset_why_len, dst, keep);
		r->reset_why_len += keep;
	}
	errno = EAGAIN;
	return -1;
}

/*
 * sock failed (a reset, most often): nothing more goes up, and what fived
 * sent before still goes to the application, as a TCP reset leaves
 * readable what had arrived; then the session fails.
 */
static void
sock_broke(struct relay *r, const char *op)
{
	if (r->broke != 0)
		return;
	r->broke = errno != 0 ? errno : EIO;
	r->broke_on = op;
}

/* Nothing more goes to fived: its stream was reset, or sock failed. */
static bool
up_stopped(const struct relay *r)
{
	return r->reset || r->broke != 0;
}

/* The failure that stopped the stream (up_stopped): sock's, or the reset's with its reason. */
static int
fail_stopped(const struct relay *r, struct five_error *err)
{
	if (r->broke != 0)
		return five_fail(err, FIVE_ERR_CONNECT, "%s: %s", r->broke_on, strerror(r->broke));
	return five_fail(err, FIVE_ERR_CONNECT, "stream reset: %s",
	                 r->reset_why_len > 0 ? r->reset_why : "(no reason given)");
}

static int
read_sock(struct relay *r, struct five_error *err)
{
	uint8_t *dst = r->e->seal != NULL ? r->raw + r->raw_len : r->down.data + r->down.len;
	size_t room = r->e->seal != NULL ? sizeof(r->raw) - r->raw_len
	                                 : sizeof(r->down.data) - r->down.len;
	uint8_t tmp[RELAY_BUFFER];
	ssize_t n;

	/* Plain: through tmp, so that reply lines can be taken out. */
	if (r->e->seal == NULL)
		n = recv_plain(r, tmp, room < sizeof(tmp) ? room : sizeof(tmp));
	else
		n = recv(r->e->sock, dst, room, 0);
	if (n < 0 && r->bad_end != NULL)
		return five_fail(err, FIVE_ERR_CONNECT, "%s", r->bad_end);
	if (n < 0 && transient())
		return 0;
	if (n < 0 && r->replies_due > 0)
		return five_fail(err, FIVE_ERR_CONNECT, "recv: %s", strerror(errno));
	if (n < 0) {
		sock_broke(r, "recv");
		r->sock_eof = true;
		return 0;
	}
	if (n == 0) {
		r->sock_eof = true;
		if (r->replies_due > 0 && (r->e->seal == NULL || r->raw_len == 0))
			return five_fail(err, FIVE_ERR_PROTOCOL,
			                 "connection closed before a reply");
		return 0;
	}
	if (r->e->seal != NULL) {
		r->raw_len += (size_t)n;
		return open_records(r, err);
	}
	return take_replies(r, tmp, (size_t)n, err);
}

/* Before the grant, what is read from in_fd may have to be sent again (relay.h). */
static void
keep_for_resend(struct relay *r, const uint8_t *p, size_t n)
{
	const struct relay_ends *e = r->e;

	if (r->replies_due > 0 && e->resend != NULL && e->resend_size - *e->resend_len >= n) {
		memcpy(e->resend + *e->resend_len, p, n);
		*e->resend_len += n;
	} else if (e->input_read != NULL) {
		*e->input_read = true;
	}
}

static int
read_in(struct relay *r)
{
	ssize_t n = read(r->e->in_fd, r->up.data + r->up.len, sizeof(r->up.data) - r->up.len);

	if (n < 0 && transient())
		return 0;
	if (n <= 0) {
		r->in_eof = true;
		return 0;
	}
	keep_for_resend(r, r->up.data + r->up.len, (size_t)n);
	r->up.len += (size_t)n;
	r->quiet_deadline = monotonic_ms() + (uint64_t)r->e->quiet_ms;
	return 0;
}

/* Writes as much of b as fd takes.  Returns 0, or -1 when fd is gone. */
static int
flush(int fd, uint8_t *data, size_t *len, bool is_socket)
{
	ssize_t n = is_socket ? send(fd, data, *len, MSG_NOSIGNAL) : write(fd, data, *len);

	if (n < 0)
		return transient() ? 0 : -1;
	memmove(data, data + n, *len - (size_t)n);
	*len -= (size_t)n;
	return 0;
}

/* Sealed: turns the application's bytes (and at its end, FINAL) into records. */
static int
seal_up(struct relay *r, struct five_error *err)
{
	struct five_seal *z = r->e->seal;
	size_t piece, n;

	while (r->up.len > 0 && sizeof(r->wire) - r->wire_len >= RECORD_WIRE_MAX) {
		piece = r->up.len < FIVE_WRAP_MAX ? r->up.len : FIVE_WRAP_MAX;
		if (five_seal_wrap(z, r->up.data, piece, false, r->wire + r->wire_len,
		                   sizeof(r->wire) - r->wire_len, &n, err) != 0)
			return -1;
		r->wire_len += n;
		memmove(r->up.data, r->up.data + piece, r->up.len - piece);
		r->up.len -= piece;
	}
	if (r->in_eof && r->up.len == 0 && !z->final_sealed &&
	    sizeof(r->wire) - r->wire_len >= RECORD_WIRE_MAX) {
		if (five_seal_wrap(z, NULL, 0, true, r->wire + r->wire_len,
		                   sizeof(r->wire) - r->wire_len, &n, err) != 0)
			return -1;
		r->wire_len += n;
	}
	return 0;
}

static int
send_up(struct relay *r, struct five_error *err)
{
	int bad;

	if (r->e->seal == NULL)
		bad = flush(r->e->sock, r->up.data, &r->up.len, true);
	else
		bad = seal_up(r, err) != 0 || flush(r->e->sock, r->wire, &r->wire_len, true) != 0;
	if (!bad)
		return 0;
	/* After the service's end, fived resets a stream whose service no longer reads. */
	if (r->sock_eof)
		return five_fail(err, FIVE_ERR_CONNECT,
		                 "the service ended and took no more input (send: %s)",
		                 strerror(errno));
	/* What fived sent before is read on, to its end. */
	sock_broke(r, "send");
	return 0;
}

/*
 * Shuts sock's write side; with marked ends behind the mark that says the
 * end is in order (an end without it is an application that died).
 */
static void
shut_sock(struct relay *r)
{
	uint64_t deadline = monotonic_ms() + (uint64_t)r->e->timeout_ms;
	struct pollfd p = {.fd = r->e->sock, .events = POLLOUT};

	while (r->e->marked_ends && five_sock_send_mark(r->e->sock, FIVE_MARK_END) == 0 &&
	       poll(&p, 1, five_ms_left(deadline)) > 0)
		;
	shutdown(r->e->sock, SHUT_WR);
}

/*
 * Standard output, where the relay goes on for the input after the
 * service's end: that end reaches whoever reads it now.  A socket (which
 * may be standard input too) is shut for writing; anything else is
 * replaced by /dev/null, the descriptor staying taken.
 */
static void
end_output(int fd)
{
	struct stat st;
	int null;

	if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
		shutdown(fd, SHUT_WR);
		return;
	}
	if ((null = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
		return;
	dup2(null, fd);
	close(null);
}

/*
 * Ends of stream travel on: an application EOF becomes a shutdown towards
 * fived, and back.  On a socket, when both have come, the application's
 * goes first: an application that has ended its side may exit as soon as
 * it sees fived's end, and with it a relay thread (five_handoff) that had
 * yet to send FINAL.
 */
static void
propagate_ends(struct relay *r)
{
	bool sent_all = r->up.len == 0 && r->wire_len == 0 &&
	                (r->e->seal == NULL || r->e->seal->final_sealed);

	if (r->in_eof && sent_all && !r->sock_shut) {
		shut_sock(r);
		r->sock_shut = true;
	}
	if (r->sock_eof && r->down.len == 0 && r->raw_len == 0 && !r->out_shut &&
	    (!r->e->out_is_socket || !r->in_eof || r->sock_shut)) {
		if (r->e->out_is_socket)
			shutdown(r->e->out_fd, SHUT_WR);
		else if (r->e->quiet_ms > 0)
			end_output(r->e->out_fd);
		r->out_shut = true;
		r->quiet_deadline = monotonic_ms() + (uint64_t)r->e->quiet_ms;
	}
}

static bool
finished(const struct relay *r)
{
	if (r->stopped)
		return true;
	/*
	 * A forwarded connection is over when both sides are; on standard
	 * output, when fived's side is and the input ended or went quiet.
	 */
	if (r->e->out_is_socket)
		return r->out_shut && r->sock_shut;
	return r->out_shut && (r->sock_shut || r->quiet || r->e->quiet_ms == 0);
}

/* Waiting for the replies, or, after fived's side ended, for the input to go quiet. */
static int
poll_timeout(const struct relay *r)
{
	if (r->replies_due > 0)
		return five_ms_left(r->deadline);
	return r->out_shut && !r->e->out_is_socket ? five_ms_left(r->quiet_deadline) : -1;
}

static bool
wants_sock_input(const struct relay *r)
{
	if (r->sock_eof)
		return false;
	if (r->e->seal != NULL)
		return r->raw_len < sizeof(r->raw);
	return r->down.len < sizeof(r->down.data);
}

/* Takes what in_fd holds now, as room allows, without waiting. */
static void
take_pending_input(struct relay *r)
{
	struct pollfd pfd = {.fd = r->e->in_fd, .events = POLLIN};

	while (!r->in_eof && r->up.len < sizeof(r->up.data) && poll(&pfd, 1, 0) == 1)
		read_in(r);
}

/* Room for the stop requests that may be waiting at once. */
#define STOP_BYTES_MAX 16

/*
 * Told to stop.  At the end: what in_fd holds now is taken (as room
 * allows), and the relay ends, as a session whose input ended if in_fd is
 * at its end.  Now: the session is cut short.  A session that already
 * broke fails as it broke.
 */
static int
stop(struct relay *r, struct five_error *err)
{
	char how[STOP_BYTES_MAX];
	ssize_t n = read(r->e->stop_fd, how, sizeof(how));

	if (n <= 0)
		return 0;
	if (up_stopped(r))
		return fail_stopped(r, err);
	if (memchr(how, RELAY_STOP_NOW, (size_t)n) != NULL) {
		r->cut = true;
		return five_fail(err, FIVE_ERR_SYSTEM, "stopped by a signal");
	}
	take_pending_input(r);
	if (!r->in_eof)
		return five_fail(err, FIVE_ERR_SYSTEM, "hung up before the end of the input");
	r->stopped = true;
	return 0;
}

/* Whether a stop waits in stop_fd (-1: none). */
static bool
stop_pending(int stop_fd)
{
	struct pollfd p = {.fd = stop_fd, .events = POLLIN};

	return stop_fd >= 0 && poll(&p, 1, 0) == 1;
}

static int
step(struct relay *r, struct five_error *err)
{
	const struct relay_ends *e = r->e;
	struct pollfd pfd[5] = {{.fd = -1}, {.fd = -1}, {.fd = -1}, {.fd = -1}, {.fd = -1}};
	int n;

	if (!r->in_eof && r->up.len < sizeof(r->up.data) &&
	    !(e->hold_input && r->replies_due > 0) && !up_stopped(r))
		pfd[0] = (struct pollfd){.fd = e->in_fd, .events = POLLIN};
	if (wants_sock_input(r))
		pfd[1] = (struct pollfd){.fd = e->sock, .events = POLLIN};
	if ((r->up.len > 0 || r->wire_len > 0 ||
	     (e->seal != NULL && r->in_eof && !e->seal->final_sealed)) &&
	    !up_stopped(r))
		pfd[2] = (struct pollfd){.fd = e->sock, .events = POLLOUT};
	if (r->down.len > 0)
		pfd[3] = (struct pollfd){.fd = e->out_fd, .events = POLLOUT};
	pfd[4] = (struct pollfd){.fd = e->stop_fd, .events = POLLIN};
	if ((n = poll(pfd, 5, poll_timeout(r))) < 0)
		return errno == EINTR
		               ? 0
		               : five_fail(err, FIVE_ERR_SYSTEM, "poll: %s", strerror(errno));
	/*
	 * A signal whose handler ran as poll returned came with what poll
	 * answered, or before it (ssh's SIGHUP, then the end of input): it goes
	 * first.
	 */
	if (pfd[4].revents != 0 || stop_pending(e->stop_fd))
		return stop(r, err);
	/* Quiet is the input's silence, not bytes of it waiting for fived to take them. */
	if (n == 0 && r->replies_due == 0) {
		r->quiet = pfd[0].fd >= 0 && r->up.len == 0 && r->wire_len == 0;
		r->quiet_deadline = monotonic_ms() + (uint64_t)e->quiet_ms;
		return 0;
	}
	if (n == 0)
		return five_fail(err, FIVE_ERR_PROTOCOL, "no reply within %d ms", e->timeout_ms);
	if (pfd[1].revents != 0 && read_sock(r, err) != 0)
		return -1;
	/* After a reset nothing more goes up: the stream is gone, what came before is read. */
	if (pfd[0].revents != 0 && !up_stopped(r))
		read_in(r);
	if (pfd[2].revents != 0 && !up_stopped(r) && send_up(r, err) != 0)
		return -1;
	if (pfd[3].revents != 0 &&
	    flush(e->out_fd, r->down.data, &r->down.len, e->out_is_socket) != 0) {
		/* Standard output's reader went away (five | head): the session is cut. */
		if (!e->out_is_socket) {
			r->cut = true;
			return five_fail(err, FIVE_ERR_SYSTEM, "writing the output: %s",
			                 strerror(errno));
		}
		/* The application stopped reading: nothing more can be delivered. */
		r->down.len = 0;
		r->raw_len = 0;
		r->sock_eof = true;
		r->final_seen = true;
	}
	if (e->seal != NULL && r->raw_len > 0 && open_records(r, err) != 0)
		return -1;
	/*
	 * Everything before sock's failure or the stream's reset is out (a
	 * record cut in two cannot be); then the session fails, as TCP's reset.
	 */
	if (up_stopped(r) && r->sock_eof && r->down.len == 0)
		return fail_stopped(r, err);
	/*
	 * fived ends a sealed stream with a FINAL record: without one, it was
	 * cut; unless sock had failed (a send took the reset's error, and the
	 * read after it an end): that failure is told once what came is out.
	 */
	if (e->seal != NULL && r->sock_eof && r->raw_len == 0 && !r->final_seen && !up_stopped(r))
		return five_fail(err, FIVE_ERR_PROTOCOL, "the session was cut short");
	/*
	 * fived's end came while the application's input was not being read
	 * (held for the replies): an end the application already sent must be
	 * seen now, so that it goes to fived before fived's end goes to it.
	 */
	if (r->sock_eof && pfd[0].fd < 0 && !up_stopped(r))
		take_pending_input(r);
	propagate_ends(r);
	return 0;
}

/*
 * A session that did not fail ends cleanly, also when fived's side ended
 * first, when the request was refused, or when the relay was told to
 * stop: what the application sent is sent, then the end of its stream
 * (sealed: FINAL, five_seal_end; plain: TCP's half-close).  A sealed one
 * that failed is given up at once: without FINAL while the application's
 * stream was still on its way, so that fived takes it for the truncation
 * it is, and without waiting for an end of fived's that a failure (fived
 * silent past the timeout, say) gives no reason to expect.
 */
static void
end_session(struct relay *r, bool failed)
{
	struct five_seal *z = r->e->seal;
	uint64_t deadline = monotonic_ms() + (uint64_t)r->e->timeout_ms;
	struct five_error ignored;

	/* Cut (a signal, the output gone): fived learns it as a reset, also after FINAL. */
	if (r->cut) {
		if (z != NULL)
			z->ended = true;
		return;
	}
	if (z == NULL) {
		if (!failed && !r->sock_shut &&
		    five_sock_send_by(r->e->sock, r->up.data, r->up.len, deadline, &ignored) == 0)
			shut_sock(r);
		/* Plain text has no FINAL: only an upload sent whole and ended closes in order. */
		if (!failed && r->sock_shut)
			five_sock_end_in_order(r->e->sock);
		return;
	}
	if (failed) {
		z->ended = true;
		return;
	}
	r->in_eof = true;
	while (!z->final_sealed || r->wire_len > 0) {
		if (seal_up(r, &ignored) != 0 ||
		    five_sock_send_by(r->e->sock, r->wire, r->wire_len, deadline, &ignored) != 0) {
			z->ended = true;
			return;
		}
		r->wire_len = 0;
	}
	five_seal_end(z, r->e->sock, r->e->timeout_ms);
	five_sock_end_in_order(r->e->sock);
}

int
five_relay(const struct relay_ends *e, struct five_error *err)
{
	struct relay *r = calloc(1, sizeof(*r));
	int result = 0;

	if (r == NULL)
		return five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
	r->e = e;
	r->replies_due = e->replies;
	/* Until the session ends in order: five killed outright resets it, plain text too. */
	five_sock_reset_on_close(e->sock);
	r->deadline = monotonic_ms() + (uint64_t)e->timeout_ms;
	if (e->initial_len > 0)
		result = take_replies(r, e->initial, e->initial_len, err);
	/* A sealed session may have read the start of fived's records with its handshake. */
	if (result == 0 && e->seal != NULL && e->seal->pending_len > 0) {
		memcpy(r->raw, e->seal->pending, e->seal->pending_len);
		r->raw_len = e->seal->pending_len;
		result = open_records(r, err);
	}
	while (result == 0 && !finished(r))
		result = step(r, err);
	end_session(r,
	            result != 0 && err->step != FIVE_ERR_REFUSED && err->step != FIVE_ERR_REDIRECT);
	sodium_memzero(r, sizeof(*r));
	free(r);
	return result;
}
