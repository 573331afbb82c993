#include "crypto/sshkey.h"

#include <sodium.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "common/b64.h"
#include "common/bytes.h"
#include "common/util.h"

#define U32_LEN 4

#define FINGERPRINT_PREFIX     "SHA256:"
#define FINGERPRINT_PREFIX_LEN (sizeof(FINGERPRINT_PREFIX) - 1)

_Static_assert(FINGERPRINT_PREFIX_LEN + sodium_base64_ENCODED_LEN(
                                                crypto_hash_sha256_BYTES,
                                                sodium_base64_VARIANT_ORIGINAL_NO_PADDING) <=
                       SSHKEY_FINGERPRINT_MAX,
               "fingerprint buffer too small");
_Static_assert(2 * U32_LEN + sizeof(SSHKEY_ED25519_NAME) - 1 + SSHKEY_ED25519_PUBLEN <=
                       SSHKEY_BLOB_MAX,
               "key blob buffer too small");
_Static_assert(2 * U32_LEN + sizeof(SSHKEY_ED25519_NAME) - 1 + SSHKEY_ED25519_SIGLEN <=
                       SSHKEY_SIG_BLOB_MAX,
               "signature blob buffer too small");
_Static_assert(SSHKEY_ED25519_PUBLEN == crypto_sign_PUBLICKEYBYTES &&
                       SSHKEY_ED25519_SECLEN == crypto_sign_SECRETKEYBYTES &&
                       SSHKEY_ED25519_SIGLEN == crypto_sign_BYTES,
               "Ed25519 sizes differ from libsodium's");

/* The largest blob a line can carry once its base64 is decoded. */
#define LINE_BLOB_MAX (SSHKEY_LINE_MAX / 4 * 3)

/* PROTOCOL.key in the OpenSSH sources. */
#define ARMOUR_BEGIN  "-----BEGIN OPENSSH PRIVATE KEY-----"
#define ARMOUR_END    "-----END OPENSSH PRIVATE KEY-----"
#define KEY_MAGIC     "openssh-key-v1" /* with its NUL on the wire */
#define KEY_MAGIC_LEN sizeof(KEY_MAGIC)
#define CIPHER_NONE   "none"
#define KDF_NONE      "none"
/* Without a cipher OpenSSH still pads the private section to 8 bytes. */
#define NONE_BLOCK_SIZE 8
#define FILE_BODY_MAX   (SSHKEY_FILE_MAX / 4 * 3)

#define ENCRYPTED_HINT                                                                             \
	"the private key is encrypted with a passphrase: load it into ssh-agent "                  \
	"(ssh-add) and sign through the agent instead"

/* --- SSH wire encoding --------------------------------------------------- */

void
sshkey_reader_init(struct sshkey_reader *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
}

size_t
sshkey_reader_left(const struct sshkey_reader *r)
{
	return r->len - r->off;
}

int
sshkey_get_u8(struct sshkey_reader *r, uint8_t *v)
{
	if (sshkey_reader_left(r) < 1)
		return -1;
	*v = r->p[r->off++];
	return 0;
}

int
sshkey_get_u32(struct sshkey_reader *r, uint32_t *v)
{
	if (sshkey_reader_left(r) < U32_LEN)
		return -1;
	*v = bytes_get32(r->p + r->off);
	r->off += U32_LEN;
	return 0;
}

int
sshkey_get_string(struct sshkey_reader *r, const uint8_t **s, size_t *len)
{
	size_t start = r->off;
	uint32_t n;

	if (sshkey_get_u32(r, &n) != 0)
		return -1;
	if (n > sshkey_reader_left(r)) {
		r->off = start;
		return -1;
	}
	*s = r->p + r->off;
	*len = n;
	r->off += n;
	return 0;
}

/* n raw bytes, no length prefix. */
static int
get_fixed(struct sshkey_reader *r, size_t n, const uint8_t **p)
{
	if (sshkey_reader_left(r) < n)
		return -1;
	*p = r->p + r->off;
	r->off += n;
	return 0;
}

