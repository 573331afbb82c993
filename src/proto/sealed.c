#include "proto/sealed.h"

#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

#include "common/bytes.h"

#define MAC1_LABEL    "mac1----"
#define COOKIE_LABEL  "cookie--"
#define KEY_LABEL_LEN 8
#define POW_LABEL     "fived-pow-v1"
#define POW_LABEL_LEN (sizeof(POW_LABEL) - 1)
#define POW_HASH_LEN  32
#define BUCKET_LEN    8 /* the u64 time bucket a cookie covers */

#define TAI64_BASE   (UINT64_C(1) << 62)
#define TAI64_END    (UINT64_C(1) << 63) /* labels from here on are reserved */
#define TAI64_LABEL  8
#define NSEC_PER_SEC 1000000000u

/* INITIATION offsets; the trailer's are relative to the end of the Noise message. */
#define I_TYPE    0
#define I_VERSION 1
#define I_PATTERN 2
#define I_FLAGS   3
#define I_SUITES  4
#define I_NLEN    6
#define I_NOISE   8
#define T_POW     0
#define T_MAC1    (T_POW + SEALED_POW_NONCE_LEN)
#define T_MAC2    (T_MAC1 + SEALED_MAC_LEN)

/* COOKIE offsets. */
#define C_DIFFICULTY 2
#define C_RESERVED   3
#define C_HEADER_LEN 4 /* bytes [0, 4) join mac1 as additional data */
#define C_NONCE      4
#define C_BOX        (C_NONCE + SEALED_COOKIE_NONCE)

#define IPV4_LEN 4

