/*
 * TLS to fived, client side: TLS 1.3 through OpenSSL memory BIOs, so that
 * the relay drives its records as it drives the sealed ones (five_seal_wrap,
 * five_seal_unwrap).  The server is trusted by its key, not by a chain:
 * the SHA-256 of its certificate's SubjectPublicKeyInfo, pinned in
 * known_hosts under "HOST:PORT/tls" on first use, or given (--key).
 */
#ifndef FIVE_CLIENT_TRANSPORT_TLS_H
#define FIVE_CLIENT_TRANSPORT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "five.h"

struct five_seal;
struct five_tls;

/* RFC 9266's tls-exporter channel binding: its length. */
#define FIVE_TLS_BINDING_LEN 32

/* What known_hosts appends to "HOST:PORT" for a TLS server's key. */
#define FIVE_TLS_PIN_SUFFIX "/tls"

/*
 * Dials host and makes a TLS 1.3 handshake (o->tls_certificate presented
 * when set).  The server's key must be the one pinned or given; tofu pins
 * a server met for the first time (note then says so).  Returns the
 * connected descriptor with *seal carrying the TLS connection, or -1 with
 * err filled and nothing left open.
 */
int five_tls_open(const char *host, const struct five_options *o, bool tofu,
                  struct five_seal **seal, char *note, size_t note_size, struct five_error *err);

/*
 * five_tls_open on fd, already connected to host's port (its text, as
 * known_hosts names the server): the handshake, the pin, the binding.
 * Takes fd: returns it with *seal as five_tls_open does, or closes it and
 * returns -1 with err filled.
 */
int five_tls_start(int fd, const char *host, const char *port, const struct five_options *o,
                   bool tofu, struct five_seal **seal, char *note, size_t note_size,
                   struct five_error *err);

/*
 * five_seal_wrap for TLS: one record of len bytes (final: close_notify).
 * Standing in for record_seal, it keeps record_seal's contract (0 or -1,
 * nothing said): five_seal_wrap fills the caller's five_error.
 */
int five_tls_wrap(struct five_tls *t, const uint8_t *pt, size_t len, bool final, uint8_t *out,
                  size_t room, size_t *n);

/*
 * five_seal_unwrap for TLS, with record_open's contract (crypto/record.h),
 * which five_seal_unwrap turns into base/error.h's.
 */
int five_tls_unwrap(struct five_tls *t, const uint8_t *in, size_t len, size_t *used, uint8_t *pt,
                    size_t room, size_t *n);

/* Frees t.  NULL is a no-op. */
void five_tls_free(struct five_tls *t);

#endif
