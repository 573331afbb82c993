#include "crypto/noise.h"

#include <sodium.h>
#include <string.h>

#include "common/util.h"

#define NAME_PREFIX   "Noise_"
#define NAME_SUITE    "_25519_ChaChaPoly_BLAKE2b"
#define HMAC_BLOCKLEN 128 /* BLAKE2b's block size, the HMAC pad length */
#define NONCE_LEN     crypto_aead_chacha20poly1305_IETF_NPUBBYTES
#define NONCE_ZEROS   4          /* leading zero bytes before the 64-bit counter */
#define NONCE_MAX     UINT64_MAX /* reserved by the spec: never used to encrypt */

/* Pattern tokens.  A psk token carries its modifier number: T_PSK + N for pskN. */
enum token { T_NONE, T_E, T_S, T_EE, T_ES, T_SE, T_SS, T_PSK };

/*
 * Handshake patterns copied in the spec's notation (section 7): pre-messages of
 * the initiator ("-> ...") and the responder ("<- ..."), then the messages,
 * alternating from the initiator.  Parsed by pattern_tokens().
 */
struct pattern {
	const char *name;
	const char *pre_i;
	const char *pre_r;
	const char *msgs[NOISE_MAX_MESSAGES];
};

static const struct pattern patterns[] = {
        /* 7.4 one-way */
        {"N", "", "s", {"e, es"}},
        {"K", "s", "s", {"e, es, ss"}},
        {"X", "", "s", {"e, es, s, ss"}},
        /* 7.5 interactive, fundamental */
        {"NN", "", "", {"e", "e, ee"}},
        {"NK", "", "s", {"e, es", "e, ee"}},
        {"NX", "", "", {"e", "e, ee, s, es"}},
        {"XN", "", "", {"e", "e, ee", "s, se"}},
        {"XK", "", "s", {"e, es", "e, ee", "s, se"}},
        {"XX", "", "", {"e", "e, ee, s, es", "s, se"}},
        {"KN", "s", "", {"e", "e, ee, se"}},
        {"KK", "s", "s", {"e, es, ss", "e, ee, se"}},
        {"KX", "s", "", {"e", "e, ee, se, s, es"}},
        {"IN", "", "", {"e, s", "e, ee, se"}},
        {"IK", "", "s", {"e, es, s, ss", "e, ee, se"}},
        {"IX", "", "", {"e, s", "e, ee, se, s, es"}},
        /* 7.6 interactive, deferred */
        {"NK1", "", "s", {"e", "e, ee, es"}},
        {"NX1", "", "", {"e", "e, ee, s", "es"}},
        {"X1N", "", "", {"e", "e, ee", "s", "se"}},
        {"X1K", "", "s", {"e, es", "e, ee", "s", "se"}},
        {"XK1", "", "s", {"e", "e, ee, es", "s, se"}},
        {"X1K1", "", "s", {"e", "e, ee, es", "s", "se"}},
        {"X1X", "", "", {"e", "e, ee, s, es", "s", "se"}},
        {"XX1", "", "", {"e", "e, ee, s", "es, s, se"}},
        {"X1X1", "", "", {"e", "e, ee, s", "es, s", "se"}},
        {"K1N", "s", "", {"e", "e, ee", "se"}},
        {"K1K", "s", "s", {"e, es", "e, ee", "se"}},
        {"KK1", "s", "s", {"e", "e, ee, se, es"}},
        {"K1K1", "s", "s", {"e", "e, ee, es", "se"}},
        {"K1X", "s", "", {"e", "e, ee, s, es", "se"}},
        {"KX1", "s", "", {"e", "e, ee, se, s", "es"}},
        {"K1X1", "s", "", {"e", "e, ee, s", "se, es"}},
        {"I1N", "", "", {"e, s", "e, ee", "se"}},
        {"I1K", "", "s", {"e, es, s", "e, ee", "se"}},
        {"IK1", "", "s", {"e, s", "e, ee, se, es"}},
        {"I1K1", "", "s", {"e, s", "e, ee, es", "se"}},
        {"I1X", "", "", {"e, s", "e, ee, s, es", "se"}},
        {"IX1", "", "", {"e, s", "e, ee, se, s", "es"}},
        {"I1X1", "", "", {"e, s", "e, ee, s", "se, es"}},
};

static const struct {
	const char *word;
	enum token tok;
} token_words[] = {
        {"e", T_E}, {"s", T_S}, {"ee", T_EE}, {"es", T_ES}, {"se", T_SE}, {"ss", T_SS},
};

