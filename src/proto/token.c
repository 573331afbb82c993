#include "proto/token.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/b64.h"
#include "common/util.h"

#define ASSERTION_LEN (sizeof(TOKEN_ASSERTION) - 1)
#define LOCAL_HEADER  "v4.local."

#define KID_B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING
_Static_assert(sodium_base64_ENCODED_LEN(TOKEN_KID_HASH_LEN, KID_B64) == TOKEN_KID_MAX,
               "a kid is the whole base64url of its hash bytes, no partial character");

_Static_assert(sizeof(TOKEN_FOOTER_PREFIX) - 1 + TOKEN_KID_LEN + sizeof(TOKEN_FOOTER_SUFFIX) - 1 ==
                       TOKEN_FOOTER_LEN,
               "TOKEN_FOOTER_LEN is the footer's length");

/* A footer with its NUL. */
#define FOOTER_SIZE (TOKEN_FOOTER_LEN + 1)

/* The longest claims fived writes are under 600 bytes. */
#define CLAIMS_MAX 1024

#define DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER)

/* "YYYY-MM-DDTHH:MM:SSZ": 'd' stands for a digit, anything else for itself. */
#define TIME_SHAPE    "dddd-dd-ddTdd:dd:ddZ"
#define TIME_LEN      (sizeof(TIME_SHAPE) - 1)
#define YEAR_DIGITS   4
#define FIELD_DIGITS  2 /* month, day, hour, minute, second */
#define TM_YEAR_BASE  1900
#define EPOCH_YEAR    1970
#define V4_BITS       32
#define V6_BITS       128
#define V4MAPPED_BITS 96 /* ::ffff:0:0/96 */
#define PREFIX_DIGITS 3

#define TRUSTED_NAME_EXTRA "._:@+-"
#define BLANKS             " \t"

struct prefix {
	int family;
	uint8_t bytes[sizeof(struct in6_addr)];
	unsigned bits;
};

/* Where each field of TIME_SHAPE starts. */
enum { YEAR_AT = 0, MONTH_AT = 5, DAY_AT = 8, HOUR_AT = 11, MINUTE_AT = 14, SECOND_AT = 17 };

/* The longest amr, "password", fits. */
#define AMR_SIZE 16

/* The claims of 9.1; all are strings. */
static const struct {
	const char *name;
	bool required;
} claim_members[] = {
        {"app", true},   {"sub", false}, {"amr", true}, {"vhost", false},
        {"addr", false}, {"iat", true},  {"exp", true}, {"jti", true},
};

/* --- times ----------------------------------------------------------------- */

static unsigned
digits(const char *s, size_t n)
{
	unsigned v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	return v;
}

int
token_time_format(uint64_t t, char out[TOKEN_TIME_SIZE])
{
	struct tm tm;
	time_t v;
	int n;

	out[0] = '\0';
	if (t > TOKEN_TIME_MAX)
		return -1;
	v = (time_t)t;
	if (gmtime_r(&v, &tm) == NULL)
		return -1;
	n = snprintf(out, TOKEN_TIME_SIZE, "%04d-%02d-%02dT%02d:%02d:%02dZ",
	             tm.tm_year + TM_YEAR_BASE, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	             tm.tm_sec);
	return n == (int)TIME_LEN ? 0 : -1;
}

