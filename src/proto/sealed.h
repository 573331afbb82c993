/*
 * The sealed handshake's wire format: the messages around a Noise handshake
 * (Noise_IK or Noise_XX, 25519/ChaChaPoly/BLAKE2b) that let fived check a
 * cheap MAC, answer a loaded moment with a stateless cookie and a proof-of-work
 * demand, and verify both before any Diffie-Hellman.  docs/PROTOCOL.md is the
 * reference; in short (integers big-endian):
 *
 *   INITIATION  F5 ver pattern flags suites:u16 n:u16 noise[n] pow[8] mac1[16] mac2[16]
 *   RESPONSE    F6 ver n:u16 noise[n]                 (Noise message 2)
 *   COOKIE      F7 ver difficulty 00 nonce[24] box[32]
 *   FINISH      F8 ver n:u16 noise[n]                 (XX only: Noise message 3)
 *   REJECT      F9 ver code
 *
 * The server checks an INITIATION in this order and does no Diffie-Hellman
 * before all pass: sealed_initiation_decode(), sealed_initiation_check_mac1(),
 * with the cookie flag sealed_initiation_check_cookie() and
 * sealed_initiation_check_pow(), then the replay filter (crypto/replay.h).
 *
 * Pure code: no I/O, no allocation, no globals.  sealed_cookie_seal() and
 * sealed_cookie_secrets_update() draw from libsodium's randombytes, so the
 * process must have called sodium_init().
 */
#ifndef FIVE_SEALED_H
#define FIVE_SEALED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "crypto/noise.h"
#include "crypto/record.h"

#define SEALED_VERSION 1

/*
 * Suites: the record ciphers (enum record_suite), after the same Noise
 * handshake.  The INITIATION offers a bitmask, suite id in bit id - 1; the
 * RESPONSE payload names the one chosen.  An empty offer, which no client
 * writes since suite 2 exists, stands for XChaCha20-Poly1305 alone.
 */
#define SEALED_SUITE_BIT(id)   ((uint16_t)(1u << ((unsigned)(id)-1)))
#define SEALED_SUITES_IMPLICIT SEALED_SUITE_BIT(RECORD_SUITE_XCHACHA20POLY1305)
#define SEALED_SUITE_PREFS_MAX RECORD_SUITE_LAST /* a preference list names each once */

/* Patterns, and the Noise protocol names they stand for. */
#define SEALED_IK       0
#define SEALED_XX       1
#define SEALED_NOISE_IK "Noise_IK_25519_ChaChaPoly_BLAKE2b"
#define SEALED_NOISE_XX "Noise_XX_25519_ChaChaPoly_BLAKE2b"

/* Message types: no plain dialect (printable ASCII, '{', TLS's 0x16) starts with these. */
#define SEALED_INITIATION 0xF5
#define SEALED_RESPONSE   0xF6
#define SEALED_COOKIE     0xF7
#define SEALED_FINISH     0xF8
#define SEALED_REJECT     0xF9

/* REJECT codes. */
#define SEALED_REJECT_VERSION 1
#define SEALED_REJECT_SUITE   2
#define SEALED_REJECT_PATTERN 3 /* unknown, or not allowed by this server */
#define SEALED_REJECT_BUSY    4

#define SEALED_FLAG_COOKIE 0x01 /* INITIATION: a cookie answer (pow nonce, mac2) */
#define SEALED_FLAG_0RTT   0x01 /* RESPONSE payload: the early data was acted on at once */

/* Field sizes. */
#define SEALED_KEY_LEN        32 /* static keys, mac1 and cookie keys, cookie secrets */
#define SEALED_EPHEMERAL_LEN  NOISE_DHLEN
#define SEALED_MAC_LEN        16
#define SEALED_COOKIE_LEN     16
#define SEALED_POW_NONCE_LEN  8
#define SEALED_SOURCE_LEN     16 /* an IPv6 address, IPv4 as IPv4-mapped */
#define SEALED_TAI64N_LEN     12
#define SEALED_HEADER_LEN     8 /* INITIATION bytes [0, 8): bound into the prologue */
#define SEALED_FRAME_LEN      4 /* RESPONSE and FINISH: type, version, n */
#define SEALED_COOKIE_NONCE   24
#define SEALED_COOKIE_BOX     32 /* the cookie sealed with XChaCha20-Poly1305 */
#define SEALED_COOKIE_MSG_LEN 60
#define SEALED_REJECT_LEN     3
#define SEALED_NOISE_MAX      65535
#define SEALED_EARLY_MAX      16384 /* early data bytes */

