/* MULTIPLEX framing (mux.h, docs/PROTOCOL.md section 11). */
#include "proto/mux.h"

#include <string.h>

#include "common/bytes.h"

/* The fixed part of an OPEN: the three length fields. */
#define OPEN_FIXED_LEN 4

/* RST: code; GOAWAY: last id and code. */
#define RST_FIXED_LEN    1
#define GOAWAY_FIXED_LEN 5

/* DETACHABLE granted: code, timeout, ticket. */
#define DETACH_CODE_LEN    1
#define DETACH_TIMEOUT_LEN 4
#define DETACH_GRANT_LEN   (DETACH_CODE_LEN + DETACH_TIMEOUT_LEN + MUX_TICKET_LEN)

static bool
printable(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return false;
	return true;
}

/* A length-prefixed printable name into out (size max + 1); advances *p.  0 or -1. */
static int
take_name(const uint8_t **p, const uint8_t *end, size_t prefix, size_t min, size_t max, char *out)
{
	size_t n;

	if ((size_t)(end - *p) < prefix)
		return -1;
	n = prefix == 1 ? (*p)[0] : bytes_get16(*p);
	*p += prefix;
	if (n < min || n > max || (size_t)(end - *p) < n || !printable(*p, n))
		return -1;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p += n;
	return 0;
}

static int
decode_open(struct mux_frame *f, const char **why)
{
	const uint8_t *p = f->payload, *end = f->payload + f->len;
	size_t n;

	if (take_name(&p, end, 1, 1, MUX_SERVICE_MAX, f->u.open.service) != 0 ||
	    take_name(&p, end, 1, 0, MUX_VHOST_MAX, f->u.open.vhost) != 0) {
		*why = "protocol error: malformed OPEN";
		return -1;
	}
	if (end - p < 2 || (n = bytes_get16(p)) > MUX_TOKEN_MAX || (size_t)(end - p - 2) < n ||
	    !printable(p + 2, n)) {
		*why = "protocol error: malformed OPEN";
		return -1;
	}
	f->u.open.token = p + 2;
	f->u.open.token_len = n;
	p += 2 + n;
	f->u.open.data = p;
	f->u.open.data_len = (size_t)(end - p);
	return 0;
}

/* RST's code and reason, after skip bytes of other fields. */
static int
decode_end(struct mux_frame *f, size_t skip, const char **why)
{
	size_t n = f->len - skip - RST_FIXED_LEN;

	if (f->len < skip + RST_FIXED_LEN || n > MUX_REASON_MAX ||
	    !printable(f->payload + skip + RST_FIXED_LEN, n)) {
		*why = f->type == MUX_RST ? "protocol error: malformed RST"
		                          : "protocol error: malformed GOAWAY";
		return -1;
	}
	f->u.end.code = f->payload[skip];
	memcpy(f->u.end.reason, f->payload + skip + RST_FIXED_LEN, n);
	f->u.end.reason[n] = '\0';
	return 0;
}

/* DETACHABLE: empty (the request), a grant, or a refusal with its reason. */
static int
decode_detach(struct mux_frame *f, const char **why)
{
	size_t n;

	*why = "protocol error: malformed DETACHABLE";
	if (f->len == 0) {
		f->u.detach.request = true;
		return 0;
	}
	f->u.detach.code = f->payload[0];
	if (f->u.detach.code == MUX_DETACH_GRANTED) {
		if (f->len != DETACH_GRANT_LEN)
			return -1;
		f->u.detach.timeout_s = bytes_get32(f->payload + DETACH_CODE_LEN);
		memcpy(f->u.detach.ticket, f->payload + DETACH_CODE_LEN + DETACH_TIMEOUT_LEN,
		       MUX_TICKET_LEN);
		return 0;
	}
	n = f->len - DETACH_CODE_LEN;
	if (f->u.detach.code > MUX_DETACH_LIMIT || n > MUX_REASON_MAX ||
	    !printable(f->payload + DETACH_CODE_LEN, n))
		return -1;
	memcpy(f->u.detach.reason, f->payload + DETACH_CODE_LEN, n);
	f->u.detach.reason[n] = '\0';
	return 0;
}

