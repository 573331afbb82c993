/*
 * The control socket: how a local application registers a service name with
 * fived and then receives each granted stream of that service as a file
 * descriptor, instead of fived connecting to a backend.  The application
 * binds no port at all.
 *
 * Transport.  A Unix socket of type SOCK_SEQPACKET at a path fived is
 * configured with (CONTROL_SOCKET_DEFAULT unless told otherwise; libfive
 * reads the environment variable CONTROL_SOCKET_ENV first).  Message
 * boundaries are kept: one message is one sendmsg() and one recvmsg().
 *
 * Framing.  Every message is at most CONTROL_MESSAGE_MAX bytes of text on
 * one line: exactly one "\n", at the very end; no NUL and no other control
 * character anywhere.
 *
 * The conversation:
 *
 *	application -> fived	"REGISTER <service>[ <word>]...\n"
 *	fived -> application	"+ registered <service>\n"
 *			or	"- <reason>\n", then fived closes the connection
 *	fived -> application	"STREAM <json>\n" with exactly one descriptor
 *				(SCM_RIGHTS), once per granted stream
 *
 * <service> is a service name as name_valid() (proto/line.h) defines it;
 * <reason> is printable ASCII, e.g. "not permitted", "unknown service",
 * "not a registered service".  REGISTER is the only request; the
 * application unregisters by closing its connection.
 *
 * Each <word> (1 to CONTROL_WORD_MAX of [a-z0-9_-], one space before
 * each) names a STREAM member beyond the first eight that the application
 * understands: fived adds to its STREAM messages those it knows
 * ("transport", "stream"), and ignores the other words, which a later application
 * may send.  An application that names none (libfive before "transport")
 * receives exactly the first eight members.
 *
 * <json> is one object with exactly these members, no others, none twice:
 *
 *	"session"	string, CONTROL_SESSION_HEX lowercase hex digits
 *	"service"	string, a valid service name (as fived configures it)
 *	"vhost"		string, "" or a valid vhost name (vhost_name_valid())
 *	"identity"	string of 1 to CONTROL_IDENTITY_MAX of [A-Za-z0-9._@-],
 *			the authenticated user; or null when there was no
 *			authentication or the service withholds who it was
 *	"auth_method"	string: "none", "pubkey", "password", "token" or
 *			"external"
 *	"withheld"	boolean: the caller did authenticate, but the service's
 *			policy withholds the identity (which is then null)
 *	"remote_addr"	string, an IPv4 or IPv6 literal, or "" for a client
 *			on a Unix socket
 *	"remote_port"	integer in [0, 65535]
 *	"transport"	only when REGISTER named "transport": how the client's
 *			session with fived is carried, "plain", "sealed" or
 *			"tls"
 *	"stream"	only when REGISTER named "stream": an integer, the
 *			stream's id inside a multiplexed session, or 0 when the
 *			session carries this one stream
 *
 * The members must agree with one another: "identity" is a string exactly
 * when "auth_method" is not "none" and "withheld" is false, and "withheld"
 * can only be true when "auth_method" is not "none".
 *
 * A STREAM message without a descriptor, or with more than one, is a
 * protocol error: the receiver closes whatever descriptors did arrive.
 *
 * Pure code: bytes in, results out; no I/O, no globals.  Passing the
 * descriptor is the caller's business.  Every decoder checks all of the
 * above and returns -1 on any deviation, leaving its outputs zeroed.
 */
#ifndef FIVE_CONTROL_H
#define FIVE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/line.h"

#define CONTROL_SOCKET_DEFAULT "/run/fived/control.sock"
#define CONTROL_SOCKET_ENV     "FIVE_CONTROL_SOCKET"

/* The text of a positive reply to REGISTER, before the service name. */
#define CONTROL_REGISTERED "registered "

/* Every message, its "\n" included; a buffer this large receives any. */
#define CONTROL_MESSAGE_MAX 4096

/* A session id: 16 bytes written as hex. */
#define CONTROL_SESSION_HEX 32

/* An authenticated user's name. */
#define CONTROL_IDENTITY_MAX 64

/* The longest auth_method word ("password") fits with room to spare. */
#define CONTROL_AUTH_METHOD_SIZE 16

