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
#include "server/session/attach.h"
#include "server/session/auth.h"
#include "server/session/command.h"
#include "server/session/internal.h"
#include "server/session/muxsession.h"
#include "server/session/proof.h"
#include "server/session/sessiontoken.h"
#include "server/transport/tls.h"

/* --- commands: command.c decides, this carries it out --------------------- */

static void
view_of(const struct session *s, struct command_view *v)
{
	*v = (struct command_view){
	        .cfg = s->cfg,
	        .vhost = s->vhost,
	        .caller = s->caller,
	        .encrypted = s->encrypted,
	        .auth_usable =
	                auth_method_usable(s, AUTH_PUBKEY) || auth_method_usable(s, AUTH_PASSWORD),
	        .signkey_usable = s->site->provider[0] != '\0',
	};
}

/*
 * TLS: nothing chosen in plaintext survives into it (the STARTTLS
 * injection pattern): a HOST an attacker slipped in before the client's
 * TLS must not hold inside it.
 */
static void
start_tls(struct session *s, const struct command_decision *d)
{
	s->vhost = NULL;
	s->requested[0] = '\0';
	if (!tls_admit(s->site, s->cfg, s->source_key)) {
		session_refuse(s, "too many handshakes from your address");
		return;
	}
	if (session_send(s, d->text, d->len) != 0) {
		session_close(s, "out of memory");
		return;
	}
	session_start_tls(s);
}

/* "SERVICE TOKEN": the token's identity, if it is valid for this service.  0, or -1 when refused.
 */
static int
take_token(struct session *s, const struct cmd *c)
{
	const char *why;

	if (c->nargs == 0 || session_token_take(s, c->word, c->args[0], &why) != NULL)
		return 0;
	metrics_auth_failed(&s->site->metrics, AUTH_TOKEN);
	session_audit(s, "token_refused", json_pack("{s:s}", "reason", why));
	session_refuse(s, "invalid token");
	return -1;
}

static void
carry_out(struct session *s, const struct cmd *c, const struct command_decision *d)
{
	const char *why;

	switch (d->verdict) {
	case VERDICT_REPLY:
		session_send(s, d->text, d->len);
		break;
	case VERDICT_FINISH:
		if (c->kind == CMD_HELP)
			session_audit(s, "help", NULL);
		session_finish_with(s, d->text, d->len);
		break;
	case VERDICT_REFUSE:
		session_refuse(s, d->reason);
		break;
	case VERDICT_GRANT:
		if ((why = session_refusal_now(s, c->word, s->caller, "unknown service")) != NULL)
			session_refuse(s, why);
		else
			session_start_service(s, d->svc);
		break;
	case VERDICT_HOST:
		s->vhost = d->vhost;
		session_send(s, d->text, d->len);
		break;
	case VERDICT_HOST_ASK:
		s->host_asked = true;
		session_send(s, d->text, d->len);
		break;
	case VERDICT_AUTH:
		auth_begin(s, c);
		break;
	case VERDICT_TLS:
		start_tls(s, d);
		break;
	case VERDICT_TOKEN:
		session_token_command(s, c);
		break;
	case VERDICT_MULTIPLEX:
		session_start_mux(s, d->text, d->len);
		break;
	case VERDICT_PROVE:
		session_prove_command(s, c);
		break;
	case VERDICT_SIGNKEY:
		session_signkey_command(s);
		break;
	case VERDICT_ATTACH:
		attach_command(s, c);
		break;
	case VERDICT_NO_MEMORY:
		session_close(s, "out of memory");
		break;
	}
}

/* The line after a bare HOST: the vhost it names, as "HOST name". */
static void
take_host_name(struct session *s, const char *line)
{
	struct command_decision d;
	struct command_view v;

	s->host_asked = false;
	view_of(s, &v);
	command_decide_host_name(&v, line, &d);
	if (d.verdict == VERDICT_HOST) {
		s->vhost = d.vhost;
		session_send(s, d.text, d.len);
	} else if (d.verdict == VERDICT_REFUSE) {
		session_refuse(s, d.reason);
	} else {
		session_close(s, "out of memory");
	}
	command_decision_free(&d);
}

static void
handle_line(struct session *s, const char *line)
{
	struct command_decision d;
	struct command_view v;
	struct cmd c;
	const char *why;

	if (++s->commands > COMMANDS_MAX) {
		session_refuse(s, "too many commands");
		return;
	}
	if (s->host_asked) {
		take_host_name(s, line);
		return;
	}
	if (cmd_parse(line, &c, &why) != 0) {
		session_refuse(s, why);
		return;
	}
	if (c.kind != CMD_ATTACH && c.kind != CMD_TLS && session_only_attaches(s))
		return;
	if (c.kind == CMD_SERVICE) {
		str_copy(s->requested, c.word, sizeof(s->requested));
		if (take_token(s, &c) != 0)
			return;
	}
	view_of(s, &v);
	command_decide(&v, &c, &d);
	carry_out(s, &c, &d);
	command_decision_free(&d);
	sodium_memzero(&c, sizeof(c));
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
