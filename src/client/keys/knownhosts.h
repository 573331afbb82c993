/*
 * Servers' static keys as five has pinned them: ~/.config/five/known_hosts,
 * one "HOST:PORT BASE64KEY" line per server (a bracketed IPv6 address for
 * HOST), trust on first use.  Also five's own master secret, from which it
 * derives a different static key for every server it talks to.
 */
#ifndef FIVE_KNOWNHOSTS_H
#define FIVE_KNOWNHOSTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "five.h"

#define KNOWNHOSTS_LINE_MAX 512
#define KNOWNHOSTS_FILE_MAX (1024 * 1024)
#define KNOWNHOSTS_ENV      "FIVE_KNOWN_HOSTS"
#define IDENTITY_ENV        "FIVE_IDENTITY_FILE"

/* "host:port", "[v6]:port": the name under which a server's key is pinned. */
void knownhosts_name(const char *host, const char *port, char *out, size_t size);

/*
 * The file: $FIVE_KNOWN_HOSTS, or $HOME/.config/five/known_hosts.  Returns
 * 0, or -1 with err filled (FIVE_ERR_SYSTEM, "no HOME for known_hosts").
 */
int knownhosts_path(char *out, size_t size, struct five_error *err);

/*
 * The key pinned for name.  Returns 0 with *found (and, when found, key
 * and *line filled), or -1 with err filled (FIVE_ERR_SYSTEM) when the
 * file cannot be read.
 */
int knownhosts_find(const char *path, const char *name, uint8_t key[32], unsigned *line,
                    bool *found, struct five_error *err);

/*
 * knownhosts_find in the file a caller names (known_hosts, NULL for
 * knownhosts_path's), whose path goes to path[0..size) for a pin to come.
 */
int knownhosts_lookup(const char *known_hosts, const char *name, char *path, size_t size,
                      uint8_t key[32], unsigned *line, bool *found, struct five_error *err);

/*
 * Appends a line for name (making the directory and the one above it if
 * need be).  Returns 0, or -1 with err filled: FIVE_ERR_SYSTEM, "cannot
 * save the pin for NAME in PATH: REASON".
 */
int knownhosts_add(const char *path, const char *name, const uint8_t key[32],
                   struct five_error *err);

/*
 * Whether a pin for name could be appended to path, before meeting the
 * server (a first contact pins the key it learns, and five never goes on
 * with a key it cannot pin): the directory is made and the file created
 * (empty) if need be.  Returns 0, or -1 with err filled as knownhosts_add
 * fills it.
 */
int knownhosts_can_add(const char *path, const char *name, struct five_error *err);

/*
 * The static key five uses with the server whose key is server_pk:
 * BLAKE2b-256 keyed with five's master secret ($FIVE_IDENTITY_FILE, or
 * $HOME/.config/five/identity, created on first use) of
 * "five-client-static-v1" || server_pk.  Two servers cannot tell that
 * they see the same user.  When the master secret was made now, says so
 * (for the user) in note[0..note_size), when note is not NULL; note is
 * left as it is otherwise.  Returns 0 or -1 with err filled
 * (FIVE_ERR_SYSTEM).
 */
int identity_static_key(const uint8_t server_pk[32], uint8_t sk[32], uint8_t pk[32], char *note,
                        size_t note_size, struct five_error *err);

/* The static key for a server, and its X25519 with the server's key (IK's ss). */
struct identity_keys {
	uint8_t sk[32], pk[32], ss[32];
};

/*
 * As identity_static_key, with the X25519 of that key with server_pk,
 * which is the same in every handshake with that server.  The process
 * keeps the last few (in memory, until it exits), while the identity file
 * stays the same file, unchanged (device, inode, size, modification and
 * change times): a program that opens many sessions neither reads the
 * file nor does these two X25519 each time.  Returns 0, or -1 with err
 * filled.
 */
int identity_session_keys(const uint8_t server_pk[32], struct identity_keys *out, char *note,
                          size_t note_size, struct five_error *err);

#endif