int
token_time_parse(const char *s, uint64_t *t)
{
	struct tm tm, back;
	time_t v;
	size_t i;

	*t = 0;
	if (strlen(s) != TIME_LEN)
		return -1;
	for (i = 0; i < TIME_LEN; i++)
		if (TIME_SHAPE[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != TIME_SHAPE[i])
			return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int)digits(s + YEAR_AT, YEAR_DIGITS) - TM_YEAR_BASE;
	tm.tm_mon = (int)digits(s + MONTH_AT, FIELD_DIGITS) - 1;
	tm.tm_mday = (int)digits(s + DAY_AT, FIELD_DIGITS);
	tm.tm_hour = (int)digits(s + HOUR_AT, FIELD_DIGITS);
	tm.tm_min = (int)digits(s + MINUTE_AT, FIELD_DIGITS);
	tm.tm_sec = (int)digits(s + SECOND_AT, FIELD_DIGITS);
	if (tm.tm_year + TM_YEAR_BASE < EPOCH_YEAR)
		return -1;
	back = tm;
	/* timegm() normalizes February 30 or 24:00 into another time: only a round trip is real. */
	if ((v = timegm(&tm)) < 0 || tm.tm_year != back.tm_year || tm.tm_mon != back.tm_mon ||
	    tm.tm_mday != back.tm_mday || tm.tm_hour != back.tm_hour || tm.tm_min != back.tm_min ||
	    tm.tm_sec != back.tm_sec)
		return -1;
	*t = (uint64_t)v;
	return 0;
}

/* --- addresses ------------------------------------------------------------- */

/* A prefix length: decimal without leading zeros, at most max. */
static int
prefix_bits(const char *s, unsigned max, unsigned *bits)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > PREFIX_DIGITS || (s[0] == '0' && n > 1))
		return -1;
	for (i = 0; i < n; i++)
		if (!(s[i] >= '0' && s[i] <= '9'))
			return -1;
	*bits = digits(s, n);
	return *bits <= max ? 0 : -1;
}

/* An IPv4-mapped IPv6 prefix as the IPv4 prefix it stands for; -1 when it is wider than that. */
static int
unmap(struct prefix *p)
{
	if (p->family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED((struct in6_addr *)p->bytes))
		return 0;
	if (p->bits < V4MAPPED_BITS)
		return -1;
	p->family = AF_INET;
	memmove(p->bytes, p->bytes + V4MAPPED_BITS / 8, sizeof(struct in_addr));
	memset(p->bytes + sizeof(struct in_addr), 0, sizeof(p->bytes) - sizeof(struct in_addr));
	p->bits -= V4MAPPED_BITS;
	return 0;
}

/* Whether a and b agree in their first bits bits. */
static bool
same_prefix(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));

	if (memcmp(a, b, whole) != 0)
		return false;
	return rest == 0 || ((a[whole] ^ b[whole]) & mask) == 0;
}

static unsigned
family_bits(int family)
{
	return family == AF_INET ? V4_BITS : V6_BITS;
}

static bool
host_bits_clear(const struct prefix *p)
{
	unsigned i;

	for (i = p->bits; i < family_bits(p->family); i++)
		if (p->bytes[i / 8] & (0x80 >> (i % 8)))
			return false;
	return true;
}

static int
prefix_parse(const char *in, struct prefix *p)
{
	char host[ADDR_IP_MAX];
	const char *slash = strchr(in, '/');
	size_t n = slash != NULL ? (size_t)(slash - in) : strlen(in);
	unsigned max;

	memset(p, 0, sizeof(*p));
	if (n == 0 || n >= sizeof(host))
		return -1;
	memcpy(host, in, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, p->bytes) == 1)
		p->family = AF_INET;
	else if (inet_pton(AF_INET6, host, p->bytes) == 1)
		p->family = AF_INET6;
	else
		return -1;
	max = family_bits(p->family);
	p->bits = max;
	if (slash != NULL && prefix_bits(slash + 1, max, &p->bits) != 0)
		return -1;
	if (unmap(p) != 0)
		return -1;
	/* Host bits must be clear: a prefix with them set is a typing error, not a network. */
	return host_bits_clear(p) ? 0 : -1;
}

int
token_addr_canonical(const char *in, char out[TOKEN_ADDR_SIZE])
{
	char ip[ADDR_IP_MAX];
	struct prefix p;

	out[0] = '\0';
	if (prefix_parse(in, &p) != 0 || inet_ntop(p.family, p.bytes, ip, sizeof(ip)) == NULL)
		return -1;
	if (p.bits == family_bits(p.family))
		snprintf(out, TOKEN_ADDR_SIZE, "%s", ip);
	else
		snprintf(out, TOKEN_ADDR_SIZE, "%s/%u", ip, p.bits);
	return 0;
}

