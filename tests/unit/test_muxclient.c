/*
 * The client side of MULTIPLEX (src/client/mux/) against a socketpair
 * standing in for fived: the test reads the frames the engine sends and
 * writes fived's, and checks streams, windows, credit and failures.
 */
#include "unit.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/base/sock.h"
#include "client/mux/mux.h"
#include "client/transport/conn.h"
#include "client/transport/seal.h"
#include "common/util.h"
#include "crypto/record.h"
#include "proto/mux.h"

#define WAIT_MS 5000
#define POLL_MS 10

/* The fake fived: its end of the session, and the bytes read but not yet taken as frames. */
struct fake {
	int fd;
	uint8_t in[4 * MUX_FRAME_MAX];
	size_t len;
	uint8_t frame[MUX_FRAME_MAX]; /* the last frame read; f points into it */
	struct mux_frame f;
	uint64_t credit[8]; /* WINDOW credit seen, by stream id (0: the session) */
};

static struct five_session *
session_with(struct fake *fk, const struct five_options *o)
{
	struct five_conn c;
	struct five_error err;
	struct five_session *s;
	int pair[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
	memset(&c, 0, sizeof(c));
	c.fd = pair[0];
	c.timeout_ms = WAIT_MS;
	memset(fk, 0, sizeof(*fk));
	fk->fd = pair[1];
	s = mux_session_new(&c, o, &err);
	assert_non_null(s);
	assert_int_equal(mux_session_start(s, &err), 0);
	return s;
}

static struct five_session *
session(struct fake *fk)
{
	return session_with(fk, &(struct five_options){.timeout_ms = WAIT_MS});
}

/* The next frame from the engine other than PING and WINDOW (counted); false at its end. */
static bool
next(struct fake *fk)
{
	struct pollfd pfd = {.fd = fk->fd, .events = POLLIN};
	const char *why;
	size_t used;
	ssize_t n;

	for (;;) {
		if (mux_decode(fk->in, fk->len, &fk->f, &used, &why) == MUX_OK) {
			memcpy(fk->frame, fk->in, used);
			memmove(fk->in, fk->in + used, fk->len - used);
			fk->len -= used;
			mux_decode(fk->frame, used, &fk->f, &used, &why);
			if (fk->f.type == MUX_WINDOW && fk->f.id < ARRAY_LEN(fk->credit)) {
				fk->credit[fk->f.id] += fk->f.u.credit;
				continue;
			}
			if (fk->f.type != MUX_PING)
				return true;
			continue;
		}
		assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
		if ((n = recv(fk->fd, fk->in + fk->len, sizeof(fk->in) - fk->len, 0)) <= 0)
			return false;
		fk->len += (size_t)n;
	}
}

static void
put(struct fake *fk, const uint8_t *frame, size_t len)
{
	assert_true(len > 0);
	assert_int_equal(send(fk->fd, frame, len, 0), (ssize_t)len);
}

static void
put_empty(struct fake *fk, uint32_t id, enum mux_type type)
{
	uint8_t b[MUX_HEADER_LEN];

	put(fk, b, mux_encode_empty(b, sizeof(b), id, type));
}

static void
put_data(struct fake *fk, uint32_t id, const void *data, size_t len)
{
	uint8_t b[MUX_FRAME_MAX];

	mux_header(b, id, MUX_DATA, 0, len);
	memcpy(b + MUX_HEADER_LEN, data, len);
	put(fk, b, MUX_HEADER_LEN + len);
}

/* Everything fd gives until its end (or WAIT_MS), into out. */
static size_t
drain(int fd, uint8_t *out, size_t size)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	size_t got = 0;
	ssize_t n;

	while (got < size && poll(&pfd, 1, WAIT_MS) == 1 &&
	       (n = recv(fd, out + got, size - got, 0)) > 0)
		got += (size_t)n;
	return got;
}

static uint32_t
attach(struct five_session *s, int *app, const char *service, const char *early)
{
	struct five_error err;
	int pair[2];
	uint32_t id;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
	id = mux_attach(s, pair[1], service, early, strlen(early), false, 0, &err);
	assert_int_not_equal(id, 0);
	*app = pair[0];
	return id;
}