void
sshkey_writer_init(struct sshkey_writer *w, uint8_t *out, size_t size)
{
	w->p = out;
	w->size = size;
	w->len = 0;
}

int
sshkey_put_u8(struct sshkey_writer *w, uint8_t v)
{
	if (w->size - w->len < 1)
		return -1;
	w->p[w->len++] = v;
	return 0;
}

int
sshkey_put_u32(struct sshkey_writer *w, uint32_t v)
{
	if (w->size - w->len < U32_LEN)
		return -1;
	bytes_put32(w->p + w->len, v);
	w->len += U32_LEN;
	return 0;
}

int
sshkey_put_string(struct sshkey_writer *w, const void *s, size_t len)
{
	if (len > UINT32_MAX || w->size - w->len < U32_LEN || w->size - w->len - U32_LEN < len)
		return -1;
	(void)sshkey_put_u32(w, (uint32_t)len);
	if (len > 0)
		memcpy(w->p + w->len, s, len);
	w->len += len;
	return 0;
}

/* Whether the wire string s[0..len) is exactly name. */
static bool
string_is(const uint8_t *s, size_t len, const char *name)
{
	return len == strlen(name) && memcmp(s, name, len) == 0;
}

/* --- blobs and fingerprints ---------------------------------------------- */

/* string "ssh-ed25519" || string(v): the shape of both key and signature blobs. */
static int
typed_encode(const uint8_t *v, size_t vlen, uint8_t *out, size_t size, size_t *len)
{
	struct sshkey_writer w;

	sshkey_writer_init(&w, out, size);
	if (sshkey_put_string(&w, SSHKEY_ED25519_NAME, strlen(SSHKEY_ED25519_NAME)) != 0 ||
	    sshkey_put_string(&w, v, vlen) != 0)
		return -1;
	*len = w.len;
	return 0;
}

static int
typed_decode(const uint8_t *blob, size_t len, uint8_t *v, size_t vlen)
{
	struct sshkey_reader r;
	const uint8_t *type, *val;
	size_t type_len, val_len;

	sshkey_reader_init(&r, blob, len);
	if (sshkey_get_string(&r, &type, &type_len) != 0 ||
	    !string_is(type, type_len, SSHKEY_ED25519_NAME) ||
	    sshkey_get_string(&r, &val, &val_len) != 0 || val_len != vlen ||
	    sshkey_reader_left(&r) != 0)
		return -1;
	memcpy(v, val, vlen);
	return 0;
}

int
sshkey_blob_encode(const uint8_t pk[SSHKEY_ED25519_PUBLEN], uint8_t *out, size_t size, size_t *len)
{
	return typed_encode(pk, SSHKEY_ED25519_PUBLEN, out, size, len);
}

int
sshkey_blob_decode(const uint8_t *blob, size_t len, uint8_t pk[SSHKEY_ED25519_PUBLEN])
{
	return typed_decode(blob, len, pk, SSHKEY_ED25519_PUBLEN);
}

int
sshkey_sig_encode(const uint8_t sig[SSHKEY_ED25519_SIGLEN], uint8_t *out, size_t size, size_t *len)
{
	return typed_encode(sig, SSHKEY_ED25519_SIGLEN, out, size, len);
}

int
sshkey_sig_decode(const uint8_t *blob, size_t len, uint8_t sig[SSHKEY_ED25519_SIGLEN])
{
	return typed_decode(blob, len, sig, SSHKEY_ED25519_SIGLEN);
}

