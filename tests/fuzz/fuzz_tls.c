/*
 * fived's TLS transport (src/server/transport/tls.c) against a real
 * OpenSSL client, both over memory BIOs: tls_new's struct transport is
 * driven as a session drives it (input, eof, output, finish, free), its
 * events caught here, and the input says what the client does once the
 * handshake is under way, so that mutations reach past the handshake:
 * application data, close_notify, KeyUpdate, raw bytes, flipped bits and
 * truncation on the wire, fived's own output and close_notify.
 *
 * OpenSSL's random bytes come from a fixed stream that starts over for
 * every input (fuzz_random.h, through a RAND_METHOD), so that an input
 * always runs the same handshake and a crash reproduces.
 *
 * Byte 0 is a mode, the rest operations:
 *
 *   bit 0   the client offers fived's ALPN id
 *   bit 1   the client shows a certificate, listed in tls_clients as alice's
 *   bit 2   the session ends as the first plaintext reaches it
 *
 * Each operation is a byte, its low three bits the kind, the rest an
 * argument A (0 to 31); WRITE, RAW and OUT take A + 1 bytes of the input
 * after it (what is left, when fewer), but WRITE and OUT with A 31 send
 * BIG_SIZE fixed bytes, more than a record holds and than fived's output
 * BIO keeps (BIGS_MAX times a case; later ones take A + 1 bytes, so that
 * a short input cannot ask for megabytes):
 *
 *   0 WRITE   the client sends those bytes in one record
 *   1 CLOSE   the client's close_notify
 *   2 RAW     those bytes go to fived as they are
 *   3 FLIP    bit A % 8 of byte A / 8 of what the client sends next is flipped
 *   4 OUT     fived sends those bytes (output), the client reads them
 *   5 FINISH  fived's close_notify (finish)
 *   6 UPDATE  the client's KeyUpdate, asking for fived's (A odd) or not
 *   7 PIECES  the client's bytes reach fived in pieces of A + 1 bytes (A 31: whole);
 *             A 30: only the first half of what it sends next arrives.  After
 *             PIECES_CALLS_MAX pieces in a case the rest goes whole: 48 KiB a
 *             byte at a time, twice (libFuzzer's leak check), is half a minute
 *             under ASan for no edge more
 *
 * The handshake runs before the first operation other than FLIP and
 * PIECES, so those may shape it.  When nothing was flipped, cut or sent
 * raw and the session did not end, fived's plaintext must be the client's
 * bytes and the client's fived's, and a close_notify must have reached it
 * as an end.
 */
/*
 * RAND_set_rand_method is deprecated in OpenSSL 3 but still honoured: short
 * of a provider of our own, the only way to give OpenSSL a fixed stream.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "fuzz_random.h"
#include "fuzz_tls_keys.h"
#include "legacy/tlshello.h"
#include "proto/tlsclients.h"
#include "server/conf/config.h"
#include "server/policy/chunk.h"
#include "server/policy/policy.h"
#include "server/policy/site.h"
#include "server/transport/tls.h"
#include "server/transport/transport.h"

#define MODE_ALPN   0x01
#define MODE_CERT   0x02
#define MODE_REFUSE 0x04

#define OP_WRITE  0
#define OP_CLOSE  1
#define OP_RAW    2
#define OP_FLIP   3
#define OP_OUT    4
#define OP_FINISH 5
#define OP_UPDATE 6
#define OP_PIECES 7
#define OP_KIND   0x07
#define OP_SHIFT  3

#define ARG_BIG      31
#define BIG_SIZE     (48 * 1024)
#define BIGS_MAX     8
#define PIECES_WHOLE 31
#define PIECES_HALF  30
/* Input calls in pieces per case; the rest goes whole (see PIECES above). */
#define PIECES_CALLS_MAX 4096

/* What each side's plaintext is kept of, for the comparison: more than an input holds. */
#define KEEP_MAX  (256 * 1024)
#define WIRE_MAX  (256 * 1024)
#define READ_SIZE 16384
/* Rounds of moving bytes both ways before giving up on an exchange that never settles. */
#define ROUNDS_MAX   64
#define RELAY_MEMORY (64u * 1024 * 1024)

struct bytes {
	uint8_t b[KEEP_MAX];
	size_t len;
};

/* The session's side of the transport: what fived would do with its events. */
struct server {
	struct transport *t;
	bool opened, ended, finished, aborted;
	bool refuse, gone; /* the session ends at the first plaintext; it has */
	char identity[AUTH_IDENTITY_MAX + 1];
	struct bytes plain; /* the client's plaintext, as fived got it */
	uint8_t wire[WIRE_MAX];
	size_t wire_len; /* raw bytes for the client, not yet handed over */
};

