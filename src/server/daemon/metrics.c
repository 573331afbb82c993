#include "server/daemon/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/http.h"
#include "server/daemon/acceptor.h"
#include "server/daemon/server.h"
#include "server/daemon/shares.h"
#include "server/privsep/priv.h"

#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CONTENT_TYPE_TEXT    "text/plain; charset=utf-8"
#define HEAD_MAX             256
#define US_PER_S             1e6
#define NS_PER_S             1e9
#define CLOSING_HANDLES      2 /* the stream and the timer */

/* One scrape, from accept to the end of its response. */
struct metrics_conn {
	struct metrics_conn *next;
	struct metrics_server *ms;
	uv_pipe_t stream; /* a Unix or TCP socket: libuv's pipe takes either descriptor */
	uv_timer_t timer;
	uv_write_t write;
	uv_shutdown_t shutdown;
	char in[HTTP_REQUEST_MAX];
	size_t len;
	char head[HEAD_MAX];
	char *body; /* malloc'd (open_memstream) or static */
	bool body_owned;
	bool answered;
	bool written; /* the whole answer is the kernel's: only the client's end is awaited */
	unsigned closing;
};

struct metrics_server {
	struct server *srv;
	struct acceptor *acc;
	struct metrics_conn *conns;
	size_t nconns;
};

/* --- the exposition ----------------------------------------------------------------- */

