/*
 * A framed session that outlives its connection (docs/PROTOCOL.md section
 * 12): the counts of session-frame bytes both ways, RECEIVED, the copies
 * of what fived sent that the client has not acknowledged, the ticket, and
 * the move to a new connection.
 *
 * The copies are the only thing a detached session queues: they are
 * charged to the relay budget and bounded by detach_queue_max, and at
 * either bound no backend of the session is read (mux_down_full), so a
 * backend that keeps sending is paused, never dropped.
 */
#include "server/mux/internal.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "common/log.h"
#include "server/conf/config.h"
#include "server/policy/budget.h"
#include "server/policy/chunk.h"
#include "server/policy/site.h"
#include "server/privsep/priv.h"

_Static_assert(MUX_TICKET_HASH_LEN == crypto_generichash_BYTES, "ticket hash size");

/* DETACHABLE's answer, granted or refused. */
#define DETACH_FRAME_MAX (MUX_HEADER_LEN + 1 + 4 + MUX_TICKET_LEN + MUX_REASON_MAX)

/* --- the ticket ------------------------------------------------------------- */

static void
hash_secret(const uint8_t ticket[MUX_TICKET_LEN], uint8_t hash[MUX_TICKET_HASH_LEN])
{
	crypto_generichash(hash, MUX_TICKET_HASH_LEN, ticket + MUX_TICKET_ID_LEN,
	                   MUX_TICKET_SECRET_LEN, NULL, 0);
}

/*
 * A new ticket in out; the session keeps its id and the secret's hash.
 * With several workers, the id's first byte is this worker's index: an
 * ATTACH that another worker receives is told where the session is not.
 */
static void
new_ticket(const struct mux *m, struct mux_ticket_ref *ref, uint8_t out[MUX_TICKET_LEN])
{
	randombytes_buf(out, MUX_TICKET_LEN);
	if (priv_shared(m->site->priv))
		out[0] = (uint8_t)m->site->priv->index;
	memcpy(ref->id, out, MUX_TICKET_ID_LEN);
	hash_secret(out, ref->hash);
}

static bool
ref_is(const struct mux_ticket_ref *ref, const uint8_t ticket[MUX_TICKET_LEN],
       const uint8_t hash[MUX_TICKET_HASH_LEN])
{
	/* Both compared in full, in constant time: which part failed is not told. */
	int id = sodium_memcmp(ref->id, ticket, MUX_TICKET_ID_LEN);
	int secret = sodium_memcmp(ref->hash, hash, MUX_TICKET_HASH_LEN);

	return (id | secret) == 0;
}

bool
mux_ticket_is(const struct mux *m, const uint8_t ticket[MUX_TICKET_LEN])
{
	const struct mux_resume *r = &m->resume;
	uint8_t hash[MUX_TICKET_HASH_LEN];
	bool is;

	if (!r->granted || m->closing)
		return false;
	hash_secret(ticket, hash);
	is = ref_is(&r->ticket, ticket, hash) || (r->prev_valid && ref_is(&r->prev, ticket, hash));
	sodium_memzero(hash, sizeof(hash));
	return is;
}

/* --- the copies --------------------------------------------------------------- */

static int
copy_append(struct mux *m, const uint8_t *data, size_t len)
{
	struct mux_resume *r = &m->resume;
	struct mux_copy_seg *seg;
	size_t n;

	while (len > 0) {
		if (r->tail == NULL || r->tail->len == MUX_COPY_SEG_SIZE) {
			if ((seg = malloc(sizeof(*seg))) == NULL)
				return -1;
			budget_charge(&m->site->budget, sizeof(*seg));
			m->site->copies += sizeof(*seg);
			seg->next = NULL;
			seg->len = 0;
			if (r->tail != NULL)
				r->tail->next = seg;
			else
				r->head = seg;
			r->tail = seg;
		}
		n = MUX_COPY_SEG_SIZE - r->tail->len;
		n = n < len ? n : len;
		memcpy(r->tail->data + r->tail->len, data, n);
		r->tail->len += n;
		data += n;
		len -= n;
	}
	return 0;
}

/* A place in the copies: the segment, the offset in it, and the count there. */
struct copy_cursor {
	const struct mux_copy_seg *seg;
	size_t off;
};

/* Copies n bytes at the cursor into out (NULL: skips them); false past the copies' end. */
static bool
cursor_take(struct copy_cursor *c, uint8_t *out, size_t n)
{
	size_t k;

	while (n > 0) {
		if (c->seg == NULL)
			return false;
		k = c->seg->len - c->off < n ? c->seg->len - c->off : n;
		if (out != NULL) {
			memcpy(out, c->seg->data + c->off, k);
			out += k;
		}
		c->off += k;
		n -= k;
		if (c->off == c->seg->len) {
			c->seg = c->seg->next;
			c->off = 0;
		}
	}
	return true;
}

/*
 * Whether count, at or past the copies' base, is where a frame of them
 * begins (or their end): only whole frames count (section 12.1), so a
 * RECEIVED or an ATTACH in the middle of one is not a point to go on from.
 * The base is always a boundary: it moves only to counts this accepted.
 */