_Static_assert(SEALED_INITIATION_OVERHEAD == 48, "INITIATION is 48 + n bytes");
_Static_assert(SEALED_COOKIE_NONCE == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce");
_Static_assert(SEALED_COOKIE_BOX == SEALED_COOKIE_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "cookie box");
_Static_assert(SEALED_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "cookie key");
_Static_assert(C_BOX + SEALED_COOKIE_BOX == SEALED_COOKIE_MSG_LEN, "COOKIE is 60 bytes");
_Static_assert(SEALED_COOKIE_MSG_LEN < SEALED_INITIATION_OVERHEAD + SEALED_XX1_LEN,
               "a COOKIE is never larger than the INITIATION it answers");
_Static_assert(SEALED_INITIATION_MAX <= SEALED_INITIATION_OVERHEAD + SEALED_NOISE_MAX,
               "n fits its u16");
_Static_assert(SEALED_RESPONSE_MAX <= SEALED_MESSAGE_MAX && SEALED_FINISH_MAX <= SEALED_MESSAGE_MAX,
               "SEALED_MESSAGE_MAX bounds every message");

static const uint8_t zero_key[SEALED_KEY_LEN];
static const uint8_t zero_nonce[SEALED_POW_NONCE_LEN];

static bool
known_pattern(unsigned pattern)
{
	return pattern == SEALED_IK || pattern == SEALED_XX;
}

/* Whether Noise message 1 of this pattern can be n bytes long with our payloads. */
static bool
noise1_len_ok(unsigned pattern, size_t n)
{
	if (pattern == SEALED_IK)
		return n >= SEALED_IK1_MIN && n <= SEALED_IK1_MAX;
	return pattern == SEALED_XX && n == SEALED_XX1_LEN;
}

/* --- framing and messages --------------------------------------------------- */

int
sealed_frame_length(const uint8_t *in, size_t len, size_t *total)
{
	size_t n;

	*total = 0;
	if (len < 1)
		return SEALED_NEED_MORE;
	switch (in[0]) {
	case SEALED_INITIATION:
		/* Another version may be framed differently: say so before reading a length. */
		if (len > I_VERSION && in[I_VERSION] != SEALED_VERSION)
			return SEALED_ERR_VERSION;
		if (len < SEALED_HEADER_LEN)
			return SEALED_NEED_MORE;
		n = SEALED_INITIATION_OVERHEAD + bytes_get16(in + I_NLEN);
		if (n > SEALED_INITIATION_MAX)
			return SEALED_ERR_MALFORMED;
		break;
	case SEALED_RESPONSE:
	case SEALED_FINISH:
		if (len < SEALED_FRAME_LEN)
			return SEALED_NEED_MORE;
		n = SEALED_FRAME_LEN + bytes_get16(in + 2);
		if (n > (in[0] == SEALED_RESPONSE ? SEALED_RESPONSE_MAX : SEALED_FINISH_MAX))
			return SEALED_ERR_MALFORMED;
		break;
	case SEALED_COOKIE:
		n = SEALED_COOKIE_MSG_LEN;
		break;
	case SEALED_REJECT:
		n = SEALED_REJECT_LEN;
		break;
	default:
		return SEALED_ERR_MALFORMED;
	}
	*total = n;
	return SEALED_OK;
}

uint8_t
sealed_reject_code(int status)
{
	switch (status) {
	case SEALED_ERR_VERSION:
		return SEALED_REJECT_VERSION;
	case SEALED_ERR_SUITE:
		return SEALED_REJECT_SUITE;
	case SEALED_ERR_PATTERN:
		return SEALED_REJECT_PATTERN;
	default:
		return 0;
	}
}

const char *
sealed_noise_name(unsigned pattern)
{
	if (pattern == SEALED_IK)
		return SEALED_NOISE_IK;
	if (pattern == SEALED_XX)
		return SEALED_NOISE_XX;
	return NULL;
}

size_t
sealed_noise1_len(unsigned pattern, size_t early_len)
{
	if (pattern == SEALED_IK && early_len <= SEALED_EARLY_MAX)
		return SEALED_IK1_MIN + early_len;
	if (pattern == SEALED_XX && early_len == 0)
		return SEALED_XX1_LEN;
	return 0;
}

/* Bytes [0, 8) of an INITIATION with the given flags. */
static void
put_header(uint8_t out[SEALED_HEADER_LEN], unsigned pattern, uint8_t flags, uint16_t suites,
           size_t noise_len)
{
	out[I_TYPE] = SEALED_INITIATION;
	out[I_VERSION] = SEALED_VERSION;
	out[I_PATTERN] = (uint8_t)pattern;
	out[I_FLAGS] = flags;
	bytes_put16(out + I_SUITES, suites);
	bytes_put16(out + I_NLEN, noise_len);
}

void
sealed_prologue(unsigned pattern, uint16_t suites, size_t noise_len,
                uint8_t out[SEALED_PROLOGUE_LEN])
{
	memcpy(out, SEALED_PROLOGUE_LABEL, SEALED_PROLOGUE_LABEL_LEN);
	put_header(out + SEALED_PROLOGUE_LABEL_LEN, pattern, 0, suites, noise_len);
}

/*
 * mac1 over an INITIATION's bytes [0, 16 + n) as header, Noise message and
 * pow nonce, so the original mac1 can be had without copying the message.
 */
static void
mac1_parts(const uint8_t key[SEALED_KEY_LEN], const uint8_t header[SEALED_HEADER_LEN],
           const uint8_t *noise, size_t noise_len, const uint8_t nonce[SEALED_POW_NONCE_LEN],
           uint8_t out[SEALED_MAC_LEN])
{
	crypto_generichash_blake2b_state st;

	crypto_generichash_blake2b_init(&st, key, SEALED_KEY_LEN, SEALED_MAC_LEN);
	crypto_generichash_blake2b_update(&st, header, SEALED_HEADER_LEN);
	crypto_generichash_blake2b_update(&st, noise, noise_len);
	crypto_generichash_blake2b_update(&st, nonce, SEALED_POW_NONCE_LEN);
	crypto_generichash_blake2b_final(&st, out, SEALED_MAC_LEN);
	sodium_memzero(&st, sizeof(st));
}

int
sealed_initiation_encode(struct sealed_initiation *m, const uint8_t mac1_key[SEALED_KEY_LEN],
                         const uint8_t *cookie, uint8_t *out, size_t out_size, size_t *out_len)
{
	uint8_t *trailer;
	size_t n = m->noise_len;
	uint8_t flags = cookie != NULL ? SEALED_FLAG_COOKIE : 0;

	*out_len = 0;
	if (!known_pattern(m->pattern) || m->noise == NULL || !noise1_len_ok(m->pattern, n) ||
	    out_size < SEALED_INITIATION_OVERHEAD + n)
		return -1;
	put_header(out, m->pattern, flags, m->suites, n);
	memmove(out + I_NOISE, m->noise, n);
	trailer = out + I_NOISE + n;
	memcpy(trailer + T_POW, cookie != NULL ? m->pow_nonce : zero_nonce, SEALED_POW_NONCE_LEN);
	sealed_mac1(mac1_key, out, I_NOISE + n + T_MAC1, trailer + T_MAC1);
	if (cookie != NULL)
		sealed_mac2(cookie, out, I_NOISE + n + T_MAC2, trailer + T_MAC2);
	else
		memset(trailer + T_MAC2, 0, SEALED_MAC_LEN);

	/* Decoding our own bytes fills m as the server will see it. */
	if (sealed_initiation_decode(out, SEALED_INITIATION_OVERHEAD + n, m) != SEALED_OK)
		return -1;
	*out_len = SEALED_INITIATION_OVERHEAD + n;
	return 0;
}

int
sealed_initiation_decode(const uint8_t *in, size_t len, struct sealed_initiation *m)
{
	const uint8_t *trailer;
	size_t n;

	memset(m, 0, sizeof(*m));
	if (len < SEALED_HEADER_LEN || in[I_TYPE] != SEALED_INITIATION)
		return SEALED_ERR_MALFORMED;
	if (in[I_VERSION] != SEALED_VERSION)
		return SEALED_ERR_VERSION;
	n = bytes_get16(in + I_NLEN);
	if (len != SEALED_INITIATION_OVERHEAD + n || (in[I_FLAGS] & ~SEALED_FLAG_COOKIE) != 0)
		return SEALED_ERR_MALFORMED;
	if (!known_pattern(in[I_PATTERN]))
		return SEALED_ERR_PATTERN;
	if (!noise1_len_ok(in[I_PATTERN], n))
		return SEALED_ERR_MALFORMED;
	trailer = in + I_NOISE + n;
	if ((in[I_FLAGS] & SEALED_FLAG_COOKIE) == 0 &&
	    (!sodium_is_zero(trailer + T_POW, SEALED_POW_NONCE_LEN) ||
	     !sodium_is_zero(trailer + T_MAC2, SEALED_MAC_LEN)))
		return SEALED_ERR_MALFORMED;

	m->version = in[I_VERSION];
	m->pattern = in[I_PATTERN];
	m->flags = in[I_FLAGS];
	m->suites = (uint16_t)bytes_get16(in + I_SUITES);
	m->noise = in + I_NOISE;
	m->noise_len = n;
	m->epub = m->noise;
	memcpy(m->pow_nonce, trailer + T_POW, SEALED_POW_NONCE_LEN);
	memcpy(m->mac1, trailer + T_MAC1, SEALED_MAC_LEN);
	memcpy(m->mac2, trailer + T_MAC2, SEALED_MAC_LEN);
	m->msg = in;
	m->msg_len = len;
	return SEALED_OK;
}

/* RESPONSE and FINISH share a frame: type, version, u16 n, the Noise message. */
static int
frame_encode(uint8_t type, const uint8_t *noise, size_t noise_len, uint8_t *out, size_t out_size,
             size_t *out_len)
{
	*out_len = 0;
	if (noise == NULL || out_size < SEALED_FRAME_LEN + noise_len)
		return -1;
	out[0] = type;
	out[1] = SEALED_VERSION;
	bytes_put16(out + 2, noise_len);
	memmove(out + SEALED_FRAME_LEN, noise, noise_len);
	*out_len = SEALED_FRAME_LEN + noise_len;
	return 0;
}

static int
frame_decode(uint8_t type, const uint8_t *in, size_t len, size_t min, size_t max,
             struct sealed_frame *f)
{
	size_t n;

	memset(f, 0, sizeof(*f));
	if (len < SEALED_FRAME_LEN || in[0] != type)
		return SEALED_ERR_MALFORMED;
	if (in[1] != SEALED_VERSION)
		return SEALED_ERR_VERSION;
	n = bytes_get16(in + 2);
	if (len != SEALED_FRAME_LEN + n || n < min || n > max)
		return SEALED_ERR_MALFORMED;
	f->type = type;
	f->version = in[1];
	f->noise = in + SEALED_FRAME_LEN;
	f->noise_len = n;
	return SEALED_OK;
}

static size_t
response_noise_len(unsigned pattern)
{
	if (pattern == SEALED_IK)
		return SEALED_IK2_LEN;
	return pattern == SEALED_XX ? SEALED_XX2_LEN : 0;
}

int
sealed_response_encode(unsigned pattern, const uint8_t *noise, size_t noise_len, uint8_t *out,
                       size_t out_size, size_t *out_len)
{
	*out_len = 0;
	if (!known_pattern(pattern) || noise_len != response_noise_len(pattern))
		return -1;
	return frame_encode(SEALED_RESPONSE, noise, noise_len, out, out_size, out_len);
}

int
sealed_response_decode(const uint8_t *in, size_t len, unsigned pattern, struct sealed_frame *f)
{
	size_t n = response_noise_len(pattern);

	if (!known_pattern(pattern)) {
		memset(f, 0, sizeof(*f));
		return SEALED_ERR_MALFORMED;
	}
	return frame_decode(SEALED_RESPONSE, in, len, n, n, f);
}

int
sealed_finish_encode(const uint8_t *noise, size_t noise_len, uint8_t *out, size_t out_size,
                     size_t *out_len)
{
	*out_len = 0;
	if (noise_len < SEALED_XX3_MIN || noise_len > SEALED_XX3_MAX)
		return -1;
	return frame_encode(SEALED_FINISH, noise, noise_len, out, out_size, out_len);
}

int
sealed_finish_decode(const uint8_t *in, size_t len, struct sealed_frame *f)
{
	return frame_decode(SEALED_FINISH, in, len, SEALED_XX3_MIN, SEALED_XX3_MAX, f);
}

static bool
known_reject(uint8_t code)
{
	return code >= SEALED_REJECT_VERSION && code <= SEALED_REJECT_BUSY;
}

int
sealed_reject_encode(uint8_t code, uint8_t *out, size_t out_size, size_t *out_len)
{
	*out_len = 0;
	if (!known_reject(code) || out_size < SEALED_REJECT_LEN)
		return -1;
	out[0] = SEALED_REJECT;
	out[1] = SEALED_VERSION;
	out[2] = code;
	*out_len = SEALED_REJECT_LEN;
	return 0;
}

int
sealed_reject_decode(const uint8_t *in, size_t len, struct sealed_reject *r)
{
	memset(r, 0, sizeof(*r));
	if (len != SEALED_REJECT_LEN || in[0] != SEALED_REJECT || !known_reject(in[2]))
		return SEALED_ERR_MALFORMED;
	r->version = in[1];
	r->code = in[2];
	return SEALED_OK;
}

/* --- payloads ------------------------------------------------------------------ */

/* u16 early length and the early data, at out (room checked by the caller). */
static void
put_early(uint8_t *out, const uint8_t *early, size_t early_len)
{
	bytes_put16(out, early_len);
	if (early_len > 0)
		memmove(out + 2, early, early_len);
}

/* The early data after a u16 length that must account for the rest of in exactly. */
static int
get_early(const uint8_t *in, size_t len, const uint8_t **early, size_t *early_len)
{
	size_t e;

	*early = NULL;
	*early_len = 0;
	if (len < 2)
		return -1;
	e = bytes_get16(in);
	if (e > SEALED_EARLY_MAX || len != 2 + e)
		return -1;
	*early = e > 0 ? in + 2 : NULL;
	*early_len = e;
	return 0;
}

int
sealed_msg1_payload_encode(const uint8_t timestamp[SEALED_TAI64N_LEN], const uint8_t *early,
                           size_t early_len, uint8_t *out, size_t out_size, size_t *out_len)
{
	*out_len = 0;
	if ((early == NULL && early_len > 0) || early_len > SEALED_EARLY_MAX ||
	    out_size < SEALED_MSG1_PAYLOAD_MIN + early_len)
		return -1;
	memcpy(out, timestamp, SEALED_TAI64N_LEN);
	put_early(out + SEALED_TAI64N_LEN, early, early_len);
	*out_len = SEALED_MSG1_PAYLOAD_MIN + early_len;
	return 0;
}

int
sealed_msg1_payload_decode(const uint8_t *in, size_t len, struct sealed_msg1_payload *p)
{
	uint64_t sec;
	uint32_t nsec;

	memset(p, 0, sizeof(*p));
	if (len < SEALED_MSG1_PAYLOAD_MIN || sealed_tai64n_decode(in, &sec, &nsec) != 0 ||
	    get_early(in + SEALED_TAI64N_LEN, len - SEALED_TAI64N_LEN, &p->early, &p->early_len) !=
	            0) {
		memset(p, 0, sizeof(*p));
		return -1;
	}
	memcpy(p->timestamp, in, SEALED_TAI64N_LEN);
	return 0;
}

int
sealed_finish_payload_encode(const uint8_t *early, size_t early_len, uint8_t *out, size_t out_size,
                             size_t *out_len)
{
	*out_len = 0;
	if ((early == NULL && early_len > 0) || early_len > SEALED_EARLY_MAX ||
	    out_size < SEALED_FINISH_PAYLOAD_MIN + early_len)
		return -1;
	put_early(out, early, early_len);
	*out_len = SEALED_FINISH_PAYLOAD_MIN + early_len;
	return 0;
}

int
sealed_finish_payload_decode(const uint8_t *in, size_t len, const uint8_t **early,
                             size_t *early_len)
{
	return get_early(in, len, early, early_len);
}

/* Whether the offer (an empty one standing for XChaCha20 alone) holds a known suite. */
static bool
offers(uint16_t suites, enum record_suite suite)
{
	if (suites == 0)
		suites = SEALED_SUITES_IMPLICIT;
	return record_suite_name(suite) != NULL && (suites & SEALED_SUITE_BIT(suite)) != 0;
}

enum record_suite
sealed_suite_choose(uint16_t suites, const enum record_suite *prefs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (offers(suites, prefs[i]))
			return prefs[i];
	return RECORD_SUITE_NONE;
}

int
sealed_response_payload_encode(enum record_suite suite, uint8_t flags,
                               uint8_t out[SEALED_RESPONSE_PAYLOAD_LEN])
{
	if (record_suite_name(suite) == NULL || (flags & ~SEALED_FLAG_0RTT) != 0)
		return -1;
	out[0] = (uint8_t)suite;
	out[1] = flags;
	return 0;
}

int
sealed_response_payload_decode(const uint8_t *in, size_t len, uint16_t suites,
                               enum record_suite *suite, uint8_t *flags)
{
	*suite = RECORD_SUITE_NONE;
	*flags = 0;
	if (len != SEALED_RESPONSE_PAYLOAD_LEN || !offers(suites, (enum record_suite)in[0]) ||
	    (in[1] & ~SEALED_FLAG_0RTT) != 0)
		return -1;
	*suite = (enum record_suite)in[0];
	*flags = in[1];
	return 0;
}

int
sealed_tai64n_encode(uint64_t unix_sec, uint32_t nsec, uint8_t out[SEALED_TAI64N_LEN])
{
	memset(out, 0, SEALED_TAI64N_LEN);
	if (nsec >= NSEC_PER_SEC || unix_sec >= TAI64_BASE)
		return -1;
	bytes_put64(out, TAI64_BASE + unix_sec);
	bytes_put32(out + TAI64_LABEL, nsec);
	return 0;
}

int
sealed_tai64n_decode(const uint8_t in[SEALED_TAI64N_LEN], uint64_t *unix_sec, uint32_t *nsec)
{
	uint64_t label = bytes_get64(in);
	uint32_t ns = bytes_get32(in + TAI64_LABEL);

	*unix_sec = 0;
	*nsec = 0;
	if (label < TAI64_BASE || label >= TAI64_END || ns >= NSEC_PER_SEC)
		return -1;
	*unix_sec = label - TAI64_BASE;
	*nsec = ns;
	return 0;
}

int
sealed_tai64n_compare(const uint8_t a[SEALED_TAI64N_LEN], const uint8_t b[SEALED_TAI64N_LEN])
{
	/* Big-endian fields, label first: byte order is time order.  Nothing secret here. */
	return memcmp(a, b, SEALED_TAI64N_LEN);
}

/* --- MACs ------------------------------------------------------------------------ */

static void
labelled_key(const char *label, const uint8_t *server_pub, uint8_t out[SEALED_KEY_LEN])
{
	crypto_generichash_blake2b_state st;

	crypto_generichash_blake2b_init(&st, NULL, 0, SEALED_KEY_LEN);
	crypto_generichash_blake2b_update(&st, (const uint8_t *)label, KEY_LABEL_LEN);
	crypto_generichash_blake2b_update(&st, server_pub != NULL ? server_pub : zero_key,
	                                  SEALED_KEY_LEN);
	crypto_generichash_blake2b_final(&st, out, SEALED_KEY_LEN);
	sodium_memzero(&st, sizeof(st));
}

void
sealed_mac1_key(const uint8_t *server_pub, uint8_t out[SEALED_KEY_LEN])
{
	labelled_key(MAC1_LABEL, server_pub, out);
}

void
sealed_cookie_key(const uint8_t *server_pub, uint8_t out[SEALED_KEY_LEN])
{
	labelled_key(COOKIE_LABEL, server_pub, out);
}

void
sealed_server_keys_derive(struct sealed_server_keys *k, const uint8_t pk[SEALED_KEY_LEN])
{
	memcpy(k->pk, pk, sizeof(k->pk));
	sealed_mac1_key(k->pk, k->mac1_ik);
	sealed_mac1_key(NULL, k->mac1_xx);
	sealed_cookie_key(k->pk, k->cookie_ik);
	sealed_cookie_key(NULL, k->cookie_xx);
}

void
sealed_mac1(const uint8_t key[SEALED_KEY_LEN], const uint8_t *data, size_t len,
            uint8_t out[SEALED_MAC_LEN])
{
	crypto_generichash_blake2b(out, SEALED_MAC_LEN, data, len, key, SEALED_KEY_LEN);
}

void
sealed_mac2(const uint8_t cookie[SEALED_COOKIE_LEN], const uint8_t *data, size_t len,
            uint8_t out[SEALED_MAC_LEN])
{
	crypto_generichash_blake2b(out, SEALED_MAC_LEN, data, len, cookie, SEALED_COOKIE_LEN);
}

int
sealed_initiation_check_mac1(const struct sealed_initiation *m,
                             const uint8_t mac1_key[SEALED_KEY_LEN])
{
	uint8_t mac[SEALED_MAC_LEN];
	int r = -1;

	if (m->msg == NULL || m->msg_len != SEALED_INITIATION_OVERHEAD + m->noise_len)
		goto out;
	sealed_mac1(mac1_key, m->msg, I_NOISE + m->noise_len + T_MAC1, mac);
	r = sodium_memcmp(mac, m->mac1, SEALED_MAC_LEN) == 0 ? 0 : -1;
out:
	sodium_memzero(mac, sizeof(mac));
	return r;
}

void
sealed_initiation_original_mac1(const struct sealed_initiation *m,
                                const uint8_t mac1_key[SEALED_KEY_LEN], uint8_t out[SEALED_MAC_LEN])
{
	uint8_t header[SEALED_HEADER_LEN];

	memset(out, 0, SEALED_MAC_LEN);
	if (m->msg == NULL)
		return;
	put_header(header, m->pattern, 0, m->suites, m->noise_len);
	mac1_parts(mac1_key, header, m->noise, m->noise_len, zero_nonce, out);
}

int
sealed_initiation_check_cookie(const struct sealed_initiation *m,
                               const uint8_t secret_cur[SEALED_KEY_LEN],
                               const uint8_t secret_prev[SEALED_KEY_LEN],
                               const uint8_t source[SEALED_SOURCE_LEN], uint64_t now,
                               uint8_t cookie_out[SEALED_COOKIE_LEN])
{
	uint8_t cookie[2][SEALED_COOKIE_LEN], mac[SEALED_MAC_LEN];
	uint64_t bucket = sealed_cookie_bucket(now);
	bool ok[2] = {false, false};
	int r = -1;

	memset(cookie_out, 0, SEALED_COOKIE_LEN);
	memset(cookie, 0, sizeof(cookie));
	if (m->msg == NULL || (m->flags & SEALED_FLAG_COOKIE) == 0)
		goto out;
	/* Both candidates every time: the timing tells nothing about which secret matched. */
	sealed_cookie_compute(secret_cur, source, m->epub, bucket, cookie[0]);
	sealed_mac2(cookie[0], m->msg, I_NOISE + m->noise_len + T_MAC2, mac);
	ok[0] = sodium_memcmp(mac, m->mac2, SEALED_MAC_LEN) == 0;
	if (bucket > 0) {
		sealed_cookie_compute(secret_prev, source, m->epub, bucket - 1, cookie[1]);
		sealed_mac2(cookie[1], m->msg, I_NOISE + m->noise_len + T_MAC2, mac);
		ok[1] = sodium_memcmp(mac, m->mac2, SEALED_MAC_LEN) == 0;
	}
	if (ok[0] || ok[1]) {
		memcpy(cookie_out, cookie[ok[0] ? 0 : 1], SEALED_COOKIE_LEN);
		r = 0;
	}
out:
	sodium_memzero(cookie, sizeof(cookie));
	sodium_memzero(mac, sizeof(mac));
	return r;
}

int
sealed_initiation_check_pow(const struct sealed_initiation *m,
                            const uint8_t mac1_key[SEALED_KEY_LEN],
                            const uint8_t cookie[SEALED_COOKIE_LEN], unsigned difficulty)
{
	uint8_t mac1[SEALED_MAC_LEN];
	int r = -1;

	if (m->msg == NULL || (m->flags & SEALED_FLAG_COOKIE) == 0)
		goto out;
	sealed_initiation_original_mac1(m, mac1_key, mac1);
	r = sealed_pow_check(cookie, mac1, m->pow_nonce, difficulty);
out:
	sodium_memzero(mac1, sizeof(mac1));
	return r;
}

/* --- cookies ----------------------------------------------------------------------- */

uint64_t
sealed_cookie_bucket(uint64_t now)
{
	return now / SEALED_COOKIE_SECRET_SECONDS;
}

int
sealed_source(const struct sockaddr *sa, uint8_t out[SEALED_SOURCE_LEN])
{
	static const uint8_t v4mapped[SEALED_SOURCE_LEN - IPV4_LEN] = {0, 0, 0, 0, 0,    0,
	                                                               0, 0, 0, 0, 0xff, 0xff};

	memset(out, 0, SEALED_SOURCE_LEN);
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		memcpy(out, v4mapped, sizeof(v4mapped));
		memcpy(out + sizeof(v4mapped), &sin->sin_addr, IPV4_LEN);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		memcpy(out, &sin6->sin6_addr, SEALED_SOURCE_LEN);
		return 0;
	}
	return -1;
}