static void
test_open_data_fin(void **state)
{
	struct fake fk;
	struct five_session *s = session(&fk);
	uint8_t got[64];
	int app;

	assert_int_equal(attach(s, &app, "echo", "hello"), 1);
	assert_true(next(&fk));
	assert_int_equal(fk.f.type, MUX_OPEN);
	assert_int_equal(fk.f.id, 1);
	assert_string_equal(fk.f.u.open.service, "echo");
	assert_int_equal(fk.f.u.open.data_len, 5);
	assert_memory_equal(fk.f.u.open.data, "hello", 5);
	put_empty(&fk, 1, MUX_ACCEPT);
	put_data(&fk, 1, "world", 5);
	put_empty(&fk, 1, MUX_FIN);
	assert_int_equal(drain(app, got, sizeof(got)), 5);
	assert_memory_equal(got, "world", 5);
	shutdown(app, SHUT_WR);
	assert_true(next(&fk));
	assert_int_equal(fk.f.type, MUX_FIN);
	assert_int_equal(fk.f.id, 1);
	close(app);
	five_session_close(s);
	/* Closed cleanly: the fake sees the end of the session's stream. */
	assert_false(next(&fk));
	close(fk.fd);
}

/* A window's worth delivered comes back as credit, on the stream and the session. */
static void
test_credit_returned(void **state)
{
	static uint8_t chunk[MUX_PAYLOAD_MAX], all[MUX_STREAM_WINDOW];
	struct fake fk;
	struct five_session *s = session(&fk);
	size_t i;
	int app;

	attach(s, &app, "bulk", "");
	assert_true(next(&fk));
	put_empty(&fk, 1, MUX_ACCEPT);
	for (i = 0; i < MUX_STREAM_WINDOW / sizeof(chunk); i++) {
		memset(chunk, (int)i, sizeof(chunk));
		put_data(&fk, 1, chunk, sizeof(chunk));
	}
	/*
	 * No FIN from fived yet: a stream whose sender has ended gets no more
	 * credit, and whether its FIN came before the last bytes were
	 * delivered would be a race.
	 */
	assert_int_equal(drain(app, all, sizeof(all)), MUX_STREAM_WINDOW);
	for (i = 0; i < MUX_STREAM_WINDOW; i++)
		assert_int_equal(all[i], (uint8_t)(i / sizeof(chunk)));
	shutdown(app, SHUT_WR);
	assert_true(next(&fk));
	assert_int_equal(fk.f.type, MUX_FIN);
	/* Credit for at least half the stream's window, and for what the session carried. */
	assert_true(fk.credit[1] >= MUX_STREAM_WINDOW / 2);
	assert_true(fk.credit[0] == 0 || fk.credit[0] >= MUX_SESSION_WINDOW / 2);
	close(app);
	five_session_close(s);
	close(fk.fd);
}

/* A stream nobody reads holds its window; another stream's bytes still arrive. */
static void
test_slow_stream_does_not_block(void **state)
{
	static uint8_t chunk[MUX_PAYLOAD_MAX];
	struct fake fk;
	struct five_session *s = session(&fk);
	uint8_t got[16];
	size_t i;
	int slow, fast;

	attach(s, &slow, "slow", "");
	attach(s, &fast, "fast", "");
	assert_true(next(&fk));
	assert_true(next(&fk));
	assert_int_equal(fk.f.id, 3);
	put_empty(&fk, 1, MUX_ACCEPT);
	put_empty(&fk, 3, MUX_ACCEPT);
	for (i = 0; i < MUX_STREAM_WINDOW / sizeof(chunk); i++)
		put_data(&fk, 1, chunk, sizeof(chunk));
	put_data(&fk, 3, "quick", 5);
	put_empty(&fk, 3, MUX_FIN);
	assert_int_equal(drain(fast, got, sizeof(got)), 5);
	assert_memory_equal(got, "quick", 5);
	close(fast);
	close(slow);
	five_session_close(s);
	close(fk.fd);
}

