#include "server/tokens.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/io.h"
#include "common/keyfile.h"
#include "common/log.h"
#include "common/util.h"
#include "server/seal.h"

#define TOKEN_KEY_LABEL "fived-token-key-v1"
#define KEY_STRIP       ".key"

/* "JTI EXP\n": 32 hex digits, a space, at most 20 digits. */
#define REVOKED_LINE_MAX (TOKEN_JTI_LEN + 1 + 20 + 2)

/* --- loading ----------------------------------------------------------------- */

/* The token key's file, beside the sealed key's.  0, or -1 after logging why. */
static int
key_file_path(const char *key_path, char path[CONFIG_PATH_MAX + 64])
{
	if (path_beside(key_path, KEY_STRIP, TOKENS_KEY_SUFFIX, path, CONFIG_PATH_MAX + 64) != 0) {
		log_error("%s: path too long for the token key", key_path);
		return -1;
	}
	return 0;
}

static int
load_key(struct tokens *t, const struct config *cfg, const char *key_path)
{
	char path[CONFIG_PATH_MAX + 64], err[KEYFILE_ERR_MAX];
	uint8_t seed[TOKEN_SEED_LEN];
	int made, r;

	if (key_file_path(key_path, path) != 0)
		return -1;
	if ((t->key = sodium_malloc(sizeof(*t->key))) == NULL) {
		log_error("out of memory");
		return -1;
	}
	if ((made = keyfile_load(path, TOKEN_KEY_LABEL, seal_key_flags(cfg), seed, err,
	                         sizeof(err))) < 0) {
		log_error("%s", err);
		return -1;
	}
	r = token_key_from_seed(seed, t->key);
	sodium_memzero(seed, sizeof(seed));
	if (r != 0)
		log_error("%s: cannot derive the token keys", path);
	else if (made == KEYFILE_CREATED)
		log_info("created a new token key in %s (key id %s)", path, t->key->kid);
	return r;
}

static int
load_trusted(struct tokens *t, const struct config *cfg)
{
	struct config_errors errs;
	char *text = NULL, err[CONFIG_ERRORS_MAX];
	size_t len = 0;
	int r;

	str_copy(t->trusted_path, cfg->token_trusted_keys, sizeof(t->trusted_path));
	if (cfg->token_trusted_keys[0] == '\0')
		return 0;
	if (config_read_file(cfg->token_trusted_keys, &text, &len, &errs) != 0) {
		config_errors_log(&errs);
		return -1;
	}
	r = token_trusted_parse(text, len, cfg->token_trusted_keys, &t->trusted, &t->ntrusted, err,
	                        sizeof(err));
	if (r != 0)
		log_error("%s", err);
	free(text);
	return r;
}

/* One "JTI EXP" line, p[0..len), into e.  Returns 0 or -1. */
static int
parse_revoked(const char *p, size_t len, struct revoked *e)
{
	char line[REVOKED_LINE_MAX];
	size_t i;

	if (len <= TOKEN_JTI_LEN + 1 || len >= sizeof(line) || p[TOKEN_JTI_LEN] != ' ')
		return -1;
	memcpy(line, p, len);
	line[len] = '\0';
	for (i = 0; i < TOKEN_JTI_LEN; i++)
		if (!isdigit((unsigned char)line[i]) && (line[i] < 'a' || line[i] > 'f'))
			return -1;
	if (parse_uint(line + TOKEN_JTI_LEN + 1, TOKEN_TIME_MAX, &e->exp) != 0)
		return -1;
	memcpy(e->jti, line, TOKEN_JTI_LEN);
	e->jti[TOKEN_JTI_LEN] = '\0';
	return 0;
}