struct client {
	SSL *ssl;
	BIO *in, *out;
	bool done, dead;
	bool closed;            /* fived's close_notify came */
	struct bytes sent, got; /* plaintext: written, and read from fived */
};

/* How the client's raw bytes reach fived. */
struct wire {
	size_t piece;      /* 0: whole */
	size_t pieces_fed; /* input calls so far, bounded by PIECES_CALLS_MAX */
	bool half;         /* the next flight is cut in half */
	long flip;         /* the bit to flip in the next flight, or -1 */
	bool tampered;     /* anything flipped, cut or sent raw */
	bool client_end;   /* the client's close_notify went out */
};

static struct config *cfg;
static struct site site;
static SSL_CTX *client_ctx;
static uint8_t big[BIG_SIZE];

static void
keep(struct bytes *k, const uint8_t *p, size_t len)
{
	size_t n = len < sizeof(k->b) - k->len ? len : sizeof(k->b) - k->len;

	memcpy(k->b + k->len, p, n);
	k->len += n;
}

/* --- the session's events ---------------------------------------------------- */

static int
ev_opened(void *owner, const uint8_t *binding, size_t binding_len, struct caller *caller,
          void *extra)
{
	struct server *s = owner;

	if (binding_len == 0 || binding_len > TRANSPORT_BINDING_MAX || binding == NULL)
		abort();
	s->opened = true;
	if (caller != NULL) {
		if (caller->method != AUTH_EXTERNAL)
			abort();
		memcpy(s->identity, caller->identity, sizeof(s->identity));
	}
	caller_free(caller);
	json_decref(extra);
	return 0;
}

static int
ev_plaintext(void *owner, const uint8_t *pt, size_t len)
{
	struct server *s = owner;

	if (!s->opened || s->ended || s->gone)
		abort();
	keep(&s->plain, pt, len);
	if (s->refuse) {
		s->gone = true;
		return -1;
	}
	return 0;
}

static void
ev_end(void *owner)
{
	((struct server *)owner)->ended = true;
}

static int
ev_write(void *owner, struct chunk *c, size_t len)
{
	struct server *s = owner;
	size_t n = len < sizeof(s->wire) - s->wire_len ? len : sizeof(s->wire) - s->wire_len;

	memcpy(s->wire + s->wire_len, c->data, n);
	s->wire_len += n;
	chunk_free(c);
	return 0;
}

static size_t
ev_queued(void *owner)
{
	return ((struct server *)owner)->wire_len;
}

static void
ev_finish(void *owner, const char *reason)
{
	if (reason == NULL)
		abort();
	((struct server *)owner)->finished = true;
}

static void
ev_abort(void *owner, const char *reason)
{
	if (reason == NULL)
		abort();
	((struct server *)owner)->aborted = true;
}

static const struct transport_events events = {
        .opened = ev_opened,
        .plaintext = ev_plaintext,
        .end = ev_end,
        .write = ev_write,
        .queued = ev_queued,
        .finish = ev_finish,
        .abort = ev_abort,
};

/* Whether fived still takes the client's bytes. */
static bool
server_live(const struct server *s)
{
	return !s->aborted && !s->finished;
}

/* --- moving bytes -------------------------------------------------------------- */

static void
to_server(struct server *s, struct wire *w, uint8_t *p, size_t len)
{
	size_t piece;

	if (w->flip >= 0 && (size_t)(w->flip / 8) < len) {
		p[w->flip / 8] ^= (uint8_t)(1u << (w->flip % 8));
		w->tampered = true;
	}
	w->flip = -1;
	if (w->half && len > 0) {
		len /= 2;
		w->tampered = true;
		w->half = false;
	}
	for (; len > 0 && server_live(s); p += piece, len -= piece) {
		if (w->pieces_fed++ == PIECES_CALLS_MAX)
			w->piece = 0;
		piece = w->piece == 0 || w->piece > len ? len : w->piece;
		if (s->t->ops->input(s->t, p, piece) != 0)
			s->aborted = true;
	}
}

/* What the client wrote to its BIO goes to fived; returns whether there was any. */
static bool
client_flight(struct client *c, struct server *s, struct wire *w)
{
	static uint8_t buf[WIRE_MAX];
	size_t n = BIO_ctrl_pending(c->out);

	if (n == 0)
		return false;
	if (n > sizeof(buf))
		n = sizeof(buf);
	if (BIO_read(c->out, buf, (int)n) != (int)n)
		abort();
	to_server(s, w, buf, n);
	return true;
}

/* What fived wrote goes to the client; returns whether there was any. */
static bool
server_flight(struct server *s, struct client *c)
{
	size_t n = s->wire_len;

	if (n == 0)
		return false;
	if (BIO_write(c->in, s->wire, (int)n) != (int)n)
		abort();
	s->wire_len = 0;
	return true;
}

