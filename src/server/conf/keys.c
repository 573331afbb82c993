#include "server/conf/keys.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "crypto/sshkey.h"

#define OPTION_VALUE_MAX 1024
#define PATTERN_MAX      256

/* Options that restrict SSH sessions only, so mean nothing to fived. */
static const char *const ignored_options[] = {
        "no-pty",
        "pty",
        "no-port-forwarding",
        "port-forwarding",
        "no-agent-forwarding",
        "agent-forwarding",
        "no-x11-forwarding",
        "x11-forwarding",
        "no-user-rc",
        "user-rc",
        "no-touch-required",
        "verify-required",
};

static bool
ignored_option(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(ignored_options); i++)
		if (strcasecmp(name, ignored_options[i]) == 0)
			return true;
	return false;
}

/* Whether ip is inside "addr/bits". */
static bool
cidr_match(const char *pattern, const char *ip)
{
	char net[PATTERN_MAX];
	uint8_t a[16], b[16];
	const char *slash = strchr(pattern, '/');
	uint64_t bits;
	int family = strchr(pattern, ':') != NULL ? AF_INET6 : AF_INET;
	size_t len = family == AF_INET ? 4 : 16, i;

	if (slash == NULL || (size_t)(slash - pattern) >= sizeof(net))
		return false;
	memcpy(net, pattern, (size_t)(slash - pattern));
	net[slash - pattern] = '\0';
	if (parse_uint(slash + 1, len * 8, &bits) != 0 || inet_pton(family, net, a) != 1 ||
	    inet_pton(family, ip, b) != 1)
		return false;
	for (i = 0; i < len; i++) {
		unsigned keep = bits >= 8 * (i + 1) ? 8
		                : bits > 8 * i      ? (unsigned)(bits - 8 * i)
		                                    : 0;
		uint8_t mask = (uint8_t)(0xff00 >> keep);
		if ((a[i] & mask) != (b[i] & mask))
			return false;
	}
	return true;
}

int
keys_from_matches(const char *patterns, const char *ip)
{
	char copy[OPTION_VALUE_MAX];
	char *pat, *save = NULL;
	bool negated, hit, allowed = false;

	if (ip[0] == '\0' || str_copy(copy, patterns, sizeof(copy)) >= sizeof(copy))
		return 0;
	for (pat = strtok_r(copy, ",", &save); pat != NULL; pat = strtok_r(NULL, ",", &save)) {
		negated = pat[0] == '!';
		pat += negated;
		hit = strchr(pat, '/') != NULL ? cidr_match(pat, ip) : fnmatch(pat, ip, 0) == 0;
		if (hit && negated)
			return 0;
		allowed |= hit;
	}
	return allowed;
}

/* Whether list (comma-separated) contains name. */
static bool
list_contains(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	for (;;) {
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
		if ((p = strchr(p, ',')) == NULL)
			return false;
		p++;
	}
}

/*
 * Whether a key line's options let it authorize user from peer_ip.
 * need_principals: the line comes from the global file, where only
 * principals="..." says whom it is for.
 */
static bool
options_allow(const struct sshkey_authorized_key *k, const char *user, const char *peer_ip,
              bool need_principals, const char **why)
{
	char name[SSHKEY_OPTION_NAME_MAX], value[OPTION_VALUE_MAX];
	bool principal_ok = !need_principals;
	size_t cursor = 0;
	int r;

	while ((r = sshkey_authorized_option_next(k, &cursor, name, sizeof(name), value,
	                                          sizeof(value))) == 1) {
		if (strcasecmp(name, "principals") == 0) {
			principal_ok = list_contains(value, user);
		} else if (strcasecmp(name, "from") == 0) {
			if (!keys_from_matches(value, peer_ip)) {
				*why = "from= does not match the client's address";
				return false;
			}
		} else if (!ignored_option(name)) {
			*why = "the line has an option fived does not enforce";
			return false;
		}
	}
	if (r < 0) {
		*why = "malformed options";
		return false;
	}
	if (!principal_ok)
		*why = need_principals ? "principals= does not list the user" : "";
	return principal_ok;
}

/*
 * Scans one file's text for pk.  Returns 1 when a line authorizes it, 0
 * otherwise; *line_no and *why describe the deciding line.
 */
