#include "server/session/command.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "server/policy/policy.h"

/* Reply text built line by line; a line that does not fit marks it failed. */
struct reply {
	char *text;
	size_t len, cap;
	bool failed;
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
			r->failed = true;
			return;
		}
		r->text = grown;
	}
	r->len += (size_t)snprintf(r->text + r->len, r->cap - r->len, "%s%s\r\n", prefix, name);
}

/* The decision sends r's text (taken over), or fails for memory. */
static void
with_reply(struct command_decision *d, enum command_verdict verdict, struct reply *r)
{
	if (r->failed) {
		free(r->text);
		d->verdict = VERDICT_NO_MEMORY;
		return;
	}
	d->verdict = verdict;
	d->text = r->text;
	d->len = r->len;
}

/* One reply line "PREFIXtext". */
static void
one_line(struct command_decision *d, enum command_verdict verdict, const char *prefix,
         const char *text)
{
	struct reply r = {0};

	reply_add(&r, prefix, text);
	with_reply(d, verdict, &r);
}

static void
refuse(struct command_decision *d, const char *reason)
{
	d->verdict = VERDICT_REFUSE;
	d->reason = reason;
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
		reply_add(&l->r, "", name);
}

/* RFC 1078: the service names, one per line, and close. */
static void
decide_help(const struct command_view *v, struct command_decision *d)
{
	struct listing l = {.caller = v->caller, .for_help = true};

	config_each_name(v->cfg, v->vhost, add_listed, &l);
	with_reply(d, VERDICT_FINISH, &l.r);
}

bool
command_tls_usable(const struct command_view *v)
{
	return !v->encrypted && v->caller == NULL;
}

static bool
always(const struct command_view *v)
{
	(void)v;
	return true;
}

/* HOST can select something only on a server with vhosts. */
static bool
host_usable(const struct command_view *v)
{
	return v->cfg->vhosts != NULL;
}

static bool
auth_usable(const struct command_view *v)
{
	return v->caller == NULL && v->auth_usable;
}

/* TOKEN and PROVEAUTH speak for an identity the session proved itself. */
static bool
own_identity(const struct command_view *v)
{
	return v->caller != NULL && v->caller->method != AUTH_TOKEN && !v->caller->anonymous;
}

static bool
token_usable(const struct command_view *v)
{
	return v->caller != NULL && v->caller->method != AUTH_TOKEN;
}

static bool
multiplex_usable(const struct command_view *v)
{
	return v->cfg->multiplex;
}

/* ATTACH resumes a detachable session: inside a transport unless plaintext is allowed. */
static bool
attach_usable(const struct command_view *v)
{
	return v->cfg->multiplex && v->cfg->detachable &&
	       (v->encrypted || v->cfg->detach_plaintext);
}

static bool
signkey_usable(const struct command_view *v)
{
	return v->signkey_usable;
}

/* The commands LIST names, in the order it names them, each when usable now. */
static const struct {
	const char *word;
	bool (*usable)(const struct command_view *v);
} listed_commands[] = {
        {"HELP", always},
        {"LIST", always},
        {"HOST", host_usable},
        {"QUIT", always},
        {"AUTH", auth_usable},
        {"TLS", command_tls_usable},
        {"TOKEN", token_usable},
        {"MULTIPLEX", multiplex_usable},
        {"ATTACH", attach_usable},
        {"PROVEAUTH", own_identity},
        {"GETSIGNKEY", signkey_usable},
};

/* "LIST NAME" for a command word: the word, in capitals, if usable now. */
static void
list_command(const struct command_view *v, const char *word, struct command_decision *d)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(listed_commands); i++)
		if (strcasecmp(word, listed_commands[i].word) == 0 &&
		    listed_commands[i].usable(v)) {
			one_line(d, VERDICT_REPLY, "+ ", listed_commands[i].word);
			return;
		}
	one_line(d, VERDICT_REPLY, "- ", "command not available");
}

/* "LIST NAME": the name, if this client may use it (a service) or use it now (a command). */
static void
list_one(const struct command_view *v, const char *name, struct command_decision *d)
{
	const struct service *svc;
	char lower[NAME_MAX_LEN + 1];

	if (name_reserved(name)) {
		list_command(v, name, d);
		return;
	}
	svc = config_lookup(v->cfg, v->vhost, name);
	if (svc != NULL && policy_check(svc, v->caller) == POLICY_GRANT) {
		/* The name as this view calls it, lowercase as LIST shows service names. */
		str_copy(lower, name, sizeof(lower));
		str_lower(lower);
		one_line(d, VERDICT_REPLY, "+ ", lower);
	} else
		one_line(d, VERDICT_REPLY, "- ", "unknown service");
}

/*
 * "+ LIST", then a name per line, as the report shows it: the commands
 * usable now (in capitals), the services this client may use (service
 * names are lowercase), and ".".
 */
static void
decide_list(const struct command_view *v, const struct cmd *c, struct command_decision *d)
{
	struct listing l = {.caller = v->caller};
	size_t i;

	if (c->nargs == 1) {
		list_one(v, c->args[0], d);
		return;
	}
	reply_add(&l.r, "+ ", "LIST");
	for (i = 0; i < ARRAY_LEN(listed_commands); i++)
		if (listed_commands[i].usable(v))
			reply_add(&l.r, "", listed_commands[i].word);
	config_each_name(v->cfg, v->vhost, add_listed, &l);
	reply_add(&l.r, "", ".");
	with_reply(d, VERDICT_REPLY, &l.r);
}

