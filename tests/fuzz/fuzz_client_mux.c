/*
 * A hostile fived as libfive's multiplexed session sees it (src/client/mux/):
 * the session's engine runs, on this thread, over one end of a socketpair
 * whose other end already holds the input as fived's frames and has ended
 * its stream.  Every frame goes through the client's reading (wire.c),
 * checking (frames.c) and streams (stream.c, window.c) until the session
 * fails or ends, as a real one would when fived ends it.  Sealed, the frames
 * come in records the harness seals under the session's fixed key, so that
 * what is fuzzed is the plaintext; the records' own failures are
 * fuzz_handshake's and fuzz_record's.
 *
 * The input: byte 0 a mode, byte 1 the size of the records (sealed), the
 * rest fived's frames.
 *
 *   bit 0      sealed (else plain)
 *   bits 1-2   streams opened before fived says anything (0 to 3)
 *   bit 3      fived's answer is announced on each stream's descriptor (five agent)
 *   bit 4      each stream's application sends a little and ends its side
 *   bit 5      sealed: a FINAL record after the frames
 *   bit 6      sealed: the first record was read ahead with the handshake
 *   bit 7      the session has a token (every OPEN carries it)
 *
 * The random bytes of the session (its PINGs) are fixed, so that an input can
 * answer them.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "client/mux/mux.h"
#include "client/transport/conn.h"
#include "client/transport/seal.h"
#include "crypto/record.h"
#include "five.h"
#include "fuzz.h"
#include "fuzz_random.h"

#define MODE_SEALED        0x01
#define MODE_STREAMS_SHIFT 1
#define MODE_STREAMS_MASK  0x03
#define MODE_ANNOUNCE      0x08
#define MODE_LOCAL_END     0x10
#define MODE_FINAL         0x20
#define MODE_READ_AHEAD    0x40
#define MODE_TOKEN         0x80

#define RECORD_UNIT 16 /* records of (byte 1 + 1) * 16 bytes of frames */
#define TIMEOUT_MS  200
#define LABEL_UP    "fuzz client mux: to fived"
#define LABEL_DOWN  "fuzz client mux: from fived"
#define APP_BYTES   "hello"
#define TOKEN       "tok.fuzz-1"
#define STREAMS_MAX 3
#define INPUT_MAX   (64 * 1024)
/* The smallest records cost the most: each frame byte sealed in RECORD_UNIT pieces, a FINAL. */
#define RECORD_WIRE_UNIT (RECORD_LEN_PREFIX + RECORD_UNIT + RECORD_OVERHEAD_MAX)
#define WIRE_MAX         (RECORD_HEADER_MAX + (INPUT_MAX / RECORD_UNIT + 2) * RECORD_WIRE_UNIT)
#define SUITE            RECORD_SUITE_XCHACHA20POLY1305 /* the engine is the same over either suite */

static const char *const services[STREAMS_MAX] = {"echo", "daytime", "discard"};

static void
derive(uint8_t key[RECORD_KEY_LEN], const char *label)
{
	crypto_generichash(key, RECORD_KEY_LEN, (const uint8_t *)label, strlen(label), NULL, 0);
}

/* A sealed session as the handshake leaves it: both directions keyed. */
static struct five_seal *
seal_new(int fd)
{
	struct five_seal *z = calloc(1, sizeof(*z));
	uint8_t key[RECORD_KEY_LEN], header[RECORD_HEADER_MAX];
	size_t hlen;

	if (z == NULL)
		abort();
	derive(key, LABEL_UP);
	if (record_sender_init(&z->tx, SUITE, key, header, &hlen) != 0)
		abort();
	derive(key, LABEL_DOWN);
	if (record_receiver_init(&z->rx, SUITE, key) != 0)
		abort();
	z->fd = fd;
	sodium_memzero(key, sizeof(key));
	return z;
}

/* fived's side of the records: its header, then the frames cut into records. */
static size_t
seal_frames(const uint8_t *in, size_t len, size_t unit, bool final, uint8_t *out, size_t room)
{
	struct record_sender tx;
	uint8_t key[RECORD_KEY_LEN];
	size_t at = 0, used, piece, n;

	derive(key, LABEL_DOWN);
	if (room < RECORD_HEADER_MAX || record_sender_init(&tx, SUITE, key, out, &used) != 0)
		abort();
	while (at < len) {
		piece = len - at < unit ? len - at : unit;
		if (record_seal(&tx, in + at, piece, false, out + used, room - used, &n) != 0)
			abort();
		used += n;
		at += piece;
	}
	if (final) {
		if (record_seal(&tx, NULL, 0, true, out + used, room - used, &n) != 0)
			abort();
		used += n;
	}
	record_sender_wipe(&tx);
	sodium_memzero(key, sizeof(key));
	return used;
}

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

FUZZ_INITIALIZE_SODIUM_FIXED_RANDOM()

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t wire[WIRE_MAX];
	struct five_options o;
	struct five_conn c;
	struct five_error err;
	struct five_session *s;
	int sv[2], app[STREAMS_MAX][2];
	size_t nstreams, i, wire_len, ahead = 0;
	uint8_t mode;

	if (size < 2 || size - 2 > INPUT_MAX)
		return 0;
	fuzz_random_reset();
	mode = data[0];
	nstreams = (mode >> MODE_STREAMS_SHIFT) & MODE_STREAMS_MASK;
	if (nstreams > STREAMS_MAX)
		nstreams = STREAMS_MAX;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	memset(&c, 0, sizeof(c));
	c.fd = sv[0];
	c.timeout_ms = TIMEOUT_MS;
	if ((mode & MODE_SEALED) != 0) {
		c.seal = seal_new(sv[0]);
		wire_len = seal_frames(data + 2, size - 2, ((size_t)data[1] + 1) * RECORD_UNIT,
		                       (mode & MODE_FINAL) != 0, wire, sizeof(wire));
		/* The first record came with the handshake's answer: in pending, not the socket. */
		if ((mode & MODE_READ_AHEAD) != 0) {
			ahead = wire_len < SEALED_PENDING_MAX ? wire_len : SEALED_PENDING_MAX;
			memcpy(c.seal->pending, wire, ahead);
			c.seal->pending_len = ahead;
		}
	} else {
		memcpy(wire, data + 2, size - 2);
		wire_len = size - 2;
	}
	write_all(sv[1], wire + ahead, wire_len - ahead);
	shutdown(sv[1], SHUT_WR);

	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.timeout_ms = TIMEOUT_MS;
	o.token = (mode & MODE_TOKEN) != 0 ? TOKEN : NULL;
	if ((s = mux_session_new(&c, &o, &err)) == NULL)
		abort();
	for (i = 0; i < nstreams; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, app[i]) != 0)
			abort();
		if ((mode & MODE_LOCAL_END) != 0) {
			write_all(app[i][1], (const uint8_t *)APP_BYTES, sizeof(APP_BYTES) - 1);
			shutdown(app[i][1], SHUT_WR);
		}
		/* The session owns app[i][0] from here on, also on failure. */
		if (mux_attach(s, app[i][0], services[i], NULL, 0, false,
		               (mode & MODE_ANNOUNCE) != 0 ? MUX_TELL_ANSWER | MUX_TELL_ENDS : 0,
		               &err) == 0)
			abort();
	}

	mux_engine_run(s);
	if (!s->dead || !s->finished)
		__builtin_trap();
	mux_session_free(s);
	for (i = 0; i < nstreams; i++)
		close(app[i][1]);
	close(sv[1]);
	return 0;
}
