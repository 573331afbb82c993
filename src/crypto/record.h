/*
 * The sealed channel's records, once the handshake is done.  Each direction
 * is one crypto_secretstream_xchacha20poly1305 stream: its 24-byte header
 * first, then records of a u16 length L (17 <= L <= RECORD_PLAINTEXT_MAX + 17)
 * and L bytes of secretstream output.  Data goes in MESSAGE records of 1 to
 * RECORD_PLAINTEXT_MAX bytes; one FINAL record with no plaintext ends the
 * direction, so a stream that stops without it was truncated.  Both sides
 * rekey the direction after every RECORD_REKEY_INTERVAL records.
 *
 * The initiator-to-responder stream is keyed with the initiator's send
 * cipher from noise_split(), the other with the responder's, so each side
 * keys its sender from its own send cipher (record_init_from_split()).
 *
 * Pure code: no I/O, no allocation, no globals.  Starting a sender draws a
 * random header from libsodium, so the process must have called sodium_init().
 * Any failure of a receiver is final: it is wiped and refuses everything after.
 */
#ifndef FIVE_RECORD_H
#define FIVE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "crypto/noise.h"

#define RECORD_KEY_LEN        crypto_secretstream_xchacha20poly1305_KEYBYTES    /* 32 */
#define RECORD_HEADER_LEN     crypto_secretstream_xchacha20poly1305_HEADERBYTES /* 24 */
#define RECORD_OVERHEAD       crypto_secretstream_xchacha20poly1305_ABYTES      /* 17 */
#define RECORD_LEN_PREFIX     2
#define RECORD_PLAINTEXT_MAX  16384
#define RECORD_CIPHER_MIN     RECORD_OVERHEAD
#define RECORD_CIPHER_MAX     (RECORD_PLAINTEXT_MAX + RECORD_OVERHEAD)
#define RECORD_WIRE_MAX       (RECORD_LEN_PREFIX + RECORD_CIPHER_MAX) /* one record, prefix included */
#define RECORD_REKEY_INTERVAL 65536

/* What record_open() reports. */
enum record_status {
	RECORD_ERROR = -1,    /* fatal: the receiver refuses everything from now on */
	RECORD_NEED_MORE = 0, /* all input taken, no record complete yet */
	RECORD_OK = 1,        /* one MESSAGE record's plaintext is out */
	RECORD_FINAL = 2,     /* the FINAL record: the direction ended properly */
};

/* DEAD is zero, so a zeroed (wiped) sender refuses every call. */
enum record_tx_state { RECORD_TX_DEAD = 0, RECORD_TX_OPEN, RECORD_TX_CLOSED };
enum record_rx_state { RECORD_RX_FAILED = 0, RECORD_RX_HEADER, RECORD_RX_OPEN, RECORD_RX_DONE };

/* One direction, sending side.  Treat as opaque. */
struct record_sender {
	crypto_secretstream_xchacha20poly1305_state st;
	uint64_t count; /* records sealed */
	enum record_tx_state state;
};

/*
 * One direction, receiving side.  Treat as opaque; about 16 KiB, since it
 * holds a partial header or record until the rest arrives.
 */
struct record_receiver {
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t key[RECORD_KEY_LEN]; /* kept until the header is complete, then wiped */
	uint8_t buf[RECORD_WIRE_MAX];
	size_t have;    /* bytes in buf: of the header, or of the current record */
	uint64_t count; /* records opened */
	enum record_rx_state state;
};

/*
 * Starts a sending direction with key (copied) and writes the stream header
 * the peer must receive before any record to header_out.  Returns 0, or -1
 * with s wiped.
 */
int record_sender_init(struct record_sender *s, const uint8_t key[RECORD_KEY_LEN],
                       uint8_t header_out[RECORD_HEADER_LEN]);

/*
 * Seals one record into out (out_size bytes, not overlapping pt): a MESSAGE
 * of len bytes (1..RECORD_PLAINTEXT_MAX), or with final the FINAL record
 * (len 0, pt may be NULL), after which the sender is closed and wiped.
 * *out_len is RECORD_LEN_PREFIX + len + RECORD_OVERHEAD.  Returns 0, or -1
 * (closed or dead sender, a length out of range, out too small) with
 * *out_len 0 and the sender as it was.
 */
int record_seal(struct record_sender *s, const uint8_t *pt, size_t len, bool final, uint8_t *out,
                size_t out_size, size_t *out_len);

/* Starts a receiving direction with key (copied); the header comes first in its input. */
void record_receiver_init(struct record_receiver *r, const uint8_t key[RECORD_KEY_LEN]);

/*
 * Feeds in[0..in_len) (whatever the transport delivered: a byte, many
 * records) and takes out at most one record.  *consumed is how much of in
 * was used, up to the end of that record; call again with the rest.
 * pt_size must be at least RECORD_PLAINTEXT_MAX.  Returns:
 *   RECORD_NEED_MORE  everything consumed and buffered, *pt_len 0;
 *   RECORD_OK         a MESSAGE's plaintext in pt[0..*pt_len), *pt_len >= 1;
 *   RECORD_FINAL      the FINAL record, *pt_len 0; from then on, calls with
 *                     no input return RECORD_FINAL again and any input is an error;
 *   RECORD_ERROR      a length out of range, a record that does not
 *                     authenticate (tampered, reordered, dropped, truncated
 *                     header), a MESSAGE without data or a FINAL with data,
 *                     another tag, data after FINAL, or a misuse (pt_size too
 *                     small); the receiver is wiped and fails every later call.
 */
int record_open(struct record_receiver *r, const uint8_t *in, size_t in_len, size_t *consumed,
                uint8_t *pt, size_t pt_size, size_t *pt_len);

/*
 * The transport under the receiver ended: 0 when FINAL had been received,
 * -1 (truncation, or a failed receiver) otherwise.
 */
int record_receiver_eof(const struct record_receiver *r);

/*
 * Both directions of one side from its split ciphers (noise_split()): the
 * sender keyed with send's key, the receiver with recv's, header_out the
 * header to send first.  The ciphers are not changed; the caller wipes them.
 * Returns 0, or -1 (a cipher without a key) with both wiped.
 */
int record_init_from_split(struct record_sender *s, struct record_receiver *r,
                           const struct noise_cipher *send, const struct noise_cipher *recv,
                           uint8_t header_out[RECORD_HEADER_LEN]);

/* Zero every secret; the sender or receiver refuses every call afterwards.  Safe to repeat. */
void record_sender_wipe(struct record_sender *s);
void record_receiver_wipe(struct record_receiver *r);

#endif
