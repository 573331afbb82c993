#include "common/util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

size_t
str_copy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

void
str_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* Parses leading digits only; *end is left at the first non-digit. */
static int
parse_digits(const char *s, uint64_t max, uint64_t *out, const char **end)
{
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	*end = s;
	return 0;
}

int
parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	const char *end;

	if (parse_digits(s, max, out, &end) != 0 || *end != '\0')
		return -1;
	return 0;
}

/* A unit a number may be followed by, and what one of it is worth. */
struct unit {
	const char *suffix;
	uint64_t value;
};

/* Digits (at most digits_max) and one of units' suffixes; the result at most max. */
static int
parse_scaled(const char *s, uint64_t digits_max, const struct unit *units, size_t n, uint64_t max,
             uint64_t *out)
{
	const char *end;
	uint64_t v;
	size_t i;

	if (parse_digits(s, digits_max, &v, &end) != 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		if (v > max / units[i].value)
			return -1;
		*out = v * units[i].value;
		return 0;
	}
	return -1;
}

int
parse_duration_ms(const char *s, uint64_t max_ms, uint64_t *out_ms)
{
	static const struct unit units[] = {
	        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};

	return parse_scaled(s, UINT32_MAX, units, ARRAY_LEN(units), max_ms, out_ms);
}

int
parse_size(const char *s, uint64_t max, uint64_t *out)
{
	static const struct unit units[] = {{"", 1},           {"K", 1ULL << 10}, {"k", 1ULL << 10},
	                                    {"M", 1ULL << 20}, {"m", 1ULL << 20}, {"G", 1ULL << 30},
	                                    {"g", 1ULL << 30}};

	return parse_scaled(s, max, units, ARRAY_LEN(units), max, out);
}

int
parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	size_t i;

	for (i = 0; i < ARRAY_LEN(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

void
hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}

int
text_line(const char *text, size_t len, size_t *pos, char *buf, size_t size)
{
	const char *p = text + *pos, *nl;
	size_t n;

	if (*pos >= len)
		return 0;
	nl = memchr(p, '\n', len - *pos);
	n = nl != NULL ? (size_t)(nl - p) : len - *pos;
	*pos += n + (nl != NULL);
	if (n >= size || memchr(p, '\0', n) != NULL)
		return -1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return 1;
}

const char *
plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

uint64_t
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
path_beside(const char *path, const char *strip, const char *suffix, char *out, size_t size)
{
	size_t len = strlen(path), cut = strlen(strip);
	int n;

	if (len > cut && strcmp(path + len - cut, strip) == 0)
		len -= cut;
	n = snprintf(out, size, "%.*s%s", (int)len, path, suffix);
	return n > 0 && (size_t)n < size ? 0 : -1;
}
