#include "server/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
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
#include "common/keyfile.h"
#include "common/log.h"
#include "common/util.h"
#include "server/chunk.h"
#include "server/governor.h"
#include "server/policy.h"
#include "server/server.h"
#include "server/session.h"
#include "server/transport.h"

#define KEY_FILE_MAX   (1024 * 1024) /* a PEM key read into memory */
#define REASON_MAX     128
#define ERROR_TEXT_MAX 256
#define SELF_CURVE     "P-256"
#define SELF_VALID_S   (20L * 365 * 24 * 3600) /* long: nothing renews it */
#define SELF_SERIAL    127                     /* random bits, positive */
#define SELF_CN_MAX    64                      /* X.520's bound on a common name */
#define SELF_KEY_MODE  0600
#define SELF_CERT_MODE 0644
#define BINDING_LABEL  "EXPORTER-Channel-Binding" /* RFC 9266 */
#define BINDING_LEN    32
#define READ_PIECE     16384 /* the plaintext of one record */
#define SUBJECT_BUF    (TLSCLIENTS_SUBJECT_MAX + 2)

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

/* A session's TLS.  Owned by the session (transport_state). */
struct tls {
	SSL *ssl;
	BIO *in;         /* the client's bytes, for OpenSSL */
	BIO *out;        /* OpenSSL's bytes, for the client */
	bool open;       /* the handshake is done */
	bool failed;     /* the handshake failed: the session is ending, input is ignored */
	bool final_seen; /* the client's close_notify */
	bool shut;       /* ours is sent */
	bool pending;    /* counted in the governor's handshakes in progress */
	uint64_t sent;   /* plaintext written so far, for the size of records */
	/* Why the session ends, for its audit record; lives until session_close. */
	char why[REASON_MAX];
};

_Static_assert(BINDING_LEN <= sizeof(((struct session *)0)->binding), "binding too long");

static const struct transport_ops tls_ops;

/* --- the context, built at start ------------------------------------------ */

static void
log_openssl(const char *what, const char *path)
{
	char text[ERROR_TEXT_MAX];

	ERR_error_string_n(ERR_peek_last_error(), text, sizeof(text));
	log_error("%s %s: %s", what, path, text);
	ERR_clear_error();
}

/* An encrypted key would ask for a passphrase on the terminal: refuse instead. */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	return -1;
}

/* Reads a PEM private key that neither others nor the group may change, nor others read. */
static EVP_PKEY *
read_key(const char *path)
{
	char err[KEYFILE_ERR_MAX];
	EVP_PKEY *key = NULL;
	char *text = NULL;
	struct stat st;
	size_t len = 0;
	BIO *b = NULL;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		log_error("TLS key %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > KEY_FILE_MAX) {
		log_error("TLS key %s: not a regular file of at most %d bytes", path, KEY_FILE_MAX);
		goto out;
	}
	if (keyfile_permissions(path, &st, S_IRWXO | S_IWGRP, err, sizeof(err)) != 0) {
		log_error("TLS key %s", err);
		goto out;
	}
	len = (size_t)st.st_size;
	if ((text = malloc(len + 1)) == NULL || io_read_all(fd, text, len) != 0) {
		log_error("TLS key %s: cannot read", path);
		goto out;
	}
	if ((b = BIO_new_mem_buf(text, (int)len)) == NULL ||
	    (key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL)) == NULL)
		log_openssl("TLS key", path);
out:
	BIO_free(b);
	if (text != NULL)
		OPENSSL_cleanse(text, len);
	free(text);
	close(fd);
	return key;
}

/*
 * Writes data to a new file beside path, then links it into place, as
 * keyfile.c does: whoever reads path sees the whole file.  Returns 0, 1
 * when path already existed (made by another fived at the same moment),
 * or -1 after logging why.
 */
static int
write_new(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	int fd = -1, r = -1;

	if (snprintf(tmp, sizeof(tmp), "%s.new.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		errno = ENAMETOOLONG;
	else if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)) >=
	                 0 &&
	         io_write_all(fd, data, len) == 0 && fsync(fd) == 0)
		r = link(tmp, path) == 0 ? 0 : errno == EEXIST ? 1 : -1;
	if (r < 0)
		log_error("%s: cannot create: %s", path, strerror(errno));
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	return r;
}

