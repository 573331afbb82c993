/*
 * A hostile server as the client meets it, before its key is verified: the
 * answers to the client's sealed handshake (COOKIE, REJECT, RESPONSE), then
 * the server's first records and the reply lines in them, read by libfive's
 * connection (five_text_await, five_conn_read_line).
 *
 * The handshake's own steps (src/client/transport/seal.c) are static and
 * dial fived themselves, so they are mirrored here, call for call, on the
 * pure code they use (proto/sealed.c, crypto/noise.c, crypto/record.c),
 * with the client's keys fixed (its static, its ephemeral, the randomness
 * of its record header and the cookie's nonce).  What follows the
 * handshake runs through the client's own code: a struct five_seal made as
 * seal.c makes it, under a struct five_conn on one end of a socketpair.
 *
 * The input: byte 0 a mode, then chunks, each a big-endian u16 length and
 * that many bytes: one per answer of the server, in turn (a COOKIE makes
 * the client start again: up to two; one that begins with '-' is read as
 * the refusal in text a server over its limits sends instead), then the
 * server's records.
 *
 *   bit 0    Noise_XX, first contact (else Noise_IK, the server's key pinned)
 *   bit 1    repaired: a chunk that starts with COOKIE (F7) is the difficulty
 *            and cookie of a COOKIE the harness seals as the server would; one
 *            that starts with RESPONSE (F6) is the payload of a Noise message
 *            2 the harness writes as the server (its keys fixed), framed with
 *            whatever length it has; the records' chunk is plaintext sealed
 *            under the split's keys.  Else every chunk goes as it is.
 *   bit 2    repaired: a FINAL record after the plaintext
 *   bit 3    the records come with the answer (pending), not later on the socket
 *   bit 4    plain: no handshake; the records' chunk is all fived sends
 *   bits 5-6 the reply lines the client waits for first (five_text_await)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "client/dialect/text.h"
#include "client/transport/conn.h"
#include "client/transport/seal.h"
#include "crypto/noise.h"
#include "crypto/record.h"
#include "five.h"
#include "fuzz.h"
#include "fuzz_random.h"
#include "proto/sealed.h"

#define MODE_XX            0x01
#define MODE_REPAIR        0x02
#define MODE_FINAL         0x04
#define MODE_PENDING       0x08
#define MODE_PLAIN         0x10
#define MODE_REPLIES_SHIFT 5
#define MODE_REPLIES_MASK  0x03

#define COOKIES_MAX  2    /* as seal.c */
#define POW_ATTEMPTS 4096 /* seal.c's budget is 2^26; difficulty 12 or so here */
/* The client offers both suites, as seal.c on a CPU with AES-NI; the RESPONSE chooses. */
#define OFFER                                                                                      \
	(SEALED_SUITE_BIT(RECORD_SUITE_XCHACHA20POLY1305) |                                        \
	 SEALED_SUITE_BIT(RECORD_SUITE_AES256GCM))
#define TIMEOUT_MS     200
#define EARLY          "echo\r\n"
#define LINES_MAX      64
#define WIRE_MAX       (64 * 1024)
#define LABEL_S_SERVER "fuzz client seal server static"
#define LABEL_E_SERVER "fuzz client seal server ephemeral"
#define LABEL_S_CLIENT "fuzz client seal client static"
#define LABEL_E_CLIENT "fuzz client seal client ephemeral"

/* 2023-11-14 22:13:20 UTC: the client's clock, fixed. */
#define FIXED_TIME UINT64_C(1700000000)

struct keys {
	uint8_t s_server[NOISE_DHLEN], s_server_pub[NOISE_DHLEN], e_server[NOISE_DHLEN];
	uint8_t s_client[NOISE_DHLEN], e_client[NOISE_DHLEN];
};

struct input {
	const uint8_t *p;
	size_t len;
};

