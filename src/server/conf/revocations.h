/*
 * Tokens revoked before their expiry (docs/PROTOCOL.md section 9.4): a
 * list of token ids and expiries, forgetting each entry once its token
 * has expired anyway.  The privileged side keeps the list in a file
 * across restarts ("JTI EXP" lines, appended and synced before a
 * revocation is reported done, rewritten without expired entries at
 * start and when it grows); the worker keeps a copy it checks tokens
 * against, refilled from the privileged side when it starts.
 *
 * A full list refuses a revocation: it never reports one it could not
 * record.  Issuance quotas (privops.c) keep one identity from filling it.
 */
#ifndef FIVE_REVOCATIONS_H
#define FIVE_REVOCATIONS_H

#include <stddef.h>
#include <stdint.h>

#include "proto/token.h"

/* Revocations remembered at once. */
#define REVOCATIONS_MAX 65536

/* "JTI EXP\n": 32 hex digits, a space, at most 20 digits. */
#define REVOCATIONS_LINE_MAX (TOKEN_JTI_LEN + 1 + 20 + 2)

/* The file, read whole: every entry and its line. */
#define REVOCATIONS_FILE_MAX (REVOCATIONS_MAX * REVOCATIONS_LINE_MAX)

/* Token ids are random: their first digits spread them over this many buckets. */
#define REVOCATIONS_BUCKETS 4096

struct revoked {
	char jti[TOKEN_JTI_LEN + 1];
	uint64_t exp;
};

struct revoked_bucket {
	struct revoked *e; /* unordered, malloc'd and grown as needed; owned */
	size_t n, cap;
};

struct revocations {
	struct revoked_bucket bucket[REVOCATIONS_BUCKETS];
	size_t n;        /* in all buckets */
	char path[4096]; /* the file, or "" for a copy without one */
	int fd;          /* the file, open for appending, or -1 */
	size_t lines;    /* in the file since its last rewrite */
};

/* An empty list without a file. */
void revocations_init(struct revocations *r);

/* Calls fn for every entry not expired at now. */
void revocations_each(const struct revocations *r, uint64_t now,
                      void (*fn)(void *arg, const char *jti, uint64_t exp), void *arg);

/* Frees the list and closes the file.  Safe more than once. */
void revocations_free(struct revocations *r);

/*
 * Takes path as r's file: reads the entries not expired by now (a missing
 * file is an empty list), rewrites it with only those, and opens it for
 * appending.  Returns 0, or -1 after logging why.
 */
int revocations_load_file(struct revocations *r, const char *path, uint64_t now);

/*
 * Replaces r's entries with those of text[0..len) ("JTI EXP" lines, as
 * revocations_format writes) not expired by now.  Returns 0, or -1 (r
 * then empty) for a damaged line; err says which.
 */
int revocations_parse(struct revocations *r, const char *text, size_t len, uint64_t now, char *err,
                      size_t err_size);

/* The entries as "JTI EXP" lines, malloc'd into *text (the caller frees).  Returns 0 or -1. */
int revocations_format(const struct revocations *r, char **text, size_t *len);

/* Whether jti is revoked (forgetting expired entries as they are met). */
int revocations_contains(struct revocations *r, const char *jti, uint64_t now);

/*
 * Revokes jti until exp: appends and syncs it to the file first when r has
 * one.  Returns 0 (also when it already was), or -1 when the list is full
 * or the file cannot be written (logged at error level, with why in err).
 */
int revocations_add(struct revocations *r, const char *jti, uint64_t exp, uint64_t now, char *err,
                    size_t err_size);

/* Whether s is a token id as a revocation names it: TOKEN_JTI_LEN lowercase hex digits. */
int revocations_jti_valid(const char *s);

#endif
