/*
 * A connection to fived as libfive talks on it before the relay starts:
 * lines out and lines in, through the sealed session's records when there
 * is one.  Reads never go past what is asked for on a plain connection
 * (the descriptor is handed on); on a sealed one, plaintext read ahead is
 * kept for whoever takes over.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/internal.h"
#include "client/tls.h"
#include "proto/sealed.h"

int
five_conn_send(struct five_conn *c, const void *data, size_t len, struct five_error *err)
{
	if (c->seal == NULL)
		return five_send_all(c->fd, data, len, err);
	if (five_seal_send(c->seal, c->fd, data, len) != 0)
		return five_fail(err, FIVE_ERR_CONNECT, "send: %s", strerror(errno));
	return 0;
}

/* Sealed: more plaintext into c->in, from the records pending or read now. */
static int
fill(struct five_conn *c, struct five_error *err)
{
	struct five_seal *z = c->seal;
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	uint8_t pt[RECORD_PLAINTEXT_MAX];
	size_t used, n;
	ssize_t got;
	int st;

	for (;;) {
		st = five_seal_unwrap(z, z->pending, z->pending_len, &used, pt, sizeof(pt), &n);
		memmove(z->pending, z->pending + used, z->pending_len - used);
		z->pending_len -= used;
		if (st == RECORD_ERROR)
			return five_fail(err, FIVE_ERR_PROTOCOL, "a record failed to authenticate");
		if (st == RECORD_FINAL)
			return five_fail(err, FIVE_ERR_PROTOCOL,
			                 "connection closed before a reply");
		if (st == RECORD_OK) {
			if (n > sizeof(c->in) - c->in_len)
				return five_fail(err, FIVE_ERR_PROTOCOL, "reply too long");
			memcpy(c->in + c->in_len, pt, n);
			c->in_len += n;
			sodium_memzero(pt, sizeof(pt));
			return 0;
		}
		if (poll(&pfd, 1, c->timeout_ms) <= 0)
			return five_fail(err, FIVE_ERR_PROTOCOL, "no reply within %d ms",
			                 c->timeout_ms);
		got = recv(c->fd, z->pending + z->pending_len, sizeof(z->pending) - z->pending_len,
		           0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return five_fail(err, FIVE_ERR_PROTOCOL,
			                 "connection closed before a reply");
		z->pending_len += (size_t)got;
	}
}

int
five_conn_read_line(struct five_conn *c, char *line, size_t size, struct five_error *err)
{
	uint8_t *nl;
	size_t n;

	if (c->seal == NULL)
		return five_read_line(c->fd, c->timeout_ms, line, size, err);
	while ((nl = memchr(c->in, '\n', c->in_len)) == NULL) {
		if (c->in_len >= size)
			return five_fail(err, FIVE_ERR_PROTOCOL, "reply line too long");
		if (fill(c, err) != 0)
			return -1;
	}
	n = (size_t)(nl - c->in);
	if (n + 1 > size)
		return five_fail(err, FIVE_ERR_PROTOCOL, "reply line too long");
	memcpy(line, c->in, n);
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	c->in_len -= (size_t)(nl + 1 - c->in);
	memmove(c->in, nl + 1, c->in_len);
	return 0;
}

/* Sends a then b as one piece: one segment for plain TCP, one record when sealed. */
static int
send_both(struct five_conn *c, const void *a, size_t a_len, const void *b, size_t b_len,
          struct five_error *err)
{
	uint8_t *msg;
	int r;

	if (a_len == 0)
		return b_len == 0 ? 0 : five_conn_send(c, b, b_len, err);
	if ((msg = malloc(a_len + b_len)) == NULL)
		return five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
	memcpy(msg, a, a_len);
	if (b_len > 0)
		memcpy(msg + a_len, b, b_len);
	r = five_conn_send(c, msg, a_len + b_len, err);
	free(msg);
	return r;
}

/*
 * Without authentication first, the request rides in the sealed
 * handshake's first message; what does not fit follows in records.
 */
static int
open_sealed(struct five_conn *c, const char *host, const struct five_options *o,
            const void *request, size_t len, struct five_error *err)
{
	size_t early = o->auth == NULL ? len : 0;

	if (early > SEALED_EARLY_MAX)
		early = SEALED_EARLY_MAX;
	c->fd = five_seal_open(host, o, request, early, o->trust_on_first_use != 0, &c->seal,
	                       c->note, sizeof(c->note), err);
	if (c->fd < 0)
		return -1;
	memcpy(c->server_pk, c->seal->server_pk, sizeof(c->server_pk));
	c->has_server_pk = c->seal->has_server_pk;
	return (int)early;
}

int
five_conn_open(struct five_conn *c, const char *host, const struct five_options *o,
               const void *request, size_t len, struct five_error *err)
{
	char tail[FIVE_LINE_MAX], port[16];
	size_t tail_len = 0, sent = 0;
	int r, one = 1;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->timeout_ms = o->timeout_ms;
	if (sodium_init() < 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "libsodium cannot start");
	if (o->transport == FIVE_SEALED) {
		if ((r = open_sealed(c, host, o, request, len, err)) < 0)
			return -1;
		sent = (size_t)r;
	} else if (o->transport == FIVE_PLAIN) {
		if ((c->fd = five_dial_port(host, o, port, sizeof(port), err)) < 0)
			return -1;
		/* Unencrypted, only the server's key keeps a signature from being relayed. */
		if ((r = five_pinned_key(host, port, o, c->server_pk, err)) < 0)
			goto fail;
		c->has_server_pk = r == 1;
	} else if (o->transport == FIVE_TLS) {
		c->fd = five_tls_open(host, o, o->trust_on_first_use != 0, &c->seal, c->note,
		                      sizeof(c->note), err);
		if (c->fd < 0)
			return -1;
	} else {
		return five_fail(err, FIVE_ERR_USAGE, "unknown transport %d", o->transport);
	}
	/* Small writes (keystrokes, request lines) must not wait for an ACK. */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* An authentication's last line travels with the request. */
	if (o->auth != NULL &&
	    five_auth_pipelined(c, o, tail, sizeof(tail), &tail_len, &c->replies_due, err) != 0)
		goto fail;
	if (send_both(c, tail, tail_len, (const uint8_t *)request + sent, len - sent, err) != 0)
		goto fail;
	return 0;
fail:
	five_conn_close(c);
	return -1;
}

int
five_conn_await(struct five_conn *c, unsigned replies, struct five_error *err)
{
	char line[FIVE_LINE_MAX];

	for (; replies > 0; replies--)
		if (five_conn_read_line(c, line, sizeof(line), err) != 0 ||
		    five_check_reply(line, err) != 0)
			return -1;
	return 0;
}

void
five_conn_close(struct five_conn *c)
{
	if (c->fd >= 0 && c->seal != NULL)
		five_seal_end(c->seal, c->fd, c->timeout_ms);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	five_seal_free(c->seal);
	c->seal = NULL;
	sodium_memzero(c->in, sizeof(c->in));
	c->in_len = 0;
}