/* A label value with \, " and newlines escaped, as the text format wants. */
static void
put_label(FILE *f, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void
family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Every transport and dialect pair of one family, from values[t * METRICS_DIALECTS + d]. */
static void
by_transport_dialect(FILE *f, const char *name, const uint64_t *values)
{
	unsigned t, d;

	for (t = 0; t < METRICS_TRANSPORTS; t++)
		for (d = 0; d < METRICS_DIALECTS; d++)
			fprintf(f, "%s{transport=\"%s\",dialect=\"%s\"} %llu\n", name,
			        metrics_transport_names[t], metrics_dialect_names[d],
			        (unsigned long long)values[t * METRICS_DIALECTS + d]);
}

static void
write_sessions(FILE *f, const struct metrics_share *s)
{
	const struct metrics *m = &s->m;

	family(f, "fived_sessions_open", "gauge", "Live sessions, by transport and dialect.");
	by_transport_dialect(f, "fived_sessions_open", s->open);
	family(f, "fived_sessions_accepted_total", "counter", "Connections accepted.");
	fprintf(f, "fived_sessions_accepted_total %llu\n", (unsigned long long)m->accepted);
	family(f, "fived_sessions_closed_total", "counter",
	       "Sessions ended, by transport and dialect.");
	by_transport_dialect(f, "fived_sessions_closed_total", &m->closed[0][0]);
	family(f, "fived_relayed_bytes_total", "counter",
	       "Bytes relayed to services (in) and back to clients (out).");
	fprintf(f, "fived_relayed_bytes_total{direction=\"in\"} %llu\n",
	        (unsigned long long)(m->closed_bytes_in + s->live_in));
	fprintf(f, "fived_relayed_bytes_total{direction=\"out\"} %llu\n",
	        (unsigned long long)(m->closed_bytes_out + s->live_out));
}

static void
write_refusals(FILE *f, const struct metrics *m)
{
	unsigned i;

	family(f, "fived_refusals_total", "counter", "Sessions refused, by reason.");
	for (i = 0; i < m->nrefusals; i++) {
		fputs("fived_refusals_total{reason=\"", f);
		put_label(f, m->refusals[i].reason);
		fprintf(f, "\"} %llu\n", (unsigned long long)m->refusals[i].count);
	}
	if (m->refusals_other > 0)
		fprintf(f, "fived_refusals_total{reason=\"other\"} %llu\n",
		        (unsigned long long)m->refusals_other);
	family(f, "fived_auth_failures_total", "counter", "Failed authentications, by method.");
	for (i = AUTH_NONE + 1; i < AUTH_METHOD_COUNT; i++)
		fprintf(f, "fived_auth_failures_total{method=\"%s\"} %llu\n",
		        auth_method_name((enum auth_method)i),
		        (unsigned long long)m->auth_failures[i]);
}

static void
counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	family(f, name, "counter", help);
	fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

static void
gauge(FILE *f, const char *name, const char *help, double v)
{
	family(f, name, "gauge", help);
	fprintf(f, "%s %.17g\n", name, v);
}

static void
write_handshakes(FILE *f, const struct metrics_share *s, bool store)
{
	const struct governor_counters *c = &s->handshakes;
	const struct {
		const char *reason;
		uint64_t count;
	} drops[] = {
	        {"mac", c->dropped_mac},       {"rate", c->dropped_rate},
	        {"cookie", c->dropped_cookie}, {"work", c->dropped_work},
	        {"replay", c->dropped_replay}, {"failed", c->failed},
	};
	size_t i;

	counter(f, "fived_handshake_initiations_total", "Sealed first messages seen.",
	        c->initiations);
	counter(f, "fived_handshakes_total", "Sealed handshakes completed.", c->handshakes);
	counter(f, "fived_handshake_cookies_total", "Cookie replies sent.", c->cookies);
	family(f, "fived_handshake_drops_total", "counter",
	       "Sealed first messages dropped, by why.");
	for (i = 0; i < ARRAY_LEN(drops); i++)
		fprintf(f, "fived_handshake_drops_total{reason=\"%s\"} %llu\n", drops[i].reason,
		        (unsigned long long)drops[i].count);
	family(f, "fived_handshake_cpu_seconds_total", "counter", "CPU time spent in handshakes.");
	fprintf(f, "fived_handshake_cpu_seconds_total %.17g\n", (double)s->cpu_ns_total / NS_PER_S);
	gauge(f, "fived_handshake_cpu_ratio", "Handshake CPU over the last second, of one core.",
	      (double)s->cpu_percent / 100.0);
	gauge(f, "fived_handshakes_pending", "Handshakes started, not finished.",
	      (double)s->pending);
	gauge(f, "fived_governor_loaded", "1 while first messages must bring a cookie.",
	      (double)s->loaded);
	gauge(f, "fived_pow_difficulty_bits", "Proof of work demanded now, in leading zero bits.",
	      (double)s->difficulty);
	counter(f, "fived_early_data_refused_total",
	        "0-RTT early data not acted on for the store: claimed before, or no answer.",
	        c->early_refused);
	if (store)
		gauge(f, "fived_store_up", "1 while the store the nodes share is reachable.",
		      (double)s->store_up);
}

static void
write_backend(FILE *f, const struct metrics_share *s)
{
	const struct metrics *m = &s->m;
	uint64_t cumulative = 0;
	unsigned i;

	family(f, "fived_backend_connect_seconds", "histogram", "Time to reach a backend.");
	for (i = 0; i < METRICS_CONNECT_BUCKETS; i++) {
		cumulative += m->connect_buckets[i];
		fprintf(f, "fived_backend_connect_seconds_bucket{le=\"%g\"} %llu\n",
		        metrics_connect_bounds_us[i] / US_PER_S, (unsigned long long)cumulative);
	}
	fprintf(f, "fived_backend_connect_seconds_bucket{le=\"+Inf\"} %llu\n",
	        (unsigned long long)m->connect_count);
	fprintf(f, "fived_backend_connect_seconds_sum %.17g\n", m->connect_sum_us / US_PER_S);
	fprintf(f, "fived_backend_connect_seconds_count %llu\n",
	        (unsigned long long)m->connect_count);
	counter(f, "fived_backend_connect_failures_total", "Backends that could not be reached.",
	        m->connect_failures);
	counter(f, "fived_audit_lost_total", "Audit records that could not be written.",
	        s->handshakes.audit_lost);
	gauge(f, "fived_relay_budget_used_bytes", "Bytes of relay_memory_max in use.",
	      (double)s->budget_used);
	gauge(f, "fived_relay_budget_max_bytes", "relay_memory_max.", (double)s->budget_max);
}

static void
write_heap(FILE *f, const struct metrics_share *s)
{
#ifdef __SANITIZE_ADDRESS__
	(void)f;
	(void)s;
#else
	gauge(f, "fived_heap_in_use_bytes", "Heap memory allocated and not freed.",
	      (double)s->heap_in_use);
	gauge(f, "fived_heap_free_bytes", "Heap memory freed and kept by the allocator.",
	      (double)s->heap_free);
#endif
}

/* The whole exposition, malloc'd into *text; -1 when memory is short. */
static int
render(struct site *site, char **text, size_t *len)
{
	struct metrics_share *total = malloc(sizeof(*total));
	FILE *f;

	if (total == NULL || shares_total(site, total) != 0 ||
	    (f = open_memstream(text, len)) == NULL) {
		free(total);
		return -1;
	}
	write_sessions(f, total);
	write_refusals(f, &total->m);
	write_handshakes(f, total, site->store != NULL);
	write_backend(f, total);
	write_heap(f, total);
	free(total);
	return fclose(f) == 0 ? 0 : -1;
}

/* --- connections -------------------------------------------------------------------- */

static void
conn_handle_closed(uv_handle_t *h)
{
	struct metrics_conn *c = h->data;

	if (--c->closing > 0)
		return;
	if (c->body_owned)
		free(c->body);
	free(c);
}

static void
drop_conn(struct metrics_conn *c)
{
	struct metrics_conn **pp;

	if (c->closing > 0)
		return;
	for (pp = &c->ms->conns; *pp != c; pp = &(*pp)->next)
		;
	*pp = c->next;
	c->ms->nconns--;
	c->closing = CLOSING_HANDLES;
	uv_close((uv_handle_t *)&c->stream, conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void on_written(uv_write_t *w, int status);

static void
respond(struct metrics_conn *c, int status, char *body, size_t body_len, bool owned)
{
	uv_buf_t bufs[2];
	size_t head_len;

	c->answered = true;
	c->body = body;
	c->body_owned = owned;
	uv_read_stop((uv_stream_t *)&c->stream);
	if (http_response_head(status, status == 200 ? CONTENT_TYPE_METRICS : CONTENT_TYPE_TEXT,
	                       body_len, c->head, sizeof(c->head), &head_len) != 0) {
		drop_conn(c);
		return;
	}
	bufs[0] = uv_buf_init(c->head, (unsigned)head_len);
	bufs[1] = uv_buf_init(body, (unsigned)body_len);
	c->write.data = c;
	if (uv_write(&c->write, (uv_stream_t *)&c->stream, bufs, 2, on_written) != 0)
		drop_conn(c);
}

static void
refuse(struct metrics_conn *c, int status, const char *text)
{
	respond(c, status, (char *)text, strlen(text), false);
}

static void
answer(struct metrics_conn *c, enum http_request r, const char *path)
{
	char *text = NULL;
	size_t len = 0;

	if (r == HTTP_TOO_LARGE)
		refuse(c, 431, "request too large\n");
	else if (r == HTTP_BAD)
		refuse(c, 400, "malformed request\n");
	else if (r == HTTP_NOT_GET)
		refuse(c, 405, "only GET\n");
	else if (strcmp(path, METRICS_PATH) != 0)
		refuse(c, 404, "only " METRICS_PATH "\n");
	else if (render(&c->ms->srv->site, &text, &len) != 0)
		drop_conn(c);
	else
		respond(c, 200, text, len, true);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct metrics_conn *c = h->data;

	*buf = uv_buf_init(c->in + c->len, (unsigned)(sizeof(c->in) - c->len));
}

static void
on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct metrics_conn *c = st->data;
	char path[HTTP_PATH_MAX + 1];
	enum http_request r;

	/* A request cut short by the client's end is answered, as a malformed one is. */
	if (nread == UV_EOF && !c->answered && c->len > 0) {
		answer(c, HTTP_BAD, "");
		return;
	}
	if (nread < 0) {
		drop_conn(c);
		return;
	}
	if (c->answered) {
		c->len = 0; /* after the response: dropped */
		return;
	}
	c->len += (size_t)nread;
	if ((r = http_request_parse(c->in, c->len, path)) == HTTP_INCOMPLETE)
		return;
	answer(c, r, path);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	if (status != 0)
		drop_conn(req->data);
}

/*
 * The response is out: end our side, and read (and drop) what the client
 * still sends until it ends its own, or the timer runs out.  Closed with
 * unread bytes, a TCP socket would send a reset, which can overtake the
 * response.
 */
static void
on_written(uv_write_t *w, int status)
{
	struct metrics_conn *c = w->data;

	c->shutdown.data = c;
	c->written = status == 0;
	if (status != 0 || uv_shutdown(&c->shutdown, (uv_stream_t *)&c->stream, on_shutdown) != 0 ||
	    uv_read_start((uv_stream_t *)&c->stream, on_alloc, on_read) != 0)
		drop_conn(c);
}

static void
on_timeout(uv_timer_t *t)
{
	drop_conn(t->data);
}

static void
add_conn(struct metrics_server *ms, int fd)
{
	struct metrics_conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		close(fd);
		return;
	}
	c->ms = ms;
	uv_pipe_init(ms->srv->site.loop, &c->stream, 0);
	uv_timer_init(ms->srv->site.loop, &c->timer);
	c->stream.data = c->timer.data = c;
	c->next = ms->conns;
	ms->conns = c;
	ms->nconns++;
	if (uv_pipe_open(&c->stream, fd) != 0) {
		close(fd);
		drop_conn(c);
		return;
	}
	uv_timer_start(&c->timer, on_timeout, METRICS_TIMEOUT_MS, 0);
	uv_read_start((uv_stream_t *)&c->stream, on_alloc, on_read);
}

/*
 * The connection to close for room (the list is newest first), or NULL:
 * the oldest of those whose whole answer is written, else the one that
 * has waited longest for its request.
 */
static struct metrics_conn *
room_maker(struct metrics_server *ms)
{
	struct metrics_conn *c, *written = NULL, *waiting = NULL;

	for (c = ms->conns; c != NULL; c = c->next) {
		if (c->written)
			written = c;
		else if (!c->answered)
			waiting = c;
	}
	return written != NULL ? written : waiting;
}

/*
 * At the limit, a connection that has had its answer, or else the one
 * that has waited longest for its request, makes room: a program holding
 * connections open, answered or not asking, cannot keep a scraper out,
 * which asks at once.
 */
static void
take(void *arg, int fd)
{
	struct metrics_server *ms = arg;
	struct metrics_conn *oldest;

	if (ms->nconns >= METRICS_CONNECTIONS_MAX) {
		if ((oldest = room_maker(ms)) == NULL) {
			close(fd);
			return;
		}
		drop_conn(oldest);
	}
	add_conn(ms, fd);
}

int
metrics_open(struct server *srv)
{
	struct metrics_server *ms;

	if (!srv->site.cfg->has_metrics_listen)
		return 0;
	if ((ms = calloc(1, sizeof(*ms))) == NULL) {
		log_error("out of memory");
		return -1;
	}
	ms->srv = srv;
	ms->acc = acceptor_open(srv->site.loop, srv->site.priv, &srv->site.cfg->metrics_listen,
	                        PRIV_SOCKET_LISTENER, "metrics endpoint", take, ms);
	if (ms->acc == NULL) {
		free(ms);
		return -1;
	}
	srv->metrics = ms;
	return 0;
}

void
metrics_close(struct server *srv)
{
	struct metrics_server *ms = srv->metrics;

	if (ms == NULL)
		return;
	while (ms->conns != NULL)
		drop_conn(ms->conns);
	acceptor_close(ms->acc);
	free(ms);
	srv->metrics = NULL;
}
