/*
 * TLS's files, on the side that may read them: which certificate and key
 * fived uses, the self-signed pair made when none is configured, and the
 * check that a key file is private.  The worker builds its context from
 * the texts (tls.h), which it asks for by these paths.
 */
#ifndef FIVE_TLSFILES_H
#define FIVE_TLSFILES_H

#include <stddef.h>

#include "server/conf/config.h"

/* The files made when no certificate is configured: key_file, less ".key", and these. */
#define TLS_SELF_STRIP ".key"
#define TLS_SELF_CERT  "-tls.crt"
#define TLS_SELF_KEY   "-tls.key"

/* Logs OpenSSL's last error as "what path: reason", and clears its queue. */
void tls_log_openssl(const char *what, const char *path);

/*
 * The certificate (chain) and key files for cfg: tls_certificate and
 * tls_key, or the self-signed pair named after key_path, the sealed key
 * file.  Returns 0, or -1 when a path is too long.
 */
int tls_files_paths(const struct config *cfg, const char *key_path, char *cert, size_t cert_size,
                    char *key, size_t key_size);

/*
 * Makes the self-signed pair (ECDSA P-256) when cfg configures no
 * certificate and the pair does not exist yet; a key without its
 * certificate (a start that stopped halfway) is kept.  Returns 0, or -1
 * after logging why.
 */
int tls_files_prepare(const struct config *cfg, const char *key_path);

/*
 * Whether a file holding a secret (what names it in why) is fit to use: a
 * regular file of at most 1 MiB that neither others nor its group may
 * change, others may not read, owned by us or root.  tls_files_check_key
 * is that for a TLS key.  Returns 0, or -1 with why filled.
 */
int secret_file_check(const char *what, const char *path, char *why, size_t why_size);
int tls_files_check_key(const char *path, char *why, size_t why_size);

#endif