void
sealed_cookie_compute(const uint8_t secret[SEALED_KEY_LEN], const uint8_t source[SEALED_SOURCE_LEN],
                      const uint8_t epub[SEALED_EPHEMERAL_LEN], uint64_t bucket,
                      uint8_t out[SEALED_COOKIE_LEN])
{
	crypto_generichash_blake2b_state st;
	uint8_t b[BUCKET_LEN];

	bytes_put64(b, bucket);
	crypto_generichash_blake2b_init(&st, secret, SEALED_KEY_LEN, SEALED_COOKIE_LEN);
	crypto_generichash_blake2b_update(&st, source, SEALED_SOURCE_LEN);
	crypto_generichash_blake2b_update(&st, epub, SEALED_EPHEMERAL_LEN);
	crypto_generichash_blake2b_update(&st, b, sizeof(b));
	crypto_generichash_blake2b_final(&st, out, SEALED_COOKIE_LEN);
	sodium_memzero(&st, sizeof(st));
}

int
sealed_cookie_check(const uint8_t secret_cur[SEALED_KEY_LEN],
                    const uint8_t secret_prev[SEALED_KEY_LEN],
                    const uint8_t source[SEALED_SOURCE_LEN],
                    const uint8_t epub[SEALED_EPHEMERAL_LEN], uint64_t now,
                    const uint8_t cookie[SEALED_COOKIE_LEN])
{
	uint8_t want[SEALED_COOKIE_LEN];
	uint64_t bucket = sealed_cookie_bucket(now);
	bool ok;

	sealed_cookie_compute(secret_cur, source, epub, bucket, want);
	ok = sodium_memcmp(want, cookie, SEALED_COOKIE_LEN) == 0;
	if (bucket > 0) {
		sealed_cookie_compute(secret_prev, source, epub, bucket - 1, want);
		ok |= sodium_memcmp(want, cookie, SEALED_COOKIE_LEN) == 0;
	}
	sodium_memzero(want, sizeof(want));
	return ok ? 0 : -1;
}