/* What a frame's type says of its id and its payload's form. */
static int
decode_payload(struct mux_frame *f, const char **why)
{
	bool session = f->type == MUX_PING || f->type == MUX_GOAWAY || f->type == MUX_DETACHABLE ||
	               f->type == MUX_RECEIVED;

	if (session != (f->id == 0) && f->type != MUX_WINDOW) {
		*why = session ? "protocol error: session frame on a stream"
		               : "protocol error: stream frame on stream 0";
		return -1;
	}
	switch (f->type) {
	case MUX_DATA:
		*why = "protocol error: empty DATA";
		return f->len > 0 ? 0 : -1;
	case MUX_OPEN:
		return decode_open(f, why);
	case MUX_ACCEPT:
	case MUX_FIN:
		*why = "protocol error: payload on an empty frame";
		return f->len == 0 ? 0 : -1;
	case MUX_WINDOW:
		*why = "protocol error: malformed WINDOW";
		if (f->len != MUX_WINDOW_LEN)
			return -1;
		f->u.credit = bytes_get32(f->payload);
		return f->u.credit >= 1 && f->u.credit <= MUX_WINDOW_LIMIT ? 0 : -1;
	case MUX_RST:
		return decode_end(f, 0, why);
	case MUX_PING:
		*why = "protocol error: malformed PING";
		return f->len == MUX_PING_LEN ? 0 : -1;
	case MUX_GOAWAY:
		if (f->len >= GOAWAY_FIXED_LEN)
			f->u.end.last_id = bytes_get32(f->payload);
		return decode_end(f, GOAWAY_FIXED_LEN - RST_FIXED_LEN, why);
	case MUX_DETACHABLE:
		return decode_detach(f, why);
	case MUX_RECEIVED:
		*why = "protocol error: malformed RECEIVED";
		if (f->len != MUX_RECEIVED_LEN)
			return -1;
		f->u.received = bytes_get64(f->payload);
		return 0;
	}
	*why = "protocol error: unknown frame type";
	return -1;
}

static int
check_header(const struct mux_frame *f, const char **why)
{
	if (f->len > MUX_PAYLOAD_MAX)
		*why = "protocol error: frame too long";
	else if (f->type > MUX_RECEIVED)
		*why = "protocol error: unknown frame type";
	else if (f->flags & ~(f->type == MUX_PING ? MUX_FLAG_ACK : 0))
		*why = "protocol error: unknown flag";
	else
		return 0;
	return -1;
}

enum mux_status
mux_decode(const uint8_t *in, size_t len, struct mux_frame *f, size_t *used, const char **why)
{
	memset(f, 0, sizeof(*f));
	if (len < MUX_HEADER_LEN)
		return MUX_NEED_MORE;
	f->id = bytes_get32(in);
	f->type = (enum mux_type)in[4];
	f->flags = in[5];
	f->len = bytes_get16(in + 6);
	if (check_header(f, why) != 0)
		return MUX_BAD;
	if (len - MUX_HEADER_LEN < f->len)
		return MUX_NEED_MORE;
	f->payload = in + MUX_HEADER_LEN;
	if (decode_payload(f, why) != 0)
		return MUX_BAD;
	*used = MUX_HEADER_LEN + f->len;
	return MUX_OK;
}

void
mux_header(uint8_t out[MUX_HEADER_LEN], uint32_t id, enum mux_type type, uint8_t flags, size_t len)
{
	bytes_put32(out, id);
	out[4] = (uint8_t)type;
	out[5] = flags;
	bytes_put16(out + 6, len);
}

/* The header of a frame of payload len, if the frame fits in size: its length, or 0. */
static size_t
frame(uint8_t *out, size_t size, uint32_t id, enum mux_type type, uint8_t flags, size_t len)
{
	if (len > MUX_PAYLOAD_MAX || size < MUX_HEADER_LEN + len)
		return 0;
	mux_header(out, id, type, flags, len);
	return MUX_HEADER_LEN + len;
}

size_t
mux_encode_open(uint8_t *out, size_t size, uint32_t id, const char *service, const char *vhost,
                const char *token, const void *data, size_t data_len)
{
	size_t s = strlen(service), v = strlen(vhost), t = token != NULL ? strlen(token) : 0;
	size_t len = OPEN_FIXED_LEN + s + v + t + data_len, n;
	uint8_t *p = out + MUX_HEADER_LEN;

	if (s == 0 || s > MUX_SERVICE_MAX || v > MUX_VHOST_MAX || t > MUX_TOKEN_MAX || id == 0 ||
	    id % 2 == 0 || (n = frame(out, size, id, MUX_OPEN, 0, len)) == 0)
		return 0;
	*p++ = (uint8_t)s;
	memcpy(p, service, s);
	p += s;
	*p++ = (uint8_t)v;
	memcpy(p, vhost, v);
	p += v;
	bytes_put16(p, t);
	if (t > 0)
		memcpy(p + 2, token, t);
	p += 2 + t;
	if (data_len > 0)
		memcpy(p, data, data_len);
	return n;
}

