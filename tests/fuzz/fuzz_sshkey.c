/*
 * Key files and blobs as fived reads them from users.  The input is tried
 * as a private key file, as a public key file, as the decoded body of a
 * private key (armoured here, so the binary structure is reached directly),
 * and as key and signature blobs.  A private key that parses must sign and
 * verify; a blob that decodes must encode back to the same bytes; a refusal
 * must leave no key bytes behind.
 */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/sshkey.h"
#include "fuzz.h"

#define ARMOUR_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----\n"
#define ARMOUR_END   "\n-----END OPENSSH PRIVATE KEY-----\n"
#define ARMOUR_LEN   (sizeof(ARMOUR_BEGIN) - 1 + sizeof(ARMOUR_END) - 1)
/* Raw bodies whose armoured text stays within SSHKEY_FILE_MAX. */
#define RAW_MAX ((SSHKEY_FILE_MAX - ARMOUR_LEN) / 4 * 3 - 3)

static char armoured[SSHKEY_FILE_MAX + 1];

FUZZ_INITIALIZE_SODIUM()

static void
check_private(const char *text, size_t len)
{
	static const uint8_t msg[] = "fuzz";
	uint8_t sk[SSHKEY_ED25519_SECLEN], pk[SSHKEY_ED25519_PUBLEN];
	uint8_t sig[SSHKEY_ED25519_SIGLEN];
	const char *why = NULL;
	int r;

	r = sshkey_parse_private(text, len, sk, pk, &why);
	if (r == 0) {
		crypto_sign_detached(sig, NULL, msg, sizeof(msg), sk);
		if (crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) != 0 ||
		    memcmp(sk + crypto_sign_SEEDBYTES, pk, sizeof(pk)) != 0)
			abort();
	} else if (why == NULL || !sodium_is_zero(sk, sizeof(sk)) ||
	           (r != SSHKEY_ENCRYPTED && !sodium_is_zero(pk, sizeof(pk))) ||
	           (r != SSHKEY_ERR && r != SSHKEY_UNSUPPORTED && r != SSHKEY_ENCRYPTED)) {
		abort();
	}
	sodium_memzero(sk, sizeof(sk));
}

static void
check_public(const char *text, size_t len)
{
	uint8_t pk[SSHKEY_ED25519_PUBLEN];
	const char *why = NULL;
	int r;

	r = sshkey_parse_public(text, len, pk, &why);
	if (r != 0 && (why == NULL || !sodium_is_zero(pk, sizeof(pk))))
		abort();
}

static void
check_blobs(const uint8_t *data, size_t size)
{
	uint8_t pk[SSHKEY_ED25519_PUBLEN], sig[SSHKEY_ED25519_SIGLEN];
	uint8_t again[SSHKEY_SIG_BLOB_MAX];
	size_t len;

	if (sshkey_blob_decode(data, size, pk) == 0 &&
	    (sshkey_blob_encode(pk, again, sizeof(again), &len) != 0 || len != size ||
	     memcmp(again, data, size) != 0))
		abort();
	if (sshkey_sig_decode(data, size, sig) == 0 &&
	    (sshkey_sig_encode(sig, again, sizeof(again), &len) != 0 || len != size ||
	     memcmp(again, data, size) != 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n;

	check_private((const char *)data, size);
	check_public((const char *)data, size);
	check_blobs(data, size);
	if (size <= RAW_MAX) {
		memcpy(armoured, ARMOUR_BEGIN, sizeof(ARMOUR_BEGIN) - 1);
		n = sizeof(ARMOUR_BEGIN) - 1;
		sodium_bin2base64(armoured + n, sizeof(armoured) - n, data, size,
		                  sodium_base64_VARIANT_ORIGINAL);
		n += strlen(armoured + n);
		memcpy(armoured + n, ARMOUR_END, sizeof(ARMOUR_END) - 1);
		n += sizeof(ARMOUR_END) - 1;
		check_private(armoured, n);
	}
	return 0;
}