void
sealed_cookie_secrets_update(struct sealed_cookie_secrets *s, uint64_t now)
{
	uint64_t bucket = sealed_cookie_bucket(now);

	if (s->ready && bucket == s->bucket)
		return;
	if (s->ready && bucket == s->bucket + 1)
		memcpy(s->prev, s->cur, SEALED_KEY_LEN);
	else
		randombytes_buf(s->prev, SEALED_KEY_LEN);
	randombytes_buf(s->cur, SEALED_KEY_LEN);
	s->bucket = bucket;
	s->ready = true;
}

void
sealed_cookie_secrets_wipe(struct sealed_cookie_secrets *s)
{
	sodium_memzero(s, sizeof(*s));
}

/* The COOKIE's additional data: the original mac1, then its own bytes [0, 4). */
static void
cookie_ad(const uint8_t *msg, const uint8_t mac1[SEALED_MAC_LEN],
          uint8_t ad[SEALED_MAC_LEN + C_HEADER_LEN])
{
	memcpy(ad, mac1, SEALED_MAC_LEN);
	memcpy(ad + SEALED_MAC_LEN, msg, C_HEADER_LEN);
}

int
sealed_cookie_seal(const uint8_t cookie_key[SEALED_KEY_LEN],
                   const uint8_t cookie[SEALED_COOKIE_LEN], const uint8_t mac1[SEALED_MAC_LEN],
                   unsigned difficulty, uint8_t *out, size_t out_size, size_t *out_len)
{
	uint8_t ad[SEALED_MAC_LEN + C_HEADER_LEN];

	*out_len = 0;
	if (difficulty > SEALED_POW_DIFFICULTY_MAX || out_size < SEALED_COOKIE_MSG_LEN)
		return -1;
	out[0] = SEALED_COOKIE;
	out[1] = SEALED_VERSION;
	out[C_DIFFICULTY] = (uint8_t)difficulty;
	out[C_RESERVED] = 0;
	randombytes_buf(out + C_NONCE, SEALED_COOKIE_NONCE);
	cookie_ad(out, mac1, ad);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + C_BOX, NULL, cookie, SEALED_COOKIE_LEN, ad,
	                                           sizeof(ad), NULL, out + C_NONCE, cookie_key);
	*out_len = SEALED_COOKIE_MSG_LEN;
	return 0;
}

