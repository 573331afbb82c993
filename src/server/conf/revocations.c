#include "server/conf/revocations.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/io.h"
#include "common/log.h"
#include "common/util.h"

#define REVOCATIONS_MODE 0600

void
revocations_init(struct revocations *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

/* Empties the list, keeping the file. */
static void
clear(struct revocations *r)
{
	size_t i;

	for (i = 0; i < REVOCATIONS_BUCKETS; i++) {
		free(r->bucket[i].e);
		memset(&r->bucket[i], 0, sizeof(r->bucket[i]));
	}
	r->n = 0;
}

void
revocations_free(struct revocations *r)
{
	clear(r);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

int
revocations_jti_valid(const char *s)
{
	size_t i;

	for (i = 0; i < TOKEN_JTI_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[TOKEN_JTI_LEN] == '\0';
}

/* One "JTI EXP" line, p[0..len), into e.  Returns 0 or -1. */
static int
parse_line(const char *p, size_t len, struct revoked *e)
{
	char line[REVOCATIONS_LINE_MAX];

	if (len <= TOKEN_JTI_LEN + 1 || len >= sizeof(line) || p[TOKEN_JTI_LEN] != ' ')
		return -1;
	memcpy(line, p, len);
	line[len] = '\0';
	line[TOKEN_JTI_LEN] = '\0';
	if (!revocations_jti_valid(line) ||
	    parse_uint(line + TOKEN_JTI_LEN + 1, TOKEN_TIME_MAX, &e->exp) != 0)
		return -1;
	memcpy(e->jti, line, sizeof(e->jti));
	return 0;
}

static struct revoked_bucket *
bucket_of(struct revocations *r, const char *jti)
{
	unsigned v = 0;
	size_t i;

	for (i = 0; i < 4; i++)
		v = v << 4 | (unsigned)(jti[i] <= '9' ? jti[i] - '0' : jti[i] - 'a' + 10);
	return &r->bucket[v % REVOCATIONS_BUCKETS];
}

/* Adds e, a valid entry not present yet.  Returns 0, or -1 when full or out of memory. */
static int
insert(struct revocations *r, const struct revoked *e)
{
	struct revoked_bucket *b = bucket_of(r, e->jti);
	size_t cap = b->cap == 0 ? 4 : b->cap * 2;
	struct revoked *grown;

	if (r->n >= REVOCATIONS_MAX)
		return -1;
	if (b->n == b->cap) {
		if ((grown = realloc(b->e, cap * sizeof(*grown))) == NULL)
			return -1;
		b->e = grown;
		b->cap = cap;
	}
	b->e[b->n++] = *e;
	r->n++;
	return 0;
}

int
revocations_parse(struct revocations *r, const char *text, size_t len, uint64_t now, char *err,
                  size_t err_size)
{
	const char *end = text + len, *nl;
	unsigned line = 0;
	struct revoked e;

	clear(r);
	for (; text < end; text = nl + 1) {
		line++;
		if ((nl = memchr(text, '\n', (size_t)(end - text))) == NULL ||
		    parse_line(text, (size_t)(nl - text), &e) != 0) {
			snprintf(err, err_size, "%u: expected a token id and its expiry", line);
			clear(r);
			return -1;
		}
		if (e.exp <= now || revocations_contains(r, e.jti, now))
			continue;
		if (insert(r, &e) != 0) {
			snprintf(err, err_size, "%u: more than %d revoked tokens", line,
			         REVOCATIONS_MAX);
			clear(r);
			return -1;
		}
	}
	return 0;
}

void
revocations_each(const struct revocations *r, uint64_t now,
                 void (*fn)(void *arg, const char *jti, uint64_t exp), void *arg)
{
	const struct revoked *e;
	size_t i, k;

	for (i = 0; i < REVOCATIONS_BUCKETS; i++)
		for (k = 0; k < r->bucket[i].n; k++) {
			e = &r->bucket[i].e[k];
			if (e->exp > now)
				fn(arg, e->jti, e->exp);
		}
}

int
revocations_format(const struct revocations *r, char **text, size_t *len)
{
	size_t i, k, used = 0, size = r->n * REVOCATIONS_LINE_MAX + 1;
	const struct revoked *e;

	if ((*text = malloc(size)) == NULL)
		return -1;
	for (i = 0; i < REVOCATIONS_BUCKETS; i++)
		for (k = 0; k < r->bucket[i].n; k++) {
			e = &r->bucket[i].e[k];
			used += (size_t)snprintf(*text + used, size - used, "%s %llu\n", e->jti,
			                         (unsigned long long)e->exp);
		}
	(*text)[used] = '\0';
	*len = used;
	return 0;
}

/* Writes the list to a new file and opens that for appending. */
static int
rewrite(struct revocations *r)
{
	char *text;
	size_t len;
	int e;

	if (revocations_format(r, &text, &len) != 0)
		return -ENOMEM;
	e = io_replace_file(r->path, text, len, REVOCATIONS_MODE);
	free(text);
	if (e != 0)
		return e;
	if (r->fd >= 0)
		close(r->fd);
	if ((r->fd = open(r->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -errno;
	r->lines = r->n;
	return 0;
}

int
revocations_load_file(struct revocations *r, const char *path, uint64_t now)
{
	char *text = NULL, err[128];
	size_t len = 0;
	int e;

	str_copy(r->path, path, sizeof(r->path));
	e = io_read_file(path, REVOCATIONS_FILE_MAX, &text, &len);
	if (e != 0 && e != -ENOENT) {
		log_error("%s: cannot read the revoked tokens: %s", path, strerror(-e));
		return -1;
	}
	/* A last line without its end was cut short by a full disk: it revoked nothing. */
	if (e == 0 && len > 0 && text[len - 1] != '\n') {
		log_warn("%s: its last line is cut short; dropping it", path);
		while (len > 0 && text[len - 1] != '\n')
			len--;
	}
	if (e == 0 && revocations_parse(r, text, len, now, err, sizeof(err)) != 0) {
		log_error("%s:%s", path, err);
		free(text);
		return -1;
	}
	if ((e = rewrite(r)) != 0) {
		log_error("%s: cannot write: %s", path, strerror(-e));
		free(text);
		return -1;
	}
	if (text == NULL)
		log_info("created %s for revoked tokens", path);
	free(text);
	return 0;
}

/* Whether jti is in its bucket, forgetting the bucket's expired entries on the way. */
static bool
find(struct revocations *r, const char *jti, uint64_t now)
{
	struct revoked_bucket *b = bucket_of(r, jti);
	size_t i = 0;

	while (i < b->n) {
		if (b->e[i].exp <= now) {
			b->e[i] = b->e[--b->n];
			r->n--;
			continue;
		}
		if (strcmp(b->e[i].jti, jti) == 0)
			return true;
		i++;
	}
	return false;
}

/* Forgets every expired entry. */
static void
purge(struct revocations *r, uint64_t now)
{
	struct revoked_bucket *b;
	size_t i, k;

	for (i = 0; i < REVOCATIONS_BUCKETS; i++) {
		b = &r->bucket[i];
		for (k = 0; k < b->n;) {
			if (b->e[k].exp > now) {
				k++;
				continue;
			}
			b->e[k] = b->e[--b->n];
			r->n--;
		}
	}
}

int
revocations_contains(struct revocations *r, const char *jti, uint64_t now)
{
	return revocations_jti_valid(jti) && find(r, jti, now);
}

/* Appends one line to the file and syncs it; rewrites the file when it holds many expired lines. */
static int
record(struct revocations *r, const struct revoked *e, char *err, size_t err_size)
{
	char line[REVOCATIONS_LINE_MAX];
	off_t end = -1;
	int n, x;

	if (r->path[0] == '\0')
		return 0;
	if (r->lines >= 2 * r->n + REVOCATIONS_MAX / 8 && (x = rewrite(r)) != 0) {
		snprintf(err, err_size, "%s: cannot rewrite: %s", r->path, strerror(-x));
		return -1;
	}
	n = snprintf(line, sizeof(line), "%s %llu\n", e->jti, (unsigned long long)e->exp);
	if (r->fd < 0 || (end = lseek(r->fd, 0, SEEK_END)) < 0 ||
	    io_write_all(r->fd, line, (size_t)n) != 0 || fdatasync(r->fd) != 0) {
		snprintf(err, err_size, "%s: cannot record a revocation: %s", r->path,
		         strerror(errno));
		/* Never a line cut short in the file: it would stop the next start. */
		if (end >= 0 && ftruncate(r->fd, end) != 0)
			log_error("%s: cannot take back a line cut short: %s", r->path,
			          strerror(errno));
		return -1;
	}
	r->lines++;
	return 0;
}

int
revocations_add(struct revocations *r, const char *jti, uint64_t exp, uint64_t now, char *err,
                size_t err_size)
{
	struct revoked e;

	if (!revocations_jti_valid(jti)) {
		snprintf(err, err_size, "not a token id");
		return -1;
	}
	if (find(r, jti, now))
		return 0;
	if (r->n >= REVOCATIONS_MAX)
		purge(r, now);
	if (r->n >= REVOCATIONS_MAX) {
		snprintf(err, err_size, "the revocation list is full (%d tokens)", REVOCATIONS_MAX);
		log_error("%s", err);
		return -1;
	}
	str_copy(e.jti, jti, sizeof(e.jti));
	e.exp = exp;
	if (record(r, &e, err, err_size) != 0) {
		log_error("%s", err);
		return -1;
	}
	if (insert(r, &e) != 0) {
		snprintf(err, err_size, "out of memory");
		return -1;
	}
	return 0;
}
