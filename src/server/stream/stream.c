/*
 * Moving bytes between a client and its backend once a service is granted
 * (stream.h).
 *
 * Each read fills a chunk that becomes the write on the other side, so no
 * byte is copied in user space.  Every chunk written towards a side is
 * counted, by the memory it takes, in that direction's queue until it is
 * freed.  Two bounds stop reading a source, and neither drops a byte:
 *
 * Per stream: when a direction holds more than RELAY_HIGH_WATER, reading
 * its source stops until it holds less than RELAY_LOW_WATER.
 *
 * Over all streams (relay_memory_max, budget.h): once the chunks of every
 * stream reach the budget, a direction that holds queued bytes is held
 * after its read: reading its source stops until its own queue is empty.
 * One whose destination keeps up reads again as soon as its writes are
 * done, so it keeps moving, a read at a time; one whose destination is
 * behind (a slow reader, a stalled backend) stays held with what it
 * holds.  When usage falls below the budget's low-water mark every held
 * direction reads again.  Meanwhile reads are small (budget_read_size),
 * so each direction adds at most one small read beyond the budget.
 *
 * An end of stream on one side becomes a shutdown of the other's write
 * side; the stream is over when both directions have ended.
 */
#include "server/stream/stream.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/conf/config.h"
#include "server/policy/budget.h"
#include "server/policy/chunk.h"
#include "server/policy/site.h"
#include "server/transport/transport.h"

#define RELAY_HIGH_WATER (256 * 1024)
#define RELAY_LOW_WATER  (64 * 1024)

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

/* Made by stream_new, freed by stream_free; owned by its session. */
struct stream {
	struct site *site;
	const char *id;      /* the session's, for log lines */
	uv_stream_t *client; /* the session's client socket */
	struct transport *const
	        *transport;        /* the session's transport (NULL: plain), as it changes */
	const struct service *svc; /* NULL until stream_grant */
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

static void on_backend_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf);

static uv_stream_t *
source_of(struct stream *st, struct relay_dir *dir)
{
	return dir == &st->up ? st->client : &st->backend.h.stream;
}

static uv_stream_t *
destination_of(struct stream *st, struct relay_dir *dir)
{
	return dir == &st->up ? &st->backend.h.stream : st->client;
}

static struct transport *
transport_of(const struct stream *st)
{
	return *st->transport;
}

static void
ended(struct stream *st, const char *reason)
{
	st->ev->ended(st->owner, reason);
}

/* Reading the backend: its handle's data is the backend, whose owner is the stream. */
static void
backend_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct backend *b = h->data;
	struct budget *budget = &b->site->budget;

	chunk_alloc_charged(budget, budget_read_size(budget, CHUNK_READ_SIZE), buf);
}

/* Reads dir's source again unless something still stops it. */
static void
resume(struct stream *st, struct relay_dir *dir)
{
	if (!st->relaying || st->over || dir->paused || dir->held || dir->eof)
		return;
	if (dir == &st->up)
		st->ev->read_client(st->owner);
	else
		uv_read_start(&st->backend.h.stream, backend_alloc, on_backend_read);
}

/* --- directions held for the budget, on the site's list ----------------- */

static void
held_link(struct stream *st)
{
	struct site *site = st->site;

	st->held_prev = NULL;
	st->held_next = site->budget_held;
	if (site->budget_held != NULL)
		site->budget_held->held_prev = st;
	site->budget_held = st;
	st->held_listed = true;
}

static void
held_unlink(struct stream *st)
{
	struct site *site = st->site;

	if (!st->held_listed)
		return;
	if (st->held_prev != NULL)
		st->held_prev->held_next = st->held_next;
	else
		site->budget_held = st->held_next;
	if (st->held_next != NULL)
		st->held_next->held_prev = st->held_prev;
	st->held_listed = false;
}

static void
hold(struct stream *st, struct relay_dir *dir)
{
	if (dir->held)
		return;
	uv_read_stop(source_of(st, dir));
	dir->held = true;
	/* Counted when the destination is behind; one that keeps up only waits for its writes. */
	if (uv_stream_get_write_queue_size(destination_of(st, dir)) > 0)
		budget_note_pause(&st->site->budget);
	if (!st->held_listed)
		held_link(st);
}

static void
unhold(struct stream *st, struct relay_dir *dir)
{
	if (!dir->held)
		return;
	dir->held = false;
	if (!st->up.held && !st->down.held)
		held_unlink(st);
	resume(st, dir);
}

