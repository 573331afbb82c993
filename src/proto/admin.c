#include "proto/admin.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"

#define SIGN_AND_SPACE 2 /* "+ " or "- " before a reply's text */

static const struct {
	enum admin_command command;
	const char *verb; /* on the wire */
	const char *word; /* as fivectl's user types it */
} commands[] = {
        {ADMIN_SESSIONS, "SESSIONS", "sessions"}, {ADMIN_KILL, "KILL", "kill"},
        {ADMIN_STATS, "STATS", "stats"},          {ADMIN_GOVERNOR, "GOVERNOR", "governor"},
        {ADMIN_RELOAD, "RELOAD", "reload"},       {ADMIN_REVOKE, "REVOKE", "revoke"},
        {ADMIN_STREAMS, "STREAMS", "streams"},
};

static const char *
verb_of(enum admin_command command)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(commands); i++)
		if (commands[i].command == command)
			return commands[i].verb;
	return NULL;
}

enum admin_command
admin_command_named(const char *word)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(commands); i++)
		if (strcmp(commands[i].word, word) == 0)
			return commands[i].command;
	return 0;
}

bool
admin_command_has_arg(enum admin_command command)
{
	return command == ADMIN_KILL || command == ADMIN_REVOKE || command == ADMIN_STREAMS;
}

static bool
graphic(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
			return false;
	return true;
}

static bool
printable(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] >= 0x7f)
			return false;
	return true;
}

static bool
session_hex(const char *p, size_t n)
{
	size_t i;

	if (n != ADMIN_SESSION_HEX)
		return false;
	for (i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

static bool
arg_valid(enum admin_command command, const char *arg, size_t n)
{
	if (!admin_command_has_arg(command))
		return n == 0;
	if (command == ADMIN_KILL || command == ADMIN_STREAMS)
		return session_hex(arg, n);
	return n > 0 && n <= ADMIN_ARG_MAX && graphic(arg, n);
}

int
admin_request_encode(const struct admin_request *r, char *out, size_t size, size_t *len)
{
	const char *verb = verb_of(r->command);
	size_t n = strnlen(r->arg, sizeof(r->arg));
	int w;

	if (verb == NULL || n == sizeof(r->arg) || !arg_valid(r->command, r->arg, n))
		return -1;
	w = snprintf(out, size, "%s%s%s\n", verb, n > 0 ? " " : "", r->arg);
	if (w < 0 || (size_t)w >= size || (size_t)w > ADMIN_REQUEST_MAX)
		return -1;
	*len = (size_t)w;
	return 0;
}

int
admin_request_decode(const char *msg, size_t len, struct admin_request *r)
{
	const char *space;
	size_t i, vlen, alen;

	memset(r, 0, sizeof(*r));
	if (len < 2 || len > ADMIN_REQUEST_MAX || msg[len - 1] != '\n' || !printable(msg, len - 1))
		return -1;
	space = memchr(msg, ' ', len - 1);
	vlen = space != NULL ? (size_t)(space - msg) : len - 1;
	alen = space != NULL ? len - 2 - vlen : 0;
	for (i = 0; i < ARRAY_LEN(commands); i++)
		if (strlen(commands[i].verb) == vlen && memcmp(commands[i].verb, msg, vlen) == 0)
			break;
	/* A space always brings an argument: "KILL \n" is no request. */
	if (i == ARRAY_LEN(commands) || (space != NULL && alen == 0) ||
	    !arg_valid(commands[i].command, msg + vlen + 1, alen))
		return -1;
	r->command = commands[i].command;
	memcpy(r->arg, msg + vlen + 1, alen);
	return 0;
}

int
admin_reply_ok(const json_t *body, char *out, size_t size, size_t *len)
{
	size_t limit = size < ADMIN_REPLY_MAX ? size : ADMIN_REPLY_MAX, n;

	/* "+ ", the object, "\n" and the NUL. */
	if (!json_is_object(body) || limit < SIGN_AND_SPACE + 2)
		return -1;
	n = json_dumpb(body, out + SIGN_AND_SPACE, limit - SIGN_AND_SPACE - 2, JSON_COMPACT);
	if (n == 0 || n > limit - SIGN_AND_SPACE - 2)
		return -1;
	memcpy(out, "+ ", SIGN_AND_SPACE);
	out[SIGN_AND_SPACE + n] = '\n';
	out[SIGN_AND_SPACE + n + 1] = '\0';
	*len = SIGN_AND_SPACE + n + 1;
	return 0;
}

int
admin_reply_refuse(const char *reason, char *out, size_t size, size_t *len)
{
	size_t n = strnlen(reason, ADMIN_REASON_MAX + 1);
	int w;

	if (n == 0 || n > ADMIN_REASON_MAX || !printable(reason, n))
		return -1;
	w = snprintf(out, size, "- %s\n", reason);
	if (w < 0 || (size_t)w >= size)
		return -1;
	*len = (size_t)w;
	return 0;
}

int
admin_reply_decode(const char *msg, size_t len, bool *ok, json_t **body,
                   char reason[ADMIN_REASON_MAX + 1])
{
	size_t n = len - SIGN_AND_SPACE - 1;
	json_t *o;

	*ok = false;
	*body = NULL;
	reason[0] = '\0';
	if (len < SIGN_AND_SPACE + 2 || len > ADMIN_REPLY_MAX || msg[len - 1] != '\n' ||
	    msg[1] != ' ')
		return -1;
	if (msg[0] == '-') {
		if (n == 0 || n > ADMIN_REASON_MAX || !printable(msg + SIGN_AND_SPACE, n))
			return -1;
		memcpy(reason, msg + SIGN_AND_SPACE, n);
		reason[n] = '\0';
		return 0;
	}
	/* The object ends the line: a "\n" inside it would be a second message. */
	if (msg[0] != '+' || memchr(msg, '\n', len - 1) != NULL)
		return -1;
	o = json_loadb(msg + SIGN_AND_SPACE, n, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return -1;
	}
	*ok = true;
	*body = o;
	return 0;
}
