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
 *
 * A plain stream (no transport) to a TCP or Unix-socket backend is moved
 * by the kernel instead (splice = yes): each direction that has carried
 * SPLICE_AFTER_BYTES, once the writes queued towards its destination (the
 * reply, the PROXY header, the early bytes, its first bytes) are done,
 * goes socket -> pipe -> socket with splice(2), and no byte enters fived's
 * memory any more.  Its first bytes are copied because most sessions are
 * short (a request, its answer): for them two pipes and two dups would
 * cost more than the copies they save.  The pipe takes the place of the
 * queue: it is filled from the source only when it is empty, emptied into the
 * destination as far as the destination takes it, and while it holds
 * bytes it counts in the budget for its whole capacity (over the budget,
 * one that cannot be emptied holds its direction as a queue would).
 *
 * libuv owns both sockets and keeps them in its epoll set, under their
 * descriptors.  The kernel's path polls each socket with a uv_poll_t on a
 * dup() of its descriptor: libuv's one rule for poll handles is a single
 * handle per descriptor (its watchers are a table by descriptor number),
 * and epoll keys each registration on the descriptor number and the open
 * file, so the dup is a registration of its own, beside the stream's.
 * It stays sound because libuv no longer reads the spliced direction's
 * source (uv_read_stop: a stopped stream's registration is dropped from
 * epoll at its next event) and never writes its destination again: the
 * switch waits until the direction's own queued writes are done, and
 * nothing is queued to that destination afterwards, so the sockets'
 * byte order is kept.  Only the end of a spliced direction goes back to
 * libuv: its uv_shutdown, with the stream's write queue empty.  Each poll
 * handle is stopped (uv_close removes the dup from epoll while it is
 * still open) and the dup is closed in its close callback, before the
 * session's handles are freed; libuv removes its own descriptor from
 * epoll before it closes it, so neither registration outlives its
 * descriptor.  A socket error stops a poll handle (libuv calls back with
 * UV_EBADF); the next splice on that socket says which error it was.
 */
#include "server/stream/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "server/conf/config.h"
#include "server/policy/budget.h"
#include "server/policy/chunk.h"
#include "server/policy/site.h"
#include "server/privsep/sockets.h"
#include "server/stream/splice.h"
#include "server/transport/transport.h"

#define RELAY_HIGH_WATER (256 * 1024)
#define RELAY_LOW_WATER  (64 * 1024)

/* Pipes a spliced direction fills per wakeup: one stream cannot starve the rest. */
#define SPLICE_ROUNDS_MAX 16

/* What a direction carries by copies before the kernel moves the rest (see the top). */
#define SPLICE_AFTER_BYTES (64 * 1024)

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
	bool splice_wait; /* to be spliced once the writes queued towards it are done */
	bool spliced;     /* moved by splice(2): libuv neither reads its source nor writes it */
	bool ending;      /* spliced: the destination's shutdown was asked for */
	bool charged;     /* its pipe's capacity is charged to the budget */
	struct splice_pipe pipe; /* while spliced */
};

/* A socket of a spliced stream, polled through a dup of its descriptor (see the top). */
struct splice_end {
	uv_poll_t poll;
	int fd;     /* the dup, closed after the poll handle; -1 when none */
	int events; /* what the poll handle watches now */
	bool open;  /* the poll handle is initialized and not closing */
};

/*
 * Both sockets' ends, made when a direction is first spliced: most
 * streams never are, and an idle session should not carry two poll
 * handles it does not use.  Owned by the stream, freed with it (after
 * the handles' closes).
 */
struct splice_ends {
	struct splice_end client, backend;
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
	struct relay_dir up;      /* client -> backend */
	struct relay_dir down;    /* backend -> client */
	struct splice_ends *ends; /* NULL until a direction is spliced */
	bool relaying;            /* bytes flow both ways */
	/* The backend reset: the reason the stream fails, once the client has what came before. */
	const char *cut;
	bool over; /* stream_close was called: nothing more is done */
	uint64_t last_activity_ms;
	struct stream *held_prev, *held_next; /* on the site's budget_held list */
	bool held_listed;
	const struct stream_events *ev;
	void *owner;
};

static void on_backend_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf);
static void watch(struct stream *st);
static void begin_splice(struct stream *st, struct relay_dir *dir);
static void consider_splice(struct stream *st, struct relay_dir *dir);

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

/* Both directions ended in order. */
static void
ended(struct stream *st, const char *reason)
{
	st->ev->ended(st->owner, reason, false);
}

