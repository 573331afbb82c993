/*
 * The text dialect: request lines (RFC 1078 TCPMUX and fived's commands).
 * Pure code: bytes in, a line or a command out; no I/O, no state.
 */
#ifndef FIVE_LINE_H
#define FIVE_LINE_H

#include <stddef.h>
#include <stdint.h>

/* A request line with its CRLF (or bare LF) is at most this long. */
#define LINE_MAX_BYTES 512

/* Service names: [A-Za-z0-9][A-Za-z0-9._+-]*, at most this long. */
#define NAME_MAX_LEN 64

/* Virtual host names: DNS-like, at most this long. */
#define VHOST_MAX_LEN 253

/* Words after the command word on one line. */
#define CMD_ARGS_MAX 4

enum line_status {
	LINE_NEED_MORE = 0, /* no complete line yet, nothing wrong so far */
	LINE_OK = 1,        /* a line was taken */
	LINE_TOO_LONG = -1, /* no terminator within LINE_MAX_BYTES */
	LINE_BAD_BYTE = -2, /* a byte other than printable ASCII before the terminator */
};

/*
 * Takes the first line from data[0..len).  On LINE_OK, writes the line
 * without its terminator, NUL-terminated, into out and sets *used to the
 * bytes it spanned including the terminator.  Bad bytes and overlong lines
 * are reported as soon as they are seen, without waiting for the rest.
 */
enum line_status line_take(const uint8_t *data, size_t len, char out[LINE_MAX_BYTES], size_t *used);

enum cmd_kind {
	CMD_SERVICE, /* a service name, optionally followed by one argument */
	CMD_HELP,
	CMD_LIST,
	CMD_HOST,
	CMD_QUIT,
	CMD_AUTH,
	CMD_TLS,
	CMD_TOKEN,
	CMD_MULTIPLEX,
	CMD_ATTACH,     /* ticket, received count (proto/resume.h) */
	CMD_PROVEAUTH,  /* a challenge hash (proto/proof.h) */
	CMD_GETSIGNKEY, /* the key proofs are signed with */
};

struct cmd {
	enum cmd_kind kind;
	char word[NAME_MAX_LEN + 1]; /* CMD_SERVICE: the service name, lowercased */
	unsigned nargs;
	const char *args[CMD_ARGS_MAX]; /* point into storage */
	char storage[LINE_MAX_BYTES];
};

/*
 * Parses one line (as produced by line_take) into *out.  Command words are
 * case-insensitive.  Returns 0, or -1 with *why set to a static message
 * fit to send to the client.
 */
int cmd_parse(const char *line, struct cmd *out, const char **why);

/*
 * A reply line from the server: '+' or '-', then optional text (one space
 * after the sign is not part of it).  Sets *ok and *text (pointing into
 * line).  Returns 0, or -1 when the line is not a reply.
 */
int reply_parse(const char *line, int *ok, const char **text);

/* Whether s is a valid service name; also used for configuration. */
int name_valid(const char *s);

/* Whether s is a valid virtual host name. */
int vhost_name_valid(const char *s);

/* Whether s (case-insensitively) is a command word and so cannot name a service. */
int name_reserved(const char *s);

/*
 * The word at *p, up to a space or the end, into out[0..size), and *p past
 * it and one space: 0, or -1 when the word is empty or does not fit.
 */
int line_next_word(const char **p, char *out, size_t size);

/*
 * A redirect (docs/PROTOCOL.md section 2.13): where a service lives
 * instead, as the words "HOST PORT SERVICE" of the "- redirect" reply and
 * of the configuration's redirect key.  The host is a DNS name or an IP
 * literal: [A-Za-z0-9._:-], not starting with '-', at most this long.
 */
#define REDIRECT_HOST_MAX 253

/* "HOST PORT SERVICE" at its longest, with its NUL. */
#define REDIRECT_TEXT_SIZE (REDIRECT_HOST_MAX + 1 + 5 + 1 + NAME_MAX_LEN + 1)

struct redirect {
	char host[REDIRECT_HOST_MAX + 1];
	uint16_t port;                  /* 1 to 65535 */
	char service[NAME_MAX_LEN + 1]; /* lowercased */
};

/* Whether host is a host a redirect may name. */
int redirect_host_valid(const char *host);

/*
 * Parses exactly three words "HOST PORT SERVICE", separated by single
 * spaces, into *out.  Returns 0, or -1 with *why set to a static message.
 */
int redirect_parse(const char *text, struct redirect *out, const char **why);

/* Writes "HOST PORT SERVICE" into out[0..REDIRECT_TEXT_SIZE). */
void redirect_format(const struct redirect *r, char out[REDIRECT_TEXT_SIZE]);

#endif
