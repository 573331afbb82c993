/*
 * The framed session (mux.h): frames from the client, checked against
 * section 11 of docs/PROTOCOL.md and its streams; the session's windows;
 * round trips; limits; the session's end.
 */
#include "server/mux/internal.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/log.h"
#include "common/util.h"
#include "server/conf/config.h"
#include "server/policy/chunk.h"
#include "server/policy/site.h"
#include "server/policy/sources.h"

/* Room for any frame fived sends but DATA. */
#define CONTROL_FRAME_MAX (MUX_HEADER_LEN + 4 + 1 + MUX_REASON_MAX)

/* --- output ----------------------------------------------------------------- */

/*
 * Every frame for the client goes through here: a session frame is
 * counted and, in a detachable session, copied; while detached nothing is
 * written.
 */
int
mux_emit(struct mux *m, struct chunk *c, size_t len)
{
	if (resume_sent(m, (const uint8_t *)c->data, len) != 0) {
		chunk_free(c);
		mux_fail(m, "out of memory");
		return -1;
	}
	if (m->resume.detached) {
		chunk_free(c);
		return 0;
	}
	return m->ev->send(m->owner, c, len);
}

int
mux_send_frame(struct mux *m, const uint8_t *frame, size_t len)
{
	struct chunk *c;

	if (m->finished || len == 0)
		return -1;
	if ((c = chunk_copy(&m->site->budget, frame, len)) == NULL)
		return -1;
	return mux_emit(m, c, len);
}

bool
mux_output_full(const struct mux *m)
{
	return !m->resume.detached && m->ev->queued(m->owner) > MUX_OUTPUT_HIGH;
}

bool
mux_down_full(const struct mux *m)
{
	return mux_output_full(m) || resume_copies_full(m);
}

void
mux_resume_streams(struct mux *m)
{
	struct channel *ch;
	size_t i;

	for (i = 0; i < MUX_BUCKETS; i++)
		for (ch = m->buckets[i]; ch != NULL; ch = ch->next)
			channel_resume(ch);
}

/* Reads the client while what it asked for can be answered without backing up. */
static void
pace_client(struct mux *m)
{
	bool on = !m->finished && !m->resume.detached && !mux_output_full(m);

	if (on != m->reading_client) {
		m->reading_client = on;
		m->ev->read_client(m->owner, on);
	}
}

/* --- the session's end ------------------------------------------------------- */

static void
finish(struct mux *m, const char *reason)
{
	if (m->finished)
		return;
	m->finished = true;
	m->ev->finish(m->owner, reason);
}

static void
goaway(struct mux *m, uint8_t code, const char *reason)
{
	uint8_t f[CONTROL_FRAME_MAX];

	if (!m->goaway)
		mux_send_frame(m, f, mux_encode_goaway(f, sizeof(f), m->last_id, code, reason));
	m->goaway = true;
}

/* Every stream still open ends; with reset, its backend sees a reset. */
static void
end_all(struct mux *m, const char *reason, bool reset)
{
	struct channel *ch, *next;
	size_t i;

	for (i = 0; i < MUX_BUCKETS; i++)
		for (ch = m->buckets[i]; ch != NULL; ch = next) {
			next = ch->next;
			channel_end(ch, 0, reason, reset);
		}
}

void
mux_fail(struct mux *m, const char *why)
{
	if (m->finished)
		return;
	log_info("session %s: %s", m->id, why);
	goaway(m, MUX_GOAWAY_PROTOCOL, why);
	end_all(m, why, true);
	finish(m, why);
}

/* No stream open: after mux_idle_timeout the session ends, and at once when draining. */
static void
on_idle(uv_timer_t *t)
{
	struct mux *m = t->data;

	goaway(m, MUX_GOAWAY_IDLE, "idle timeout");
	finish(m, "idle timeout");
}

static void
note_streams(struct mux *m)
{
	if (m->closing || m->finished)
		return;
	if (m->nopen > 0) {
		uv_timer_stop(&m->idle_timer);
		return;
	}
	if (m->draining) {
		finish(m, "server shutting down");
		return;
	}
	if (!uv_is_active((uv_handle_t *)&m->idle_timer))
		uv_timer_start(&m->idle_timer, on_idle, m->cfg->mux_idle_timeout_ms, 0);
}

/* --- the relay budget ------------------------------------------------------ */

