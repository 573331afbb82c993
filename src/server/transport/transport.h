/*
 * An encrypted transport between a client and fived (the sealed handshake,
 * TLS).  The connection hands its transport the raw bytes it reads and the
 * plaintext it writes; the transport reports up only through the events
 * it was given at its start: the handshake is done, plaintext came, the
 * client's stream ended, raw bytes are to be written.  It knows nothing of
 * the session above it.
 */
#ifndef FIVE_TRANSPORT_H
#define FIVE_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct caller;
struct chunk;
struct config;
struct site;

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

/* The longest channel binding a transport reports (a Noise handshake hash). */
#define TRANSPORT_BINDING_MAX 64

/* How much plaintext the next record may carry, after sent bytes, at most max. */
static inline size_t
transport_record_limit(uint64_t sent, size_t max)
{
	return sent < TRANSPORT_SMALL_BYTES && TRANSPORT_SMALL_RECORD < max ? TRANSPORT_SMALL_RECORD
	                                                                    : max;
}

/*
 * The way up, each called with the owner given at the start.  Those that
 * return int return 0, or -1 when the session ended meanwhile: the
 * transport then stops what it was doing (its state stays valid until its
 * free).
 */
struct transport_events {
	/*
	 * The handshake is done: binding is the channel binding, and caller
	 * the identity the handshake itself proved, or NULL (it passes to the
	 * owner either way), with extra fields for its audit record (a json_t
	 * *, stolen, may be NULL).
	 */
	int (*opened)(void *owner, const uint8_t *binding, size_t binding_len,
	              struct caller *caller, void *extra);
	/* Decrypted client bytes. */
	int (*plaintext)(void *owner, const uint8_t *pt, size_t len);
	/* The client's stream ended properly, inside the transport. */
	void (*end)(void *owner);
	/* Raw bytes for the client: takes the chunk (freed when written, or at once on failure). */
	int (*write)(void *owner, struct chunk *c, size_t len);
	/* What is queued for the client and not yet written, in bytes. */
	size_t (*queued)(void *owner);
	/* Ends the session gracefully after what is queued; reason is static. */
	void (*finish)(void *owner, const char *reason);
	/* Ends the session as cut short (its backend, if any, is reset); reason is static. */
	void (*abort)(void *owner, const char *reason);
};

/* What a transport knows of the connection it serves. */
struct transport_link {
	struct site *site;
	const struct config *cfg;
	const char *id;              /* the session's, for log lines */
	const uint8_t *source_key;   /* the client's source, for the handshake budgets */
	const struct sockaddr *peer; /* the client's address, for cookies */
	const struct transport_events *ev;
	void *owner;
};

struct transport;

struct transport_ops {
	const char *name; /* "sealed", "tls" */
	/* Raw bytes from the client.  Returns 0, or -1 when the session must end. */
	int (*input)(struct transport *t, const uint8_t *raw, size_t len);
	/* The client's raw stream ended: 0 if that was its proper end, -1 if truncated. */
	int (*eof)(struct transport *t);
	/* Plaintext for the client: encodes it and writes it (events.write).  Returns 0 or -1. */
	int (*output)(struct transport *t, const uint8_t *pt, size_t len);
	/* The last bytes for the client, queued before its write side is shut. */
	int (*finish)(struct transport *t);
	/* Wipes and frees the transport. */
	void (*free)(struct transport *t);
};

/* The head of every transport's state. */
struct transport {
	const struct transport_ops *ops;
	struct transport_link link;
};

#endif
