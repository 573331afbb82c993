/*
 * The ClientHello of TLS 1.3 (RFC 8446 section 4.1.2), and of TLS 1.2,
 * whose frame is the same: read from its records without a TLS library,
 * within fixed bounds, only as far as the ALPN list and the server name.
 */
#include "legacy/tlshello.h"

#include <string.h>

/* Bytes read in order from a bounded span; reading past its end marks it bad. */
struct reader {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static uint32_t
get(struct reader *r, size_t n)
{
	uint32_t v = 0;

	if (r->bad || r->left < n) {
		r->bad = true;
		return 0;
	}
	while (n-- > 0) {
		v = v << 8 | *r->p++;
		r->left--;
	}
	return v;
}

/* The next n bytes, as a reader of their own; r moves past them. */
static struct reader
sub(struct reader *r, size_t n)
{
	struct reader s = {r->p, n, r->bad || r->left < n};

	if (s.bad) {
		r->bad = true;
		return s;
	}
	r->p += n;
	r->left -= n;
	return s;
}

static void
skip(struct reader *r, size_t n)
{
	(void)sub(r, n);
}

/* A vector with a length of n bytes in front, which must be all of r (RFC 8446 section 3.4). */
static struct reader
whole_vector(struct reader *r, size_t n)
{
	size_t len = get(r, n);

	if (len != r->left)
		r->bad = true;
	return sub(r, len);
}

static bool
name_byte(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

/* server_name (RFC 6066 section 3): one host_name, kept lowercase. */
static bool
read_sni(struct reader ext, struct tls_hello *hello)
{
	struct reader list = whole_vector(&ext, 2), name;
	uint32_t type;
	size_t i;

	if (list.bad || list.left == 0)
		return false;
	while (list.left > 0) {
		type = get(&list, 1);
		name = sub(&list, get(&list, 2));
		if (list.bad || name.left == 0)
			return false;
		if (type != 0)
			continue;
		if (hello->sni[0] != '\0' || name.left > TLSHELLO_NAME_MAX)
			return false;
		for (i = 0; i < name.left; i++) {
			if (!name_byte(name.p[i]))
				return false;
			hello->sni[i] = (char)(name.p[i] >= 'A' && name.p[i] <= 'Z' ? name.p[i] + 32
			                                                            : name.p[i]);
		}
		hello->sni[i] = '\0';
	}
	return true;
}

/* application_layer_protocol_negotiation (RFC 7301 section 3.1). */
static bool
read_alpn(struct reader ext, struct tls_hello *hello)
{
	struct reader list = whole_vector(&ext, 2), id;

	if (list.bad || list.left == 0)
		return false;
	while (list.left > 0) {
		id = sub(&list, get(&list, 1));
		if (list.bad || id.left == 0)
			return false;
		if (id.left == TLSHELLO_ALPN_FIVED_LEN &&
		    memcmp(id.p, TLSHELLO_ALPN_FIVED, TLSHELLO_ALPN_FIVED_LEN) == 0)
			hello->alpn_fived = true;
	}
	return true;
}

#define EXT_SERVER_NAME 0
#define EXT_ALPN        16

static enum tlshello_status
read_extensions(struct reader r, struct tls_hello *hello)
{
	uint8_t seen[65536 / 8] = {0};
	struct reader exts = whole_vector(&r, 2), ext;
	uint32_t type;
	bool ok = true;

	while (!exts.bad && exts.left > 0 && ok) {
		type = get(&exts, 2);
		ext = sub(&exts, get(&exts, 2));
		if (exts.bad || (seen[type / 8] & (1u << (type % 8))) != 0)
			return TLSHELLO_BAD;
		seen[type / 8] |= (uint8_t)(1u << (type % 8));
		if (type == EXT_SERVER_NAME)
			ok = read_sni(ext, hello);
		else if (type == EXT_ALPN)
			ok = read_alpn(ext, hello);
	}
	return ok && !exts.bad && !r.bad ? TLSHELLO_OK : TLSHELLO_BAD;
}

/* The body of a ClientHello (RFC 8446 section 4.1.2; TLS 1.2's has the same frame). */
static enum tlshello_status
read_hello(struct reader r, struct tls_hello *hello)
{
	size_t n;

	skip(&r, 2);  /* legacy_version */
	skip(&r, 32); /* random */
	if ((n = get(&r, 1)) > 32)
		return TLSHELLO_BAD;
	skip(&r, n); /* legacy_session_id */
	if ((n = get(&r, 2)) < 2 || n % 2 != 0)
		return TLSHELLO_BAD;
	skip(&r, n); /* cipher_suites */
	if ((n = get(&r, 1)) < 1)
		return TLSHELLO_BAD;
	skip(&r, n); /* legacy_compression_methods */
	if (r.bad)
		return TLSHELLO_BAD;
	/* A TLS 1.2 hello may end here, without extensions: it asks for no one. */
	return r.left == 0 ? TLSHELLO_OK : read_extensions(r, hello);
}

#define TLS_RECORD_HANDSHAKE 0x16
#define TLS_RECORD_HEADER    5
#define TLS_RECORD_MAX       16384
#define TLS_CLIENT_HELLO     1
#define TLS_HANDSHAKE_HEADER 4

enum tlshello_status
tlshello_peek(const uint8_t *in, size_t len, struct tls_hello *hello)
{
	uint8_t msg[TLSHELLO_MAX];
	size_t have = 0, need = 0, off = 0, rec;

	memset(hello, 0, sizeof(*hello));
	/* The hello's fragments, from records of any size, put together. */
	while (need == 0 || have < need) {
		if (len - off < TLS_RECORD_HEADER)
			return TLSHELLO_NEED_MORE;
		rec = (size_t)in[off + 3] << 8 | in[off + 4];
		if (in[off] != TLS_RECORD_HANDSHAKE || in[off + 1] != 3 || in[off + 2] > 4 ||
		    rec == 0 || rec > TLS_RECORD_MAX || rec > sizeof(msg) - have)
			return TLSHELLO_BAD;
		if (len - off - TLS_RECORD_HEADER < rec)
			return TLSHELLO_NEED_MORE;
		memcpy(msg + have, in + off + TLS_RECORD_HEADER, rec);
		have += rec;
		off += TLS_RECORD_HEADER + rec;
		if (need == 0 && have >= TLS_HANDSHAKE_HEADER) {
			if (msg[0] != TLS_CLIENT_HELLO)
				return TLSHELLO_BAD;
			need = TLS_HANDSHAKE_HEADER +
			       ((size_t)msg[1] << 16 | (size_t)msg[2] << 8 | msg[3]);
			if (need > sizeof(msg))
				return TLSHELLO_BAD;
		}
	}
	return read_hello(
	        (struct reader){msg + TLS_HANDSHAKE_HEADER, need - TLS_HANDSHAKE_HEADER, false},
	        hello);
}
