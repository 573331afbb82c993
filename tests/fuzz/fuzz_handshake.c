/*
 * The sealed handshake past its encryption: both sides run with fixed keys
 * (statics, ephemerals and the randomness of record headers), and what the
 * input chooses is what goes inside.  Mutations of the plaintexts therefore
 * reach what each side does with a decrypted payload (PROTOCOL.md 6.3): the
 * server's reading of IK message 1 and of XX's FINISH, the client's of
 * message 2, then the split, and the records both ways (PROTOCOL.md 6.7),
 * with rekeying and FINAL.  The steps are those of src/server/transport/
 * seal.c and src/client/transport/seal.c, each side stopping where its code
 * would drop the connection.
 *
 * The input: byte 0 is a mode, then up to five chunks, each a big-endian
 * u16 length and that many bytes (a missing chunk is empty):
 *
 *   mode bit 0      Noise_XX (else Noise_IK)
 *   mode bits 1-7   records sealed before the first rekey (see plan())
 *   chunk 0         the payload of message 1 (IK: timestamp, early length, early)
 *   chunk 1         the payload of message 2 (suite, flags): the records' suite
 *   chunk 2         the payload of message 3 (XX: early length, early)
 *   chunk 3         the client's records, a plan (see plan())
 *   chunk 4         the server's records, a plan
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "crypto/noise.h"
#include "crypto/record.h"
#include "fuzz.h"
#include "fuzz_random.h"
#include "proto/sealed.h"

#define MODE_XX          0x01
#define MODE_REKEY_SHIFT 1
#define CHUNKS           5
#define LABEL_S_SERVER   "fuzz handshake server static"
#define LABEL_E_SERVER   "fuzz handshake server ephemeral"
#define LABEL_S_CLIENT   "fuzz handshake client static"
#define LABEL_E_CLIENT   "fuzz handshake client ephemeral"

/* Plan opcodes: the low two bits of each plan byte. */
#define OP_MESSAGE 0 /* a MESSAGE record: the next byte + 1 bytes of the plan */
#define OP_FINAL   1 /* the FINAL record */
#define OP_RAW     2 /* the next byte + 1 bytes of the plan, onto the wire as they are */
#define OP_FLIP    3 /* flips the bit (this byte >> 2) of the last record on the wire */
#define OP_MASK    0x03

/* The client offers both suites; message 2's payload chooses. */
#define OFFER                                                                                      \
	(SEALED_SUITE_BIT(RECORD_SUITE_XCHACHA20POLY1305) |                                        \
	 SEALED_SUITE_BIT(RECORD_SUITE_AES256GCM))

#define PIECE_DEFAULT 4096
#define WIRE_MAX      (64 * 1024)
#define RECORDS_MAX   256

struct keys {
	uint8_t s_server[NOISE_DHLEN], s_server_pub[NOISE_DHLEN], e_server[NOISE_DHLEN];
	uint8_t s_client[NOISE_DHLEN], e_client[NOISE_DHLEN];
};