static void
held_unlink(struct mux *m)
{
	struct site *site = m->site;

	if (!m->held_listed)
		return;
	if (m->held_prev != NULL)
		m->held_prev->held_next = m->held_next;
	else
		site->budget_muxes = m->held_next;
	if (m->held_next != NULL)
		m->held_next->held_prev = m->held_prev;
	m->held_listed = false;
}

static void
held_list(struct mux *m)
{
	struct site *site = m->site;

	if (!m->held_listed && !m->closing) {
		m->held_prev = NULL;
		m->held_next = site->budget_muxes;
		if (site->budget_muxes != NULL)
			site->budget_muxes->held_prev = m;
		site->budget_muxes = m;
		m->held_listed = true;
	}
}

bool
mux_budget_hold(struct mux *m)
{
	if (!budget_over(&m->site->budget))
		return false;
	held_list(m);
	return true;
}

static uint64_t
copies_share(const struct site *site)
{
	return site->budget.max / MUX_COPIES_SHARE;
}

static bool
copies_over(const struct mux *m)
{
	return m->resume.granted && m->site->copies >= copies_share(m->site);
}

bool
mux_copies_hold(struct mux *m)
{
	if (!copies_over(m))
		return false;
	held_list(m);
	return true;
}

/* Credit withheld and backends left unread for the budget: given and read now. */
static void
budget_resume(struct mux *m)
{
	struct channel *ch;
	size_t i;

	for (i = 0; i < MUX_BUCKETS; i++)
		for (ch = m->buckets[i]; ch != NULL; ch = ch->next) {
			if (!ch->up_fin)
				mux_credit(m, &ch->up, ch->id);
			channel_resume(ch);
		}
	mux_credit(m, &m->up, 0);
}

void
mux_budget_low(void *arg)
{
	struct site *site = arg;
	struct mux *m, *next;

	/*
	 * One at a time: a session the budget stops again goes back on the
	 * list, and waits.  One held for the copies' share waits on.
	 */
	for (m = site->budget_muxes; m != NULL && !budget_over(&site->budget); m = next) {
		next = m->held_next;
		if (copies_over(m))
			continue;
		held_unlink(m);
		budget_resume(m);
	}
}

void
mux_copies_released(struct site *site, uint64_t n)
{
	uint64_t low = copies_share(site) / 4 * 3;
	bool was_high = site->copies >= low;

	site->copies -= n;
	if (was_high && site->copies < low)
		mux_budget_low(site);
}

/* --- windows --------------------------------------------------------------- */

/*
 * A window is given back once half of it was delivered.  When the whole
 * window went in less than two round trips, the link could carry more
 * than it: it doubles, up to mux_window_max, toward the path's
 * bandwidth-delay product, and only while the relay budget has room for
 * the extra below its low-water mark: what a window grants may all come
 * to be held here, should the backend stop reading.
 */
void
mux_credit(struct mux *m, struct mux_rwin *w, uint32_t id)
{
	uint8_t f[CONTROL_FRAME_MAX];
	uint64_t now = uv_hrtime(), credit = w->consumed;

	if (w->consumed < w->size / 2 || m->finished || mux_budget_hold(m))
		return;
	if (m->rtt_ns > 0 && now - w->credit_ns < 2 * m->rtt_ns &&
	    w->size * 2 <= m->cfg->mux_window_max &&
	    m->site->budget.used + w->size < budget_low(&m->site->budget)) {
		credit += w->size;
		w->size *= 2;
	}
	w->left += credit;
	w->consumed = 0;
	w->credit_ns = now;
	mux_send_frame(m, f, mux_encode_window(f, sizeof(f), id, (uint32_t)credit));
}

static void
rwin_init(struct mux_rwin *w, uint64_t size)
{
	w->left = w->size = size;
	w->consumed = 0;
	w->credit_ns = uv_hrtime();
}

void
mux_discard(struct mux *m, size_t n)
{
	m->up.consumed += n;
	mux_credit(m, &m->up, 0);
}

/* --- streams by id ----------------------------------------------------------- */

static struct channel **
bucket(struct mux *m, uint32_t id)
{
	return &m->buckets[(id >> 1) % MUX_BUCKETS];
}

static struct channel *
find(struct mux *m, uint32_t id)
{
	struct channel *ch;

	for (ch = *bucket(m, id); ch != NULL; ch = ch->next)
		if (ch->id == id)
			return ch;
	return NULL;
}

