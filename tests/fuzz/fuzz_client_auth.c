/*
 * A hostile fived answering AUTH in the text dialect (docs/PROTOCOL.md
 * section 4), as libfive reads it (src/client/dialect/auth.c) through
 * five_authenticate, its public entry point: the input's lines are fived's
 * replies, written to one end of a socketpair that then ends its stream;
 * five_authenticate runs on the other.  What the client sends (AUTH, USER,
 * SIGNATURE, RESPONSE lines) is left unread.
 *
 * Byte 0 is a mode, the rest fived's replies:
 *
 *   bits 0-1   the methods the client tries: pubkey, password, both
 *              (pubkey first), both (password first)
 *   bit 2      the prompt's answer is refused (the user gives up)
 *
 * The pubkey is a fixed Ed25519 key written to a private file at start;
 * the server's key is given, as a pinned one would be, so the client signs.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "five.h"
#include "fuzz.h"
#include "fuzz_random.h"
#include "fuzz_userkey.h"

#define MODE_AUTH_MASK 0x03
#define MODE_NO_ANSWER 0x04

#define TIMEOUT_MS 200
/* 32 bytes of 0x5a, base64: the server key the signature names. */
#define SERVER_KEY "WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo="

static const char *const methods[] = {"pubkey", "password", "pubkey,password", "password,pubkey"};

FUZZ_INITIALIZE_USER_KEY()

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct five_options o;
	struct five_auth a;
	struct five_error err;
	int sv[2];
	bool refuse;
	ssize_t n;

	if (size < 1)
		return 0;
	fuzz_random_reset();
	refuse = (data[0] & MODE_NO_ANSWER) != 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	/* Replies beyond the socket's buffer would block: they are cut there. */
	n = send(sv[1], data + 1, size - 1, MSG_DONTWAIT);
	(void)n;
	shutdown(sv[1], SHUT_WR);

	memset(&a, 0, sizeof(a));
	a.methods = methods[data[0] & MODE_AUTH_MASK];
	a.user = FUZZ_USER;
	a.key_file = fuzz_user_key_path;
	a.ask = fuzz_ask;
	a.ask_arg = &refuse;
	five_options_init(&o);
	o.timeout_ms = TIMEOUT_MS;
	o.transport = FIVE_PLAIN;
	o.auth = &a;
	o.server_key = SERVER_KEY;
	five_authenticate(sv[0], &o, &err);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
