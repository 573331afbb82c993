/*
 * The text dialect: RFC 1078's request line and HELP, fived's LIST, HOST,
 * QUIT, AUTH, TLS and TOKEN.  Lines come from the session's held input;
 * replies go out through session_send, and a granted service through
 * session_start_service.
 */
#include "server/session/text.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "proto/line.h"
#include "server/policy/policy.h"
#include "server/session/auth.h"
#include "server/session/internal.h"
#include "server/session/sessiontoken.h"
#include "server/transport/tls.h"

static bool tls_usable(const struct session *s);

static int
send_line(struct session *s, const char *prefix, const char *text)
{
	char line[LINE_MAX_BYTES + 8];
	int n = snprintf(line, sizeof(line), "%s%s\r\n", prefix, text);

	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	return session_send(s, line, (size_t)n);
}

/* --- commands --------------------------------------------------------------- */

/* Reply text built from several lines. */
struct reply {
	char *text;
	size_t len, cap;
	int failed;
};

static void
reply_add(struct reply *r, const char *prefix, const char *name)
{
	size_t need = strlen(prefix) + strlen(name) + 3;
	char *grown;

	if (r->failed)
		return;
	if (r->len + need > r->cap) {
		r->cap = (r->len + need) * 2;
		if ((grown = realloc(r->text, r->cap)) == NULL) {
			r->failed = 1;
			return;
		}
		r->text = grown;
	}
	r->len += (size_t)snprintf(r->text + r->len, r->cap - r->len, "%s%s\r\n", prefix, name);
}

/* LIST and HELP show a service only to callers policy_listed allows. */
struct listing {
	struct reply r;
	const struct caller *caller;
	bool for_help;
};

static void
add_listed(void *arg, const char *name, const struct service *svc)
{
	struct listing *l = arg;

	if (policy_listed(svc, l->caller, l->for_help))
		reply_add(&l->r, l->for_help ? "" : "service ", name);
}

/* RFC 1078: the service names, one per line, and close. */
static void
cmd_help(struct session *s)
{
	struct listing l = {.caller = s->caller, .for_help = true};

	config_each_name(s->cfg, s->vhost, add_listed, &l);
	if (l.r.failed) {
		session_close(s, "out of memory");
	} else {
		session_audit(s, "help", NULL);
		session_finish_with(s, l.r.text, l.r.len);
	}
	free(l.r.text);
}

/* "+ LIST", a line per service and per command, and a line "." */
static void
cmd_list(struct session *s, const struct cmd *c)
{
	static const char *const commands[] = {"HELP", "LIST", "HOST", "QUIT"};
	struct listing l = {.caller = s->caller};
	const struct service *svc;
	size_t i;

	if (c->nargs == 1) {
		svc = config_lookup(s->cfg, s->vhost, c->args[0]);
		if (svc != NULL && policy_check(svc, s->caller) == POLICY_GRANT)
			send_line(s, "+ ", c->args[0]);
		else
			send_line(s, "- ", "unknown service");
		return;
	}
	reply_add(&l.r, "+ ", "LIST");
	config_each_name(s->cfg, s->vhost, add_listed, &l);
	/* Every command usable now, and only those. */
	for (i = 0; i < ARRAY_LEN(commands); i++)
		reply_add(&l.r, "command ", commands[i]);
	if (s->caller == NULL &&
	    (auth_method_usable(s, AUTH_PUBKEY) || auth_method_usable(s, AUTH_PASSWORD)))
		reply_add(&l.r, "command ", "AUTH");
	if (tls_usable(s))
		reply_add(&l.r, "command ", "TLS");
	if (s->caller != NULL && s->caller->method != AUTH_TOKEN)
		reply_add(&l.r, "command ", "TOKEN");
	reply_add(&l.r, "", ".");
	if (l.r.failed || session_send(s, l.r.text, l.r.len) != 0)
		session_close(s, "out of memory");
	free(l.r.text);
}

static void
cmd_host(struct session *s, const struct cmd *c)
{
	const struct vhost *vh = config_vhost(s->cfg, c->args[0]);

	/*
	 * An unknown vhost ends the session: a client that pipelined a service
	 * request after HOST must not reach that name in another vhost.
	 */
	if (vh == NULL) {
		session_refuse(s, "unknown host");
		return;
	}
	s->vhost = vh;
	send_line(s, "+ ", vh->name);
}