/*
 * An unknown vhost ends the session: a client that pipelined a service
 * request after HOST must not reach that name in another vhost.
 */
static void
select_host(const struct command_view *v, const char *name, struct command_decision *d)
{
	const struct vhost *vh = config_vhost(v->cfg, name);

	if (vh == NULL) {
		refuse(d, "unknown host");
		return;
	}
	one_line(d, VERDICT_HOST, "+ ", vh->name);
	d->vhost = vh;
}

/* Whether a name of a vhost is one LIST would show this caller there. */
struct vhost_seen {
	const struct caller *caller;
	bool seen;
};

static void
note_listed(void *arg, const char *name, const struct service *svc)
{
	struct vhost_seen *vs = arg;

	(void)name;
	if (policy_listed(svc, vs->caller, false))
		vs->seen = true;
}

/*
 * The slides' "HOST / + Success / Which VHOST? main": "+ HOST", the
 * vhosts this client may see (those where LIST would show it a service:
 * one whose every service is hidden from it is not named), ".", and the
 * next line names one.
 */
static void
ask_host(const struct command_view *v, struct command_decision *d)
{
	struct reply r = {0};
	const struct vhost *vh;
	struct vhost_seen vs;

	reply_add(&r, "+ ", "HOST");
	for (vh = v->cfg->vhosts; vh != NULL; vh = vh->next) {
		vs = (struct vhost_seen){.caller = v->caller};
		config_each_name(v->cfg, vh, note_listed, &vs);
		if (vs.seen)
			reply_add(&r, "", vh->name);
	}
	reply_add(&r, "", ".");
	with_reply(d, VERDICT_HOST_ASK, &r);
}

static void
decide_host(const struct command_view *v, const struct cmd *c, struct command_decision *d)
{
	if (c->nargs == 0)
		ask_host(v, d);
	else
		select_host(v, c->args[0], d);
}

void
command_decide_host_name(const struct command_view *v, const char *line, struct command_decision *d)
{
	char name[VHOST_MAX_LEN + 1];
	size_t start = strspn(line, " ");
	size_t len = strcspn(line + start, " ");

	memset(d, 0, sizeof(*d));
	if (len == 0)
		refuse(d, "empty request");
	else if (line[start + len + strspn(line + start + len, " ")] != '\0')
		refuse(d, "wrong number of arguments");
	else if (len > VHOST_MAX_LEN)
		refuse(d, "unknown host");
	else {
		memcpy(name, line + start, len);
		name[len] = '\0';
		select_host(v, name, d);
	}
}

static void
decide_service(const struct command_view *v, const struct cmd *c, struct command_decision *d)
{
	const struct service *svc = config_lookup(v->cfg, v->vhost, c->word);

	/* A service the client may not see answers exactly as one that does not exist. */
	if (svc == NULL || policy_check(svc, v->caller) == POLICY_HIDDEN)
		refuse(d, "unknown service");
	else if (policy_check(svc, v->caller) == POLICY_DENIED)
		refuse(d, "not permitted");
	else if (svc->encryption_required && !v->encrypted)
		refuse(d, "encryption required");
	else {
		d->verdict = VERDICT_GRANT;
		d->svc = svc;
	}
}

static void
decide_tls(const struct command_view *v, struct command_decision *d)
{
	if (v->encrypted)
		one_line(d, VERDICT_REPLY, "- ", "already encrypted");
	else if (v->caller != NULL)
		one_line(d, VERDICT_REPLY, "- ", "TLS must come before AUTH");
	else
		one_line(d, VERDICT_TLS, "+ ", "SUCCESS");
}

void
command_decide(const struct command_view *v, const struct cmd *c, struct command_decision *d)
{
	memset(d, 0, sizeof(*d));
	switch (c->kind) {
	case CMD_SERVICE:
		decide_service(v, c, d);
		break;
	case CMD_HELP:
		decide_help(v, d);
		break;
	case CMD_LIST:
		decide_list(v, c, d);
		break;
	case CMD_HOST:
		decide_host(v, c, d);
		break;
	case CMD_QUIT:
		one_line(d, VERDICT_FINISH, "+ ", "bye");
		break;
	case CMD_AUTH:
		d->verdict = VERDICT_AUTH;
		break;
	case CMD_TLS:
		decide_tls(v, d);
		break;
	case CMD_TOKEN:
		d->verdict = VERDICT_TOKEN;
		break;
	case CMD_MULTIPLEX:
		if (v->cfg->multiplex)
			one_line(d, VERDICT_MULTIPLEX, "+ ", "MULTIPLEX");
		else
			refuse(d, "command not supported");
		break;
	case CMD_ATTACH:
		/* attach.c answers "command not supported" when no session has the ticket. */
		d->verdict = VERDICT_ATTACH;
		break;
	case CMD_PROVEAUTH:
		d->verdict = VERDICT_PROVE;
		break;
	case CMD_GETSIGNKEY:
		d->verdict = VERDICT_SIGNKEY;
		break;
	}
}

void
command_decision_free(struct command_decision *d)
{
	free(d->text);
	d->text = NULL;
	d->len = 0;
}