/* --- hash, HMAC, HKDF ------------------------------------------------------ */

/* HMAC-BLAKE2b (RFC 2104).  Every key Noise passes is HASHLEN bytes, below the block size. */
static void
hmac(uint8_t out[NOISE_HASHLEN], const uint8_t key[NOISE_HASHLEN], const uint8_t *d1, size_t l1,
     const uint8_t *d2, size_t l2)
{
	crypto_generichash_blake2b_state st;
	uint8_t pad[HMAC_BLOCKLEN];
	uint8_t inner[NOISE_HASHLEN];
	size_t i;

	memset(pad, 0x36, sizeof(pad));
	for (i = 0; i < NOISE_HASHLEN; i++)
		pad[i] ^= key[i];
	crypto_generichash_blake2b_init(&st, NULL, 0, NOISE_HASHLEN);
	crypto_generichash_blake2b_update(&st, pad, sizeof(pad));
	if (l1 > 0)
		crypto_generichash_blake2b_update(&st, d1, l1);
	if (l2 > 0)
		crypto_generichash_blake2b_update(&st, d2, l2);
	crypto_generichash_blake2b_final(&st, inner, sizeof(inner));

	memset(pad, 0x5c, sizeof(pad));
	for (i = 0; i < NOISE_HASHLEN; i++)
		pad[i] ^= key[i];
	crypto_generichash_blake2b_init(&st, NULL, 0, NOISE_HASHLEN);
	crypto_generichash_blake2b_update(&st, pad, sizeof(pad));
	crypto_generichash_blake2b_update(&st, inner, sizeof(inner));
	crypto_generichash_blake2b_final(&st, out, NOISE_HASHLEN);

	sodium_memzero(&st, sizeof(st));
	sodium_memzero(pad, sizeof(pad));
	sodium_memzero(inner, sizeof(inner));
}

/*
 * HKDF as the spec defines it (section 4.3): two outputs, or three when out3
 * is not NULL.  Outputs may alias ck, which is read first.
 */
static void
hkdf(const uint8_t ck[NOISE_HASHLEN], const uint8_t *ikm, size_t ikm_len,
     uint8_t out1[NOISE_HASHLEN], uint8_t out2[NOISE_HASHLEN], uint8_t *out3)
{
	static const uint8_t one = 0x01, two = 0x02, three = 0x03;
	uint8_t temp_key[NOISE_HASHLEN];

	hmac(temp_key, ck, ikm, ikm_len, NULL, 0);
	hmac(out1, temp_key, &one, 1, NULL, 0);
	hmac(out2, temp_key, out1, NOISE_HASHLEN, &two, 1);
	if (out3 != NULL)
		hmac(out3, temp_key, out2, NOISE_HASHLEN, &three, 1);
	sodium_memzero(temp_key, sizeof(temp_key));
}

/* --- CipherState ----------------------------------------------------------- */

static void
cipher_init_key(struct noise_cipher *c, const uint8_t k[NOISE_KEYLEN])
{
	memcpy(c->k, k, NOISE_KEYLEN);
	c->n = 0;
	c->has_key = true;
}

static void
make_nonce(uint8_t nonce[NONCE_LEN], uint64_t n)
{
	size_t i;

	memset(nonce, 0, NONCE_ZEROS);
	for (i = 0; i < sizeof(n); i++)
		nonce[NONCE_ZEROS + i] = (uint8_t)(n >> (8 * i));
}

/* EncryptWithAd() for a keyed cipher: out gets len + TAGLEN bytes. */
static int
cipher_encrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *pt,
               size_t len, uint8_t *out)
{
	uint8_t nonce[NONCE_LEN];

	if (!c->has_key || c->n == NONCE_MAX)
		return -1;
	make_nonce(nonce, c->n);
	crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, pt, len, ad, adlen, NULL, nonce, c->k);
	c->n++;
	return 0;
}

/* DecryptWithAd() for a keyed cipher: out gets len - TAGLEN bytes; the nonce moves only on success.
 */
static int
cipher_decrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *ct,
               size_t len, uint8_t *out)
{
	uint8_t nonce[NONCE_LEN];

	if (!c->has_key || c->n == NONCE_MAX || len < NOISE_TAGLEN)
		return -1;
	make_nonce(nonce, c->n);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, ct, len, ad, adlen, nonce,
	                                              c->k) != 0)
		return -1;
	c->n++;
	return 0;
}

/* --- SymmetricState -------------------------------------------------------- */