/* INET6_ADDRSTRLEN: the longest IPv6 literal with its NUL. */
#define CONTROL_ADDR_SIZE 46

/* The longest transport ("sealed") with its NUL, with room to spare. */
#define CONTROL_TRANSPORT_SIZE 8

/* A word of REGISTER after the service: its longest. */
#define CONTROL_WORD_MAX 32

/* REGISTER's words as control_register_encode and _decode take them: a bit each. */
#define CONTROL_WORD_TRANSPORT  "transport"
#define CONTROL_WANTS_TRANSPORT 1u
#define CONTROL_WORD_STREAM     "stream"
#define CONTROL_WANTS_STREAM    2u

/* One granted stream as fived describes it.  Every string is NUL-terminated. */
struct control_stream {
	char session[CONTROL_SESSION_HEX + 1];
	char service[NAME_MAX_LEN + 1];
	char vhost[VHOST_MAX_LEN + 1];           /* "" when the client named none */
	char identity[CONTROL_IDENTITY_MAX + 1]; /* "" when !has_identity */
	bool has_identity;
	char auth_method[CONTROL_AUTH_METHOD_SIZE];
	bool withheld;
	char remote_addr[CONTROL_ADDR_SIZE]; /* "" for a client on a Unix socket */
	uint16_t remote_port;
	char transport[CONTROL_TRANSPORT_SIZE]; /* "plain", "sealed", "tls"; "" when not sent */
	bool has_stream;                        /* "stream" is sent */
	uint32_t stream; /* the stream in a multiplexed session; 0: the session's only one */
};

/*
 * Writes "REGISTER <service>\n" into out (size bytes; NUL-terminated too, so
 * the message needs one byte more than *len), with a word for each bit of
 * wants (CONTROL_WANTS_*) before the "\n".  Returns 0 and sets *len to the
 * message's length, or -1 when service is not a valid name, wants has a
 * bit no word stands for, or out is too small.
 */
int control_register_encode(const char *service, unsigned wants, char *out, size_t size,
                            size_t *len);

/*
 * Parses a REGISTER message of len bytes (not NUL-terminated).  On success
 * writes the service name, lowercased as every service name is compared,
 * into service, the bits of the words it knows into *wants (the others
 * are ignored), and returns 0; returns -1 (service "", *wants 0) for
 * anything else, a word that is not one included.
 */
int control_register_decode(const char *msg, size_t len, char service[NAME_MAX_LEN + 1],
                            unsigned *wants);

/*
 * Writes "+ <text>\n" (ok) or "- <text>\n" into out (size bytes, also
 * NUL-terminated).  For ok, text must be "registered <service>" with a
 * valid service name; otherwise it is the reason, one or more characters
 * of printable ASCII.  Returns 0 and sets *len, or -1 when text breaks
 * those rules or out is too small.
 */
int control_reply_encode(bool ok, const char *text, char *out, size_t size, size_t *len);

/*
 * Parses a reply message of len bytes (not NUL-terminated) under the rules
 * of control_reply_encode.  On success sets *ok, copies the text after the
 * sign and its space into text (size bytes, NUL-terminated) and returns 0.
 * Returns -1, with *ok false and text "" when size allows, for anything
 * else, a text that does not fit included.
 */
int control_reply_decode(const char *msg, size_t len, bool *ok, char *text, size_t size);

/*
 * Writes "STREAM <json>\n" for *s into out (size bytes, also
 * NUL-terminated), with "transport" when s->transport is not "" and
 * "stream" when s->has_stream.  *s must
 * satisfy every rule a decoder checks, so that nothing is sent that the
 * other side would refuse.  Returns 0 and sets
 * *len, or -1 when *s is invalid, out is too small, or memory runs out.
 */
int control_stream_encode(const struct control_stream *s, char *out, size_t size, size_t *len);

/*
 * Parses a STREAM message of len bytes (not NUL-terminated) into *s, with
 * or without "transport" (s->transport "" without) and "stream"
 * (s->has_stream).  Returns 0, or -1
 * with *s zeroed for any deviation from the rules above.
 * The descriptor that came with the message is not this function's concern.
 */
int control_stream_decode(const char *msg, size_t len, struct control_stream *s);

#endif