bool
token_addr_matches(const char *addr_claim, const struct sockaddr *peer)
{
	struct prefix claim, who;

	if (prefix_parse(addr_claim, &claim) != 0)
		return false;
	memset(&who, 0, sizeof(who));
	if (peer->sa_family == AF_INET) {
		who.family = AF_INET;
		memcpy(who.bytes, &((const struct sockaddr_in *)peer)->sin_addr,
		       sizeof(struct in_addr));
		who.bits = V4_BITS;
	} else if (peer->sa_family == AF_INET6) {
		who.family = AF_INET6;
		memcpy(who.bytes, &((const struct sockaddr_in6 *)peer)->sin6_addr,
		       sizeof(struct in6_addr));
		who.bits = V6_BITS;
		/* A whole address is never wider than ::ffff:0:0/96: this cannot fail. */
		(void)unmap(&who);
	} else {
		return false;
	}
	return who.family == claim.family && same_prefix(who.bytes, claim.bytes, claim.bits);
}

/* --- claims ---------------------------------------------------------------- */

static bool
terminated(const char *a, size_t size)
{
	return memchr(a, '\0', size) != NULL;
}

static bool
lowercase(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			return false;
	return true;
}

static bool
jti_valid(const char *s)
{
	size_t i;

	for (i = 0; i < TOKEN_JTI_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[TOKEN_JTI_LEN] == '\0';
}

static bool
amr_valid(enum auth_method m)
{
	return m == AUTH_PUBKEY || m == AUTH_PASSWORD || m == AUTH_TOKEN || m == AUTH_EXTERNAL;
}

static bool
addr_claim_valid(const char *s)
{
	char canonical[TOKEN_ADDR_SIZE];

	return token_addr_canonical(s, canonical) == 0 && strcmp(s, canonical) == 0;
}

/* Every rule of 9.1, for what is written as for what is read. */
static bool
claims_valid(const struct token_claims *c)
{
	if (!terminated(c->app, sizeof(c->app)) || !terminated(c->sub, sizeof(c->sub)) ||
	    !terminated(c->vhost, sizeof(c->vhost)) || !terminated(c->addr, sizeof(c->addr)) ||
	    !terminated(c->jti, sizeof(c->jti)))
		return false;
	if (!name_valid(c->app) || !lowercase(c->app) || !amr_valid(c->amr) || !jti_valid(c->jti))
		return false;
	if (c->has_sub ? !auth_identity_valid(c->sub) : c->sub[0] != '\0')
		return false;
	if (c->vhost[0] != '\0' && (!vhost_name_valid(c->vhost) || !lowercase(c->vhost)))
		return false;
	if (c->addr[0] != '\0' && !addr_claim_valid(c->addr))
		return false;
	return c->iat <= c->exp && c->exp <= TOKEN_TIME_MAX;
}

/* Sets o[name] to the string s, unless s is "" (an absent optional claim). */
static int
set_string(json_t *o, const char *name, const char *s)
{
	return s[0] == '\0' ? 0 : json_object_set_new(o, name, json_string(s));
}

static json_t *
claims_object(const struct token_claims *c)
{
	char iat[TOKEN_TIME_SIZE], exp[TOKEN_TIME_SIZE];
	json_t *o;

	if (token_time_format(c->iat, iat) != 0 || token_time_format(c->exp, exp) != 0 ||
	    (o = json_object()) == NULL)
		return NULL;
	if (set_string(o, "app", c->app) != 0 ||
	    set_string(o, "sub", c->has_sub ? c->sub : "") != 0 ||
	    set_string(o, "amr", auth_method_name(c->amr)) != 0 ||
	    set_string(o, "vhost", c->vhost) != 0 || set_string(o, "addr", c->addr) != 0 ||
	    set_string(o, "iat", iat) != 0 || set_string(o, "exp", exp) != 0 ||
	    set_string(o, "jti", c->jti) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int
token_claims_dump(void *claims, char *out, size_t size, size_t *len)
{
	json_t *o = claims;
	size_t n;
	int r = -1;

	*len = 0;
	if (size > 0)
		out[0] = '\0';
	if (o == NULL || (n = json_dumpb(o, out, size, DUMP_FLAGS)) == 0 || n >= size)
		goto out;
	out[n] = '\0';
	*len = n;
	r = 0;
out:
	json_decref(o);
	return r;
}

int
token_claims_encode(const struct token_claims *c, char *out, size_t size, size_t *len)
{
	return token_claims_dump(claims_valid(c) ? claims_object(c) : NULL, out, size, len);
}

/* Copies the string member name, if present, into dst; -1 unless it fits. */
static int
get_string(json_t *o, const char *name, char *dst, size_t size)
{
	const char *s = json_string_value(json_object_get(o, name));

	if (s == NULL)
		return 0;
	return str_copy(dst, s, size) < size ? 0 : -1;
}

static int
get_time(json_t *o, const char *name, uint64_t *t)
{
	return token_time_parse(json_string_value(json_object_get(o, name)), t);
}

/* Exactly the members of 9.1, each a string, the required ones present. */
static bool
claims_shaped(json_t *o)
{
	const char *key;
	json_t *v;
	size_t i;
	bool known;

	json_object_foreach(o, key, v)
	{
		for (i = 0, known = false; i < ARRAY_LEN(claim_members) && !known; i++)
			known = strcmp(key, claim_members[i].name) == 0;
		if (!known || !json_is_string(v))
			return false;
	}
	for (i = 0; i < ARRAY_LEN(claim_members); i++)
		if (claim_members[i].required && json_object_get(o, claim_members[i].name) == NULL)
			return false;
	return true;
}

int
token_claims_decode(const uint8_t *p, size_t len, struct token_claims *c)
{
	char amr[AMR_SIZE] = "";
	struct token_claims t;
	json_t *o;
	int r = -1;

	memset(c, 0, sizeof(*c));
	memset(&t, 0, sizeof(t));
	o = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o) || !claims_shaped(o))
		goto out;
	if (get_string(o, "app", t.app, sizeof(t.app)) != 0 ||
	    get_string(o, "sub", t.sub, sizeof(t.sub)) != 0 ||
	    get_string(o, "amr", amr, sizeof(amr)) != 0 ||
	    get_string(o, "vhost", t.vhost, sizeof(t.vhost)) != 0 ||
	    get_string(o, "addr", t.addr, sizeof(t.addr)) != 0 ||
	    get_string(o, "jti", t.jti, sizeof(t.jti)) != 0 || get_time(o, "iat", &t.iat) != 0 ||
	    get_time(o, "exp", &t.exp) != 0 || auth_method_from_name(amr, &t.amr) != 0)
		goto out;
	t.has_sub = json_object_get(o, "sub") != NULL;
	/* Present but empty is not absent (claims_valid refuses an empty sub itself). */
	if ((json_object_get(o, "vhost") != NULL && t.vhost[0] == '\0') ||
	    (json_object_get(o, "addr") != NULL && t.addr[0] == '\0') || !claims_valid(&t))
		goto out;
	*c = t;
	r = 0;
out:
	json_decref(o);
	return r;
}

/* --- keys, issuing, opening ------------------------------------------------ */

void
token_kid(const uint8_t pk[TOKEN_PK_LEN], char kid[TOKEN_KID_MAX])
{
	uint8_t digest[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(digest, pk, TOKEN_PK_LEN);
	sodium_bin2base64(kid, TOKEN_KID_MAX, digest, TOKEN_KID_HASH_LEN, KID_B64);
}

int
token_key_from_seed(const uint8_t seed[TOKEN_SEED_LEN], struct token_key *key)
{
	memset(key, 0, sizeof(*key));
	if (crypto_sign_seed_keypair(key->pk, key->sk, seed) != 0 ||
	    crypto_generichash(key->local, sizeof(key->local), (const uint8_t *)TOKEN_LOCAL_CONTEXT,
	                       strlen(TOKEN_LOCAL_CONTEXT), seed, TOKEN_SEED_LEN) != 0) {
		token_key_wipe(key);
		return -1;
	}
	token_kid(key->pk, key->kid);
	return 0;
}

void
token_key_wipe(struct token_key *key)
{
	if (key != NULL)
		sodium_memzero(key, sizeof(*key));
}

static size_t
footer_encode(const char *kid, char out[FOOTER_SIZE])
{
	int n = snprintf(out, FOOTER_SIZE, TOKEN_FOOTER_PREFIX "%s" TOKEN_FOOTER_SUFFIX, kid);

	return n == (int)TOKEN_FOOTER_LEN ? TOKEN_FOOTER_LEN : 0;
}

int
token_issue(const struct token_key *key, enum token_format format, const struct token_claims *c,
            char *out, size_t size)
{
	char m[CLAIMS_MAX], f[FOOTER_SIZE];
	size_t mlen, flen;
	int r = -1;

	if (size > 0)
		out[0] = '\0';
	if (token_claims_encode(c, m, sizeof(m), &mlen) != 0 ||
	    (flen = footer_encode(key->kid, f)) == 0)
		goto out;
	if (format == TOKEN_PUBLIC)
		r = paseto_v4_public_sign(key->sk, (const uint8_t *)m, mlen, (const uint8_t *)f,
		                          flen, (const uint8_t *)TOKEN_ASSERTION, ASSERTION_LEN,
		                          out, size);
	else if (format == TOKEN_LOCAL)
		r = paseto_v4_local_encrypt(
		        key->local, NULL, (const uint8_t *)m, mlen, (const uint8_t *)f, flen,
		        (const uint8_t *)TOKEN_ASSERTION, ASSERTION_LEN, out, size);
out:
	sodium_memzero(m, sizeof(m));
	return r;
}

static bool
base64url_char(uint8_t ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_';
}

/*
 * The kid of an unauthenticated footer that must read {"kid":"KID"} byte
 * for byte: checked by its fixed shape, so no JSON parser sees bytes
 * nobody has authenticated yet.
 */
static int
footer_kid(const uint8_t *f, size_t flen, char kid[TOKEN_KID_MAX])
{
	const size_t pre = strlen(TOKEN_FOOTER_PREFIX), post = strlen(TOKEN_FOOTER_SUFFIX);
	size_t i;

	kid[0] = '\0';
	if (flen != TOKEN_FOOTER_LEN || memcmp(f, TOKEN_FOOTER_PREFIX, pre) != 0 ||
	    memcmp(f + flen - post, TOKEN_FOOTER_SUFFIX, post) != 0)
		return -1;
	/* The hash bytes fill the kid's characters exactly: any of the alphabet are canonical. */
	for (i = 0; i < TOKEN_KID_LEN; i++)
		if (!base64url_char(f[pre + i]))
			return -1;
	memcpy(kid, f + pre, TOKEN_KID_LEN);
	kid[TOKEN_KID_LEN] = '\0';
	return 0;
}

/* The public key a v4.public token's kid names, or NULL. */
static const uint8_t *
public_key(const struct token_key *own, const struct token_trusted *trusted, size_t ntrusted,
           const char *kid)
{
	size_t i;

	if (own != NULL && strcmp(own->kid, kid) == 0)
		return own->pk;
	for (i = 0; i < ntrusted; i++)
		if (strcmp(trusted[i].kid, kid) == 0)
			return trusted[i].pk;
	return NULL;
}

/* A v4.local token of a key held elsewhere: unpacked here, opened there. */
static int
open_elsewhere(const struct token_key *own, const char *token, uint8_t *m, size_t m_size,
               size_t *mlen)
{
	uint8_t body[PASETO_V4_LOCAL_BODY_MAX], f[FOOTER_SIZE];
	size_t blen, flen;

	*mlen = 0;
	if (paseto_v4_local_unpack(token, body, sizeof(body), &blen, f, sizeof(f), &flen) != 0)
		return -1;
	return own->open_local(own->open_ctx, body, blen, f, flen, m, m_size, mlen);
}

/* Verifies or decrypts under the key kid names; *why says which step failed. */
static int
unseal(const struct token_key *own, const struct token_trusted *trusted, size_t ntrusted,
       const char *token, const char *kid, uint8_t *m, size_t m_size, size_t *mlen,
       const char **why)
{
	const uint8_t *a = (const uint8_t *)TOKEN_ASSERTION;
	const uint8_t *pk;
	/* PASETO returns the footer again, authenticated now; footer_kid saw the same bytes. */
	uint8_t f[FOOTER_SIZE];
	size_t flen;

	*why = "unknown key";
	if (strncmp(token, LOCAL_HEADER, strlen(LOCAL_HEADER)) == 0) {
		/* Nobody else holds the local key: only this node's own tokens open. */
		if (own == NULL || strcmp(own->kid, kid) != 0)
			return -1;
		*why = "bad signature";
		if (own->open_local != NULL)
			return open_elsewhere(own, token, m, m_size, mlen);
		return paseto_v4_local_decrypt(own->local, token, a, ASSERTION_LEN, m, m_size, mlen,
		                               f, sizeof(f), &flen);
	}
	if ((pk = public_key(own, trusted, ntrusted, kid)) == NULL)
		return -1;
	*why = "bad signature";
	return paseto_v4_public_verify(pk, token, a, ASSERTION_LEN, m, m_size, mlen, f, sizeof(f),
	                               &flen);
}

/* The times of 9.3, the issuer's clock allowed TOKEN_CLOCK_SKEW ahead. */
static const char *
too_early_or_late(const struct token_claims *c, uint64_t now)
{
	if (c->iat > TOKEN_CLOCK_SKEW && c->iat - TOKEN_CLOCK_SKEW > now)
		return "not yet valid";
	if (now >= c->exp)
		return "expired";
	return NULL;
}

int
token_open(const struct token_key *own, const struct token_trusted *trusted, size_t ntrusted,
           const char *token, uint64_t now, struct token_claims *c, const char **why)
{
	uint8_t m[PASETO_MESSAGE_MAX], f[FOOTER_SIZE];
	char kid[TOKEN_KID_MAX];
	struct token_claims t;
	const char *reason = "malformed token";
	size_t mlen, flen;
	int r = -1;

	memset(c, 0, sizeof(*c));
	memset(&t, 0, sizeof(t));
	if (paseto_footer(token, f, sizeof(f), &flen) != 0 || footer_kid(f, flen, kid) != 0)
		goto out;
	if (unseal(own, trusted, ntrusted, token, kid, m, sizeof(m), &mlen, &reason) != 0)
		goto out;
	reason = "malformed claims";
	if (token_claims_decode(m, mlen, &t) != 0)
		goto out;
	if ((reason = too_early_or_late(&t, now)) != NULL)
		goto out;
	*c = t;
	r = 0;
out:
	/* A v4.local token's claims are meant to stay opaque. */
	sodium_memzero(m, sizeof(m));
	sodium_memzero(&t, sizeof(t));
	if (r != 0 && why != NULL)
		*why = reason;
	return r;
}

/* --- trusted keys ---------------------------------------------------------- */

static bool
trusted_name_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > TOKEN_TRUSTED_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr(TRUSTED_NAME_EXTRA, s[i]) != NULL))
			return false;
	return true;
}

