/*
 * The Noise Protocol Framework (revision 34) for the single suite
 * 25519 / ChaChaPoly / BLAKE2b, over libsodium.
 *
 * One struct noise_handshake holds everything one side of one handshake knows
 * (HandshakeState with its SymmetricState and CipherState, as the spec names
 * them).  Patterns are driven by a generic token engine (e, s, ee, es, se, ss,
 * psk) from tables written in the spec's own notation: the one-way N, K, X,
 * the fundamental interactive patterns, the deferred ones (NK1 ... I1X1), and
 * any "pskN" modifiers, e.g. "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b".
 *
 * Pure code: no I/O, no allocation, no globals.  Ephemeral keys come from
 * libsodium's randombytes, so the process must have called sodium_init().
 *
 * Failure is final: when any handshake call fails, the handshake is wiped and
 * every later call on it fails too, so no half-authenticated state is ever
 * usable.  Start over with noise_handshake_init().
 */
#ifndef FIVE_NOISE_H
#define FIVE_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NOISE_DHLEN       32    /* X25519 public and private keys, DH results */
#define NOISE_HASHLEN     64    /* BLAKE2b-512 */
#define NOISE_KEYLEN      32    /* ChaCha20-Poly1305 key */
#define NOISE_TAGLEN      16    /* Poly1305 tag */
#define NOISE_PSKLEN      32    /* pre-shared symmetric key */
#define NOISE_MAX_MESSAGE 65535 /* any Noise message, handshake or transport */

#define NOISE_MAX_NAME     255 /* longest protocol name, bytes (the spec's limit) */
#define NOISE_MAX_MESSAGES 4   /* handshake messages of the longest pattern (X1X1) */
#define NOISE_MAX_TOKENS   8   /* tokens of one message, psk modifiers included */
#define NOISE_MAX_PSKS     (NOISE_MAX_MESSAGES + 1) /* psk0 .. psk4 */

enum noise_role { NOISE_INITIATOR, NOISE_RESPONDER };

/* CipherState: a key, whether it is set, and the next nonce. */
struct noise_cipher {
	uint8_t k[NOISE_KEYLEN];
	uint64_t n;
	bool has_key;
};

/* SymmetricState: the cipher, the chaining key and the handshake hash. */
struct noise_symmetric {
	struct noise_cipher cs;
	uint8_t ck[NOISE_HASHLEN];
	uint8_t h[NOISE_HASHLEN];
};

/*
 * Our static key held elsewhere (by a privileged process): dh writes into
 * shared the X25519 of its private half with pub, the peer's static key
 * when peer_static (a result the same in every handshake with that peer,
 * which the caller may keep), an ephemeral one otherwise.  Returns 0, or
 * -1 (the handshake then fails).
 */
typedef int (*noise_dh_fn)(void *ctx, const uint8_t pub[NOISE_DHLEN], bool peer_static,
                           uint8_t shared[NOISE_DHLEN]);

struct noise_static_ref {
	uint8_t pub[NOISE_DHLEN]; /* the public half */
	noise_dh_fn dh;
	void *ctx; /* dh's first argument */
};

/* DEAD is zero, so a zeroed (wiped) handshake refuses every call. */
enum noise_hs_state {
	NOISE_HS_DEAD = 0, /* never initialised, failed, or wiped */
	NOISE_HS_RUNNING,  /* messages remain */
	NOISE_HS_DONE,     /* all messages processed; split not yet taken */
	NOISE_HS_SPLIT,    /* split taken; only h and rs are kept */
};

/* HandshakeState.  Treat as opaque; the fields are here so it can live on the stack. */
struct noise_handshake {
	enum noise_hs_state state;
	enum noise_role role;
	struct noise_symmetric ss;

	uint8_t s_priv[NOISE_DHLEN], s_pub[NOISE_DHLEN];
	struct noise_static_ref s_ref; /* dh set: s_priv is unused, s_ref.dh does its work */
	uint8_t e_priv[NOISE_DHLEN], e_pub[NOISE_DHLEN];
	uint8_t rs[NOISE_DHLEN], re[NOISE_DHLEN];
	bool has_s, has_e, has_rs, has_re;
	bool static_later; /* our static key comes through noise_handshake_set_static */

	uint8_t psk[NOISE_MAX_PSKS][NOISE_PSKLEN];
	unsigned psk_needed; /* bit i: the name carries pskI */
	unsigned psk_set;    /* bit i: noise_handshake_set_psk(i) was called */

	uint8_t tokens[NOISE_MAX_MESSAGES][NOISE_MAX_TOKENS];
	uint8_t ntokens[NOISE_MAX_MESSAGES];
	unsigned nmessages; /* handshake messages in the pattern */
	unsigned next;      /* index of the next message; even ones are the initiator's */
	bool one_way;       /* N, K, X: only the initiator ever sends */
};

/*
 * Starts one side of a handshake.  protocol_name is the full Noise name, e.g.
 * "Noise_IK_25519_ChaChaPoly_BLAKE2b" or "Noise_NNpsk0+psk2_25519_ChaChaPoly_BLAKE2b";
 * only this suite is accepted.  prologue (may be NULL when prologue_len is 0)
 * must be the same on both sides or the handshake fails.  s_priv is our static
 * private key and must be given exactly when the pattern uses one for this
 * role; rs is the peer's static public key and must be given exactly when the
 * pattern has it as a pre-message (the K or "<- s" side), since a key the
 * pattern would transmit must not be preset.  Keys are copied; the caller keeps
 * its buffers.  Returns 0, or -1 (unknown or malformed name, wrong keys) with
 * hs wiped.
 */