/* An INITIATION is 48 + n bytes: header, pow nonce, mac1, mac2 around Noise message 1. */
#define SEALED_INITIATION_OVERHEAD (SEALED_HEADER_LEN + SEALED_POW_NONCE_LEN + 2 * SEALED_MAC_LEN)

/* Noise payloads. */
#define SEALED_MSG1_PAYLOAD_MIN     (SEALED_TAI64N_LEN + 2) /* timestamp, early length */
#define SEALED_MSG1_PAYLOAD_MAX     (SEALED_MSG1_PAYLOAD_MIN + SEALED_EARLY_MAX)
#define SEALED_FINISH_PAYLOAD_MIN   2
#define SEALED_FINISH_PAYLOAD_MAX   (SEALED_FINISH_PAYLOAD_MIN + SEALED_EARLY_MAX)
#define SEALED_RESPONSE_PAYLOAD_LEN 2 /* suite, flags */

/*
 * Noise message lengths these payloads give.  IK 1: e, s sealed, payload sealed;
 * XX 1: e with an empty payload, nothing sealed yet; IK 2: e, payload sealed;
 * XX 2: e, s sealed, payload sealed; XX 3: s sealed, payload sealed.
 */
#define SEALED_ENC_STATIC_LEN (NOISE_DHLEN + NOISE_TAGLEN) /* a static key as Noise sends it */
#define SEALED_IK1_MIN                                                                             \
	(NOISE_DHLEN + SEALED_ENC_STATIC_LEN + SEALED_MSG1_PAYLOAD_MIN + NOISE_TAGLEN)
#define SEALED_IK1_MAX (SEALED_IK1_MIN + SEALED_EARLY_MAX)
#define SEALED_XX1_LEN NOISE_DHLEN
#define SEALED_IK2_LEN (NOISE_DHLEN + SEALED_RESPONSE_PAYLOAD_LEN + NOISE_TAGLEN)
#define SEALED_XX2_LEN                                                                             \
	(NOISE_DHLEN + SEALED_ENC_STATIC_LEN + SEALED_RESPONSE_PAYLOAD_LEN + NOISE_TAGLEN)
#define SEALED_XX3_MIN (SEALED_ENC_STATIC_LEN + SEALED_FINISH_PAYLOAD_MIN + NOISE_TAGLEN)
#define SEALED_XX3_MAX (SEALED_XX3_MIN + SEALED_EARLY_MAX)

/* Whole messages at most; SEALED_MESSAGE_MAX bounds a buffer for any of them. */
#define SEALED_INITIATION_MAX (SEALED_INITIATION_OVERHEAD + SEALED_IK1_MAX)
#define SEALED_RESPONSE_MAX   (SEALED_FRAME_LEN + SEALED_XX2_LEN)
#define SEALED_FINISH_MAX     (SEALED_FRAME_LEN + SEALED_XX3_MAX)
#define SEALED_MESSAGE_MAX    SEALED_INITIATION_MAX

/* The Noise prologue: this label, then the original INITIATION's bytes [0, 8). */
#define SEALED_PROLOGUE_LABEL     "fived sealed v1"
#define SEALED_PROLOGUE_LABEL_LEN (sizeof(SEALED_PROLOGUE_LABEL) - 1)
#define SEALED_PROLOGUE_LEN       (SEALED_PROLOGUE_LABEL_LEN + SEALED_HEADER_LEN)

