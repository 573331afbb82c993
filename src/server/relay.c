/*
 * Moving bytes between a client and its backend once a service is granted.
 *
 * Each read fills a chunk that becomes the write on the other side, so no
 * byte is copied in user space.  When a destination has more than
 * RELAY_HIGH_WATER bytes queued, reading its source stops until the queue
 * falls below RELAY_LOW_WATER: memory per session stays bounded whatever
 * either peer does.  An end of stream on one side becomes a shutdown of the
 * other's write side; the session ends when both directions have ended.
 */
#include <stdlib.h>

#include "common/log.h"
#include "server/chunk.h"
#include "server/config.h"
#include "server/server.h"
#include "server/session.h"
#include "server/transport.h"
#include "server/uspsession.h"

#define RELAY_HIGH_WATER (256 * 1024)
#define RELAY_LOW_WATER  (64 * 1024)

static void on_backend_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static uv_stream_t *
source_of(struct session *s, struct relay_dir *dir)
{
	return dir == &s->up ? &s->client.stream : &s->backend.stream;
}

static uv_stream_t *
destination_of(struct session *s, struct relay_dir *dir)
{
	return dir == &s->up ? &s->backend.stream : &s->client.stream;
}

static void
resume(struct session *s, struct relay_dir *dir)
{
	if (dir == &s->up)
		session_read_client(s);
	else
		uv_read_start(&s->backend.stream, chunk_alloc, on_backend_read);
}

static void
on_written(uv_write_t *req, int status)
{
	struct chunk *c = (struct chunk *)req;
	struct session *s = c->owner;
	struct relay_dir *dir = c->tag;

	free(c);
	if (s->state == S_CLOSED)
		return;
	if (status < 0) {
		log_debug("session %s: write: %s", s->id, uv_strerror(status));
		session_close(s, dir == &s->up ? "backend write failed" : "client write failed");
		return;
	}
	if (dir != NULL && dir->paused &&
	    uv_stream_get_write_queue_size(destination_of(s, dir)) < RELAY_LOW_WATER) {
		dir->paused = false;
		if (!dir->eof)
			resume(s, dir);
	}
}

int
relay_client_write(struct session *s, struct relay_dir *dir, struct chunk *c, size_t len)
{
	return chunk_write(c, len, &s->client.stream, s, dir, on_written);
}

int
relay_write_copy(struct session *s, uv_stream_t *dst, const void *data, size_t len)
{
	struct chunk *c;

	if (len == 0)
		return 0;
	if (dst == &s->client.stream && s->transport != NULL)
		return s->transport->output(s, NULL, data, len);
	if ((c = chunk_copy(data, len)) == NULL)
		return -1;
	return chunk_write(c, len, dst, s, NULL, on_written);
}

static void
both_done(struct session *s)
{
	if (s->up.shut && s->down.shut)
		session_close(s, "done");
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	struct session *s = req->data;

	if (s->state == S_CLOSED)
		return;
	/* A peer that is already gone cannot be shut down: that direction is over too. */
	(req == &s->up.shutdown_req ? &s->up : &s->down)->shut = true;
	both_done(s);
}

/* The source of dir ended: after the queued bytes, end the destination's write side. */
static void
end_direction(struct session *s, struct relay_dir *dir)
{
	dir->eof = true;
	uv_read_stop(source_of(s, dir));
	if (dir == &s->down && s->transport != NULL && s->transport->finish(s) != 0) {
		session_close(s, "client write failed");
		return;
	}
	dir->shutdown_req.data = s;
	if (uv_shutdown(&dir->shutdown_req, destination_of(s, dir), on_shutdown) != 0) {
		dir->shut = true;
		both_done(s);
	}
}

static void
forward(struct session *s, struct relay_dir *dir, ssize_t nread, const uv_buf_t *buf)
{
	uv_stream_t *dst = destination_of(s, dir);

	if (nread > 0) {
		dir->bytes += (uint64_t)nread;
		s->last_activity_ms = uv_now(s->srv->loop);
		if (dst == &s->client.stream && s->transport != NULL) {
			int r = s->transport->output(s, dir, (uint8_t *)buf->base, (size_t)nread);
			chunk_release(buf);
			if (r != 0) {
				session_close(s, "client write failed");
				return;
			}
		} else if (chunk_write(chunk_of(buf), (size_t)nread, dst, s, dir, on_written) !=
		           0) {
			session_close(s, dir == &s->up ? "backend write failed"
			                               : "client write failed");
			return;
		}
		if (uv_stream_get_write_queue_size(dst) > RELAY_HIGH_WATER) {
			uv_read_stop(source_of(s, dir));
			dir->paused = true;
		}
		return;
	}
	chunk_release(buf);
	if (nread == 0)
		return;
	if (nread == UV_EOF) {
		end_direction(s, dir);
		return;
	}
	log_debug("session %s: read: %s", s->id, uv_strerror((int)nread));
	session_close(s, dir == &s->up ? "client read failed" : "backend read failed");
}

void
relay_client_data(struct session *s, ssize_t nread, const uv_buf_t *buf)
{
	forward(s, &s->up, nread, buf);
}

static void
on_backend_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct session *s = st->data;

	if (s->state != S_RELAY) {
		chunk_release(buf);
		return;
	}
	forward(s, &s->down, nread, buf);
}

static void
on_idle_check(uv_timer_t *t)
{
	struct session *s = t->data;
	uint64_t idle = s->svc->idle_timeout_ms;
	uint64_t quiet = uv_now(s->srv->loop) - s->last_activity_ms;

	if (quiet >= idle) {
		session_close(s, "idle timeout");
		return;
	}
	uv_timer_start(&s->timer, on_idle_check, idle - quiet, 0);
}

void
relay_start(struct session *s, const void *header, size_t header_len)
{
	uv_stream_t *be = &s->backend.stream;

	if ((s->usp != NULL ? usp_send_connect(s) : session_send(s, "+\r\n", 3)) != 0 ||
	    relay_write_copy(s, be, header, header_len) != 0 ||
	    relay_write_copy(s, be, s->in.data, s->in.len) != 0) {
		session_close(s, "out of memory");
		return;
	}
	s->up.bytes += s->in.len;
	buf_free(&s->in);
	session_set_state(s, S_RELAY);
	s->last_activity_ms = uv_now(s->srv->loop);
	uv_timer_stop(&s->timer);
	if (s->svc->idle_timeout_ms > 0)
		uv_timer_start(&s->timer, on_idle_check, s->svc->idle_timeout_ms, 0);
	uv_read_start(be, chunk_alloc, on_backend_read);
	if (s->client_eof_early)
		end_direction(s, &s->up);
	else
		session_read_client(s);
}
