#include "crypto/aesgcm.h"

#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

/* Noise's Rekey nonce: 4 zero bytes, then 2^64 - 1; no record ever uses it. */
static const uint8_t rekey_nonce[AESGCM_NONCE_LEN] = {0,    0,    0,    0,    0xff, 0xff,
                                                      0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static int
set_key(struct aesgcm *g, const uint8_t key[AESGCM_KEY_LEN])
{
	return EVP_CipherInit_ex(g->ctx, EVP_aes_256_gcm(), NULL, key, NULL, g->seal ? 1 : 0) == 1
	               ? 0
	               : -1;
}

int
aesgcm_init(struct aesgcm *g, const uint8_t key[AESGCM_KEY_LEN], bool seal)
{
	g->seal = seal;
	g->ctx = EVP_CIPHER_CTX_new();
	if (g->ctx == NULL || set_key(g, key) != 0) {
		aesgcm_wipe(g);
		return -1;
	}
	return 0;
}

int
aesgcm_seal(struct aesgcm *g, const uint8_t nonce[AESGCM_NONCE_LEN], const uint8_t *pt, size_t len,
            uint8_t *out)
{
	int n = 0, fin = 0;

	if (g->ctx == NULL || !g->seal || len > AESGCM_TEXT_MAX || (pt == NULL && len > 0))
		goto fail;
	if (EVP_CipherInit_ex(g->ctx, NULL, NULL, NULL, nonce, 1) != 1 ||
	    (len > 0 && EVP_CipherUpdate(g->ctx, out, &n, pt, (int)len) != 1) ||
	    EVP_CipherFinal_ex(g->ctx, out + n, &fin) != 1 || (size_t)(n + fin) != len ||
	    EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_GET_TAG, AESGCM_TAG_LEN, out + len) != 1)
		goto fail;
	return 0;
fail:
	if (len <= AESGCM_TEXT_MAX)
		sodium_memzero(out, len + AESGCM_TAG_LEN);
	return -1;
}

int
aesgcm_open(struct aesgcm *g, const uint8_t nonce[AESGCM_NONCE_LEN], const uint8_t *in,
            size_t in_len, uint8_t *pt)
{
	uint8_t tag[AESGCM_TAG_LEN];
	size_t len;
	int n = 0, fin = 0;

	if (in_len < AESGCM_TAG_LEN || in_len > AESGCM_TEXT_MAX + AESGCM_TAG_LEN)
		return -1;
	len = in_len - AESGCM_TAG_LEN;
	/* OpenSSL takes the expected tag through a non-const pointer. */
	memcpy(tag, in + len, AESGCM_TAG_LEN);
	if (g->ctx == NULL || g->seal)
		goto fail;
	if (EVP_CipherInit_ex(g->ctx, NULL, NULL, NULL, nonce, 0) != 1 ||
	    (len > 0 && EVP_CipherUpdate(g->ctx, pt, &n, in, (int)len) != 1) ||
	    EVP_CIPHER_CTX_ctrl(g->ctx, EVP_CTRL_GCM_SET_TAG, AESGCM_TAG_LEN, tag) != 1 ||
	    EVP_CipherFinal_ex(g->ctx, pt + n, &fin) != 1 || (size_t)(n + fin) != len)
		goto fail;
	return 0;
fail:
	/* The plaintext of a record that does not authenticate is never seen. */
	sodium_memzero(pt, len);
	return -1;
}

int
aesgcm_rekey(struct aesgcm *g)
{
	static const uint8_t zeros[AESGCM_KEY_LEN];
	uint8_t key[AESGCM_KEY_LEN];
	int n = 0, r = -1;

	/*
	 * GCM's ciphertext is the plaintext XOR the counter-mode keystream, in
	 * either direction, so a context set up for opening derives the same
	 * bytes; the tag of this one encryption is not wanted.
	 */
	if (g->ctx != NULL && EVP_CipherInit_ex(g->ctx, NULL, NULL, NULL, rekey_nonce, -1) == 1 &&
	    EVP_CipherUpdate(g->ctx, key, &n, zeros, sizeof(zeros)) == 1 && n == sizeof(key) &&
	    set_key(g, key) == 0)
		r = 0;
	sodium_memzero(key, sizeof(key));
	if (r != 0)
		aesgcm_wipe(g);
	return r;
}

void
aesgcm_wipe(struct aesgcm *g)
{
	EVP_CIPHER_CTX_free(g->ctx);
	g->ctx = NULL;
}

bool
aesgcm_hardware(void)
{
	return crypto_aead_aes256gcm_is_available() != 0;
}

void
aesgcm_preload(void)
{
	static const uint8_t key[AESGCM_KEY_LEN];
	struct aesgcm g;

	if (aesgcm_init(&g, key, true) == 0)
		aesgcm_wipe(&g);
}