/* The client reads what it can: the handshake, fived's plaintext, its close_notify. */
static void
client_read(struct client *c)
{
	uint8_t buf[READ_SIZE];
	size_t n;
	int r;

	if (c->dead)
		return;
	if (!c->done) {
		r = SSL_do_handshake(c->ssl);
		if (r == 1)
			c->done = true;
		else if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
			c->dead = true;
	}
	while (c->done && !c->dead && !c->closed && SSL_read_ex(c->ssl, buf, sizeof(buf), &n) == 1)
		keep(&c->got, buf, n);
	if (c->done && !c->dead && !c->closed) {
		r = SSL_get_error(c->ssl, 0);
		c->closed = r == SSL_ERROR_ZERO_RETURN;
		c->dead = r != SSL_ERROR_WANT_READ && r != SSL_ERROR_ZERO_RETURN;
	}
	ERR_clear_error();
}

/* Moves bytes both ways until neither side has more to say. */
static void
settle(struct client *c, struct server *s, struct wire *w)
{
	int i;
	bool moved = true;

	for (i = 0; i < ROUNDS_MAX && moved; i++) {
		client_read(c);
		moved = client_flight(c, s, w);
		moved |= server_flight(s, c);
	}
}

/* --- the client's and fived's operations --------------------------------------- */

static void
client_write(struct client *c, const uint8_t *p, size_t len)
{
	size_t n;

	if (!c->done || c->dead)
		return;
	if (SSL_write_ex(c->ssl, p, len, &n) == 1)
		keep(&c->sent, p, n);
	else
		c->dead = true;
	ERR_clear_error();
}

static void
server_out(struct server *s, const uint8_t *p, size_t len, struct bytes *out)
{
	if (s->aborted)
		return;
	if (s->t->ops->output(s->t, p, len) == 0)
		keep(out, p, len);
}

static void
client_update(struct client *c, bool ask)
{
	if (!c->done || c->dead)
		return;
	if (SSL_key_update(c->ssl, ask ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED) !=
	            1 ||
	    SSL_do_handshake(c->ssl) != 1)
		c->dead = true;
	ERR_clear_error();
}

static void
client_close(struct client *c, struct wire *w)
{
	if (!c->done || c->dead || w->client_end)
		return;
	SSL_shutdown(c->ssl);
	w->client_end = true;
	ERR_clear_error();
}

/* --- the run ---------------------------------------------------------------------- */

static int
rand_bytes(unsigned char *buf, int num)
{
	fuzz_random_buf(buf, (size_t)num);
	return 1;
}

static int
rand_status(void)
{
	return 1;
}

static const RAND_METHOD fixed_rand = {
        .bytes = rand_bytes,
        .pseudorand = rand_bytes,
        .status = rand_status,
};

static SSL_CTX *
make_client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	BIO *cb = BIO_new_mem_buf(FUZZ_TLS_CLIENT_CERT, -1);
	BIO *kb = BIO_new_mem_buf(FUZZ_TLS_CLIENT_KEY, -1);
	X509 *cert = cb != NULL ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	EVP_PKEY *key = kb != NULL ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;

	if (ctx == NULL || cert == NULL || key == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1)
		abort();
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	X509_free(cert);
	EVP_PKEY_free(key);
	BIO_free(cb);
	BIO_free(kb);
	return ctx;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char clients[] = FUZZ_TLS_CLIENT_FP " alice\n";
	struct tls_pem pem = {
	        .cert = FUZZ_TLS_SERVER_CERT,
	        .cert_len = sizeof(FUZZ_TLS_SERVER_CERT) - 1,
	        .key = FUZZ_TLS_SERVER_KEY,
	        .key_len = sizeof(FUZZ_TLS_SERVER_KEY) - 1,
	        .cert_name = "fuzz certificate",
	        .key_name = "fuzz key",
	};
	struct tls_clients listed;
	char err[256];
	size_t i;

	(void)argc;
	(void)argv;
	if (randombytes_set_implementation(&fuzz_random_impl) != 0 || sodium_init() < 0 ||
	    RAND_set_rand_method(&fixed_rand) != 1 || (cfg = config_builtin()) == NULL)
		abort();
	budget_init(&site.budget, RELAY_MEMORY, NULL, NULL);
	site.cfg = cfg;
	if ((site.tls = tls_server_new(cfg, &pem)) == NULL ||
	    tlsclients_parse("tls_clients", clients, sizeof(clients) - 1, false, &listed, err,
	                     sizeof(err)) != 0)
		abort();
	tls_server_commit(site.tls, &listed);
	client_ctx = make_client_ctx();
	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	return 0;
}

