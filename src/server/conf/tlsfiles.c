#include "server/conf/tlsfiles.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
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

#define KEY_FILE_MAX   (1024 * 1024) /* a PEM key read into memory */
#define ERROR_TEXT_MAX 256
#define SELF_CURVE     "P-256"
#define SELF_VALID_S   (20L * 365 * 24 * 3600) /* long: nothing renews it */
#define SELF_SERIAL    127                     /* random bits, positive */
#define SELF_CN_MAX    64                      /* X.520's bound on a common name */
#define SELF_KEY_MODE  0600
#define SELF_CERT_MODE 0644

void
tls_log_openssl(const char *what, const char *path)
{
	char text[ERROR_TEXT_MAX];

	ERR_error_string_n(ERR_peek_last_error(), text, sizeof(text));
	log_error("%s %s: %s", what, path, text);
	ERR_clear_error();
}

int
secret_file_check(const char *what, const char *path, char *why, size_t why_size)
{
	char err[KEYFILE_ERR_MAX];
	struct stat st;

	if (stat(path, &st) != 0) {
		snprintf(why, why_size, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > KEY_FILE_MAX) {
		snprintf(why, why_size, "%s %s: not a regular file of at most %d bytes", what, path,
		         KEY_FILE_MAX);
		return -1;
	}
	if (keyfile_permissions(path, &st, S_IRWXO | S_IWGRP, err, sizeof(err)) != 0) {
		snprintf(why, why_size, "%s %s", what, err);
		return -1;
	}
	return 0;
}

int
tls_files_check_key(const char *path, char *why, size_t why_size)
{
	return secret_file_check("TLS key", path, why, why_size);
}

/* An encrypted key would ask for a passphrase on the terminal: refuse instead. */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	return -1;
}

/* Reads a PEM private key that tls_files_check_key accepts. */
static EVP_PKEY *
read_key(const char *path)
{
	char *text = NULL, why[CONFIG_PATH_MAX + 128];
	EVP_PKEY *key = NULL;
	size_t len = 0;
	BIO *b = NULL;
	int e;

	if (tls_files_check_key(path, why, sizeof(why)) != 0) {
		log_error("%s", why);
		return NULL;
	}
	if ((e = io_read_file(path, KEY_FILE_MAX, &text, &len)) != 0) {
		log_error("TLS key %s: %s", path, strerror(-e));
		return NULL;
	}
	if ((b = BIO_new_mem_buf(text, (int)len)) == NULL ||
	    (key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL)) == NULL)
		tls_log_openssl("TLS key", path);
	BIO_free(b);
	OPENSSL_cleanse(text, len);
	free(text);
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
		tls_log_openssl("cannot encode", path);
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
			tls_log_openssl("cannot make a key for", cert_path);
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
		tls_log_openssl("cannot make", cert_path);
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

int
tls_files_paths(const struct config *cfg, const char *key_path, char *cert, size_t cert_size,
                char *key, size_t key_size)
{
	if (cfg->tls_certificate[0] != '\0') {
		str_copy(cert, cfg->tls_certificate, cert_size);
		str_copy(key, cfg->tls_key, key_size);
		return 0;
	}
	if (path_beside(key_path, TLS_SELF_STRIP, TLS_SELF_CERT, cert, cert_size) != 0 ||
	    path_beside(key_path, TLS_SELF_STRIP, TLS_SELF_KEY, key, key_size) != 0)
		return -1;
	return 0;
}

int
tls_files_prepare(const struct config *cfg, const char *key_path)
{
	char cert[PATH_MAX], key[PATH_MAX];

	if (tls_files_paths(cfg, key_path, cert, sizeof(cert), key, sizeof(key)) != 0) {
		log_error("%s: path too long", key_path);
		return -1;
	}
	return cfg->tls_certificate[0] != '\0' ? 0 : self_signed(cert, key);
}
