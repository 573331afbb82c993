/*
 * An encrypted session with fived, client side: the sealed handshake and
 * its records (seal.c), or TLS (tls.c) behind the same struct, so that
 * what sits above drives both alike.
 */
#ifndef FIVE_CLIENT_TRANSPORT_SEAL_H
#define FIVE_CLIENT_TRANSPORT_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/noise.h"
#include "crypto/record.h"
#include "five.h"
#include "proto/sealed.h"

/*
 * What a sealed session may have read past its handshake: at most what the
 * handshake's reader holds, the server's answer and a record behind it.
 */
#define SEALED_PENDING_MAX (SEALED_MESSAGE_MAX + RECORD_WIRE_MAX)

/* An established encrypted session, client side: sealed records, or TLS. */
struct five_tls;
struct five_seal {
	struct five_tls *tls; /* TLS (transport/tls.h); NULL for the sealed records */
	struct record_sender tx;
	struct record_receiver rx;
	/* Binds signatures to this session: the handshake hash, or TLS's exporter value. */
	uint8_t hash[NOISE_HASHLEN];
	bool early_taken;  /* the server acted on the early data in the handshake */
	bool final_sealed; /* FINAL (TLS: close_notify) is sealed: nothing may follow it */
	bool ended;        /* ended by five_seal_end, or given up without FINAL */
	int fd;
	uint8_t pending[SEALED_PENDING_MAX]; /* server bytes read after the handshake */
	size_t pending_len;
	uint8_t server_pk[32]; /* the sealed handshake's server key (not TLS's) */
	bool has_server_pk;
};

/*
 * Dials host and makes the sealed handshake; early (at most 16 KiB) goes
 * with it and reaches the service either way.  tofu: pin a first-contact
 * server's key (note then says so, for the user).  Returns the connected
 * descriptor with *seal, or -1 with err filled.
 */
int five_seal_open(const char *host, const struct five_options *o, const void *early,
                   size_t early_len, bool tofu, struct five_seal **seal, char *note,
                   size_t note_size, struct five_error *err);

void five_seal_free(struct five_seal *z);

/*
 * The server key pinned for host and port (known_hosts, or o->server_key),
 * without a connection.  Returns 0 with *found (and pk when found), or -1
 * with err filled.
 */
int five_pinned_key(const char *host, const char *port, const struct five_options *o,
                    uint8_t pk[32], bool *found, struct five_error *err);

/*
 * The key of the server fived on host, as pinned, or pinned now by a
 * first contact (note then says so).  Returns 0 or -1 with err filled.
 */
int five_server_key(const char *host, const struct five_options *o, uint8_t pk[32], char *note,
                    size_t note_size, struct five_error *err);

/*
 * The plaintext one five_seal_wrap call takes at most.  Its output must fit
 * in RECORD_WIRE_MAX: a TLS 1.3 record adds 22 bytes (header, content
 * type, tag), and OpenSSL may put a small record before it (the answer to
 * a KeyUpdate).
 */
#define TLS_RECORD_OVERHEAD    22
#define TLS_CONTROL_RECORD_MAX 32
#define FIVE_WRAP_MAX          (RECORD_WIRE_MAX - TLS_RECORD_OVERHEAD - TLS_CONTROL_RECORD_MAX)

/*
 * One record (final: the FINAL record, or TLS's close_notify) of len
 * bytes of pt (at most FIVE_WRAP_MAX) into out, room being at least
 * RECORD_WIRE_MAX.  Returns 0, or -1 with err filled (FIVE_ERR_SYSTEM).
 */
int five_seal_wrap(struct five_seal *z, const uint8_t *pt, size_t len, bool final, uint8_t *out,
                   size_t room, size_t *n, struct five_error *err);

/* How many bytes of z->hash are the channel binding. */
size_t five_seal_binding_len(const struct five_seal *z);

/*
 * record_open (crypto/record.h) on the session's receiving direction:
 * returns 0 with *status RECORD_NEED_MORE, RECORD_OK or RECORD_FINAL as
 * record_open tells them, or -1 with err filled (FIVE_ERR_PROTOCOL) for
 * its RECORD_ERROR.
 */
int five_seal_unwrap(struct five_seal *z, const uint8_t *in, size_t len, size_t *used, uint8_t *pt,
                     size_t room, size_t *n, int *status, struct five_error *err);

/* Sends data on fd as records.  Returns 0, or -1 with err filled. */
int five_seal_send(struct five_seal *z, int fd, const void *data, size_t len,
                   struct five_error *err);

/*
 * How long a session that ends waits, at most, for fived's end of stream
 * before its socket is closed (no longer than the session's timeout).
 */
#define FIVE_LINGER_MS 2000

/*
 * Ends the session on fd cleanly: FINAL (TLS: close_notify) unless it
 * was sealed already, TCP's half-close, then what fived still sends is
 * read and dropped up to its end of stream, for at most FIVE_LINGER_MS:
 * a socket closed with unread bytes resets the connection, and the reset
 * may discard FINAL before fived reads it.  Does nothing once z has
 * ended (z->ended), and marks it ended.  When FINAL cannot be sent, fived
 * sees a truncated stream: no caller could do better, so nothing is
 * returned.
 */
void five_seal_end(struct five_seal *z, int fd, int timeout_ms);

/* A refusal line, CRLF included, is at most this long. */
#define FIVE_TEXT_REFUSAL_MAX 512

/*
 * A connection over the server's limits is answered in text before any
 * handshake, sealed or TLS (PROTOCOL.md 6.2): "- reason" CRLF.  Returns -1
 * with err (FIVE_ERR_REFUSED, the reason) when buf[0..len) starts with
 * one, 1 while one may still be coming, 0 when it holds none.
 */
int five_text_refusal(const uint8_t *buf, size_t len, struct five_error *err);

#endif