int noise_handshake_init(struct noise_handshake *hs, const char *protocol_name,
                         enum noise_role role, const uint8_t *prologue, size_t prologue_len,
                         const uint8_t *s_priv, const uint8_t *rs);

/*
 * As noise_handshake_init, with our static key held elsewhere: s (copied)
 * names its public half and the function that does each Diffie-Hellman
 * with its private half, which never enters hs.  For a responder behind
 * privilege separation.
 */
int noise_handshake_init_ref(struct noise_handshake *hs, const char *protocol_name,
                             enum noise_role role, const uint8_t *prologue, size_t prologue_len,
                             const struct noise_static_ref *s, const uint8_t *rs);

/*
 * Supplies our static key when noise_handshake_init was given none although
 * the pattern sends one (XX's initiator may derive it from the responder's
 * key, which it learns from message 2).  Must come before the message that
 * sends or uses it.  Returns 0, or -1 (not deferred, already set).
 */
int noise_handshake_set_static(struct noise_handshake *hs, const uint8_t s_priv[NOISE_DHLEN]);

/*
 * Supplies the pre-shared key of modifier "psk<index>" (index is the number in
 * the name, not a position).  Every psk the name carries must be set before
 * the first message is written or read, and none may be set after.  Returns 0,
 * or -1 (no such modifier, already set, too late) with hs wiped.
 */
int noise_handshake_set_psk(struct noise_handshake *hs, unsigned index,
                            const uint8_t psk[NOISE_PSKLEN]);

/*
 * For tests and test vectors only: use e_priv as our ephemeral private key
 * instead of a random one.  Only before the first message.  Returns 0, or -1
 * with hs wiped.
 */
int noise_handshake_set_ephemeral(struct noise_handshake *hs, const uint8_t e_priv[NOISE_DHLEN]);

/*
 * Writes the next handshake message, carrying payload (len bytes; payload may
 * be NULL when len is 0), into out (out_size bytes; must not overlap payload).
 * *out_len is the message length, at most NOISE_MAX_MESSAGE.  Returns 0, or -1
 * (not our turn, handshake over, message too big for out or for Noise, a psk
 * missing, a DH failure) with *out_len 0 and hs wiped.
 */
int noise_write_message(struct noise_handshake *hs, const uint8_t *payload, size_t len,
                        uint8_t *out, size_t out_size, size_t *out_len);

/*
 * Reads the next handshake message msg (len bytes) from the peer and writes
 * its payload to payload (payload_size bytes; may be NULL when 0; must not
 * overlap msg), its length to *payload_len.  Lengths are checked before any
 * Diffie-Hellman.  Returns 0, or -1 (not the peer's turn, wrong length,
 * payload does not fit, authentication failure, DH failure) with *payload_len
 * 0, nothing left in payload, and hs wiped.
 */
int noise_read_message(struct noise_handshake *hs, const uint8_t *msg, size_t len, uint8_t *payload,
                       size_t payload_size, size_t *payload_len);

/* Whether every handshake message has been written or read (also after the split). */
bool noise_handshake_complete(const struct noise_handshake *hs);

/*
 * Once complete: the transport ciphers for this side, send and recv (both
 * written, overwriting whatever they held).  For one-way patterns the
 * responder's send cipher and the initiator's recv cipher have no key and
 * refuse to work.  Afterwards hs keeps only the handshake hash and the remote
 * static key; the caller owns the ciphers and wipes them with
 * noise_cipher_wipe().  Returns 0, or -1 (not complete, already split) with
 * both ciphers keyless; a failure here does not wipe hs.
 */
int noise_split(struct noise_handshake *hs, struct noise_cipher *send, struct noise_cipher *recv);

/*
 * The handshake hash h, for channel binding; both sides hold the same value
 * once complete (and after the split).  Zeros if hs was wiped.
 */
void noise_handshake_hash(const struct noise_handshake *hs, uint8_t out[NOISE_HASHLEN]);

/*
 * The peer's static public key once known: from the start when it was given to
 * noise_handshake_init(), otherwise after the message that carries it (e.g.
 * the IK responder after message 1, so it can look the key up before
 * answering).  Until the handshake is complete the key is not yet proven to
 * belong to the peer.  Returns 0, or -1 (not known, or hs wiped).
 */
int noise_remote_static(const struct noise_handshake *hs, uint8_t out[NOISE_DHLEN]);

/* Zeroes every secret and marks hs dead.  Safe in every state and more than once. */
void noise_handshake_wipe(struct noise_handshake *hs);

/*
 * Transport encryption with the cipher's next nonce: out receives len + NOISE_TAGLEN
 * bytes (out may equal pt; no other overlap).  ad may be NULL when adlen is 0.
 * Returns 0, or -1 (no key, len + NOISE_TAGLEN above NOISE_MAX_MESSAGE, nonces
 * exhausted) with nothing written and the nonce unchanged.
 */
int noise_cipher_encrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *pt,
                         size_t len, uint8_t *out);

/*
 * Transport decryption: ct is len bytes, out receives len - NOISE_TAGLEN bytes
 * (out may equal ct; no other overlap).  Returns 0, or -1 (no key, len out of
 * range, nonces exhausted, authentication failure) with nothing usable in out.
 * As the spec says, a failure does not advance the nonce; the caller decides
 * whether the channel survives it.
 */
int noise_cipher_decrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *ct,
                         size_t len, uint8_t *out);

/*
 * The raw key of a split cipher, so a record layer can be keyed from it; zeros
 * when the cipher has no key.  The caller wipes its copy.
 */
void noise_cipher_key(const struct noise_cipher *c, uint8_t out[NOISE_KEYLEN]);

/* Zeroes the key and nonce; the cipher has no key afterwards.  Safe more than once. */
void noise_cipher_wipe(struct noise_cipher *c);

#endif
