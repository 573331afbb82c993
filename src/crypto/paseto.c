#include "crypto/paseto.h"

#include <sodium.h>
#include <string.h>

#define LOCAL_HEADER  "v4.local."
#define PUBLIC_HEADER "v4.public."
#define LOCAL_HLEN    (sizeof(LOCAL_HEADER) - 1)
#define PUBLIC_HLEN   (sizeof(PUBLIC_HEADER) - 1)

#define B64_VARIANT sodium_base64_VARIANT_URLSAFE_NO_PADDING
/* Characters of unpadded base64url for n bytes, and the most bytes n characters decode to. */
#define B64_LEN(n)         (sodium_base64_ENCODED_LEN(n, B64_VARIANT) - 1)
#define B64_DECODED_MAX(n) ((n)*3 / 4)

#define LOCAL_TAGBYTES 32
#define SUBKEY_BYTES   32 /* Ek and Ak */
#define SUBNONCE_BYTES crypto_stream_xchacha20_NONCEBYTES
#define SIG_BYTES      crypto_sign_BYTES

/* Domain separation of the two subkeys, from the specification. */
#define EK_INFO "paseto-encryption-key"
#define AK_INFO "paseto-auth-key-for-aead"

/* What a token carries beside its message: nonce and tag, or the signature. */
#define LOCAL_OVERHEAD  (PASETO_V4_LOCAL_NONCEBYTES + LOCAL_TAGBYTES)
#define PUBLIC_OVERHEAD SIG_BYTES

/* The decoded payload of the longest token: v4.local, no footer. */
#define BODY_MAX B64_DECODED_MAX(PASETO_TOKEN_MAX - LOCAL_HLEN)

#define LE64_BYTES    8
#define PUBLIC_PIECES 4 /* h, m, f, i */
/*
 * PAE(h, m, f, i) of a v4.public token.  Message and footer share one token,
 * so together they are at most PASETO_MESSAGE_MAX bytes.
 */
#define PUBLIC_PAE_MAX                                                                             \
	(LE64_BYTES * (1 + PUBLIC_PIECES) + PUBLIC_HLEN + PASETO_MESSAGE_MAX + PASETO_ASSERTION_MAX)

_Static_assert(PASETO_MESSAGE_MAX == BODY_MAX - LOCAL_OVERHEAD, "PASETO_MESSAGE_MAX");
_Static_assert(PASETO_V4_LOCAL_BODY_MAX == BODY_MAX, "PASETO_V4_LOCAL_BODY_MAX");
_Static_assert(PASETO_FOOTER_MAX ==
                       B64_DECODED_MAX(PASETO_TOKEN_MAX - LOCAL_HLEN - B64_LEN(LOCAL_OVERHEAD) - 1),
               "PASETO_FOOTER_MAX");
_Static_assert(PASETO_V4_LOCAL_KEYBYTES >= crypto_generichash_KEYBYTES_MIN &&
                       PASETO_V4_LOCAL_KEYBYTES <= crypto_generichash_KEYBYTES_MAX,
               "BLAKE2b key size");
_Static_assert(SUBKEY_BYTES == crypto_stream_xchacha20_KEYBYTES, "XChaCha20 key size");
_Static_assert(SUBKEY_BYTES + SUBNONCE_BYTES <= crypto_generichash_BYTES_MAX, "BLAKE2b length");
_Static_assert(PASETO_V4_PUBLIC_SECRETKEYBYTES == crypto_sign_SECRETKEYBYTES, "Ed25519 sk");
_Static_assert(PASETO_V4_PUBLIC_PUBLICKEYBYTES == crypto_sign_PUBLICKEYBYTES, "Ed25519 pk");

/* One argument of PAE. */
struct piece {
	const uint8_t *p;
	size_t len;
};

/* A token cut at its dot, still base64url. */
struct parts {
	const char *body;
	size_t body_len;
	const char *footer; /* NULL without footer */
	size_t footer_len;
};

/* The subkeys of one v4.local nonce. */
struct local_keys {
	uint8_t ek[SUBKEY_BYTES];
	uint8_t n2[SUBNONCE_BYTES];
	uint8_t ak[SUBKEY_BYTES];
};