/* Splits off the next blank-separated word of *p, or returns NULL at the end. */
static char *
word(char **p)
{
	char *w = *p + strspn(*p, BLANKS);
	char *end;

	if (*w == '\0')
		return NULL;
	end = w + strcspn(w, BLANKS);
	*p = end;
	if (*end != '\0') {
		*end = '\0';
		*p = end + 1;
	}
	return w;
}

static bool
line_clean(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (((unsigned char)p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
			return false;
	return true;
}

/*
 * One line, p[0..n) without its LF: 1 with an entry in *e, 0 for a blank
 * or comment line, -1 with *why set.
 */
static int
trusted_line(const char *p, size_t n, struct token_trusted *e, const char **why)
{
	char line[TOKEN_TRUSTED_LINE_MAX + 1];
	char *rest = line, *key, *name;
	uint8_t curve[crypto_scalarmult_curve25519_BYTES];
	size_t len;

	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (n > TOKEN_TRUSTED_LINE_MAX || !line_clean(p, n)) {
		*why = n > TOKEN_TRUSTED_LINE_MAX ? "line too long" : "control character";
		return -1;
	}
	memcpy(line, p, n);
	line[n] = '\0';
	if ((key = word(&rest)) == NULL || key[0] == '#')
		return 0;
	if ((name = word(&rest)) == NULL || word(&rest) != NULL) {
		*why = "expected BASE64-KEY NAME";
		return -1;
	}
	/* A key that is no curve point could never verify: say so now, not at the first token. */
	if (b64_decode(key, strlen(key), NULL, sodium_base64_VARIANT_ORIGINAL, e->pk, sizeof(e->pk),
	               &len) != 0 ||
	    len != sizeof(e->pk) || crypto_sign_ed25519_pk_to_curve25519(curve, e->pk) != 0) {
		*why = "invalid key: expected the base64 of a 32-byte Ed25519 public key";
		return -1;
	}
	if (!trusted_name_valid(name)) {
		*why = "invalid name";
		return -1;
	}
	str_copy(e->name, name, sizeof(e->name));
	token_kid(e->pk, e->kid);
	return 1;
}

/* A line's entry against those before it. */
static const char *
duplicate(const struct token_trusted *t, size_t n, const struct token_trusted *e)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (memcmp(t[i].pk, e->pk, sizeof(e->pk)) == 0)
			return "duplicate key";
		if (strcmp(t[i].name, e->name) == 0)
			return "duplicate name";
	}
	return NULL;
}

