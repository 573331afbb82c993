#include "proto/privmsg.h"

#include <string.h>

#include "common/bytes.h"
#include "common/util.h"
#include "crypto/sshkey.h"

/* Frames the body already written at out + PRIVMSG_HEADER. */
static int
frame(uint32_t type, struct sshkey_writer *w, uint8_t *out, size_t *len)
{
	bytes_put32(out, type);
	bytes_put32(out + 4, (uint32_t)w->len);
	*len = PRIVMSG_HEADER + w->len;
	return 0;
}

/* The fields each request type carries, in the order they are written. */
enum {
	F_USER = 1 << 0,
	F_PK = 1 << 1,
	F_PEER = 1 << 2,
	F_ARG = 1 << 3,
	F_NUMBER = 1 << 4,
	F_BLOB = 1 << 5,
};

static const unsigned request_fields[PRIV_TYPE_MAX + 1] = {
        [PRIV_PUBKEY_CHECK] = F_USER | F_PK | F_PEER,
        [PRIV_PAM_START] = F_USER | F_PEER,
        [PRIV_CONFIG] = 0,
        [PRIV_LISTEN] = F_ARG,
        [PRIV_AUDIT] = 0,
        [PRIV_FILE] = F_ARG,
        [PRIV_KEYS] = 0,
        [PRIV_DH] = F_PK,
        [PRIV_TOKEN_ISSUE] = F_ARG | F_NUMBER | F_BLOB,
        [PRIV_TOKEN_OPEN] = F_ARG | F_BLOB,
        [PRIV_REVOKE] = F_ARG | F_NUMBER,
        [PRIV_REVOKED] = 0,
        [PRIV_EARLY_RESERVE] = F_NUMBER,
        [PRIV_EXEC] = F_ARG | F_BLOB,
        [PRIV_CONNECT] = F_ARG,
        [PRIV_ACCOUNT] = F_USER,
        [PRIV_READY] = 0,
        [PRIV_ALIVE] = F_BLOB,
        [PRIV_ADMIN] = F_NUMBER,
        [PRIV_RELOAD] = 0,
        [PRIV_PROOF_SIGN] = F_ARG | F_NUMBER | F_BLOB,
        [PRIV_COOKIE_SECRET] = F_NUMBER,
        [PRIV_EXEC_END] = F_NUMBER,
        [PRIV_EXEC_DONE] = F_NUMBER,
        [PRIV_EARLY_ADMIT] = F_PK | F_NUMBER,
        [PRIV_IS_REVOKED] = F_ARG,
        [PRIV_SHARES] = 0,
        [PRIV_PEER_CONNECT] = F_NUMBER,
        [PRIV_INHERIT] = 0,
};

int
privmsg_request_encode(const struct priv_request *req, uint8_t *out, size_t size, size_t *len)
{
	struct sshkey_writer w;
	unsigned f;
	int r = 0;

	if (size < PRIVMSG_HEADER || req->type < 1 || req->type > PRIV_TYPE_MAX ||
	    req->blob_len > sizeof(req->blob))
		return -1;
	f = request_fields[req->type];
	sshkey_writer_init(&w, out + PRIVMSG_HEADER, size - PRIVMSG_HEADER);
	if (f & F_USER)
		r |= sshkey_put_string(&w, req->user, strnlen(req->user, sizeof(req->user)));
	if (f & F_PK)
		r |= sshkey_put_string(&w, req->pk, sizeof(req->pk));
	if (f & F_PEER)
		r |= sshkey_put_string(&w, req->peer_ip,
		                       strnlen(req->peer_ip, sizeof(req->peer_ip)));
	if (f & F_ARG)
		r |= sshkey_put_string(&w, req->arg, strnlen(req->arg, sizeof(req->arg)));
	if (f & F_NUMBER) {
		r |= sshkey_put_u32(&w, (uint32_t)(req->number >> 32));
		r |= sshkey_put_u32(&w, (uint32_t)req->number);
	}
	if (f & F_BLOB)
		r |= sshkey_put_string(&w, req->blob, req->blob_len);
	return r != 0 ? -1 : frame(req->type, &w, out, len);
}

