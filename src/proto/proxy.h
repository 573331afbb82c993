/*
 * PROXY protocol headers (v1 text, v2 binary with TLVs), written to a
 * backend before the first byte of the client's stream so the backend
 * learns who the client is, and read from a balancer in front of fived.
 * Pure encoders and a parser: no I/O.
 */
#ifndef FIVE_PROXY_H
#define FIVE_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The v1 specification's own bound: 107 characters plus CRLF. */
#define PROXY_V1_MAX 108

/* v2: the fixed 16-byte preamble, the largest address block, and room for TLVs. */
#define PROXY_V2_PREAMBLE 16
#define PROXY_V2_MAX      2048

/* TLV types from the specification. */
#define PP2_TYPE_AUTHORITY 0x02
#define PP2_TYPE_UNIQUE_ID 0x05
#define PP2_UNIQUE_ID_MAX  128

/* Project TLVs in the range the specification leaves to applications. */
#define PP2_TYPE_FIVE_IDENTITY    0xE0
#define PP2_TYPE_FIVE_AUTH_METHOD 0xE1
#define PP2_TYPE_FIVE_SERVICE     0xE2
#define PP2_TYPE_FIVE_STREAM      0xE3
#define PP2_TYPE_FIVE_TRANSPORT   0xE4 /* between workers: what carries the client ("sealed") */

struct proxy_tlv {
	uint8_t type;
	const void *value;
	size_t len; /* at most 65535 */
};

/*
 * Writes "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n", or "PROXY UNKNOWN\r\n"
 * when either address is not IPv4/IPv6 or the families differ.  Returns the
 * length written (no NUL), or -1 when out is smaller than PROXY_V1_MAX.
 */
int proxy_v1_encode(const struct sockaddr *src, const struct sockaddr *dst, char *out, size_t size);

/*
 * Writes a v2 PROXY header with the given TLVs, with family UNSPEC when the
 * addresses are not both IPv4 or both IPv6.  Returns the length written, or
 * -1 when it would not fit in size bytes or a TLV is too long.
 */
int proxy_v2_encode(const struct sockaddr *src, const struct sockaddr *dst,
                    const struct proxy_tlv *tlvs, size_t ntlvs, uint8_t *out, size_t size);

/*
 * Inbound: headers as a balancer sends them in front of a client's
 * stream, read by a strict, bounded parser.  The addresses are taken; a
 * v2 header's TLVs are checked for form, and where fived's own identity,
 * method and transport lie is noted (each at most once), for the one
 * sender whose word on them counts: another worker of the same fived,
 * passing on an ATTACH.  What a balancer says of identity is never read.
 *
 * The longest header taken: a v1 line (107 bytes and CRLF) or a v2 header
 * of at most this many bytes, its 16-byte preamble included.  A balancer's
 * TLVs (unique id, SSL facts, ALPN) fit well within it.
 */
#define PROXY_IN_MAX 1024

enum proxy_in_status {
	PROXY_IN_DONE, /* a whole header: see struct proxy_in */
	PROXY_IN_MORE, /* a valid beginning: more bytes are needed */
	PROXY_IN_BAD,  /* not a header, or a malformed one */
};

/* Where a TLV's value lies in the header, when it has one. */
struct proxy_in_value {
	bool present;
	size_t at, len;
};

struct proxy_in {
	size_t len;                                        /* the header's bytes, to be skipped */
	struct proxy_in_value identity, method, transport; /* PP2_TYPE_FIVE_* */
	/*
	 * false: the balancer speaks for itself (v2 LOCAL, v1 UNKNOWN, v2
	 * UNSPEC): the connection's own addresses stand.
	 */
	bool has_addresses;
	struct sockaddr_storage src, dst; /* AF_INET or AF_INET6, when has_addresses */
};

/*
 * Parses the header at in[0..len).  Returns PROXY_IN_DONE with *out
 * filled, PROXY_IN_MORE when in is a proper beginning of a header shorter
 * than PROXY_IN_MAX, or PROXY_IN_BAD (then *why, static, says what).
 */
enum proxy_in_status proxy_in_parse(const uint8_t *in, size_t len, struct proxy_in *out,
                                    const char **why);

#endif