static int
scan(const char *text, size_t len, const uint8_t pk[32], const char *user, const char *peer_ip,
     bool global, unsigned *line_no, const char **why)
{
	struct sshkey_authorized_key *k = malloc(sizeof(*k));
	const char *p = text, *end = text + len, *nl, *line_why;
	unsigned n = 0;
	int found = 0;

	*why = "key not listed";
	if (k == NULL)
		return 0;
	for (; p < end && !found; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		n++;
		if (sshkey_authorized_parse_line(p, (size_t)(nl - p), k, &line_why) != 1 ||
		    sodium_memcmp(k->pk, pk, 32) != 0)
			continue;
		*line_no = n;
		if (options_allow(k, user, peer_ip, global, why))
			found = 1;
	}
	sodium_memzero(k, sizeof(*k));
	free(k);
	return found;
}

/*
 * Reads a whole authorized_keys file.  A user's file must belong to that
 * user (or root) and be writable by nobody else, like sshd's StrictModes.
 */
static char *
read_keys_file(const char *path, const struct passwd *owner, size_t *len, const char **why)
{
	struct stat st;
	char *text = NULL;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	*why = "cannot open";
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > KEYS_FILE_MAX) {
		*why = "not a regular file of a reasonable size";
		goto out;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 ||
	    (owner != NULL && st.st_uid != owner->pw_uid && st.st_uid != 0)) {
		*why = "refused: writable by others, or not the user's own";
		goto out;
	}
	if ((text = malloc((size_t)st.st_size + 1)) == NULL ||
	    (n = read(fd, text, (size_t)st.st_size)) != st.st_size) {
		*why = "cannot read";
		free(text);
		text = NULL;
		goto out;
	}
	*len = (size_t)n;
out:
	close(fd);
	return text;
}

/* Expands %h (home) and %u (user) in a template.  Returns 0 or -1. */
static int
expand(const char *tmpl, const struct passwd *pw, char *out, size_t size)
{
	size_t used = 0, add;
	const char *piece;

	for (; *tmpl != '\0'; tmpl++) {
		char one[2] = {*tmpl, '\0'};
		piece = one;
		if (tmpl[0] == '%' && (tmpl[1] == 'h' || tmpl[1] == 'u' || tmpl[1] == '%')) {
			tmpl++;
			piece = *tmpl == 'h' ? pw->pw_dir : *tmpl == 'u' ? pw->pw_name : "%";
		}
		add = strlen(piece);
		if (used + add >= size)
			return -1;
		memcpy(out + used, piece, add);
		used += add;
	}
	out[used] = '\0';
	return 0;
}

static int
check_file(const char *path, const struct passwd *owner, const uint8_t pk[32], const char *user,
           const char *peer_ip, char *why, size_t why_size)
{
	const char *reason = "";
	unsigned line = 0;
	size_t len = 0;
	char *text = read_keys_file(path, owner, &len, &reason);
	int ok;

	if (text == NULL) {
		snprintf(why, why_size, "%s: %s", path, reason);
		return 0;
	}
	ok = scan(text, len, pk, user, peer_ip, owner == NULL, &line, &reason);
	free(text);
	if (line > 0)
		snprintf(why, why_size, "%s:%u: %s", path, line, ok ? "authorized" : reason);
	else
		snprintf(why, why_size, "%s: %s", path, reason);
	return ok;
}

int
keys_authorized(const struct config *cfg, const char *user, const uint8_t pk[32],
                const char *peer_ip, char *why, size_t why_size)
{
	char path[CONFIG_PATH_MAX + 1];
	struct passwd *pw;

	snprintf(why, why_size, "no authorized_keys configured");
	if (cfg->authorized_keys[0] != '\0' &&
	    check_file(cfg->authorized_keys, NULL, pk, user, peer_ip, why, why_size))
		return 1;
	if (cfg->user_authorized_keys[0] == '\0')
		return 0;
	if ((pw = getpwnam(user)) == NULL) {
		snprintf(why, why_size, "no such user");
		return 0;
	}
	if (expand(cfg->user_authorized_keys, pw, path, sizeof(path)) != 0) {
		snprintf(why, why_size, "user_authorized_keys: path too long");
		return 0;
	}
	return check_file(path, pw, pk, user, peer_ip, why, why_size);
}