/* Cookies and proof of work. */
#define SEALED_COOKIE_SECRET_SECONDS 120 /* cookie secret lifetime and time bucket */
#define SEALED_POW_DIFFICULTY_MAX    32  /* leading zero bits */

/* Results of framing and decoding; the negative ones name what a REJECT would say. */
enum sealed_status {
	SEALED_NEED_MORE = 1,      /* framing: too few bytes to know the length yet */
	SEALED_OK = 0,             /* decoded; the struct is filled */
	SEALED_ERR_MALFORMED = -1, /* anything else wrong: drop silently */
	SEALED_ERR_VERSION = -2,   /* REJECT code 1 */
	SEALED_ERR_SUITE = -3,     /* REJECT code 2 */
	SEALED_ERR_PATTERN = -4,   /* REJECT code 3 */
};

/*
 * An INITIATION.  Decoding fills every field, with noise, epub and msg
 * pointing into the input, which must outlive the struct.
 */
struct sealed_initiation {
	uint8_t version;
	uint8_t pattern; /* SEALED_IK or SEALED_XX */
	uint8_t flags;   /* SEALED_FLAG_COOKIE or 0 */
	uint16_t suites; /* offered, as on the wire: sealed_suite_choose() reads it */
	const uint8_t *noise;
	size_t noise_len;
	const uint8_t *epub; /* the client's ephemeral key, noise's first 32 bytes */
	uint8_t pow_nonce[SEALED_POW_NONCE_LEN];
	uint8_t mac1[SEALED_MAC_LEN];
	uint8_t mac2[SEALED_MAC_LEN];
	const uint8_t *msg; /* the whole message, what the MACs cover */
	size_t msg_len;
};

/* RESPONSE or FINISH: a Noise message behind a 4-byte frame.  noise points into the input. */
struct sealed_frame {
	uint8_t type;
	uint8_t version;
	const uint8_t *noise;
	size_t noise_len;
};

/* COOKIE.  nonce, box and msg point into the input. */
struct sealed_cookie_msg {
	uint8_t version;
	uint8_t difficulty; /* leading zero bits the proof of work needs, 0..32 */
	const uint8_t *nonce;
	const uint8_t *box;
	const uint8_t *msg;
};

/* REJECT.  version is the server's, whatever it is. */
struct sealed_reject {
	uint8_t version;
	uint8_t code; /* SEALED_REJECT_* */
};

/* Noise message 1's payload (IK).  early points into the input. */
struct sealed_msg1_payload {
	uint8_t timestamp[SEALED_TAI64N_LEN];
	const uint8_t *early;
	size_t early_len;
};

/*
 * The server's rotating cookie secrets, tied to time buckets so that a
 * cookie made at bucket b with cur checks as (prev, b) during bucket b + 1.
 * A zeroed struct is valid: the first update fills it.
 */
struct sealed_cookie_secrets {
	uint8_t cur[SEALED_KEY_LEN];  /* the secret of bucket `bucket` */
	uint8_t prev[SEALED_KEY_LEN]; /* the secret of bucket `bucket` - 1 */
	uint64_t bucket;
	bool ready;
};

/* --- framing and messages --------------------------------------------------- */

/*
 * The length of the message that starts at in[0..len): SEALED_OK with
 * *total set (which may exceed len: wait for the rest), SEALED_NEED_MORE
 * when len is too short to tell, SEALED_ERR_VERSION for an INITIATION of
 * another version (answer with a REJECT), or SEALED_ERR_MALFORMED (an
 * unknown type, or a length above that type's maximum, so a buffer of
 * SEALED_MESSAGE_MAX always suffices).  *total is 0 unless SEALED_OK.
 */
int sealed_frame_length(const uint8_t *in, size_t len, size_t *total);

/* The REJECT code for a decode result, or 0 when the message deserves no answer. */
uint8_t sealed_reject_code(int status);

/* The Noise protocol name of a pattern, or NULL for an unknown one. */
const char *sealed_noise_name(unsigned pattern);

/*
 * The length of Noise message 1 for a pattern and early data length (IK
 * carries early data in message 1; XX's message 1 is the bare ephemeral, so
 * early_len must be 0), so the client knows n before writing the message.
 * Returns 0 for an unknown pattern or early data that cannot go there.
 */