void
mux_unlink(struct mux *m, struct channel *ch)
{
	struct channel **p;

	for (p = bucket(m, ch->id); *p != NULL; p = &(*p)->next)
		if (*p == ch) {
			*p = ch->next;
			break;
		}
	if (!ch->connected)
		m->npending--;
	m->nopen--;
	m->site->mux_streams--;
	source_release(m->site->sources, ch->grant.source);
	ch->grant.source = NULL;
	/* Nothing moves on an unlinked stream: its bytes are the session's from now on. */
	m->bytes_in += ch->bytes_in;
	m->bytes_out += ch->bytes_out;
	note_streams(m);
}

/* --- frames ------------------------------------------------------------------ */

static void
rst(struct mux *m, uint32_t id, uint8_t code, const char *reason)
{
	uint8_t f[CONTROL_FRAME_MAX];

	mux_send_frame(m, f, mux_encode_rst(f, sizeof(f), id, code, reason));
}

/*
 * Refuses an OPEN.  One refused for the client's own doing (theirs) counts
 * towards the session's end (section 11.5); one the server's state refuses
 * (full, shutting down) does not: it would end the streams of a session
 * for what other clients did.
 */
static void
refuse_open(struct mux *m, const struct mux_frame *f, uint8_t code, const char *reason, bool theirs)
{
	m->ev->audit(m->owner, "stream_refused",
	             json_pack("{s:I,s:s,s:s}", "stream", (json_int_t)f->id, "service",
	                       f->u.open.service, "reason", reason));
	rst(m, f->id, code, reason);
	mux_discard(m, f->u.open.data_len);
	if (!theirs || ++m->nrefused < MUX_REFUSALS_MAX)
		return;
	goaway(m, MUX_GOAWAY_LIMIT, "too many refused streams");
	end_all(m, "too many refused streams", true);
	finish(m, "too many refused streams");
}

/* The OPENs the client may still cancel before their answer, refilled at their rate. */
static unsigned
cancels_left(struct mux *m)
{
	uint64_t now = uv_now(m->site->loop);
	uint64_t earned = (now - m->cancels_counted_ms) / MUX_CANCEL_REFILL_MS;

	m->cancels_counted_ms += earned * MUX_CANCEL_REFILL_MS;
	if (earned >= MUX_CANCELS_BURST - m->cancels_left)
		m->cancels_left = MUX_CANCELS_BURST;
	else
		m->cancels_left += (unsigned)earned;
	return m->cancels_left;
}

/*
 * The limits that refuse an OPEN before it is judged; NULL when none
 * applies.  *theirs: the client's own doing.
 */
static const char *
over_limit(struct mux *m, uint8_t *code, bool *theirs)
{
	*code = MUX_RST_LIMIT;
	*theirs = false;
	if (m->goaway) {
		*code = MUX_RST_SHUTDOWN;
		return "server shutting down";
	}
	/*
	 * A stream holds a backend's descriptor: together they count as
	 * connections do, against the server's limit in force (a reload's).
	 */
	if (site_connections(m->site) >= m->site->cfg->max_connections)
		return "too many connections";
	*theirs = true;
	if (m->nopen >= m->cfg->max_streams)
		return "too many streams";
	if (m->npending >= m->cfg->max_pending_opens)
		return "too many pending opens";
	if (cancels_left(m) == 0)
		return "too many cancelled streams";
	return NULL;
}

/*
 * A command stream (section 13.1) is answered at once: ACCEPT, the reply
 * in one DATA, FIN.  It is then over: what the client sends on it after
 * its OPEN (its FIN) is dropped, as for any stream that is over.
 */
static void
answer_command(struct mux *m, const struct mux_frame *f, const char *reply, size_t len)
{
	uint8_t frame[MUX_HEADER_LEN + MUX_REPLY_MAX];

	if (len > m->down_left) {
		refuse_open(m, f, MUX_RST_LIMIT, "no window for the reply", true);
		return;
	}
	mux_discard(m, f->u.open.data_len);
	m->down_left -= len;
	mux_send_frame(m, frame, mux_encode_empty(frame, sizeof(frame), f->id, MUX_ACCEPT));
	mux_header(frame, f->id, MUX_DATA, 0, len);
	memcpy(frame + MUX_HEADER_LEN, reply, len);
	mux_send_frame(m, frame, MUX_HEADER_LEN + len);
	mux_send_frame(m, frame, mux_encode_empty(frame, sizeof(frame), f->id, MUX_FIN));
}