static void
mix_hash(struct noise_symmetric *ss, const uint8_t *data, size_t len)
{
	crypto_generichash_blake2b_state st;

	crypto_generichash_blake2b_init(&st, NULL, 0, NOISE_HASHLEN);
	crypto_generichash_blake2b_update(&st, ss->h, NOISE_HASHLEN);
	if (len > 0)
		crypto_generichash_blake2b_update(&st, data, len);
	crypto_generichash_blake2b_final(&st, ss->h, NOISE_HASHLEN);
	sodium_memzero(&st, sizeof(st));
}

static void
mix_key(struct noise_symmetric *ss, const uint8_t *ikm, size_t len)
{
	uint8_t temp_k[NOISE_HASHLEN];

	hkdf(ss->ck, ikm, len, ss->ck, temp_k, NULL);
	/* HASHLEN is 64: the cipher key is the first KEYLEN bytes. */
	cipher_init_key(&ss->cs, temp_k);
	sodium_memzero(temp_k, sizeof(temp_k));
}

static void
mix_key_and_hash(struct noise_symmetric *ss, const uint8_t *ikm, size_t len)
{
	uint8_t temp_h[NOISE_HASHLEN], temp_k[NOISE_HASHLEN];

	hkdf(ss->ck, ikm, len, ss->ck, temp_h, temp_k);
	mix_hash(ss, temp_h, sizeof(temp_h));
	cipher_init_key(&ss->cs, temp_k);
	sodium_memzero(temp_h, sizeof(temp_h));
	sodium_memzero(temp_k, sizeof(temp_k));
}

/* Before the first key, a handshake field travels in clear and is only hashed. */
static size_t
sealed_len(const struct noise_symmetric *ss, size_t len)
{
	return len + (ss->cs.has_key ? NOISE_TAGLEN : 0);
}

typedef int (*cipher_op)(struct noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *in,
                         size_t len, uint8_t *out);

/* The cipher half of EncryptAndHash() and DecryptAndHash(): h is the associated data. */
static int
crypt_with_h(struct noise_symmetric *ss, cipher_op op, const uint8_t *in, size_t len, uint8_t *out)
{
	if (ss->cs.has_key)
		return op(&ss->cs, ss->h, NOISE_HASHLEN, in, len, out);
	if (len > 0)
		memcpy(out, in, len);
	return 0;
}

/* EncryptAndHash(): out gets sealed_len(len) bytes and must not overlap pt. */
static int
encrypt_and_hash(struct noise_symmetric *ss, const uint8_t *pt, size_t len, uint8_t *out)
{
	size_t out_len = sealed_len(ss, len);

	if (crypt_with_h(ss, cipher_encrypt, pt, len, out) != 0)
		return -1;
	mix_hash(ss, out, out_len);
	return 0;
}

/* DecryptAndHash(): ct is len bytes, out gets len - TAGLEN (or len) and must not overlap ct. */
static int
decrypt_and_hash(struct noise_symmetric *ss, const uint8_t *ct, size_t len, uint8_t *out)
{
	if (crypt_with_h(ss, cipher_decrypt, ct, len, out) != 0)
		return -1;
	mix_hash(ss, ct, len);
	return 0;
}

/* InitializeSymmetric(): a name longer than HASHLEN is hashed, a shorter one zero-padded. */
static void
symmetric_init(struct noise_symmetric *ss, const char *name, size_t len)
{
	memset(ss, 0, sizeof(*ss));
	if (len <= NOISE_HASHLEN)
		memcpy(ss->h, name, len);
	else
		crypto_generichash_blake2b(ss->h, NOISE_HASHLEN, (const uint8_t *)name, len, NULL,
		                           0);
	memcpy(ss->ck, ss->h, NOISE_HASHLEN);
}

/* --- patterns -------------------------------------------------------------- */

/* Parses "e, es, s, ss" into tokens, appending to out[*n]; -1 if malformed or too long. */
static int
pattern_tokens(const char *spec, uint8_t *out, unsigned *n)
{
	const char *p = spec;
	size_t wlen, i;

	while (*p != '\0') {
		wlen = strcspn(p, ",");
		for (i = 0; i < ARRAY_LEN(token_words); i++)
			if (strlen(token_words[i].word) == wlen &&
			    memcmp(token_words[i].word, p, wlen) == 0)
				break;
		if (i == ARRAY_LEN(token_words) || *n == NOISE_MAX_TOKENS)
			return -1;
		out[(*n)++] = (uint8_t)token_words[i].tok;
		p += wlen;
		if (*p == ',') {
			if (p[1] != ' ' || p[2] == '\0')
				return -1;
			p += 2;
		}
	}
	return 0;
}

