/*
 * The least of HTTP/1.0 that a metrics endpoint needs (fived's
 * metrics_listen): a GET request read, a response head written.  Request
 * headers are read only to find their end; none has any effect.  Pure
 * code: no I/O, no globals.
 */
#ifndef FIVE_HTTP_H
#define FIVE_HTTP_H

#include <stddef.h>

/* A request, its headers included; longer is refused. */
#define HTTP_REQUEST_MAX 4096

/* A request's path. */
#define HTTP_PATH_MAX 256

enum http_request {
	HTTP_INCOMPLETE, /* no end of headers yet: read more */
	HTTP_GET,        /* a well-formed GET; the path is set */
	HTTP_BAD,        /* malformed: 400 */
	HTTP_NOT_GET,    /* well-formed, another method: 405 */
	HTTP_TOO_LARGE,  /* HTTP_REQUEST_MAX bytes without an end of headers: 431 */
};

/*
 * Reads the request in buf[0..len): "METHOD SP PATH SP HTTP/1.0 or 1.1",
 * then header lines, then an empty line (lines end in CRLF, or LF alone);
 * printable ASCII (and tabs) only.  On HTTP_GET, path (HTTP_PATH_MAX + 1
 * bytes) is the request's path, starting with "/"; otherwise it is "".
 */
enum http_request http_request_parse(const char *buf, size_t len, char path[HTTP_PATH_MAX + 1]);

/*
 * Writes a complete HTTP/1.0 response head for status (200, 400, 404, 405
 * or 431), a body of body_len bytes of content_type, and "Connection:
 * close", into out (size bytes, NUL-terminated too).  Returns 0 with *len,
 * or -1 for another status or too small an out.
 */
int http_response_head(int status, const char *content_type, size_t body_len, char *out,
                       size_t size, size_t *len);

#endif