void
sshkey_fingerprint(const uint8_t pk[SSHKEY_ED25519_PUBLEN], char out[SSHKEY_FINGERPRINT_MAX])
{
	uint8_t blob[SSHKEY_BLOB_MAX];
	uint8_t hash[crypto_hash_sha256_BYTES];
	size_t len = 0;

	/* Cannot fail: the static assertions above size the buffers. */
	(void)sshkey_blob_encode(pk, blob, sizeof(blob), &len);
	crypto_hash_sha256(hash, blob, len);
	memcpy(out, FINGERPRINT_PREFIX, FINGERPRINT_PREFIX_LEN);
	sodium_bin2base64(out + FINGERPRINT_PREFIX_LEN,
	                  SSHKEY_FINGERPRINT_MAX - FINGERPRINT_PREFIX_LEN, hash, sizeof(hash),
	                  sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}

/* --- key lines ------------------------------------------------------------- */

struct span {
	const char *p;
	size_t len;
};

/* What one key line holds; spans point into the line. */
struct key_line {
	uint8_t pk[SSHKEY_ED25519_PUBLEN];
	struct span options;
	struct span comment;
};

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Blanks and line ends, as may trail a key file. */
static bool
is_space(char c)
{
	return is_blank(c) || c == '\r' || c == '\n';
}

/* Characters of key type names and option names; ASCII only, whatever the locale. */
static bool
is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '@';
}

static bool
span_is(struct span s, const char *name)
{
	return string_is((const uint8_t *)s.p, s.len, name);
}

static size_t
skip_blanks(const char *s, size_t i, size_t end)
{
	while (i < end && is_blank(s[i]))
		i++;
	return i;
}

/* The word at s[*i]: up to the next blank. */
static struct span
take_word(const char *s, size_t *i, size_t end)
{
	struct span w = {s + *i, 0};

	while (*i < end && !is_blank(s[*i]))
		(*i)++;
	w.len = (size_t)(s + *i - w.p);
	return w;
}

/*
 * The field at s[*i] as sshd delimits the options field: up to a blank
 * outside double quotes, with \" not ending a quoted part.  Returns -1 for
 * an unterminated quote.
 */
static int
take_field(const char *s, size_t *i, size_t end, struct span *f)
{
	size_t j = *i;
	bool quoted = false;

	for (; j < end && (quoted || !is_blank(s[j])); j++) {
		if (s[j] == '\\' && j + 1 < end && s[j + 1] == '"')
			j++;
		else if (s[j] == '"')
			quoted = !quoted;
	}
	if (quoted)
		return -1;
	f->p = s + *i;
	f->len = j - *i;
	*i = j;
	return 0;
}

/*
 * Whether a first field names a key type rather than options.  sshd tells
 * them apart by trying to parse a key; every type OpenSSH knows starts with
 * one of these prefixes and no option does.
 */