/* Cut short: the stream's ends are reset (stream_events.ended). */
static void
failed(struct stream *st, const char *reason)
{
	st->ev->ended(st->owner, reason, true);
}

/*
 * The backend reset the stream: what it sent before is still the
 * client's, as a TCP reset leaves readable what had arrived.  Nothing
 * more is read; once what is queued for the client is written, the
 * stream fails.
 */
static void
backend_cut(struct stream *st, const char *reason)
{
	if (st->cut != NULL)
		return;
	st->cut = reason;
	uv_read_stop(&st->backend.h.stream);
	watch(st);
	st->ev->cut(st->owner, reason);
	if (!st->over && st->down.queued == 0)
		failed(st, reason);
}

/* Reading the backend: its handle's data is the backend, whose owner is the stream. */
static void
backend_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct backend *b = h->data;
	struct budget *budget = &b->site->budget;

	chunk_alloc_charged(budget, budget_read_size(budget, CHUNK_READ_SIZE), buf);
}

/* Reads dir's source again unless something still stops it (a switch to the kernel, too). */
static void
resume(struct stream *st, struct relay_dir *dir)
{
	if (!st->relaying || st->over || st->cut != NULL || dir->paused || dir->held || dir->eof ||
	    dir->splice_wait)
		return;
	if (dir->spliced)
		watch(st);
	else if (dir == &st->up)
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

/* Whether dir's destination has not taken everything dir has for it yet. */
static bool
behind(struct stream *st, struct relay_dir *dir)
{
	if (dir->spliced)
		return dir->pipe.held > 0;
	return uv_stream_get_write_queue_size(destination_of(st, dir)) > 0;
}

static void
hold(struct stream *st, struct relay_dir *dir)
{
	if (dir->held)
		return;
	uv_read_stop(source_of(st, dir));
	dir->held = true;
	/* Counted when the destination is behind; one that keeps up only waits for its writes. */
	if (behind(st, dir))
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
		/* What the client sends is read, and dropped, by libuv. */
		if (dir->splice_wait) {
			dir->splice_wait = false;
			resume(st, dir);
		}
		return;
	}
	if (status < 0) {
		log_debug("session %s: write: %s", st->id, uv_strerror(status));
		failed(st, dir == &st->up ? "backend write failed" : "client write failed");
		return;
	}
	if (st->cut != NULL) {
		if (dir == &st->down && dir->queued == 0)
			failed(st, st->cut);
		return;
	}
	if (dir->splice_wait && dir->queued == 0) {
		begin_splice(st, dir);
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

/*
 * Writes what dir's destination takes at once, when nothing is queued
 * before it, and returns how much that was.  A write libuv completes
 * later costs a loop iteration for its callback and a change to the
 * epoll set, several times in a short session; most writes are taken
 * whole.  An error is left to the queued write, whose callback reports
 * it; a cut stream and one about to be spliced finish in on_written.
 */
static size_t
write_now(struct stream *st, struct relay_dir *dir, const void *data, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	int n;

	if (dir->queued > 0 || st->cut != NULL || dir->splice_wait)
		return 0;
	n = uv_try_write(destination_of(st, dir), &b, 1);
	return n > 0 ? (size_t)n : 0;
}

/* Queues c's bytes from from up to len towards dir's destination, counted in dir's queue. */
static int
enqueue(struct stream *st, struct relay_dir *dir, struct chunk *c, size_t from, size_t len)
{
	size_t size = c->size;

	if (chunk_write(c, from, len, destination_of(st, dir), st, dir, on_written) != 0)
		return -1;
	dir->queued += size;
	return 0;
}

/* c's first len bytes towards dir's destination: written now, or what is left queued. */
static int
queue_write(struct stream *st, struct relay_dir *dir, struct chunk *c, size_t len)
{
	size_t taken = write_now(st, dir, c->data, len);

	if (taken < len)
		return enqueue(st, dir, c, taken, len);
	chunk_free(c);
	return 0;
}

static int
queue_copy(struct stream *st, struct relay_dir *dir, const void *data, size_t len)
{
	struct chunk *c;
	size_t taken;

	if (len == 0 || (taken = write_now(st, dir, data, len)) == len)
		return 0;
	if ((c = chunk_copy(&st->site->budget, (const char *)data + taken, len - taken)) == NULL)
		return -1;
	return enqueue(st, dir, c, 0, len - taken);
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
		failed(st, "client write failed");
		return;
	}
	dir->shutdown_req.data = st;
	if (sockets_shut_now(destination_of(st, dir)) ||
	    uv_shutdown(&dir->shutdown_req, destination_of(st, dir), on_shutdown) != 0) {
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
	size_t taken;
	int r;

	if (dir == &st->down && t != NULL) {
		r = t->ops->output(t, (uint8_t *)buf->base, n);
		chunk_release(buf);
		return r;
	}
	if ((taken = write_now(st, dir, buf->base, n)) == n) {
		chunk_release(buf);
		return 0;
	}
	return enqueue(st, dir, chunk_fit(buf, n), taken, n);
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
			failed(st, dir == &st->up ? "backend write failed" : "client write failed");
			return;
		}
		pace(st, dir);
		consider_splice(st, dir);
		return;
	}
	chunk_release(buf);
	if (nread == 0)
		return;
	/* The other direction's end is our end towards this source. */
	if (nread == UV_EOF && sockets_end_was_reset((uv_handle_t *)source_of(st, dir),
	                                             (dir == &st->up ? &st->down : &st->up)->eof))
		nread = UV_ECONNRESET;
	/* Ending without reading all it was sent, a local backend resets: its end, too. */
	if (nread == UV_EOF || (dir == &st->down && stopped_reading(st, (int)nread))) {
		end_direction(st, dir);
		return;
	}
	log_debug("session %s: read: %s", st->id, uv_strerror((int)nread));
	if (dir == &st->down)
		backend_cut(st, "backend read failed");
	else
		failed(st, "client read failed");
}

