/*
 * Transition on the same port: telling, from a connection's first bytes,
 * a client of an older protocol (an SSH client's version line, an HTTP
 * request line, a TLS ClientHello that does not ask for fived) from one
 * of fived's own (docs/PROTOCOL.md section 1.1).  The bytes are only
 * looked at: whoever decides keeps them, to hand them on exactly.  Pure
 * code: no I/O, no globals.
 */
#ifndef FIVE_LEGACY_H
#define FIVE_LEGACY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "legacy/tlshello.h"

/*
 * The most a connection may send before it is decided: a ClientHello of
 * TLSHELLO_MAX in records of any size, and far more than a version line
 * or a request line.  Past it, the connection is fived's.
 */
#define LEGACY_PEEK_MAX (TLSHELLO_MAX + 4096)

/* An SSH version line with its CR LF (RFC 4253 section 4.2). */
#define LEGACY_SSH_LINE_MAX 255

/* An HTTP request line with its CR LF. */
#define LEGACY_HTTP_LINE_MAX 8192

/* Server names in tls_names. */
#define LEGACY_NAMES_MAX 16

enum legacy_proto {
	LEGACY_SSH,
	LEGACY_HTTP,
	LEGACY_TLS,
	LEGACY_PROTO_COUNT,
};

enum legacy_verdict {
	LEGACY_NEED_MORE, /* the bytes so far fit an older protocol: read more */
	LEGACY_FIVED,     /* fived's: the dialects of section 1 take the bytes */
	LEGACY_HAND_OVER, /* an older protocol's: *proto says which */
};

/* What the server hands over: which protocols, and the names by which TLS clients ask for it. */
struct legacy_rules {
	bool enabled[LEGACY_PROTO_COUNT];
	const char (*names)[TLSHELLO_NAME_MAX + 1]; /* lowercase */
	size_t nnames;
};

/*
 * Decides on the first len bytes of a plain connection.  LEGACY_NEED_MORE
 * only while the bytes are a proper beginning of what an enabled protocol
 * sends and fewer than LEGACY_PEEK_MAX; a caller that can read no more
 * (the client ended, the time to decide is over) takes it as
 * LEGACY_FIVED.  On LEGACY_HAND_OVER, *proto is set.
 */
enum legacy_verdict legacy_classify(const struct legacy_rules *rules, const uint8_t *in, size_t len,
                                    enum legacy_proto *proto);

/* "ssh", "http" or "tls". */
const char *legacy_proto_name(enum legacy_proto proto);

#endif