static bool
looks_like_type(struct span f)
{
	static const char *const prefixes[] = {"ssh-", "ecdsa-sha2-", "sk-"};
	size_t i;

	for (i = 0; i < f.len; i++)
		if (!is_name_char(f.p[i]))
			return false;
	for (i = 0; i < ARRAY_LEN(prefixes); i++)
		if (f.len > strlen(prefixes[i]) &&
		    memcmp(f.p, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

/*
 * The option at opts[*pos]: NAME or NAME="VALUE" (\" is a quote inside the
 * value, any other backslash is itself, as sshd reads them), then a comma
 * and another option, or the end.  Copies the name and the unquoted value
 * when their buffers are given (NULL to check syntax only).  Returns 1 and
 * advances *pos, 0 at the end, -1 when malformed or a copy does not fit.
 */
static int
option_at(const char *opts, size_t len, size_t *pos, char *name, size_t name_size, char *value,
          size_t value_size)
{
	size_t i = *pos, start, n = 0;

	if (i >= len)
		return 0;
	if (value != NULL && value_size == 0)
		return -1;
	for (start = i; i < len && is_name_char(opts[i]); i++)
		;
	if (i == start || i - start >= SSHKEY_OPTION_NAME_MAX)
		return -1;
	if (name != NULL) {
		if (i - start >= name_size)
			return -1;
		memcpy(name, opts + start, i - start);
		name[i - start] = '\0';
	}
	if (i < len && opts[i] == '=') {
		if (++i >= len || opts[i] != '"')
			return -1;
		for (i++; i < len && opts[i] != '"'; i++) {
			if (opts[i] == '\\' && i + 1 < len && opts[i + 1] == '"')
				i++;
			if (value != NULL) {
				if (n + 1 >= value_size)
					return -1;
				value[n++] = opts[i];
			}
		}
		if (i >= len)
			return -1;
		i++;
	}
	if (value != NULL)
		value[n] = '\0';
	if (i < len) {
		/* A comma must introduce another option. */
		if (opts[i] != ',' || i + 1 >= len)
			return -1;
		i++;
	}
	*pos = i;
	return 1;
}

static bool
options_valid(struct span f)
{
	size_t pos = 0;
	int r;

	while ((r = option_at(f.p, f.len, &pos, NULL, 0, NULL, 0)) == 1)
		;
	return r == 0;
}

/*
 * Drops one LF or CRLF terminator and checks the rest: no NUL or other
 * control character but tab.  Bytes above 0x7f pass, for UTF-8 comments.
 */
static int
line_end(const char *line, size_t len, size_t *end, const char **why)
{
	size_t i;

	if (len > SSHKEY_LINE_MAX) {
		*why = "line too long";
		return -1;
	}
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			*why = "control character in line";
			return -1;
		}
	}
	*end = len;
	return 0;
}

/* Decodes the base64 blob field and checks it holds a key of the written type. */
static int
decode_blob_field(struct span b64, uint8_t pk[SSHKEY_ED25519_PUBLEN], const char **why)
{
	uint8_t blob[LINE_BLOB_MAX];
	size_t len;
	struct sshkey_reader r;
	const uint8_t *type;
	size_t type_len;

	if (b64.len == 0) {
		*why = "missing key";
		return -1;
	}
	if (b64_decode(b64.p, b64.len, NULL, sodium_base64_VARIANT_ORIGINAL, blob, sizeof(blob),
	               &len) != 0) {
		*why = "bad base64 in key";
		return -1;
	}
	sshkey_reader_init(&r, blob, len);
	if (sshkey_get_string(&r, &type, &type_len) != 0) {
		*why = "malformed key blob";
		return -1;
	}
	if (!string_is(type, type_len, SSHKEY_ED25519_NAME)) {
		*why = "key type does not match the key blob";
		return -1;
	}
	if (sshkey_blob_decode(blob, len, pk) != 0) {
		*why = "malformed key blob";
		return -1;
	}
	return 0;
}

/*
 * [options] keytype base64 [comment], options only when allowed.  Returns
 * 1, 0 for a blank or comment line, SSHKEY_UNSUPPORTED or SSHKEY_ERR.
 */
static int
parse_key_line(const char *line, size_t len, bool allow_options, struct key_line *out,
               const char **why)
{
	struct span f, blob;
	size_t i, end;

	memset(out, 0, sizeof(*out));
	if (line_end(line, len, &end, why) != 0)
		return SSHKEY_ERR;
	i = skip_blanks(line, 0, end);
	if (i == end || line[i] == '#')
		return 0;
	if (take_field(line, &i, end, &f) != 0) {
		*why = "unterminated quote in options";
		return SSHKEY_ERR;
	}
	if (!looks_like_type(f)) {
		if (!allow_options) {
			*why = "unknown key type";
			return SSHKEY_ERR;
		}
		if (!options_valid(f)) {
			*why = "malformed options";
			return SSHKEY_ERR;
		}
		out->options = f;
		i = skip_blanks(line, i, end);
		f = take_word(line, &i, end);
		if (f.len == 0) {
			*why = "missing key type";
			return SSHKEY_ERR;
		}
		if (!looks_like_type(f)) {
			*why = "unknown key type";
			return SSHKEY_ERR;
		}
	}
	if (!span_is(f, SSHKEY_ED25519_NAME)) {
		*why = "unsupported key type";
		return SSHKEY_UNSUPPORTED;
	}
	i = skip_blanks(line, i, end);
	blob = take_word(line, &i, end);
	if (decode_blob_field(blob, out->pk, why) != 0)
		return SSHKEY_ERR;
	i = skip_blanks(line, i, end);
	while (end > i && is_blank(line[end - 1]))
		end--;
	out->comment.p = line + i;
	out->comment.len = end - i;
	return 1;
}

/* Lines are at most SSHKEY_LINE_MAX bytes, so their parts always fit. */
static void
copy_span(char *dst, size_t size, struct span s)
{
	size_t n = s.len < size - 1 ? s.len : size - 1;

	if (n > 0)
		memcpy(dst, s.p, n);
	dst[n] = '\0';
}

int
sshkey_authorized_parse_line(const char *line, size_t len, struct sshkey_authorized_key *out,
                             const char **why)
{
	struct key_line kl;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = parse_key_line(line, len, true, &kl, why)) != 1)
		return r;
	memcpy(out->pk, kl.pk, sizeof(out->pk));
	copy_span(out->options, sizeof(out->options), kl.options);
	copy_span(out->comment, sizeof(out->comment), kl.comment);
	return 1;
}