int
token_trusted_parse(const char *text, size_t len, const char *file, struct token_trusted **out,
                    size_t *n, char *err, size_t err_size)
{
	struct token_trusted *t, e;
	const char *why = "out of memory", *lf = NULL;
	size_t pos, llen, lineno = 0, count = 0;
	int r;

	*out = NULL;
	*n = 0;
	if (err_size > 0)
		err[0] = '\0';
	if ((t = calloc(TOKEN_TRUSTED_MAX, sizeof(*t))) == NULL)
		goto fail;
	for (pos = 0; pos < len; pos += llen + (lf != NULL)) {
		lineno++;
		lf = memchr(text + pos, '\n', len - pos);
		llen = lf != NULL ? (size_t)(lf - (text + pos)) : len - pos;
		if ((r = trusted_line(text + pos, llen, &e, &why)) < 0)
			goto fail;
		if (r == 0)
			continue;
		if ((why = duplicate(t, count, &e)) != NULL)
			goto fail;
		if (count == TOKEN_TRUSTED_MAX) {
			why = "too many keys";
			goto fail;
		}
		t[count++] = e;
	}
	if (count == 0) {
		free(t);
		t = NULL;
	}
	*out = t;
	*n = count;
	return 0;
fail:
	snprintf(err, err_size, "%s:%zu: %s", file, lineno, why);
	free(t);
	return -1;
}

void
token_trusted_free(struct token_trusted *t)
{
	free(t);
}
