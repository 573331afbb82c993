/*
 * OpenSSH key formats, Ed25519 only: the SSH wire encoding, public key and
 * signature blobs, fingerprints, authorized_keys lines, and the public and
 * unencrypted private key files that ssh-keygen writes.  Users bring the
 * keys they already have; everything else is refused with a reason.
 * Pure code: bytes in, keys out; no I/O, no state.  sodium_init() must have
 * been called.
 */
#ifndef FIVE_SSHKEY_H
#define FIVE_SSHKEY_H

#include <stddef.h>
#include <stdint.h>

#define SSHKEY_ED25519_PUBLEN 32 /* crypto_sign_PUBLICKEYBYTES */
#define SSHKEY_ED25519_SECLEN 64 /* crypto_sign_SECRETKEYBYTES: seed || public key */
#define SSHKEY_ED25519_SIGLEN 64 /* crypto_sign_BYTES */

/* The only key type accepted, as it is written in files and blobs. */
#define SSHKEY_ED25519_NAME "ssh-ed25519"

/* string "ssh-ed25519" || string(key): 51 bytes, the buffer rounded up. */
#define SSHKEY_BLOB_MAX 64

/* string "ssh-ed25519" || string(signature): 83 bytes, the buffer rounded up. */
#define SSHKEY_SIG_BLOB_MAX 96

/* "SHA256:" and 43 base64 characters and the NUL: 51 bytes, rounded up. */
#define SSHKEY_FINGERPRINT_MAX 64

/*
 * One authorized_keys or public key line, its terminator included.  Options
 * and comment are parts of a line, so buffers of this size always hold them.
 */
#define SSHKEY_LINE_MAX 8192

/* An option name in an authorized_keys line (sshd's are all shorter), with its NUL. */
#define SSHKEY_OPTION_NAME_MAX 64

/* A whole key file; an Ed25519 private key file is about 400 bytes. */
#define SSHKEY_FILE_MAX 16384

/* Return values besides 0 / 1, shared by every parser here. */
#define SSHKEY_ERR         (-1) /* malformed or failed a check; *why says which */
#define SSHKEY_UNSUPPORTED (-2) /* well-formed, but a key type other than Ed25519 */
#define SSHKEY_ENCRYPTED   (-3) /* a passphrase-protected private key */

/* --- SSH wire encoding (RFC 4251 section 5) ------------------------------ */

/* Reads from p[0..len); off advances only over what was read successfully. */
struct sshkey_reader {
	const uint8_t *p;
	size_t len;
	size_t off;
};

/* Starts reading p[0..len).  The bytes stay the caller's and must outlive r. */
void sshkey_reader_init(struct sshkey_reader *r, const uint8_t *p, size_t len);

/* Bytes not read yet. */
size_t sshkey_reader_left(const struct sshkey_reader *r);

/* One byte.  Returns 0, or -1 when none is left (r unchanged). */
int sshkey_get_u8(struct sshkey_reader *r, uint8_t *v);

/* A big-endian uint32.  Returns 0, or -1 when fewer than 4 bytes are left (r unchanged). */
int sshkey_get_u32(struct sshkey_reader *r, uint32_t *v);

/*
 * A string: uint32 length || bytes.  *s points into the reader's input.
 * Returns 0, or -1 when the length runs past the input (r unchanged).
 */
int sshkey_get_string(struct sshkey_reader *r, const uint8_t **s, size_t *len);

/* Writes into p[0..size); len counts the bytes written. */
struct sshkey_writer {
	uint8_t *p;
	size_t size;
	size_t len;
};

/* Starts writing into out[0..size).  The buffer stays the caller's. */
void sshkey_writer_init(struct sshkey_writer *w, uint8_t *out, size_t size);

/* Each returns 0, or -1 when the bytes would not fit (w unchanged). */
int sshkey_put_u8(struct sshkey_writer *w, uint8_t v);
int sshkey_put_u32(struct sshkey_writer *w, uint32_t v);
int sshkey_put_string(struct sshkey_writer *w, const void *s, size_t len);

/* --- blobs and fingerprints ---------------------------------------------- */

/*
 * Writes the public key blob of pk into out[0..size) and its length to
 * *len.  Returns 0, or -1 when size is too small.
 */
int sshkey_blob_encode(const uint8_t pk[SSHKEY_ED25519_PUBLEN], uint8_t *out, size_t size,
                       size_t *len);

/*
 * Decodes an Ed25519 public key blob, exactly: any other key type, a wrong
 * key length or trailing bytes give -1.  Returns 0 with the key in pk.
 */
