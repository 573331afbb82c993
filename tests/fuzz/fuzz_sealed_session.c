/*
 * Whole sealed sessions (tests/harness/): a client that holds real keys
 * (a fixed static, the worker's key as the harness has it) makes a real IK
 * or XX initiation, answers the worker's COOKIE on a new connection, reads
 * its RESPONSE as libfive does (src/client/transport/seal.c), splits, and
 * then sends what the input says in records sealed under the session's
 * keys.  Mutations of the plaintext therefore reach what follows the
 * handshake on the server (src/server/transport/seal.c's records, the text
 * dialect, AUTH, MULTIPLEX, USP), and the records the server sends back
 * must all open (the client reads them as they come).
 *
 * The input: byte 0 a mode, byte 1 a tweak, then two chunks, each a
 * big-endian u16 length and that many bytes (a missing chunk is empty):
 *
 *   mode bit 0      Noise_XX (else Noise_IK)
 *   mode bit 1      the client authorized_clients lists (else an unknown one)
 *   mode bits 2-3   the IK timestamp: now, too old, too far ahead, or the
 *                   last one used again
 *   mode bit 4      the governor under load: an initiation without a good
 *                   cookie and work gets a COOKIE
 *   mode bit 5      the initiation tampered at the tweak's byte (bits 0-6)
 *   mode bit 6      ... before it is framed, so that mac1 is right for it
 *   mode bit 7      the client ends its stream after its last piece
 *   tweak bit 7     the client offers XChaCha20-Poly1305 only
 *   chunk 0         the early data: IK's message 1, XX's FINISH
 *   chunk 1         what follows the handshake, a plan (see plan())
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "../harness/session_harness.h"
#include "crypto/noise.h"
#include "crypto/record.h"
#include "fuzz.h"
#include "fuzz_random.h"
#include "proto/sealed.h"
#include "server/privsep/privops.h"

#define MODE_XX          0x01
#define MODE_KNOWN       0x02
#define MODE_STAMP_SHIFT 2
#define MODE_STAMP_MASK  0x03
#define MODE_LOADED      0x10
#define MODE_TAMPER      0x20
#define MODE_MAC1_RIGHT  0x40
#define MODE_SHUT        0x80
#define TWEAK_AT         0x7f
#define TWEAK_CHACHA     0x80

enum stamp { STAMP_NOW, STAMP_OLD, STAMP_AHEAD, STAMP_AGAIN };

/* Plan opcodes: the low three bits of each plan byte. */
#define OP_MESSAGE  0 /* a MESSAGE record of the next byte + 1 bytes of the plan */
#define OP_FINAL    1 /* the FINAL record */
#define OP_RAW      2 /* the next byte + 1 bytes of the plan, onto the wire as they are */
#define OP_FLIP     3 /* flips bit 0 of the byte (this byte >> 3) into the last record */
#define OP_SEND     4 /* what the plan made so far goes out, and the worker runs */
#define OP_REPLAY   5 /* the initiation again, as it was sent */
#define OP_TRUNCATE 6 /* (this byte >> 3) + 1 bytes not sent yet are dropped */
#define OP_LONG     7 /* a MESSAGE of the next big-endian u16 + 1 bytes of the plan */
#define OP_MASK     0x07
#define OP_SHIFT    3

#define CHUNKS       2
#define COOKIES_MAX  2 /* as libfive: a client that keeps getting cookies gives up */
#define POW_ATTEMPTS (1u << 20)
#define WIRE_MAX     (64 * 1024)
#define NS_PER_S     UINT64_C(1000000000)
#define LABEL_CLIENT "fuzz sealed session client"
#define OFFER_BOTH                                                                                 \
	(SEALED_SUITE_BIT(RECORD_SUITE_XCHACHA20POLY1305) |                                        \
	 SEALED_SUITE_BIT(RECORD_SUITE_AES256GCM))
#define OFFER_CHACHA SEALED_SUITE_BIT(RECORD_SUITE_XCHACHA20POLY1305)