/* --- the kernel's path: splice(2) ------------------------------------------ */

static struct splice_end *
source_end(struct stream *st, struct relay_dir *dir)
{
	return dir == &st->up ? &st->ends->client : &st->ends->backend;
}

static struct splice_end *
destination_end(struct stream *st, struct relay_dir *dir)
{
	return dir == &st->up ? &st->ends->backend : &st->ends->client;
}

/* Whether the kernel may move this stream's bytes: plain, to a socket of the backend's own. */
static bool
may_splice(const struct stream *st)
{
	return st->site->cfg->splice && transport_of(st) == NULL &&
	       (st->svc->backend == BACKEND_TCP || st->svc->backend == BACKEND_UNIX);
}

/* A pipe that holds bytes counts for its whole capacity; an empty one takes no memory. */
static void
account(struct stream *st, struct relay_dir *dir)
{
	bool holds = dir->pipe.held > 0;

	if (holds == dir->charged)
		return;
	dir->charged = holds;
	if (holds)
		budget_charge(&st->site->budget, dir->pipe.size);
	else
		budget_release(&st->site->budget, dir->pipe.size);
}

/* Drops dir's pipe and what it holds; a direction waiting to be spliced no longer is. */
static void
drop_pipe(struct stream *st, struct relay_dir *dir)
{
	dir->splice_wait = false;
	dir->spliced = false;
	dir->pipe.held = 0;
	account(st, dir);
	splice_pipe_close(&dir->pipe);
}

/* dir leaves the kernel's path (its pipe empty, or its bytes dropped): libuv reads its source. */
static void
unsplice(struct stream *st, struct relay_dir *dir)
{
	drop_pipe(st, dir);
	watch(st);
	resume(st, dir);
}

/* What an end is polled for: its bytes to read, when its pipe is empty; room, for bytes to write.
 */
static int
wanted(const struct relay_dir *from, const struct relay_dir *to)
{
	int events = 0;

	if (from->spliced && from->pipe.held == 0 && !from->eof && !from->held)
		events |= UV_READABLE;
	if (to->spliced && to->pipe.held > 0)
		events |= UV_WRITABLE;
	return events;
}

static void on_end_ready(uv_poll_t *p, int status, int events);

static void
poll_end(struct splice_end *end, int events)
{
	if (!end->open || events == end->events)
		return;
	end->events = events;
	if (events == 0)
		uv_poll_stop(&end->poll);
	else
		uv_poll_start(&end->poll, events, on_end_ready);
}

/* Polls each end for what the spliced directions wait for. */
static void
watch(struct stream *st)
{
	if (st->over || st->ends == NULL)
		return;
	/* Cut, nothing more is read or spliced: what is left to deliver is libuv's. */
	poll_end(&st->ends->client, st->cut != NULL ? 0 : wanted(&st->up, &st->down));
	poll_end(&st->ends->backend, st->cut != NULL ? 0 : wanted(&st->down, &st->up));
}

