/*
 * Small string and number helpers shared by the daemon and the client.
 */
#ifndef FIVE_UTIL_H
#define FIVE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* uv_hrtime and the like count nanoseconds. */
#define NS_PER_US 1000

/*
 * Copies src into dst of the given size, always NUL-terminated.  Returns
 * strlen(src); a result >= size means src was truncated.
 */
size_t str_copy(char *dst, const char *src, size_t size);

/* Lowercases ASCII letters in place. */
void str_lower(char *s);

/* Unsigned decimal in [0, max], the whole string.  Returns 0 or -1. */
int parse_uint(const char *s, uint64_t max, uint64_t *out);

/*
 * A duration: a number followed by "ms", "s" (the default), "m" or "h".
 * Result in milliseconds, at most max_ms.  Returns 0 or -1.
 */
int parse_duration_ms(const char *s, uint64_t max_ms, uint64_t *out_ms);

/*
 * A size: a whole number of bytes, or followed by "K", "M" or "G" (KiB,
 * MiB, GiB; lowercase too).  At most max bytes.  Returns 0 or -1.
 */
int parse_size(const char *s, uint64_t max, uint64_t *out);

/* yes/no, true/false, on/off, 1/0.  Returns 0 or -1. */
int parse_bool(const char *s, bool *out);

/* Writes 2*n lowercase hex digits and a NUL to out (size >= 2*n + 1). */
void hex_encode(const uint8_t *p, size_t n, char *out);

/*
 * A file named after another, in the same directory: path without a
 * trailing strip (when it ends so), then suffix, into out[0..size).
 * Returns 0, or -1 when it does not fit.
 */
int path_beside(const char *path, const char *strip, const char *suffix, char *out, size_t size);

/*
 * The next line of text[*pos..len), up to a '\n' that is not part of it,
 * copied NUL-terminated into buf[0..size); *pos moves past it.  Returns 1,
 * 0 at the end of the text, or -1 when the line does not fit or holds a
 * NUL byte.
 */
int text_line(const char *text, size_t len, size_t *pos, char *buf, size_t size);

/* one when n is 1, else many: "%llu %s", n, plural(n, "session", "sessions"). */
const char *plural(uint64_t n, const char *one, const char *many);

/* Milliseconds from a monotonic clock. */
uint64_t monotonic_ms(void);

#endif