/* A key or a certificate (the other NULL) in PEM, through write_new. */
static int
save_pem(const char *path, EVP_PKEY *key, X509 *cert)
{
	/* Secure memory is cleansed when freed: the key's PEM passes through it. */
	BIO *b = BIO_new(BIO_s_secmem());
	char *data;
	long len;
	int r = -1;

	if (b != NULL &&
	    (key != NULL ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
	                 : PEM_write_bio_X509(b, cert)) == 1 &&
	    (len = BIO_get_mem_data(b, &data)) > 0)
		r = write_new(path, data, (size_t)len,
		              key != NULL ? SELF_KEY_MODE : SELF_CERT_MODE);
	else
		log_openssl("cannot encode", path);
	BIO_free(b);
	return r;
}

/* A certificate for key, signed by itself, CN the host name. */
static X509 *
make_cert(EVP_PKEY *key)
{
	char host[SELF_CN_MAX + 1];
	X509 *x = X509_new();
	BIGNUM *serial = BN_new();
	struct utsname u;
	X509_NAME *name;

	/* uname rather than gethostname, which NSS shims (nss_wrapper) replace. */
	str_copy(host, uname(&u) == 0 && u.nodename[0] != '\0' ? u.nodename : "fived",
	         sizeof(host));
	if (x == NULL || serial == NULL ||
	    BN_rand(serial, SELF_SERIAL, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
	    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL ||
	    X509_set_version(x, X509_VERSION_3) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), SELF_VALID_S) == NULL ||
	    (name = X509_get_subject_name(x)) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)host, -1,
	                               -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 || X509_set_pubkey(x, key) != 1 ||
	    X509_sign(x, key, EVP_sha256()) <= 0) {
		X509_free(x);
		x = NULL;
	}
	BN_free(serial);
	return x;
}

/*
 * The self-signed pair, made when the certificate does not exist yet.  A
 * key without its certificate (a start that stopped halfway) is kept.  Two
 * fived starting at once agree on one key: the first to link it wins.
 */
static int
self_signed(const char *cert_path, const char *key_path)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	struct stat st;
	int r = -1, saved = 1;

	if (stat(cert_path, &st) == 0)
		return 0;
	if (stat(key_path, &st) != 0) {
		if ((key = EVP_EC_gen(SELF_CURVE)) == NULL) {
			log_openssl("cannot make a key for", cert_path);
			goto out;
		}
		if ((saved = save_pem(key_path, key, NULL)) < 0)
			goto out;
		if (saved == 1) {
			EVP_PKEY_free(key);
			key = NULL;
		}
	}
	if (key == NULL && (key = read_key(key_path)) == NULL)
		goto out;
	if ((cert = make_cert(key)) == NULL) {
		log_openssl("cannot make", cert_path);
		goto out;
	}
	if (save_pem(cert_path, NULL, cert) < 0)
		goto out;
	log_info(saved == 0 ? "created a self-signed TLS certificate in %s and its key in %s"
	                    : "created a self-signed TLS certificate in %s for the key in %s",
	         cert_path, key_path);
	r = 0;
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	return r;
}

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

static int
load_client_ca(SSL_CTX *ctx, const char *path)
{
	STACK_OF(X509_NAME) * names;

	if (SSL_CTX_load_verify_locations(ctx, path, NULL) != 1 ||
	    (names = SSL_load_client_CA_file(path)) == NULL) {
		log_openssl("tls_client_ca", path);
		return -1;
	}
	/* Named in the certificate request, so that a client can pick its certificate. */
	SSL_CTX_set_client_CA_list(ctx, names);
	return 0;
}

static SSL_CTX *
make_ctx(const char *cert, const char *key_path, const char *client_ca)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *key = NULL;

	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
		log_openssl("cannot set up", "TLS");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		log_openssl("TLS certificate", cert);
		goto fail;
	}
	if ((key = read_key(key_path)) == NULL)
		goto fail;
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		log_openssl("TLS key does not go with the certificate:", key_path);
		goto fail;
	}
	/* No resumption: every session shows its certificate and does a full handshake. */
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* Idle sessions give their record buffers back. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, keep_verdict);
	if (client_ca[0] != '\0' && load_client_ca(ctx, client_ca) != 0)
		goto fail;
	EVP_PKEY_free(key);
	return ctx;