static void
on_open(struct mux *m, const struct mux_frame *f)
{
	char reply[MUX_REPLY_MAX];
	struct mux_grant g;
	const char *reason;
	uint8_t code;
	bool theirs;
	int n;

	if (f->id % 2 == 0 || f->id <= m->last_id) {
		mux_fail(m, "protocol error: stream id not new");
		return;
	}
	m->last_id = f->id;
	m->up.left -= f->u.open.data_len;
	if ((reason = over_limit(m, &code, &theirs)) != NULL) {
		refuse_open(m, f, code, reason, theirs);
		return;
	}
	if ((n = m->ev->command(m->owner, f, reply, &code, &reason)) < 0) {
		refuse_open(m, f, code, reason, true);
		return;
	}
	if (n > 0) {
		answer_command(m, f, reply, (size_t)n);
		return;
	}
	memset(&g, 0, sizeof(g));
	/* The server's state as much as the client's doing: its address may be shared. */
	if ((g.source = m->ev->source_place(m->owner)) == NULL) {
		refuse_open(m, f, MUX_RST_LIMIT, "too many connections from your address", false);
		return;
	}
	if (m->ev->authorize(m->owner, f->id, f, &g, &reason) != 0) {
		source_release(m->site->sources, g.source);
		refuse_open(m, f, MUX_RST_REFUSED, reason, true);
		return;
	}
	if (channel_open(m, f->id, &g, f->u.open.data, f->u.open.data_len) == NULL) {
		refuse_open(m, f, MUX_RST_REFUSED, "server busy", false);
		return;
	}
}

void
mux_open(struct mux *m, const char *service, const char *token)
{
	struct mux_frame f;

	memset(&f, 0, sizeof(f));
	f.id = m->last_id + (m->last_id == 0 ? 1 : 2);
	f.type = MUX_OPEN;
	str_copy(f.u.open.service, service, sizeof(f.u.open.service));
	if (token != NULL && strlen(token) > MUX_TOKEN_MAX) {
		m->last_id = f.id;
		refuse_open(m, &f, MUX_RST_REFUSED, "invalid token", true);
		return;
	}
	f.u.open.token = (const uint8_t *)token;
	f.u.open.token_len = token != NULL ? strlen(token) : 0;
	on_open(m, &f);
}

void
mux_channel_linked(struct mux *m, struct channel *ch)
{
	ch->next = *bucket(m, ch->id);
	*bucket(m, ch->id) = ch;
	m->nopen++;
	m->npending++;
	m->nchannels++;
	m->site->mux_streams++;
	note_streams(m);
}

static void
on_data(struct mux *m, const struct mux_frame *f, struct channel *ch)
{
	if (ch == NULL) {
		mux_discard(m, f->len);
		return;
	}
	if (ch->up_fin) {
		mux_fail(m, "protocol error: DATA after FIN");
		return;
	}
	if (f->len > ch->up.left) {
		mux_fail(m, "protocol error: data beyond the window");
		return;
	}
	ch->up.left -= f->len;
	channel_data(ch, f->payload, f->len);
}

static void
on_window(struct mux *m, const struct mux_frame *f, struct channel *ch)
{
	if (f->id != 0) {
		if (ch != NULL)
			channel_window(ch, f->u.credit);
		return;
	}
	if (mux_window_add(&m->down_left, f->u.credit) != 0) {
		mux_fail(m, "protocol error: window beyond 2^31-1");
		return;
	}
	mux_resume_streams(m);
}

static void
on_ping(struct mux *m, const struct mux_frame *f)
{
	uint8_t out[MUX_HEADER_LEN + MUX_PING_LEN];

	if (!(f->flags & MUX_FLAG_ACK)) {
		mux_send_frame(m, out, mux_encode_ping(out, sizeof(out), MUX_FLAG_ACK, f->payload));
		return;
	}
	if (m->ping_sent_ns == 0 || memcmp(f->payload, m->ping, MUX_PING_LEN) != 0)
		return;
	m->rtt_ns = uv_hrtime() - m->ping_sent_ns;
	m->ping_sent_ns = 0;
}

/* A cancel past the rate ends nothing: the next OPENs are refused until it allows again. */
static void
on_client_rst(struct mux *m, struct channel *ch)
{
	bool cancelled = !ch->connected && !ch->ended;

	channel_end(ch, 0, "client reset the stream", true);
	if (cancelled && cancels_left(m) > 0)
		m->cancels_left--;
}

