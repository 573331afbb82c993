/*
 * A hostile fived in the USP dialect, as libfive reads it
 * (src/client/dialect/usp.c, jansson): the input's lines are fived's
 * messages after the client's first initialize, read through
 * five_usp_negotiate on one end of a socketpair whose other end holds them
 * and has ended its stream.  What the client sends back (its pubkey, its
 * signature, its password's answers, the second initialize) is left unread.
 *
 * Byte 0 is a mode, the rest fived's messages:
 *
 *   bits 0-1   authentication offered: none, password, pubkey, both
 *   bit 2      the prompt's answer is refused (the user gives up)
 *   bit 3      the session has a token (no authentication then)
 *
 * The pubkey is a fixed Ed25519 key written to a private file at start;
 * the server's key is known, as a pinned one would be, so the client signs.
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

#include "client/dialect/usp.h"
#include "client/transport/conn.h"
#include "five.h"
#include "fuzz.h"
#include "fuzz_random.h"
#include "fuzz_userkey.h"

#define MODE_AUTH_MASK 0x03
#define MODE_NO_ANSWER 0x04
#define MODE_TOKEN     0x08

#define TIMEOUT_MS 200
#define SERVICE    "echo"
#define TOKEN      "tok.fuzz-1"

static const char *const methods[] = {NULL, "password", "pubkey", "pubkey,password"};

FUZZ_INITIALIZE_USER_KEY()

static void
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) <= 0)
			abort();
		p += n;
		len -= (size_t)n;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct five_options o;
	struct five_auth a;
	struct five_conn c;
	struct five_error err;
	int sv[2];
	bool refuse;
	uint8_t mode;

	if (size < 1)
		return 0;
	fuzz_random_reset();
	mode = data[0];
	refuse = (mode & MODE_NO_ANSWER) != 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	write_all(sv[1], data + 1, size - 1);
	shutdown(sv[1], SHUT_WR);

	memset(&a, 0, sizeof(a));
	a.methods = methods[mode & MODE_AUTH_MASK];
	a.user = FUZZ_USER;
	a.key_file = fuzz_user_key_path;
	a.ask = fuzz_ask;
	a.ask_arg = &refuse;
	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.timeout_ms = TIMEOUT_MS;
	o.transport = FIVE_PLAIN;
	if ((mode & MODE_TOKEN) != 0)
		o.token = TOKEN;
	else if (a.methods != NULL)
		o.auth = &a;

	memset(&c, 0, sizeof(c));
	c.fd = sv[0];
	c.timeout_ms = TIMEOUT_MS;
	/* A pinned server key: signatures name it. */
	memset(c.server_pk, 0x5a, sizeof(c.server_pk));
	c.has_server_pk = true;
	five_usp_negotiate(&c, SERVICE, &o, &err);
	five_conn_close(&c);
	close(sv[1]);
	return 0;
}