/* Both ends of a handshake. */
struct pair {
	unsigned pattern;
	enum record_suite suite; /* as message 2 chose */
	struct noise_handshake client, server;
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

/* --- the handshake ------------------------------------------------------------------------ */

/*
 * Message 1, as the client writes it and the server reads it: the INITIATION
 * framed and checked (mac1) as fived does, then Noise, then the payload.
 */
static bool
message1(const struct keys *k, struct pair *p, struct fuzz_chunk payload)
{
	static uint8_t noise[NOISE_MAX_MESSAGE], msg[SEALED_MESSAGE_MAX], pt[NOISE_MAX_MESSAGE];
	struct sealed_initiation m, got;
	struct sealed_msg1_payload m1;
	uint8_t prologue[SEALED_PROLOGUE_LEN], mac1_key[SEALED_KEY_LEN];
	size_t noise_len, msg_len, total, plen;
	uint64_t sec;
	uint32_t nsec;

	/* The prologue binds Noise message 1's length, known from the payload's. */
	noise_len = p->pattern == SEALED_IK
	                    ? NOISE_DHLEN + SEALED_ENC_STATIC_LEN + payload.len + NOISE_TAGLEN
	                    : NOISE_DHLEN + payload.len;
	if (noise_len > SEALED_NOISE_MAX)
		return false;
	sealed_prologue(p->pattern, OFFER, noise_len, prologue);
	if (noise_handshake_init(&p->client, sealed_noise_name(p->pattern), NOISE_INITIATOR,
	                         prologue, sizeof(prologue),
	                         p->pattern == SEALED_IK ? k->s_client : NULL,
	                         p->pattern == SEALED_IK ? k->s_server_pub : NULL) != 0 ||
	    noise_handshake_set_ephemeral(&p->client, k->e_client) != 0 ||
	    noise_write_message(&p->client, payload.p, payload.len, noise, sizeof(noise),
	                        &noise_len) != 0)
		__builtin_trap();

	memset(&m, 0, sizeof(m));
	m.pattern = (uint8_t)p->pattern;
	m.suites = OFFER;
	m.noise = noise;
	m.noise_len = noise_len;
	sealed_mac1_key(p->pattern == SEALED_IK ? k->s_server_pub : NULL, mac1_key);
	/* A length the pattern cannot have is refused here and by the server's decoder alike. */
	if (sealed_initiation_encode(&m, mac1_key, NULL, msg, sizeof(msg), &msg_len) != 0)
		return false;

	/* fived's side. */
	if (sealed_frame_length(msg, msg_len, &total) != SEALED_OK || total != msg_len ||
	    sealed_initiation_decode(msg, msg_len, &got) != SEALED_OK ||
	    sealed_initiation_check_mac1(&got, mac1_key) != 0)
		__builtin_trap();
	sealed_prologue(got.pattern, got.suites, got.noise_len, prologue);
	if (noise_handshake_init(&p->server, sealed_noise_name(got.pattern), NOISE_RESPONDER,
	                         prologue, sizeof(prologue), k->s_server, NULL) != 0 ||
	    noise_handshake_set_ephemeral(&p->server, k->e_server) != 0 ||
	    noise_read_message(&p->server, got.noise, got.noise_len, pt, sizeof(pt), &plen) != 0)
		__builtin_trap();
	if (plen != payload.len || (plen > 0 && memcmp(pt, payload.p, plen) != 0))
		__builtin_trap();
	if (p->pattern == SEALED_XX)
		return plen == 0; /* fived reads XX's message 1 with an empty payload only */
	if (sealed_msg1_payload_decode(pt, plen, &m1) != 0 ||
	    sealed_tai64n_decode(m1.timestamp, &sec, &nsec) != 0)
		return false;
	if (m1.early_len > SEALED_EARLY_MAX ||
	    (m1.early_len > 0 && m1.early + m1.early_len != pt + plen))
		__builtin_trap();
	return true;
}

/* Message 2, as fived writes it (with a payload of the input's) and the client reads it. */
static bool
message2(const struct keys *k, struct pair *p, struct fuzz_chunk payload)
{
	static uint8_t noise[NOISE_MAX_MESSAGE], msg[SEALED_MESSAGE_MAX + NOISE_MAX_MESSAGE];
	static uint8_t pt[NOISE_MAX_MESSAGE];
	struct sealed_frame f;
	uint8_t learned[NOISE_DHLEN], flags;
	size_t noise_len, msg_len, total, plen;

	if (payload.len > NOISE_MAX_MESSAGE - SEALED_XX2_LEN)
		return false;
	if (noise_write_message(&p->server, payload.p, payload.len, noise, sizeof(noise),
	                        &noise_len) != 0)
		__builtin_trap();
	/* fived's payload is 2 bytes; another length does not frame, as the client sees it. */
	if (sealed_response_encode(p->pattern, noise, noise_len, msg, sizeof(msg), &msg_len) != 0)
		return false;
	if (sealed_frame_length(msg, msg_len, &total) != SEALED_OK || total != msg_len ||
	    sealed_response_decode(msg, msg_len, p->pattern, &f) != SEALED_OK ||
	    noise_read_message(&p->client, f.noise, f.noise_len, pt, sizeof(pt), &plen) != 0)
		__builtin_trap();
	if (plen != payload.len || (plen > 0 && memcmp(pt, payload.p, plen) != 0))
		__builtin_trap();
	if (sealed_response_payload_decode(pt, plen, OFFER, &p->suite, &flags) != 0)
		return false;
	if (p->pattern == SEALED_XX &&
	    (noise_remote_static(&p->client, learned) != 0 ||
	     sodium_memcmp(learned, k->s_server_pub, sizeof(learned)) != 0))
		__builtin_trap();
	return true;
}

/* XX's FINISH, as the client writes it and fived reads it. */
static bool
message3(const struct keys *k, struct pair *p, struct fuzz_chunk payload)
{
	static uint8_t noise[NOISE_MAX_MESSAGE], msg[SEALED_MESSAGE_MAX + NOISE_MAX_MESSAGE];
	static uint8_t pt[NOISE_MAX_MESSAGE];
	struct sealed_frame f;
	const uint8_t *early;
	uint8_t client_pub[NOISE_DHLEN], learned[NOISE_DHLEN];
	size_t noise_len, msg_len, total, plen, early_len;

	if (payload.len > NOISE_MAX_MESSAGE - SEALED_XX3_MIN)
		return false;
	if (noise_handshake_set_static(&p->client, k->s_client) != 0 ||
	    noise_write_message(&p->client, payload.p, payload.len, noise, sizeof(noise),
	                        &noise_len) != 0)
		__builtin_trap();
	if (sealed_finish_encode(noise, noise_len, msg, sizeof(msg), &msg_len) != 0)
		return false;
	if (sealed_frame_length(msg, msg_len, &total) != SEALED_OK || total != msg_len ||
	    sealed_finish_decode(msg, msg_len, &f) != SEALED_OK ||
	    noise_read_message(&p->server, f.noise, f.noise_len, pt, sizeof(pt), &plen) != 0)
		__builtin_trap();
	if (plen != payload.len || (plen > 0 && memcmp(pt, payload.p, plen) != 0))
		__builtin_trap();
	if (sealed_finish_payload_decode(pt, plen, &early, &early_len) != 0)
		return false;
	if (early_len > SEALED_EARLY_MAX || (early_len > 0 && early + early_len != pt + plen))
		__builtin_trap();
	if (crypto_scalarmult_curve25519_base(client_pub, k->s_client) != 0 ||
	    noise_remote_static(&p->server, learned) != 0 ||
	    sodium_memcmp(learned, client_pub, sizeof(learned)) != 0)
		__builtin_trap();
	return true;
}

/* --- records --------------------------------------------------------------------------- */

/* What one direction's plan put on the wire, and what its receiver must make of it. */
struct wire {
	uint8_t bytes[WIRE_MAX];
	size_t len;
	size_t last;              /* where the last record starts */
	bool tampered;            /* raw bytes or a flipped bit: no promise about what opens */
	bool final;               /* FINAL sealed (the sender is closed after it) */
	size_t nrecords;          /* MESSAGE records sealed */
	size_t ends[RECORDS_MAX]; /* each record's end in plain[] */
	uint8_t plain[WIRE_MAX];
	size_t plain_len;
};

static bool
wire_put(struct wire *w, const uint8_t *p, size_t len)
{
	if (len > sizeof(w->bytes) - w->len)
		return false;
	memcpy(w->bytes + w->len, p, len);
	w->len += len;
	return true;
}

/*
 * Runs a plan against a sender: each byte an opcode (OP_*), most with bytes
 * of their own behind.  Stops at the end of the plan or when the wire is full.
 */
static void
plan(struct record_sender *tx, struct fuzz_chunk c, struct wire *w)
{
	static uint8_t rec[RECORD_WIRE_MAX];
	size_t i = 0, len, n;
	uint8_t op;

	while (i < c.len && w->nrecords < RECORDS_MAX) {
		op = c.p[i++];
		switch (op & OP_MASK) {
		case OP_MESSAGE:
		case OP_RAW:
			if (i >= c.len)
				return;
			len = (size_t)c.p[i++] + 1;
			if (len > c.len - i)
				len = c.len - i;
			if (len == 0)
				return;
			if ((op & OP_MASK) == OP_RAW) {
				if (!wire_put(w, c.p + i, len))
					return;
				w->tampered = true;
			} else {
				if (w->final || w->plain_len + len > sizeof(w->plain))
					return;
				if (record_seal(tx, c.p + i, len, false, rec, sizeof(rec), &n) != 0)
					__builtin_trap();
				w->last = w->len;
				if (!wire_put(w, rec, n))
					return;
				memcpy(w->plain + w->plain_len, c.p + i, len);
				w->plain_len += len;
				w->ends[w->nrecords++] = w->plain_len;
			}
			i += len;
			break;
		case OP_FINAL:
			if (w->final)
				break;
			if (record_seal(tx, NULL, 0, true, rec, sizeof(rec), &n) != 0)
				__builtin_trap();
			w->last = w->len;
			if (!wire_put(w, rec, n))
				return;
			w->final = true;
			/* A closed sender refuses more. */
			if (record_seal(tx, rec, 1, false, rec, sizeof(rec), &n) == 0)
				__builtin_trap();
			break;
		case OP_FLIP:
			if (w->len == 0)
				break;
			w->bytes[w->last + ((size_t)(op >> 2) % (w->len - w->last))] ^= 1;
			w->tampered = true;
			break;
		}
	}
}

/*
 * The receiver takes the wire in pieces; untampered, it must give back every
 * record in order, then FINAL if it was sealed, and nothing else.
 */
static void
receive(struct record_receiver *rx, const struct wire *w, size_t piece)
{
	static uint8_t pt[RECORD_PLAINTEXT_MAX];
	size_t at = 0, got = 0, records = 0, used, n, take;
	int st = RECORD_NEED_MORE;

	while (at < w->len && st != RECORD_ERROR) {
		take = w->len - at < piece ? w->len - at : piece;
		while (take > 0) {
			st = record_open(rx, w->bytes + at, take, &used, pt, sizeof(pt), &n);
			if (used > take)
				__builtin_trap();
			at += used;
			take -= used;
			if (st == RECORD_OK) {
				if (!w->tampered &&
				    (records >= w->nrecords || got + n != w->ends[records] ||
				     memcmp(pt, w->plain + got, n) != 0))
					__builtin_trap();
				got += n;
				records++;
			} else if (st == RECORD_ERROR || st == RECORD_NEED_MORE) {
				break;
			}
		}
	}
	if (w->tampered)
		return;
	if (st == RECORD_ERROR || records != w->nrecords ||
	    (record_receiver_eof(rx) == 0) != w->final)
		__builtin_trap();
}

/*
 * The split, as each side makes it: same hash on both, records keyed from
 * it.  rekey_in: records each side seals (opens) before its next rekey.
 */
static void
records(struct pair *p, unsigned rekey_in, struct fuzz_chunk client_plan,
        struct fuzz_chunk server_plan)
{
	static struct record_sender ctx, stx;
	static struct record_receiver crx, srx;
	static struct wire up, down;
	struct noise_cipher csend, crecv, ssend, srecv;
	uint8_t ch[NOISE_HASHLEN], sh[NOISE_HASHLEN];
	uint8_t cheader[RECORD_HEADER_MAX], sheader[RECORD_HEADER_MAX];
	size_t chlen, shlen;
	uint64_t count = RECORD_REKEY_INTERVAL - 1 - rekey_in;