/* A stream's frame: the stream must have been opened (WINDOW and RST may come after its end). */
static void
on_stream_frame(struct mux *m, const struct mux_frame *f)
{
	struct channel *ch = find(m, f->id);

	if (f->id > m->last_id && f->type != MUX_WINDOW && f->type != MUX_RST) {
		mux_fail(m, "protocol error: frame for a stream never opened");
		return;
	}
	switch (f->type) {
	case MUX_DATA:
		on_data(m, f, ch);
		break;
	case MUX_FIN:
		if (ch != NULL && ch->up_fin)
			mux_fail(m, "protocol error: FIN after FIN");
		else if (ch != NULL)
			channel_fin(ch);
		break;
	case MUX_RST:
		if (ch != NULL)
			on_client_rst(m, ch);
		break;
	case MUX_WINDOW:
		on_window(m, f, ch);
		break;
	default:
		mux_fail(m, "protocol error: frame the server does not take");
		break;
	}
}

/* DATA and OPEN's data count against the session's window first. */
static int
within_session_window(struct mux *m, const struct mux_frame *f)
{
	size_t n = f->type == MUX_DATA ? f->len : f->type == MUX_OPEN ? f->u.open.data_len : 0;

	if (n <= m->up.left)
		return 0;
	mux_fail(m, "protocol error: data beyond the window");
	return -1;
}

static void
on_frame(struct mux *m, const struct mux_frame *f)
{
	if (within_session_window(m, f) != 0)
		return;
	if (f->type == MUX_DATA)
		m->up.left -= f->len;
	switch (f->type) {
	case MUX_OPEN:
		on_open(m, f);
		break;
	case MUX_DETACHABLE:
		resume_on_detachable(m, f);
		break;
	case MUX_RECEIVED:
		resume_on_received(m, f->u.received);
		break;
	case MUX_PING:
		on_ping(m, f);
		break;
	case MUX_GOAWAY:
	case MUX_ACCEPT:
		mux_fail(m, "protocol error: frame the server does not take");
		break;
	case MUX_WINDOW:
		if (f->id == 0) {
			on_window(m, f, NULL);
			break;
		}
		/* fall through */
	default:
		on_stream_frame(m, f);
		break;
	}
}

/* Takes every whole frame of data[0..len); returns the bytes taken, or -1 when the session failed.
 */
static ssize_t
take_frames(struct mux *m, const uint8_t *data, size_t len)
{
	struct mux_frame f;
	const char *why;
	size_t used, taken = 0;
	enum mux_status st;

	while (!m->finished) {
		st = mux_decode(data + taken, len - taken, &f, &used, &why);
		if (st == MUX_NEED_MORE)
			return (ssize_t)taken;
		if (st == MUX_BAD) {
			mux_fail(m, why);
			return -1;
		}
		resume_frame_in(m, &f, used);
		on_frame(m, &f);
		taken += used;
	}
	return -1;
}

/*
 * Frames straight from the client's bytes; only a frame cut by the end of
 * a read is copied, to be completed by the next.
 */
void
mux_input(struct mux *m, const uint8_t *data, size_t len)
{
	ssize_t taken;
	size_t need;

	while (m->in.len > 0 && len > 0 && !m->finished) {
		need = m->in.len < MUX_HEADER_LEN
		               ? MUX_HEADER_LEN - m->in.len
		               : MUX_HEADER_LEN + bytes_get16(m->in.data + 6) - m->in.len;
		need = need < len ? need : len;
		if (buf_append(&m->in, data, need) != 0) {
			mux_fail(m, "protocol error: frame too long");
			return;
		}
		data += need;
		len -= need;
		if ((taken = take_frames(m, m->in.data, m->in.len)) < 0)
			return;
		buf_consume(&m->in, (size_t)taken);
	}
	if (m->finished || (taken = take_frames(m, data, len)) < 0)
		return;
	if ((size_t)taken < len && buf_append(&m->in, data + taken, len - (size_t)taken) != 0)
		mux_fail(m, "protocol error: frame too long");
	pace_client(m);
}

/* --- round trips ------------------------------------------------------------ */

static void
send_ping(struct mux *m)
{
	uint8_t f[MUX_HEADER_LEN + MUX_PING_LEN];

	if (m->ping_sent_ns != 0 || m->resume.detached)
		return;
	randombytes_buf(m->ping, sizeof(m->ping));
	m->ping_sent_ns = uv_hrtime();
	mux_send_frame(m, f, mux_encode_ping(f, sizeof(f), 0, m->ping));
}

