/*
 * Which SSH keys may authenticate which users: OpenSSH authorized_keys
 * files, read with the privilege needed to open users' own files.
 */
#ifndef FIVE_KEYS_H
#define FIVE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "server/conf/config.h"

/* An authorized_keys file larger than this is refused. */
#define KEYS_FILE_MAX (1024 * 1024)

/*
 * Whether the Ed25519 key pk may authenticate user, connecting from
 * peer_ip ("" when not an IP client): listed in cfg's global
 * authorized_keys file with user among its principals="..." option, or in
 * the user's own file (user_authorized_keys, %h and %u expanded; refused
 * when others may write it).  A line's from="..." must match peer_ip.  A
 * line carrying an option fived does not enforce (command=,
 * cert-authority, restrict, ...) authorizes nothing.  Returns 1 or 0;
 * why (size why_size) tells the log which file and line decided, or why
 * none did.
 */
int keys_authorized(const struct config *cfg, const char *user, const uint8_t pk[32],
                    const char *peer_ip, char *why, size_t why_size);

/*
 * Whether ip matches an OpenSSH from= pattern list: comma-separated
 * patterns, each an address with * and ? wildcards or a CIDR block, any
 * prefixed by ! to refuse.  Host names never match: fived does not
 * resolve addresses to names.
 */
int keys_from_matches(const char *patterns, const char *ip);

#endif
