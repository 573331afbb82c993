#include "proto/line.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"

static const struct {
	const char *word;
	enum cmd_kind kind;
	unsigned min_args, max_args;
} commands[] = {
        {"HELP", CMD_HELP, 0, 0},
        {"LIST", CMD_LIST, 0, 1},
        {"HOST", CMD_HOST, 0, 1},
        {"QUIT", CMD_QUIT, 0, 0},
        {"AUTH", CMD_AUTH, 1, 1},
        {"TLS", CMD_TLS, 0, 0},
        {"TOKEN", CMD_TOKEN, 1, 3},
        {"MULTIPLEX", CMD_MULTIPLEX, 0, 0},
        {"ATTACH", CMD_ATTACH, 2, 2},
        {"PROVEAUTH", CMD_PROVEAUTH, 1, 1},
        {"GETSIGNKEY", CMD_GETSIGNKEY, 0, 0},
};

/* Words reserved for commands of the protocol, present and planned. */
static const char *const reserved[] = {
        "help",  "list",      "host",       "quit",   "auth",      "tls",
        "token", "multiplex", "detachable", "attach", "proveauth", "getsignkey",
};

static int
printable(uint8_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

enum line_status
line_take(const uint8_t *data, size_t len, char out[LINE_MAX_BYTES], size_t *used)
{
	size_t i, end;

	for (i = 0; i < len && i < LINE_MAX_BYTES; i++) {
		if (data[i] == '\n') {
			end = (i > 0 && data[i - 1] == '\r') ? i - 1 : i;
			memcpy(out, data, end);
			out[end] = '\0';
			*used = i + 1;
			return LINE_OK;
		}
		if (data[i] == '\r') {
			/* CR is legal only as the first half of CRLF. */
			if (i + 1 < len && data[i + 1] != '\n')
				return LINE_BAD_BYTE;
			continue;
		}
		if (!printable(data[i]))
			return LINE_BAD_BYTE;
	}
	return i >= LINE_MAX_BYTES ? LINE_TOO_LONG : LINE_NEED_MORE;
}

int
name_valid(const char *s)
{
	size_t n = strlen(s);
	size_t i;

	if (n == 0 || n > NAME_MAX_LEN || !isalnum((unsigned char)s[0]))
		return 0;
	for (i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("._+-", s[i]) == NULL)
			return 0;
	return 1;
}

int
vhost_name_valid(const char *s)
{
	size_t n = strlen(s);
	size_t i;

	if (n == 0 || n > VHOST_MAX_LEN || !isalnum((unsigned char)s[0]))
		return 0;
	for (i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr(".-_", s[i]) == NULL)
			return 0;
	return 1;
}

int
name_reserved(const char *s)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(reserved); i++)
		if (strcasecmp(s, reserved[i]) == 0)
			return 1;
	return 0;
}

/* Splits storage at runs of spaces; returns the number of words, or -1 if too many. */
static int
split_words(char *storage, const char **words, unsigned max)
{
	unsigned n = 0;
	char *p = storage;

	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return (int)n;
		if (n == max)
			return -1;
		words[n++] = p;
		while (*p != ' ' && *p != '\0')
			p++;
		if (*p == ' ')
			*p++ = '\0';
	}
}

static int
parse_command(struct cmd *out, const char **words, unsigned nwords, const char **why)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(commands); i++) {
		if (strcasecmp(words[0], commands[i].word) != 0)
			continue;
		if (nwords - 1 < commands[i].min_args || nwords - 1 > commands[i].max_args) {
			*why = "wrong number of arguments";
			return -1;
		}
		out->kind = commands[i].kind;
		return 1;
	}
	return 0;
}

int
cmd_parse(const char *line, struct cmd *out, const char **why)
{
	const char *words[CMD_ARGS_MAX + 1];
	int nwords;
	int r;
	unsigned i;

	memset(out, 0, sizeof(*out));
	str_copy(out->storage, line, sizeof(out->storage));
	nwords = split_words(out->storage, words, CMD_ARGS_MAX + 1);
	if (nwords < 0) {
		*why = "too many words in request";
		return -1;
	}
	if (nwords == 0) {
		*why = "empty request";
		return -1;
	}
	out->nargs = (unsigned)nwords - 1;
	for (i = 0; i < out->nargs; i++)
		out->args[i] = words[i + 1];
	if ((r = parse_command(out, words, (unsigned)nwords, why)) != 0)
		return r < 0 ? -1 : 0;
	/* A command of the protocol this parser does not know: never a service name. */
	if (name_reserved(words[0])) {
		*why = "command not supported";
		return -1;
	}
	if (!name_valid(words[0])) {
		*why = "invalid service name";
		return -1;
	}
	if (out->nargs > 1) {
		*why = "too many words in request";
		return -1;
	}
	out->kind = CMD_SERVICE;
	str_copy(out->word, words[0], sizeof(out->word));
	str_lower(out->word);
	return 0;
}

int
reply_parse(const char *line, int *ok, const char **text)
{
	if (line[0] != '+' && line[0] != '-')
		return -1;
	*ok = line[0] == '+';
	*text = line[1] == ' ' ? line + 2 : line + 1;
	return 0;
}

/* --- redirects -------------------------------------------------------------- */

int
redirect_host_valid(const char *host)
{
	size_t n = strlen(host);

	return n > 0 && n <= REDIRECT_HOST_MAX && host[0] != '-' &&
	       strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") ==
	               n;
}

int
line_next_word(const char **p, char *out, size_t size)
{
	size_t n = strcspn(*p, " ");

	if (n == 0 || n >= size)
		return -1;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p += n;
	if (**p == ' ')
		(*p)++;
	return 0;
}

int
redirect_parse(const char *text, struct redirect *out, const char **why)
{
	char port[8];
	uint64_t n;

	memset(out, 0, sizeof(*out));
	*why = "expected HOST PORT SERVICE";
	if (text[0] == '\0' || text[strlen(text) - 1] == ' ' ||
	    line_next_word(&text, out->host, sizeof(out->host)) != 0 ||
	    line_next_word(&text, port, sizeof(port)) != 0 ||
	    line_next_word(&text, out->service, sizeof(out->service)) != 0 || *text != '\0')
		return -1;
	if (!redirect_host_valid(out->host)) {
		*why = "invalid redirect host";
		return -1;
	}
	/* One spelling for each port: a leading zero is not one. */
	if (port[0] == '0' || parse_uint(port, 65535, &n) != 0 || n == 0) {
		*why = "invalid redirect port";
		return -1;
	}
	/* A command word would be sent to the next server as a command, not a service. */
	if (!name_valid(out->service) || name_reserved(out->service)) {
		*why = "invalid redirect service name";
		return -1;
	}
	out->port = (uint16_t)n;
	str_lower(out->service);
	return 0;
}

void
redirect_format(const struct redirect *r, char out[REDIRECT_TEXT_SIZE])
{
	snprintf(out, REDIRECT_TEXT_SIZE, "%s %u %s", r->host, (unsigned)r->port, r->service);
}
