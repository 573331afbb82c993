/*
 * PASETO v4 tokens as a verifier reads them.  The keys are those of the
 * standard's vectors, so the seed tokens made with them open.  Any token that
 * opens must be exactly the token the library writes for what it carries:
 * otherwise two texts would stand for one token.
 */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/paseto.h"
#include "fuzz.h"

#define LOCAL_HEADER "v4.local."

static const uint8_t local_key[PASETO_V4_LOCAL_KEYBYTES] = {
        0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a,
        0x7b, 0x7c, 0x7d, 0x7e, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85,
        0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
};

static const uint8_t public_seed[crypto_sign_SEEDBYTES] = {
        0xb4, 0xcb, 0xfb, 0x43, 0xdf, 0x4c, 0xe2, 0x10, 0x72, 0x7d, 0x95,
        0x3e, 0x4a, 0x71, 0x33, 0x07, 0xfa, 0x19, 0xbb, 0x7d, 0x9f, 0x85,
        0x04, 0x14, 0x38, 0xd9, 0xe1, 0x1b, 0x94, 0x2a, 0x37, 0x74,
};

FUZZ_INITIALIZE_SODIUM()

/* The unauthenticated footer must be the one verification returned. */
static void
check_footer(const char *token, const uint8_t *f, size_t flen)
{
	uint8_t f2[PASETO_FOOTER_MAX];
	size_t f2len;

	if (paseto_footer(token, f2, sizeof(f2), &f2len) != 0 || f2len != flen ||
	    memcmp(f2, f, flen) != 0)
		abort();
}

/* The nonce of a v4.local token that decrypted, so it can be encrypted again. */
static void
local_nonce(const char *token, uint8_t nonce[PASETO_V4_LOCAL_NONCEBYTES])
{
	uint8_t body[PASETO_MESSAGE_MAX + 2 * PASETO_V4_LOCAL_NONCEBYTES];
	const char *b64 = token + strlen(LOCAL_HEADER);
	const char *dot = strchr(b64, '.');
	size_t len = dot != NULL ? (size_t)(dot - b64) : strlen(b64);
	size_t blen;

	if (sodium_base642bin(body, sizeof(body), b64, len, NULL, &blen, NULL,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    blen < PASETO_V4_LOCAL_NONCEBYTES)
		abort();
	memcpy(nonce, body, PASETO_V4_LOCAL_NONCEBYTES);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char token[PASETO_TOKEN_SIZE + 1];
	char again[PASETO_TOKEN_SIZE];
	uint8_t m[PASETO_MESSAGE_MAX], f[PASETO_FOOTER_MAX];
	uint8_t nonce[PASETO_V4_LOCAL_NONCEBYTES];
	uint8_t pk[PASETO_V4_PUBLIC_PUBLICKEYBYTES], sk[PASETO_V4_PUBLIC_SECRETKEYBYTES];
	size_t mlen, flen;

	/* One character past the limit still reaches the length checks. */
	if (size > PASETO_TOKEN_MAX + 1)
		size = PASETO_TOKEN_MAX + 1;
	memcpy(token, data, size);
	token[size] = '\0';

	paseto_footer(token, f, sizeof(f), &flen);

	crypto_sign_seed_keypair(pk, sk, public_seed);
	if (paseto_v4_public_verify(pk, token, NULL, 0, m, sizeof(m), &mlen, f, sizeof(f), &flen) ==
	    0) {
		check_footer(token, f, flen);
		if (paseto_v4_public_sign(sk, m, mlen, f, flen, NULL, 0, again, sizeof(again)) !=
		            0 ||
		    strcmp(again, token) != 0)
			abort();
	}

	if (paseto_v4_local_decrypt(local_key, token, NULL, 0, m, sizeof(m), &mlen, f, sizeof(f),
	                            &flen) == 0) {
		check_footer(token, f, flen);
		local_nonce(token, nonce);
		if (paseto_v4_local_encrypt(local_key, nonce, m, mlen, f, flen, NULL, 0, again,
		                            sizeof(again)) != 0 ||
		    strcmp(again, token) != 0)
			abort();
	}

	/* Small output buffers take the size checks. */
	paseto_v4_local_decrypt(local_key, token, NULL, 0, m, size % 64, &mlen, f, size % 16,
	                        &flen);
	return 0;
}
