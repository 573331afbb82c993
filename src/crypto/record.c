#include "crypto/record.h"

#include <string.h>

#include "common/bytes.h"

#define TAG_MESSAGE crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define TAG_FINAL   crypto_secretstream_xchacha20poly1305_TAG_FINAL

_Static_assert(RECORD_KEY_LEN == NOISE_KEYLEN, "records are keyed from Noise cipher keys");
_Static_assert(RECORD_CIPHER_MAX <= UINT16_MAX, "the length fits its u16 prefix");
_Static_assert(RECORD_HEADER_LEN <= RECORD_WIRE_MAX, "the header is buffered like a record");

int
record_sender_init(struct record_sender *s, const uint8_t key[RECORD_KEY_LEN],
                   uint8_t header_out[RECORD_HEADER_LEN])
{
	memset(s, 0, sizeof(*s));
	if (crypto_secretstream_xchacha20poly1305_init_push(&s->st, header_out, key) != 0) {
		record_sender_wipe(s);
		return -1;
	}
	s->state = RECORD_TX_OPEN;
	return 0;
}

int
record_seal(struct record_sender *s, const uint8_t *pt, size_t len, bool final, uint8_t *out,
            size_t out_size, size_t *out_len)
{
	size_t clen = len + RECORD_OVERHEAD;

	*out_len = 0;
	if (s->state != RECORD_TX_OPEN || out == NULL || (pt == NULL && len > 0))
		return -1;
	if (final ? len != 0 : (len == 0 || len > RECORD_PLAINTEXT_MAX))
		return -1;
	if (out_size < RECORD_LEN_PREFIX + clen)
		return -1;
	bytes_put16(out, clen);
	if (crypto_secretstream_xchacha20poly1305_push(&s->st, out + RECORD_LEN_PREFIX, NULL, pt,
	                                               len, NULL, 0,
	                                               final ? TAG_FINAL : TAG_MESSAGE) != 0) {
		sodium_memzero(out, RECORD_LEN_PREFIX + clen);
		return -1;
	}
	if (final) {
		/* Nothing may follow FINAL: drop the state instead of keeping a usable key. */
		record_sender_wipe(s);
		s->state = RECORD_TX_CLOSED;
	} else if (++s->count % RECORD_REKEY_INTERVAL == 0) {
		crypto_secretstream_xchacha20poly1305_rekey(&s->st);
	}
	*out_len = RECORD_LEN_PREFIX + clen;
	return 0;
}

void
record_receiver_init(struct record_receiver *r, const uint8_t key[RECORD_KEY_LEN])
{
	memset(r, 0, sizeof(*r));
	memcpy(r->key, key, RECORD_KEY_LEN);
	r->state = RECORD_RX_HEADER;
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

int
record_open(struct record_receiver *r, const uint8_t *in, size_t in_len, size_t *consumed,
            uint8_t *pt, size_t pt_size, size_t *pt_len)
{
	const uint8_t *rec;
	unsigned long long mlen = 0;
	unsigned char tag;
	size_t used = 0, clen;
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
		used += fill(r, in, in_len, RECORD_HEADER_LEN);
		if (r->have < RECORD_HEADER_LEN) {
			ret = RECORD_NEED_MORE;
			goto out;
		}
		if (crypto_secretstream_xchacha20poly1305_init_pull(&r->st, r->buf, r->key) != 0)
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
	if (clen < RECORD_CIPHER_MIN || clen > RECORD_CIPHER_MAX)
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
	if (crypto_secretstream_xchacha20poly1305_pull(&r->st, pt, &mlen, &tag, rec, clen, NULL,
	                                               0) != 0)
		goto out;
	r->have = 0;
	if (tag == TAG_MESSAGE && mlen > 0) {
		ret = RECORD_OK;
		*pt_len = (size_t)mlen;
		if (++r->count % RECORD_REKEY_INTERVAL == 0)
			crypto_secretstream_xchacha20poly1305_rekey(&r->st);
	} else if (tag == TAG_FINAL && mlen == 0) {
		ret = RECORD_FINAL;
		sodium_memzero(r, sizeof(*r));
		r->state = RECORD_RX_DONE;
	}
out:
	*consumed = used;
	if (ret == RECORD_ERROR) {
		if (mlen > 0)
			sodium_memzero(pt, (size_t)mlen);
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
record_init_from_split(struct record_sender *s, struct record_receiver *r,
                       const struct noise_cipher *send, const struct noise_cipher *recv,
                       uint8_t header_out[RECORD_HEADER_LEN])
{
	uint8_t key[RECORD_KEY_LEN];
	int ret = -1;

	memset(s, 0, sizeof(*s));
	memset(r, 0, sizeof(*r));
	if (!send->has_key || !recv->has_key)
		goto out;
	noise_cipher_key(send, key);
	if (record_sender_init(s, key, header_out) != 0)
		goto out;
	noise_cipher_key(recv, key);
	record_receiver_init(r, key);
	ret = 0;
out:
	if (ret != 0) {
		record_sender_wipe(s);
		record_receiver_wipe(r);
	}
	sodium_memzero(key, sizeof(key));
	return ret;
}

void
record_sender_wipe(struct record_sender *s)
{
	sodium_memzero(s, sizeof(*s));
	s->state = RECORD_TX_DEAD;
}

void
record_receiver_wipe(struct record_receiver *r)
{
	sodium_memzero(r, sizeof(*r));
	r->state = RECORD_RX_FAILED;
}