/* LE64 of the specification: little-endian, top bit cleared. */
static void
le64(uint8_t out[LE64_BYTES], uint64_t n)
{
	size_t k;

	n &= UINT64_MAX >> 1;
	for (k = 0; k < LE64_BYTES; k++) {
		out[k] = (uint8_t)(n & 0xff);
		n >>= 8;
	}
}

/* Writes PAE(pieces) into out[0..out_size).  Returns 0, or -1 when it does not fit. */
static int
pae_build(const struct piece *pieces, size_t count, uint8_t *out, size_t out_size, size_t *len)
{
	size_t pos = 0;
	size_t k;

	if (out_size < LE64_BYTES)
		return -1;
	le64(out, count);
	pos = LE64_BYTES;
	for (k = 0; k < count; k++) {
		if (out_size - pos < LE64_BYTES || out_size - pos - LE64_BYTES < pieces[k].len)
			return -1;
		le64(out + pos, pieces[k].len);
		pos += LE64_BYTES;
		if (pieces[k].len > 0)
			memcpy(out + pos, pieces[k].p, pieces[k].len);
		pos += pieces[k].len;
	}
	*len = pos;
	return 0;
}

static void
mac_update(crypto_generichash_state *st, const uint8_t *p, size_t len)
{
	if (len > 0)
		crypto_generichash_update(st, p, len);
}

/* Feeds PAE(pieces) into a BLAKE2b state: the v4.local MAC needs no PAE buffer. */
static void
pae_mac(crypto_generichash_state *st, const struct piece *pieces, size_t count)
{
	uint8_t len[LE64_BYTES];
	size_t k;

	le64(len, count);
	mac_update(st, len, sizeof(len));
	for (k = 0; k < count; k++) {
		le64(len, pieces[k].len);
		mac_update(st, len, sizeof(len));
		mac_update(st, pieces[k].p, pieces[k].len);
	}
}

/* Ek || n2 = BLAKE2b-448(k; EK_INFO || n) and Ak = BLAKE2b-256(k; AK_INFO || n). */
static void
local_derive(const uint8_t k[PASETO_V4_LOCAL_KEYBYTES], const uint8_t n[PASETO_V4_LOCAL_NONCEBYTES],
             struct local_keys *keys)
{
	crypto_generichash_state st;
	uint8_t tmp[SUBKEY_BYTES + SUBNONCE_BYTES];

	crypto_generichash_init(&st, k, PASETO_V4_LOCAL_KEYBYTES, sizeof(tmp));
	crypto_generichash_update(&st, (const uint8_t *)EK_INFO, sizeof(EK_INFO) - 1);
	crypto_generichash_update(&st, n, PASETO_V4_LOCAL_NONCEBYTES);
	crypto_generichash_final(&st, tmp, sizeof(tmp));
	memcpy(keys->ek, tmp, SUBKEY_BYTES);
	memcpy(keys->n2, tmp + SUBKEY_BYTES, SUBNONCE_BYTES);

	crypto_generichash_init(&st, k, PASETO_V4_LOCAL_KEYBYTES, SUBKEY_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)AK_INFO, sizeof(AK_INFO) - 1);
	crypto_generichash_update(&st, n, PASETO_V4_LOCAL_NONCEBYTES);
	crypto_generichash_final(&st, keys->ak, SUBKEY_BYTES);

	sodium_memzero(tmp, sizeof(tmp));
	sodium_memzero(&st, sizeof(st));
}

/* t = BLAKE2b-256(Ak; PAE(h, n, c, f, i)). */
static void
local_tag(const struct local_keys *keys, const uint8_t *n, const uint8_t *c, size_t clen,
          const uint8_t *f, size_t flen, const uint8_t *i, size_t ilen, uint8_t t[LOCAL_TAGBYTES])
{
	crypto_generichash_state st;
	const struct piece pieces[] = {
	        {(const uint8_t *)LOCAL_HEADER, LOCAL_HLEN},
	        {n, PASETO_V4_LOCAL_NONCEBYTES},
	        {c, clen},
	        {f, flen},
	        {i, ilen},
	};

	crypto_generichash_init(&st, keys->ak, SUBKEY_BYTES, LOCAL_TAGBYTES);
	pae_mac(&st, pieces, sizeof(pieces) / sizeof(pieces[0]));
	crypto_generichash_final(&st, t, LOCAL_TAGBYTES);
	sodium_memzero(&st, sizeof(st));
}

