#include "server/transport/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/io.h"
#include "common/log.h"
#include "common/util.h"
#include "legacy/tlshello.h"
#include "server/conf/tlsfiles.h"
#include "server/policy/chunk.h"
#include "server/policy/governor.h"
#include "server/policy/policy.h"
#include "server/policy/site.h"
#include "server/transport/transport.h"

#define REASON_MAX    128
#define BINDING_LABEL "EXPORTER-Channel-Binding" /* RFC 9266 */
#define BINDING_LEN   32
#define READ_PIECE    16384                    /* the plaintext of one record */
#define OUT_KEEP      (TRANSPORT_SLACK + 4096) /* what the output BIO may keep: a record */
#define SUBJECT_BUF   (TLSCLIENTS_SUBJECT_MAX + 2)

/*
 * A client that keeps sending (KeyUpdate requests, say, are answered) but
 * reads nothing would grow its write queue without end.  Above the
 * relay's high water mark (256 KiB) and a read, so that a client slow to
 * read a download is not taken for one.
 */
#define CLIENT_QUEUE_MAX (1024 * 1024)

struct tls_server {
	SSL_CTX *ctx;
	/* As configured: a reload may not change them, the context is built at start. */
	char certificate[CONFIG_PATH_MAX + 1];
	char key[CONFIG_PATH_MAX + 1];
	char client_ca[CONFIG_PATH_MAX + 1];
	struct tls_clients clients;
};

/* A session's TLS.  Made by tls_new; owned by the session, freed by its free op. */
struct tls {
	struct transport base; /* first: the transport ops see a struct transport */
	SSL *ssl;
	BIO *in;         /* the client's bytes, for OpenSSL */
	BIO *out;        /* OpenSSL's bytes, for the client */
	bool open;       /* the handshake is done */
	bool failed;     /* the handshake failed: the session is ending, input is ignored */
	bool final_seen; /* the client's close_notify */
	bool shut;       /* ours is sent */
	bool pending;    /* counted in the governor's handshakes in progress */
	bool ended;      /* the session ended as this reported up: nothing more is read */
	uint64_t sent;   /* plaintext written so far, for the size of records */
	/* Why the session ends, for its audit record; lives until the transport is freed. */
	char why[REASON_MAX];
};

_Static_assert(BINDING_LEN <= TRANSPORT_BINDING_MAX, "binding too long");

static const struct transport_ops tls_ops;

/* --- the context, built at start ------------------------------------------ */

/*
 * Any client certificate is taken: a fingerprint line needs no chain, and
 * an unknown certificate is no identity rather than a failed handshake.
 * The chain's verdict stays in SSL_get_verify_result, for subject lines.
 */
static int
keep_verdict(int ok, X509_STORE_CTX *store)
{
	return 1;
}

/* An encrypted key would ask for a passphrase on the terminal: refuse instead. */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	return -1;
}

/* A memory BIO over text[0..len), read-only. */
static BIO *
pem_bio(const char *text, size_t len)
{
	return len <= INT_MAX ? BIO_new_mem_buf(text, (int)len) : NULL;
}

/* Every certificate of a PEM text, in order; NULL when there is none or one is damaged. */
static STACK_OF(X509) * read_certs(const char *text, size_t len)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	BIO *b = pem_bio(text, len);
	X509 *x;

	while (certs != NULL && b != NULL && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (sk_X509_push(certs, x) == 0)
			X509_free(x);
	/* The loop ends on the end of the text, which OpenSSL reports as an error. */
	if (ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE)
		ERR_clear_error();
	BIO_free(b);
	if (certs != NULL && (sk_X509_num(certs) == 0 || ERR_peek_error() != 0)) {
		sk_X509_pop_free(certs, X509_free);
		certs = NULL;
	}
	return certs;
}

/* The certificate and the rest of its chain. */
static int
use_chain(SSL_CTX *ctx, const struct tls_pem *pem)
{
	STACK_OF(X509) *certs = read_certs(pem->cert, pem->cert_len);
	int i, r = -1;

	if (certs == NULL || SSL_CTX_use_certificate(ctx, sk_X509_value(certs, 0)) != 1)
		goto out;
	for (i = 1; i < sk_X509_num(certs); i++)
		if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(certs, i)) != 1)
			goto out;
	r = 0;
out:
	sk_X509_pop_free(certs, X509_free);
	return r;
}

static int
use_key(SSL_CTX *ctx, const struct tls_pem *pem)
{
	BIO *b = pem_bio(pem->key, pem->key_len);
	EVP_PKEY *key = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
	int r = -1;

	if (key == NULL)
		tls_log_openssl("TLS key", pem->key_name);
	else if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1)
		tls_log_openssl("TLS key does not go with the certificate:", pem->key_name);
	else
		r = 0;
	EVP_PKEY_free(key);
	BIO_free(b);
	return r;
}