/* fived's refusal reaches the caller with its reason; the session goes on. */
static void
test_refused(void **state)
{
	struct fake fk;
	struct five_session *s = session(&fk);
	uint8_t b[MUX_HEADER_LEN + 64];
	struct five_error err;
	int pair[2];
	uint32_t id;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
	id = mux_attach(s, pair[1], "secret", NULL, 0, true, 0, &err);
	assert_true(next(&fk));
	put(&fk, b, mux_encode_rst(b, sizeof(b), id, MUX_RST_REFUSED, "not permitted"));
	assert_int_equal(mux_await(s, id, monotonic_ms() + WAIT_MS, &err), -1);
	assert_int_equal(err.step, FIVE_ERR_REFUSED);
	assert_string_equal(err.message, "not permitted");
	assert_true(mux_usable(s));
	close(pair[0]);
	five_session_close(s);
	close(fk.fd);
}

/* Data beyond the window, or a frame fived may not send, ends the session. */
static void
test_fail_closed(void **state)
{
	static uint8_t chunk[MUX_PAYLOAD_MAX];
	struct fake fk;
	struct five_session *s = session(&fk);
	struct five_error err;
	uint8_t got[16];
	size_t i;
	int app;

	attach(s, &app, "bulk", "");
	assert_true(next(&fk));
	put_empty(&fk, 1, MUX_ACCEPT);
	for (i = 0; i <= MUX_STREAM_WINDOW / sizeof(chunk); i++)
		put_data(&fk, 1, chunk, sizeof(chunk));
	assert_false(next(&fk));
	assert_false(mux_usable(s));
	assert_int_equal(mux_attach(s, -1, "echo", NULL, 0, false, 0, &err), 0);
	assert_int_equal(err.step, FIVE_ERR_PROTOCOL);
	assert_non_null(strstr(err.message, "window"));
	/* The stream's descriptor ends too. */
	while (drain(app, got, sizeof(got)) > 0)
		;
	close(app);
	five_session_close(s);
	close(fk.fd);
}

static void *
accept_then_wait_rst(void *arg)
{
	struct fake *fk = arg;

	if (!next(fk) || fk->f.type != MUX_OPEN)
		return NULL;
	put_empty(fk, fk->f.id, MUX_ACCEPT);
	/* The request's FIN, then, once the caller gives up, its RST. */
	while (next(fk) && fk->f.type != MUX_RST)
		;
	return NULL;
}

static void
test_request_timeout_cancels(void **state)
{
	struct fake fk;
	struct five_session *s = session(&fk);
	struct five_error err;
	uint8_t reply[16];
	size_t n;
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, accept_then_wait_rst, &fk), 0);
	assert_int_equal(
	        five_session_request(s, "never", "ask", 3, reply, sizeof(reply), &n, 300, &err),
	        -1);
	assert_non_null(strstr(err.message, "timed out"));
	pthread_join(t, NULL);
	assert_int_equal(fk.f.type, MUX_RST);
	assert_int_equal(fk.f.u.end.code, MUX_RST_RESET);
	assert_string_equal(fk.f.u.end.reason, "timed out");
	five_session_close(s);
	close(fk.fd);
}

static void
test_ping_answered(void **state)
{
	struct fake fk;
	struct five_session *s = session(&fk);
	uint8_t b[MUX_HEADER_LEN + MUX_PING_LEN], opaque[MUX_PING_LEN] = "12345678";
	struct pollfd pfd = {.fd = fk.fd, .events = POLLIN};
	const char *why;
	size_t used;
	ssize_t n;

	put(&fk, b, mux_encode_ping(b, sizeof(b), 0, opaque));
	/* The engine's own PING may come first: look for the answer among what comes. */
	for (;;) {
		if (mux_decode(fk.in, fk.len, &fk.f, &used, &why) == MUX_OK) {
			if (fk.f.type == MUX_PING && (fk.f.flags & MUX_FLAG_ACK))
				break;
			memmove(fk.in, fk.in + used, fk.len - used);
			fk.len -= used;
			continue;
		}
		assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
		assert_true((n = recv(fk.fd, fk.in + fk.len, sizeof(fk.in) - fk.len, 0)) > 0);
		fk.len += (size_t)n;
	}
	assert_memory_equal(fk.f.payload, opaque, MUX_PING_LEN);
	five_session_close(s);
	close(fk.fd);
}