/*
 * Characters of header || base64url(body) [|| "." || base64url(f)]: an empty
 * footer is left out, dot included.  Callers bound blen and flen first.
 */
static size_t
token_len(size_t hlen, size_t blen, size_t flen)
{
	return hlen + B64_LEN(blen) + (flen > 0 ? 1 + B64_LEN(flen) : 0);
}

/* Writes the token; out has room for token_len() + 1 characters. */
static void
encode(const char *header, size_t hlen, const uint8_t *body, size_t blen, const uint8_t *f,
       size_t flen, char *out, size_t out_size)
{
	size_t pos = hlen;

	memcpy(out, header, hlen);
	sodium_bin2base64(out + pos, out_size - pos, body, blen, B64_VARIANT);
	pos += B64_LEN(blen);
	if (flen > 0) {
		out[pos++] = '.';
		sodium_bin2base64(out + pos, out_size - pos, f, flen, B64_VARIANT);
	}
}

/*
 * Cuts a token after header at its dot.  Fails on a wrong header, an
 * overlong token, or a dot with nothing after it: an empty footer is
 * written by leaving the dot out, so that form is not canonical.
 */
static int
split(const char *token, const char *header, size_t hlen, struct parts *p)
{
	size_t len = strnlen(token, PASETO_TOKEN_MAX + 1);
	const char *dot;

	if (len > PASETO_TOKEN_MAX || len < hlen || memcmp(token, header, hlen) != 0)
		return -1;
	p->body = token + hlen;
	dot = memchr(p->body, '.', len - hlen);
	if (dot == NULL) {
		p->body_len = len - hlen;
		p->footer = NULL;
		p->footer_len = 0;
		return 0;
	}
	p->body_len = (size_t)(dot - p->body);
	p->footer = dot + 1;
	p->footer_len = (size_t)(token + len - p->footer);
	return p->footer_len > 0 ? 0 : -1;
}

/*
 * Whether c is in the base64url alphabet.  libsodium 1.0.18 takes every byte
 * from 0x80 up for '_', so a token could be rewritten without changing what
 * it decodes to; the alphabet is checked here first.  Branching on token text
 * leaks nothing: a token is not secret, only what v4.local encrypts in it.
 */
static int
b64url_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/*
 * Strict base64url: only the alphabet (so no padding and no second dot),
 * and libsodium rejects an impossible length and non-zero trailing bits,
 * which is what canonical decoding requires.
 */
static int
decode(const char *s, size_t len, uint8_t *out, size_t out_size, size_t *out_len)
{
	size_t k;

	*out_len = 0;
	if (len == 0)
		return 0;
	for (k = 0; k < len; k++)
		if (!b64url_char(s[k]))
			return -1;
	if (sodium_base642bin(out, out_size, s, len, NULL, out_len, NULL, B64_VARIANT) != 0) {
		*out_len = 0;
		return -1;
	}
	return 0;
}

/* Decodes the payload, at least min bytes, and the footer of a token already split. */
static int
decode_parts(const struct parts *p, size_t min, uint8_t body[BODY_MAX], size_t *blen,
             uint8_t foot[PASETO_FOOTER_MAX], size_t *flen)
{
	if (decode(p->body, p->body_len, body, BODY_MAX, blen) != 0 || *blen < min)
		return -1;
	return decode(p->footer, p->footer_len, foot, PASETO_FOOTER_MAX, flen);
}

