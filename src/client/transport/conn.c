/*
 * A connection to fived as libfive talks on it before the relay starts:
 * lines out and lines in, through the sealed session's records when there
 * is one.  Reads never go past what is asked for on a plain connection
 * (the descriptor is handed on); on a sealed one, plaintext read ahead is
 * kept for whoever takes over.
 */
#include "client/transport/conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/base/options.h"
#include "client/base/sock.h"
#include "client/dial/dial.h"
#include "client/transport/seal.h"
#include "client/transport/tls.h"
#include "common/util.h"
#include "proto/sealed.h"

int
five_conn_send(struct five_conn *c, const void *data, size_t len, struct five_error *err)
{
	if (c->seal == NULL)
		return five_sock_send_all(c->fd, data, len, err);
	return five_seal_send(c->seal, c->fd, data, len, err);
}

/* Sealed: more plaintext into c->in, from the records pending or read now. */
static int
fill(struct five_conn *c, uint64_t deadline, struct five_error *err)
{
	struct five_seal *z = c->seal;
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	uint8_t pt[RECORD_PLAINTEXT_MAX];
	size_t used, n;
	ssize_t got;
	int r, st;

	for (;;) {
		r = five_seal_unwrap(z, z->pending, z->pending_len, &used, pt, sizeof(pt), &n, &st,
		                     err);
		memmove(z->pending, z->pending + used, z->pending_len - used);
		z->pending_len -= used;
		if (r != 0)
			return -1;
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
		if (poll(&pfd, 1, five_ms_left(deadline)) <= 0)
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
	uint64_t deadline = monotonic_ms() + (uint64_t)c->timeout_ms;
	uint8_t *nl;
	size_t n;

	if (c->seal == NULL)
		return five_sock_read_line(c->fd, c->timeout_ms, line, size, err);
	while ((nl = memchr(c->in, '\n', c->in_len)) == NULL) {
		if (c->in_len >= size)
			return five_fail(err, FIVE_ERR_PROTOCOL, "reply line too long");
		if (fill(c, deadline, err) != 0)
			return -1;
	}
	n = (size_t)(nl - c->in);
	if (n + 1 > size)
		return five_fail(err, FIVE_ERR_PROTOCOL, "reply line too long");
	if (memchr(c->in, '\0', n) != NULL)
		return five_fail(err, FIVE_ERR_PROTOCOL, "a NUL byte in a reply line");
	memcpy(line, c->in, n);
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	c->in_len -= (size_t)(nl + 1 - c->in);
	memmove(c->in, nl + 1, c->in_len);
	return 0;
}

/* The sealed handshake carries early as far as it fits; records carry the rest. */
static int
open_sealed(struct five_conn *c, const char *host, const struct five_options *o, const void *early,
            size_t len, struct five_error *err)
{
	size_t first = len < SEALED_EARLY_MAX ? len : SEALED_EARLY_MAX;

	c->fd = five_seal_open(host, o, early, first, o->trust_on_first_use != 0, &c->seal, c->note,
	                       sizeof(c->note), err);
	if (c->fd < 0)
		return -1;
	memcpy(c->server_pk, c->seal->server_pk, sizeof(c->server_pk));
	c->has_server_pk = c->seal->has_server_pk;
	return (int)first;
}

int
five_conn_open(struct five_conn *c, const char *host, const struct five_options *o,
               const void *early, size_t len, struct five_error *err)
{
	char port[16];
	size_t sent = 0;
	int r;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->timeout_ms = o->timeout_ms;
	if (sodium_init() < 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "libsodium cannot start");
	if (o->transport == FIVE_SEALED) {
		if ((r = open_sealed(c, host, o, early, len, err)) < 0)
			return -1;
		sent = (size_t)r;
	} else if (o->transport == FIVE_PLAIN) {
		if ((c->fd = five_dial_port(host, o, port, sizeof(port), err)) < 0)
			return -1;
		/* Unencrypted, only the server's key keeps a signature from being relayed. */
		if (five_pinned_key(host, port, o, c->server_pk, &c->has_server_pk, err) != 0)
			goto fail;
	} else if (o->transport == FIVE_TLS) {
		c->fd = five_tls_open(host, o, o->trust_on_first_use != 0, &c->seal, c->note,
		                      sizeof(c->note), err);
		if (c->fd < 0)
			return -1;
	} else {
		return five_fail(err, FIVE_ERR_USAGE, "unknown transport %d", o->transport);
	}
	/* Pinned now, whatever comes next: the caller hears of it before the session goes on. */
	five_notice(o, c->note);
	five_sock_no_delay(c->fd);
	if (len > sent && five_conn_send(c, (const uint8_t *)early + sent, len - sent, err) != 0)
		goto fail;
	return 0;
fail:
	five_conn_close(c);
	return -1;
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
