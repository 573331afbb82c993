/*
 * Small secret files: fived's static key, five's master secret.  Read only
 * when nobody but the owner may read them (as sshd refuses host keys others
 * can read); created with mode 0600, in a directory that exists unless the
 * caller allows making it (a state directory of the program's own).
 */
#ifndef FIVE_KEYFILE_H
#define FIVE_KEYFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define KEYFILE_SECRET_LEN 32
#define KEYFILE_ERR_MAX    512

/* keyfile_load's flags. */
#define KEYFILE_CREATE 1 /* make a new secret when the file does not exist */
#define KEYFILE_MKDIR  2 /* ... and the directories above it that are missing, mode 0700 */

/* What keyfile_load found. */
#define KEYFILE_READ    0 /* the secret the file holds */
#define KEYFILE_CREATED 1 /* a new secret, in a file made now (or, for keyfile_check, to be) */

/*
 * Reads the 32-byte secret stored in path under label (a line "label
 * BASE64").  When the file does not exist and flags has KEYFILE_CREATE,
 * makes a new random secret and writes it; the directory must exist, unless
 * flags also has KEYFILE_MKDIR.  A file that is not a regular file, or
 * that keyfile_permissions refuses with 077, is an error.  Returns
 * KEYFILE_READ or KEYFILE_CREATED, or -1 with err filled ("PATH: ...").
 */
int keyfile_load(const char *path, const char *label, int flags, uint8_t secret[KEYFILE_SECRET_LEN],
                 char *err, size_t err_size);

/*
 * What keyfile_load would do with the same arguments, without creating
 * anything: KEYFILE_READ when the file holds a usable secret,
 * KEYFILE_CREATED when it does not exist and could be made, or -1 with
 * err saying why keyfile_load would fail.
 */
int keyfile_check(const char *path, const char *label, int flags, char *err, size_t err_size);

/*
 * Whether path, which does not exist, could be made as keyfile_load makes
 * its files: its directory (or, with KEYFILE_MKDIR in flags, the nearest
 * one above it that exists) is a directory we may add to.  Returns 0, or
 * -1 with err ("PATH: cannot create: ...").
 */
int keyfile_creatable(const char *path, int flags, char *err, size_t err_size);

/*
 * Whether a secret file with status st may be used: it must belong to the
 * effective user or root, and its mode must have none of the bits in
 * forbidden (077: group and others may do nothing).  Returns 0, or -1
 * with err saying each reason that applies and what fixes it.
 */
int keyfile_permissions(const char *path, const struct stat *st, mode_t forbidden, char *err,
                        size_t err_size);

/* Base64 (standard, padded) of a 32-byte key: 44 characters and a NUL. */
#define KEYFILE_B64_LEN 45
void keyfile_b64(const uint8_t key[32], char out[KEYFILE_B64_LEN]);

/* Decodes a key written by keyfile_b64.  Returns 0 or -1. */
int keyfile_b64_decode(const char *text, uint8_t key[32]);

/* "SHA256:" and unpadded base64 of SHA-256 of the key, as OpenSSH shows keys. */
#define KEYFILE_FP_MAX 64
void keyfile_fingerprint(const uint8_t key[32], char out[KEYFILE_FP_MAX]);

#endif