static bool
has_token(const uint8_t *toks, unsigned n, enum token t)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (toks[i] == t)
			return true;
	return false;
}

/*
 * Splits "Noise_<pattern><modifiers>_25519_ChaChaPoly_BLAKE2b" into the pattern
 * and a bit mask of its psk modifiers ("psk0+psk2" sets bits 0 and 2).
 */
static int
parse_name(const char *name, size_t len, const struct pattern **pat, unsigned *psks)
{
	const size_t prefix_len = strlen(NAME_PREFIX), suite_len = strlen(NAME_SUITE);
	const char *p, *end;
	unsigned msgs, bit;
	size_t i, base_len;

	*pat = NULL;
	*psks = 0;
	if (len <= prefix_len + suite_len || memcmp(name, NAME_PREFIX, prefix_len) != 0 ||
	    memcmp(name + len - suite_len, NAME_SUITE, suite_len) != 0)
		return -1;
	p = name + prefix_len;
	end = name + len - suite_len;

	/* Pattern names are capitals and digits; modifiers start with a lower-case letter. */
	for (base_len = 0; p + base_len < end; base_len++)
		if (!((p[base_len] >= 'A' && p[base_len] <= 'Z') ||
		      (p[base_len] >= '0' && p[base_len] <= '9')))
			break;
	for (i = 0; i < ARRAY_LEN(patterns); i++)
		if (strlen(patterns[i].name) == base_len &&
		    memcmp(patterns[i].name, p, base_len) == 0)
			break;
	if (i == ARRAY_LEN(patterns))
		return -1;
	for (msgs = 0; msgs < NOISE_MAX_MESSAGES && patterns[i].msgs[msgs] != NULL; msgs++)
		;

	/* Only pskN with one digit, N at most the number of messages, each once. */
	for (p += base_len; p < end;) {
		if (end - p < 4 || memcmp(p, "psk", 3) != 0 || p[3] < '0' || p[3] > '9')
			return -1;
		bit = (unsigned)(p[3] - '0');
		if (bit > msgs || (*psks & (1U << bit)) != 0)
			return -1;
		*psks |= 1U << bit;
		p += 4;
		if (p < end && (*p != '+' || ++p == end))
			return -1;
	}
	*pat = &patterns[i];
	return 0;
}

/* Fills the token tables of hs from the pattern and its psk modifiers (section 9.2). */
static int
build_tokens(struct noise_handshake *hs, const struct pattern *pat)
{
	unsigned m, n;

	for (m = 0; m < NOISE_MAX_MESSAGES && pat->msgs[m] != NULL; m++) {
		n = 0;
		if (m == 0 && (hs->psk_needed & 1U) != 0)
			hs->tokens[m][n++] = T_PSK;
		if (pattern_tokens(pat->msgs[m], hs->tokens[m], &n) != 0)
			return -1;
		if ((hs->psk_needed & (1U << (m + 1))) != 0) {
			if (n == NOISE_MAX_TOKENS)
				return -1;
			hs->tokens[m][n++] = (uint8_t)(T_PSK + m + 1);
		}
		hs->ntokens[m] = (uint8_t)n;
	}
	hs->nmessages = m;
	/* The one-way patterns are exactly those of one message. */
	hs->one_way = m == 1;
	return 0;
}

/* Whether role sends the "s" token in some message of the pattern. */
static bool
sends_static(const struct noise_handshake *hs, enum noise_role role)
{
	unsigned m;

	for (m = role == NOISE_INITIATOR ? 0 : 1; m < hs->nmessages; m += 2)
		if (has_token(hs->tokens[m], hs->ntokens[m], T_S))
			return true;
	return false;
}

/* --- HandshakeState -------------------------------------------------------- */

static bool
our_turn(const struct noise_handshake *hs)
{
	return (hs->next % 2 == 0) == (hs->role == NOISE_INITIATOR);
}

static bool
psk_mode(const struct noise_handshake *hs)
{
	return hs->psk_needed != 0;
}

/*
 * The bytes of the next message besides its payload, given the keys that its
 * tokens will set: lengths can then be checked before any Diffie-Hellman.
 */