/* The client, across the connections of one input. */
struct client {
	uint8_t mode, tweak;
	struct fuzz_chunk early, plan;
	uint8_t server_pk[NOISE_DHLEN], sk[NOISE_DHLEN];
	uint16_t offer;
	struct noise_handshake hs;
	uint8_t noise1[SEALED_IK1_MAX];
	size_t noise1_len;
	uint8_t initiation[SEALED_INITIATION_MAX];
	size_t initiation_len;
	uint8_t mac1_orig[SEALED_MAC_LEN];
	uint8_t cookie[SEALED_COOKIE_LEN];
	uint8_t pow_nonce[SEALED_POW_NONCE_LEN];
	bool have_cookie, got_cookie;
};

/* One connection's conversation: the initiation, the answer, the records. */
struct talk {
	struct client *c;
	bool sent_initiation, open;
	struct record_sender tx;
	struct record_receiver rx;
	size_t rx_at;   /* how much of the server's output the client has read */
	size_t plan_at; /* where the plan goes on */
	uint8_t wire[WIRE_MAX];
	size_t wire_len, last; /* the bytes the next piece takes; where the last record starts */
};

/* The IK timestamp the client used last: "now" is always later than it. */
static uint64_t last_stamp_ns;

static unsigned
pattern_of(const struct client *c)
{
	return (c->mode & MODE_XX) != 0 ? SEALED_XX : SEALED_IK;
}

/* An initiation tampered with may get answers the client cannot read: no promise then. */
static bool
tampered(const struct client *c)
{
	return (c->mode & MODE_TAMPER) != 0 && (c->tweak & TWEAK_AT) != 0;
}

static const uint8_t *
server_key_for(const struct client *c)
{
	return pattern_of(c) == SEALED_IK ? c->server_pk : NULL;
}

/* --- the handshake, as libfive makes it ------------------------------------------------ */

static uint64_t
stamp_ns(const struct client *c)
{
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
	switch ((c->mode >> MODE_STAMP_SHIFT) & MODE_STAMP_MASK) {
	case STAMP_OLD:
		return now - (PRIVOPS_EARLY_SKEW_S + 1) * NS_PER_S;
	case STAMP_AHEAD:
		return now + (PRIVOPS_EARLY_FUTURE_S + 1) * NS_PER_S;
	case STAMP_AGAIN:
		if (last_stamp_ns != 0)
			return last_stamp_ns;
		break;
	}
	last_stamp_ns = now > last_stamp_ns ? now : last_stamp_ns + 1;
	return last_stamp_ns;
}

/* Noise message 1: IK's carries the timestamp and the early data; XX's nothing. */
static void
message1(struct client *c)
{
	static uint8_t payload[SEALED_MSG1_PAYLOAD_MAX];
	uint8_t prologue[SEALED_PROLOGUE_LEN], stamp[SEALED_TAI64N_LEN];
	size_t plen = 0, early_len = pattern_of(c) == SEALED_IK ? c->early.len : 0;
	uint64_t ns;

	c->noise1_len = sealed_noise1_len(pattern_of(c), early_len);
	sealed_prologue(pattern_of(c), c->offer, c->noise1_len, prologue);
	if (pattern_of(c) == SEALED_IK) {
		ns = stamp_ns(c);
		if (sealed_tai64n_encode(ns / NS_PER_S, (uint32_t)(ns % NS_PER_S), stamp) != 0 ||
		    sealed_msg1_payload_encode(stamp, c->early.p, early_len, payload,
		                               sizeof(payload), &plen) != 0)
			__builtin_trap();
	}
	if (noise_handshake_init(&c->hs, sealed_noise_name(pattern_of(c)), NOISE_INITIATOR,
	                         prologue, sizeof(prologue),
	                         pattern_of(c) == SEALED_IK ? c->sk : NULL,
	                         server_key_for(c)) != 0 ||
	    noise_write_message(&c->hs, payload, plen, c->noise1, sizeof(c->noise1),
	                        &c->noise1_len) != 0)
		__builtin_trap();
}