static bool
copy_boundary(const struct mux *m, uint64_t count)
{
	const struct mux_resume *r = &m->resume;
	struct copy_cursor c = {.seg = r->head, .off = r->head_off};
	uint8_t header[MUX_HEADER_LEN];
	uint64_t at = r->base;
	size_t len;

	while (at < count) {
		if (!cursor_take(&c, header, sizeof(header)))
			return false;
		len = bytes_get16(header + 6);
		if (!cursor_take(&c, NULL, len))
			return false;
		at += MUX_HEADER_LEN + len;
	}
	return at == count;
}

/* Drops the copies up to count (a point the client has). */
static void
copy_drop(struct mux *m, uint64_t count)
{
	struct mux_resume *r = &m->resume;
	struct mux_copy_seg *seg;
	size_t n;

	while (r->base < count && (seg = r->head) != NULL) {
		n = seg->len - r->head_off;
		if (count - r->base < n) {
			r->head_off += (size_t)(count - r->base);
			r->base = count;
			return;
		}
		r->base += n;
		r->head_off = 0;
		/*
		 * A segment the client has whole is freed, the tail too: an idle
		 * detachable session (most of them) then holds no copy at all.
		 */
		r->head = seg->next;
		if (r->head == NULL)
			r->tail = NULL;
		free(seg);
		budget_release(&m->site->budget, sizeof(*seg));
		mux_copies_released(m->site, sizeof(*seg));
	}
}

void
resume_free(struct mux *m)
{
	struct mux_resume *r = &m->resume;
	struct mux_copy_seg *seg;

	while ((seg = r->head) != NULL) {
		r->head = seg->next;
		free(seg);
		budget_release(&m->site->budget, sizeof(*seg));
		mux_copies_released(m->site, sizeof(*seg));
	}
	r->tail = NULL;
	sodium_memzero(&r->ticket, sizeof(r->ticket));
	sodium_memzero(&r->prev, sizeof(r->prev));
}

bool
resume_copies_full(const struct mux *m)
{
	const struct mux_resume *r = &m->resume;

	return r->granted && r->sent - r->base >= m->cfg->detach_queue_max;
}

int
resume_sent(struct mux *m, const uint8_t *frame, size_t len)
{
	struct mux_resume *r = &m->resume;

	if (!mux_type_counted((enum mux_type)frame[4]))
		return 0;
	r->sent += len;
	if (!r->granted)
		return 0;
	if (copy_append(m, frame, len) == 0)
		return 0;
	/* A frame that cannot be kept could not be sent again: the session cannot resume. */
	log_error("session %s: out of memory for the copies of frames sent", m->id);
	return -1;
}

/* --- RECEIVED ------------------------------------------------------------------ */

static void
send_received(struct mux *m)
{
	struct mux_resume *r = &m->resume;
	uint8_t f[MUX_HEADER_LEN + MUX_RECEIVED_LEN];

	uv_timer_stop(&r->timer);
	if (r->detached || r->reported == r->received)
		return;
	r->reported = r->received;
	mux_send_frame(m, f, mux_encode_received(f, sizeof(f), r->received));
}

static void
on_received_timer(uv_timer_t *t)
{
	send_received(t->data);
}

/* RECEIVED at once past MUX_RECEIVED_EVERY, else within MUX_RECEIVED_DELAY_MS. */
static void
received_due(struct mux *m)
{
	struct mux_resume *r = &m->resume;

	if (!r->granted || r->detached || r->reported == r->received || m->closing)
		return;
	if (r->received - r->reported >= MUX_RECEIVED_EVERY)
		send_received(m);
	else if (!uv_is_active((uv_handle_t *)&r->timer))
		uv_timer_start(&r->timer, on_received_timer, MUX_RECEIVED_DELAY_MS, 0);
}

void
resume_frame_in(struct mux *m, const struct mux_frame *f, size_t used)
{
	struct mux_resume *r = &m->resume;

	/* The new connection's first frame says the client has its new ticket. */
	if (r->prev_valid) {
		r->prev_valid = false;
		sodium_memzero(&r->prev, sizeof(r->prev));
	}
	if (!mux_type_counted(f->type))
		return;
	r->received += used;
	received_due(m);
}

void
resume_on_received(struct mux *m, uint64_t count)
{
	struct mux_resume *r = &m->resume;

	if (!r->granted || count < r->peer_received || count > r->sent ||
	    (count > r->base && !copy_boundary(m, count))) {
		mux_fail(m, "protocol error: bad RECEIVED");
		return;
	}
	r->peer_received = count;
	copy_drop(m, count);
	if (!resume_copies_full(m))
		mux_resume_streams(m);
}

/* --- DETACHABLE ----------------------------------------------------------------- */

static void
refuse(struct mux *m, int code, const char *reason)
{
	uint8_t f[DETACH_FRAME_MAX];

	m->ev->audit(m->owner, "detachable_refused", json_pack("{s:s}", "reason", reason));
	mux_send_frame(m, f, mux_encode_detach_refusal(f, sizeof(f), (uint8_t)code, reason));
}