/*
 * Empties dir's pipe into its destination as far as the destination takes
 * it.  Returns 0, or -1 when dir left the kernel's path or the stream ended.
 */
static int
drain(struct stream *st, struct relay_dir *dir)
{
	ssize_t n = 0;

	/* Counted as they leave the pipe: bytes a reset drops from it never reached anyone. */
	while (dir->pipe.held > 0 &&
	       (n = splice_pipe_out(&dir->pipe, destination_end(st, dir)->fd)) > 0)
		dir->bytes += (uint64_t)n;
	if (n < 0 && n != -EAGAIN && dir == &st->up && stopped_reading(st, (int)n)) {
		dir->dropping = true;
		unsplice(st, dir);
		return -1;
	}
	if (n < 0 && n != -EAGAIN) {
		log_debug("session %s: write: %s", st->id, uv_strerror((int)n));
		failed(st, dir == &st->up ? "backend write failed" : "client write failed");
		return -1;
	}
	account(st, dir);
	/* Its pipe is empty: a held direction holds nothing of the budget any more. */
	if (dir->held && dir->pipe.held == 0)
		unhold(st, dir);
	return 0;
}

/*
 * Fills dir's empty pipe from its source.  Returns 1 when something came
 * (bytes, or the source's end), 0 when there is nothing to read yet, -1
 * when dir left the kernel's path or the stream ended.
 */
static int
fill(struct stream *st, struct relay_dir *dir)
{
	ssize_t n = splice_pipe_in(&dir->pipe, source_end(st, dir)->fd);

	if (n > 0) {
		st->last_activity_ms = uv_now(st->site->loop);
		account(st, dir);
		return 1;
	}
	/* Ending without reading all it was sent, a local backend resets: its end, too. */
	if (n == 0 || (dir == &st->down && stopped_reading(st, (int)n))) {
		dir->eof = true;
		return 1;
	}
	if (n == -EAGAIN)
		return 0;
	/* A kernel that cannot splice these sockets says so before any byte moved: copy instead. */
	if (n == -EINVAL || n == -ENOSYS) {
		log_debug("session %s: relay: no splice (%s)", st->id, uv_strerror((int)n));
		unsplice(st, dir);
		return -1;
	}
	log_debug("session %s: read: %s", st->id, uv_strerror((int)n));
	if (dir == &st->down)
		backend_cut(st, "backend read failed");
	else
		failed(st, "client read failed");
	return -1;
}

/*
 * Moves dir's bytes as far as its sockets let it, for a bounded number of
 * pipes, then polls for what it waits for.  Its source's end, once its
 * pipe is empty, becomes the destination's shutdown, through libuv.
 */
static void
pump(struct stream *st, struct relay_dir *dir)
{
	int rounds, r;

	if (!dir->spliced || st->over || st->cut != NULL)
		return;
	for (rounds = 0;; rounds++) {
		if (drain(st, dir) != 0)
			return;
		if (dir->pipe.held > 0 || dir->held || dir->ending)
			break;
		/* Nothing polls for an end already read: it is acted on now. */
		if (dir->eof) {
			dir->ending = true;
			end_direction(st, dir);
			break;
		}
		if (rounds == SPLICE_ROUNDS_MAX)
			break;
		/* Over the budget an empty pipe waits, as a copying direction does. */
		if (budget_over(&st->site->budget)) {
			hold(st, dir);
			break;
		}
		if ((r = fill(st, dir)) == 0)
			break;
		if (r < 0)
			return;
	}
	if (dir->pipe.held > 0 && budget_over(&st->site->budget))
		hold(st, dir);
	watch(st);
}

static void
on_end_ready(uv_poll_t *p, int status, int events)
{
	struct stream *st = p->data;
	bool client = p == &st->ends->client.poll;
	struct relay_dir *from = client ? &st->up : &st->down, *to = client ? &st->down : &st->up;

	/* libuv stopped the handle on a socket error: the splices below say which. */
	if (status < 0) {
		(client ? &st->ends->client : &st->ends->backend)->events = 0;
		events = UV_READABLE | UV_WRITABLE;
	}
	if (events & UV_WRITABLE)
		pump(st, to);
	if (events & UV_READABLE)
		pump(st, from);
	if (status < 0 && !st->over && client)
		failed(st, "client read failed");
	else if (status < 0 && !st->over)
		backend_cut(st, "backend read failed");
}