size_t sealed_noise1_len(unsigned pattern, size_t early_len);

/*
 * The Noise prologue both sides use: SEALED_PROLOGUE_LABEL, then the
 * INITIATION's bytes [0, 8) as the client first sent them, with flags 0
 * (type, SEALED_VERSION, pattern, 0, suites, noise_len).  The repeated
 * INITIATION after a COOKIE carries the same Noise message 1, so its cookie
 * flag must not change the prologue.  noise_len must be at most 65535.
 */
void sealed_prologue(unsigned pattern, uint16_t suites, size_t noise_len,
                     uint8_t out[SEALED_PROLOGUE_LEN]);

/*
 * Writes an INITIATION into out (out_size bytes).  Reads m->pattern,
 * m->suites, m->noise and m->noise_len (the Noise message 1 written with
 * sealed_prologue() for these values), and m->pow_nonce when cookie is
 * given.  mac1_key is sealed_mac1_key() of the server's static key (zeros
 * for XX).  cookie is NULL for a first INITIATION: flags, pow nonce and mac2
 * are then zero; otherwise the 16-byte cookie from the COOKIE: the cookie
 * flag is set and mac2 computed.  On success *out_len is the length and m
 * describes out exactly as sealed_initiation_decode() would, so m->mac1 of
 * a first INITIATION is the "original mac1" the COOKIE and the proof of work
 * use.  Returns 0, or -1 (bad pattern, a Noise length the pattern cannot
 * have, out too small) with *out_len 0.
 */
int sealed_initiation_encode(struct sealed_initiation *m, const uint8_t mac1_key[SEALED_KEY_LEN],
                             const uint8_t *cookie, uint8_t *out, size_t out_size, size_t *out_len);

/*
 * Decodes one whole INITIATION (exactly len bytes, as framed by
 * sealed_frame_length()) into *m, checking every field: type, version,
 * length, reserved flag bits zero, pattern, the Noise length the pattern
 * gives, and zero pow nonce and mac2 without the cookie flag.  Checks no MAC,
 * and not the suites: the server's choice does (sealed_suite_choose()).
 * Returns SEALED_OK, or a negative enum sealed_status with *m zeroed.
 */
int sealed_initiation_decode(const uint8_t *in, size_t len, struct sealed_initiation *m);

/*
 * The server's choice for an INITIATION's suites field: the first of
 * prefs[0..n) (the server's suites, most preferred first) that the offer
 * holds, an empty offer holding XChaCha20-Poly1305 only.  Unknown bits are
 * ignored.  Returns the suite, or RECORD_SUITE_NONE (REJECT code 2).
 */
enum record_suite sealed_suite_choose(uint16_t suites, const enum record_suite *prefs, size_t n);

/*
 * Writes a RESPONSE (pattern's Noise message 2, exactly SEALED_IK2_LEN or
 * SEALED_XX2_LEN bytes) into out.  Returns 0, or -1 (wrong length, out too
 * small) with *out_len 0.
 */
int sealed_response_encode(unsigned pattern, const uint8_t *noise, size_t noise_len, uint8_t *out,
                           size_t out_size, size_t *out_len);

/*
 * Decodes one whole RESPONSE to an INITIATION of the given pattern.  Returns
 * SEALED_OK, or a negative enum sealed_status with *f zeroed.
 */
int sealed_response_decode(const uint8_t *in, size_t len, unsigned pattern, struct sealed_frame *f);

/*
 * Writes a FINISH (XX's Noise message 3, SEALED_XX3_MIN..SEALED_XX3_MAX
 * bytes) into out.  Returns 0, or -1 with *out_len 0.
 */
int sealed_finish_encode(const uint8_t *noise, size_t noise_len, uint8_t *out, size_t out_size,
                         size_t *out_len);

/* Decodes one whole FINISH.  Returns SEALED_OK, or a negative status with *f zeroed. */
int sealed_finish_decode(const uint8_t *in, size_t len, struct sealed_frame *f);