int
paseto_v4_public_sign(const uint8_t sk[PASETO_V4_PUBLIC_SECRETKEYBYTES], const uint8_t *m,
                      size_t mlen, const uint8_t *f, size_t flen, const uint8_t *i, size_t ilen,
                      char *out, size_t out_size)
{
	uint8_t body[BODY_MAX];
	uint8_t pae[PUBLIC_PAE_MAX];
	size_t pae_len, need;
	const struct piece pieces[PUBLIC_PIECES] = {
	        {(const uint8_t *)PUBLIC_HEADER, PUBLIC_HLEN},
	        {m, mlen},
	        {f, flen},
	        {i, ilen},
	};
	int r = -1;

	if (out_size > 0)
		out[0] = '\0';
	if (mlen > PASETO_MESSAGE_MAX || flen > PASETO_FOOTER_MAX || ilen > PASETO_ASSERTION_MAX)
		goto out;
	need = token_len(PUBLIC_HLEN, mlen + PUBLIC_OVERHEAD, flen);
	if (need > PASETO_TOKEN_MAX || need >= out_size)
		goto out;
	if (pae_build(pieces, PUBLIC_PIECES, pae, sizeof(pae), &pae_len) != 0)
		goto out;
	if (mlen > 0)
		memcpy(body, m, mlen);
	if (crypto_sign_detached(body + mlen, NULL, pae, pae_len, sk) != 0)
		goto out;
	encode(PUBLIC_HEADER, PUBLIC_HLEN, body, mlen + PUBLIC_OVERHEAD, f, flen, out, out_size);
	r = 0;
out:
	return r;
}

int
paseto_v4_public_verify(const uint8_t pk[PASETO_V4_PUBLIC_PUBLICKEYBYTES], const char *token,
                        const uint8_t *i, size_t ilen, uint8_t *m, size_t m_size, size_t *mlen,
                        uint8_t *f, size_t f_size, size_t *flen)
{
	uint8_t body[BODY_MAX];
	uint8_t foot[PASETO_FOOTER_MAX];
	uint8_t pae[PUBLIC_PAE_MAX];
	struct parts parts;
	size_t blen, fl, ml, pae_len;
	struct piece pieces[PUBLIC_PIECES];
	int r = -1;

	*mlen = 0;
	*flen = 0;
	if (ilen > PASETO_ASSERTION_MAX || split(token, PUBLIC_HEADER, PUBLIC_HLEN, &parts) != 0)
		goto out;
	if (decode_parts(&parts, PUBLIC_OVERHEAD, body, &blen, foot, &fl) != 0)
		goto out;
	ml = blen - PUBLIC_OVERHEAD;
	if (ml > m_size || fl > f_size)
		goto out;
	pieces[0] = (struct piece){(const uint8_t *)PUBLIC_HEADER, PUBLIC_HLEN};
	pieces[1] = (struct piece){body, ml};
	pieces[2] = (struct piece){foot, fl};
	pieces[3] = (struct piece){i, ilen};
	if (pae_build(pieces, PUBLIC_PIECES, pae, sizeof(pae), &pae_len) != 0)
		goto out;
	if (crypto_sign_verify_detached(body + ml, pae, pae_len, pk) != 0)
		goto out;
	if (ml > 0)
		memcpy(m, body, ml);
	if (fl > 0)
		memcpy(f, foot, fl);
	*mlen = ml;
	*flen = fl;
	r = 0;
out:
	return r;
}

int
paseto_v4_local_encrypt(const uint8_t k[PASETO_V4_LOCAL_KEYBYTES], const uint8_t *nonce,
                        const uint8_t *m, size_t mlen, const uint8_t *f, size_t flen,
                        const uint8_t *i, size_t ilen, char *out, size_t out_size)
{
	uint8_t body[BODY_MAX];
	struct local_keys keys;
	uint8_t *n = body;
	uint8_t *c = body + PASETO_V4_LOCAL_NONCEBYTES;
	size_t need;
	int r = -1;

	if (out_size > 0)
		out[0] = '\0';
	if (mlen > PASETO_MESSAGE_MAX || flen > PASETO_FOOTER_MAX || ilen > PASETO_ASSERTION_MAX)
		goto out;
	need = token_len(LOCAL_HLEN, mlen + LOCAL_OVERHEAD, flen);
	if (need > PASETO_TOKEN_MAX || need >= out_size)
		goto out;
	if (nonce != NULL)
		memcpy(n, nonce, PASETO_V4_LOCAL_NONCEBYTES);
	else
		randombytes_buf(n, PASETO_V4_LOCAL_NONCEBYTES);
	local_derive(k, n, &keys);
	if (mlen > 0)
		crypto_stream_xchacha20_xor(c, m, mlen, keys.n2, keys.ek);
	local_tag(&keys, n, c, mlen, f, flen, i, ilen, c + mlen);
	encode(LOCAL_HEADER, LOCAL_HLEN, body, mlen + LOCAL_OVERHEAD, f, flen, out, out_size);
	r = 0;
out:
	sodium_memzero(&keys, sizeof(keys));
	return r;
}