/* After GOAWAY no stream is opened; the open ones go on to their end. */
static void
test_goaway(void **state)
{
	struct fake fk;
	struct five_session *s = session(&fk);
	uint8_t b[MUX_HEADER_LEN + 64], got[16];
	struct five_error err;
	int app;

	attach(s, &app, "echo", "");
	assert_true(next(&fk));
	put_empty(&fk, 1, MUX_ACCEPT);
	put(&fk, b, mux_encode_goaway(b, sizeof(b), 1, MUX_GOAWAY_NORMAL, "server shutting down"));
	put_data(&fk, 1, "last", 4);
	put_empty(&fk, 1, MUX_FIN);
	assert_int_equal(drain(app, got, sizeof(got)), 4);
	assert_false(mux_usable(s));
	assert_int_equal(mux_attach(s, -1, "echo", NULL, 0, false, 0, &err), 0);
	assert_int_equal(err.step, FIVE_ERR_REFUSED);
	assert_string_equal(err.message, "the server takes no new streams");
	close(app);
	five_session_close(s);
	close(fk.fd);
}

/* A frame on a stream the client never opened ends the session. */
static void
test_unknown_stream(void **state)
{
	struct fake fk;
	struct five_session *s = session(&fk);
	struct five_error err;

	put_data(&fk, 7, "who?", 4);
	assert_false(next(&fk));
	assert_int_equal(mux_attach(s, -1, "echo", NULL, 0, false, 0, &err), 0);
	assert_int_equal(err.step, FIVE_ERR_PROTOCOL);
	assert_non_null(strstr(err.message, "never opened"));
	five_session_close(s);
	close(fk.fd);
}

/* A session that asked DETACHABLE (as five_session_open does, behind MULTIPLEX). */
static struct five_session *
detachable(struct fake *fk)
{
	return session_with(fk, &(struct five_options){.timeout_ms = WAIT_MS, .detachable = 1});
}

static void
put_grant(struct fake *fk)
{
	uint8_t b[MUX_FRAME_MAX], ticket[MUX_TICKET_LEN];

	memset(ticket, 7, sizeof(ticket));
	put(fk, b, mux_encode_detach_grant(b, sizeof(b), 60, ticket));
}

static void
put_received(struct fake *fk, uint64_t count)
{
	uint8_t b[MUX_HEADER_LEN + MUX_RECEIVED_LEN];

	put(fk, b, mux_encode_received(b, sizeof(b), count));
}

/* Section 12.1, 12.3: both sides count whole session frames; RECEIVED says ours soon. */
static void
test_detachable_counts(void **state)
{
	struct fake fk;
	struct five_session *s = detachable(&fk);
	uint64_t sent;
	uint8_t got[16];
	int app;

	put_grant(&fk);
	attach(s, &app, "echo", "hi");
	assert_true(next(&fk));
	assert_int_equal(fk.f.type, MUX_OPEN);
	sent = MUX_HEADER_LEN + fk.f.len;
	put_empty(&fk, 1, MUX_ACCEPT);
	put_data(&fk, 1, "hello", 5);
	assert_int_equal(recv(app, got, sizeof(got), 0), 5);
	/* Our RECEIVED: ACCEPT and DATA, whole frames (within a second, 12.3). */
	assert_true(next(&fk));
	assert_int_equal(fk.f.type, MUX_RECEIVED);
	assert_int_equal(fk.f.u.received, MUX_HEADER_LEN + MUX_HEADER_LEN + 5);
	assert_int_equal(five_session_detachable(s), 1);
	/* fived's covers what we sent (the OPEN, and any WINDOW behind it): fine. */
	put_received(&fk, sent);
	put_data(&fk, 1, "again", 5);
	assert_int_equal(recv(app, got, sizeof(got), 0), 5);
	assert_true(mux_usable(s));
	close(app);
	five_session_close(s);
	close(fk.fd);
}

