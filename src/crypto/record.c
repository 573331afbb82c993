#include "crypto/record.h"

#include <string.h>

#include "common/bytes.h"

#define TAG_MESSAGE crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define TAG_FINAL   crypto_secretstream_xchacha20poly1305_TAG_FINAL

/* AES-256-GCM's nonce: RECORD_NONCE_PAD zero bytes, then the record number as a u64. */
#define RECORD_NONCE_PAD (AESGCM_NONCE_LEN - sizeof(uint64_t))

_Static_assert(RECORD_KEY_LEN == NOISE_KEYLEN, "records are keyed from Noise cipher keys");
_Static_assert(RECORD_KEY_LEN == AESGCM_KEY_LEN, "AES-256-GCM takes the same keys");
_Static_assert(AESGCM_TAG_LEN <= RECORD_OVERHEAD_MAX, "buffers are sized for the larger overhead");
_Static_assert(RECORD_PLAINTEXT_MAX <= AESGCM_TEXT_MAX, "a record fits one AES-GCM call");
_Static_assert(RECORD_CIPHER_MAX <= UINT16_MAX, "the length fits its u16 prefix");
_Static_assert(RECORD_HEADER_MAX <= RECORD_WIRE_MAX, "the header is buffered like a record");

static const char *const suite_names[] = {
        [RECORD_SUITE_XCHACHA20POLY1305] = "xchacha20poly1305",
        [RECORD_SUITE_AES256GCM] = "aes256gcm",
};

static bool
known(enum record_suite suite)
{
	return suite == RECORD_SUITE_XCHACHA20POLY1305 || suite == RECORD_SUITE_AES256GCM;
}

size_t
record_header_len(enum record_suite suite)
{
	return suite == RECORD_SUITE_XCHACHA20POLY1305 ? RECORD_STREAM_HEADER : 0;
}

size_t
record_overhead(enum record_suite suite)
{
	switch (suite) {
	case RECORD_SUITE_XCHACHA20POLY1305:
		return RECORD_STREAM_ABYTES;
	case RECORD_SUITE_AES256GCM:
		return AESGCM_TAG_LEN;
	default:
		return 0;
	}
}

const char *
record_suite_name(enum record_suite suite)
{
	return known(suite) ? suite_names[suite] : NULL;
}

enum record_suite
record_suite_from_name(const char *name)
{
	enum record_suite s;

	for (s = RECORD_SUITE_XCHACHA20POLY1305; s <= RECORD_SUITE_LAST; s++)
		if (strcmp(name, suite_names[s]) == 0)
			return s;
	return RECORD_SUITE_NONE;
}

static void
gcm_nonce(uint64_t number, uint8_t nonce[AESGCM_NONCE_LEN])
{
	memset(nonce, 0, RECORD_NONCE_PAD);
	bytes_put64(nonce + RECORD_NONCE_PAD, number);
}

/* Frees what the suite holds outside the struct; the caller zeroes the struct. */
static void
cipher_free(enum record_suite suite, union record_cipher *c)
{
	if (suite == RECORD_SUITE_AES256GCM)
		aesgcm_wipe(&c->gcm);
}

/* After every RECORD_REKEY_INTERVAL-th MESSAGE record, counted in *count. */
static int
count_record(enum record_suite suite, union record_cipher *c, uint64_t *count)
{
	if (++*count % RECORD_REKEY_INTERVAL != 0)
		return 0;
	if (suite == RECORD_SUITE_AES256GCM)
		return aesgcm_rekey(&c->gcm);
	crypto_secretstream_xchacha20poly1305_rekey(&c->stream);
	return 0;
}

int
record_sender_init(struct record_sender *s, enum record_suite suite,
                   const uint8_t key[RECORD_KEY_LEN], uint8_t header_out[RECORD_HEADER_MAX],
                   size_t *header_len)
{
	int r = -1;

	memset(s, 0, sizeof(*s));
	*header_len = 0;
	s->suite = suite;
	if (suite == RECORD_SUITE_XCHACHA20POLY1305)
		r = crypto_secretstream_xchacha20poly1305_init_push(&s->c.stream, header_out, key);
	else if (suite == RECORD_SUITE_AES256GCM)
		r = aesgcm_init(&s->c.gcm, key, true);
	if (r != 0) {
		record_sender_wipe(s);
		return -1;
	}
	*header_len = record_header_len(suite);
	s->state = RECORD_TX_OPEN;
	return 0;
}