/* The client's handshake, as seal.c's struct handshake holds it. */
struct client {
	struct noise_handshake hs;
	unsigned pattern;
	uint8_t noise1[SEALED_IK1_MAX];
	size_t noise1_len;
	uint8_t mac1_orig[SEALED_MAC_LEN];
	uint8_t cookie[SEALED_COOKIE_LEN];
	uint8_t pow_nonce[SEALED_POW_NONCE_LEN];
	bool have_cookie;
	uint8_t noise3[SEALED_XX3_MAX]; /* XX: the FINISH's Noise message 3 */
	size_t noise3_len;
};

/* The harness's server, when it repairs: fixed keys, so its messages authenticate. */
struct server {
	struct noise_handshake hs;
	bool read1;
	struct noise_cipher send, recv;
	bool split;
};

static void
derive(uint8_t out[NOISE_DHLEN], const char *label)
{
	crypto_generichash(out, NOISE_DHLEN, (const uint8_t *)label, strlen(label), NULL, 0);
}

static void
keys_init(struct keys *k)
{
	derive(k->s_server, LABEL_S_SERVER);
	derive(k->e_server, LABEL_E_SERVER);
	derive(k->s_client, LABEL_S_CLIENT);
	derive(k->e_client, LABEL_E_CLIENT);
	if (crypto_scalarmult_curve25519_base(k->s_server_pub, k->s_server) != 0)
		__builtin_trap();
}

/* The next chunk; false when the input has none left. */
static bool
next_chunk(struct input *in, struct input *out)
{
	size_t len;

	if (in->len < 2)
		return false;
	len = (size_t)in->p[0] << 8 | in->p[1];
	in->p += 2;
	in->len -= 2;
	if (len > in->len)
		len = in->len;
	*out = (struct input){in->p, len};
	in->p += len;
	in->len -= len;
	return true;
}

static const uint8_t *
server_key_for(const struct keys *k, unsigned pattern)
{
	return pattern == SEALED_IK ? k->s_server_pub : NULL;
}

/* --- the client's steps, as seal.c takes them ------------------------------------------- */

/* start_noise: message 1, IK carrying the early data. */
static void
start_noise(const struct keys *k, struct client *h)
{
	uint8_t prologue[SEALED_PROLOGUE_LEN], payload[SEALED_MSG1_PAYLOAD_MAX];
	uint8_t stamp[SEALED_TAI64N_LEN];
	size_t plen = 0, early_len = h->pattern == SEALED_IK ? sizeof(EARLY) - 1 : 0;

	h->noise1_len = sealed_noise1_len(h->pattern, early_len);
	sealed_prologue(h->pattern, OFFER, h->noise1_len, prologue);
	if (h->pattern == SEALED_IK &&
	    (sealed_tai64n_encode(FIXED_TIME, 0, stamp) != 0 ||
	     sealed_msg1_payload_encode(stamp, (const uint8_t *)EARLY, early_len, payload,
	                                sizeof(payload), &plen) != 0))
		__builtin_trap();
	if (noise_handshake_init(&h->hs, sealed_noise_name(h->pattern), NOISE_INITIATOR, prologue,
	                         sizeof(prologue), h->pattern == SEALED_IK ? k->s_client : NULL,
	                         server_key_for(k, h->pattern)) != 0 ||
	    noise_handshake_set_ephemeral(&h->hs, k->e_client) != 0 ||
	    noise_write_message(&h->hs, payload, plen, h->noise1, sizeof(h->noise1),
	                        &h->noise1_len) != 0)
		__builtin_trap();
}

/* send_initiation: the message is built (and checked as fived would), not sent. */
static void
initiation(const struct keys *k, struct client *h)
{
	static uint8_t out[SEALED_INITIATION_MAX];
	struct sealed_initiation m, got;
	uint8_t mac1_key[SEALED_KEY_LEN];
	size_t n;

	memset(&m, 0, sizeof(m));
	m.pattern = (uint8_t)h->pattern;
	m.suites = OFFER;
	m.noise = h->noise1;
	m.noise_len = h->noise1_len;
	memcpy(m.pow_nonce, h->pow_nonce, sizeof(m.pow_nonce));
	sealed_mac1_key(server_key_for(k, h->pattern), mac1_key);
	if (sealed_initiation_encode(&m, mac1_key, h->have_cookie ? h->cookie : NULL, out,
	                             sizeof(out), &n) != 0 ||
	    sealed_initiation_decode(out, n, &got) != SEALED_OK ||
	    sealed_initiation_check_mac1(&got, mac1_key) != 0)
		__builtin_trap();
	if (!h->have_cookie)
		memcpy(h->mac1_orig, m.mac1, sizeof(h->mac1_orig));
}

