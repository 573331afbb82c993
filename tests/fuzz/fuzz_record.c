/*
 * The record layer's receiver on attacker bytes, fed in pieces.  The input:
 *
 *   byte 0        k = byte & 7: how many piece sizes follow; bit 3: the
 *                 suite is AES-256-GCM (else XChaCha20-Poly1305)
 *   k bytes       piece sizes, each byte + 1, used in turn (none: one piece)
 *   the rest      the stream: the suite's header (XChaCha20), then records
 *
 * The receiver is keyed with a fixed key, so seeds made with record_seal()
 * under it decrypt.  A second receiver takes the stream in one piece; both
 * must agree on every record, on the end, and on the error, wherever the
 * pieces split it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "crypto/record.h"
#include "fuzz.h"

#define LABEL_KEY   "fuzz record key"
#define PIECES_MASK 0x07
#define SUITE_AES   0x08

/* What a receiver made of a stream. */
struct outcome {
	crypto_generichash_state plaintext; /* every record's length and bytes */
	size_t records;
	int last; /* RECORD_NEED_MORE, RECORD_OK, RECORD_FINAL or RECORD_ERROR */
};

static void
fuzz_key(uint8_t key[RECORD_KEY_LEN])
{
	crypto_generichash(key, RECORD_KEY_LEN, (const uint8_t *)LABEL_KEY, strlen(LABEL_KEY), NULL,
	                   0);
}

/* One piece of input, in as many calls as it takes; false once the stream is over. */
static bool
feed(struct record_receiver *r, const uint8_t *in, size_t len, struct outcome *o)
{
	static uint8_t pt[RECORD_PLAINTEXT_MAX];
	uint8_t n16[2];
	size_t used, n;

	do {
		o->last = record_open(r, in, len, &used, pt, sizeof(pt), &n);
		if (used > len)
			__builtin_trap();
		in += used;
		len -= used;
		switch (o->last) {
		case RECORD_NEED_MORE:
			if (len != 0 || n != 0)
				__builtin_trap();
			break;
		case RECORD_OK:
			if (n < 1 || n > RECORD_PLAINTEXT_MAX)
				__builtin_trap();
			n16[0] = (uint8_t)(n >> 8);
			n16[1] = (uint8_t)n;
			crypto_generichash_update(&o->plaintext, n16, sizeof(n16));
			crypto_generichash_update(&o->plaintext, pt, n);
			o->records++;
			break;
		case RECORD_FINAL:
			if (n != 0 || record_receiver_eof(r) != 0)
				__builtin_trap();
			/* Nothing may follow; a call without input still says FINAL. */
			if (record_open(r, NULL, 0, &used, pt, sizeof(pt), &n) != RECORD_FINAL)
				__builtin_trap();
			break;
		case RECORD_ERROR:
			if (n != 0 || record_receiver_eof(r) == 0)
				__builtin_trap();
			/* A failed receiver refuses everything after. */
			if (record_open(r, in, len, &used, pt, sizeof(pt), &n) != RECORD_ERROR ||
			    record_open(r, NULL, 0, &used, pt, sizeof(pt), &n) != RECORD_ERROR)
				__builtin_trap();
			return false;
		default:
			__builtin_trap();
		}
	} while (len > 0);
	return true;
}

static void
outcome_end(struct outcome *o, uint8_t digest[crypto_generichash_BYTES])
{
	crypto_generichash_final(&o->plaintext, digest, crypto_generichash_BYTES);
}

FUZZ_INITIALIZE_SODIUM()

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct record_receiver split, whole;
	struct outcome os, ow;
	uint8_t key[RECORD_KEY_LEN], ds[crypto_generichash_BYTES], dw[crypto_generichash_BYTES];
	const uint8_t *sizes, *stream;
	enum record_suite suite;
	size_t nsizes, len, pos = 0, piece, i = 0;

	if (size < 1)
		return 0;
	nsizes = data[0] & PIECES_MASK;
	if (size < 1 + nsizes)
		return 0;
	sizes = data + 1;
	stream = data + 1 + nsizes;
	len = size - 1 - nsizes;

	suite = (data[0] & SUITE_AES) != 0 ? RECORD_SUITE_AES256GCM
	                                   : RECORD_SUITE_XCHACHA20POLY1305;
	fuzz_key(key);
	if (record_receiver_init(&split, suite, key) != 0 ||
	    record_receiver_init(&whole, suite, key) != 0)
		__builtin_trap();
	memset(&os, 0, sizeof(os));
	memset(&ow, 0, sizeof(ow));
	os.last = ow.last = RECORD_NEED_MORE;
	crypto_generichash_init(&os.plaintext, NULL, 0, sizeof(ds));
	crypto_generichash_init(&ow.plaintext, NULL, 0, sizeof(dw));

	while (pos < len) {
		piece = nsizes == 0 ? len - pos : (size_t)sizes[i++ % nsizes] + 1;
		if (piece > len - pos)
			piece = len - pos;
		if (!feed(&split, stream + pos, piece, &os))
			break;
		pos += piece;
	}
	if (len > 0)
		feed(&whole, stream, len, &ow);

	outcome_end(&os, ds);
	outcome_end(&ow, dw);
	if (os.last != ow.last || os.records != ow.records || memcmp(ds, dw, sizeof(ds)) != 0 ||
	    record_receiver_eof(&split) != record_receiver_eof(&whole))
		__builtin_trap();
	record_receiver_wipe(&split);
	record_receiver_wipe(&whole);
	sodium_memzero(key, sizeof(key));
	return 0;
}