static size_t
message_overhead(const struct noise_handshake *hs)
{
	const uint8_t *toks = hs->tokens[hs->next];
	bool keyed = hs->ss.cs.has_key;
	size_t n = 0;
	unsigned i;

	for (i = 0; i < hs->ntokens[hs->next]; i++) {
		switch (toks[i]) {
		case T_E:
			n += NOISE_DHLEN;
			if (psk_mode(hs))
				keyed = true;
			break;
		case T_S:
			n += NOISE_DHLEN + (keyed ? NOISE_TAGLEN : 0);
			break;
		default:
			/* ee, es, se, ss and psk all call MixKey. */
			keyed = true;
			break;
		}
	}
	return n + (keyed ? NOISE_TAGLEN : 0);
}

/*
 * The Diffie-Hellman of ee, es, se or ss.  The letters name the initiator's key
 * then the responder's, so each side picks its own key for one letter and the
 * peer's key for the other.  An all-zero result (a low-order point) fails.
 */
static int
mix_dh(struct noise_handshake *hs, enum token t)
{
	static const struct {
		enum token tok;
		char ini, rsp;
	} dh[] = {{T_EE, 'e', 'e'}, {T_ES, 'e', 's'}, {T_SE, 's', 'e'}, {T_SS, 's', 's'}};
	uint8_t shared[NOISE_DHLEN];
	const uint8_t *priv, *pub;
	char mine, theirs;
	size_t i;
	int r = -1;

	for (i = 0; i < ARRAY_LEN(dh) && dh[i].tok != t; i++)
		;
	if (i == ARRAY_LEN(dh))
		goto out;
	mine = hs->role == NOISE_INITIATOR ? dh[i].ini : dh[i].rsp;
	theirs = hs->role == NOISE_INITIATOR ? dh[i].rsp : dh[i].ini;
	if ((mine == 'e' && !hs->has_e) || (mine == 's' && !hs->has_s) ||
	    (theirs == 'e' && !hs->has_re) || (theirs == 's' && !hs->has_rs))
		goto out;
	priv = mine == 'e' ? hs->e_priv : hs->s_priv;
	pub = theirs == 'e' ? hs->re : hs->rs;
	if (mine == 's' && hs->s_ref.dh != NULL) {
		if (hs->s_ref.dh(hs->s_ref.ctx, pub, theirs == 's', shared) != 0 ||
		    sodium_is_zero(shared, sizeof(shared)))
			goto out;
	} else if (crypto_scalarmult_curve25519(shared, priv, pub) != 0) {
		goto out;
	}
	mix_key(&hs->ss, shared, sizeof(shared));
	r = 0;
out:
	sodium_memzero(shared, sizeof(shared));
	return r;
}

static int
mix_psk(struct noise_handshake *hs, unsigned index)
{
	if (index >= NOISE_MAX_PSKS || (hs->psk_set & (1U << index)) == 0)
		return -1;
	mix_key_and_hash(&hs->ss, hs->psk[index], NOISE_PSKLEN);
	return 0;
}

/* Whether the next message may be processed at all; the same checks for both directions. */
static bool
message_allowed(const struct noise_handshake *hs, bool writing)
{
	return hs->state == NOISE_HS_RUNNING && our_turn(hs) == writing &&
	       (hs->psk_set & hs->psk_needed) == hs->psk_needed;
}

/* A token that means the same to the writer and the reader: a DH or a psk. */
static int
mix_token(struct noise_handshake *hs, uint8_t tok)
{
	switch (tok) {
	case T_EE:
	case T_ES:
	case T_SE:
	case T_SS:
		return mix_dh(hs, tok);
	default:
		return mix_psk(hs, tok - T_PSK);
	}
}

static void
message_done(struct noise_handshake *hs)
{
	if (++hs->next == hs->nmessages)
		hs->state = NOISE_HS_DONE;
}

static int
write_ephemeral(struct noise_handshake *hs, uint8_t *out)
{
	if (!hs->has_e) {
		randombytes_buf(hs->e_priv, NOISE_DHLEN);
		if (crypto_scalarmult_curve25519_base(hs->e_pub, hs->e_priv) != 0)
			return -1;
		hs->has_e = true;
	}
	memcpy(out, hs->e_pub, NOISE_DHLEN);
	mix_hash(&hs->ss, hs->e_pub, NOISE_DHLEN);
	/* With a psk, e also keys the cipher, so a psk handshake never reuses a nonce. */
	if (psk_mode(hs))
		mix_key(&hs->ss, hs->e_pub, NOISE_DHLEN);
	return 0;
}

