/*
 * Redirects, client side (docs/PROTOCOL.md section 2.13): fived's word
 * that a service lives elsewhere, reported as FIVE_ERR_REDIRECT, and the
 * options for following it, with nothing meant for the first server.
 */
#ifndef FIVE_CLIENT_DIALECT_REDIRECT_H
#define FIVE_CLIENT_DIALECT_REDIRECT_H

#include <stdbool.h>

#include "five.h"
#include "proto/line.h"

/*
 * Fails with FIVE_ERR_REDIRECT for where ("HOST PORT SERVICE", as fived
 * sent it), or FIVE_ERR_PROTOCOL when where is not one.  Returns -1.
 */
int five_redirect_fail(const char *where, struct five_error *err);

/* Where the next attempt goes, and with which options.  Lives in the caller's frame. */
struct five_hop {
	const char *host, *service; /* the caller's, then the buffers below */
	struct five_options o;
	struct five_auth auth; /* o.auth after a redirect, pubkey only */
	char host_buf[REDIRECT_HOST_MAX + 1];
	char port[8];
	char service_buf[NAME_MAX_LEN + 1];
	unsigned count; /* redirects followed */
};

/* The first attempt: to host for service with o (resolved options), as the caller asked. */
void five_hop_start(struct five_hop *hop, const char *host, const char *service,
                    const struct five_options *o);

/*
 * After an attempt failed with err: whether it was a redirect to follow
 * now.  Then hop names the new server and service, and hop->o is the
 * options for it (port set; server_key, token and vhost cleared; auth
 * kept for its pubkey method only), and o's notice is told.  Otherwise
 * err is left as it was: a redirect not followed stays FIVE_ERR_REDIRECT.
 */
bool five_hop_next(struct five_hop *hop, const struct five_error *err);

#endif