/* Trusts the CA certificates for client chains, and names them in the certificate request. */
static int
use_client_ca(SSL_CTX *ctx, const struct tls_pem *pem)
{
	STACK_OF(X509) *certs = read_certs(pem->ca, pem->ca_len);
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	int i, r = -1;

	if (certs == NULL)
		return -1;
	for (i = 0; i < sk_X509_num(certs); i++)
		if (X509_STORE_add_cert(store, sk_X509_value(certs, i)) != 1 ||
		    SSL_CTX_add_client_CA(ctx, sk_X509_value(certs, i)) != 1)
			goto out;
	r = 0;
out:
	sk_X509_pop_free(certs, X509_free);
	return r;
}

/*
 * A client that offers fived's ALPN id is answered with it, so that it
 * knows it reached fived; any other list is left unanswered (RFC 7301's
 * "no_application_protocol" would end the handshake of a client that
 * offers ids fived has never known, which it always served).
 */
static int
select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
            unsigned int inlen, void *arg)
{
	static const unsigned char ours[] = "\x05" TLSHELLO_ALPN_FIVED;
	unsigned char *chosen;

	if (SSL_select_next_proto(&chosen, outlen, ours, sizeof(ours) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = chosen;
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *
make_ctx(const struct config *cfg, const struct tls_pem *pem)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
		tls_log_openssl("cannot set up", "TLS");
		goto fail;
	}
	if (use_chain(ctx, pem) != 0) {
		tls_log_openssl("TLS certificate", pem->cert_name);
		goto fail;
	}
	if (use_key(ctx, pem) != 0)
		goto fail;
	/* No resumption: every session shows its certificate and does a full handshake. */
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* Idle sessions give their record buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, keep_verdict);
	SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
	if (pem->ca != NULL && use_client_ca(ctx, pem) != 0) {
		tls_log_openssl("tls_client_ca", cfg->tls_client_ca);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls_server *
tls_server_new(const struct config *cfg, const struct tls_pem *pem)
{
	struct tls_server *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		log_error("out of memory");
		return NULL;
	}
	str_copy(t->certificate, cfg->tls_certificate, sizeof(t->certificate));
	str_copy(t->key, cfg->tls_key, sizeof(t->key));
	str_copy(t->client_ca, cfg->tls_client_ca, sizeof(t->client_ca));
	if ((t->ctx = make_ctx(cfg, pem)) == NULL) {
		tls_server_free(t);
		return NULL;
	}
	return t;
}

void
tls_server_free(struct tls_server *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	tlsclients_free(&t->clients);
	free(t);
}

int
tls_server_prepare(const struct tls_server *t, const struct config *cfg, const char *clients,
                   size_t clients_len, struct tls_clients *next, char *err, size_t err_size)
{
	memset(next, 0, sizeof(*next));
	if (strcmp(t->certificate, cfg->tls_certificate) != 0 ||
	    strcmp(t->key, cfg->tls_key) != 0 || strcmp(t->client_ca, cfg->tls_client_ca) != 0) {
		snprintf(err, err_size,
		         "tls_certificate, tls_key and tls_client_ca are read at "
		         "start: restart fived to change them");
		return -1;
	}
	if (cfg->tls_clients[0] == '\0')
		return 0;
	return tlsclients_parse(cfg->tls_clients, clients, clients_len,
	                        cfg->tls_client_ca[0] != '\0', next, err, err_size);
}

void
tls_server_commit(struct tls_server *t, struct tls_clients *next)
{
	tlsclients_free(&t->clients);
	t->clients = *next;
	memset(next, 0, sizeof(*next));
}

/* --- a session's TLS -------------------------------------------------------- */

static struct tls *
tls_of(struct transport *tr)
{
	return (struct tls *)tr;
}

static const struct transport_events *
up(const struct tls *t)
{
	return t->base.link.ev;
}

/*
 * A memory BIO keeps the largest size it ever held: once emptied, one
 * grown past a record is replaced, so that a stream idle or held after a
 * burst keeps no more than that (what it had is in the chunks, charged).
 */
static void
trim_out(struct tls *t)
{
	BUF_MEM *mem;
	BIO *fresh;

	if (BIO_get_mem_ptr(t->out, &mem) != 1 || mem->max <= OUT_KEEP ||
	    (fresh = BIO_new(BIO_s_mem())) == NULL)
		return;
	SSL_set0_wbio(t->ssl, fresh);
	t->out = fresh;
}

/* What OpenSSL has for the client, queued. */
static int
flush_out(struct tls *t)
{
	size_t n = BIO_ctrl_pending(t->out);
	struct chunk *c;

	if (n == 0)
		return 0;
	if ((c = chunk_new(&t->base.link.site->budget, n)) == NULL)
		return -1;
	if (BIO_read(t->out, c->data, (int)n) != (int)n) {
		chunk_free(c);
		return -1;
	}
	trim_out(t);
	return up(t)->write(t->base.link.owner, c, n);
}

/* Why OpenSSL failed, into t->why as "what: reason". */
static const char *
failure(struct tls *t, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

	snprintf(t->why, sizeof(t->why), "%s: %s", what,
	         reason != NULL ? reason : "the connection broke the protocol");
	ERR_clear_error();
	return t->why;
}

/* The RFC 2253 subject of cert into out (size SUBJECT_BUF).  Returns 0, or -1 if too long. */
static int
subject_text(X509 *cert, char *out, size_t size)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n = -1;

	if (b != NULL &&
	    X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0)
		n = BIO_read(b, out, (int)size - 1);
	BIO_free(b);
	if (n <= 0 || n > TLSCLIENTS_SUBJECT_MAX)
		return -1;
	out[n] = '\0';
	return 0;
}