int
noise_write_message(struct noise_handshake *hs, const uint8_t *payload, size_t len, uint8_t *out,
                    size_t out_size, size_t *out_len)
{
	const uint8_t *toks;
	size_t overhead, pos = 0;
	unsigned i;
	int r = -1;

	*out_len = 0;
	if ((payload == NULL && len > 0) || out == NULL || !message_allowed(hs, true))
		goto out;
	overhead = message_overhead(hs);
	if (len > NOISE_MAX_MESSAGE - overhead || overhead + len > out_size)
		goto out;
	toks = hs->tokens[hs->next];
	for (i = 0; i < hs->ntokens[hs->next]; i++) {
		switch (toks[i]) {
		case T_E:
			if (write_ephemeral(hs, out + pos) != 0)
				goto out;
			pos += NOISE_DHLEN;
			break;
		case T_S:
			if (!hs->has_s)
				goto out;
			if (encrypt_and_hash(&hs->ss, hs->s_pub, NOISE_DHLEN, out + pos) != 0)
				goto out;
			pos += sealed_len(&hs->ss, NOISE_DHLEN);
			break;
		default:
			if (mix_token(hs, toks[i]) != 0)
				goto out;
			break;
		}
	}
	if (encrypt_and_hash(&hs->ss, payload, len, out + pos) != 0)
		goto out;
	pos += sealed_len(&hs->ss, len);
	message_done(hs);
	*out_len = pos;
	r = 0;
out:
	if (r != 0) {
		if (pos > 0)
			sodium_memzero(out, pos);
		noise_handshake_wipe(hs);
	}
	return r;
}

int
noise_read_message(struct noise_handshake *hs, const uint8_t *msg, size_t len, uint8_t *payload,
                   size_t payload_size, size_t *payload_len)
{
	uint8_t rs[NOISE_DHLEN + NOISE_TAGLEN];
	uint8_t empty[1]; /* the payload's destination when the caller gave none */
	uint8_t *dst = payload != NULL ? payload : empty;
	const uint8_t *toks;
	size_t overhead, want = 0, n, pos = 0;
	unsigned i;
	int r = -1;

	*payload_len = 0;
	if ((msg == NULL && len > 0) || (payload == NULL && payload_size > 0) ||
	    !message_allowed(hs, false))
		goto out;
	overhead = message_overhead(hs);
	if (len > NOISE_MAX_MESSAGE || len < overhead || len - overhead > payload_size)
		goto out;
	want = len - overhead;
	toks = hs->tokens[hs->next];
	for (i = 0; i < hs->ntokens[hs->next]; i++) {
		switch (toks[i]) {
		case T_E:
			if (hs->has_re)
				goto out;
			memcpy(hs->re, msg + pos, NOISE_DHLEN);
			hs->has_re = true;
			mix_hash(&hs->ss, hs->re, NOISE_DHLEN);
			if (psk_mode(hs))
				mix_key(&hs->ss, hs->re, NOISE_DHLEN);
			pos += NOISE_DHLEN;
			break;
		case T_S:
			if (hs->has_rs)
				goto out;
			n = sealed_len(&hs->ss, NOISE_DHLEN);
			if (decrypt_and_hash(&hs->ss, msg + pos, n, rs) != 0)
				goto out;
			memcpy(hs->rs, rs, NOISE_DHLEN);
			hs->has_rs = true;
			pos += n;
			break;
		default:
			if (mix_token(hs, toks[i]) != 0)
				goto out;
			break;
		}
	}
	if (decrypt_and_hash(&hs->ss, msg + pos, len - pos, dst) != 0)
		goto out;
	message_done(hs);
	*payload_len = want;
	r = 0;
out:
	if (r != 0) {
		if (payload != NULL && want > 0)
			sodium_memzero(payload, want);
		noise_handshake_wipe(hs);
	}
	sodium_memzero(rs, sizeof(rs));
	return r;
}

/* Our static key, when there is one: its private half here (s_priv), or a reference. */
static int
set_static(struct noise_handshake *hs, const uint8_t *s_priv, const struct noise_static_ref *ref)
{
	if (ref != NULL) {
		if (ref->dh == NULL)
			return -1;
		hs->s_ref = *ref;
		memcpy(hs->s_pub, ref->pub, NOISE_DHLEN);
	} else {
		memcpy(hs->s_priv, s_priv, NOISE_DHLEN);
		if (crypto_scalarmult_curve25519_base(hs->s_pub, hs->s_priv) != 0)
			return -1;
	}
	hs->has_s = true;
	return 0;
}