/* Writes a REJECT with our version and code (1..4).  Returns 0, or -1 with *out_len 0. */
int sealed_reject_encode(uint8_t code, uint8_t *out, size_t out_size, size_t *out_len);

/* Decodes one whole REJECT (any version, a known code).  Returns SEALED_OK or negative. */
int sealed_reject_decode(const uint8_t *in, size_t len, struct sealed_reject *r);

/* --- payloads inside the Noise messages -------------------------------------- */

/*
 * Noise message 1's payload (IK): timestamp, u16 early length, early data
 * (early may be NULL when early_len is 0; at most SEALED_EARLY_MAX).
 * Returns 0, or -1 with *out_len 0.
 */
int sealed_msg1_payload_encode(const uint8_t timestamp[SEALED_TAI64N_LEN], const uint8_t *early,
                               size_t early_len, uint8_t *out, size_t out_size, size_t *out_len);

/*
 * Decodes message 1's payload: exactly 14 + early bytes and a valid TAI64N
 * timestamp.  Returns 0, or -1 with *p zeroed.
 */
int sealed_msg1_payload_decode(const uint8_t *in, size_t len, struct sealed_msg1_payload *p);

/* FINISH's payload (XX message 3): u16 early length, early data.  Returns 0 or -1. */
int sealed_finish_payload_encode(const uint8_t *early, size_t early_len, uint8_t *out,
                                 size_t out_size, size_t *out_len);

/*
 * Decodes FINISH's payload; *early points into in.  Returns 0, or -1 with
 * *early NULL and *early_len 0.
 */
int sealed_finish_payload_decode(const uint8_t *in, size_t len, const uint8_t **early,
                                 size_t *early_len);

/*
 * RESPONSE's payload: the suite chosen and flags (SEALED_FLAG_0RTT or 0).
 * Returns 0, or -1 for an unknown suite or reserved flag bits.
 */
int sealed_response_payload_encode(enum record_suite suite, uint8_t flags,
                                   uint8_t out[SEALED_RESPONSE_PAYLOAD_LEN]);

/*
 * Decodes RESPONSE's payload for a client that offered suites: exactly 2
 * bytes, a known suite within the offer (an empty offer: XChaCha20-Poly1305),
 * no reserved flag.  The offer went into the prologue, so a RESPONSE that
 * authenticates answers the offer as sent.  Returns 0, or -1 with *suite
 * RECORD_SUITE_NONE and *flags 0.
 */
int sealed_response_payload_decode(const uint8_t *in, size_t len, uint16_t suites,
                                   enum record_suite *suite, uint8_t *flags);

/*
 * TAI64N: the 8-byte label 2^62 + unix_sec, then nanoseconds.  Encoding
 * returns 0, or -1 (nsec >= 10^9, unix_sec >= 2^62) with out zeroed.
 */
int sealed_tai64n_encode(uint64_t unix_sec, uint32_t nsec, uint8_t out[SEALED_TAI64N_LEN]);

/*
 * Decodes a TAI64N timestamp.  Returns 0, or -1 (label outside [2^62, 2^63),
 * nanoseconds >= 10^9) with both outputs 0.
 */
int sealed_tai64n_decode(const uint8_t in[SEALED_TAI64N_LEN], uint64_t *unix_sec, uint32_t *nsec);

/* Orders two timestamps: negative, 0 or positive as a is earlier, equal or later. */
int sealed_tai64n_compare(const uint8_t a[SEALED_TAI64N_LEN], const uint8_t b[SEALED_TAI64N_LEN]);

/* --- MACs --------------------------------------------------------------------- */

/*
 * mac1's key, BLAKE2b-256("mac1----" || server_pub), and the COOKIE's key,
 * BLAKE2b-256("cookie--" || server_pub).  server_pub NULL means 32 zero
 * bytes, the key XX uses since the client does not know the server yet.
 */