int
paseto_v4_local_unpack(const char *token, uint8_t *body, size_t body_size, size_t *blen, uint8_t *f,
                       size_t f_size, size_t *flen)
{
	uint8_t b[BODY_MAX], foot[PASETO_FOOTER_MAX];
	struct parts parts;
	size_t bl, fl;

	*blen = 0;
	*flen = 0;
	if (split(token, LOCAL_HEADER, LOCAL_HLEN, &parts) != 0 ||
	    decode_parts(&parts, LOCAL_OVERHEAD, b, &bl, foot, &fl) != 0 || bl > body_size ||
	    fl > f_size)
		return -1;
	memcpy(body, b, bl);
	if (fl > 0)
		memcpy(f, foot, fl);
	*blen = bl;
	*flen = fl;
	return 0;
}

int
paseto_v4_local_open_body(const uint8_t k[PASETO_V4_LOCAL_KEYBYTES], const uint8_t *body,
                          size_t blen, const uint8_t *f, size_t flen, const uint8_t *i, size_t ilen,
                          uint8_t *m, size_t m_size, size_t *mlen)
{
	uint8_t t2[LOCAL_TAGBYTES];
	struct local_keys keys;
	const uint8_t *n = body, *c = body + PASETO_V4_LOCAL_NONCEBYTES;
	size_t cl;
	int r = -1;

	*mlen = 0;
	if (blen < LOCAL_OVERHEAD || blen > BODY_MAX || flen > PASETO_FOOTER_MAX ||
	    ilen > PASETO_ASSERTION_MAX)
		return -1;
	cl = blen - LOCAL_OVERHEAD;
	if (cl > m_size)
		return -1;
	local_derive(k, n, &keys);
	local_tag(&keys, n, c, cl, f, flen, i, ilen, t2);
	if (sodium_memcmp(t2, c + cl, LOCAL_TAGBYTES) != 0)
		goto out;
	if (cl > 0)
		crypto_stream_xchacha20_xor(m, c, cl, keys.n2, keys.ek);
	*mlen = cl;
	r = 0;
out:
	sodium_memzero(&keys, sizeof(keys));
	sodium_memzero(t2, sizeof(t2));
	return r;
}

int
paseto_v4_local_decrypt(const uint8_t k[PASETO_V4_LOCAL_KEYBYTES], const char *token,
                        const uint8_t *i, size_t ilen, uint8_t *m, size_t m_size, size_t *mlen,
                        uint8_t *f, size_t f_size, size_t *flen)
{
	uint8_t body[BODY_MAX], foot[PASETO_FOOTER_MAX];
	size_t blen, fl;

	*mlen = 0;
	*flen = 0;
	if (paseto_v4_local_unpack(token, body, sizeof(body), &blen, foot, sizeof(foot), &fl) !=
	            0 ||
	    fl > f_size ||
	    paseto_v4_local_open_body(k, body, blen, foot, fl, i, ilen, m, m_size, mlen) != 0)
		return -1;
	if (fl > 0)
		memcpy(f, foot, fl);
	*flen = fl;
	return 0;
}

int
paseto_footer(const char *token, uint8_t *f, size_t f_size, size_t *flen)
{
	uint8_t foot[PASETO_FOOTER_MAX];
	struct parts parts;
	size_t fl;
	int r = -1;

	*flen = 0;
	if (split(token, LOCAL_HEADER, LOCAL_HLEN, &parts) != 0 &&
	    split(token, PUBLIC_HEADER, PUBLIC_HLEN, &parts) != 0)
		goto out;
	if (decode(parts.footer, parts.footer_len, foot, sizeof(foot), &fl) != 0 || fl > f_size)
		goto out;
	if (fl > 0)
		memcpy(f, foot, fl);
	*flen = fl;
	r = 0;
out:
	return r;
}
