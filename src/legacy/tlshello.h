/*
 * A TLS ClientHello, looked at and not consumed: whether it asks for
 * fived, by its ALPN list or its server name.  For the transition on the
 * same port (legacy.h).  Pure code: no I/O, no globals.
 */
#ifndef FIVE_TLSHELLO_H
#define FIVE_TLSHELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The ALPN protocol id by which a TLS client asks for fived (five --tls sends it). */
#define TLSHELLO_ALPN_FIVED     "fived"
#define TLSHELLO_ALPN_FIVED_LEN 5

/* A ClientHello, its handshake header included; a longer one is not read. */
#define TLSHELLO_MAX 16384

/* A server name (SNI), as DNS allows. */
#define TLSHELLO_NAME_MAX 253

/* What a ClientHello says of whom it asks for. */
struct tls_hello {
	bool alpn_fived;                 /* its ALPN list offers TLSHELLO_ALPN_FIVED */
	char sni[TLSHELLO_NAME_MAX + 1]; /* its server_name's host_name, lowercase; "" none */
};

enum tlshello_status {
	TLSHELLO_NEED_MORE, /* the hello is not complete in what has come */
	TLSHELLO_OK,        /* *hello is filled */
	TLSHELLO_BAD,       /* not a well-formed ClientHello within the bounds */
};

/*
 * Reads the ClientHello at the start of in[0..len), which may span
 * several TLS handshake records: its ALPN list and server name.  Nothing
 * else in it is interpreted; extensions are checked for their framing,
 * and none may appear twice.  A host name other than letters, digits,
 * '.', '-' and '_', or a second one, makes the hello TLSHELLO_BAD.
 */
enum tlshello_status tlshello_peek(const uint8_t *in, size_t len, struct tls_hello *hello);

#endif