/* Seals pt into out (clen bytes: ciphertext and tag). */
static int
seal_body(struct record_sender *s, const uint8_t *pt, size_t len, bool final, uint8_t *out)
{
	uint8_t nonce[AESGCM_NONCE_LEN];

	if (s->suite == RECORD_SUITE_AES256GCM) {
		gcm_nonce(s->count, nonce);
		return aesgcm_seal(&s->c.gcm, nonce, pt, len, out);
	}
	return crypto_secretstream_xchacha20poly1305_push(&s->c.stream, out, NULL, pt, len, NULL, 0,
	                                                  final ? TAG_FINAL : TAG_MESSAGE);
}

int
record_seal(struct record_sender *s, const uint8_t *pt, size_t len, bool final, uint8_t *out,
            size_t out_size, size_t *out_len)
{
	size_t clen = len + record_overhead(s->suite);

	*out_len = 0;
	if (s->state != RECORD_TX_OPEN || out == NULL || (pt == NULL && len > 0))
		return -1;
	if (final ? len != 0 : (len == 0 || len > RECORD_PLAINTEXT_MAX))
		return -1;
	if (out_size < RECORD_LEN_PREFIX + clen)
		return -1;
	bytes_put16(out, clen);
	if (s->count > RECORD_COUNT_MAX ||
	    seal_body(s, pt, len, final, out + RECORD_LEN_PREFIX) != 0)
		goto fail;
	if (final) {
		/* Nothing may follow FINAL: drop the state instead of keeping a usable key. */
		record_sender_wipe(s);
		s->state = RECORD_TX_CLOSED;
	} else if (count_record(s->suite, &s->c, &s->count) != 0) {
		goto fail;
	}
	*out_len = RECORD_LEN_PREFIX + clen;
	return 0;
fail:
	sodium_memzero(out, RECORD_LEN_PREFIX + clen);
	record_sender_wipe(s);
	return -1;
}

int
record_receiver_init(struct record_receiver *r, enum record_suite suite,
                     const uint8_t key[RECORD_KEY_LEN])
{
	memset(r, 0, sizeof(*r));
	r->suite = suite;
	if (suite == RECORD_SUITE_XCHACHA20POLY1305) {
		memcpy(r->key, key, RECORD_KEY_LEN);
		r->state = RECORD_RX_HEADER;
		return 0;
	}
	if (suite == RECORD_SUITE_AES256GCM && aesgcm_init(&r->c.gcm, key, false) == 0) {
		r->state = RECORD_RX_OPEN;
		return 0;
	}
	record_receiver_wipe(r);
	return -1;
}

/* Moves input into the buffer until it holds want bytes; returns the bytes taken. */
static size_t
fill(struct record_receiver *r, const uint8_t *in, size_t in_len, size_t want)
{
	size_t take = want - r->have;

	if (take > in_len)
		take = in_len;
	if (take > 0)
		memcpy(r->buf + r->have, in, take);
	r->have += take;
	return take;
}

/*
 * Opens one record body into pt: RECORD_OK with *pt_len >= 1, RECORD_FINAL,
 * or RECORD_ERROR (with *pt_len the bytes written to pt, for the wipe).
 */
static int
open_body(struct record_receiver *r, const uint8_t *rec, size_t clen, uint8_t *pt, size_t *pt_len)
{
	uint8_t nonce[AESGCM_NONCE_LEN];
	unsigned long long mlen = 0;
	unsigned char tag;

	if (r->suite == RECORD_SUITE_AES256GCM) {
		if (r->count > RECORD_COUNT_MAX)
			return RECORD_ERROR;
		gcm_nonce(r->count, nonce);
		if (aesgcm_open(&r->c.gcm, nonce, rec, clen, pt) != 0)
			return RECORD_ERROR;
		*pt_len = clen - AESGCM_TAG_LEN;
		return *pt_len > 0 ? RECORD_OK : RECORD_FINAL;
	}
	if (crypto_secretstream_xchacha20poly1305_pull(&r->c.stream, pt, &mlen, &tag, rec, clen,
	                                               NULL, 0) != 0)
		return RECORD_ERROR;
	*pt_len = (size_t)mlen;
	if (tag == TAG_MESSAGE && mlen > 0)
		return RECORD_OK;
	if (tag == TAG_FINAL && mlen == 0)
		return RECORD_FINAL;
	return RECORD_ERROR;
}