size_t
mux_encode_window(uint8_t *out, size_t size, uint32_t id, uint32_t credit)
{
	size_t n;

	if (credit == 0 || credit > MUX_WINDOW_LIMIT ||
	    (n = frame(out, size, id, MUX_WINDOW, 0, MUX_WINDOW_LEN)) == 0)
		return 0;
	bytes_put32(out + MUX_HEADER_LEN, credit);
	return n;
}

size_t
mux_encode_ping(uint8_t *out, size_t size, uint8_t flags, const uint8_t opaque[MUX_PING_LEN])
{
	size_t n = frame(out, size, 0, MUX_PING, flags & MUX_FLAG_ACK, MUX_PING_LEN);

	if (n > 0)
		memcpy(out + MUX_HEADER_LEN, opaque, MUX_PING_LEN);
	return n;
}

/* A reason cut to MUX_REASON_MAX, after fixed bytes (already written by the caller). */
static size_t
with_reason(uint8_t *out, size_t size, uint32_t id, enum mux_type type, size_t fixed,
            const char *reason)
{
	size_t r = strnlen(reason, MUX_REASON_MAX);
	size_t n = frame(out, size, id, type, 0, fixed + r);

	if (n > 0)
		memcpy(out + MUX_HEADER_LEN + fixed, reason, r);
	return n;
}

size_t
mux_encode_rst(uint8_t *out, size_t size, uint32_t id, uint8_t code, const char *reason)
{
	size_t n;

	if (id == 0 || (n = with_reason(out, size, id, MUX_RST, RST_FIXED_LEN, reason)) == 0)
		return 0;
	out[MUX_HEADER_LEN] = code;
	return n;
}

size_t
mux_encode_goaway(uint8_t *out, size_t size, uint32_t last_id, uint8_t code, const char *reason)
{
	size_t n = with_reason(out, size, 0, MUX_GOAWAY, GOAWAY_FIXED_LEN, reason);

	if (n == 0)
		return 0;
	bytes_put32(out + MUX_HEADER_LEN, last_id);
	out[MUX_HEADER_LEN + 4] = code;
	return n;
}

size_t
mux_encode_detach_request(uint8_t *out, size_t size)
{
	return frame(out, size, 0, MUX_DETACHABLE, 0, 0);
}

size_t
mux_encode_detach_grant(uint8_t *out, size_t size, uint32_t timeout_s,
                        const uint8_t ticket[MUX_TICKET_LEN])
{
	size_t n = frame(out, size, 0, MUX_DETACHABLE, 0, DETACH_GRANT_LEN);

	if (n == 0)
		return 0;
	out[MUX_HEADER_LEN] = MUX_DETACH_GRANTED;
	bytes_put32(out + MUX_HEADER_LEN + DETACH_CODE_LEN, timeout_s);
	memcpy(out + MUX_HEADER_LEN + DETACH_CODE_LEN + DETACH_TIMEOUT_LEN, ticket, MUX_TICKET_LEN);
	return n;
}

size_t
mux_encode_detach_refusal(uint8_t *out, size_t size, uint8_t code, const char *reason)
{
	size_t n;

	if (code == MUX_DETACH_GRANTED || code > MUX_DETACH_LIMIT ||
	    (n = with_reason(out, size, 0, MUX_DETACHABLE, DETACH_CODE_LEN, reason)) == 0)
		return 0;
	out[MUX_HEADER_LEN] = code;
	return n;
}

size_t
mux_encode_received(uint8_t *out, size_t size, uint64_t count)
{
	size_t n = frame(out, size, 0, MUX_RECEIVED, 0, MUX_RECEIVED_LEN);

	if (n > 0)
		bytes_put64(out + MUX_HEADER_LEN, count);
	return n;
}

bool
mux_type_counted(enum mux_type type)
{
	return type == MUX_DATA || type == MUX_OPEN || type == MUX_ACCEPT || type == MUX_WINDOW ||
	       type == MUX_FIN || type == MUX_RST;
}

size_t
mux_encode_empty(uint8_t *out, size_t size, uint32_t id, enum mux_type type)
{
	if (id == 0 || (type != MUX_ACCEPT && type != MUX_FIN))
		return 0;
	return frame(out, size, id, type, 0, 0);
}

int
mux_window_add(uint64_t *window, uint32_t credit)
{
	if (*window + credit > MUX_WINDOW_LIMIT)
		return -1;
	*window += credit;
	return 0;
}
