/*
 * Messages between fived's unprivileged worker and its privileged monitor
 * (privilege separation).  The worker asks; the monitor answers.  Every
 * message is a 4-byte type and a 4-byte body length (big-endian), then the
 * body, made of SSH wire strings.  A request of the wrong size or shape is
 * fatal to the worker: the monitor never tries to make sense of it.  Pure
 * code: no I/O.
 */
#ifndef FIVE_PRIVMSG_H
#define FIVE_PRIVMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "proto/auth.h"

#define PRIVMSG_HEADER      8
#define PRIVMSG_REQUEST_MAX 512                /* every request is small */
#define PRIVMSG_REPLY_MAX   (1024 * 1024 + 64) /* a configuration file and framing */
#define PRIVMSG_TEXT_MAX    (1024 * 1024)

enum priv_type {
	PRIV_PUBKEY_CHECK = 1, /* user, key, client address -> authorized? */
	PRIV_PAM_START,        /* user, client address -> a descriptor to a PAM conversation */
	PRIV_CONFIG,           /* -> the configuration text the monitor has accepted */
	PRIV_LISTEN,           /* address -> a listening descriptor */
	PRIV_AUDIT,            /* -> a descriptor for the audit log */
	PRIV_CLIENTS,          /* -> the authorized_clients file's text */
	PRIV_TYPE_MAX = PRIV_CLIENTS,
};

struct priv_request {
	enum priv_type type;
	char user[AUTH_USER_MAX + 1]; /* PUBKEY_CHECK, PAM_START */
	uint8_t pk[AUTH_PK_LEN];      /* PUBKEY_CHECK */
	char peer_ip[ADDR_IP_MAX];    /* PUBKEY_CHECK, PAM_START ("" for local clients) */
	char address[ADDR_TEXT_MAX];  /* LISTEN */
};

struct priv_reply {
	bool ok;
	const uint8_t *text; /* points into the decoded message; a reason, or the configuration */
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