/*
 * A client certificate listed in tls_clients authenticates the client:
 * by its public key, or by its subject when its chain verified against
 * tls_client_ca.  Any other certificate is no identity.
 */
static struct caller *
known_client(struct tls *t, void **extra)
{
	const struct tls_server *ts = t->base.link.site->tls;
	X509 *cert = SSL_get0_peer_certificate(t->ssl);
	uint8_t fp[TLSCLIENTS_FP_LEN];
	char fp_text[TLSCLIENTS_FP_TEXT_MAX], subject[SUBJECT_BUF];
	const char *identity;
	struct caller *c;

	if (cert == NULL || tlsclients_fingerprint(cert, fp) != 0)
		return NULL;
	tlsclients_fp_text(fp, fp_text);
	identity = tlsclients_by_fingerprint(&ts->clients, fp);
	if (identity == NULL && ts->client_ca[0] != '\0' &&
	    SSL_get_verify_result(t->ssl) == X509_V_OK &&
	    subject_text(cert, subject, sizeof(subject)) == 0)
		identity = tlsclients_by_subject(&ts->clients, subject);
	if (identity == NULL) {
		log_debug("session %s: tls: client certificate %s is not in tls_clients",
		          t->base.link.id, fp_text);
		return NULL;
	}
	if ((c = caller_new(identity, AUTH_EXTERNAL, t->base.link.site->priv, t->base.link.cfg)) !=
	    NULL)
		*extra = json_pack("{s:s}", "certificate", fp_text);
	return c;
}

static void
handshake_over(struct tls *t)
{
	if (t->pending)
		t->base.link.site->gov.pending--;
	t->pending = false;
}

/* The handshake is done: the session learns the channel binding and the client's identity. */
static int
opened(struct tls *t)
{
	uint8_t binding[BINDING_LEN];
	struct caller *caller;
	void *extra = NULL;

	handshake_over(t);
	if (SSL_export_keying_material(t->ssl, binding, BINDING_LEN, BINDING_LABEL,
	                               strlen(BINDING_LABEL), NULL, 0, 0) != 1)
		return -1;
	t->open = true;
	t->base.link.site->gov.c.handshakes++;
	caller = known_client(t, &extra);
	if (up(t)->opened(t->base.link.owner, binding, sizeof(binding), caller, extra) != 0)
		t->ended = true;
	return 0;
}

/*
 * Moves the handshake on with what came in.  A failed handshake ends the
 * session after OpenSSL's alert, with the reason in the audit record, and
 * nothing of the client's reaches anything.  Returns 0, or -1 when the
 * session must end.
 */
static int
handshake(struct tls *t)
{
	struct governor *g = &t->base.link.site->gov;
	uint64_t t0 = governor_thread_ns();
	int r = SSL_do_handshake(t->ssl);
	int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);

	governor_charge(g, governor_thread_ns() - t0);
	if (r == 1)
		return flush_out(t) == 0 && opened(t) == 0 ? 0 : -1;
	if (e == SSL_ERROR_WANT_READ)
		return flush_out(t);
	g->c.failed++;
	handshake_over(t);
	t->failed = true;
	failure(t, "tls handshake failed");
	log_debug("session %s: %s", t->base.link.id, t->why);
	if (flush_out(t) != 0)
		return -1;
	up(t)->finish(t->base.link.owner, t->why);
	return 0;
}

/*
 * Decrypts what the client sent and hands it on.  The session may end
 * while it takes a piece: then nothing more is read.  Returns 0, or -1
 * when the session must end.
 */
