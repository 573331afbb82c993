/*
 * The sealed channel's records, once the handshake is done, in one of two
 * suites the handshake chose (docs/PROTOCOL.md, section 6.7).  Every record is
 * a u16 length L and L bytes of ciphertext with its tag; data goes in MESSAGE
 * records of 1 to RECORD_PLAINTEXT_MAX bytes; one FINAL record with no
 * plaintext ends the direction, so a stream that stops without it was
 * truncated.  Both sides rekey the direction after every
 * RECORD_REKEY_INTERVAL records.
 *
 *   XChaCha20-Poly1305: one crypto_secretstream_xchacha20poly1305 stream, its
 *     24-byte header first; L = plaintext + 17; the tag byte inside says
 *     MESSAGE or FINAL.
 *   AES-256-GCM (crypto/aesgcm.h): no header; L = plaintext + 16; record i
 *     (from 0, FINAL included) is sealed under the nonce 4 zero bytes || i as
 *     a u64, so no nonce repeats under a key; FINAL is the record with no
 *     plaintext; the rekey is Noise's Rekey().
 *
 * The initiator-to-responder stream is keyed with the initiator's send
 * cipher from noise_split(), the other with the responder's, so each side
 * keys its sender from its own send cipher (record_init_from_split()).
 *
 * Pure code: no I/O, no globals.  Starting an XChaCha20 sender draws a
 * random header from libsodium, so the process must have called sodium_init().
 * An AES-256-GCM direction holds an OpenSSL context: its owner must call
 * record_sender_wipe() / record_receiver_wipe() (which free it) on every path.
 * Any failure of a receiver is final: it is wiped and refuses everything after.
 */
#ifndef FIVE_RECORD_H
#define FIVE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "crypto/aesgcm.h"
#include "crypto/noise.h"

/* The suites, numbered as the handshake names them (docs/PROTOCOL.md, section 6.2). */
enum record_suite {
	RECORD_SUITE_NONE = 0,
	RECORD_SUITE_XCHACHA20POLY1305 = 1,
	RECORD_SUITE_AES256GCM = 2,
};
#define RECORD_SUITE_LAST RECORD_SUITE_AES256GCM

#define RECORD_KEY_LEN        crypto_secretstream_xchacha20poly1305_KEYBYTES    /* 32 */
#define RECORD_STREAM_HEADER  crypto_secretstream_xchacha20poly1305_HEADERBYTES /* 24 */
#define RECORD_STREAM_ABYTES  crypto_secretstream_xchacha20poly1305_ABYTES      /* 17 */
#define RECORD_HEADER_MAX     RECORD_STREAM_HEADER /* AES-256-GCM has none */
#define RECORD_OVERHEAD_MAX   RECORD_STREAM_ABYTES /* AES-256-GCM adds its 16-byte tag */
#define RECORD_LEN_PREFIX     2
#define RECORD_PLAINTEXT_MAX  16384
#define RECORD_CIPHER_MAX     (RECORD_PLAINTEXT_MAX + RECORD_OVERHEAD_MAX)
#define RECORD_WIRE_MAX       (RECORD_LEN_PREFIX + RECORD_CIPHER_MAX) /* one record, prefix included */
#define RECORD_REKEY_INTERVAL 65536
/* The last record number a direction may use: AES-GCM's rekey takes the nonce after it. */
#define RECORD_COUNT_MAX (UINT64_MAX - 1)

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

/* One direction's cipher, of either suite. */
union record_cipher {
	crypto_secretstream_xchacha20poly1305_state stream;
	struct aesgcm gcm;
};

/* One direction, sending side.  Treat as opaque. */
struct record_sender {
	enum record_suite suite;
	union record_cipher c;
	uint64_t count; /* records sealed */
	enum record_tx_state state;
};

/*
 * One direction, receiving side.  Treat as opaque; about 16 KiB, since it
 * holds a partial header or record until the rest arrives.
 */
struct record_receiver {
	enum record_suite suite;
	union record_cipher c;
	uint8_t key[RECORD_KEY_LEN]; /* XChaCha20: kept until the header is complete, then wiped */
	uint8_t buf[RECORD_WIRE_MAX];
	size_t have;    /* bytes in buf: of the header, or of the current record */
	uint64_t count; /* records opened */
	enum record_rx_state state;
};

/* The suite's stream header (0 for AES-256-GCM) and record overhead, 0 for an unknown suite. */
size_t record_header_len(enum record_suite suite);
size_t record_overhead(enum record_suite suite);

/* A suite's name as seal_suites writes it ("aes256gcm"), or NULL; and back (0 if unknown). */
const char *record_suite_name(enum record_suite suite);
enum record_suite record_suite_from_name(const char *name);

/*
 * Starts a sending direction of suite with key (copied) and writes the
 * stream header the peer must receive before any record to header_out
 * (*header_len bytes: record_header_len(suite)).  Returns 0, or -1 (an
 * unknown suite, out of memory) with s wiped.
 */
int record_sender_init(struct record_sender *s, enum record_suite suite,
                       const uint8_t key[RECORD_KEY_LEN], uint8_t header_out[RECORD_HEADER_MAX],
                       size_t *header_len);

/*
 * Seals one record into out (out_size bytes, not overlapping pt): a MESSAGE
 * of len bytes (1..RECORD_PLAINTEXT_MAX), or with final the FINAL record
 * (len 0, pt may be NULL), after which the sender is closed and wiped.
 * *out_len is RECORD_LEN_PREFIX + len + record_overhead(suite).  Returns 0,
 * or -1 (closed or dead sender, a length out of range, out too small) with
 * *out_len 0 and the sender as it was, or (a cipher failure, the record
 * numbers spent) with the sender wiped.
 */
int record_seal(struct record_sender *s, const uint8_t *pt, size_t len, bool final, uint8_t *out,
                size_t out_size, size_t *out_len);

/*
 * Starts a receiving direction of suite with key (copied); the stream header,
 * if the suite has one, comes first in its input.  Returns 0, or -1 (an
 * unknown suite, out of memory) with r wiped.
 */
int record_receiver_init(struct record_receiver *r, enum record_suite suite,
                         const uint8_t key[RECORD_KEY_LEN]);

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
 * Both directions of one side in suite from its split ciphers
 * (noise_split()): the sender keyed with send's key, the receiver with
 * recv's, header_out the header to send first (*header_len bytes).  The
 * ciphers are not changed; the caller wipes them.  Returns 0, or -1 (a
 * cipher without a key, an unknown suite, out of memory) with both wiped.
 */
int record_init_from_split(struct record_sender *s, struct record_receiver *r,
                           enum record_suite suite, const struct noise_cipher *send,
                           const struct noise_cipher *recv, uint8_t header_out[RECORD_HEADER_MAX],
                           size_t *header_len);

/*
 * Zero every secret and free the suite's context; the sender or receiver
 * refuses every call afterwards.  Safe to repeat, and on a zeroed struct.
 */
void record_sender_wipe(struct record_sender *s);
void record_receiver_wipe(struct record_receiver *r);

#endif
