/*
 * A hostile fived answering TOKEN (docs/PROTOCOL.md section 9), and
 * GETSIGNKEY and PROVEAUTH (section 13), as libfive reads the answers
 * (src/client/dialect/token.c and proof.c): five_token_read and
 * five_proof_read, what five_issue_token and five_prove run once their
 * request is out, on a struct five_conn over one end of a socketpair whose
 * other end holds the input's lines and then ends its stream.  A proof
 * read whole is then verified as five_prove does (the signing key taken
 * as pinned), for a fixed challenge at a fixed time, so that a real proof
 * in the input verifies for ever.
 *
 * Byte 0 is a mode, the rest fived's replies:
 *
 *   bit 0      0: TOKEN's answer, 1: GETSIGNKEY's and PROVEAUTH's
 *   bits 1-2   the lines of '+' before it (authentication's, HOST's)
 *   bit 3      the caller's buffer is SMALL_SIZE bytes, not the largest
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/dialect/proof.h"
#include "client/dialect/token.h"
#include "client/transport/conn.h"
#include "five.h"
#include "fuzz.h"
#include "proto/proof.h"

#define MODE_PROOF       0x01
#define MODE_REPLIES     0x06
#define MODE_REPLY_SHIFT 1
#define MODE_SMALL       0x08

#define TIMEOUT_MS 200
#define SMALL_SIZE 64

/* The challenge and the clock the seeds' proof was signed for (tests/fuzz/seeds.py). */
#define NONCE    "fuzz-nonce-0123456789"
#define CONSUMER "consumer.example"
#define NOW      1700000100

static char answer[PROOF_SIZE > FIVE_TOKEN_SIZE ? PROOF_SIZE : FIVE_TOKEN_SIZE];

FUZZ_INITIALIZE_SODIUM()

static void
verify(const uint8_t pk[TOKEN_PK_LEN], const char *proof)
{
	uint8_t hash[PROOF_HASH_LEN];
	struct proof_claims c;

	if (proof_challenge((const uint8_t *)NONCE, strlen(NONCE), (const uint8_t *)CONSUMER,
	                    strlen(CONSUMER), hash) != 0)
		abort();
	/* The claims of a proof that verifies are the ones its checks allow. */
	if (proof_verify(pk, proof, hash, NOW, &c) == PROOF_OK &&
	    (c.iat > c.exp || memcmp(c.hash, hash, sizeof(hash)) != 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t pk[TOKEN_PK_LEN];
	struct five_conn c;
	struct five_error err;
	unsigned replies;
	size_t room;
	ssize_t n;
	int sv[2];

	if (size < 1)
		return 0;
	replies = (data[0] & MODE_REPLIES) >> MODE_REPLY_SHIFT;
	room = (data[0] & MODE_SMALL) != 0 ? SMALL_SIZE : sizeof(answer);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	/* Replies beyond the socket's buffer would block: they are cut there. */
	n = send(sv[1], data + 1, size - 1, MSG_DONTWAIT);
	(void)n;
	shutdown(sv[1], SHUT_WR);

	memset(&c, 0, sizeof(c));
	c.fd = sv[0];
	c.timeout_ms = TIMEOUT_MS;
	if ((data[0] & MODE_PROOF) == 0) {
		if (five_token_read(&c, replies, answer, room, &err) == 0 &&
		    five_token_check(answer, FIVE_TOKEN_SIZE - 1, &err) != 0)
			abort();
	} else if (five_proof_read(&c, replies, pk, answer, room, &err) == 0) {
		verify(pk, answer);
	}
	five_conn_close(&c);
	close(sv[1]);
	return 0;
}