static void
cmd_service(struct session *s, const struct cmd *c)
{
	const char *why;

	str_copy(s->requested, c->word, sizeof(s->requested));
	/* "SERVICE TOKEN": the token's identity, if it is valid for this service. */
	if (c->nargs > 0 && session_token_take(s, c->word, c->args[0], &why) == NULL) {
		session_audit(s, "token_refused", json_pack("{s:s}", "reason", why));
		session_refuse(s, "invalid token");
		return;
	}
	s->svc = config_lookup(s->cfg, s->vhost, c->word);
	/* A service the client may not see answers exactly as one that does not exist. */
	if (s->svc == NULL || policy_check(s->svc, s->caller) == POLICY_HIDDEN) {
		session_refuse(s, "unknown service");
		return;
	}
	if (policy_check(s->svc, s->caller) == POLICY_DENIED) {
		session_refuse(s, "not permitted");
		return;
	}
	if (s->svc->encryption_required && !s->encrypted) {
		session_refuse(s, "encryption required");
		return;
	}
	session_start_service(s, s->svc);
}

/* Whether TLS may start now: not inside another encryption, not after AUTH. */
static bool
tls_usable(const struct session *s)
{
	return !s->encrypted && s->caller == NULL;
}

/*
 * "+ SUCCESS", then TLS: what the client sent after the line is the start
 * of its ClientHello.  Only before AUTH, so that an identity is never
 * established outside the channel it is then used in.
 */
static void
cmd_tls(struct session *s)
{
	if (s->encrypted) {
		send_line(s, "- ", "already encrypted");
		return;
	}
	if (s->caller != NULL) {
		send_line(s, "- ", "TLS must come before AUTH");
		return;
	}
	/*
	 * Nothing chosen in plaintext survives into TLS (the STARTTLS
	 * injection pattern): a HOST an attacker slipped in before the
	 * client's TLS must not hold inside it.
	 */
	s->vhost = NULL;
	s->requested[0] = '\0';
	if (!tls_admit(s->site, s->cfg, s->source_key)) {
		session_refuse(s, "too many handshakes from your address");
		return;
	}
	if (send_line(s, "+ ", "SUCCESS") != 0) {
		session_close(s, "out of memory");
		return;
	}
	session_start_tls(s);
}

static void
handle_line(struct session *s, const char *line)
{
	struct cmd c;
	const char *why;

	if (++s->commands > COMMANDS_MAX) {
		session_refuse(s, "too many commands");
		return;
	}
	if (cmd_parse(line, &c, &why) != 0) {
		session_refuse(s, why);
		return;
	}
	switch (c.kind) {
	case CMD_SERVICE:
		cmd_service(s, &c);
		break;
	case CMD_HELP:
		cmd_help(s);
		break;
	case CMD_LIST:
		cmd_list(s, &c);
		break;
	case CMD_HOST:
		cmd_host(s, &c);
		break;
	case CMD_QUIT:
		session_finish_with(s, "+ bye\r\n", 7);
		break;
	case CMD_AUTH:
		auth_begin(s, &c);
		break;
	case CMD_TLS:
		cmd_tls(s);
		break;
	case CMD_TOKEN:
		session_token_command(s, &c);
		break;
	}
}

void
text_take(struct session *s)
{
	char line[LINE_MAX_BYTES];
	size_t used;

	while (s->state == S_COMMAND || s->state == S_AUTH) {
		if (uv_stream_get_write_queue_size(&s->client.stream) > REPLY_BACKLOG_MAX) {
			session_close(s, "client does not read replies");
			return;
		}
		switch (line_take(s->in.data, s->in.len, line, &used)) {
		case LINE_OK:
			buf_consume(&s->in, used);
			if (s->state == S_AUTH)
				auth_line(s, line);
			else
				handle_line(s, line);
			sodium_memzero(line, sizeof(line));
			break;
		case LINE_TOO_LONG:
			session_refuse(s, "line too long");
			return;
		case LINE_BAD_BYTE:
			session_refuse(s, "invalid character in request");
			return;
		case LINE_NEED_MORE:
			if (s->client_eof_early)
				session_ended_before_request(s);
			return;
		}
	}
}
