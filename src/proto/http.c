#include "proto/http.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

#define METHOD_MAX 16

static const struct {
	int status;
	const char *text;
} statuses[] = {
        {200, "OK"},
        {400, "Bad Request"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {431, "Request Header Fields Too Large"},
};

/* Where the headers end (the byte after the empty line), or 0 when they have not yet. */
static size_t
headers_end(const char *buf, size_t len)
{
	size_t i;

	for (i = 1; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i - 1] == '\n')
			return i + 1;
		if (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n')
			return i + 1;
	}
	return 0;
}

static bool
text_valid(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c >= 0x7f)
			return false;
	}
	return true;
}

static bool
path_valid(const char *p, size_t n)
{
	size_t i;

	if (n == 0 || n > HTTP_PATH_MAX || p[0] != '/')
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
			return false;
	return true;
}

static bool
version_valid(const char *p, size_t n)
{
	/* A line ending in CRLF leaves its CR on the version. */
	if (n > 0 && p[n - 1] == '\r')
		n--;
	return n == strlen("HTTP/1.0") &&
	       (memcmp(p, "HTTP/1.0", n) == 0 || memcmp(p, "HTTP/1.1", n) == 0);
}

/* RFC 9110 5.6.2: the characters of a field's name. */
static bool
tchar(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A method is a token (RFC 9110 9.1), case-sensitive: "get" is another method than GET. */
static bool
method_valid(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!tchar(p[i]))
			return false;
	return n > 0 && n <= METHOD_MAX;
}

/*
 * The header lines, each "name:value", up to the empty line (p[0..n) ends
 * with it).  A line folded onto the one before (RFC 9112 5.2's obs-fold), a
 * line without a name and its colon, or a CR not before LF is refused: the
 * endpoint reads no header, but one that reads differently from a proxy in
 * front of it is how requests get smuggled past.
 */
static bool
headers_valid(const char *p, size_t n)
{
	const char *line = p, *lf;
	size_t name, len;

	while ((lf = memchr(line, '\n', n - (size_t)(line - p))) != NULL) {
		len = (size_t)(lf - line);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len == 0)
			return true;
		for (name = 0; name < len && tchar(line[name]); name++)
			;
		if (name == 0 || name == len || line[name] != ':' ||
		    memchr(line, '\r', len) != NULL)
			return false;
		line = lf + 1;
	}
	return false;
}

enum http_request
http_request_parse(const char *buf, size_t len, char path[HTTP_PATH_MAX + 1])
{
	size_t end = headers_end(buf, len), line;
	const char *sp1, *sp2;

	path[0] = '\0';
	if (end == 0)
		return len >= HTTP_REQUEST_MAX ? HTTP_TOO_LARGE : HTTP_INCOMPLETE;
	if (end > HTTP_REQUEST_MAX)
		return HTTP_TOO_LARGE;
	if (!text_valid(buf, end))
		return HTTP_BAD;
	line = (size_t)((const char *)memchr(buf, '\n', end) - buf);
	if ((sp1 = memchr(buf, ' ', line)) == NULL ||
	    (sp2 = memchr(sp1 + 1, ' ', line - (size_t)(sp1 + 1 - buf))) == NULL)
		return HTTP_BAD;
	if (!method_valid(buf, (size_t)(sp1 - buf)) ||
	    !path_valid(sp1 + 1, (size_t)(sp2 - sp1 - 1)) ||
	    !version_valid(sp2 + 1, line - (size_t)(sp2 + 1 - buf)) ||
	    !headers_valid(buf + line + 1, end - line - 1))
		return HTTP_BAD;
	if ((size_t)(sp1 - buf) != strlen("GET") || memcmp(buf, "GET", strlen("GET")) != 0)
		return HTTP_NOT_GET;
	memcpy(path, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	path[sp2 - sp1 - 1] = '\0';
	return HTTP_GET;
}

int
http_response_head(int status, const char *content_type, size_t body_len, char *out, size_t size,
                   size_t *len)
{
	size_t i;
	int n;

	for (i = 0; i < ARRAY_LEN(statuses) && statuses[i].status != status; i++)
		;
	if (i == ARRAY_LEN(statuses))
		return -1;
	n = snprintf(out, size,
	             "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	             "Connection: close\r\n\r\n",
	             status, statuses[i].text, content_type, body_len);
	if (n < 0 || (size_t)n >= size)
		return -1;
	*len = (size_t)n;
	return 0;
}