fail:
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	return NULL;
}

/* The certificate and key files: configured, or the self-signed pair's.  0, or -1 after logging. */
static int
pair_paths(const struct config *cfg, const char *key_path, char cert[PATH_MAX], char key[PATH_MAX])
{
	if (cfg->tls_certificate[0] != '\0') {
		str_copy(cert, cfg->tls_certificate, PATH_MAX);
		str_copy(key, cfg->tls_key, PATH_MAX);
	} else if (path_beside(key_path, TLS_SELF_STRIP, TLS_SELF_CERT, cert, PATH_MAX) != 0 ||
	           path_beside(key_path, TLS_SELF_STRIP, TLS_SELF_KEY, key, PATH_MAX) != 0) {
		log_error("%s: path too long", key_path);
		return -1;
	}
	return 0;
}

/* Reads and parses the tls_clients file cfg names into *out (empty when none). */
static int
read_clients(const struct config *cfg, struct tls_clients *out, char *err, size_t err_size)
{
	struct config_errors errs;
	char *text;
	size_t len;
	int r;

	memset(out, 0, sizeof(*out));
	if (cfg->tls_clients[0] == '\0')
		return 0;
	if (config_read_file(cfg->tls_clients, &text, &len, &errs) != 0) {
		snprintf(err, err_size, "%s", errs.text);
		err[strcspn(err, "\n")] = '\0';
		return -1;
	}
	r = tlsclients_parse(cfg->tls_clients, text, len, cfg->tls_client_ca[0] != '\0', out, err,
	                     err_size);
	free(text);
	return r;
}