/* A RECEIVED beyond what we sent ends the session (section 12.3). */
static void
test_detachable_bad_received(void **state)
{
	struct fake fk;
	struct five_session *s = detachable(&fk);
	struct five_error err;

	put_grant(&fk);
	put_received(&fk, 1000);
	assert_false(next(&fk));
	assert_int_equal(mux_attach(s, -1, "echo", NULL, 0, false, 0, &err), 0);
	assert_int_equal(err.step, FIVE_ERR_PROTOCOL);
	assert_string_equal(err.message, "protocol error: bad RECEIVED");
	five_session_close(s);
	close(fk.fd);
}

/* RECEIVED, or DETACHABLE, in a session that did not ask: the session ends. */
static void
test_received_unasked(void **state)
{
	struct fake fk;
	struct five_session *s = session(&fk);
	struct five_error err;

	put_received(&fk, 0);
	assert_false(next(&fk));
	assert_int_equal(mux_attach(s, -1, "echo", NULL, 0, false, 0, &err), 0);
	assert_non_null(strstr(err.message, "not detachable"));
	five_session_close(s);
	close(fk.fd);
	s = session(&fk);
	put_grant(&fk);
	assert_false(next(&fk));
	assert_int_equal(mux_attach(s, -1, "echo", NULL, 0, false, 0, &err), 0);
	assert_non_null(strstr(err.message, "DETACHABLE"));
	five_session_close(s);
	close(fk.fd);
}

/* Refused: the session goes on, not detachable, and sends no RECEIVED. */
static void
test_detachable_refused(void **state)
{
	struct fake fk;
	struct five_session *s = detachable(&fk);
	uint8_t b[MUX_HEADER_LEN + 64], got[16];
	int app;

	put(&fk, b,
	    mux_encode_detach_refusal(b, sizeof(b), MUX_DETACH_NOT_PERMITTED, "not permitted"));
	attach(s, &app, "echo", "");
	assert_true(next(&fk));
	put_empty(&fk, 1, MUX_ACCEPT);
	put_data(&fk, 1, "hello", 5);
	put_empty(&fk, 1, MUX_FIN);
	assert_int_equal(drain(app, got, sizeof(got)), 5);
	shutdown(app, SHUT_WR);
	assert_true(next(&fk));
	assert_int_equal(fk.f.type, MUX_FIN);
	assert_int_equal(five_session_detachable(s), 0);
	close(app);
	five_session_close(s);
	assert_false(next(&fk));
	close(fk.fd);
}

/* Without a way to reach fived again (no redial), a broken connection fails the session. */
static void
test_detachable_break_without_redial(void **state)
{
	struct fake fk;
	struct five_session *s = detachable(&fk);
	struct five_error err;

	put_grant(&fk);
	shutdown(fk.fd, SHUT_RDWR);
	for (int i = 0; i < 100 && mux_usable(s); i++)
		usleep(10000);
	assert_int_equal(mux_attach(s, -1, "echo", NULL, 0, false, 0, &err), 0);
	assert_int_equal(five_session_detachable(s), 0);
	five_session_close(s);
	close(fk.fd);
}

/* One direction's record key, the same for the engine and the test. */
static void
record_key(uint8_t key[RECORD_KEY_LEN], const char *label)
{
	crypto_generichash(key, RECORD_KEY_LEN, (const uint8_t *)label, strlen(label), NULL, 0);
}

/*
 * fived's FINAL came with the answer to the handshake, read ahead into
 * pending: the engine must end the session without waiting for the socket,
 * which will say nothing more.
 */