int
sshkey_authorized_option_next(const struct sshkey_authorized_key *k, size_t *cursor, char *name,
                              size_t name_size, char *value, size_t value_size)
{
	size_t len = strnlen(k->options, sizeof(k->options));

	if (name == NULL || value == NULL || len == sizeof(k->options) || *cursor > len)
		return -1;
	return option_at(k->options, len, cursor, name, name_size, value, value_size);
}

int
sshkey_authorized_option(const struct sshkey_authorized_key *k, const char *name, char *value,
                         size_t size)
{
	char seen[SSHKEY_OPTION_NAME_MAX];
	size_t len = strnlen(k->options, sizeof(k->options));
	size_t pos = 0, start, found = 0;
	bool present = false;
	int r;

	if (len == sizeof(k->options) || size == 0)
		return -1;
	/* Names first: a second occurrence makes the option ambiguous. */
	for (start = pos; (r = option_at(k->options, len, &pos, seen, sizeof(seen), NULL, 0)) == 1;
	     start = pos) {
		if (strcasecmp(seen, name) != 0)
			continue;
		if (present)
			return -1;
		present = true;
		found = start;
	}
	if (r < 0)
		return -1;
	if (!present)
		return 0;
	return option_at(k->options, len, &found, NULL, 0, value, size) == 1 ? 1 : -1;
}

/* --- key files ------------------------------------------------------------- */

int
sshkey_parse_public(const char *text, size_t len, uint8_t pk[SSHKEY_ED25519_PUBLEN],
                    const char **why)
{
	struct key_line kl;
	int r;

	memset(pk, 0, SSHKEY_ED25519_PUBLEN);
	if (len > SSHKEY_LINE_MAX) {
		*why = "public key file too long";
		return SSHKEY_ERR;
	}
	while (len > 0 && is_space(text[len - 1]))
		len--;
	if (len > 0 && memchr(text, '\n', len) != NULL) {
		*why = "more than one line in a public key file";
		return SSHKEY_ERR;
	}
	r = parse_key_line(text, len, false, &kl, why);
	if (r == 0) {
		*why = "no key in public key file";
		return SSHKEY_ERR;
	}
	if (r < 0)
		return r;
	memcpy(pk, kl.pk, SSHKEY_ED25519_PUBLEN);
	return 0;
}

/* Bytes of the line terminator at text[i]: 1 for LF, 2 for CRLF, 0 for none. */
static size_t
eol_at(const char *text, size_t i, size_t len)
{
	if (i < len && text[i] == '\n')
		return 1;
	if (i + 1 < len && text[i] == '\r' && text[i + 1] == '\n')
		return 2;
	return 0;
}

/*
 * Finds the base64 body between the BEGIN line, which starts the text as
 * ssh-keygen writes it, and the END line.  Only whitespace may follow END.
 */
static int
unarmour(const char *text, size_t len, struct span *body, const char **why)
{
	const size_t begin_len = strlen(ARMOUR_BEGIN), end_len = strlen(ARMOUR_END);
	const char *nl;
	size_t i, j, start, eol;

	if (len < begin_len || memcmp(text, ARMOUR_BEGIN, begin_len) != 0) {
		*why = "not an OpenSSH private key file";
		return -1;
	}
	if ((eol = eol_at(text, begin_len, len)) == 0) {
		*why = "malformed private key armour";
		return -1;
	}
	start = begin_len + eol;
	/* i walks the starts of lines. */
	for (i = start; i < len;) {
		if (len - i >= end_len && memcmp(text + i, ARMOUR_END, end_len) == 0) {
			for (j = i + end_len; j < len; j++) {
				if (!is_space(text[j])) {
					*why = "data after the end of the private key";
					return -1;
				}
			}
			body->p = text + start;
			body->len = i - start;
			return 0;
		}
		if ((nl = memchr(text + i, '\n', len - i)) == NULL)
			break;
		i = (size_t)(nl - text) + 1;
	}
	*why = "private key armour has no end line";
	return -1;
}