int
tls_server_check(const struct config *cfg, const char *key_path)
{
	char cert[PATH_MAX], key[PATH_MAX], err[CONFIG_ERRORS_MAX];
	struct tls_clients clients = {0};
	SSL_CTX *ctx = NULL;
	EVP_PKEY *k = NULL;
	struct stat st;
	int r = -1;

	if (pair_paths(cfg, key_path, cert, key) != 0)
		return -1;
	if (cfg->tls_certificate[0] != '\0' || stat(cert, &st) == 0) {
		if ((ctx = make_ctx(cert, key, cfg->tls_client_ca)) == NULL)
			goto out;
	} else {
		/* self_signed makes the certificate, for the key beside it if there is one. */
		if (stat(key, &st) == 0 && (k = read_key(key)) == NULL)
			goto out;
		log_info("%s does not exist yet: fived will make a self-signed TLS certificate "
		         "there",
		         cert);
		if (cfg->tls_client_ca[0] != '\0' &&
		    ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
		     load_client_ca(ctx, cfg->tls_client_ca) != 0))
			goto out;
	}
	if (read_clients(cfg, &clients, err, sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	r = 0;
out:
	EVP_PKEY_free(k);
	SSL_CTX_free(ctx);
	tlsclients_free(&clients);
	return r;
}

struct tls_server *
tls_server_new(const struct config *cfg, const char *key_path)
{
	struct tls_server *t = calloc(1, sizeof(*t));
	char cert[PATH_MAX], key[PATH_MAX];

	if (t == NULL) {
		log_error("out of memory");
		return NULL;
	}
	str_copy(t->certificate, cfg->tls_certificate, sizeof(t->certificate));
	str_copy(t->key, cfg->tls_key, sizeof(t->key));
	str_copy(t->client_ca, cfg->tls_client_ca, sizeof(t->client_ca));
	if (pair_paths(cfg, key_path, cert, key) != 0 ||
	    (cfg->tls_certificate[0] == '\0' && self_signed(cert, key) != 0))
		goto fail;
	if ((t->ctx = make_ctx(cert, key, cfg->tls_client_ca)) == NULL)
		goto fail;
	return t;
fail:
	tls_server_free(t);
	return NULL;
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
tls_server_prepare(const struct tls_server *t, const struct config *cfg, struct tls_clients *next,
                   char *err, size_t err_size)
{
	memset(next, 0, sizeof(*next));
	if (strcmp(t->certificate, cfg->tls_certificate) != 0 ||
	    strcmp(t->key, cfg->tls_key) != 0 || strcmp(t->client_ca, cfg->tls_client_ca) != 0) {
		snprintf(err, err_size,
		         "tls_certificate, tls_key and tls_client_ca are read at "
		         "start: restart fived to change them");
		return -1;
	}
	return read_clients(cfg, next, err, err_size);
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
tls_of(struct session *s)
{
	return s->transport_state;
}

/* What OpenSSL has for the client, queued; dir as for relay_client_write. */
static int
flush_out(struct session *s, struct tls *t, struct relay_dir *dir)
{
	size_t n = BIO_ctrl_pending(t->out);
	struct chunk *c;

	if (n == 0)
		return 0;
	if ((c = malloc(sizeof(*c) + n)) == NULL)
		return -1;
	if (BIO_read(t->out, c->data, (int)n) != (int)n) {
		free(c);
		return -1;
	}
	return relay_client_write(s, dir, c, n);
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
static void
note_client(struct session *s, struct tls *t)
{
	const struct tls_server *ts = s->srv->tls;
	X509 *cert = SSL_get0_peer_certificate(t->ssl);
	uint8_t fp[TLSCLIENTS_FP_LEN];
	char fp_text[TLSCLIENTS_FP_TEXT_MAX], subject[SUBJECT_BUF];
	const char *identity;
	struct caller *c;

	if (cert == NULL || tlsclients_fingerprint(cert, fp) != 0)
		return;
	tlsclients_fp_text(fp, fp_text);
	identity = tlsclients_by_fingerprint(&ts->clients, fp);
	if (identity == NULL && ts->client_ca[0] != '\0' &&
	    SSL_get_verify_result(t->ssl) == X509_V_OK &&
	    subject_text(cert, subject, sizeof(subject)) == 0)
		identity = tlsclients_by_subject(&ts->clients, subject);
	if (identity == NULL) {
		log_debug("session %s: tls: client certificate %s is not in tls_clients", s->id,
		          fp_text);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return;
	str_copy(c->identity, identity, sizeof(c->identity));
	c->method = AUTH_EXTERNAL;
	policy_load_groups(c);
	s->caller = c;
	session_audit(s, "authenticated",
	              json_pack("{s:s,s:s,s:s}", "identity", c->identity, "method", "external",
	                        "certificate", fp_text));
}

static void
handshake_over(struct session *s, struct tls *t)
{
	if (t->pending)
		s->srv->gov.pending--;
	t->pending = false;
}

/* The handshake is done: the channel binding, the client's identity. */
static int
opened(struct session *s, struct tls *t)
{
	handshake_over(s, t);
	if (SSL_export_keying_material(t->ssl, s->binding, BINDING_LEN, BINDING_LABEL,
	                               strlen(BINDING_LABEL), NULL, 0, 0) != 1)
		return -1;
	s->binding_len = BINDING_LEN;
	s->encrypted = true;
	t->open = true;
	s->srv->gov.c.handshakes++;
	note_client(s, t);
	return 0;
}

/*
 * Moves the handshake on with what came in.  A failed handshake ends the
 * session after OpenSSL's alert, with the reason in the audit record, and
 * nothing of the client's reaches anything.  Returns 0, or -1 when the
 * session must end.
 */
static int
handshake(struct session *s, struct tls *t)
{
	struct governor *g = &s->srv->gov;
	uint64_t t0 = governor_thread_ns();
	int r = SSL_do_handshake(t->ssl);
	int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);

	governor_charge(g, governor_thread_ns() - t0);
	if (r == 1)
		return flush_out(s, t, NULL) == 0 && opened(s, t) == 0 ? 0 : -1;
	if (e == SSL_ERROR_WANT_READ)
		return flush_out(s, t, NULL);
	g->c.failed++;
	handshake_over(s, t);
	t->failed = true;
	failure(t, "tls handshake failed");
	log_debug("session %s: %s", s->id, t->why);
	if (flush_out(s, t, NULL) != 0)
		return -1;
	session_finish(s, t->why);
	return 0;
}

/*
 * Decrypts what the client sent and hands it on.  The session may end
 * while it takes a piece (and t with it): s->state is checked before t is
 * used again.  Returns 0, or -1 when the session must end.
 */
static int
take_plaintext(struct session *s, struct tls *t)
{
	uint8_t pt[READ_PIECE];
	size_t n;
	int e = SSL_ERROR_WANT_READ;

	while (s->state != S_CLOSED) {
		if (SSL_read_ex(t->ssl, pt, sizeof(pt), &n) != 1) {
			e = SSL_get_error(t->ssl, 0);
			break;
		}
		session_client_plaintext(s, pt, n);
	}
	OPENSSL_cleanse(pt, sizeof(pt));
	if (s->state == S_CLOSED)
		return 0;
	if (e == SSL_ERROR_ZERO_RETURN) {
		/* close_notify: the client's direction ended properly. */
		t->final_seen = true;
		ERR_clear_error();
		session_client_end(s);
		return 0;
	}
	if (e != SSL_ERROR_WANT_READ) {
		log_debug("session %s: %s", s->id, failure(t, "tls"));
		session_abort(s, t->why);
		return -1;
	}
	/* Answers OpenSSL owes the client (to a KeyUpdate, say). */
	return flush_out(s, t, NULL);
}

static int
tls_input(struct session *s, const uint8_t *raw, size_t len)
{
	struct tls *t = tls_of(s);

	if (t->failed || t->final_seen)
		return 0;
	if (uv_stream_get_write_queue_size(&s->client.stream) > CLIENT_QUEUE_MAX)
		return -1;
	ERR_clear_error();
	if (len > INT_MAX || BIO_write(t->in, raw, (int)len) != (int)len)
		return -1;
	if (!t->open && handshake(s, t) != 0)
		return -1;
	return t->open && s->state != S_CLOSED ? take_plaintext(s, t) : 0;
}

static int
tls_eof(struct session *s)
{
	struct tls *t = tls_of(s);

	/* After a failed handshake the session ends for that reason, not for this. */
	return t->failed || t->final_seen ? 0 : -1;
}

static int
tls_output(struct session *s, struct relay_dir *dir, const uint8_t *pt, size_t len)
{
	struct tls *t = tls_of(s);
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
	return flush_out(s, t, dir);
}

static int
tls_finish(struct session *s)
{
	struct tls *t = tls_of(s);

	if (!t->open || t->shut)
		return 0;
	t->shut = true;
	ERR_clear_error();
	/* Sends close_notify; the client's may come later or not at all. */
	SSL_shutdown(t->ssl);
	ERR_clear_error();
	return flush_out(s, t, NULL);
}

static void
tls_free(struct session *s)
{
	struct tls *t = tls_of(s);

	handshake_over(s, t);
	SSL_free(t->ssl);
	sodium_memzero(t, sizeof(*t));
	free(t);
	s->transport_state = NULL;
	s->transport = NULL;
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
tls_admit(struct session *s)
{
	struct governor *g = &s->srv->gov;

	g->c.initiations++;
	if (governor_admit(g, s->cfg, s->source_key, false, uv_now(s->srv->loop)))
		return true;
	g->c.dropped_rate++;
	return false;
}

int
tls_attach(struct session *s)
{
	struct tls *t;
	BIO *in = NULL, *out = NULL;

	if (s->srv->tls == NULL || (t = calloc(1, sizeof(*t))) == NULL)
		return -1;
	if ((t->ssl = SSL_new(s->srv->tls->ctx)) == NULL || (in = BIO_new(BIO_s_mem())) == NULL ||
	    (out = BIO_new(BIO_s_mem())) == NULL) {
		BIO_free(in);
		SSL_free(t->ssl);
		free(t);
		ERR_clear_error();
		return -1;
	}
	/* An empty input means "more to come", not end of stream. */
	BIO_set_mem_eof_return(in, -1);
	SSL_set_bio(t->ssl, in, out);
	SSL_set_accept_state(t->ssl);
	t->in = in;
	t->out = out;
	t->pending = true;
	s->srv->gov.pending++;
	s->transport = &tls_ops;
	s->transport_state = t;
	return 0;
}
