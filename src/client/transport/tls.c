/*
 * TLS to fived, client side.  The handshake is blocking, over the socket,
 * through the same memory BIOs the records use afterwards.  The server's
 * key is checked while its certificate is being verified, so that a server
 * that is not the one pinned never sees our certificate.
 */
#include "client/transport/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/base/sock.h"
#include "client/dial/dial.h"
#include "client/keys/knownhosts.h"
#include "client/transport/seal.h"
#include "common/keyfile.h"
#include "common/util.h"
#include "crypto/record.h"
#include "legacy/tlshello.h"
#include "proto/tlsclients.h"

#define BINDING_LABEL "EXPORTER-Channel-Binding" /* RFC 9266 */
#define READ_STEP     16384                      /* socket reads during the handshake */
/* The largest TLS 1.3 record on the wire: a header and 2^14 + 256 bytes. */
#define WIRE_RECORD_MAX (5 + 16384 + 256)
#define NAME_TEXT_MAX   320
#define PATH_TEXT_MAX   4096
#define PORT_TEXT_MAX   16

_Static_assert(FIVE_TLS_BINDING_LEN <= NOISE_HASHLEN, "the binding must fit five_seal's hash");

struct five_tls {
	SSL *ssl;
	BIO *in;     /* fived's bytes, for OpenSSL */
	BIO *out;    /* OpenSSL's bytes, for fived */
	bool final;  /* close_notify came */
	bool failed; /* a record did not open: every later call fails */
};

/* The server's key: what is pinned (or given), and what its certificate shows. */
struct pin {
	char name[NAME_TEXT_MAX]; /* HOST:PORT/tls */
	char path[PATH_TEXT_MAX]; /* known_hosts */
	unsigned line;
	uint8_t pinned[TLSCLIENTS_FP_LEN];
	bool known; /* pinned, or given */
	bool given; /* o->server_key */
	bool tofu;
	uint8_t seen[TLSCLIENTS_FP_LEN];
	bool have_seen;
	bool refused; /* the key shown is not acceptable: the handshake was stopped for it */
};

/* Fills err with what OpenSSL says about its last failure. */
static int
openssl_fail(struct five_error *err, enum five_step step, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return five_fail(err, step, "%s: %s", what,
	                 reason != NULL ? reason : "the connection broke the protocol");
}

/* --- the server's key -------------------------------------------------------- */

static int
pin_lookup(struct pin *p, const struct five_options *o, const char *host, const char *port,
           struct five_error *err)
{
	char base[NAME_TEXT_MAX - sizeof(FIVE_TLS_PIN_SUFFIX)];

	knownhosts_name(host, port, base, sizeof(base));
	snprintf(p->name, sizeof(p->name), "%s%s", base, FIVE_TLS_PIN_SUFFIX);
	if (o->server_key != NULL) {
		if (tlsclients_fp_parse(o->server_key, p->pinned) != 0 &&
		    keyfile_b64_decode(o->server_key, p->pinned) != 0)
			return five_fail(err, FIVE_ERR_USAGE,
			                 "not a TLS key (SHA256:... or base64): %s", o->server_key);
		p->known = p->given = true;
		return 0;
	}
	return knownhosts_lookup(o->known_hosts, p->name, p->path, sizeof(p->path), p->pinned,
	                         &p->line, &p->known, err);
}

/*
 * In place of chain verification: the pin is the trust.  A key other than
 * the one pinned stops the handshake before anything of ours is sent.
 */
static int
check_server(X509_STORE_CTX *store, void *arg)
{
	struct pin *p = arg;
	X509 *cert = X509_STORE_CTX_get0_cert(store);

	p->have_seen = cert != NULL && tlsclients_fingerprint(cert, p->seen) == 0;
	if (!p->have_seen)
		return 0;
	if (p->known)
		p->refused = sodium_memcmp(p->seen, p->pinned, sizeof(p->seen)) != 0;
	else
		p->refused = !p->tofu;
	return !p->refused;
}