int
sealed_cookie_decode(const uint8_t *in, size_t len, struct sealed_cookie_msg *c)
{
	memset(c, 0, sizeof(*c));
	if (len < 2 || in[0] != SEALED_COOKIE)
		return SEALED_ERR_MALFORMED;
	if (in[1] != SEALED_VERSION)
		return SEALED_ERR_VERSION;
	if (len != SEALED_COOKIE_MSG_LEN || in[C_DIFFICULTY] > SEALED_POW_DIFFICULTY_MAX ||
	    in[C_RESERVED] != 0)
		return SEALED_ERR_MALFORMED;
	c->version = in[1];
	c->difficulty = in[C_DIFFICULTY];
	c->nonce = in + C_NONCE;
	c->box = in + C_BOX;
	c->msg = in;
	return SEALED_OK;
}

int
sealed_cookie_open(const struct sealed_cookie_msg *c, const uint8_t cookie_key[SEALED_KEY_LEN],
                   const uint8_t mac1[SEALED_MAC_LEN], uint8_t cookie_out[SEALED_COOKIE_LEN])
{
	uint8_t ad[SEALED_MAC_LEN + C_HEADER_LEN];
	int r = -1;

	memset(cookie_out, 0, SEALED_COOKIE_LEN);
	if (c->msg == NULL)
		goto out;
	cookie_ad(c->msg, mac1, ad);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(cookie_out, NULL, NULL, c->box,
	                                               SEALED_COOKIE_BOX, ad, sizeof(ad), c->nonce,
	                                               cookie_key) != 0) {
		sodium_memzero(cookie_out, SEALED_COOKIE_LEN);
		goto out;
	}
	r = 0;
