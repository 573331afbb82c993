/*
 * An encrypted transport between a client and fived (the sealed handshake,
 * TLS).  A session with a transport hands it the raw bytes it reads and
 * the plaintext it writes; the transport gives back the client's plaintext
 * through session_client_plaintext, as if it had come from a plain socket.
 */
#ifndef FIVE_TRANSPORT_H
#define FIVE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

struct session;

/* What a transport may hold back of decrypted input at most (one record). */
#define TRANSPORT_SLACK (17 * 1024)

/*
 * The first TRANSPORT_SMALL_BYTES of a stream go in records one TCP
 * segment can carry: the client opens a record only once all of it has
 * arrived, and TCP's first round trips carry about ten segments (RFC
 * 6928), so one large first record would hold the first byte back a round
 * trip or more.  Later records are as large as the transport allows.
 */
#define TRANSPORT_SMALL_RECORD 1360
#define TRANSPORT_SMALL_BYTES  (64 * 1024)

/* How much plaintext the next record may carry, after sent bytes, at most max. */
static inline size_t
transport_record_limit(uint64_t sent, size_t max)
{
	return sent < TRANSPORT_SMALL_BYTES && TRANSPORT_SMALL_RECORD < max ? TRANSPORT_SMALL_RECORD
	                                                                    : max;
}

struct transport_ops {
	const char *name; /* "sealed", "tls" */
	/* Raw bytes from the client.  Returns 0, or -1 when the session must end. */
	int (*input)(struct session *s, const uint8_t *raw, size_t len);
	/* The client's raw stream ended: 0 if that was its proper end, -1 if truncated. */
	int (*eof)(struct session *s);
	/* Plaintext for the client: encodes and queues it (relay_client_write).  Returns 0 or -1.
	 */
	int (*output)(struct session *s, const uint8_t *pt, size_t len);
	/* The last bytes for the client, queued before its write side is shut. */
	int (*finish)(struct session *s);
	/* Frees the transport's state (the session is closing). */
	void (*free)(struct session *s);
};

/* Hands decrypted client bytes to the session. */
void session_client_plaintext(struct session *s, const uint8_t *pt, size_t len);

/* The client's stream ended properly (inside the transport). */
void session_client_end(struct session *s);

#endif