/* Why the key shown was refused, loudly when it changed. */
static int
pin_failure(const struct pin *p, struct five_error *err)
{
	char seen[TLSCLIENTS_FP_TEXT_MAX], pinned[TLSCLIENTS_FP_TEXT_MAX];

	tlsclients_fp_text(p->seen, seen);
	tlsclients_fp_text(p->pinned, pinned);
	if (p->given)
		return five_fail(err, FIVE_ERR_TRUST, "the TLS key of %s is %s, not %s as given",
		                 p->name, seen, pinned);
	if (p->known)
		return five_fail(
		        err, FIVE_ERR_TRUST,
		        "THE TLS KEY OF %s HAS CHANGED: pinned %s, now %s. Someone may be "
		        "impersonating it. If the change is expected, delete line %u of %s "
		        "and connect again",
		        p->name, pinned, seen, p->line, p->path);
	return five_fail(err, FIVE_ERR_TRUST, "no key pinned for %s (it offers %s)", p->name, seen);
}

/* First contact: the key is pinned from now on. */
static int
pin_learn(const struct pin *p, char *note, size_t note_size, struct five_error *err)
{
	char seen[TLSCLIENTS_FP_TEXT_MAX];

	if (knownhosts_add(p->path, p->name, p->seen, err) != 0)
		return -1;
	tlsclients_fp_text(p->seen, seen);
	snprintf(note, note_size, "new host %s, TLS key %s, pinned in %s", p->name, seen, p->path);
	return 0;
}

/* --- the handshake ----------------------------------------------------------- */

/* An encrypted key would ask for a passphrase on the terminal: refuse instead. */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	return -1;
}

