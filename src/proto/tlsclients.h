/*
 * TLS client certificates that stand for an identity (the tls_clients
 * file): one line per certificate,
 *
 *	SHA256:<base64 of SHA-256 of the SubjectPublicKeyInfo, no padding> IDENTITY
 *	subject:<the subject, RFC 2253> IDENTITY
 *
 * blank lines, and lines whose first non-blank character is '#'.  The
 * identity is the line's last word; a subject may hold spaces.  A subject
 * line only means something when the certificate's chain was verified
 * (against tls_client_ca): anyone can make a certificate with any subject.
 *
 * Pure code: text in, tables out; no I/O, no globals.  The fingerprint of a
 * certificate is computed here too, so that both ends agree on it.
 */
#ifndef FIVE_TLSCLIENTS_H
#define FIVE_TLSCLIENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "proto/auth.h"

#define TLSCLIENTS_MAX         65536
#define TLSCLIENTS_FILE_MAX    (4 * 1024 * 1024)
#define TLSCLIENTS_LINE_MAX    1024
#define TLSCLIENTS_SUBJECT_MAX 512
#define TLSCLIENTS_FP_LEN      32 /* SHA-256 */
#define TLSCLIENTS_FP_PREFIX   "SHA256:"
#define TLSCLIENTS_SUBJ_PREFIX "subject:"
/* "SHA256:" and 43 characters of unpadded base64, and a NUL. */
#define TLSCLIENTS_FP_TEXT_MAX 51

struct tlsclient_fp {
	uint8_t fp[TLSCLIENTS_FP_LEN];
	char identity[AUTH_IDENTITY_MAX + 1];
	unsigned line;
};

struct tlsclient_subject {
	char subject[TLSCLIENTS_SUBJECT_MAX + 1];
	char identity[AUTH_IDENTITY_MAX + 1];
	unsigned line;
};

struct tls_clients {
	struct tlsclient_fp *fps; /* sorted by fp */
	size_t nfps;
	struct tlsclient_subject *subjects; /* sorted by subject */
	size_t nsubjects;
};

/*
 * Parses the file's text (name for messages); subject lines are an error
 * unless subjects_ok.  A certificate listed twice is an error.  Returns 0,
 * or -1 with err filled ("NAME:LINE: message") and out empty.  Free with
 * tlsclients_free.
 */
int tlsclients_parse(const char *name, const char *text, size_t len, bool subjects_ok,
                     struct tls_clients *out, char *err, size_t err_size);

/* Frees the tables; c is empty afterwards.  Safe on an empty or freed c. */
void tlsclients_free(struct tls_clients *c);

/* The identity of the certificate whose public key hashes to fp, or NULL. */
const char *tlsclients_by_fingerprint(const struct tls_clients *c,
                                      const uint8_t fp[TLSCLIENTS_FP_LEN]);

/* The identity for a certificate with this subject (RFC 2253, exact match), or NULL. */
const char *tlsclients_by_subject(const struct tls_clients *c, const char *subject);

/*
 * A certificate's fingerprint as tls_clients lines (and five's pins of TLS
 * servers) use it: SHA-256 of its SubjectPublicKeyInfo in DER, which stays
 * the same when the certificate is renewed with the same key.  Returns 0
 * or -1.
 */
int tlsclients_fingerprint(const X509 *cert, uint8_t fp[TLSCLIENTS_FP_LEN]);

/* "SHA256:" and unpadded base64 of fp, as the file writes it. */
void tlsclients_fp_text(const uint8_t fp[TLSCLIENTS_FP_LEN], char out[TLSCLIENTS_FP_TEXT_MAX]);

/* The other way: a whole "SHA256:..." text into fp.  Returns 0 or -1. */
int tlsclients_fp_parse(const char *text, uint8_t fp[TLSCLIENTS_FP_LEN]);

#endif