static int
take_plaintext(struct tls *t)
{
	uint8_t pt[READ_PIECE];
	size_t n, written = 0;
	int e = SSL_ERROR_WANT_READ;

	while (!t->ended) {
		if (SSL_read_ex(t->ssl, pt, sizeof(pt), &n) != 1) {
			e = SSL_get_error(t->ssl, 0);
			break;
		}
		written = n > written ? n : written;
		if (up(t)->plaintext(t->base.link.owner, pt, n) != 0)
			t->ended = true;
	}
	/* Only what was written: a client sending a byte at a time must not cost 16 KiB each. */
	OPENSSL_cleanse(pt, written);
	if (t->ended)
		return 0;
	if (e == SSL_ERROR_ZERO_RETURN) {
		/* close_notify: the client's direction ended properly. */
		t->final_seen = true;
		ERR_clear_error();
		up(t)->end(t->base.link.owner);
		return 0;
	}
	if (e != SSL_ERROR_WANT_READ) {
		log_debug("session %s: %s", t->base.link.id, failure(t, "tls"));
		up(t)->abort(t->base.link.owner, t->why);
		return -1;
	}
	/* Answers OpenSSL owes the client (to a KeyUpdate, say). */
	return flush_out(t);
}

static int
tls_input(struct transport *tr, const uint8_t *raw, size_t len)
{
	struct tls *t = tls_of(tr);

	if (t->failed || t->final_seen || t->ended)
		return 0;
	if (up(t)->queued(t->base.link.owner) > CLIENT_QUEUE_MAX)
		return -1;
	ERR_clear_error();
	if (len > INT_MAX || BIO_write(t->in, raw, (int)len) != (int)len)
		return -1;
	if (!t->open && handshake(t) != 0)
		return -1;
	return t->open && !t->ended ? take_plaintext(t) : 0;
}

static int
tls_eof(struct transport *tr)
{
	struct tls *t = tls_of(tr);

	/* After a failed handshake the session ends for that reason, not for this. */
	return t->failed || t->final_seen ? 0 : -1;
}

static int
tls_output(struct transport *tr, const uint8_t *pt, size_t len)
{
	struct tls *t = tls_of(tr);
	size_t n, piece;

	if (!t->open || t->shut)
		return -1;
	ERR_clear_error();
	/* Each write is one record or more: small ones first (transport.h). */
	for (; len > 0; pt += piece, len -= piece, t->sent += piece) {
		piece = transport_record_limit(t->sent, len);
		piece = piece < len ? piece : len;
		if (SSL_write_ex(t->ssl, pt, piece, &n) != 1 || n != piece) {
			ERR_clear_error();
			return -1;
		}
	}
	return flush_out(t);
}

static int
tls_finish(struct transport *tr)
{
	struct tls *t = tls_of(tr);

	if (!t->open || t->shut)
		return 0;
	t->shut = true;
	ERR_clear_error();
	/* Sends close_notify; the client's may come later or not at all. */
	SSL_shutdown(t->ssl);
	ERR_clear_error();
	return flush_out(t);
}

static void
tls_free(struct transport *tr)
{
	struct tls *t = tls_of(tr);

	handshake_over(t);
	SSL_free(t->ssl);
	sodium_memzero(t, sizeof(*t));
	free(t);
}

static const struct transport_ops tls_ops = {
        .name = "tls",
        .input = tls_input,
        .eof = tls_eof,
        .output = tls_output,
        .finish = tls_finish,
        .free = tls_free,
};

bool
tls_admit(struct site *site, const struct config *cfg, const uint8_t *source_key)
{
	struct governor *g = &site->gov;

	g->c.initiations++;
	if (governor_admit(g, cfg, source_key, false, uv_now(site->loop)))
		return true;
	g->c.dropped_rate++;
	return false;
}

struct transport *
tls_new(const struct transport_link *link)
{
	struct tls *t;
	BIO *in = NULL, *out = NULL;

	if (link->site->tls == NULL || (t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if ((t->ssl = SSL_new(link->site->tls->ctx)) == NULL ||
	    (in = BIO_new(BIO_s_mem())) == NULL || (out = BIO_new(BIO_s_mem())) == NULL) {
		BIO_free(in);
		SSL_free(t->ssl);
		free(t);
		ERR_clear_error();
		return NULL;
	}
	t->base.ops = &tls_ops;
	t->base.link = *link;
	/* An empty input means "more to come", not end of stream. */
	BIO_set_mem_eof_return(in, -1);
	SSL_set_bio(t->ssl, in, out);
	SSL_set_accept_state(t->ssl);
	t->in = in;
	t->out = out;
	t->pending = true;
	link->site->gov.pending++;
	return &t->base;
}
