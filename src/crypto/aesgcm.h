/*
 * AES-256-GCM with 96-bit nonces and 128-bit tags, for the sealed channel's
 * AES-256-GCM records (crypto/record.h), over OpenSSL's EVP: on this
 * project's x86-64 machines it runs AES-NI with VAES and VPCLMULQDQ, about
 * twice the speed of libsodium's crypto_aead_aes256gcm (bench/REPORT.md).
 *
 * No additional data: the records have none.  One struct aesgcm is one key in
 * one direction; it holds an OpenSSL context, so it owns an allocation from
 * aesgcm_init() until aesgcm_wipe(), which every path must reach.
 * No I/O, no globals.
 */
#ifndef FIVE_AESGCM_H
#define FIVE_AESGCM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AESGCM_KEY_LEN   32
#define AESGCM_NONCE_LEN 12
#define AESGCM_TAG_LEN   16
#define AESGCM_TEXT_MAX  65536 /* bytes sealed or opened in one call: records are far smaller */

struct aesgcm {
	void *ctx; /* EVP_CIPHER_CTX, keyed; NULL once wiped */
	bool seal; /* the direction the context was set up for */
};

/*
 * Keys g for sealing (seal) or opening with key (copied into the OpenSSL
 * context).  Returns 0, or -1 (out of memory, no AES-256-GCM in OpenSSL)
 * with g wiped.
 */
int aesgcm_init(struct aesgcm *g, const uint8_t key[AESGCM_KEY_LEN], bool seal);

/*
 * Seals len bytes of pt (len <= AESGCM_TEXT_MAX; pt may be NULL when len is
 * 0) under nonce into out: len bytes of ciphertext, then the tag.  out holds
 * len + AESGCM_TAG_LEN bytes and does not overlap pt.  The caller never
 * repeats a nonce under one key.  Returns 0, or -1 (a context for opening,
 * a length out of range, an OpenSSL failure) with out zeroed.
 */
int aesgcm_seal(struct aesgcm *g, const uint8_t nonce[AESGCM_NONCE_LEN], const uint8_t *pt,
                size_t len, uint8_t *out);

/*
 * Opens in[0..in_len) (ciphertext, then the tag; AESGCM_TAG_LEN <= in_len <=
 * AESGCM_TEXT_MAX + AESGCM_TAG_LEN) into pt (in_len - AESGCM_TAG_LEN bytes, not
 * overlapping in).  Returns 0, or -1 (the tag does not verify, a length out
 * of range, a context for sealing) with pt zeroed.
 */
int aesgcm_open(struct aesgcm *g, const uint8_t nonce[AESGCM_NONCE_LEN], const uint8_t *in,
                size_t in_len, uint8_t *pt);

/*
 * Replaces the key with Noise's default Rekey(k) (revision 34, section
 * 11.3): the first 32 bytes of ENCRYPT(k, 2^64 - 1, empty, 32 zero bytes),
 * the nonce being 4 zero bytes then 2^64 - 1 big-endian.  Both sides of a
 * direction derive the same key.  Returns 0, or -1 with g wiped.
 */
int aesgcm_rekey(struct aesgcm *g);

/* Frees the context (OpenSSL clears its key schedule); safe on a wiped or zeroed g. */
void aesgcm_wipe(struct aesgcm *g);

/*
 * Loads OpenSSL's configuration and the cipher's implementation, which a
 * process otherwise does at its first AES-GCM record: a process that
 * forks one child per session (five -L) does it once, before forking.
 */
void aesgcm_preload(void);

/*
 * Whether this CPU runs AES-GCM in hardware (AES-NI and carry-less
 * multiplication, as libsodium detects them): a client without them keeps
 * XChaCha20-Poly1305, whose software speed is better and constant-time.
 */
bool aesgcm_hardware(void);

#endif
