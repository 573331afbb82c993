/*
 * Which protocol a connection's first bytes begin, for the transition on
 * the same port.  Every rule is strict: the whole SSH version line, the
 * whole HTTP request line, the whole ClientHello must have come and be
 * well formed before bytes are called another protocol's; anything else
 * is fived's, whose dialects refuse what they do not know.
 */
#include "proto/legacy.h"

#include <string.h>

enum match {
	NO,    /* cannot be this protocol */
	MAYBE, /* a proper beginning of it */
	YES,   /* it, complete */
};

/* in[0..len) against word: a beginning of it, all of it (and maybe more), or neither. */
static enum match
starts(const uint8_t *in, size_t len, const char *word)
{
	size_t n = strlen(word), i;

	for (i = 0; i < len && i < n; i++)
		if (in[i] != (uint8_t)word[i])
			return NO;
	return len >= n ? YES : MAYBE;
}

/* A line's end (CR LF, or LF alone) at in[at], with the line at most max bytes long in all. */
static enum match
line_end(const uint8_t *in, size_t len, size_t at, size_t max)
{
	if (at >= max)
		return NO;
	if (at == len)
		return MAYBE;
	if (in[at] == '\n')
		return YES;
	if (in[at] != '\r' || at + 1 >= max)
		return NO;
	if (at + 1 == len)
		return MAYBE;
	return in[at + 1] == '\n' ? YES : NO;
}

/* Where a run of bytes in lo..0x7E starting at in[at] ends: the first other byte, or len. */
static size_t
run_of(const uint8_t *in, size_t len, size_t at, uint8_t lo)
{
	while (at < len && in[at] >= lo && in[at] <= 0x7e)
		at++;
	return at;
}

/*
 * "SSH-2.0-softwareversion [SP comments] CR LF" (RFC 4253 section 4.2;
 * "SSH-1.99-" is a server's, allowed to a client too), printable ASCII.
 * The client sends it first: OpenSSH's ssh(1) does, without waiting for
 * the server's.
 */
static enum match
ssh_match(const uint8_t *in, size_t len)
{
	static const char *const prefixes[] = {"SSH-2.0-", "SSH-1.99-"};
	enum match m, any = NO;
	size_t i, at;

	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		if ((m = starts(in, len, prefixes[i])) == MAYBE)
			any = MAYBE;
		if (m != YES)
			continue;
		at = strlen(prefixes[i]);
		/* A software version of one byte at least, no space: then anything printable. */
		if (at == len)
			return MAYBE;
		if (in[at] <= ' ' || in[at] > 0x7e)
			return NO;
		return line_end(in, len, run_of(in, len, at, ' '), LEGACY_SSH_LINE_MAX);
	}
	return any;
}

/* After "METHOD ": a request target, SP, the version, CR LF (RFC 9112 section 3). */
static enum match
http_rest(const uint8_t *in, size_t len, size_t at, const char *version)
{
	size_t end = run_of(in, len, at, '!');
	enum match m;

	if (end >= LEGACY_HTTP_LINE_MAX)
		return NO;
	if (end == len)
		return MAYBE;
	if (end == at)
		return NO;
	if ((m = starts(in + end, len - end, version)) != YES)
		return m;
	return line_end(in, len, end + strlen(version), LEGACY_HTTP_LINE_MAX);
}

/* An HTTP/1.x request line, or the HTTP/2 connection preface's first line. */
static enum match
http_match(const uint8_t *in, size_t len)
{
	static const struct {
		const char *method, *version;
	} lines[] = {
	        {"GET ", " HTTP/1.1"},     {"GET ", " HTTP/1.0"},     {"HEAD ", " HTTP/1.1"},
	        {"HEAD ", " HTTP/1.0"},    {"POST ", " HTTP/1.1"},    {"POST ", " HTTP/1.0"},
	        {"PUT ", " HTTP/1.1"},     {"PUT ", " HTTP/1.0"},     {"DELETE ", " HTTP/1.1"},
	        {"DELETE ", " HTTP/1.0"},  {"OPTIONS ", " HTTP/1.1"}, {"OPTIONS ", " HTTP/1.0"},
	        {"CONNECT ", " HTTP/1.1"}, {"CONNECT ", " HTTP/1.0"}, {"TRACE ", " HTTP/1.1"},
	        {"TRACE ", " HTTP/1.0"},   {"PATCH ", " HTTP/1.1"},   {"PATCH ", " HTTP/1.0"},
	        {"PRI ", " HTTP/2.0"},
	};
	enum match m, best = NO;
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		if ((m = starts(in, len, lines[i].method)) == YES)
			m = http_rest(in, len, strlen(lines[i].method), lines[i].version);
		if (m == YES)
			return YES;
		if (m == MAYBE)
			best = MAYBE;
	}
	return best;
}

/* --- the ClientHello ------------------------------------------------------ */

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
		if (hello->sni[0] != '\0' || name.left > LEGACY_NAME_MAX)
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
		if (id.left == LEGACY_ALPN_FIVED_LEN &&
		    memcmp(id.p, LEGACY_ALPN_FIVED, LEGACY_ALPN_FIVED_LEN) == 0)
			hello->alpn_fived = true;
	}
	return true;
}

#define EXT_SERVER_NAME 0
#define EXT_ALPN        16

static enum tls_hello_status
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
			return TLS_HELLO_BAD;
		seen[type / 8] |= (uint8_t)(1u << (type % 8));
		if (type == EXT_SERVER_NAME)
			ok = read_sni(ext, hello);
		else if (type == EXT_ALPN)
			ok = read_alpn(ext, hello);
	}
	return ok && !exts.bad && !r.bad ? TLS_HELLO_OK : TLS_HELLO_BAD;
}