/* The INITIATION, with the cookie and work once a COOKIE asked for them; tampered if asked. */
static void
initiation(struct client *c)
{
	static uint8_t noise[SEALED_IK1_MAX];
	struct sealed_initiation m;
	uint8_t mac1_key[SEALED_KEY_LEN];
	size_t at = c->tweak & TWEAK_AT;
	bool tamper = tampered(c);

	memcpy(noise, c->noise1, c->noise1_len);
	if (tamper && (c->mode & MODE_MAC1_RIGHT) != 0)
		noise[at % c->noise1_len] ^= 1;
	memset(&m, 0, sizeof(m));
	m.pattern = (uint8_t)pattern_of(c);
	m.suites = c->offer;
	m.noise = noise;
	m.noise_len = c->noise1_len;
	memcpy(m.pow_nonce, c->pow_nonce, sizeof(m.pow_nonce));
	sealed_mac1_key(server_key_for(c), mac1_key);
	if (sealed_initiation_encode(&m, mac1_key, c->have_cookie ? c->cookie : NULL, c->initiation,
	                             sizeof(c->initiation), &c->initiation_len) != 0)
		__builtin_trap();
	if (!c->have_cookie)
		memcpy(c->mac1_orig, m.mac1, sizeof(c->mac1_orig));
	if (tamper && (c->mode & MODE_MAC1_RIGHT) == 0)
		c->initiation[at % c->initiation_len] ^= 1;
}

/* A COOKIE: open it and do the work it asks, for the next connection. */
static void
take_cookie(struct client *c, const uint8_t *msg, size_t len)
{
	struct sealed_cookie_msg m;
	uint8_t key[SEALED_KEY_LEN];

	sealed_cookie_key(server_key_for(c), key);
	if (sealed_cookie_decode(msg, len, &m) != SEALED_OK ||
	    sealed_cookie_open(&m, key, c->mac1_orig, c->cookie) != 0) {
		if (!tampered(c))
			__builtin_trap(); /* fived's COOKIE for our own initiation */
		return;
	}
	if (sealed_pow_solve(c->cookie, c->mac1_orig, m.difficulty, POW_ATTEMPTS, c->pow_nonce) !=
	    0)
		return;
	c->have_cookie = c->got_cookie = true;
}

static void
wire_put(struct talk *t, const uint8_t *p, size_t len)
{
	if (len > sizeof(t->wire) - t->wire_len)
		len = sizeof(t->wire) - t->wire_len;
	memcpy(t->wire + t->wire_len, p, len);
	t->wire_len += len;
}

static void
seal_put(struct talk *t, const uint8_t *pt, size_t len, bool final)
{
	static uint8_t rec[RECORD_WIRE_MAX];
	size_t n;

	if (record_seal(&t->tx, pt, len, final, rec, sizeof(rec), &n) != 0)
		return; /* after FINAL: nothing more seals */
	t->last = t->wire_len;
	wire_put(t, rec, n);
}

/* XX: the FINISH, with the client's static and the early data. */
static bool
finish(struct talk *t)
{
	static uint8_t payload[SEALED_FINISH_PAYLOAD_MAX], noise[SEALED_XX3_MAX];
	static uint8_t msg[SEALED_MESSAGE_MAX];
	size_t plen, nlen, mlen;

	if (noise_handshake_set_static(&t->c->hs, t->c->sk) != 0 ||
	    sealed_finish_payload_encode(t->c->early.p, t->c->early.len, payload, sizeof(payload),
	                                 &plen) != 0 ||
	    noise_write_message(&t->c->hs, payload, plen, noise, sizeof(noise), &nlen) != 0 ||
	    sealed_finish_encode(noise, nlen, msg, sizeof(msg), &mlen) != 0)
		return false;
	wire_put(t, msg, mlen);
	return true;
}

/*
 * The RESPONSE: message 2 read, the server's key checked (XX learns it),
 * the split; the client's FINISH (XX), its record header, and the early
 * data again if the server did not act on it (IK), go first.
 */