int
record_open(struct record_receiver *r, const uint8_t *in, size_t in_len, size_t *consumed,
            uint8_t *pt, size_t pt_size, size_t *pt_len)
{
	const uint8_t *rec;
	size_t used = 0, clen, overhead = record_overhead(r->suite);
	int ret = RECORD_ERROR;

	*consumed = 0;
	*pt_len = 0;
	if (r->state == RECORD_RX_FAILED)
		return RECORD_ERROR;
	if ((in == NULL && in_len > 0) || pt == NULL || pt_size < RECORD_PLAINTEXT_MAX)
		goto out;
	if (r->state == RECORD_RX_DONE) {
		if (in_len == 0)
			ret = RECORD_FINAL;
		goto out;
	}

	if (r->state == RECORD_RX_HEADER) {
		used += fill(r, in, in_len, RECORD_STREAM_HEADER);
		if (r->have < RECORD_STREAM_HEADER) {
			ret = RECORD_NEED_MORE;
			goto out;
		}
		if (crypto_secretstream_xchacha20poly1305_init_pull(&r->c.stream, r->buf, r->key) !=
		    0)
			goto out;
		sodium_memzero(r->key, sizeof(r->key));
		r->have = 0;
		r->state = RECORD_RX_OPEN;
	}

	/* The length is checked as soon as it is known, before waiting for the record. */
	if (r->have < RECORD_LEN_PREFIX) {
		used += fill(r, in + used, in_len - used, RECORD_LEN_PREFIX);
		if (r->have < RECORD_LEN_PREFIX) {
			ret = RECORD_NEED_MORE;
			goto out;
		}
	}
	clen = bytes_get16(r->buf);
	if (clen < overhead || clen > RECORD_PLAINTEXT_MAX + overhead)
		goto out;
	if (r->have == RECORD_LEN_PREFIX && in_len - used >= clen) {
		/* The whole body is in the input: open it there instead of copying it. */
		rec = in + used;
		used += clen;
	} else {
		used += fill(r, in + used, in_len - used, RECORD_LEN_PREFIX + clen);
		if (r->have < RECORD_LEN_PREFIX + clen) {
			ret = RECORD_NEED_MORE;
			goto out;
		}
		rec = r->buf + RECORD_LEN_PREFIX;
	}
	ret = open_body(r, rec, clen, pt, pt_len);
	r->have = 0;
	if (ret == RECORD_OK && count_record(r->suite, &r->c, &r->count) != 0)
		ret = RECORD_ERROR;
	if (ret == RECORD_FINAL) {
		record_receiver_wipe(r);
		r->state = RECORD_RX_DONE;
	}
out:
	*consumed = used;
	if (ret == RECORD_ERROR) {
		sodium_memzero(pt, *pt_len);
		*pt_len = 0;
		record_receiver_wipe(r);
	}
	return ret;
}

int
record_receiver_eof(const struct record_receiver *r)
{
	return r->state == RECORD_RX_DONE ? 0 : -1;
}

int
record_init_from_split(struct record_sender *s, struct record_receiver *r, enum record_suite suite,
                       const struct noise_cipher *send, const struct noise_cipher *recv,
                       uint8_t header_out[RECORD_HEADER_MAX], size_t *header_len)
{
	uint8_t key[RECORD_KEY_LEN];
	int ret = -1;

	memset(s, 0, sizeof(*s));
	memset(r, 0, sizeof(*r));
	*header_len = 0;
	if (!send->has_key || !recv->has_key)
		goto out;
	noise_cipher_key(send, key);
	if (record_sender_init(s, suite, key, header_out, header_len) != 0)
		goto out;
	noise_cipher_key(recv, key);
	if (record_receiver_init(r, suite, key) != 0)
		goto out;
	ret = 0;
out:
	if (ret != 0) {
		record_sender_wipe(s);
		record_receiver_wipe(r);
		*header_len = 0;
	}
	sodium_memzero(key, sizeof(key));
	return ret;
}

void
record_sender_wipe(struct record_sender *s)
{
	cipher_free(s->suite, &s->c);
	sodium_memzero(s, sizeof(*s));
	s->state = RECORD_TX_DEAD;
}

void
record_receiver_wipe(struct record_receiver *r)
{
	cipher_free(r->suite, &r->c);
	sodium_memzero(r, sizeof(*r));
	r->state = RECORD_RX_FAILED;
}