/* take_cookie: open it and do the work it asks. */
static bool
take_cookie(const struct keys *k, struct client *h, const uint8_t *msg, size_t len)
{
	struct sealed_cookie_msg c;
	uint8_t key[SEALED_KEY_LEN];

	sealed_cookie_key(server_key_for(k, h->pattern), key);
	if (sealed_cookie_decode(msg, len, &c) != SEALED_OK ||
	    sealed_cookie_open(&c, key, h->mac1_orig, h->cookie) != 0)
		return false;
	if (sealed_pow_solve(h->cookie, h->mac1_orig, c.difficulty, POW_ATTEMPTS, h->pow_nonce) !=
	    0)
		return false;
	if (sealed_pow_check(h->cookie, h->mac1_orig, h->pow_nonce, c.difficulty) != 0)
		__builtin_trap();
	h->have_cookie = true;
	return true;
}

/* on_response: message 2, the learned key (XX), FINISH (XX), then the records. */
static bool
on_response(const struct keys *k, struct client *h, const uint8_t *msg, size_t len,
            struct five_seal *z)
{
	static uint8_t payload3[SEALED_FINISH_PAYLOAD_MAX];
	struct noise_cipher send, recv;
	struct sealed_frame f;
	uint8_t payload[SEALED_RESPONSE_PAYLOAD_LEN], learned[NOISE_DHLEN];
	uint8_t header[RECORD_HEADER_MAX], flags = 0;
	enum record_suite suite;
	size_t plen, hlen;
	bool ok;

	if (sealed_response_decode(msg, len, h->pattern, &f) != SEALED_OK ||
	    noise_read_message(&h->hs, f.noise, f.noise_len, payload, sizeof(payload), &plen) !=
	            0 ||
	    sealed_response_payload_decode(payload, plen, OFFER, &suite, &flags) != 0)
		return false;
	if (h->pattern == SEALED_XX) {
		/* First contact: the key is taken as it comes (the user pins it). */
		if (noise_remote_static(&h->hs, learned) != 0 ||
		    noise_handshake_set_static(&h->hs, k->s_client) != 0 ||
		    sealed_finish_payload_encode(NULL, 0, payload3, sizeof(payload3), &plen) != 0 ||
		    noise_write_message(&h->hs, payload3, plen, h->noise3, sizeof(h->noise3),
		                        &h->noise3_len) != 0)
			__builtin_trap();
		memcpy(z->server_pk, learned, sizeof(learned));
	} else {
		memcpy(z->server_pk, k->s_server_pub, sizeof(z->server_pk));
	}
	z->has_server_pk = true;
	noise_handshake_hash(&h->hs, z->hash);
	ok = noise_split(&h->hs, &send, &recv) == 0 &&
	     record_init_from_split(&z->tx, &z->rx, suite, &send, &recv, header, &hlen) == 0;
	z->early_taken = (flags & SEALED_FLAG_0RTT) != 0 || h->pattern == SEALED_XX;
	noise_cipher_wipe(&send);
	noise_cipher_wipe(&recv);
	if (!ok)
		__builtin_trap();
	return true;
}

/* --- the harness's server, repairing -------------------------------------------------- */

/* A COOKIE for this client: chunk byte 1 the difficulty, then the cookie. */
static size_t
repair_cookie(const struct keys *k, const struct client *h, struct input c, uint8_t *out,
              size_t room)
{
	uint8_t key[SEALED_KEY_LEN], cookie[SEALED_COOKIE_LEN] = {0};
	size_t n;

	if (c.len < 2)
		return 0;
	memcpy(cookie, c.p + 2, c.len - 2 < sizeof(cookie) ? c.len - 2 : sizeof(cookie));
	sealed_cookie_key(server_key_for(k, h->pattern), key);
	if (sealed_cookie_seal(key, cookie, h->mac1_orig, c.p[1], out, room, &n) != 0)
		return 0;
	return n;
}