static bool
on_response(struct talk *t, const uint8_t *msg, size_t len)
{
	struct noise_cipher send, recv;
	struct sealed_frame f;
	uint8_t payload[SEALED_RESPONSE_PAYLOAD_LEN], learned[NOISE_DHLEN];
	uint8_t header[RECORD_HEADER_MAX], flags = 0;
	enum record_suite suite;
	size_t plen, hlen;
	bool ok;

	if (sealed_response_decode(msg, len, pattern_of(t->c), &f) != SEALED_OK ||
	    noise_read_message(&t->c->hs, f.noise, f.noise_len, payload, sizeof(payload), &plen) !=
	            0 ||
	    sealed_response_payload_decode(payload, plen, t->c->offer, &suite, &flags) != 0) {
		if (!tampered(t->c))
			__builtin_trap(); /* fived answered our own initiation */
		return false;
	}
	if (noise_remote_static(&t->c->hs, learned) != 0 ||
	    sodium_memcmp(learned, t->c->server_pk, sizeof(learned)) != 0)
		__builtin_trap();
	if (pattern_of(t->c) == SEALED_XX && !finish(t))
		return false;
	ok = noise_split(&t->c->hs, &send, &recv) == 0 &&
	     record_init_from_split(&t->tx, &t->rx, suite, &send, &recv, header, &hlen) == 0;
	noise_cipher_wipe(&send);
	noise_cipher_wipe(&recv);
	if (!ok)
		__builtin_trap();
	wire_put(t, header, hlen);
	if (pattern_of(t->c) == SEALED_IK && (flags & SEALED_FLAG_0RTT) == 0 && t->c->early.len > 0)
		seal_put(t, t->c->early.p, t->c->early.len, false);
	return true;
}

/* What the server sent after its RESPONSE: records that must all open. */
static void
read_records(struct talk *t, const struct harness_result *sofar)
{
	static uint8_t pt[RECORD_PLAINTEXT_MAX];
	size_t used, n;
	int st = RECORD_OK;

	if (sofar->out_dropped > 0)
		return;
	while (t->rx_at < sofar->out_len && st != RECORD_NEED_MORE) {
		st = record_open(&t->rx, (const uint8_t *)sofar->out + t->rx_at,
		                 sofar->out_len - t->rx_at, &used, pt, sizeof(pt), &n);
		if (st == RECORD_ERROR)
			__builtin_trap(); /* fived's own records, untouched on the way */
		t->rx_at += used;
		if (st == RECORD_FINAL)
			break;
	}
}

/* The plan's next n bytes from *i, fewer if it ends; the length taken. */
static size_t
plan_bytes(const struct fuzz_chunk *plan, size_t *i, size_t n)
{
	if (n > plan->len - *i)
		n = plan->len - *i;
	*i += n;
	return n;
}

/* Runs the plan until OP_SEND or its end, onto the wire. */
static void
plan(struct talk *t)
{
	const struct fuzz_chunk *p = &t->c->plan;
	size_t len, at;
	uint8_t op;

	while (t->plan_at < p->len) {
		op = p->p[t->plan_at++];
		switch (op & OP_MASK) {
		case OP_MESSAGE:
		case OP_RAW:
		case OP_LONG:
			len = 0;
			if ((op & OP_MASK) == OP_LONG && t->plan_at + 1 < p->len) {
				len = (size_t)p->p[t->plan_at] << 8 | p->p[t->plan_at + 1];
				t->plan_at += 2;
			} else if ((op & OP_MASK) != OP_LONG && t->plan_at < p->len) {
				len = p->p[t->plan_at++];
			}
			at = t->plan_at;
			len = plan_bytes(p, &t->plan_at, len + 1);
			if (len == 0)
				break;
			if ((op & OP_MASK) == OP_RAW)
				wire_put(t, p->p + at, len);
			else
				seal_put(t, p->p + at,
				         len < RECORD_PLAINTEXT_MAX ? len : RECORD_PLAINTEXT_MAX,
				         false);
			break;
		case OP_FINAL:
			seal_put(t, NULL, 0, true);
			break;
		case OP_FLIP:
			if (t->wire_len > t->last)
				t->wire[t->last + (op >> OP_SHIFT) % (t->wire_len - t->last)] ^= 1;
			break;
		case OP_SEND:
			return;
		case OP_REPLAY:
			wire_put(t, t->c->initiation, t->c->initiation_len);
			break;
		case OP_TRUNCATE:
			len = (size_t)(op >> OP_SHIFT) + 1;
			t->wire_len -= len < t->wire_len ? len : t->wire_len;
			t->last = t->last < t->wire_len ? t->last : t->wire_len;
			break;
		}
	}
}