static void
grant(struct mux *m)
{
	struct mux_resume *r = &m->resume;
	uint8_t f[DETACH_FRAME_MAX], ticket[MUX_TICKET_LEN];
	size_t n;

	r->timeout_s = (uint32_t)(m->cfg->detach_timeout_ms / 1000);
	new_ticket(m, &r->ticket, ticket);
	n = mux_encode_detach_grant(f, sizeof(f), r->timeout_s, ticket);
	sodium_memzero(ticket, sizeof(ticket));
	r->granted = true;
	m->site->ndetachable++;
	/* The answer is a connection frame: the copies start after it. */
	r->base = r->sent;
	mux_send_frame(m, f, n);
	sodium_memzero(f, sizeof(f));
	m->ev->audit(m->owner, "detachable",
	             json_pack("{s:I}", "detach_timeout", (json_int_t)r->timeout_s));
	received_due(m);
}

void
resume_on_detachable(struct mux *m, const struct mux_frame *f)
{
	struct mux_resume *r = &m->resume;
	const char *reason = NULL;
	int code;

	if (!f->u.detach.request) {
		mux_fail(m, "protocol error: DETACHABLE with a payload");
		return;
	}
	if (r->asked) {
		mux_fail(m, "protocol error: second DETACHABLE");
		return;
	}
	r->asked = true;
	if ((code = m->ev->detach_allowed(m->owner, &reason)) != 0)
		refuse(m, code, reason);
	else if (m->site->ndetachable >= m->cfg->max_detachable)
		refuse(m, MUX_DETACH_LIMIT, "too many detachable sessions");
	else
		grant(m);
}

/* --- the session's life ------------------------------------------------------------ */

void
resume_init(struct mux *m)
{
	uv_timer_init(m->site->loop, &m->resume.timer);
	m->resume.timer.data = m;
}

void
resume_close(struct mux *m)
{
	struct mux_resume *r = &m->resume;

	if (r->granted)
		m->site->ndetachable--;
	r->granted = false;
	r->prev_valid = false;
}

bool
mux_detachable(const struct mux *m)
{
	return m->resume.granted && !m->closing;
}

bool
mux_detached(const struct mux *m)
{
	return m->resume.detached;
}

void
mux_detach(struct mux *m)
{
	struct mux_resume *r = &m->resume;

	r->detached = true;
	uv_timer_stop(&r->timer);
	buf_free(&m->in);
	buf_init(&m->in, MUX_FRAME_MAX);
	m->ping_sent_ns = 0;
	m->reading_client = false;
}

bool
mux_resume_point(const struct mux *m, uint64_t received)
{
	return received >= m->resume.base && received <= m->resume.sent &&
	       copy_boundary(m, received);
}

uint64_t
mux_rekey(struct mux *m, const uint8_t ticket[MUX_TICKET_LEN], uint8_t out[MUX_TICKET_LEN],
          uint32_t *timeout_s)
{
	struct mux_resume *r = &m->resume;

	memcpy(r->prev.id, ticket, MUX_TICKET_ID_LEN);
	hash_secret(ticket, r->prev.hash);
	r->prev_valid = true;
	new_ticket(m, &r->ticket, out);
	*timeout_s = r->timeout_s;
	return r->received;
}

void
mux_set_owner(struct mux *m, void *owner)
{
	m->owner = owner;
}

/* The copies from count on, to the client, as they were sent: not counted or kept again. */
static int
send_again(struct mux *m, uint64_t count)
{
	struct mux_resume *r = &m->resume;
	const struct mux_copy_seg *seg;
	uint64_t at = r->base;
	size_t off = r->head_off, n, skip;
	struct chunk *c;

	for (seg = r->head; seg != NULL; seg = seg->next, off = 0) {
		n = seg->len - off;
		skip = count > at ? (size_t)(count - at < n ? count - at : n) : 0;
		at += n;
		if (skip == n)
			continue;
		if ((c = chunk_copy(&m->site->budget, seg->data + off + skip, n - skip)) == NULL ||
		    m->ev->send(m->owner, c, n - skip) != 0)
			return -1;
	}
	return 0;
}

int
mux_attached(struct mux *m, uint64_t received)
{
	struct mux_resume *r = &m->resume;

	r->detached = false;
	r->reported = r->received;
	m->reading_client = true;
	if (send_again(m, received) != 0)
		return -1;
	/* What the client has is dropped as a RECEIVED would drop it. */
	if (received > r->peer_received)
		r->peer_received = received;
	copy_drop(m, received);
	mux_resume_streams(m);
	return 0;
}

void
mux_end_gently(struct mux *m, const char *reason)
{
	struct channel *ch, *next;
	size_t i;

	for (i = 0; i < MUX_BUCKETS; i++)
		for (ch = m->buckets[i]; ch != NULL; ch = next) {
			next = ch->next;
			channel_end_gently(ch, reason);
		}
}