int
privmsg_header_decode(const uint8_t hdr[PRIVMSG_HEADER], uint32_t *type, uint32_t *len,
                      uint32_t max)
{
	*type = bytes_get32(hdr);
	*len = bytes_get32(hdr + 4);
	return *type >= 1 && *type <= PRIV_TYPE_MAX && *len <= max ? 0 : -1;
}

/* A string field copied as text: no NUL inside, shorter than size. */
static int
get_text(struct sshkey_reader *r, char *out, size_t size)
{
	const uint8_t *s;
	size_t n;

	if (sshkey_get_string(r, &s, &n) != 0 || n >= size || memchr(s, '\0', n) != NULL)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static int
get_fixed(struct sshkey_reader *r, uint8_t *out, size_t want)
{
	const uint8_t *s;
	size_t n;

	if (sshkey_get_string(r, &s, &n) != 0 || n != want)
		return -1;
	memcpy(out, s, n);
	return 0;
}

static int
get_number(struct sshkey_reader *r, uint64_t *out)
{
	uint32_t hi, lo;

	if (sshkey_get_u32(r, &hi) != 0 || sshkey_get_u32(r, &lo) != 0)
		return -1;
	*out = (uint64_t)hi << 32 | lo;
	return 0;
}

static int
get_blob(struct sshkey_reader *r, uint8_t *out, size_t size, size_t *len)
{
	const uint8_t *s;

	if (sshkey_get_string(r, &s, len) != 0 || *len > size)
		return -1;
	memcpy(out, s, *len);
	return 0;
}

int
privmsg_request_decode(uint32_t type, const uint8_t *body, size_t len, struct priv_request *out)
{
	struct sshkey_reader r;
	unsigned f;
	int bad = 0;

	memset(out, 0, sizeof(*out));
	if (type < 1 || type > PRIV_TYPE_MAX)
		return -1;
	out->type = (enum priv_type)type;
	f = request_fields[type];
	sshkey_reader_init(&r, body, len);
	if (f & F_USER)
		bad |= get_text(&r, out->user, sizeof(out->user)) || !auth_user_valid(out->user);
	if (f & F_PK)
		bad |= get_fixed(&r, out->pk, sizeof(out->pk));
	if (f & F_PEER)
		bad |= get_text(&r, out->peer_ip, sizeof(out->peer_ip));
	if (f & F_ARG)
		bad |= get_text(&r, out->arg, sizeof(out->arg));
	if (f & F_NUMBER)
		bad |= get_number(&r, &out->number);
	if (f & F_BLOB)
		bad |= get_blob(&r, out->blob, sizeof(out->blob), &out->blob_len);
	return bad || sshkey_reader_left(&r) != 0 ? -1 : 0;
}

int
privmsg_reply_encode(enum priv_type type, bool ok, const void *text, size_t text_len, uint8_t *out,
                     size_t size, size_t *len)
{
	struct sshkey_writer w;

	if (size < PRIVMSG_HEADER || text_len > PRIVMSG_TEXT_MAX)
		return -1;
	sshkey_writer_init(&w, out + PRIVMSG_HEADER, size - PRIVMSG_HEADER);
	if (sshkey_put_u8(&w, ok ? 1 : 0) != 0 || sshkey_put_string(&w, text, text_len) != 0)
		return -1;
	return frame(type, &w, out, len);
}

int
privmsg_reply_decode(const uint8_t *body, size_t len, struct priv_reply *out)
{
	struct sshkey_reader r;
	uint8_t ok;

	sshkey_reader_init(&r, body, len);
	if (sshkey_get_u8(&r, &ok) != 0 || ok > 1 ||
	    sshkey_get_string(&r, &out->text, &out->text_len) != 0 || sshkey_reader_left(&r) != 0 ||
	    out->text_len > PRIVMSG_TEXT_MAX)
		return -1;
	out->ok = ok == 1;
	return 0;
}
