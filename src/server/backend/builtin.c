#include "server/backend/builtin.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "server/policy/chunk.h"

/* The echo stops reading while its output takes this much memory (chunks, headers included). */
#define ECHO_BACKLOG_MAX (256 * 1024)

/* chargen sends every CHARGEN_TICK_MS, and only when its previous output has drained. */
#define CHARGEN_TICK_MS 50
#define CHARGEN_LINE    72 /* characters per line, RFC 864 */
#define CHARGEN_SPAN    95 /* printable ASCII characters rotated through */
#define DAYTIME_MAX     64

struct builtin {
	uv_pipe_t pipe;
	uv_timer_t timer; /* chargen only */
	struct budget *budget;
	size_t queued; /* memory of the chunks written, not yet freed */
	enum builtin_kind kind;
	uint64_t rate;     /* chargen: bytes per second */
	unsigned line;     /* chargen: line number, the pattern's rotation */
	unsigned column;   /* chargen: position within the current line */
	bool paused;       /* echo: reading stopped for backpressure */
	bool held;         /* echo: reading stopped for the budget */
	bool input_ended;  /* the session ended its stream towards us */
	bool output_ended; /* our shutdown completed */
	int open_handles;
};

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void on_written(uv_write_t *req, int status);

static void
alloc_read(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct builtin *b = h->data;

	chunk_alloc_charged(b->budget, budget_read_size(b->budget, CHUNK_READ_SIZE), buf);
}

static void
on_closed(uv_handle_t *h)
{
	struct builtin *b = h->data;

	if (--b->open_handles == 0)
		free(b);
}

static void
finish(struct builtin *b)
{
	if (uv_is_closing((uv_handle_t *)&b->pipe))
		return;
	uv_close((uv_handle_t *)&b->pipe, on_closed);
	if (b->kind == BUILTIN_CHARGEN)
		uv_close((uv_handle_t *)&b->timer, on_closed);
}

/* Writes c's first n bytes to the peer; counted in b->queued until written. */
static int
send_chunk(struct builtin *b, struct chunk *c, size_t n)
{
	size_t size = c->size;

	if (chunk_write(c, 0, n, (uv_stream_t *)&b->pipe, b, NULL, on_written) != 0)
		return -1;
	b->queued += size;
	return 0;
}

static void
on_written(uv_write_t *req, int status)
{
	struct chunk *c = (struct chunk *)req;
	struct builtin *b = c->owner;

	b->queued -= c->size;
	chunk_free(c);
	if (status < 0) {
		finish(b);
		return;
	}
	/* Stopped for either reason, echo reads again once all it wrote is gone. */
	if ((b->paused || b->held) && b->queued == 0 && !uv_is_closing((uv_handle_t *)&b->pipe)) {
		b->paused = b->held = false;
		uv_read_start((uv_stream_t *)&b->pipe, alloc_read, on_read);
	}
}

/* A built-in is done when both directions are: nothing more to read or to send. */
static void
maybe_finish(struct builtin *b)
{
	if (b->input_ended && b->output_ended)
		finish(b);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	struct builtin *b = req->data;

	free(req);
	b->output_ended = true;
	maybe_finish(b);
}

/* No more output: end the write side once what is queued is sent. */
static void
end_output(struct builtin *b)
{
	uv_shutdown_t *req = malloc(sizeof(*req));

	if (req == NULL) {
		finish(b);
		return;
	}
	req->data = b;
	if (uv_shutdown(req, (uv_stream_t *)&b->pipe, on_shutdown) != 0) {
		free(req);
		finish(b);
	}
}

static void
echo_back(struct builtin *b, const uv_buf_t *buf, size_t n)
{
	uv_stream_t *st = (uv_stream_t *)&b->pipe;

	if (send_chunk(b, chunk_fit(buf, n), n) != 0) {
		finish(b);
		return;
	}
	/* Over the budget, as the relay does: no more reads until what was written is gone. */
	if (budget_over(b->budget) && !b->held) {
		uv_read_stop(st);
		b->held = true;
		if (uv_stream_get_write_queue_size(st) > 0)
			budget_note_pause(b->budget);
	}
	if (b->queued > ECHO_BACKLOG_MAX) {
		uv_read_stop(st);
		b->paused = true;
	}
}