/* The body of a ClientHello (RFC 8446 section 4.1.2; TLS 1.2's has the same frame). */
static enum tls_hello_status
read_hello(struct reader r, struct tls_hello *hello)
{
	size_t n;

	skip(&r, 2); /* legacy_version */
	skip(&r, 32); /* random */
	if ((n = get(&r, 1)) > 32)
		return TLS_HELLO_BAD;
	skip(&r, n); /* legacy_session_id */
	if ((n = get(&r, 2)) < 2 || n % 2 != 0)
		return TLS_HELLO_BAD;
	skip(&r, n); /* cipher_suites */
	if ((n = get(&r, 1)) < 1)
		return TLS_HELLO_BAD;
	skip(&r, n); /* legacy_compression_methods */
	if (r.bad)
		return TLS_HELLO_BAD;
	/* A TLS 1.2 hello may end here, without extensions: it asks for no one. */
	return r.left == 0 ? TLS_HELLO_OK : read_extensions(r, hello);
}

#define TLS_RECORD_HANDSHAKE 0x16
#define TLS_RECORD_HEADER    5
#define TLS_RECORD_MAX       16384
#define TLS_CLIENT_HELLO     1
#define TLS_HANDSHAKE_HEADER 4

enum tls_hello_status
tls_hello_peek(const uint8_t *in, size_t len, struct tls_hello *hello)
{
	uint8_t msg[LEGACY_HELLO_MAX];
	size_t have = 0, need = 0, off = 0, rec;

	memset(hello, 0, sizeof(*hello));
	/* The hello's fragments, from records of any size, put together. */
	while (need == 0 || have < need) {
		if (len - off < TLS_RECORD_HEADER)
			return TLS_HELLO_NEED_MORE;
		rec = (size_t)in[off + 3] << 8 | in[off + 4];
		if (in[off] != TLS_RECORD_HANDSHAKE || in[off + 1] != 3 || in[off + 2] > 4 ||
		    rec == 0 || rec > TLS_RECORD_MAX || rec > sizeof(msg) - have)
			return TLS_HELLO_BAD;
		if (len - off - TLS_RECORD_HEADER < rec)
			return TLS_HELLO_NEED_MORE;
		memcpy(msg + have, in + off + TLS_RECORD_HEADER, rec);
		have += rec;
		off += TLS_RECORD_HEADER + rec;
		if (need == 0 && have >= TLS_HANDSHAKE_HEADER) {
			if (msg[0] != TLS_CLIENT_HELLO)
				return TLS_HELLO_BAD;
			need = TLS_HANDSHAKE_HEADER +
			       ((size_t)msg[1] << 16 | (size_t)msg[2] << 8 | msg[3]);
			if (need > sizeof(msg))
				return TLS_HELLO_BAD;
		}
	}
	return read_hello((struct reader){msg + TLS_HANDSHAKE_HEADER, need - TLS_HANDSHAKE_HEADER,
	                                  false},
	                  hello);
}

static bool
fived_name(const struct legacy_rules *rules, const char *sni)
{
	size_t i;

	for (i = 0; i < rules->nnames && sni[0] != '\0'; i++)
		if (strcmp(rules->names[i], sni) == 0)
			return true;
	return false;
}

/* A ClientHello that asks for fived by ALPN or by name is fived's; a malformed one too. */
static enum match
tls_match(const struct legacy_rules *rules, const uint8_t *in, size_t len)
{
	struct tls_hello hello;

	if (in[0] != TLS_RECORD_HANDSHAKE)
		return NO;
	switch (tls_hello_peek(in, len, &hello)) {
	case TLS_HELLO_NEED_MORE:
		return MAYBE;
	case TLS_HELLO_OK:
		return hello.alpn_fived || fived_name(rules, hello.sni) ? NO : YES;
	case TLS_HELLO_BAD:
		break;
	}
	return NO;
}

enum legacy_verdict
legacy_classify(const struct legacy_rules *rules, const uint8_t *in, size_t len,
                enum legacy_proto *proto)
{
	enum match m[LEGACY_PROTO_COUNT] = {NO, NO, NO};
	int p;

	if (len == 0)
		return LEGACY_NEED_MORE;
	/* What comes past the bound cannot change the verdict given at it. */
	if (len > LEGACY_PEEK_MAX)
		len = LEGACY_PEEK_MAX;
	if (rules->enabled[LEGACY_SSH])
		m[LEGACY_SSH] = ssh_match(in, len);
	if (rules->enabled[LEGACY_HTTP])
		m[LEGACY_HTTP] = http_match(in, len);
	if (rules->enabled[LEGACY_TLS])
		m[LEGACY_TLS] = tls_match(rules, in, len);
	for (p = 0; p < LEGACY_PROTO_COUNT; p++) {
		if (m[p] == YES) {
			*proto = (enum legacy_proto)p;
			return LEGACY_HAND_OVER;
		}
	}
	for (p = 0; p < LEGACY_PROTO_COUNT && len < LEGACY_PEEK_MAX; p++)
		if (m[p] == MAYBE)
			return LEGACY_NEED_MORE;
	return LEGACY_FIVED;
}

const char *
legacy_proto_name(enum legacy_proto proto)
{
	static const char *const names[LEGACY_PROTO_COUNT] = {"ssh", "http", "tls"};

	return (unsigned)proto < LEGACY_PROTO_COUNT ? names[proto] : "unknown";
}
