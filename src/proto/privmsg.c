#include "proto/privmsg.h"

#include <string.h>

#include "common/util.h"
#include "crypto/sshkey.h"

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Frames the body already written at out + PRIVMSG_HEADER. */
static int
frame(uint32_t type, struct sshkey_writer *w, uint8_t *out, size_t *len)
{
	put32(out, type);
	put32(out + 4, (uint32_t)w->len);
	*len = PRIVMSG_HEADER + w->len;
	return 0;
}

int
privmsg_request_encode(const struct priv_request *req, uint8_t *out, size_t size, size_t *len)
{
	struct sshkey_writer w;
	int r = 0;

	if (size < PRIVMSG_HEADER)
		return -1;
	sshkey_writer_init(&w, out + PRIVMSG_HEADER, size - PRIVMSG_HEADER);
	switch (req->type) {
	case PRIV_PUBKEY_CHECK:
		r |= sshkey_put_string(&w, req->user, strlen(req->user));
		r |= sshkey_put_string(&w, req->pk, sizeof(req->pk));
		r |= sshkey_put_string(&w, req->peer_ip, strlen(req->peer_ip));
		break;
	case PRIV_PAM_START:
		r |= sshkey_put_string(&w, req->user, strlen(req->user));
		r |= sshkey_put_string(&w, req->peer_ip, strlen(req->peer_ip));
		break;
	case PRIV_LISTEN:
		r |= sshkey_put_string(&w, req->address, strlen(req->address));
		break;
	case PRIV_CONFIG:
	case PRIV_AUDIT:
	case PRIV_CLIENTS:
		break;
	default:
		return -1;
	}
	return r != 0 ? -1 : frame(req->type, &w, out, len);
}

int
privmsg_header_decode(const uint8_t hdr[PRIVMSG_HEADER], uint32_t *type, uint32_t *len,
                      uint32_t max)
{
	*type = get32(hdr);
	*len = get32(hdr + 4);
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

int
privmsg_request_decode(uint32_t type, const uint8_t *body, size_t len, struct priv_request *out)
{
	struct sshkey_reader r;
	int bad = 0;

	memset(out, 0, sizeof(*out));
	out->type = (enum priv_type)type;
	sshkey_reader_init(&r, body, len);
	switch (type) {
	case PRIV_PUBKEY_CHECK:
		bad |= get_text(&r, out->user, sizeof(out->user));
		bad |= get_fixed(&r, out->pk, sizeof(out->pk));
		bad |= get_text(&r, out->peer_ip, sizeof(out->peer_ip));
		bad |= !auth_user_valid(out->user);
		break;
	case PRIV_PAM_START:
		bad |= get_text(&r, out->user, sizeof(out->user));
		bad |= get_text(&r, out->peer_ip, sizeof(out->peer_ip));
		bad |= !auth_user_valid(out->user);
		break;
	case PRIV_LISTEN:
		bad |= get_text(&r, out->address, sizeof(out->address));
		break;
	case PRIV_CONFIG:
	case PRIV_AUDIT:
	case PRIV_CLIENTS:
		break;
	default:
		return -1;
	}
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