static void
on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct builtin *b = st->data;

	if (nread > 0 && b->kind == BUILTIN_ECHO) {
		echo_back(b, buf, (size_t)nread);
		return;
	}
	chunk_release(buf);
	if (nread >= 0)
		return;
	if (nread != UV_EOF) {
		finish(b);
		return;
	}
	/*
	 * End of input.  echo and discard then end their output; daytime
	 * already has; chargen goes on until its writes fail (RFC 864: until
	 * the caller closes).
	 */
	b->input_ended = true;
	uv_read_stop(st);
	if (b->kind == BUILTIN_ECHO || b->kind == BUILTIN_DISCARD)
		end_output(b);
	else
		maybe_finish(b);
}

static void
send_daytime(struct builtin *b)
{
	char text[DAYTIME_MAX];
	struct chunk *c;
	time_t now = time(NULL);
	struct tm tm;
	size_t n;

	gmtime_r(&now, &tm);
	n = strftime(text, sizeof(text), "%A, %B %d, %Y %H:%M:%S-UTC\r\n", &tm);
	if ((c = chunk_copy(b->budget, text, n)) == NULL || send_chunk(b, c, n) != 0) {
		finish(b);
		return;
	}
	end_output(b);
}

/* The RFC 864 pattern: line i is 72 characters starting at the (i+1)th printable character. */
static void
fill_chargen(struct builtin *b, char *out, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (b->column == CHARGEN_LINE) {
			out[i] = '\r';
			b->column++;
		} else if (b->column == CHARGEN_LINE + 1) {
			out[i] = '\n';
			b->column = 0;
			b->line = (b->line + 1) % CHARGEN_SPAN;
		} else {
			out[i] = (char)(' ' + (b->line + b->column + 1) % CHARGEN_SPAN);
			b->column++;
		}
	}
}

static void
on_chargen_tick(uv_timer_t *t)
{
	struct builtin *b = t->data;
	size_t n = (size_t)(b->rate * CHARGEN_TICK_MS / 1000);
	struct chunk *c;

	if (n == 0)
		n = 1;
	/* Over the budget, as the relay does: a tick skipped; near it, a smaller one. */
	if (uv_stream_get_write_queue_size((uv_stream_t *)&b->pipe) > 0 || budget_over(b->budget))
		return;
	n = budget_read_size(b->budget, n);
	if ((c = chunk_new(b->budget, n)) == NULL)
		return;
	fill_chargen(b, c->data, n);
	if (send_chunk(b, c, n) != 0)
		finish(b);
}

int
builtin_start(uv_loop_t *loop, int fd, const struct service *svc, struct budget *budget)
{
	struct builtin *b = calloc(1, sizeof(*b));
	int r;

	if (b == NULL)
		return UV_ENOMEM;
	b->kind = svc->builtin;
	b->rate = svc->chargen_rate;
	b->budget = budget;
	uv_pipe_init(loop, &b->pipe, 0);
	b->pipe.data = b;
	b->open_handles = 1;
	if ((r = uv_pipe_open(&b->pipe, fd)) != 0) {
		uv_close((uv_handle_t *)&b->pipe, on_closed);
		return r;
	}
	uv_read_start((uv_stream_t *)&b->pipe, alloc_read, on_read);
	if (b->kind == BUILTIN_DAYTIME)
		send_daytime(b);
	if (b->kind == BUILTIN_CHARGEN) {
		uv_timer_init(loop, &b->timer);
		b->timer.data = b;
		b->open_handles++;
		uv_timer_start(&b->timer, on_chargen_tick, 0, CHARGEN_TICK_MS);
	}
	return 0;
}