/* Message 2 with the chunk's payload, framed with whatever length the payload gives. */
static size_t
repair_response(const struct keys *k, struct server *sv, const struct client *h, struct input c,
                uint8_t *out, size_t room)
{
	static uint8_t pt[SEALED_MSG1_PAYLOAD_MAX];
	uint8_t prologue[SEALED_PROLOGUE_LEN];
	size_t plen, n;

	if (!sv->read1) {
		sealed_prologue(h->pattern, OFFER, h->noise1_len, prologue);
		if (noise_handshake_init(&sv->hs, sealed_noise_name(h->pattern), NOISE_RESPONDER,
		                         prologue, sizeof(prologue), k->s_server, NULL) != 0 ||
		    noise_handshake_set_ephemeral(&sv->hs, k->e_server) != 0 ||
		    noise_read_message(&sv->hs, h->noise1, h->noise1_len, pt, sizeof(pt), &plen) !=
		            0)
			__builtin_trap();
		sv->read1 = true;
	}
	if (room < SEALED_FRAME_LEN || c.len - 1 > NOISE_MAX_MESSAGE - SEALED_XX2_LEN)
		return 0;
	if (noise_write_message(&sv->hs, c.p + 1, c.len - 1, out + SEALED_FRAME_LEN,
	                        room - SEALED_FRAME_LEN, &n) != 0)
		return 0;
	out[0] = SEALED_RESPONSE;
	out[1] = SEALED_VERSION;
	out[2] = (uint8_t)(n >> 8);
	out[3] = (uint8_t)n;
	/* The split the client will make, for the records; XX's FINISH is not read back. */
	if (h->pattern == SEALED_IK && noise_split(&sv->hs, &sv->send, &sv->recv) == 0)
		sv->split = true;
	return SEALED_FRAME_LEN + n;
}

/* XX: the server's split comes once it has read the client's FINISH. */
static void
server_finish(struct server *sv, const struct client *h)
{
	static uint8_t pt[SEALED_FINISH_PAYLOAD_MAX];
	size_t plen;

	if (h->pattern != SEALED_XX || !sv->read1 || h->noise3_len == 0)
		return;
	if (noise_read_message(&sv->hs, h->noise3, h->noise3_len, pt, sizeof(pt), &plen) != 0 ||
	    noise_split(&sv->hs, &sv->send, &sv->recv) != 0)
		__builtin_trap();
	sv->split = true;
}

/* The server's records in the suite the client took: its header, the plaintext, FINAL if asked. */
static size_t
seal_records(const struct server *sv, enum record_suite suite, struct input c, bool final,
             uint8_t *out, size_t room)
{
	struct record_sender tx;
	uint8_t key[RECORD_KEY_LEN];
	size_t at = 0, used, piece, n;

	noise_cipher_key(&sv->send, key);
	if (room < RECORD_HEADER_MAX || record_sender_init(&tx, suite, key, out, &used) != 0)
		__builtin_trap();
	while (at < c.len) {
		piece = c.len - at < RECORD_PLAINTEXT_MAX ? c.len - at : RECORD_PLAINTEXT_MAX;
		if (record_seal(&tx, c.p + at, piece, false, out + used, room - used, &n) != 0)
			break;
		used += n;
		at += piece;
	}
	if (final && record_seal(&tx, NULL, 0, true, out + used, room - used, &n) == 0)
		used += n;
	record_sender_wipe(&tx);
	sodium_memzero(key, sizeof(key));
	return used;
}

/* --- after the handshake: libfive's connection reads the replies --------------------------- */

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