/*
 * The private section: checkint checkint string(type) string(pk) string(sk)
 * string(comment) padding.  On success sk and pk point into the section.
 */
static int
parse_private_section(const uint8_t *sec, size_t len, const uint8_t **pk, const uint8_t **sk,
                      const char **why)
{
	struct sshkey_reader r;
	const uint8_t *type, *comment;
	size_t type_len, pk_len, sk_len, comment_len;
	uint32_t check1, check2;
	uint8_t pad, want;

	if (len % NONE_BLOCK_SIZE != 0) {
		*why = "private section not padded to the block size";
		return -1;
	}
	sshkey_reader_init(&r, sec, len);
	if (sshkey_get_u32(&r, &check1) != 0 || sshkey_get_u32(&r, &check2) != 0) {
		*why = "truncated private section";
		return -1;
	}
	if (check1 != check2) {
		*why = "check integers differ: the private key is corrupt";
		return -1;
	}
	if (sshkey_get_string(&r, &type, &type_len) != 0 ||
	    !string_is(type, type_len, SSHKEY_ED25519_NAME)) {
		*why = "private key type differs from the public key's";
		return -1;
	}
	if (sshkey_get_string(&r, pk, &pk_len) != 0 || pk_len != SSHKEY_ED25519_PUBLEN ||
	    sshkey_get_string(&r, sk, &sk_len) != 0 || sk_len != SSHKEY_ED25519_SECLEN ||
	    sshkey_get_string(&r, &comment, &comment_len) != 0) {
		*why = "malformed private key";
		return -1;
	}
	/* Padding 1, 2, 3, ... up to the block size and no further. */
	if (sshkey_reader_left(&r) >= NONE_BLOCK_SIZE) {
		*why = "bad padding in private section";
		return -1;
	}
	for (want = 1; sshkey_get_u8(&r, &pad) == 0; want++) {
		if (pad != want) {
			*why = "bad padding in private section";
			return -1;
		}
	}
	return 0;
}

/*
 * The decoded file: magic, cipher, kdf, kdf options, key count, public key
 * blob, private section.  Writes sk and pk only once every check passed
 * (pk alone for an encrypted key).
 */