static void
client_start(struct client *c, uint8_t mode)
{
	static const unsigned char alpn[] = "\x05" TLSHELLO_ALPN_FIVED;

	memset(c, 0, offsetof(struct client, sent));
	c->sent.len = c->got.len = 0;
	if ((c->ssl = SSL_new(client_ctx)) == NULL || (c->in = BIO_new(BIO_s_mem())) == NULL ||
	    (c->out = BIO_new(BIO_s_mem())) == NULL)
		abort();
	BIO_set_mem_eof_return(c->in, -1);
	SSL_set_bio(c->ssl, c->in, c->out);
	SSL_set_connect_state(c->ssl);
	if ((mode & MODE_ALPN) != 0 && SSL_set_alpn_protos(c->ssl, alpn, sizeof(alpn) - 1) != 0)
		abort();
	if ((mode & MODE_CERT) == 0)
		SSL_certs_clear(c->ssl);
}

/* The checks of an untampered run (see the top). */
static void
check(const struct client *c, const struct server *s, const struct wire *w, const struct bytes *out,
      uint8_t mode)
{
	const unsigned char *alpn;
	unsigned alpn_len;

	if (w->tampered || s->refuse || s->aborted || s->finished || c->dead || !c->done)
		return;
	if (!s->opened || s->plain.len != c->sent.len ||
	    memcmp(s->plain.b, c->sent.b, c->sent.len) != 0)
		abort();
	if (c->got.len != out->len || memcmp(c->got.b, out->b, out->len) != 0)
		abort();
	if (w->client_end != s->ended || (s->identity[0] != '\0') != ((mode & MODE_CERT) != 0))
		abort();
	/* fived answers its own ALPN id, and only that. */
	SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
	if ((alpn_len != 0) != ((mode & MODE_ALPN) != 0) ||
	    (alpn_len != 0 && (alpn_len != TLSHELLO_ALPN_FIVED_LEN ||
	                       memcmp(alpn, TLSHELLO_ALPN_FIVED, alpn_len) != 0)))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct server s;
	static struct client c;
	static struct bytes out;
	struct transport_link link = {
	        .site = &site,
	        .cfg = cfg,
	        .id = "fuzz",
	        .ev = &events,
	};
	struct wire w = {.flip = -1};
	const uint8_t *p = data + 1, *end = data + size;
	bool started = false;
	uint8_t op, arg;
	size_t n;
	unsigned bigs = 0;

	if (size < 1)
		return 0;
	fuzz_random_reset();
	memset(&s, 0, offsetof(struct server, plain));
	s.plain.len = s.wire_len = out.len = 0;
	s.refuse = (data[0] & MODE_REFUSE) != 0;
	link.owner = &s;
	if ((s.t = tls_new(&link)) == NULL)
		abort();
	client_start(&c, data[0]);
	while (p < end) {
		op = *p & OP_KIND;
		arg = *p++ >> OP_SHIFT;
		n = (size_t)arg + 1 < (size_t)(end - p) ? (size_t)arg + 1 : (size_t)(end - p);
		if (op == OP_FLIP) {
			w.flip = arg;
			continue;
		}
		if (op == OP_PIECES) {
			if (arg == PIECES_HALF)
				w.half = true;
			else
				w.piece = arg == PIECES_WHOLE ? 0 : (size_t)arg + 1;
			continue;
		}
		if (!started) {
			settle(&c, &s, &w);
			started = true;
		}
		switch (op) {
		case OP_WRITE:
			if (arg == ARG_BIG && bigs++ < BIGS_MAX) {
				client_write(&c, big, sizeof(big));
				break;
			}
			client_write(&c, p, n);
			p += n;
			break;
		case OP_CLOSE:
			client_close(&c, &w);
			break;
		case OP_RAW:
			w.tampered = true;
			if (server_live(&s) && s.t->ops->input(s.t, p, n) != 0)
				s.aborted = true;
			p += n;
			break;
		case OP_OUT:
			if (arg == ARG_BIG && bigs++ < BIGS_MAX) {
				server_out(&s, big, sizeof(big), &out);
				break;
			}
			server_out(&s, p, n, &out);
			p += n;
			break;
		case OP_FINISH:
			if (!s.aborted && s.t->ops->finish(s.t) != 0)
				s.aborted = true;
			break;
		case OP_UPDATE:
			client_update(&c, (arg & 1) != 0);
			break;
		}
		settle(&c, &s, &w);
	}
	settle(&c, &s, &w);
	check(&c, &s, &w, &out, data[0]);
	/* The client's stream ends: properly only after its close_notify. */
	if (!s.aborted && s.t->ops->eof(s.t) == 0 && !w.client_end && s.opened && !s.finished &&
	    !w.tampered && !s.refuse)
		abort();
	s.t->ops->free(s.t);
	SSL_free(c.ssl);
	ERR_clear_error();
	/* Every chunk the transport made was handed over and freed; no handshake left counted. */
	if (site.budget.used != 0 || site.gov.pending != 0)
		abort();
	return 0;
}