static int
handshake_init(struct noise_handshake *hs, const char *protocol_name, enum noise_role role,
               const uint8_t *prologue, size_t prologue_len, const uint8_t *s_priv,
               const struct noise_static_ref *s_ref, const uint8_t *rs)
{
	bool have_s = s_priv != NULL || s_ref != NULL;
	const struct pattern *pat;
	uint8_t pre_i[NOISE_MAX_TOKENS], pre_r[NOISE_MAX_TOKENS];
	unsigned npre_i = 0, npre_r = 0;
	bool init = role == NOISE_INITIATOR;
	bool pre_s_i, pre_s_r, need_s, need_rs;
	size_t name_len;
	int r = -1;

	memset(hs, 0, sizeof(*hs));
	if (protocol_name == NULL || (role != NOISE_INITIATOR && role != NOISE_RESPONDER) ||
	    (prologue == NULL && prologue_len > 0))
		goto out;
	name_len = strnlen(protocol_name, NOISE_MAX_NAME + 1);
	if (name_len > NOISE_MAX_NAME ||
	    parse_name(protocol_name, name_len, &pat, &hs->psk_needed) != 0)
		goto out;
	hs->role = role;
	if (build_tokens(hs, pat) != 0)
		goto out;
	/* Pre-messages in these patterns hold at most "s". */
	if (pattern_tokens(pat->pre_i, pre_i, &npre_i) != 0 ||
	    pattern_tokens(pat->pre_r, pre_r, &npre_r) != 0)
		goto out;
	pre_s_i = npre_i == 1 && pre_i[0] == T_S;
	pre_s_r = npre_r == 1 && pre_r[0] == T_S;
	if (npre_i != (pre_s_i ? 1U : 0U) || npre_r != (pre_s_r ? 1U : 0U))
		goto out;

	/*
	 * A static key the pattern does not use is refused, not ignored.  One
	 * the pattern sends (not a pre-message) may come later, through
	 * noise_handshake_set_static, before it is needed.
	 */
	need_s = (init ? pre_s_i : pre_s_r) || sends_static(hs, role);
	need_rs = init ? pre_s_r : pre_s_i;
	if ((have_s && !need_s) || (!have_s && (init ? pre_s_i : pre_s_r)) ||
	    (rs != NULL) != need_rs)
		goto out;
	hs->static_later = need_s && !have_s;
	if (have_s && set_static(hs, s_priv, s_ref) != 0)
		goto out;
	if (rs != NULL) {
		memcpy(hs->rs, rs, NOISE_DHLEN);
		hs->has_rs = true;
	}

	symmetric_init(&hs->ss, protocol_name, name_len);
	mix_hash(&hs->ss, prologue, prologue_len);
	if (pre_s_i)
		mix_hash(&hs->ss, init ? hs->s_pub : hs->rs, NOISE_DHLEN);
	if (pre_s_r)
		mix_hash(&hs->ss, init ? hs->rs : hs->s_pub, NOISE_DHLEN);
	hs->state = NOISE_HS_RUNNING;
	r = 0;
out:
	if (r != 0)
		noise_handshake_wipe(hs);
	return r;
}

/* A failed call on a running handshake ends it. */
static int
wipe_fail(struct noise_handshake *hs)
{
	noise_handshake_wipe(hs);
	return -1;
}

int
noise_handshake_init(struct noise_handshake *hs, const char *protocol_name, enum noise_role role,
                     const uint8_t *prologue, size_t prologue_len, const uint8_t *s_priv,
                     const uint8_t *rs)
{
	return handshake_init(hs, protocol_name, role, prologue, prologue_len, s_priv, NULL, rs);
}

int
noise_handshake_init_ref(struct noise_handshake *hs, const char *protocol_name,
                         enum noise_role role, const uint8_t *prologue, size_t prologue_len,
                         const struct noise_static_ref *s, const uint8_t *rs)
{
	if (s == NULL)
		return -1;
	return handshake_init(hs, protocol_name, role, prologue, prologue_len, NULL, s, rs);
}

int
noise_handshake_set_static(struct noise_handshake *hs, const uint8_t s_priv[NOISE_DHLEN])
{
	if (hs->state != NOISE_HS_RUNNING || !hs->static_later || hs->has_s)
		return -1;
	if (set_static(hs, s_priv, NULL) != 0)
		return wipe_fail(hs);
	return 0;
}