int sshkey_blob_decode(const uint8_t *blob, size_t len, uint8_t pk[SSHKEY_ED25519_PUBLEN]);

/*
 * Writes the fingerprint as ssh-keygen -l prints it, "SHA256:" and the
 * unpadded base64 of SHA-256 of the blob, NUL-terminated.
 */
void sshkey_fingerprint(const uint8_t pk[SSHKEY_ED25519_PUBLEN], char out[SSHKEY_FINGERPRINT_MAX]);

/* Signature blobs: string "ssh-ed25519" || string(64-byte signature), as for keys. */
int sshkey_sig_encode(const uint8_t sig[SSHKEY_ED25519_SIGLEN], uint8_t *out, size_t size,
                      size_t *len);
int sshkey_sig_decode(const uint8_t *blob, size_t len, uint8_t sig[SSHKEY_ED25519_SIGLEN]);

/* --- authorized_keys (sshd(8), AUTHORIZED_KEYS FILE FORMAT) -------------- */

/* About 16 KiB: keep it off small stacks. */
struct sshkey_authorized_key {
	uint8_t pk[SSHKEY_ED25519_PUBLEN];
	char options[SSHKEY_LINE_MAX]; /* as written, checked for syntax; "" when none */
	char comment[SSHKEY_LINE_MAX]; /* the rest of the line, trimmed; "" when none */
};

/*
 * Parses one line of line[0..len) (a trailing LF or CRLF is allowed; NUL
 * and other control characters are not): [options] keytype base64 [comment].
 * Returns
 *   1                   an Ed25519 key, in *out;
 *   0                   a blank or '#' comment line;
 *   SSHKEY_UNSUPPORTED  another key type (ssh-rsa, ecdsa-sha2-*, sk-*, ...),
 *                       which the caller may skip with a note;
 *   SSHKEY_ERR          anything else: a line longer than SSHKEY_LINE_MAX,
 *                       bad options, bad base64, a blob whose type differs
 *                       from the written one, a truncated blob.
 * On the negative returns *why is a static message.  *out is cleared first.
 * Options restrict a key: a caller must refuse a key carrying an option it
 * does not enforce (cert-authority above all), so walk them with
 * sshkey_authorized_option_next.
 */
int sshkey_authorized_parse_line(const char *line, size_t len, struct sshkey_authorized_key *out,
                                 const char **why);

/*
 * The value of the option called name (case-insensitive, as sshd compares
 * them), unquoted, into value[0..size).  Returns 1 when present (value ""
 * for a flag such as no-pty), 0 when absent, -1 when the options are
 * malformed, the option appears more than once, or its value does not fit.
 */
int sshkey_authorized_option(const struct sshkey_authorized_key *k, const char *name, char *value,
                             size_t size);

/*
 * Walks the options in order; *cursor starts at 0.  Returns 1 with the next
 * option's name and unquoted value ("" for a flag), 0 after the last, -1
 * when the options are malformed or a name or value does not fit.
 */
int sshkey_authorized_option_next(const struct sshkey_authorized_key *k, size_t *cursor, char *name,
                                  size_t name_size, char *value, size_t value_size);

/* --- key files ------------------------------------------------------------ */

/*
 * Parses an "openssh-key-v1" private key file ("-----BEGIN OPENSSH PRIVATE
 * KEY-----", as ssh-keygen writes) of at most SSHKEY_FILE_MAX bytes, holding
 * one unencrypted Ed25519 key.  Checks the structure, the check integers,
 * the padding, that the public key appears identically in all three places,
 * and that the seed derives that public key.  Returns 0 with the key in sk
 * and pk; SSHKEY_ENCRYPTED with *why telling the user to load the key into
 * ssh-agent instead, and the public key (stored in the clear) in pk so the
 * caller can ask the agent for it; SSHKEY_UNSUPPORTED or SSHKEY_ERR.  On
 * every failure sk is zeroed, and pk too but for SSHKEY_ENCRYPTED.  Every
 * copy of secret bytes made here is wiped before returning.
 */
int sshkey_parse_private(const char *text, size_t len, uint8_t sk[SSHKEY_ED25519_SECLEN],
                         uint8_t pk[SSHKEY_ED25519_PUBLEN], const char **why);

/*
 * Parses a public key file ("ssh-ed25519 AAAA... comment", one line, no
 * options).  Returns 0 with the key in pk, SSHKEY_UNSUPPORTED or SSHKEY_ERR
 * with *why set.
 */
int sshkey_parse_public(const char *text, size_t len, uint8_t pk[SSHKEY_ED25519_PUBLEN],
                        const char **why);

#endif