	noise_handshake_hash(&p->client, ch);
	noise_handshake_hash(&p->server, sh);
	if (memcmp(ch, sh, sizeof(ch)) != 0 || noise_split(&p->client, &csend, &crecv) != 0 ||
	    noise_split(&p->server, &ssend, &srecv) != 0 ||
	    record_init_from_split(&ctx, &crx, p->suite, &csend, &crecv, cheader, &chlen) != 0 ||
	    record_init_from_split(&stx, &srx, p->suite, &ssend, &srecv, sheader, &shlen) != 0)
		__builtin_trap();
	noise_cipher_wipe(&csend);
	noise_cipher_wipe(&crecv);
	noise_cipher_wipe(&ssend);
	noise_cipher_wipe(&srecv);
	/* Both ends of each direction as if many records had passed: the rekey comes soon. */
	ctx.count = stx.count = crx.count = srx.count = count;

	up.len = down.len = 0;
	up.last = down.last = up.nrecords = down.nrecords = up.plain_len = down.plain_len = 0;
	up.tampered = down.tampered = up.final = down.final = false;
	if (!wire_put(&up, cheader, chlen) || !wire_put(&down, sheader, shlen))
		__builtin_trap();
	plan(&ctx, client_plan, &up);
	plan(&stx, server_plan, &down);
	receive(&srx, &up, client_plan.len > 0 ? (size_t)client_plan.p[0] + 1 : PIECE_DEFAULT);
	receive(&crx, &down, PIECE_DEFAULT);
	record_sender_wipe(&ctx);
	record_sender_wipe(&stx);
	record_receiver_wipe(&crx);
	record_receiver_wipe(&srx);
}

FUZZ_INITIALIZE_SODIUM_FIXED_RANDOM()

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keys k;
	struct fuzz_chunk c[CHUNKS];
	struct pair p;
	unsigned rekey_in;

	if (size < 1)
		return 0;
	fuzz_random_reset();
	keys_init(&k);
	memset(&p, 0, sizeof(p));
	p.pattern = (data[0] & MODE_XX) != 0 ? SEALED_XX : SEALED_IK;
	rekey_in = data[0] >> MODE_REKEY_SHIFT;
	fuzz_chunks(data + 1, size - 1, c, CHUNKS);

	if (message1(&k, &p, c[0]) && message2(&k, &p, c[1]) &&
	    (p.pattern == SEALED_IK || message3(&k, &p, c[2]))) {
		if (!noise_handshake_complete(&p.client) || !noise_handshake_complete(&p.server))
			__builtin_trap();
		records(&p, rekey_in, c[3], c[4]);
	}
	noise_handshake_wipe(&p.client);
	noise_handshake_wipe(&p.server);
	sodium_memzero(&k, sizeof(k));
	return 0;
}