static int
parse_key_body(const uint8_t *body, size_t len, uint8_t sk[SSHKEY_ED25519_SECLEN],
               uint8_t pk[SSHKEY_ED25519_PUBLEN], const char **why)
{
	struct sshkey_reader r, blob;
	const uint8_t *magic, *cipher, *kdf, *kdf_opts, *pub, *sec, *type, *sec_pk, *sec_sk;
	size_t cipher_len, kdf_len, kdf_opts_len, pub_len, sec_len, type_len;
	uint32_t nkeys;
	uint8_t hdr_pk[SSHKEY_ED25519_PUBLEN];
	uint8_t seed_pk[SSHKEY_ED25519_PUBLEN];
	uint8_t seed_sk[SSHKEY_ED25519_SECLEN];
	int ret = SSHKEY_ERR;

	sshkey_reader_init(&r, body, len);
	if (get_fixed(&r, KEY_MAGIC_LEN, &magic) != 0 ||
	    memcmp(magic, KEY_MAGIC, KEY_MAGIC_LEN) != 0) {
		*why = "not an openssh-key-v1 private key";
		goto out;
	}
	if (sshkey_get_string(&r, &cipher, &cipher_len) != 0 ||
	    sshkey_get_string(&r, &kdf, &kdf_len) != 0 ||
	    sshkey_get_string(&r, &kdf_opts, &kdf_opts_len) != 0 ||
	    sshkey_get_u32(&r, &nkeys) != 0) {
		*why = "truncated private key file";
		goto out;
	}
	if (nkeys != 1) {
		*why = "a private key file must hold exactly one key";
		goto out;
	}
	if (sshkey_get_string(&r, &pub, &pub_len) != 0) {
		*why = "truncated private key file";
		goto out;
	}
	/* The public half is in the clear, so the type is known even when encrypted. */
	sshkey_reader_init(&blob, pub, pub_len);
	if (sshkey_get_string(&blob, &type, &type_len) != 0) {
		*why = "malformed public key in private key file";
		goto out;
	}
	if (!string_is(type, type_len, SSHKEY_ED25519_NAME)) {
		*why = "unsupported key type";
		ret = SSHKEY_UNSUPPORTED;
		goto out;
	}
	if (sshkey_blob_decode(pub, pub_len, hdr_pk) != 0) {
		*why = "malformed public key in private key file";
		goto out;
	}
	if (!string_is(cipher, cipher_len, CIPHER_NONE)) {
		/* The public half tells the caller which key to ask the agent for. */
		memcpy(pk, hdr_pk, SSHKEY_ED25519_PUBLEN);
		*why = ENCRYPTED_HINT;
		ret = SSHKEY_ENCRYPTED;
		goto out;
	}
	if (!string_is(kdf, kdf_len, KDF_NONE) || kdf_opts_len != 0) {
		*why = "unencrypted private key names a key derivation";
		goto out;
	}
	if (sshkey_get_string(&r, &sec, &sec_len) != 0 || sshkey_reader_left(&r) != 0) {
		*why = "malformed private key file";
		goto out;
	}
	if (parse_private_section(sec, sec_len, &sec_pk, &sec_sk, why) != 0)
		goto out;
	if (memcmp(sec_pk, hdr_pk, SSHKEY_ED25519_PUBLEN) != 0 ||
	    memcmp(sec_sk + crypto_sign_SEEDBYTES, hdr_pk, SSHKEY_ED25519_PUBLEN) != 0) {
		*why = "the copies of the public key in the file differ";
		goto out;
	}
	/* The secret half is seed || public key: the seed must give that public key. */
	crypto_sign_seed_keypair(seed_pk, seed_sk, sec_sk);
	if (sodium_memcmp(seed_pk, hdr_pk, SSHKEY_ED25519_PUBLEN) != 0 ||
	    sodium_memcmp(seed_sk, sec_sk, SSHKEY_ED25519_SECLEN) != 0) {
		*why = "the private key does not match its public key";
		goto out;
	}
	memcpy(sk, seed_sk, SSHKEY_ED25519_SECLEN);
	memcpy(pk, hdr_pk, SSHKEY_ED25519_PUBLEN);
	ret = 0;
out:
	sodium_memzero(seed_sk, sizeof(seed_sk));
	return ret;
}

int
sshkey_parse_private(const char *text, size_t len, uint8_t sk[SSHKEY_ED25519_SECLEN],
                     uint8_t pk[SSHKEY_ED25519_PUBLEN], const char **why)
{
	uint8_t body[FILE_BODY_MAX];
	size_t body_len = 0;
	struct span b64;
	int ret = SSHKEY_ERR;

	sodium_memzero(sk, SSHKEY_ED25519_SECLEN);
	memset(pk, 0, SSHKEY_ED25519_PUBLEN);
	if (len > SSHKEY_FILE_MAX) {
		*why = "private key file too large";
		goto out;
	}
	/* libsodium would skip a NUL as one of the ignored characters. */
	if (len > 0 && memchr(text, '\0', len) != NULL) {
		*why = "NUL byte in private key file";
		goto out;
	}
	if (unarmour(text, len, &b64, why) != 0)
		goto out;
	if (b64_decode(b64.p, b64.len, "\r\n", sodium_base64_VARIANT_ORIGINAL, body, sizeof(body),
	               &body_len) != 0) {
		*why = "bad base64 in private key file";
		goto out;
	}
	ret = parse_key_body(body, body_len, sk, pk, why);
out:
	sodium_memzero(body, sizeof(body));
	return ret;
}
