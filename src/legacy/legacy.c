/*
 * Which protocol a connection's first bytes begin, for the transition on
 * the same port.  Every rule is strict: the whole SSH version line, the
 * whole HTTP request line, the whole ClientHello must have come and be
 * well formed before bytes are called another protocol's; anything else
 * is fived's, whose dialects refuse what they do not know.
 */
#include "legacy/legacy.h"

#include <string.h>

#include "legacy/tlshello.h"

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

static bool
fived_name(const struct legacy_rules *rules, const char *sni)
{
	size_t i;

	for (i = 0; i < rules->nnames && sni[0] != '\0'; i++)
		if (strcmp(rules->names[i], sni) == 0)
			return true;
	return false;
}

#define TLS_RECORD_HANDSHAKE 0x16

/* A ClientHello that asks for fived by ALPN or by name is fived's; a malformed one too. */
static enum match
tls_match(const struct legacy_rules *rules, const uint8_t *in, size_t len)
{
	struct tls_hello hello;

	if (in[0] != TLS_RECORD_HANDSHAKE)
		return NO;
	switch (tlshello_peek(in, len, &hello)) {
	case TLSHELLO_NEED_MORE:
		return MAYBE;
	case TLSHELLO_OK:
		return hello.alpn_fived || fived_name(rules, hello.sni) ? NO : YES;
	case TLSHELLO_BAD:
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