/* Takes z (NULL: plain), which the connection frees as it closes. */
static void
replies(struct five_seal *z, const uint8_t *wire, size_t len, bool pending, unsigned await)
{
	struct five_conn c;
	struct five_error err;
	char line[FIVE_TEXT_REPLY_MAX];
	int sv[2], i;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	memset(&c, 0, sizeof(c));
	c.fd = sv[0];
	c.seal = z;
	c.timeout_ms = TIMEOUT_MS;
	if (z != NULL && pending) {
		z->pending_len = len < sizeof(z->pending) ? len : sizeof(z->pending);
		memcpy(z->pending, wire, z->pending_len);
		wire += z->pending_len;
		len -= z->pending_len;
	}
	write_all(sv[1], wire, len);
	shutdown(sv[1], SHUT_WR);
	if (await > 0)
		five_text_await(&c, await, &err);
	for (i = 0; i < LINES_MAX && five_conn_read_line(&c, line, sizeof(line), &err) == 0; i++)
		five_text_check_reply(line, &err);
	/* A sealed session's end: FINAL out, the rest read and dropped; closes sv[0]. */
	five_conn_close(&c);
	close(sv[1]);
}

FUZZ_INITIALIZE_SODIUM_FIXED_RANDOM()

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t msg[WIRE_MAX], wire[WIRE_MAX];
	struct keys k;
	struct client h;
	struct server sv;
	struct five_seal *z = NULL;
	struct input in, c;
	struct five_error err;
	size_t total, len;
	uint8_t mode;
	int round;
	bool repair, done = false;

	if (size < 1)
		return 0;
	fuzz_random_reset();
	mode = data[0];
	repair = (mode & MODE_REPAIR) != 0;
	in = (struct input){data + 1, size - 1};
	if ((mode & MODE_PLAIN) != 0) {
		if (next_chunk(&in, &c))
			replies(NULL, c.p, c.len, false,
			        (mode >> MODE_REPLIES_SHIFT) & MODE_REPLIES_MASK);
		return 0;
	}

	keys_init(&k);
	memset(&h, 0, sizeof(h));
	memset(&sv, 0, sizeof(sv));
	h.pattern = (mode & MODE_XX) != 0 ? SEALED_XX : SEALED_IK;
	start_noise(&k, &h);
	for (round = 0; round <= COOKIES_MAX && !done; round++) {
		initiation(&k, &h);
		if (!next_chunk(&in, &c))
			break;
		len = 0;
		if (repair && c.len > 0 && c.p[0] == SEALED_COOKIE)
			len = repair_cookie(&k, &h, c, msg, sizeof(msg));
		else if (repair && c.len > 0 && c.p[0] == SEALED_RESPONSE)
			len = repair_response(&k, &sv, &h, c, msg, sizeof(msg));
		if (len == 0) {
			len = c.len;
			memcpy(msg, c.p, len);
		}
		/* read_frame: a refusal in text, a whole message, or the handshake ends. */
		if (five_text_refusal(msg, len, &err) != 0 ||
		    sealed_frame_length(msg, len, &total) != SEALED_OK || total > len)
			break;
		if (msg[0] == SEALED_COOKIE) {
			if (round == COOKIES_MAX || !take_cookie(&k, &h, msg, total))
				break;
			continue;
		}
		if (msg[0] == SEALED_REJECT) {
			struct sealed_reject r;

			sealed_reject_decode(msg, total, &r);
			break;
		}
		if ((z = calloc(1, sizeof(*z))) == NULL)
			abort();
		if (!on_response(&k, &h, msg, total, z)) {
			five_seal_free(z);
			z = NULL;
			break;
		}
		done = true;
	}
	if (done && repair)
		server_finish(&sv, &h);
	if (done && next_chunk(&in, &c)) {
		if (repair && sv.split)
			len = seal_records(&sv, z->rx.suite, c, (mode & MODE_FINAL) != 0, wire,
			                   sizeof(wire));
		else
			memcpy(wire, c.p, len = c.len);
		replies(z, wire, len, (mode & MODE_PENDING) != 0,
		        (mode >> MODE_REPLIES_SHIFT) & MODE_REPLIES_MASK);
		z = NULL; /* the connection freed it */
	}
	five_seal_free(z);
	noise_handshake_wipe(&h.hs);
	noise_handshake_wipe(&sv.hs);
	noise_cipher_wipe(&sv.send);
	noise_cipher_wipe(&sv.recv);
	sodium_memzero(&k, sizeof(k));
	return 0;
}