out:
	return r;
}

/* --- proof of work -------------------------------------------------------------------- */

/* The hash state after everything but the nonce, so each attempt hashes 8 bytes more. */
static void
pow_start(crypto_generichash_blake2b_state *st, const uint8_t cookie[SEALED_COOKIE_LEN],
          const uint8_t mac1[SEALED_MAC_LEN])
{
	crypto_generichash_blake2b_init(st, NULL, 0, POW_HASH_LEN);
	crypto_generichash_blake2b_update(st, (const uint8_t *)POW_LABEL, POW_LABEL_LEN);
	crypto_generichash_blake2b_update(st, cookie, SEALED_COOKIE_LEN);
	crypto_generichash_blake2b_update(st, mac1, SEALED_MAC_LEN);
}

/* Whether the nonce, appended to the started state, gives difficulty leading zero bits. */
static bool
pow_try(const crypto_generichash_blake2b_state *start, const uint8_t nonce[SEALED_POW_NONCE_LEN],
        unsigned difficulty)
{
	crypto_generichash_blake2b_state st = *start;
	uint8_t h[POW_HASH_LEN];
	unsigned whole = difficulty / 8, rest = difficulty % 8;
	bool ok;

	crypto_generichash_blake2b_update(&st, nonce, SEALED_POW_NONCE_LEN);
	crypto_generichash_blake2b_final(&st, h, sizeof(h));
	ok = sodium_is_zero(h, whole) && (rest == 0 || (h[whole] >> (8 - rest)) == 0);
	sodium_memzero(&st, sizeof(st));
	return ok;
}

