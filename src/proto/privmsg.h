/*
 * Messages between fived's unprivileged worker and its privileged monitor
 * (privilege separation).  The worker asks; the monitor answers.  Every
 * message is a 4-byte type and a 4-byte body length (big-endian), then the
 * body, made of SSH wire strings.  A request of the wrong size or shape is
 * fatal to the worker: the monitor never tries to make sense of it.  Pure
 * code: no I/O.
 *
 * Each request carries only the fields its type lists below; the rest of
 * struct priv_request stays zero.  What a field may contain beyond its
 * shape (an address the configuration names, a service that exists) is
 * the monitor's check, not this codec's.
 */
#ifndef FIVE_PRIVMSG_H
#define FIVE_PRIVMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "proto/auth.h"

#define PRIVMSG_HEADER      8
#define PRIVMSG_ARG_MAX     512                /* a path, an address, a service name, a jti */
#define PRIVMSG_BLOB_MAX    (12 * 1024)        /* token claims or body, a program's environment */
#define PRIVMSG_REQUEST_MAX (16 * 1024)        /* the largest request, framing included */
#define PRIVMSG_REPLY_MAX   (1024 * 1024 + 64) /* a configuration file and framing */
#define PRIVMSG_TEXT_MAX    (1024 * 1024)
#define PRIVMSG_DH_LEN      32 /* an X25519 public key or shared secret */

enum priv_type {
	PRIV_PUBKEY_CHECK = 1, /* user, pk, peer_ip -> authorized? */
	PRIV_PAM_START,        /* user, peer_ip -> a descriptor to a PAM conversation */
	PRIV_CONFIG,           /* -> the configuration text the monitor has accepted */
	PRIV_LISTEN,           /* arg: an address -> a listening descriptor */
	PRIV_AUDIT,            /* -> a descriptor for the audit log */
	PRIV_FILE,             /* arg: a path the configuration names -> the file's text */
	PRIV_KEYS,             /* -> the public halves of the server, token and signing keys */
	PRIV_DH,            /* pk: a peer's X25519 key -> the secret shared with the server key */
	PRIV_TOKEN_ISSUE,   /* arg: the asking identity, number: format, blob: claims -> token */
	PRIV_TOKEN_OPEN,    /* arg: footer, blob: a v4.local body -> the claims, if authentic */
	PRIV_REVOKE,        /* arg: jti, number: expiry -> recorded? */
	PRIV_REVOKED,       /* -> the revocations in force, "JTI EXP" lines */
	PRIV_EARLY_RESERVE, /* number: a 0-RTT timestamp (ns) -> the bound now reserved */
	PRIV_EXEC,          /* arg: service, blob: NUL-separated environment -> a descriptor */
	PRIV_CONNECT,       /* arg: a Unix backend path -> a connected descriptor, or errno */
	PRIV_ACCOUNT,       /* user -> "UID\n" then a group name per line */
	PRIV_READY,         /* -> ok: the worker serves (its start, or a reload, is done) */
	PRIV_ALIVE,         /* blob: its counters -> ok: the worker's loop runs (the heartbeat) */
	PRIV_ADMIN,         /* number: a uid -> may it use the admin socket? */
	PRIV_RELOAD,        /* -> the configuration file read again and accepted? */
	PRIV_PROOF_SIGN,    /* arg: identity, number: its method, blob: a challenge -> a proof */
	PRIV_COOKIE_SECRET, /* number: a cookie bucket -> its cluster secret (32 bytes) */
	PRIV_EXEC_END,      /* number: a program PRIV_EXEC ran -> ok: killed, its stream cut */
	PRIV_EXEC_DONE,     /* number: a program PRIV_EXEC ran -> ok: its stream ended in order */
	PRIV_EARLY_ADMIT,   /* pk: a client key, number: its 0-RTT timestamp (ns) -> newer? */
	PRIV_IS_REVOKED,    /* arg: a jti -> "1" revoked, "0" not */
	PRIV_SHARES,        /* -> every worker's last PRIV_ALIVE blob, each after a byte of
	                       PRIV_SHARE_* flags */
	PRIV_PEER_CONNECT,  /* number: another worker's index -> a descriptor connected to it */
	PRIV_INHERIT,       /* -> its predecessor's last PRIV_ALIVE blob, or nothing */
	PRIV_TYPE_MAX = PRIV_INHERIT,
};

/* PRIV_SHARES: what the byte before each worker's blob says of it. */
#define PRIV_SHARE_LIVE   1 /* its worker runs (else it died, and no successor has sent one) */
#define PRIV_SHARE_ASKING 2 /* it is the asking worker's own */

struct priv_request {
	enum priv_type type;
	char user[AUTH_USER_MAX + 1]; /* PUBKEY_CHECK, PAM_START, ACCOUNT */
	uint8_t pk[PRIVMSG_DH_LEN];   /* PUBKEY_CHECK (Ed25519), DH and EARLY_ADMIT (X25519) */
	char peer_ip[ADDR_IP_MAX];    /* PUBKEY_CHECK, PAM_START ("" for local clients) */
	char arg[PRIVMSG_ARG_MAX]; /* LISTEN, FILE, TOKEN_ISSUE, TOKEN_OPEN, REVOKE, EXEC, CONNECT,
	                              PROOF_SIGN */
	uint64_t number; /* TOKEN_ISSUE, REVOKE, EARLY_*, PROOF_SIGN, COOKIE_SECRET, EXEC_*,
	                    PEER_CONNECT */
	uint8_t blob[PRIVMSG_BLOB_MAX];
	size_t blob_len; /* TOKEN_ISSUE, TOKEN_OPEN, EXEC, PROOF_SIGN, ALIVE */
};

struct priv_reply {
	bool ok;
	const uint8_t *text; /* points into the decoded message: a reason, or the answer */
	size_t text_len;
};

/* Writes a whole request message.  Returns 0 with *len, or -1. */
int privmsg_request_encode(const struct priv_request *req, uint8_t *out, size_t size, size_t *len);

/*
 * Reads a message header: the type and body length.  Returns 0, or -1
 * when the type is unknown or the length beyond max.
 */
int privmsg_header_decode(const uint8_t hdr[PRIVMSG_HEADER], uint32_t *type, uint32_t *len,
                          uint32_t max);

/* Decodes a request body of the given type.  Returns 0, or -1 for any deviation. */
int privmsg_request_decode(uint32_t type, const uint8_t *body, size_t len,
                           struct priv_request *out);

/* Writes a whole reply message for a request of the given type.  Returns 0 with *len, or -1. */
int privmsg_reply_encode(enum priv_type type, bool ok, const void *text, size_t text_len,
                         uint8_t *out, size_t size, size_t *len);

/* Decodes a reply body.  Returns 0, or -1. */
int privmsg_reply_decode(const uint8_t *body, size_t len, struct priv_reply *out);

#endif