int
noise_handshake_set_psk(struct noise_handshake *hs, unsigned index, const uint8_t psk[NOISE_PSKLEN])
{
	if (hs->state != NOISE_HS_RUNNING || hs->next != 0 || index >= NOISE_MAX_PSKS ||
	    (hs->psk_needed & (1U << index)) == 0 || (hs->psk_set & (1U << index)) != 0)
		return wipe_fail(hs);
	memcpy(hs->psk[index], psk, NOISE_PSKLEN);
	hs->psk_set |= 1U << index;
	return 0;
}

int
noise_handshake_set_ephemeral(struct noise_handshake *hs, const uint8_t e_priv[NOISE_DHLEN])
{
	if (hs->state != NOISE_HS_RUNNING || hs->next != 0 || hs->has_e)
		return wipe_fail(hs);
	memcpy(hs->e_priv, e_priv, NOISE_DHLEN);
	if (crypto_scalarmult_curve25519_base(hs->e_pub, hs->e_priv) != 0)
		return wipe_fail(hs);
	hs->has_e = true;
	return 0;
}

bool
noise_handshake_complete(const struct noise_handshake *hs)
{
	return hs->state == NOISE_HS_DONE || hs->state == NOISE_HS_SPLIT;
}

int
noise_split(struct noise_handshake *hs, struct noise_cipher *send, struct noise_cipher *recv)
{
	uint8_t k1[NOISE_HASHLEN], k2[NOISE_HASHLEN];
	uint8_t h[NOISE_HASHLEN], rs[NOISE_DHLEN];
	enum noise_role role = hs->role;
	bool has_rs = hs->has_rs;
	int r = -1;

	noise_cipher_wipe(send);
	noise_cipher_wipe(recv);
	if (hs->state != NOISE_HS_DONE || send == recv)
		goto out;
	hkdf(hs->ss.ck, NULL, 0, k1, k2, NULL);
	/* HASHLEN is 64: each cipher key is the first KEYLEN bytes of its output. */
	if (role == NOISE_INITIATOR) {
		cipher_init_key(send, k1);
		if (!hs->one_way)
			cipher_init_key(recv, k2);
	} else {
		cipher_init_key(recv, k1);
		if (!hs->one_way)
			cipher_init_key(send, k2);
	}

	/* The spec keeps only h; rs stays too, so the caller can still ask who the peer is. */
	memcpy(h, hs->ss.h, sizeof(h));
	memcpy(rs, hs->rs, sizeof(rs));
	noise_handshake_wipe(hs);
	memcpy(hs->ss.h, h, sizeof(h));
	memcpy(hs->rs, rs, sizeof(rs));
	hs->has_rs = has_rs;
	hs->role = role;
	hs->state = NOISE_HS_SPLIT;
	r = 0;
out:
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));
	sodium_memzero(h, sizeof(h));
	sodium_memzero(rs, sizeof(rs));
	return r;
}

void
noise_handshake_hash(const struct noise_handshake *hs, uint8_t out[NOISE_HASHLEN])
{
	memcpy(out, hs->ss.h, NOISE_HASHLEN);
}

int
noise_remote_static(const struct noise_handshake *hs, uint8_t out[NOISE_DHLEN])
{
	if (hs->state == NOISE_HS_DEAD || !hs->has_rs)
		return -1;
	memcpy(out, hs->rs, NOISE_DHLEN);
	return 0;
}

void
noise_handshake_wipe(struct noise_handshake *hs)
{
	sodium_memzero(hs, sizeof(*hs));
	hs->state = NOISE_HS_DEAD;
}

int
noise_cipher_encrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *pt,
                     size_t len, uint8_t *out)
{
	if (len > NOISE_MAX_MESSAGE - NOISE_TAGLEN)
		return -1;
	return cipher_encrypt(c, ad, adlen, pt, len, out);
}

int
noise_cipher_decrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *ct,
                     size_t len, uint8_t *out)
{
	if (len < NOISE_TAGLEN || len > NOISE_MAX_MESSAGE)
		return -1;
	if (cipher_decrypt(c, ad, adlen, ct, len, out) != 0) {
		sodium_memzero(out, len - NOISE_TAGLEN);
		return -1;
	}
	return 0;
}

void
noise_cipher_key(const struct noise_cipher *c, uint8_t out[NOISE_KEYLEN])
{
	if (c->has_key)
		memcpy(out, c->k, NOISE_KEYLEN);
	else
		memset(out, 0, NOISE_KEYLEN);
}

void
noise_cipher_wipe(struct noise_cipher *c)
{
	sodium_memzero(c, sizeof(*c));
}
