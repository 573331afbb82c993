#include "proto/tlsclients.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/util.h"

/* Unpadded base64 of 32 bytes. */
#define FP_B64_LEN  43
#define TABLE_FIRST 64

enum line_kind { LINE_BLANK, LINE_FP, LINE_SUBJECT };

/* One entry of either kind, as a line gives it. */
struct entry {
	enum line_kind kind;
	uint8_t fp[TLSCLIENTS_FP_LEN];
	const char *subject;
	const char *identity;
};

static bool
blank(char c)
{
	return c == ' ' || c == '\t';
}

static int
by_fp(const void *a, const void *b)
{
	return memcmp(((const struct tlsclient_fp *)a)->fp, ((const struct tlsclient_fp *)b)->fp,
	              TLSCLIENTS_FP_LEN);
}

static int
by_subject(const void *a, const void *b)
{
	return strcmp(((const struct tlsclient_subject *)a)->subject,
	              ((const struct tlsclient_subject *)b)->subject);
}

int
tlsclients_fp_parse(const char *text, uint8_t fp[TLSCLIENTS_FP_LEN])
{
	size_t prefix = strlen(TLSCLIENTS_FP_PREFIX), n;

	if (strncmp(text, TLSCLIENTS_FP_PREFIX, prefix) != 0 ||
	    strlen(text + prefix) != FP_B64_LEN ||
	    b64_decode(text + prefix, FP_B64_LEN, NULL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
	               fp, TLSCLIENTS_FP_LEN, &n) != 0)
		return -1;
	return n == TLSCLIENTS_FP_LEN ? 0 : -1;
}

/* RFC 2253 as OpenSSL prints it escapes every byte outside printable ASCII. */
static int
check_subject(const char *s, const char **why)
{
	size_t len = strlen(s), i;

	if (len == 0 || len > TLSCLIENTS_SUBJECT_MAX || s[0] == ' ') {
		*why = "expected a subject of 1 to 512 characters right after subject:";
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (s[i] < 0x20 || s[i] > 0x7e) {
			*why = "a subject is printable ASCII (RFC 2253 escapes the rest)";
			return -1;
		}
	}
	return 0;
}

/* Splits one line (modified in place) into e.  Returns 0, or -1 with *why. */
static int
parse_line(char *line, bool subjects_ok, struct entry *e, const char **why)
{
	char *start = line + strspn(line, " \t"), *end = start + strlen(start), *identity;

	e->kind = LINE_BLANK;
	while (end > start && (blank(end[-1]) || end[-1] == '\r'))
		*--end = '\0';
	if (*start == '\0' || *start == '#')
		return 0;
	for (identity = end; identity > start && !blank(identity[-1]); identity--)
		;
	if (identity == start) {
		*why = "expected CERTIFICATE IDENTITY";
		return -1;
	}
	e->identity = identity;
	for (end = identity; blank(end[-1]); end--)
		;
	*end = '\0';
	if (!auth_identity_valid(e->identity)) {
		*why = "not a valid identity";
		return -1;
	}
	if (strncmp(start, TLSCLIENTS_FP_PREFIX, strlen(TLSCLIENTS_FP_PREFIX)) == 0) {
		e->kind = LINE_FP;
		if (tlsclients_fp_parse(start, e->fp) == 0)
			return 0;
		*why = "not a SHA256: fingerprint (43 characters of base64, no padding)";
		return -1;
	}
	if (strncmp(start, TLSCLIENTS_SUBJ_PREFIX, strlen(TLSCLIENTS_SUBJ_PREFIX)) != 0) {
		*why = "expected SHA256:FINGERPRINT or subject:SUBJECT";
		return -1;
	}
	if (!subjects_ok) {
		/* Without a CA to verify the chain, anyone could make that subject. */
		*why = "subject: lines need tls_client_ca";
		return -1;
	}
	e->kind = LINE_SUBJECT;
	e->subject = start + strlen(TLSCLIENTS_SUBJ_PREFIX);
	return check_subject(e->subject, why);
}

/* Room for one more element in *table (n used, *cap allocated).  Returns 0 or -1. */
static int
grow(void **table, size_t n, size_t *cap, size_t size)
{
	void *grown;

	if (n < *cap)
		return 0;
	if ((grown = realloc(*table, (*cap ? *cap * 2 : TABLE_FIRST) * size)) == NULL)
		return -1;
	*table = grown;
	*cap = *cap ? *cap * 2 : TABLE_FIRST;
	return 0;
}