static void
final_read_ahead(enum record_suite suite)
{
	struct five_options o = {.timeout_ms = WAIT_MS};
	struct record_sender fived;
	struct five_conn c;
	struct five_error err;
	struct five_session *s;
	uint8_t key[RECORD_KEY_LEN], header[RECORD_HEADER_MAX];
	uint64_t deadline;
	size_t header_len, n;
	int pair[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
	memset(&c, 0, sizeof(c));
	c.fd = pair[0];
	c.timeout_ms = WAIT_MS;
	assert_non_null(c.seal = calloc(1, sizeof(*c.seal)));
	c.seal->fd = pair[0];
	record_key(key, "to fived");
	assert_int_equal(record_sender_init(&c.seal->tx, suite, key, header, &header_len), 0);
	record_key(key, "from fived");
	assert_int_equal(record_receiver_init(&c.seal->rx, suite, key), 0);
	assert_int_equal(record_sender_init(&fived, suite, key, c.seal->pending, &header_len), 0);
	assert_int_equal(record_seal(&fived, NULL, 0, true, c.seal->pending + header_len,
	                             sizeof(c.seal->pending) - header_len, &n),
	                 0);
	c.seal->pending_len = header_len + n;
	record_sender_wipe(&fived);
	assert_non_null(s = mux_session_new(&c, &o, &err));
	assert_int_equal(mux_session_start(s, &err), 0);
	deadline = monotonic_ms() + WAIT_MS;
	while (mux_usable(s) && monotonic_ms() < deadline)
		poll(NULL, 0, POLL_MS);
	assert_false(mux_usable(s));
	five_session_close(s);
	close(pair[1]);
}

static void
test_final_read_ahead(void **state)
{
	final_read_ahead(RECORD_SUITE_XCHACHA20POLY1305);
	final_read_ahead(RECORD_SUITE_AES256GCM);
}

/*
 * Ends told on a Unix socket (five agent's streams): a mark is the last
 * byte of the read that takes it, whatever came before it, and says which
 * end it is; what follows a reset's is the reason.
 */
static void
test_marks(void **state)
{
	char buf[64], mark;
	int pair[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
	assert_int_equal(send(pair[0], "data", 4, 0), 4);
	assert_int_equal(five_sock_send_mark(pair[0], FIVE_MARK_RESET), 1);
	assert_int_equal(send(pair[0], "why", 3, 0), 3);
	close(pair[0]);
	/* Room for two bytes: the data comes first, unmarked. */
	assert_int_equal(five_sock_recv_marked(pair[1], buf, 2, &mark), 2);
	assert_int_equal(mark, 0);
	assert_int_equal(five_sock_recv_marked(pair[1], buf, sizeof(buf), &mark), 2);
	assert_int_equal(mark, FIVE_MARK_RESET);
	assert_memory_equal(buf, "ta", 2);
	assert_int_equal(five_sock_recv_marked(pair[1], buf, sizeof(buf), &mark), 3);
	assert_int_equal(mark, 0);
	assert_memory_equal(buf, "why", 3);
	assert_int_equal(five_sock_recv_marked(pair[1], buf, sizeof(buf), &mark), 0);
	assert_int_equal(mark, 0);
	close(pair[1]);
	/* An end's mark with nothing before it: no byte for the application, then the end. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
	assert_int_equal(five_sock_send_mark(pair[0], FIVE_MARK_END), 1);
	assert_int_equal(shutdown(pair[0], SHUT_WR), 0);
	assert_int_equal(five_sock_recv_marked(pair[1], buf, sizeof(buf), &mark), 0);
	assert_int_equal(mark, FIVE_MARK_END);
	assert_int_equal(five_sock_recv_marked(pair[1], buf, sizeof(buf), &mark), 0);
	assert_int_equal(mark, 0);
	close(pair[0]);
	close(pair[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_open_data_fin),
	        cmocka_unit_test(test_marks),
	        cmocka_unit_test(test_credit_returned),
	        cmocka_unit_test(test_slow_stream_does_not_block),
	        cmocka_unit_test(test_refused),
	        cmocka_unit_test(test_fail_closed),
	        cmocka_unit_test(test_request_timeout_cancels),
	        cmocka_unit_test(test_ping_answered),
	        cmocka_unit_test(test_goaway),
	        cmocka_unit_test(test_unknown_stream),
	        cmocka_unit_test(test_detachable_counts),
	        cmocka_unit_test(test_detachable_bad_received),
	        cmocka_unit_test(test_received_unasked),
	        cmocka_unit_test(test_detachable_refused),
	        cmocka_unit_test(test_detachable_break_without_redial),
	        cmocka_unit_test(test_final_read_ahead),
	};

	return UNIT_RUN_WITH_SODIUM(tests, NULL, NULL);
}