void
stream_budget_low(void *arg)
{
	struct site *site = arg;
	struct stream *st;

	/* Each leaves the list as both its directions are let go. */
	while ((st = site->budget_held) != NULL) {
		unhold(st, &st->up);
		unhold(st, &st->down);
	}
}

/* --- writes ----------------------------------------------------------------- */

/*
 * A local backend (a program, a Unix socket) that stops reading and
 * exits makes writes to it fail: that is how such a backend declines the
 * rest of its input (a daytime-like program ignores it), not a failure.
 * What the client still sends is dropped; the backend's answer goes on.
 */
static bool
stopped_reading(const struct stream *st, int status)
{
	return st->backend.h.handle.type == UV_NAMED_PIPE &&
	       (status == UV_EPIPE || status == UV_ECONNRESET);
}

static void
on_written(uv_write_t *req, int status)
{
	struct chunk *c = (struct chunk *)req;
	struct stream *st = c->owner;
	struct relay_dir *dir = c->tag;

	dir->queued -= c->size;
	chunk_free(c);
	if (st->over)
		return;
	if (dir == &st->down && status == 0)
		st->ev->client_written(st->owner);
	if (status < 0 && dir == &st->up && stopped_reading(st, status)) {
		dir->dropping = true;
		return;
	}
	if (status < 0) {
		log_debug("session %s: write: %s", st->id, uv_strerror(status));
		ended(st, dir == &st->up ? "backend write failed" : "client write failed");
		return;
	}
	if (dir->paused && dir->queued < RELAY_LOW_WATER) {
		dir->paused = false;
		resume(st, dir);
	}
	/* Its own queue is empty: a held direction holds nothing of the budget any more. */
	if (dir->held && dir->queued == 0)
		unhold(st, dir);
}

/* Queues c's first len bytes towards dir's destination, counted in dir's queue. */
static int
queue_write(struct stream *st, struct relay_dir *dir, struct chunk *c, size_t len)
{
	size_t size = c->size;

	if (chunk_write(c, len, destination_of(st, dir), st, dir, on_written) != 0)
		return -1;
	dir->queued += size;
	return 0;
}

static int
queue_copy(struct stream *st, struct relay_dir *dir, const void *data, size_t len)
{
	struct chunk *c;

	if (len == 0)
		return 0;
	if ((c = chunk_copy(&st->site->budget, data, len)) == NULL)
		return -1;
	return queue_write(st, dir, c, len);
}

int
stream_client_write(struct stream *st, struct chunk *c, size_t len)
{
	return queue_write(st, &st->down, c, len);
}

int
stream_client_write_copy(struct stream *st, const void *data, size_t len)
{
	if (len > 0 && transport_of(st) != NULL)
		return transport_of(st)->ops->output(transport_of(st), data, len);
	return queue_copy(st, &st->down, data, len);
}

/* --- relaying ----------------------------------------------------------- */

static void
both_done(struct stream *st)
{
	if (st->up.shut && st->down.shut)
		ended(st, "done");
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	struct stream *st = req->data;

	if (st->over)
		return;
	/* A peer that is already gone cannot be shut down: that direction is over too. */
	(req == &st->up.shutdown_req ? &st->up : &st->down)->shut = true;
	both_done(st);
}

/* The source of dir ended: after the queued bytes, end the destination's write side. */
static void
end_direction(struct stream *st, struct relay_dir *dir)
{
	struct transport *t = transport_of(st);

	dir->eof = true;
	uv_read_stop(source_of(st, dir));
	if (dir == &st->down && t != NULL && t->ops->finish(t) != 0) {
		ended(st, "client write failed");
		return;
	}
	dir->shutdown_req.data = st;
	if (uv_shutdown(&dir->shutdown_req, destination_of(st, dir), on_shutdown) != 0) {
		dir->shut = true;
		both_done(st);
	}
}

/*
 * After bytes were queued for dir: stop reading its source if either bound
 * says so.  Over the budget, a direction that holds anything (what it
 * just queued, at least) reads no more until it holds nothing: one whose
 * destination keeps up reads again as soon as its writes are done, one
 * behind stays held.
 */
static void
pace(struct stream *st, struct relay_dir *dir)
{
	if (budget_over(&st->site->budget) && dir->queued > 0)
		hold(st, dir);
	if (dir->queued > RELAY_HIGH_WATER) {
		uv_read_stop(source_of(st, dir));
		dir->paused = true;
	}
}