void sealed_mac1_key(const uint8_t *server_pub, uint8_t out[SEALED_KEY_LEN]);
void sealed_cookie_key(const uint8_t *server_pub, uint8_t out[SEALED_KEY_LEN]);

/*
 * A server's static public key and the MAC and cookie keys derived from
 * it, for IK (its own key) and for XX (zeros).  The private half is not
 * here: whoever holds it does each Diffie-Hellman.
 */
struct sealed_server_keys {
	uint8_t pk[SEALED_KEY_LEN];
	uint8_t mac1_ik[SEALED_KEY_LEN];
	uint8_t mac1_xx[SEALED_KEY_LEN];
	uint8_t cookie_ik[SEALED_KEY_LEN];
	uint8_t cookie_xx[SEALED_KEY_LEN];
};

/* Fills k from the public key pk. */
void sealed_server_keys_derive(struct sealed_server_keys *k, const uint8_t pk[SEALED_KEY_LEN]);

/* BLAKE2b-128 keyed with mac1's key or with a cookie, over data[0..len). */
void sealed_mac1(const uint8_t key[SEALED_KEY_LEN], const uint8_t *data, size_t len,
                 uint8_t out[SEALED_MAC_LEN]);
void sealed_mac2(const uint8_t cookie[SEALED_COOKIE_LEN], const uint8_t *data, size_t len,
                 uint8_t out[SEALED_MAC_LEN]);

/*
 * Server check 2: m's mac1 against bytes [0, 16 + n), compared in constant
 * time.  m comes from sealed_initiation_decode().  Returns 0 or -1.
 */
int sealed_initiation_check_mac1(const struct sealed_initiation *m,
                                 const uint8_t mac1_key[SEALED_KEY_LEN]);

/*
 * The "original mac1": mac1 over m with flags cleared and the pow nonce
 * zeroed, i.e. the mac1 of the first INITIATION a cookie answer repeats.
 * The COOKIE's additional data and the proof of work use it.
 */
void sealed_initiation_original_mac1(const struct sealed_initiation *m,
                                     const uint8_t mac1_key[SEALED_KEY_LEN],
                                     uint8_t out[SEALED_MAC_LEN]);

/*
 * Server check 3, only with the cookie flag: recomputes the cookie for
 * source and m's ephemeral with (secret_cur, bucket of now) and (secret_prev,
 * the bucket before), and checks m's mac2 against each in constant time.
 * On success the cookie that matched is written to cookie_out, for check 4.
 * Returns 0, or -1 (no cookie flag, no match) with cookie_out zeroed.
 */
int sealed_initiation_check_cookie(const struct sealed_initiation *m,
                                   const uint8_t secret_cur[SEALED_KEY_LEN],
                                   const uint8_t secret_prev[SEALED_KEY_LEN],
                                   const uint8_t source[SEALED_SOURCE_LEN], uint64_t now,
                                   uint8_t cookie_out[SEALED_COOKIE_LEN]);

/*
 * Server check 4: m's pow nonce solves the puzzle at difficulty for this
 * cookie (from check 3) and m's original mac1.  Returns 0 or -1.
 */
int sealed_initiation_check_pow(const struct sealed_initiation *m,
                                const uint8_t mac1_key[SEALED_KEY_LEN],
                                const uint8_t cookie[SEALED_COOKIE_LEN], unsigned difficulty);

/* --- cookies ------------------------------------------------------------------ */

/* The time bucket of a unix time: now / SEALED_COOKIE_SECRET_SECONDS. */
uint64_t sealed_cookie_bucket(uint64_t now);

/*
 * The 16-byte source of an address: an IPv4 address as IPv4-mapped IPv6, an
 * IPv6 address as it is.  Returns 0, or -1 (another family) with out zeroed.
 */
int sealed_source(const struct sockaddr *sa, uint8_t out[SEALED_SOURCE_LEN]);

/*
 * The cookie: BLAKE2b-128(key = secret, source || epub || u64 bucket).
 */
