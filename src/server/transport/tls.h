/*
 * TLS as a transport, fived's side (docs/PROTOCOL.md, "TLS"): implicit
 * when the client's first byte starts a TLS handshake record, or after the
 * TLS command.  TLS 1.3 only, with OpenSSL through memory BIOs: the
 * session hands raw bytes in and takes raw bytes out, as with the sealed
 * transport, and the text dialect continues inside.
 *
 * The certificate and key come from tls_certificate and tls_key, or are a
 * self-signed pair (tlsfiles.h) made beside the sealed key on first start
 * and reused after, so that each sealed key has its own certificate.  A client certificate is
 * optional: one listed in tls_clients (by the SHA-256 of its public key, or by its subject when its
 * chain verifies against tls_client_ca) authenticates the client as that identity, method external.
 * The channel binding for signatures is RFC 9266's tls-exporter value.
 */
#ifndef FIVE_TLS_H
#define FIVE_TLS_H

#include <stdbool.h>

#include "proto/tlsclients.h"
#include "server/conf/config.h"
#include "server/transport/transport.h"

struct tls_server;

/* The first byte of a TLS handshake record: a ClientHello starts with it. */
#define TLS_RECORD_HANDSHAKE 0x16

/* What fived's TLS context is built from: PEM texts (not owned), and their files' names. */
struct tls_pem {
	const char *cert; /* the certificate, then the rest of its chain */
	size_t cert_len;
	const char *key;
	size_t key_len;
	const char *ca; /* tls_client_ca's certificates, or NULL */
	size_t ca_len;
	const char *cert_name, *key_name; /* for messages */
};

/*
 * Builds fived's TLS context for cfg from the texts of its files
 * (tlsfiles.h says which; the privileged side reads them).  Returns the
 * context (freed with tls_server_free), or NULL after logging why.
 */
struct tls_server *tls_server_new(const struct config *cfg, const struct tls_pem *pem);

/*
 * What tls_server_new and tls_server_prepare would do with cfg, without
 * making the self-signed pair: reads the certificate, its key and
 * tls_client_ca, and parses tls_clients; says (log_info) when the
 * self-signed certificate is still to be made.  Returns 0, or -1 after
 * logging why start would fail.
 */
int tls_server_check(const struct config *cfg, const char *key_path);

/* Frees t and its context (sessions keep theirs until they end).  NULL is a no-op. */
void tls_server_free(struct tls_server *t);

/*
 * What cfg changes for TLS, made ready without being installed: parses
 * its tls_clients file, clients[0..clients_len) (ignored when cfg names
 * none), into *next.  The files of the context itself are read only at
 * start: a cfg that names others is refused.  Returns 0, or -1 with err
 * filled ("FILE:LINE: message").
 */
int tls_server_prepare(const struct tls_server *t, const struct config *cfg, const char *clients,
                       size_t clients_len, struct tls_clients *next, char *err, size_t err_size);

/* Installs what tls_server_prepare made, taking it over (*next is left empty). */
void tls_server_commit(struct tls_server *t, struct tls_clients *next);

/*
 * Whether a client from source_key may start a TLS handshake now: takes
 * one from its handshake budget (handshakes_per_source), as the sealed
 * handshake does.
 */
struct site;
bool tls_admit(struct site *site, const struct config *cfg, const uint8_t *source_key);

/*
 * A TLS transport, server side: everything the client sends from now on
 * is TLS.  The session owns it (ops->free); NULL when memory is short or
 * TLS is not configured.
 */
struct transport *tls_new(const struct transport_link *link);

#endif