/* Bytes read from dir's source, to its destination (through the transport, for the client). */
static int
pass_on(struct stream *st, struct relay_dir *dir, const uv_buf_t *buf, size_t n)
{
	struct transport *t = transport_of(st);
	int r;

	if (dir == &st->down && t != NULL) {
		r = t->ops->output(t, (uint8_t *)buf->base, n);
		chunk_release(buf);
		return r;
	}
	return queue_write(st, dir, chunk_fit(buf, n), n);
}

static void
forward(struct stream *st, struct relay_dir *dir, ssize_t nread, const uv_buf_t *buf)
{
	if (nread > 0 && dir->dropping) {
		chunk_release(buf);
		return;
	}
	if (nread > 0) {
		dir->bytes += (uint64_t)nread;
		st->last_activity_ms = uv_now(st->site->loop);
		if (pass_on(st, dir, buf, (size_t)nread) != 0) {
			ended(st, dir == &st->up ? "backend write failed" : "client write failed");
			return;
		}
		pace(st, dir);
		return;
	}
	chunk_release(buf);
	if (nread == 0)
		return;
	/* Ending without reading all it was sent, a local backend resets: its end, too. */
	if (nread == UV_EOF || (dir == &st->down && stopped_reading(st, (int)nread))) {
		end_direction(st, dir);
		return;
	}
	log_debug("session %s: read: %s", st->id, uv_strerror((int)nread));
	ended(st, dir == &st->up ? "client read failed" : "backend read failed");
}

void
stream_client_data(struct stream *st, ssize_t nread, const uv_buf_t *buf)
{
	forward(st, &st->up, nread, buf);
}

static void
on_backend_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
	struct backend *b = h->data;
	struct stream *st = b->owner;

	if (!st->relaying || st->over) {
		chunk_release(buf);
		return;
	}
	forward(st, &st->down, nread, buf);
}

struct stream *
stream_new(struct site *site, const char *id, uv_stream_t *client,
           struct transport *const *transport, const struct stream_events *ev, void *owner)
{
	struct stream *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->site = site;
	st->id = id;
	st->client = client;
	st->transport = transport;
	st->ev = ev;
	st->owner = owner;
	return st;
}

int
stream_relay(struct stream *st, const void *header, size_t header_len, const void *early,
             size_t early_len, bool client_ended)
{
	if (queue_copy(st, &st->up, header, header_len) != 0 ||
	    queue_copy(st, &st->up, early, early_len) != 0)
		return -1;
	st->up.bytes += early_len;
	st->relaying = true;
	st->last_activity_ms = uv_now(st->site->loop);
	uv_read_start(&st->backend.h.stream, backend_alloc, on_backend_read);
	if (client_ended)
		end_direction(st, &st->up);
	else
		st->ev->read_client(st->owner);
	return 0;
}

static void
on_backend_ready(void *owner, int err)
{
	struct stream *st = owner;

	st->ev->backend_ready(st->owner, err);
}

static void
on_backend_closed(void *owner)
{
	struct stream *st = owner;

	st->ev->backend_closed(st->owner);
}

static const struct backend_events backend_events = {
        .ready = on_backend_ready,
        .closed = on_backend_closed,
};

void
stream_grant(struct stream *st, const struct service *svc, const struct backend_who *who)
{
	st->svc = svc;
	backend_init(&st->backend, st->site, svc, st->id, &backend_events, st);
	backend_start(&st->backend, who);
}

void
stream_reset_backend(struct stream *st)
{
	st->backend.reset = true;
}

unsigned
stream_close_backend(struct stream *st)
{
	return backend_close(&st->backend);
}

unsigned
stream_close(struct stream *st)
{
	st->over = true;
	held_unlink(st);
	st->up.held = st->down.held = false;
	return backend_close(&st->backend);
}

void
stream_free(struct stream *st)
{
	if (st == NULL)
		return;
	backend_free(&st->backend);
	free(st);
}

void
stream_bytes(const struct stream *st, uint64_t *in, uint64_t *out)
{
	*in = st->up.bytes;
	*out = st->down.bytes;
}

bool
stream_client_stalled(const struct stream *st)
{
	return st->relaying && !st->over && !st->up.eof && (st->up.paused || st->up.held);
}

uint64_t
stream_last_activity(const struct stream *st)
{
	return st->last_activity_ms;
}