int
sealed_pow_check(const uint8_t cookie[SEALED_COOKIE_LEN], const uint8_t mac1[SEALED_MAC_LEN],
                 const uint8_t nonce[SEALED_POW_NONCE_LEN], unsigned difficulty)
{
	crypto_generichash_blake2b_state st;
	int r = -1;

	if (difficulty > SEALED_POW_DIFFICULTY_MAX)
		return -1;
	pow_start(&st, cookie, mac1);
	if (pow_try(&st, nonce, difficulty))
		r = 0;
	sodium_memzero(&st, sizeof(st));
	return r;
}

int
sealed_pow_solve(const uint8_t cookie[SEALED_COOKIE_LEN], const uint8_t mac1[SEALED_MAC_LEN],
                 unsigned difficulty, uint64_t max_attempts,
                 uint8_t nonce_out[SEALED_POW_NONCE_LEN])
{
	crypto_generichash_blake2b_state st;
	uint64_t i;
	int r = -1;

	memset(nonce_out, 0, SEALED_POW_NONCE_LEN);
	if (difficulty > SEALED_POW_DIFFICULTY_MAX)
		return -1;
	pow_start(&st, cookie, mac1);
	for (i = 0; i < max_attempts; i++) {
		bytes_put64(nonce_out, i);
		if (pow_try(&st, nonce_out, difficulty)) {
			r = 0;
			break;
		}
	}
	if (r != 0)
		memset(nonce_out, 0, SEALED_POW_NONCE_LEN);
	sodium_memzero(&st, sizeof(st));
	return r;
}