/* Keeps the entries of text[0..len) that have not expired; a damaged line is an error. */
static int
take_revoked(struct tokens *t, const char *text, size_t len, uint64_t now)
{
	const char *end = text + len, *nl;
	unsigned n = 0;
	struct revoked e;

	for (; text < end; text = nl + 1) {
		n++;
		if ((nl = memchr(text, '\n', (size_t)(end - text))) == NULL ||
		    parse_revoked(text, (size_t)(nl - text), &e) != 0) {
			log_error("%s:%u: expected a token id and its expiry", t->revoked_path, n);
			return -1;
		}
		if (e.exp <= now)
			continue;
		if (t->nrevoked == TOKENS_REVOKED_MAX) {
			log_error("%s: more than %d revoked tokens", t->revoked_path,
			          TOKENS_REVOKED_MAX);
			return -1;
		}
		t->revoked[t->nrevoked++] = e;
	}
	return 0;
}

/* Writes what is kept to a new file, moves it into place, and opens it for appending. */
static int
rewrite_revoked(struct tokens *t)
{
	char tmp[sizeof(t->revoked_path) + 32], line[REVOKED_LINE_MAX];
	int fd, n, r = 0;
	size_t i;

	snprintf(tmp, sizeof(tmp), "%s.new.%ld", t->revoked_path, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
		goto fail;
	for (i = 0; i < t->nrevoked && r == 0; i++) {
		n = snprintf(line, sizeof(line), "%s %llu\n", t->revoked[i].jti,
		             (unsigned long long)t->revoked[i].exp);
		r = io_write_all(fd, line, (size_t)n);
	}
	if (r == 0)
		r = fsync(fd);
	if (close(fd) != 0 || r != 0 || rename(tmp, t->revoked_path) != 0) {
		log_error("%s: cannot write: %s", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	t->revoked_fd = open(t->revoked_path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (t->revoked_fd >= 0)
		return 0;
fail:
	log_error("%s: cannot write: %s", t->revoked_path, strerror(errno));
	return -1;
}

/*
 * Reads the revocation file into t, keeping what has not expired.  Returns
 * 0, 1 when there is no file yet, or -1 after logging why.
 */
static int
read_revoked(struct tokens *t, const struct config *cfg, const char *key_path, uint64_t now)
{
	struct config_errors errs;
	char *text = NULL;
	size_t len = 0;
	int r;

	if (cfg->revocation_file[0] != '\0')
		str_copy(t->revoked_path, cfg->revocation_file, sizeof(t->revoked_path));
	else if (path_beside(key_path, KEY_STRIP, TOKENS_REVOKED_SUFFIX, t->revoked_path,
	                     sizeof(t->revoked_path)) != 0) {
		log_error("%s: path too long for the revocation file", key_path);
		return -1;
	}
	if ((t->revoked = calloc(TOKENS_REVOKED_MAX, sizeof(*t->revoked))) == NULL) {
		log_error("out of memory");
		return -1;
	}
	if (access(t->revoked_path, F_OK) != 0)
		return 1;
	if (config_read_file(t->revoked_path, &text, &len, &errs) != 0) {
		config_errors_log(&errs);
		return -1;
	}
	r = take_revoked(t, text, len, now);
	free(text);
	return r;
}

static int
load_revoked(struct tokens *t, const struct config *cfg, const char *key_path, uint64_t now)
{
	int r = read_revoked(t, cfg, key_path, now);

	if (r < 0 || rewrite_revoked(t) != 0)
		return -1;
	if (r == 1)
		log_info("created %s for revoked tokens", t->revoked_path);
	return 0;
}

struct tokens *
tokens_load(const struct config *cfg, const char *key_path, uint64_t now)
{
	struct tokens *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->revoked_fd = -1;
	if (load_key(t, cfg, key_path) != 0 || load_trusted(t, cfg) != 0 ||
	    load_revoked(t, cfg, key_path, now) != 0) {
		tokens_free(t);
		return NULL;
	}
	return t;
}

int
tokens_check(const struct config *cfg, const char *key_path, uint64_t now)
{
	char path[CONFIG_PATH_MAX + 64], err[KEYFILE_ERR_MAX];
	struct tokens *t = calloc(1, sizeof(*t));
	int r = -1, made;

	if (t == NULL)
		return -1;
	t->revoked_fd = -1;
	if (key_file_path(key_path, path) != 0)
		goto out;
	if ((made = keyfile_check(path, TOKEN_KEY_LABEL, seal_key_flags(cfg), err, sizeof(err))) <
	    0) {
		log_error("%s", err);
		goto out;
	}
	if (made == KEYFILE_CREATED)
		log_info("%s does not exist yet: fived will create a new token key there", path);
	if (load_trusted(t, cfg) != 0 || (made = read_revoked(t, cfg, key_path, now)) < 0)
		goto out;
	/* rewrite_revoked makes the file anew in its directory (beside the key, perhaps made too).
	 */
	if (keyfile_creatable(t->revoked_path,
	                      cfg->revocation_file[0] != '\0' ? 0 : seal_key_flags(cfg), err,
	                      sizeof(err)) != 0) {
		log_error("%s", err);
		goto out;
	}
	if (made == 1)
		log_info("%s does not exist yet: fived will create it for revoked tokens",
		         t->revoked_path);
	r = 0;
out:
	tokens_free(t);
	return r;
}

void
tokens_free(struct tokens *t)
{
	if (t == NULL)
		return;
	if (t->key != NULL) {
		token_key_wipe(t->key);
		sodium_free(t->key);
	}
	token_trusted_free(t->trusted);
	free(t->revoked);
	if (t->revoked_fd >= 0)
		close(t->revoked_fd);
	free(t);
}

int
tokens_reload_check(const struct tokens *t, const struct config *cfg, char *err, size_t err_size)
{
	if (strcmp(t->trusted_path, cfg->token_trusted_keys) != 0) {
		snprintf(err, err_size, "token_trusted_keys changes only with a restart");
		return -1;
	}
	if (cfg->revocation_file[0] != '\0' && strcmp(t->revoked_path, cfg->revocation_file) != 0) {
		snprintf(err, err_size, "revocation_file changes only with a restart");
		return -1;
	}
	return 0;
}

/* --- using ------------------------------------------------------------------- */

int
tokens_issue(const struct tokens *t, const struct config *cfg, struct token_claims *c, uint64_t now,
             uint64_t ttl, char *out, size_t size)
{
	uint8_t id[TOKEN_JTI_LEN / 2];

	randombytes_buf(id, sizeof(id));
	hex_encode(id, sizeof(id), c->jti);
	c->iat = now;
	c->exp = now + ttl;
	return token_issue(t->key, cfg->token_local ? TOKEN_LOCAL : TOKEN_PUBLIC, c, out, size);
}

/* The entry for jti, forgetting expired ones on the way; NULL when none. */
static struct revoked *
find_revoked(struct tokens *t, const char *jti, uint64_t now)
{
	size_t i = 0;

	while (i < t->nrevoked) {
		if (t->revoked[i].exp <= now) {
			t->revoked[i] = t->revoked[--t->nrevoked];
			continue;
		}
		if (strcmp(t->revoked[i].jti, jti) == 0)
			return &t->revoked[i];
		i++;
	}
	return NULL;
}

int
tokens_open(struct tokens *t, const char *token, uint64_t now, struct token_claims *c,
            const char **why)
{
	if (token_open(t->key, t->trusted, t->ntrusted, token, now, c, why) != 0)
		return -1;
	if (find_revoked(t, c->jti, now) != NULL) {
		sodium_memzero(c, sizeof(*c));
		*why = "revoked";
		return -1;
	}
	return 0;
}

int
tokens_revoke(struct tokens *t, const struct token_claims *c, uint64_t now)
{
	char line[REVOKED_LINE_MAX];
	struct revoked *e;
	int n;

	if (find_revoked(t, c->jti, now) != NULL)
		return 0;
	if (t->nrevoked == TOKENS_REVOKED_MAX)
		return -1;
	n = snprintf(line, sizeof(line), "%s %llu\n", c->jti, (unsigned long long)c->exp);
	if (io_write_all(t->revoked_fd, line, (size_t)n) != 0 || fdatasync(t->revoked_fd) != 0) {
		log_error("%s: cannot record a revocation: %s", t->revoked_path, strerror(errno));
		return -1;
	}
	e = &t->revoked[t->nrevoked++];
	str_copy(e->jti, c->jti, sizeof(e->jti));
	e->exp = c->exp;
	return 0;
}
