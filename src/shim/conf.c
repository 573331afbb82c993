#include "shim/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "five.h"
#include "proto/line.h"
#include "shim/table.h"

#define WORDS_MAX 16

void
shim_conf_init(struct shim_conf *c)
{
	c->n = 0;
}

static int
fail(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
	return -1;
}

/* A dotted IPv4 address, which names no host: digits and dots only. */
static bool
all_digits(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s) && *s != '.')
			return false;
	return true;
}

/* Labels of letters, digits, '-' and '_', joined by single dots, at most SHIM_NAME_MAX. */
static bool
dns_name(const char *s)
{
	size_t n = strlen(s), label = 0, i;

	if (n == 0 || n > SHIM_NAME_MAX || all_digits(s))
		return false;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!isalnum(ch) && ch != '-' && ch != '_')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

int
shim_conf_normalize(const char *name, char out[SHIM_NAME_MAX + 1])
{
	size_t n = strlen(name);

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0 || n > SHIM_NAME_MAX)
		return -1;
	memcpy(out, name, n);
	out[n] = '\0';
	str_lower(out);
	return dns_name(out) ? 0 : -1;
}

/* fived's host: a name, or an IPv4 or IPv6 address. */
static bool
host_valid(const char *s)
{
	unsigned char buf[16];

	if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1)
		return true;
	return dns_name(s);
}

static bool
printable_word(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > max)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

/* NAME[:PORT] into r. */
static int
take_pattern(struct shim_rule *r, char *word, char *why, size_t size)
{
	char *colon = strrchr(word, ':');
	uint64_t port;

	if (colon != NULL) {
		*colon = '\0';
		if (parse_uint(colon + 1, 65535, &port) != 0 || port == 0)
			return fail(why, size, "invalid port %s", colon + 1);
		r->port = (unsigned)port;
	}
	if (strncmp(word, "*.", 2) == 0) {
		r->suffix = true;
		word += 2;
	}
	if (!dns_name(word) || strlen(word) >= sizeof(r->name))
		return fail(why, size, "invalid name %s%s", r->suffix ? "*." : "", word);
	str_copy(r->name, word, sizeof(r->name));
	str_lower(r->name);
	return 0;
}

/* Copies a value that must be printable and fit. */
static int
take_value(char *dst, size_t dst_size, const char *value, const char *what, char *why, size_t size)
{
	if (!printable_word(value, dst_size - 1))
		return fail(why, size, "invalid %s", what);
	str_copy(dst, value, dst_size);
	return 0;
}

static int
take_option(struct shim_rule *r, const char *opt, char *why, size_t size)
{
	const char *eq = strchr(opt, '=');
	const char *value = eq != NULL ? eq + 1 : NULL;
	size_t n = eq != NULL ? (size_t)(eq - opt) : strlen(opt);
	uint64_t v;

#define IS(name) (n == strlen(name) && strncmp(opt, name, n) == 0)
	if (value == NULL && (IS("plain") || IS("tls"))) {
		if (r->transport != FIVE_SEALED)
			return fail(why, size, "plain or tls, not both");
		r->transport = IS("plain") ? FIVE_PLAIN : FIVE_TLS;
		return 0;
	}
	if (value == NULL)
		return fail(why, size, "unknown option %s", opt);
	if (IS("port")) {
		if (parse_uint(value, 65535, &v) != 0 || v == 0)
			return fail(why, size, "invalid port=%s", value);
		snprintf(r->fived_port, sizeof(r->fived_port), "%u", (unsigned)v);
	} else if (IS("vhost")) {
		if (!vhost_name_valid(value) || strlen(value) >= sizeof(r->vhost))
			return fail(why, size, "invalid vhost=%s", value);
		str_copy(r->vhost, value, sizeof(r->vhost));
	} else if (IS("key")) {
		return take_value(r->key, sizeof(r->key), value, "key", why, size);
	} else if (IS("auth")) {
		if (strcmp(value, "pubkey") != 0)
			return fail(why, size, "auth=%s: only auth=pubkey (the shim cannot prompt)",
			            value);
		r->auth_pubkey = true;
	} else if (IS("identity")) {
		if (value[0] != '/')
			return fail(why, size, "identity=%s: not an absolute path", value);
		return take_value(r->identity, sizeof(r->identity), value, "identity", why, size);
	} else if (IS("user")) {
		return take_value(r->user, sizeof(r->user), value, "user", why, size);
	} else if (IS("timeout")) {
		if (parse_duration_ms(value, SHIM_TIMEOUT_MAX_MS, &v) != 0 || v == 0)
			return fail(why, size, "invalid timeout=%s", value);
		r->timeout_ms = (int)v;
	} else {
		return fail(why, size, "unknown option %.*s", (int)n, opt);
	}
#undef IS
	return 0;
}

/* Splits line at blanks into words[]; returns their number, or -1 when too many. */
static int
split(char *line, char *words[WORDS_MAX])
{
	int n = 0;
	char *p = line;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#')
			return n;
		if (n == WORDS_MAX)
			return -1;
		words[n++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
		if (*p != '\0')
			*p++ = '\0';
	}
}

static bool
same_pattern(const struct shim_rule *a, const struct shim_rule *b)
{
	return a->suffix == b->suffix && a->port == b->port && strcmp(a->name, b->name) == 0;
}