void sealed_cookie_compute(const uint8_t secret[SEALED_KEY_LEN],
                           const uint8_t source[SEALED_SOURCE_LEN],
                           const uint8_t epub[SEALED_EPHEMERAL_LEN], uint64_t bucket,
                           uint8_t out[SEALED_COOKIE_LEN]);

/*
 * Whether cookie is the one made for source and epub with secret_cur in the
 * bucket of now, or with secret_prev in the bucket before.  Constant-time
 * comparisons.  Returns 0 (valid) or -1.
 */
int sealed_cookie_check(const uint8_t secret_cur[SEALED_KEY_LEN],
                        const uint8_t secret_prev[SEALED_KEY_LEN],
                        const uint8_t source[SEALED_SOURCE_LEN],
                        const uint8_t epub[SEALED_EPHEMERAL_LEN], uint64_t now,
                        const uint8_t cookie[SEALED_COOKIE_LEN]);

/*
 * Brings the secrets to the bucket of now: one bucket on, cur becomes prev
 * and a fresh random secret becomes cur; further on (or backwards, or the
 * first time) both are fresh, so no earlier cookie stays valid.  Call it
 * with the same now before making or checking cookies.
 */
void sealed_cookie_secrets_update(struct sealed_cookie_secrets *s, uint64_t now);

/* Zeroes the secrets; the next update starts afresh. */
void sealed_cookie_secrets_wipe(struct sealed_cookie_secrets *s);

/*
 * Writes a COOKIE (SEALED_COOKIE_MSG_LEN bytes) into out: a random nonce and
 * the cookie sealed with XChaCha20-Poly1305 under cookie_key
 * (sealed_cookie_key()), the additional data being mac1 (the original mac1
 * of the INITIATION answered) followed by the COOKIE's bytes [0, 4), so the
 * difficulty cannot be changed on the way.  Returns 0, or -1 (difficulty
 * above 32, out too small) with *out_len 0.
 */
int sealed_cookie_seal(const uint8_t cookie_key[SEALED_KEY_LEN],
                       const uint8_t cookie[SEALED_COOKIE_LEN], const uint8_t mac1[SEALED_MAC_LEN],
                       unsigned difficulty, uint8_t *out, size_t out_size, size_t *out_len);

/*
 * Decodes one whole COOKIE: 60 bytes, version, difficulty at most 32, the
 * reserved byte zero.  Returns SEALED_OK, or a negative status with *c zeroed.
 */
int sealed_cookie_decode(const uint8_t *in, size_t len, struct sealed_cookie_msg *c);

/*
 * Opens a decoded COOKIE with cookie_key and the original mac1 of our
 * INITIATION.  Returns 0 with the cookie in cookie_out, or -1
 * (authentication failed) with cookie_out zeroed.
 */
int sealed_cookie_open(const struct sealed_cookie_msg *c, const uint8_t cookie_key[SEALED_KEY_LEN],
                       const uint8_t mac1[SEALED_MAC_LEN], uint8_t cookie_out[SEALED_COOKIE_LEN]);

/* --- proof of work ------------------------------------------------------------- */

/*
 * Whether BLAKE2b-256("fived-pow-v1" || cookie || mac1 || nonce) starts with
 * at least difficulty zero bits (most significant bit of byte 0 first).
 * Returns 0, or -1 (not enough, difficulty above 32).
 */
int sealed_pow_check(const uint8_t cookie[SEALED_COOKIE_LEN], const uint8_t mac1[SEALED_MAC_LEN],
                     const uint8_t nonce[SEALED_POW_NONCE_LEN], unsigned difficulty);

/*
 * The client's search: tries nonces 0, 1, 2, ... (big-endian) for at most
 * max_attempts hashes; about 2^difficulty are expected.  Returns 0 with the
 * nonce in nonce_out, or -1 (not found, difficulty above 32) with nonce_out
 * zeroed.
 */
int sealed_pow_solve(const uint8_t cookie[SEALED_COOKIE_LEN], const uint8_t mac1[SEALED_MAC_LEN],
                     unsigned difficulty, uint64_t max_attempts,
                     uint8_t nonce_out[SEALED_POW_NONCE_LEN]);

#endif