static void
on_ping_timer(uv_timer_t *t)
{
	struct mux *m = t->data;

	if (m->nopen > 0)
		send_ping(m);
}

/* --- the session's calls ------------------------------------------------------ */

struct mux *
mux_new(struct site *site, const struct config *cfg, const char *id, const struct mux_events *ev,
        void *owner)
{
	struct mux *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->site = site;
	m->cfg = cfg;
	str_copy(m->id, id, sizeof(m->id));
	m->ev = ev;
	m->owner = owner;
	buf_init(&m->in, MUX_FRAME_MAX);
	rwin_init(&m->up, MUX_SESSION_WINDOW);
	m->down_left = MUX_SESSION_WINDOW;
	m->reading_client = true;
	m->cancels_left = MUX_CANCELS_BURST;
	m->cancels_counted_ms = uv_now(site->loop);
	uv_timer_init(site->loop, &m->idle_timer);
	uv_timer_init(site->loop, &m->ping_timer);
	m->idle_timer.data = m->ping_timer.data = m;
	resume_init(m);
	m->timers_open = 3;
	return m;
}

int
mux_start(struct mux *m)
{
	send_ping(m);
	uv_timer_start(&m->ping_timer, on_ping_timer, MUX_PING_INTERVAL_MS, MUX_PING_INTERVAL_MS);
	note_streams(m);
	return m->finished ? -1 : 0;
}

void
mux_client_ended(struct mux *m)
{
	if (m->nopen > 0)
		end_all(m, "client ended the session with streams open", true);
	finish(m, m->in.len > 0 ? "client stream truncated" : "done");
}

void
mux_client_drained(struct mux *m)
{
	if (m->closing || m->ev->queued(m->owner) > MUX_OUTPUT_LOW)
		return;
	pace_client(m);
	mux_resume_streams(m);
}

void
mux_drain(struct mux *m)
{
	goaway(m, MUX_GOAWAY_NORMAL, "server shutting down");
	m->draining = true;
	note_streams(m);
}

static void
on_timer_closed(uv_handle_t *h)
{
	struct mux *m = h->data;

	m->timers_open--;
	if (m->freed && m->timers_open == 0 && m->nchannels == 0)
		free(m);
}

unsigned
mux_close(struct mux *m)
{
	unsigned pending = m->nchannels;

	if (m->closing)
		return 0;
	m->closing = true;
	m->finished = true;
	held_unlink(m);
	resume_close(m);
	end_all(m, "session closed", true);
	uv_close((uv_handle_t *)&m->resume.timer, on_timer_closed);
	uv_close((uv_handle_t *)&m->idle_timer, on_timer_closed);
	uv_close((uv_handle_t *)&m->ping_timer, on_timer_closed);
	return pending;
}

void
mux_channel_freed(struct mux *m)
{
	m->nchannels--;
	if (m->closing)
		m->ev->closed(m->owner);
}

void
mux_free(struct mux *m)
{
	if (m == NULL)
		return;
	buf_free(&m->in);
	resume_free(m);
	/* The timers' close callbacks are yet to run when the session frees from its own close. */
	m->freed = true;
	if (m->timers_open == 0)
		free(m);
}

void
mux_bytes(const struct mux *m, uint64_t *in, uint64_t *out)
{
	const struct channel *ch;
	size_t i;

	*in = m->bytes_in;
	*out = m->bytes_out;
	for (i = 0; i < MUX_BUCKETS; i++)
		for (ch = m->buckets[i]; ch != NULL; ch = ch->next) {
			*in += ch->bytes_in;
			*out += ch->bytes_out;
		}
}

unsigned
mux_open_streams(const struct mux *m)
{
	return m->nopen;
}

/* The table holds the open streams: one that ends is unlinked (mux_unlink) at once. */
void
mux_each_stream(const struct mux *m, bool (*each)(const struct mux_stream_info *info, void *arg),
                void *arg)
{
	uint64_t now = uv_now(m->site->loop);
	struct mux_stream_info info;
	const struct channel *ch;
	size_t i;

	for (i = 0; i < MUX_BUCKETS; i++)
		for (ch = m->buckets[i]; ch != NULL; ch = ch->next) {
			info.id = ch->id;
			info.service = ch->grant.svc->name;
			info.connected = ch->connected;
			info.bytes_in = ch->bytes_in;
			info.bytes_out = ch->bytes_out;
			info.age_ms = now - ch->opened_ms;
			if (!each(&info, arg))
				return;
		}
}
