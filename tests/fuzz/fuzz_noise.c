/*
 * The responder side of the Noise handshakes fived accepts, reading attacker
 * bytes.  The first input byte picks the case:
 *
 *   even: Noise_IK; the rest is message 1.
 *   odd:  Noise_XX; two bytes (big-endian) give the length of message 1, which
 *         follows; whatever remains is message 3, read after a real message 2.
 *
 * Every key, the responder's ephemeral included, is fixed, so a seed recorded
 * from a real handshake against these keys runs all the way to transport.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "crypto/noise.h"
#include "fuzz.h"

#define IK            "Noise_IK_25519_ChaChaPoly_BLAKE2b"
#define XX            "Noise_XX_25519_ChaChaPoly_BLAKE2b"
#define PROLOGUE      "fived fuzz"
#define LEN_PREFIX    2 /* length of XX message 1 */
#define REPLY_PAYLOAD 16

static void
derive(uint8_t out[NOISE_DHLEN], const char *label)
{
	crypto_generichash(out, NOISE_DHLEN, (const uint8_t *)label, strlen(label), NULL, 0);
}

/* Once complete, the transport keys must work in both directions of this side. */
static void
finish(struct noise_handshake *hs)
{
	static const uint8_t text[] = "transport";
	struct noise_cipher send, recv;
	uint8_t ct[sizeof(text) + NOISE_TAGLEN], h[NOISE_HASHLEN], rs[NOISE_DHLEN];

	if (!noise_handshake_complete(hs))
		__builtin_trap();
	if (noise_remote_static(hs, rs) != 0)
		__builtin_trap();
	if (noise_split(hs, &send, &recv) != 0)
		__builtin_trap();
	noise_handshake_hash(hs, h);
	if (noise_cipher_encrypt(&send, h, sizeof(h), text, sizeof(text), ct) != 0)
		__builtin_trap();
	/* Our own record under the receive key must not authenticate. */
	if (noise_cipher_decrypt(&recv, h, sizeof(h), ct, sizeof(ct), ct) == 0)
		__builtin_trap();
	noise_cipher_wipe(&send);
	noise_cipher_wipe(&recv);
}

static void
responder(struct noise_handshake *hs, const char *name)
{
	uint8_t s[NOISE_DHLEN], e[NOISE_DHLEN];

	derive(s, "fuzz responder static");
	derive(e, "fuzz responder ephemeral");
	if (noise_handshake_init(hs, name, NOISE_RESPONDER, (const uint8_t *)PROLOGUE,
	                         strlen(PROLOGUE), s, NULL) != 0 ||
	    noise_handshake_set_ephemeral(hs, e) != 0)
		__builtin_trap();
	sodium_memzero(s, sizeof(s));
	sodium_memzero(e, sizeof(e));
}

static void
run_ik(const uint8_t *msg, size_t len)
{
	static uint8_t payload[NOISE_MAX_MESSAGE], out[NOISE_MAX_MESSAGE];
	struct noise_handshake hs;
	size_t payload_len, out_len;

	responder(&hs, IK);
	if (noise_read_message(&hs, msg, len, payload, sizeof(payload), &payload_len) != 0) {
		if (payload_len != 0 || noise_handshake_complete(&hs))
			__builtin_trap();
		return;
	}
	if (noise_write_message(&hs, payload, payload_len < REPLY_PAYLOAD ? payload_len : 0, out,
	                        sizeof(out), &out_len) != 0)
		__builtin_trap();
	finish(&hs);
	noise_handshake_wipe(&hs);
}

static void
run_xx(const uint8_t *data, size_t size)
{
	static uint8_t payload[NOISE_MAX_MESSAGE], out[NOISE_MAX_MESSAGE];
	struct noise_handshake hs;
	size_t len1, payload_len, out_len;

	if (size < LEN_PREFIX)
		return;
	len1 = (size_t)data[0] << 8 | data[1];
	data += LEN_PREFIX;
	size -= LEN_PREFIX;
	if (len1 > size)
		len1 = size;

	responder(&hs, XX);
	if (noise_read_message(&hs, data, len1, payload, sizeof(payload), &payload_len) != 0)
		return;
	/* A bad ephemeral in message 1 can only fail here, at the first DH. */
	if (noise_write_message(&hs, NULL, 0, out, sizeof(out), &out_len) != 0)
		return;
	if (noise_read_message(&hs, data + len1, size - len1, payload, sizeof(payload),
	                       &payload_len) != 0) {
		if (payload_len != 0 || noise_handshake_complete(&hs))
			__builtin_trap();
		return;
	}
	finish(&hs);
	noise_handshake_wipe(&hs);
}

FUZZ_INITIALIZE_SODIUM()

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] % 2 == 0)
		run_ik(data + 1, size - 1);
	else
		run_xx(data + 1, size - 1);
	return 0;
}