/* One line's rule into r; 0, 1 for a line without one, or -1. */
static int
parse_line(char *line, struct shim_rule *r, char *why, size_t size)
{
	char *words[WORDS_MAX];
	int n = split(line, words), i;

	if (n == 0)
		return 1;
	if (n < 0)
		return fail(why, size, "too many words");
	if (n < 4 || strcmp(words[1], "=") != 0)
		return fail(why, size, "expected NAME[:PORT] = HOST SERVICE [OPTION ...]");
	if (take_pattern(r, words[0], why, size) != 0)
		return -1;
	if (!host_valid(words[2]))
		return fail(why, size, "invalid host %s", words[2]);
	str_copy(r->host, words[2], sizeof(r->host));
	if (!name_valid(words[3]) || strlen(words[3]) >= sizeof(r->service))
		return fail(why, size, "invalid service %s", words[3]);
	str_copy(r->service, words[3], sizeof(r->service));
	for (i = 4; i < n; i++)
		if (take_option(r, words[i], why, size) != 0)
			return -1;
	if ((r->identity[0] != '\0' || r->user[0] != '\0') && !r->auth_pubkey)
		return fail(why, size, "identity= and user= go with auth=pubkey");
	return 0;
}

int
shim_conf_parse(struct shim_conf *c, unsigned source, const char *text, size_t len, char *why,
                size_t size)
{
	char line[SHIM_LINE_MAX], detail[256];
	size_t pos = 0, i;
	unsigned lineno = 0;
	int r;

	while ((r = text_line(text, len, &pos, line, sizeof(line))) != 0) {
		struct shim_rule rule = {.source = source, .line = ++lineno};

		if (r < 0)
			return fail(why, size, "line %u: too long, or a NUL byte", lineno);
		r = parse_line(line, &rule, detail, sizeof(detail));
		if (r < 0)
			return fail(why, size, "line %u: %s", lineno, detail);
		if (r > 0)
			continue;
		for (i = 0; i < c->n; i++)
			if (c->rules[i].source == source && same_pattern(&c->rules[i], &rule))
				return fail(why, size, "line %u: the same name and port as line %u",
				            lineno, c->rules[i].line);
		if (c->n == SHIM_RULES_MAX)
			return fail(why, size, "line %u: more than %d rules", lineno,
			            SHIM_RULES_MAX);
		c->rules[c->n++] = rule;
	}
	return 0;
}

/* How specific r is for name: higher is more; -1 when it does not match. */
static int
specificity(const struct shim_rule *r, const char *name)
{
	size_t n = strlen(name), m = strlen(r->name);

	if (!r->suffix)
		return strcmp(r->name, name) == 0 ? 2 * (SHIM_NAME_MAX + 1) : -1;
	if (n <= m + 1 || name[n - m - 1] != '.' || strcmp(name + n - m, r->name) != 0)
		return -1;
	return 2 * (int)m;
}

bool
shim_conf_handles(const struct shim_conf *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (specificity(&c->rules[i], name) >= 0)
			return true;
	return false;
}

const struct shim_rule *
shim_conf_match(const struct shim_conf *c, const char *name, unsigned port)
{
	const struct shim_rule *best = NULL;
	int best_score = -1, score;
	size_t i;

	for (i = 0; i < c->n; i++) {
		const struct shim_rule *r = &c->rules[i];

		if (r->port != 0 && r->port != port)
			continue;
		if ((score = specificity(r, name)) < 0)
			continue;
		score += r->port != 0;
		if (score > best_score || (score == best_score && r->source < best->source)) {
			best = r;
			best_score = score;
		}
	}
	return best;
}

int
shim_conf_check(const struct shim_conf *c, char *why, size_t size)
{
	char name[SHIM_NAME_MAX + 1];
	uint8_t a[16];
	size_t i;

	for (i = 0; i < c->n; i++) {
		const struct shim_rule *r = &c->rules[i];

		if (shim_conf_normalize(r->host, name) == 0 && shim_conf_handles(c, name))
			return fail(why, size, "line %u: host %s is itself a name the shim maps",
			            r->line, r->host);
		if ((inet_pton(AF_INET, r->host, a) == 1 && shim_table_in_range(a)) ||
		    (inet_pton(AF_INET6, r->host, a) == 1 &&
		     memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0 &&
		     shim_table_in_range(a + 12)))
			return fail(why, size,
			            "line %u: host %s is one of the shim's own addresses", r->line,
			            r->host);
	}
	return 0;
}

int
shim_conf_load(struct shim_conf *c, unsigned source, const char *path, bool must_exist, char *why,
               size_t size)
{
	char detail[512], *text = NULL;
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd, r = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		if (errno == ENOENT && !must_exist)
			return 0;
		return fail(why, size, "%s: %s", path, strerror(errno));
	}
	if (fstat(fd, &st) != 0) {
		fail(why, size, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > SHIM_FILE_MAX) {
		fail(why, size, "%s: not a regular file of at most %d bytes", path, SHIM_FILE_MAX);
		goto out;
	}
	if ((st.st_mode & 022) != 0 || (st.st_uid != 0 && st.st_uid != getuid())) {
		fail(why, size,
		     "%s: others can write it (it must be yours or root's, mode 644 or "
		     "less)",
		     path);
		goto out;
	}
	if ((text = malloc((size_t)st.st_size + 1)) == NULL) {
		fail(why, size, "%s: out of memory", path);
		goto out;
	}
	while (got < (size_t)st.st_size &&
	       ((n = read(fd, text + got, (size_t)st.st_size - got)) > 0 ||
	        (n < 0 && errno == EINTR)))
		got += n > 0 ? (size_t)n : 0;
	if (shim_conf_parse(c, source, text, got, detail, sizeof(detail)) != 0) {
		fail(why, size, "%s: %s", path, detail);
		goto out;
	}
	r = 0;
out:
	free(text);
	close(fd);
	return r;
}
