/*
 * Small secret files: fived's static key, five's master secret.  Read only
 * when nobody but the owner may read them (as sshd refuses host keys others
 * can read); created with mode 0600 in a directory made 0700 if missing.
 */
#ifndef FIVE_KEYFILE_H
#define FIVE_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#define KEYFILE_SECRET_LEN 32
#define KEYFILE_ERR_MAX    256

/*
 * Reads the 32-byte secret stored in path under label (a line "label
 * BASE64").  When the file does not exist and create is set, makes a new
 * random secret and writes it.  Returns 0, or -1 with err filled.
 */
int keyfile_load(const char *path, const char *label, int create,
                 uint8_t secret[KEYFILE_SECRET_LEN], char *err, size_t err_size);

/* Base64 (standard, padded) of a 32-byte key: 44 characters and a NUL. */
#define KEYFILE_B64_LEN 45
void keyfile_b64(const uint8_t key[32], char out[KEYFILE_B64_LEN]);

/* Decodes a key written by keyfile_b64.  Returns 0 or -1. */
int keyfile_b64_decode(const char *text, uint8_t key[32]);

/* "SHA256:" and unpadded base64 of SHA-256 of the key, as OpenSSH shows keys. */
#define KEYFILE_FP_MAX 64
void keyfile_fingerprint(const uint8_t key[32], char out[KEYFILE_FP_MAX]);

#endif