static int
client_certificate(SSL_CTX *ctx, const struct five_options *o, struct five_error *err)
{
	const char *key = o->tls_key != NULL ? o->tls_key : o->tls_certificate;
	char what[PATH_TEXT_MAX];

	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	snprintf(what, sizeof(what), "client certificate %s", o->tls_certificate);
	if (SSL_CTX_use_certificate_chain_file(ctx, o->tls_certificate) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		return openssl_fail(err, FIVE_ERR_USAGE, what);
	return 0;
}

/* The ALPN protocol list five offers: fived's id alone, length-prefixed. */
static const unsigned char alpn_fived[] = "\x05" TLSHELLO_ALPN_FIVED;
_Static_assert(TLSHELLO_ALPN_FIVED_LEN == 5, "alpn_fived's length prefix");

/* A client connection, TLS 1.3 only, the server checked by p. */
static struct five_tls *
start(const struct five_options *o, struct pin *p, struct five_error *err)
{
	struct five_tls *t = calloc(1, sizeof(*t));
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	BIO *in = NULL, *out = NULL;

	if (t == NULL || ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
		openssl_fail(err, FIVE_ERR_SYSTEM, "cannot set up TLS");
		goto fail;
	}
	/*
	 * fived's ALPN id: a server that hands TLS clients of other protocols
	 * to another backend (legacy_tls) keeps this one.  0 is success here.
	 */
	if (SSL_CTX_set_alpn_protos(ctx, alpn_fived, sizeof(alpn_fived) - 1) != 0) {
		openssl_fail(err, FIVE_ERR_SYSTEM, "cannot set up TLS");
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, check_server, p);
	if (o->tls_certificate != NULL && client_certificate(ctx, o, err) != 0)
		goto fail;
	if ((t->ssl = SSL_new(ctx)) == NULL || (in = BIO_new(BIO_s_mem())) == NULL ||
	    (out = BIO_new(BIO_s_mem())) == NULL) {
		openssl_fail(err, FIVE_ERR_SYSTEM, "cannot set up TLS");
		goto fail;
	}
	/* An empty input means "more to come", not end of stream. */
	BIO_set_mem_eof_return(in, -1);
	SSL_set_bio(t->ssl, in, out);
	SSL_set_connect_state(t->ssl);
	t->in = in;
	t->out = out;
	SSL_CTX_free(ctx);
	return t;
fail:
	BIO_free(in);
	if (t != NULL)
		SSL_free(t->ssl);
	free(t);
	SSL_CTX_free(ctx);
	return NULL;
}

/* Sends what OpenSSL has for fived.  Returns 0 or -1 with err filled. */
static int
send_pending(int fd, struct five_tls *t, struct five_error *err)
{
	uint8_t buf[READ_STEP];
	int n;

	while ((n = BIO_read(t->out, buf, sizeof(buf))) > 0)
		if (five_sock_send_all(fd, buf, (size_t)n, err) != 0)
			return -1;
	return 0;
}

/* The first bytes fived sent: a refusal in text would be OpenSSL's broken record. */
struct first_bytes {
	uint8_t buf[FIVE_TEXT_REFUSAL_MAX];
	size_t len;
};

static void
keep_first(struct first_bytes *f, const uint8_t *data, size_t len)
{
	size_t n = len < sizeof(f->buf) - f->len ? len : sizeof(f->buf) - f->len;

	memcpy(f->buf + f->len, data, n);
	f->len += n;
}

/*
 * Once OpenSSL gave up: when fived's first bytes are a refusal in text
 * (PROTOCOL.md 6.2, a connection over its limits), reads the rest of its
 * line and returns -1 with err the refusal; 0 when they are not one.
 */
static int
refused_in_text(int fd, struct first_bytes *f, uint64_t deadline, struct five_error *err)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	ssize_t n;
	int st;

	while ((st = five_text_refusal(f->buf, f->len, err)) == 1) {
		if (poll(&pfd, 1, five_ms_left(deadline)) <= 0)
			return 0;
		if ((n = recv(fd, f->buf + f->len, sizeof(f->buf) - f->len, 0)) < 0 &&
		    errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		f->len += (size_t)n;
	}
	return st;
}

/*
 * A server that refused in text and reset the connection fails the next
 * send; its line may still be there to read.  -1 with err: the refusal,
 * or the send's own error.
 */
static int
refused_before_reset(int fd, struct first_bytes *f, struct five_error *err)
{
	struct five_error refusal;
	ssize_t n;

	while (f->len < sizeof(f->buf) &&
	       (n = recv(fd, f->buf + f->len, sizeof(f->buf) - f->len, MSG_DONTWAIT)) > 0)
		f->len += (size_t)n;
	if (five_text_refusal(f->buf, f->len, &refusal) < 0)
		*err = refusal;
	return -1;
}

/*
 * Returns 0 when done, 1 when OpenSSL stopped it, -1 for the socket or a
 * refusal (err filled).  The timeout bounds fived's whole flight, not the
 * silence between its bytes.
 */
static int
handshake(int fd, struct five_tls *t, int timeout_ms, struct five_error *err)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	uint64_t deadline = monotonic_ms() + (uint64_t)timeout_ms;
	struct first_bytes first = {.len = 0};
	uint8_t buf[READ_STEP];
	ssize_t n;
	int r, e;

	for (;;) {
		ERR_clear_error();
		r = SSL_do_handshake(t->ssl);
		e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
		if (r != 1 && e != SSL_ERROR_WANT_READ) {
			/* The alert goes out if it can: the failure is what counts. */
			send_pending(fd, t, err);
			return refused_in_text(fd, &first, deadline, err) < 0 ? -1 : 1;
		}
		if (send_pending(fd, t, err) != 0)
			return refused_before_reset(fd, &first, err);
		if (r == 1)
			return 0;
		if (poll(&pfd, 1, five_ms_left(deadline)) <= 0)
			return five_fail(err, FIVE_ERR_PROTOCOL,
			                 "no TLS handshake reply within %d ms", timeout_ms);
		if ((n = recv(fd, buf, sizeof(buf), 0)) < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return five_fail(err, FIVE_ERR_PROTOCOL,
			                 "connection closed during the TLS handshake");
		keep_first(&first, buf, (size_t)n);
		/* A whole refusal line is one, even one too short for OpenSSL to judge ("-"). */
		if (five_text_refusal(first.buf, first.len, err) < 0)
			return -1;
		if (BIO_write(t->in, buf, (int)n) != (int)n)
			return five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
	}
}

/* After the handshake: the channel binding, and fived's bytes read past it. */
static int
settle(struct five_seal *z, struct five_error *err)
{
	struct five_tls *t = z->tls;
	size_t left = BIO_ctrl_pending(t->in);

	if (SSL_export_keying_material(t->ssl, z->hash, FIVE_TLS_BINDING_LEN, BINDING_LABEL,
	                               strlen(BINDING_LABEL), NULL, 0, 0) != 1)
		return openssl_fail(err, FIVE_ERR_SYSTEM, "cannot derive the channel binding");
	if (left > sizeof(z->pending) ||
	    (left > 0 && BIO_read(t->in, z->pending, (int)left) != (int)left))
		return five_fail(err, FIVE_ERR_PROTOCOL, "too much data after the TLS handshake");
	z->pending_len = left;
	return 0;
}

int
five_tls_start(int fd, const char *host, const char *port, const struct five_options *o, bool tofu,
               struct five_seal **out, char *note, size_t note_size, struct five_error *err)
{
	struct pin *p = calloc(1, sizeof(*p));
	struct five_seal *z = calloc(1, sizeof(*z));
	int r;

	note[0] = '\0';
	*out = NULL;
	if (p == NULL || z == NULL) {
		five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
		goto fail;
	}
	if (pin_lookup(p, o, host, port, err) != 0 ||
	    (!p->known && tofu && knownhosts_can_add(p->path, p->name, err) != 0))
		goto fail;
	p->tofu = tofu;
	if ((z->tls = start(o, p, err)) == NULL)
		goto fail;
	if ((r = handshake(fd, z->tls, o->timeout_ms, err)) != 0) {
		if (r > 0 && p->refused)
			pin_failure(p, err);
		else if (r > 0)
			openssl_fail(err, FIVE_ERR_PROTOCOL, "TLS handshake failed");
		goto fail;
	}
	if ((!p->known && pin_learn(p, note, note_size, err) != 0) || settle(z, err) != 0) {
		five_seal_end(z, fd, o->timeout_ms); /* nothing was sent: the stream is whole */
		goto fail;
	}
	z->fd = fd;
	free(p);
	*out = z;
	return fd;
fail:
	close(fd);
	free(p);
	five_seal_free(z);
	return -1;
}

int
five_tls_open(const char *host, const struct five_options *o, bool tofu, struct five_seal **out,
              char *note, size_t note_size, struct five_error *err)
{
	char port[PORT_TEXT_MAX];
	int fd;

	note[0] = '\0';
	*out = NULL;
	if ((fd = five_dial_port(host, o, port, sizeof(port), err)) < 0)
		return -1;
	return five_tls_start(fd, host, port, o, tofu, out, note, note_size, err);
}

/* --- records ----------------------------------------------------------------- */

int
five_tls_wrap(struct five_tls *t, const uint8_t *pt, size_t len, bool final, uint8_t *out,
              size_t room, size_t *n)
{
	size_t wrote, pending;

	*n = 0;
	if (t->failed || len > FIVE_WRAP_MAX)
		return -1;
	ERR_clear_error();
	if (final ? SSL_shutdown(t->ssl) < 0
	          : len > 0 && (SSL_write_ex(t->ssl, pt, len, &wrote) != 1 || wrote != len)) {
		ERR_clear_error();
		return -1;
	}
	pending = BIO_ctrl_pending(t->out);
	if (pending > room || (pending > 0 && BIO_read(t->out, out, (int)pending) != (int)pending))
		return -1;
	*n = pending;
	return 0;
}

/*
 * OpenSSL reads a record's header, then exactly its body, from t->in: fed
 * at most a record or so at a time, what it left unread is given back
 * (*used), so that the caller's bytes after the record stay the caller's.
 */
int
five_tls_unwrap(struct five_tls *t, const uint8_t *in, size_t len, size_t *used, uint8_t *pt,
                size_t room, size_t *n)
{
	size_t fed = 0, step;
	int e, st = RECORD_OK;

	*used = 0;
	*n = 0;
	if (t->final && len == 0)
		return RECORD_FINAL;
	if (t->failed || t->final || room < RECORD_PLAINTEXT_MAX)
		goto fail;
	ERR_clear_error();
	while (SSL_read_ex(t->ssl, pt, room, n) != 1) {
		e = SSL_get_error(t->ssl, 0);
		if (e == SSL_ERROR_ZERO_RETURN) {
			t->final = true;
			st = RECORD_FINAL;
			break;
		}
		if (e != SSL_ERROR_WANT_READ)
			goto fail;
		if (fed == len) {
			*used = len;
			return RECORD_NEED_MORE;
		}
		step = len - fed < WIRE_RECORD_MAX ? len - fed : WIRE_RECORD_MAX;
		if (BIO_write(t->in, in + fed, (int)step) != (int)step)
			goto fail;
		fed += step;
	}
	*used = fed - BIO_ctrl_pending(t->in);
	(void)BIO_reset(t->in);
	return st;
fail:
	ERR_clear_error();
	t->failed = true;
	*n = 0;
	return RECORD_ERROR;
}

void
five_tls_free(struct five_tls *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);
	free(t);
}
