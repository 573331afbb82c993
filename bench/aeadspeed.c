/*
 * aeadspeed: how fast one core seals and opens sealed-session records, by
 * suite, in bytes per CPU second (CPU time, so that other load on the machine
 * matters less than it does to wall-clock throughput).  Beside fived's two
 * record suites (crypto/record.c: XChaCha20-Poly1305 secretstream, and
 * AES-256-GCM through OpenSSL's EVP), libsodium's crypto_aead_aes256gcm with a
 * precomputed key, the other AES-256-GCM fived could have used.
 *
 *   aeadspeed [RECORD_BYTES [MEGABYTES]]     defaults: 16384 and 1024
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "crypto/record.h"

#define DEFAULT_RECORD 16384
#define DEFAULT_MB     1024
#define BYTES_PER_MB   1000000.0
#define BATCH          64 /* records sealed, then opened, between two readings of the clock */

static double
cpu_seconds(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void
report(const char *what, size_t record, size_t total, double seconds)
{
	printf("%-40s %6zu-byte records: %6.0f MB per CPU second\n", what, record,
	       (double)total / seconds / BYTES_PER_MB);
}

/*
 * Seals total bytes in records of `record` bytes with fived's record layer,
 * BATCH records at a time, then opens each batch; each side timed apart.
 */
static int
record_suite(enum record_suite suite, size_t record, size_t total)
{
	static uint8_t pt[RECORD_PLAINTEXT_MAX], wire[BATCH * RECORD_WIRE_MAX];
	static uint8_t out[RECORD_PLAINTEXT_MAX];
	static struct record_sender tx;
	static struct record_receiver rx;
	uint8_t key[RECORD_KEY_LEN], header[RECORD_HEADER_MAX];
	size_t hlen, len, used, n, done = 0, at, i;
	double t0, seal = 0, open = 0;
	char what[64];

	randombytes_buf(key, sizeof(key));
	randombytes_buf(pt, sizeof(pt));
	if (record_sender_init(&tx, suite, key, header, &hlen) != 0 ||
	    record_receiver_init(&rx, suite, key) != 0 ||
	    record_open(&rx, header, hlen, &used, out, sizeof(out), &n) != RECORD_NEED_MORE)
		return -1;
	while (done < total) {
		t0 = cpu_seconds();
		for (i = 0, at = 0; i < BATCH; i++, at += len)
			if (record_seal(&tx, pt, record, false, wire + at, sizeof(wire) - at,
			                &len) != 0)
				return -1;
		seal += cpu_seconds() - t0;
		t0 = cpu_seconds();
		for (i = 0, len = at, at = 0; i < BATCH; i++, at += used)
			if (record_open(&rx, wire + at, len - at, &used, out, sizeof(out), &n) !=
			            RECORD_OK ||
			    n != record)
				return -1;
		open += cpu_seconds() - t0;
		done += BATCH * record;
	}
	record_sender_wipe(&tx);
	record_receiver_wipe(&rx);
	snprintf(what, sizeof(what), "fived %s seal", record_suite_name(suite));
	report(what, record, done, seal);
	snprintf(what, sizeof(what), "fived %s open", record_suite_name(suite));
	report(what, record, done, open);
	return 0;
}

/* libsodium's AES-256-GCM, sealing only, with counter nonces as fived's records use them. */
static int
sodium_aes(size_t record, size_t total)
{
	static uint8_t pt[RECORD_PLAINTEXT_MAX], ct[RECORD_PLAINTEXT_MAX];
	crypto_aead_aes256gcm_state st;
	uint8_t key[crypto_aead_aes256gcm_KEYBYTES], nonce[crypto_aead_aes256gcm_NPUBBYTES] = {0};
	uint8_t tag[crypto_aead_aes256gcm_ABYTES];
	unsigned long long taglen;
	size_t done;
	double t0;

	/* Without AES-NI libsodium has no AES-256-GCM at all. */
	if (!crypto_aead_aes256gcm_is_available())
		return 0;
	randombytes_buf(key, sizeof(key));
	randombytes_buf(pt, sizeof(pt));
	crypto_aead_aes256gcm_beforenm(&st, key);
	t0 = cpu_seconds();
	for (done = 0; done < total; done += record) {
		sodium_increment(nonce, sizeof(nonce));
		if (crypto_aead_aes256gcm_encrypt_detached_afternm(ct, tag, &taglen, pt, record,
		                                                   NULL, 0, NULL, nonce, &st) != 0)
			return -1;
	}
	report("libsodium crypto_aead_aes256gcm seal", record, total, cpu_seconds() - t0);
	sodium_memzero(&st, sizeof(st));
	return 0;
}

int
main(int argc, char **argv)
{
	size_t record = argc > 1 ? strtoul(argv[1], NULL, 10) : DEFAULT_RECORD;
	size_t total = (size_t)((argc > 2 ? strtod(argv[2], NULL) : DEFAULT_MB) * BYTES_PER_MB);

	if (sodium_init() < 0 || record < 1 || record > RECORD_PLAINTEXT_MAX || total < record) {
		fprintf(stderr, "usage: aeadspeed [RECORD_BYTES (1-%d) [MEGABYTES]]\n",
		        RECORD_PLAINTEXT_MAX);
		return 2;
	}
	if (record_suite(RECORD_SUITE_XCHACHA20POLY1305, record, total) != 0 ||
	    record_suite(RECORD_SUITE_AES256GCM, record, total) != 0 ||
	    sodium_aes(record, total) != 0) {
		fprintf(stderr, "aeadspeed: a record failed\n");
		return 1;
	}
	return 0;
}