/* Polls h's socket through a dup of its descriptor.  Returns 0 or a libuv error. */
static int
open_end(struct stream *st, struct splice_end *end, uv_stream_t *h)
{
	uv_os_fd_t fd;
	int r;

	if (end->open)
		return 0;
	if ((r = uv_fileno((const uv_handle_t *)h, &fd)) != 0)
		return r;
	if ((end->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return -errno;
	if ((r = uv_poll_init(st->site->loop, &end->poll, end->fd)) != 0) {
		close(end->fd);
		end->fd = -1;
		return r;
	}
	end->poll.data = st;
	end->events = 0;
	end->open = true;
	return 0;
}

/* The dup is closed only now: libuv removed it from epoll while it was open. */
static void
on_end_closed(uv_handle_t *h)
{
	struct stream *st = h->data;
	struct splice_end *end =
	        h == (uv_handle_t *)&st->ends->client.poll ? &st->ends->client : &st->ends->backend;

	close(end->fd);
	end->fd = -1;
	st->ev->backend_closed(st->owner);
}

/* Closes end's poll handle: 1 when an ev->backend_closed call follows, else 0. */
static unsigned
close_end(struct splice_end *end)
{
	if (!end->open)
		return 0;
	end->open = false;
	uv_close((uv_handle_t *)&end->poll, on_end_closed);
	return 1;
}

/* The kernel's path ends both ways.  Returns how many ev->backend_closed calls follow. */
static unsigned
stop_splicing(struct stream *st)
{
	drop_pipe(st, &st->up);
	drop_pipe(st, &st->down);
	if (st->ends == NULL)
		return 0;
	return close_end(&st->ends->client) + close_end(&st->ends->backend);
}

/* The stream's splice_ends, made at its first splice.  Returns 0 or a libuv error. */
static int
make_ends(struct stream *st)
{
	if (st->ends != NULL)
		return 0;
	if ((st->ends = calloc(1, sizeof(*st->ends))) == NULL)
		return UV_ENOMEM;
	st->ends->client.fd = st->ends->backend.fd = -1;
	return 0;
}

/* dir's queued writes are done: from now on the kernel moves its bytes, where it can. */
static void
begin_splice(struct stream *st, struct relay_dir *dir)
{
	int r;

	/* Its queue is empty: the pipe takes the queue's place as the bound. */
	dir->splice_wait = false;
	dir->paused = false;
	if ((r = make_ends(st)) != 0 || (r = open_end(st, &st->ends->client, st->client)) != 0 ||
	    (r = open_end(st, &st->ends->backend, &st->backend.h.stream)) != 0 ||
	    (r = splice_pipe_open(&dir->pipe)) != 0) {
		log_debug("session %s: relay: no splice (%s)", st->id, uv_strerror(r));
		resume(st, dir);
		return;
	}
	dir->spliced = true;
	log_debug("session %s: relay: splice %s", st->id,
	          dir == &st->up ? "to the backend" : "to the client");
	pump(st, dir);
}

/*
 * After dir's source was read: a direction that has carried enough is
 * read by libuv no more, and goes to the kernel once its queued writes
 * are done (on_written), so that no byte overtakes another.
 */
static void
consider_splice(struct stream *st, struct relay_dir *dir)
{
	if (dir->bytes < SPLICE_AFTER_BYTES || dir->splice_wait || dir->spliced || dir->eof ||
	    dir->dropping || st->over || !may_splice(st))
		return;
	uv_read_stop(source_of(st, dir));
	dir->splice_wait = true;
	if (dir->queued == 0)
		begin_splice(st, dir);
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
	splice_pipe_init(&st->up.pipe);
	splice_pipe_init(&st->down.pipe);
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
	resume(st, &st->down);
	if (st->over)
		return 0;
	if (client_ended)
		end_direction(st, &st->up);
	else
		resume(st, &st->up);
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
	return stop_splicing(st) + backend_close(&st->backend);
}

unsigned
stream_close(struct stream *st)
{
	st->over = true;
	held_unlink(st);
	st->up.held = st->down.held = false;
	return stop_splicing(st) + backend_close(&st->backend);
}

void
stream_free(struct stream *st)
{
	if (st == NULL)
		return;
	backend_free(&st->backend);
	free(st->ends);
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
	return st->relaying && !st->over &&
	       (st->up.eof || st->up.paused || st->up.held || st->up.splice_wait ||
	        st->up.pipe.held > 0);
}

uint64_t
stream_last_activity(const struct stream *st)
{
	return st->last_activity_ms;
}
