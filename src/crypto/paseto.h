/*
 * PASETO version 4 tokens: v4.public (Ed25519 signatures) and v4.local
 * (XChaCha20 with a keyed-BLAKE2b MAC), as the PASETO specification defines
 * them, with footers and implicit assertions.  Tokens are strict: the header
 * must be exactly right, base64url must be unpadded and canonical, and an
 * empty footer is never written as a trailing dot.
 *
 * Pure code: no globals, no I/O.  sodium_init() must have succeeded before
 * any of these functions is called.  Buffers passed to one call must not
 * overlap.  Every function returns 0 or -1 and never reports why a token was
 * rejected: the reason would only help whoever forged it.  Work happens in
 * fixed-size stack buffers, up to about 20 KiB per call.
 */
#ifndef FIVE_PASETO_H
#define FIVE_PASETO_H

#include <stddef.h>
#include <stdint.h>

/* A token is at most this many characters; a buffer of PASETO_TOKEN_SIZE holds any with its NUL. */
#define PASETO_TOKEN_MAX  8192
#define PASETO_TOKEN_SIZE (PASETO_TOKEN_MAX + 1)

/*
 * The largest message a token of PASETO_TOKEN_MAX characters can carry: a
 * v4.local token without footer, (8192 - strlen("v4.local.")) * 3 / 4 bytes
 * of nonce, ciphertext and tag, less the 32-byte nonce and the 32-byte tag.
 * A v4.public token carries at most one byte less.
 */
#define PASETO_MESSAGE_MAX 6073

/*
 * The largest footer such a token can carry: beside an empty v4.local
 * message (86 characters of base64url) and the dot,
 * (8192 - 9 - 86 - 1) * 3 / 4 bytes.
 */
#define PASETO_FOOTER_MAX 6072

/*
 * Implicit assertions are never sent, only authenticated; this bound keeps
 * the pre-authentication encoding in a fixed buffer.
 */
#define PASETO_ASSERTION_MAX 1024

#define PASETO_V4_LOCAL_KEYBYTES        32
#define PASETO_V4_LOCAL_NONCEBYTES      32
#define PASETO_V4_PUBLIC_SECRETKEYBYTES 64 /* libsodium's Ed25519 seed || public key */
#define PASETO_V4_PUBLIC_PUBLICKEYBYTES 32

/*
 * Signs message m[0..mlen) with footer f[0..flen) and implicit assertion
 * i[0..ilen) (f and i may be NULL when their length is 0) and writes the
 * v4.public token, NUL-terminated, into out[0..out_size).  Fails when mlen,
 * flen or ilen exceed their maximum, when the token would be longer than
 * PASETO_TOKEN_MAX or does not fit in out; out is then an empty string
 * (if out_size > 0).
 */
int paseto_v4_public_sign(const uint8_t sk[PASETO_V4_PUBLIC_SECRETKEYBYTES], const uint8_t *m,
                          size_t mlen, const uint8_t *f, size_t flen, const uint8_t *i, size_t ilen,
                          char *out, size_t out_size);

/*
 * Verifies the v4.public token (a NUL-terminated string; at most
 * PASETO_TOKEN_MAX + 1 bytes of it are read) with public key pk and the
 * implicit assertion i[0..ilen) the signer used.  On success, writes the
 * message into m[0..m_size) and its length into *mlen, the footer into
 * f[0..f_size) and its length into *flen (0 when the token has none); buffers
 * of PASETO_MESSAGE_MAX and PASETO_FOOTER_MAX bytes always suffice, and m or
 * f may be NULL when its size is 0.  The footer is not compared with
 * anything: a caller expecting one checks it.  Fails on any malformed,
 * non-canonical or forged token, a wrong key or assertion, or a message or
 * footer larger than its buffer; m and f are then untouched and *mlen and
 * *flen are 0.
 */
int paseto_v4_public_verify(const uint8_t pk[PASETO_V4_PUBLIC_PUBLICKEYBYTES], const char *token,
                            const uint8_t *i, size_t ilen, uint8_t *m, size_t m_size, size_t *mlen,
                            uint8_t *f, size_t f_size, size_t *flen);

/*
 * Encrypts message m[0..mlen) under key k, with footer f[0..flen) and
 * implicit assertion i[0..ilen), into a v4.local token written NUL-terminated
 * into out[0..out_size).  nonce is PASETO_V4_LOCAL_NONCEBYTES bytes for
 * reproducible tokens (test vectors only: a repeated nonce reveals the
 * messages), or NULL to draw a random one.  Fails as paseto_v4_public_sign
 * does; out is then an empty string (if out_size > 0).
 */
int paseto_v4_local_encrypt(const uint8_t k[PASETO_V4_LOCAL_KEYBYTES], const uint8_t *nonce,
                            const uint8_t *m, size_t mlen, const uint8_t *f, size_t flen,
                            const uint8_t *i, size_t ilen, char *out, size_t out_size);

/*
 * Authenticates the v4.local token under key k and implicit assertion
 * i[0..ilen) and only then decrypts it.  Outputs, buffer sizes and failures
 * as for paseto_v4_public_verify: on failure no plaintext has been written.
 */
int paseto_v4_local_decrypt(const uint8_t k[PASETO_V4_LOCAL_KEYBYTES], const char *token,
                            const uint8_t *i, size_t ilen, uint8_t *m, size_t m_size, size_t *mlen,
                            uint8_t *f, size_t f_size, size_t *flen);

/*
 * paseto_v4_local_decrypt in two steps, so that the key can stay with a
 * process that parses nothing: unpack checks the token's form and decodes
 * its body (nonce, ciphertext, tag; at most PASETO_V4_LOCAL_BODY_MAX
 * bytes) into body[0..body_size) and its footer into f[0..f_size), without
 * authenticating anything; open_body authenticates and decrypts those
 * bytes as decrypt does.  Both return 0 or -1, as decrypt does.
 */
#define PASETO_V4_LOCAL_BODY_MAX (PASETO_MESSAGE_MAX + 64)
int paseto_v4_local_unpack(const char *token, uint8_t *body, size_t body_size, size_t *blen,
                           uint8_t *f, size_t f_size, size_t *flen);
int paseto_v4_local_open_body(const uint8_t k[PASETO_V4_LOCAL_KEYBYTES], const uint8_t *body,
                              size_t blen, const uint8_t *f, size_t flen, const uint8_t *i,
                              size_t ilen, uint8_t *m, size_t m_size, size_t *mlen);

/*
 * The footer of a v4.local or v4.public token, WITHOUT authenticating it: only
 * to choose the key (by its id) that will then verify the whole token.
 * Writes it into f[0..f_size) and its length into *flen (0 when the token has
 * none).  Fails when the header is neither v4 header, the footer is not
 * canonical base64url or larger than f_size, or the token is longer than
 * PASETO_TOKEN_MAX; f is then untouched and *flen is 0.  The payload itself
 * is not examined.
 */
int paseto_footer(const char *token, uint8_t *f, size_t f_size, size_t *flen);

#endif
