#include "server/revocations.h"

#include <errno.h>
#include <fcntl.h>
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

void
revocations_free(struct revocations *r)
{
	free(r->list);
	r->list = NULL;
	r->n = r->cap = 0;
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

static int
grow(struct revocations *r)
{
	size_t cap = r->cap == 0 ? 256 : r->cap * 2;
	struct revoked *list;

	if (cap > REVOCATIONS_MAX)
		cap = REVOCATIONS_MAX;
	if (r->n < r->cap)
		return 0;
	if (r->n >= REVOCATIONS_MAX || (list = realloc(r->list, cap * sizeof(*list))) == NULL)
		return -1;
	r->list = list;
	r->cap = cap;
	return 0;
}

int
revocations_parse(struct revocations *r, const char *text, size_t len, uint64_t now, char *err,
                  size_t err_size)
{
	const char *end = text + len, *nl;
	unsigned line = 0;
	struct revoked e;

	r->n = 0;
	for (; text < end; text = nl + 1) {
		line++;
		if ((nl = memchr(text, '\n', (size_t)(end - text))) == NULL ||
		    parse_line(text, (size_t)(nl - text), &e) != 0) {
			snprintf(err, err_size, "%u: expected a token id and its expiry", line);
			r->n = 0;
			return -1;
		}
		if (e.exp <= now)
			continue;
		if (grow(r) != 0) {
			snprintf(err, err_size, "%u: more than %d revoked tokens", line,
			         REVOCATIONS_MAX);
			r->n = 0;
			return -1;
		}
		r->list[r->n++] = e;
	}
	return 0;
}

int
revocations_format(const struct revocations *r, char **text, size_t *len)
{
	size_t i, used = 0, size = r->n * REVOCATIONS_LINE_MAX + 1;

	if ((*text = malloc(size)) == NULL)
		return -1;
	for (i = 0; i < r->n; i++)
		used += (size_t)snprintf(*text + used, size - used, "%s %llu\n", r->list[i].jti,
		                         (unsigned long long)r->list[i].exp);
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

/* The index of jti, forgetting expired entries on the way; r->n when absent. */
static size_t
find(struct revocations *r, const char *jti, uint64_t now)
{
	size_t i = 0;

	while (i < r->n) {
		if (r->list[i].exp <= now) {
			r->list[i] = r->list[--r->n];
			continue;
		}
		if (strcmp(r->list[i].jti, jti) == 0)
			return i;
		i++;
	}
	return r->n;
}

int
revocations_contains(struct revocations *r, const char *jti, uint64_t now)
{
	return find(r, jti, now) < r->n;
}

/* Appends one line to the file and syncs it; rewrites the file when it holds many expired lines. */
static int
record(struct revocations *r, const struct revoked *e, char *err, size_t err_size)
{
	char line[REVOCATIONS_LINE_MAX];
	int n, x;

	if (r->path[0] == '\0')
		return 0;
	if (r->lines >= 2 * r->n + REVOCATIONS_MAX / 8 && (x = rewrite(r)) != 0) {
		snprintf(err, err_size, "%s: cannot rewrite: %s", r->path, strerror(-x));
		return -1;
	}
	n = snprintf(line, sizeof(line), "%s %llu\n", e->jti, (unsigned long long)e->exp);
	if (r->fd < 0 || io_write_all(r->fd, line, (size_t)n) != 0 || fdatasync(r->fd) != 0) {
		snprintf(err, err_size, "%s: cannot record a revocation: %s", r->path,
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

	if (find(r, jti, now) < r->n)
		return 0;
	if (!revocations_jti_valid(jti)) {
		snprintf(err, err_size, "not a token id");
		return -1;
	}
	if (grow(r) != 0) {
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
	r->list[r->n++] = e;
	return 0;
}