/* The server's answer to the initiation; false when the connection has no more to say. */
static bool
answer(struct talk *t, const struct harness_result *sofar)
{
	const uint8_t *out = (const uint8_t *)sofar->out;
	size_t total;

	if (sealed_frame_length(out, sofar->out_len, &total) != SEALED_OK || total > sofar->out_len)
		return false;
	switch (out[0]) {
	case SEALED_COOKIE:
		take_cookie(t->c, out, total);
		return false;
	case SEALED_RESPONSE:
		if (!on_response(t, out, total))
			return false;
		t->open = true;
		t->rx_at = total;
		return true;
	default: /* REJECT, or nothing we know: the connection is over */
		return false;
	}
}

static bool
next(void *arg, const struct harness_result *sofar, struct harness_piece *piece)
{
	struct talk *t = arg;

	if (!t->sent_initiation) {
		t->sent_initiation = true;
		*piece = (struct harness_piece){t->c->initiation, t->c->initiation_len};
		return true;
	}
	if (!t->open && !answer(t, sofar))
		return false;
	read_records(t, sofar);
	plan(t);
	if (t->wire_len == 0 && t->plan_at >= t->c->plan.len)
		return false;
	/* The harness has written it before it asks for the next. */
	*piece = (struct harness_piece){t->wire, t->wire_len};
	t->wire_len = t->last = 0;
	return true;
}

/* One connection; true when it ended with a COOKIE the client can come back with. */
static bool
connection(struct client *c, bool loaded)
{
	static struct talk t;
	struct harness_dialog d = {.next = next, .arg = &t};
	struct harness_result res;

	memset(&t, 0, sizeof(t));
	t.c = c;
	d.shut = (c->mode & MODE_SHUT) != 0;
	d.loaded = loaded;
	c->got_cookie = false;
	initiation(c);
	if (harness_run_dialog(&d, &res) != 0) {
		fprintf(stderr, "fuzz_sealed_session: the session left the worker changed\n");
		abort();
	}
	harness_result_free(&res);
	record_sender_wipe(&t.tx);
	record_receiver_wipe(&t.rx);
	return c->got_cookie;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (randombytes_set_implementation(&fuzz_random_impl) != 0 || sodium_init() < 0 ||
	    harness_init() != 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct client c;
	struct fuzz_chunk ch[CHUNKS];
	int round;

	if (size < 2)
		return 0;
	fuzz_random_reset();
	memset(&c, 0, sizeof(c));
	c.mode = data[0];
	c.tweak = data[1];
	fuzz_chunks(data + 2, size - 2, ch, CHUNKS);
	c.early = ch[0];
	if (c.early.len > SEALED_EARLY_MAX)
		c.early.len = SEALED_EARLY_MAX;
	c.plan = ch[1];
	c.offer = (c.tweak & TWEAK_CHACHA) != 0 ? OFFER_CHACHA : OFFER_BOTH;
	harness_server_key(c.server_pk);
	if ((c.mode & MODE_KNOWN) != 0)
		harness_known_client(c.sk);
	else
		crypto_generichash(c.sk, sizeof(c.sk), (const uint8_t *)LABEL_CLIENT,
		                   strlen(LABEL_CLIENT), NULL, 0);
	message1(&c);
	for (round = 0; round <= COOKIES_MAX; round++)
		if (!connection(&c, (c.mode & MODE_LOADED) != 0))
			break;
	noise_handshake_wipe(&c.hs);
	sodium_memzero(&c, sizeof(c));
	return 0;
}