static int
add(struct tls_clients *out, const struct entry *e, unsigned line, size_t caps[2], const char **why)
{
	struct tlsclient_fp *f;
	struct tlsclient_subject *s;

	if (out->nfps + out->nsubjects == TLSCLIENTS_MAX) {
		*why = "too many certificates";
		return -1;
	}
	if (e->kind == LINE_FP) {
		if (grow((void **)&out->fps, out->nfps, &caps[0], sizeof(*f)) != 0)
			goto nomem;
		f = &out->fps[out->nfps++];
		memcpy(f->fp, e->fp, sizeof(f->fp));
		str_copy(f->identity, e->identity, sizeof(f->identity));
		f->line = line;
		return 0;
	}
	if (grow((void **)&out->subjects, out->nsubjects, &caps[1], sizeof(*s)) != 0)
		goto nomem;
	s = &out->subjects[out->nsubjects++];
	str_copy(s->subject, e->subject, sizeof(s->subject));
	str_copy(s->identity, e->identity, sizeof(s->identity));
	s->line = line;
	return 0;
nomem:
	*why = "out of memory";
	return -1;
}

static unsigned
later(unsigned a, unsigned b)
{
	return a > b ? a : b;
}

/* Sorts both tables; a certificate listed twice gives the later line in *line.  0 or -1. */
static int
sort_unique(struct tls_clients *c, unsigned *line)
{
	size_t i;

	if (c->nfps > 0)
		qsort(c->fps, c->nfps, sizeof(*c->fps), by_fp);
	if (c->nsubjects > 0)
		qsort(c->subjects, c->nsubjects, sizeof(*c->subjects), by_subject);
	for (i = 1; i < c->nfps; i++) {
		if (by_fp(&c->fps[i - 1], &c->fps[i]) == 0) {
			*line = later(c->fps[i - 1].line, c->fps[i].line);
			return -1;
		}
	}
	for (i = 1; i < c->nsubjects; i++) {
		if (by_subject(&c->subjects[i - 1], &c->subjects[i]) == 0) {
			*line = later(c->subjects[i - 1].line, c->subjects[i].line);
			return -1;
		}
	}
	return 0;
}

int
tlsclients_parse(const char *name, const char *text, size_t len, bool subjects_ok,
                 struct tls_clients *out, char *err, size_t err_size)
{
	char line[TLSCLIENTS_LINE_MAX];
	const char *why = "";
	size_t caps[2] = {0, 0}, pos = 0;
	unsigned n = 0;
	struct entry e;
	int r;

	memset(out, 0, sizeof(*out));
	if (len > TLSCLIENTS_FILE_MAX) {
		why = "file too large";
		goto fail;
	}
	while ((r = text_line(text, len, &pos, line, sizeof(line))) != 0) {
		n++;
		if (r < 0) {
			why = "line too long, or a NUL byte";
			goto fail;
		}
		if (parse_line(line, subjects_ok, &e, &why) != 0)
			goto fail;
		if (e.kind != LINE_BLANK && add(out, &e, n, caps, &why) != 0)
			goto fail;
	}
	if (sort_unique(out, &n) != 0) {
		why = "a certificate listed twice";
		goto fail;
	}
	return 0;
fail:
	snprintf(err, err_size, "%s:%u: %s", name, n, why);
	tlsclients_free(out);
	return -1;
}

void
tlsclients_free(struct tls_clients *c)
{
	free(c->fps);
	free(c->subjects);
	memset(c, 0, sizeof(*c));
}

const char *
tlsclients_by_fingerprint(const struct tls_clients *c, const uint8_t fp[TLSCLIENTS_FP_LEN])
{
	struct tlsclient_fp probe = {0};
	const struct tlsclient_fp *hit;

	if (c->nfps == 0)
		return NULL;
	memcpy(probe.fp, fp, sizeof(probe.fp));
	hit = bsearch(&probe, c->fps, c->nfps, sizeof(probe), by_fp);
	return hit != NULL ? hit->identity : NULL;
}

const char *
tlsclients_by_subject(const struct tls_clients *c, const char *subject)
{
	struct tlsclient_subject probe = {0};
	const struct tlsclient_subject *hit;

	if (c->nsubjects == 0 ||
	    str_copy(probe.subject, subject, sizeof(probe.subject)) >= sizeof(probe.subject))
		return NULL;
	hit = bsearch(&probe, c->subjects, c->nsubjects, sizeof(probe), by_subject);
	return hit != NULL ? hit->identity : NULL;
}

int
tlsclients_fingerprint(const X509 *cert, uint8_t fp[TLSCLIENTS_FP_LEN])
{
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);

	if (len <= 0)
		return -1;
	crypto_hash_sha256(fp, der, (unsigned long long)len);
	OPENSSL_free(der);
	return 0;
}

void
tlsclients_fp_text(const uint8_t fp[TLSCLIENTS_FP_LEN], char out[TLSCLIENTS_FP_TEXT_MAX])
{
	memcpy(out, TLSCLIENTS_FP_PREFIX, strlen(TLSCLIENTS_FP_PREFIX));
	sodium_bin2base64(out + strlen(TLSCLIENTS_FP_PREFIX),
	                  TLSCLIENTS_FP_TEXT_MAX - strlen(TLSCLIENTS_FP_PREFIX), fp,
	                  TLSCLIENTS_FP_LEN, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}
