#include "server/session/uspsession.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/util.h"
#include "proto/usp.h"
#include "server/policy/policy.h"
#include "server/policy/site.h"
#include "server/policy/tokens.h"
#include "server/session/auth.h"
#include "server/session/muxsession.h"
#include "server/session/proof.h"
#include "server/session/sessiontoken.h"

_Static_assert(SESSION_IN_MAX >= USP_LINE_MAX, "a whole USP message must fit in s->in");

/* A stream's verdict when the session must authenticate first. */
static const char NEEDS_AUTH[] = "authentication required";

/* Owned by the session (s->usp). */
struct usp_session {
	struct usp_ids ids;
	struct usp_msg waiting; /* the initialize an authentication is for */
	bool have_waiting;
	char *presented; /* the token the token method authenticated with; owned */
	/* The email's forms (section 8.7): */
	char authz[USP_AUTHZ_HEX + 1];  /* the authorization token issued here; "" none */
	char (*menu)[NAME_MAX_LEN + 1]; /* the last numbered menu: index i + 1 is menu[i]; owned */
	size_t nmenu;
};

/* One stream judged: NULL verdict when granted, with its service and token caller. */
struct judgement {
	const char *verdict;
	const struct service *svc;
	struct caller *caller; /* granted by a token: its caller, owned here */
	struct token_claims claims;
};

int
usp_session_start(struct session *s)
{
	struct usp_session *z = calloc(1, sizeof(*z));

	if (z == NULL)
		return -1;
	str_copy(z->ids.server, s->id, sizeof(z->ids.server));
	s->usp = z;
	return 0;
}

void
usp_session_free(struct session *s)
{
	struct usp_session *z = s->usp;

	if (z == NULL)
		return;
	usp_msg_free(&z->waiting);
	free(z->presented);
	free(z->menu);
	sodium_memzero(z->authz, sizeof(z->authz));
	free(z);
	s->usp = NULL;
}

/* --- replies ------------------------------------------------------------------ */

/*
 * Sends an encoder's result: r its return, out and len what it wrote (read
 * only after it returned).  Returns 0, or -1 after closing.
 */
static int
send_encoded(struct session *s, int r, char *out, size_t len)
{
	if (r == 0)
		r = session_send(s, out, len);
	free(out);
	if (r != 0)
		session_close(s, "cannot encode a USP message");
	return r;
}

int
usp_send_connect(struct session *s)
{
	char *out = NULL;
	size_t len = 0;
	int r = usp_encode_connect(&s->usp->ids, s->requested, &out, &len);

	return send_encoded(s, r, out, len);
}

void
usp_send_redirect(struct session *s, const struct redirect *r)
{
	char *out = NULL;
	size_t len = 0;

	if (usp_encode_redirect(&s->usp->ids, s->requested, r, &out, &len) != 0) {
		session_close(s, "cannot encode a USP message");
		return;
	}
	session_refuse_with(s, "redirect", out, len);
	free(out);
}

void
usp_send_authenticate(struct session *s, enum auth_method method)
{
	char *out = NULL;
	size_t len = 0;
	int r = usp_encode_authenticate(&s->usp->ids, method, &out, &len);

	send_encoded(s, r, out, len);
}

void
usp_send_challenge(struct session *s, const uint8_t nonce[AUTH_NONCE_LEN])
{
	char *out = NULL;
	size_t len = 0;
	int r = usp_encode_challenge(&s->usp->ids, s->id, nonce, &out, &len);

	send_encoded(s, r, out, len);
}

void
usp_send_prompt(struct session *s, enum pamconv_kind kind, const char *text)
{
	static const enum usp_prompt_kind kinds[] = {
	        [PAMCONV_PROMPT_ECHO_OFF] = USP_PROMPT_ECHO_OFF,
	        [PAMCONV_PROMPT_ECHO_ON] = USP_PROMPT_ECHO_ON,
	        [PAMCONV_INFO] = USP_PROMPT_INFO,
	        [PAMCONV_ERROR] = USP_PROMPT_ERROR,
	};
	char *out = NULL;
	size_t len = 0;
	int r = usp_encode_prompt(&s->usp->ids, kinds[kind], text, &out, &len);

	send_encoded(s, r, out, len);
}

/* An error about the stream asked for (if any), listing supported[0..n) when n > 0. */
static void
refuse_listing(struct session *s, const char *reason, const char *text,
               const enum auth_method *supported, size_t n)
{
	const char *app = s->requested[0] != '\0' ? s->requested : NULL;
	char *out = NULL;
	size_t len = 0;

	if (usp_encode_error(&s->usp->ids, text, app, n > 0 ? supported : NULL, n, &out, &len) !=
	    0) {
		session_close(s, "cannot encode a USP message");
		return;
	}
	session_refuse_with(s, reason, out, len);
	free(out);
}

void
usp_refuse(struct session *s, const char *reason, const char *text)
{
	refuse_listing(s, reason, text, NULL, 0);
}

/* --- judging streams ------------------------------------------------------------ */

static void
judgement_free(struct judgement *j)
{
	caller_free(j->caller);
	j->caller = NULL;
}

static void
judge_token(struct session *s, const struct usp_stream *st, struct judgement *j)
{
	const char *why;

	j->caller = session_token_check(s, st->application, st->token, &j->claims, &why);
	if (j->caller == NULL) {
		metrics_auth_failed(&s->site->metrics, AUTH_TOKEN);
		session_audit(s, "token_refused",
		              json_pack("{s:s,s:s}", "service", st->application, "reason", why));
		j->verdict = "invalid token";
		return;
	}
	j->svc = config_lookup(s->cfg, s->vhost, st->application);
	if (j->svc->encryption_required && !s->encrypted)
		j->verdict = "encryption required";
}

/* A stream without a token, for the session's caller. */
static void
judge_caller(struct session *s, const struct usp_stream *st, struct judgement *j)
{
	enum verdict v;

	j->svc = config_lookup(s->cfg, s->vhost, st->application);
	v = j->svc != NULL ? policy_check(j->svc, s->caller) : POLICY_HIDDEN;
	if (v == POLICY_HIDDEN)
		j->verdict = s->caller == NULL ? NEEDS_AUTH : "unknown application";
	else if (v == POLICY_DENIED)
		j->verdict = "not permitted";
	else if (j->svc->encryption_required && !s->encrypted)
		j->verdict = "encryption required";
}

/*
 * A granted stream's parameters (section 8.8): NULL when svc accepts
 * them all.  A redirected stream carries none here: its client takes them
 * to where the service lives.
 */
static const char *
parameters_verdict(const struct service *svc, const char *parameters)
{
	char name[PARAMS_NAME_MAX + 1];
	enum params_status st;

	if (parameters == NULL || svc->backend == BACKEND_REDIRECT)
		return NULL;
	if (svc->params.n == 0)
		return "parameters not accepted";
	st = params_check(parameters, strlen(parameters), &svc->params, name);
	return st == PARAMS_OK ? NULL : params_status_text(st);
}

/* Decides one stream for the session as it is now (section 8.4). */
static void
judge(struct session *s, const struct usp_stream *st, struct judgement *j)
{
	memset(j, 0, sizeof(*j));
	if (st->token != NULL)
		judge_token(s, st, j);
	else
		judge_caller(s, st, j);
	if (j->verdict == NULL)
		j->verdict = session_refusal_now(s, st->application,
		                                 j->caller != NULL ? j->caller : s->caller,
		                                 st->token != NULL   ? "invalid token"
		                                 : s->caller == NULL ? NEEDS_AUTH
		                                                     : "unknown application");
	if (j->verdict == NULL)
		j->verdict = parameters_verdict(j->svc, st->parameters);
}

/* --- tokens for streams ----------------------------------------------------------- */

/*
 * A granted stream's token: the one it came with, the one authenticated
 * with (for its own service only: any other a token caller may use is open
 * to all), or a new one.
 */
static const char *
token_for(struct session *s, const struct usp_stream *st, const struct service *svc, char *fresh,
          const char **why)
{
	const struct caller *c = s->caller;

	if (st->token != NULL)
		return st->token;
	if (c != NULL && c->method == AUTH_TOKEN && s->usp->presented != NULL &&
	    strcmp(c->only_app, svc->name) == 0)
		return s->usp->presented;
	if (c == NULL || c->method == AUTH_TOKEN) {
		*why = "no token needed";
		return NULL;
	}
	return session_token_issue(s, st->application, "", 0, fresh, why) == 0 ? fresh : NULL;
}

/* One stream's entry in an answer: *token (fresh holds a new one), or *error. */
static void
stream_result(struct session *s, const struct usp_stream *st, char *fresh, const char **token,
              const char **error)
{
	struct judgement j;

	judge(s, st, &j);
	*error = j.verdict;
	*token = NULL;
	if (j.verdict == NULL)
		*token = token_for(s, st, j.svc, fresh, error);
	judgement_free(&j);
}

/* Sends "token" for streams[from..n) of m; returns 0, or -1 when the session ended. */
static int
send_tokens(struct session *s, const struct usp_msg *m, size_t from)
{
	struct usp_token_result res[USP_STREAMS_MAX] = {{0}};
	char *fresh = malloc(USP_STREAMS_MAX * PASETO_TOKEN_SIZE), *out = NULL;
	const char *identity =
	        s->caller != NULL && !s->caller->anonymous ? s->caller->identity : NULL;
	size_t i, n = 0, len = 0;
	int r;

	if (fresh == NULL) {
		session_close(s, "out of memory");
		return -1;
	}
	for (i = from; i < m->nstreams; i++, n++) {
		res[n].application = m->streams[i].application;
		stream_result(s, &m->streams[i], fresh + n * PASETO_TOKEN_SIZE, &res[n].token,
		              &res[n].error);
	}
	r = usp_encode_token(&s->usp->ids, identity, res, n, &out, &len);
	sodium_memzero(fresh, USP_STREAMS_MAX * PASETO_TOKEN_SIZE);
	free(fresh);
	return send_encoded(s, r, out, len);
}

static void answer_services(struct session *s, const struct usp_msg *m, bool authenticated);

void
usp_authenticated(struct session *s)
{
	struct usp_session *z = s->usp;

	if (!z->have_waiting)
		return;
	if (z->waiting.type == USP_SERVICE_REQUEST)
		answer_services(s, &z->waiting, true);
	else
		send_tokens(s, &z->waiting, 0);
	usp_msg_free(&z->waiting);
	z->have_waiting = false;
}

/* --- messages ---------------------------------------------------------------------- */

/* initialize and menu may name a vhost, once. */
static int
select_vhost(struct session *s, const struct usp_msg *m)
{
	const struct vhost *vh;

	if (m->vhost[0] == '\0')
		return 0;
	if ((vh = config_vhost(s->cfg, m->vhost)) == NULL) {
		usp_refuse(s, "unknown host", "unknown host");
		return -1;
	}
	if (s->vhost != NULL && s->vhost != vh) {
		usp_refuse(s, "malformed message", "malformed message: the vhost cannot change");
		return -1;
	}
	s->vhost = vh;
	return 0;
}

/* The methods this session may use now, in fived's order: their number. */
static size_t
usable_methods(const struct session *s, enum auth_method out[AUTH_METHOD_COUNT])
{
	size_t i, n = 0;

	for (i = 0; i < AUTH_METHOD_COUNT; i++)
		if (auth_method_usable(s, (enum auth_method)i))
			out[n++] = (enum auth_method)i;
	return n;
}

/* Flow 2, or 4 and 6: the first stream needs an identity the session does not have. */
static void
ask_authentication(struct session *s, struct usp_msg *m)
{
	enum auth_method usable[AUTH_METHOD_COUNT];
	size_t i, n = usable_methods(s, usable);

	if (!m->offered_protocols) {
		usp_refuse(s, "unknown service", "unknown application");
		return;
	}
	for (i = 0; i < m->nprotocols && !auth_method_usable(s, m->protocols[i]); i++)
		;
	if (i == m->nprotocols) {
		refuse_listing(s, "no common authentication protocol",
		               "no common authentication protocol", usable, n);
		return;
	}
	s->usp->waiting = *m;
	s->usp->have_waiting = true;
	memset(m, 0, sizeof(*m));
	session_start_auth_timer(s);
	auth_start(s, s->usp->waiting.protocols[i]);
}

/* Whether a stream from the first'th on, one without a token, needs an identity the session lacks.
 */
static bool
needs_auth_from(struct session *s, const struct usp_msg *m, size_t first)
{
	struct judgement j;
	bool needs = false;
	size_t i;

	for (i = first; i < m->nstreams && !needs; i++) {
		if (m->streams[i].token != NULL)
			continue;
		judge(s, &m->streams[i], &j);
		needs = j.verdict == NEEDS_AUTH;
		judgement_free(&j);
	}
	return needs;
}

/*
 * "multiplex": the streams are carried inside this connection, each
 * granted or refused on its own (streams 1, 3, 5... in the order named),
 * and the client may open more (section 11).  Authentication first when
 * some stream needs it and protocols were offered (flow 2).
 */
static void
start_multiplex(struct session *s, struct usp_msg *m)
{
	char *out = NULL;
	size_t i, len = 0;
	int r;

	if (!s->cfg->multiplex) {
		usp_refuse(s, "command not supported", "multiplex not supported");
		return;
	}
	for (i = 0; i < m->nstreams; i++) {
		if (m->streams[i].parameters != NULL) {
			usp_refuse(s, "malformed message",
			           "malformed message: parameters go with a stream of its own "
			           "connection");
			return;
		}
	}
	if (m->offered_protocols && needs_auth_from(s, m, 0)) {
		ask_authentication(s, m);
		return;
	}
	r = usp_encode_multiplex(&s->usp->ids, &out, &len);
	if (r != 0) {
		free(out);
		session_close(s, "cannot encode a USP message");
		return;
	}
	r = session_enter_mux(s, out, len);
	free(out);
	if (r != 0)
		return;
	for (i = 0; i < m->nstreams && s->state == S_MUX; i++)
		mux_open(s->mux, m->streams[i].application, m->streams[i].token);
	session_mux_take_held(s);
}

/* Flow 2 when some stream needs authentication and protocols were offered (section 8.4). */
static void
on_initialize(struct session *s, struct usp_msg *m)
{
	struct judgement j;

	if (select_vhost(s, m) != 0)
		return;
	if (m->multiplex) {
		start_multiplex(s, m);
		return;
	}
	str_copy(s->requested, m->streams[0].application, sizeof(s->requested));
	judge(s, &m->streams[0], &j);
	if (j.verdict == NEEDS_AUTH ||
	    (j.verdict == NULL && m->offered_protocols && needs_auth_from(s, m, 1))) {
		ask_authentication(s, m);
	} else if (j.verdict != NULL) {
		usp_refuse(s, j.verdict, j.verdict);
	} else if (m->nstreams == 1 || send_tokens(s, m, 1) == 0) {
		if (j.caller != NULL)
			session_take_caller(s, j.caller, &j.claims);
		j.caller = NULL;
		s->parameters = m->streams[0].parameters;
		m->streams[0].parameters = NULL;
		session_start_service(s, j.svc);
	}
	judgement_free(&j);
}

struct menu {
	struct usp_menu_entry *apps; /* grown as names come; owned */
	size_t n, cap;
	bool failed;
	const struct session *s;
};

static void
add_to_menu(void *arg, const char *name, const struct service *svc)
{
	struct menu *menu = arg;
	struct usp_menu_entry *grown;

	if (menu->failed || policy_check(svc, menu->s->caller) != POLICY_GRANT)
		return;
	if (menu->n == menu->cap) {
		menu->cap = menu->cap * 2 + 8;
		if ((grown = realloc(menu->apps, menu->cap * sizeof(*grown))) == NULL) {
			menu->failed = true;
			return;
		}
		menu->apps = grown;
	}
	menu->apps[menu->n].application = name;
	menu->apps[menu->n].needs_authentication = false;
	menu->apps[menu->n].needs_encryption = svc->encryption_required && !menu->s->encrypted;
	menu->n++;
}

/* The applications the session may use now, in configuration order: menu->apps, owned. */
static int
collect_menu(struct session *s, struct menu *menu)
{
	config_each_name(s->cfg, s->vhost, add_to_menu, menu);
	session_audit(s, "menu", NULL);
	return menu->failed ? -1 : 0;
}

static void
on_menu(struct session *s, const struct usp_msg *m)
{
	struct menu menu = {.s = s};
	char *out = NULL;
	size_t len = 0;
	int r;

	if (select_vhost(s, m) != 0)
		return;
	r = collect_menu(s, &menu);
	if (r == 0)
		r = usp_encode_menu(&s->usp->ids, menu.apps, menu.n, &out, &len);
	free(menu.apps);
	send_encoded(s, r, out, len);
}

/*
 * Possessing a valid token is the right to give it up: revokes those of
 * m->tokens that are authentic, unexpired and not revoked yet (even while
 * the revocations are out of date, when it is most needed), counted in
 * *count.  -1 after refusing.
 */
static int
revoke_tokens(struct session *s, const struct usp_msg *m, size_t *count)
{
	struct token_claims c;
	uint64_t now = (uint64_t)time(NULL);
	const char *why;
	size_t i;
	int r;

	*count = 0;
	for (i = 0; i < m->ntokens; i++) {
		if (tokens_open_to_revoke(s->site->tokens, m->tokens[i], now, &c, &why) != 0 ||
		    tokens_is_revoked(s->site->tokens, c.jti, now))
			continue;
		/* A revocation that cannot be recorded (everywhere) is said, never counted as done.
		 */
		if ((r = tokens_revoke(s->site->tokens, &c, now)) != TOKENS_REVOKED) {
			session_audit(s, "token_revoke_failed",
			              json_pack("{s:s,s:s}", "service", c.app, "jti", c.jti));
			why = r == TOKENS_REVOKED_HERE ? REVOKED_HERE
			                               : "cannot record the revocation";
			usp_refuse(s, why, why);
			return -1;
		}
		(*count)++;
		session_audit(s, "token_revoked",
		              json_pack("{s:s,s:s}", "service", c.app, "jti", c.jti));
	}
	return 0;
}

static void
on_invalidate(struct session *s, const struct usp_msg *m)
{
	char *out = NULL;
	size_t count, len = 0;
	int r;

	if (revoke_tokens(s, m, &count) != 0)
		return;
	r = usp_encode_invalidated(&s->usp->ids, count, &out, &len);
	send_encoded(s, r, out, len);
}

/* --- the email's forms (section 8.7) ------------------------------------------------- */

/* Keeps the names of a numbered menu sent, for the indices of requested_services. */
static int
remember_menu(struct usp_session *z, const struct menu *menu)
{
	char(*names)[NAME_MAX_LEN + 1] = calloc(menu->n + 1, sizeof(*names));
	size_t i;

	if (names == NULL)
		return -1;
	for (i = 0; i < menu->n; i++)
		str_copy(names[i], menu->apps[i].application, sizeof(names[i]));
	free(z->menu);
	z->menu = names;
	z->nmenu = menu->n;
	return 0;
}

/*
 * The numbered menu of the session as it is now, remembered: index 0 the
 * methods it may use (methods[]) or, authenticated, token invalidation.
 * menu->apps is the caller's to free.
 */
static int
numbered_menu(struct session *s, struct menu *menu, enum auth_method methods[AUTH_METHOD_COUNT],
              struct usp_app_menu *am)
{
	if (collect_menu(s, menu) != 0 || remember_menu(s->usp, menu) != 0)
		return -1;
	am->authenticated = s->caller != NULL;
	am->methods = methods;
	am->nmethods = am->authenticated ? 0 : usable_methods(s, methods);
	am->apps = menu->apps;
	am->napps = menu->n;
	return 0;
}

/* An authorization_token is none, or the one this connection issued: nothing else is taken. */
static int
check_authz(struct session *s, const struct usp_msg *m)
{
	const struct usp_session *z = s->usp;

	if (m->authz_kind == USP_AUTHZ_NULL ||
	    (m->authz_kind == USP_AUTHZ_GIVEN && z->authz[0] != '\0' &&
	     sodium_memcmp(m->authz, z->authz, USP_AUTHZ_HEX) == 0))
		return 0;
	usp_refuse(s, "invalid authorization token", "invalid authorization token");
	return -1;
}

static void
send_app_menu(struct session *s)
{
	enum auth_method methods[AUTH_METHOD_COUNT];
	struct menu menu = {.s = s};
	struct usp_app_menu am;
	char *out = NULL;
	size_t len = 0;
	int r = numbered_menu(s, &menu, methods, &am);

	if (r == 0)
		r = usp_encode_app_menu(&s->usp->ids, &am, &out, &len);
	free(menu.apps);
	send_encoded(s, r, out, len);
}

/* An authorization token for the email's client: a name for this connection's identity. */
static void
issue_authz(struct usp_session *z)
{
	uint8_t raw[USP_AUTHZ_HEX / 2];

	randombytes_buf(raw, sizeof(raw));
	hex_encode(raw, sizeof(raw), z->authz);
	sodium_memzero(raw, sizeof(raw));
}

/*
 * The answer to requested_services: index 0's invalidation, a token or an
 * error for each application, and after an authentication the
 * authorization token and the new menu.
 */
static void
answer_services(struct session *s, const struct usp_msg *m, bool authenticated)
{
	struct usp_service_result res[USP_STREAMS_MAX] = {{0}};
	struct usp_service_answer a = {.results = res, .nresults = m->nservices};
	enum auth_method methods[AUTH_METHOD_COUNT];
	struct menu menu = {.s = s};
	struct usp_app_menu am;
	char *fresh = malloc(USP_STREAMS_MAX * PASETO_TOKEN_SIZE), *out = NULL;
	size_t i, len = 0;
	int r = -1;

	if (fresh == NULL)
		goto send;
	if (m->invalidate) {
		if (revoke_tokens(s, m, &a.count) != 0)
			goto done;
		a.invalidated = true;
	}
	for (i = 0; i < m->nservices; i++) {
		res[i].index = m->services[i];
		stream_result(s, &m->streams[i], fresh + i * PASETO_TOKEN_SIZE, &res[i].token,
		              &res[i].error);
	}
	if (authenticated) {
		issue_authz(s->usp);
		a.authz = s->usp->authz;
		a.menu = &am;
		if (numbered_menu(s, &menu, methods, &am) != 0)
			goto send;
	}
	r = usp_encode_service_answer(&s->usp->ids, &a, &out, &len);
send:
	send_encoded(s, r, out, len);
done:
	free(menu.apps);
	if (fresh != NULL)
		sodium_memzero(fresh, USP_STREAMS_MAX * PASETO_TOKEN_SIZE);
	free(fresh);
}

/* requested_services by index, into the names of the menu last sent ("" for none: unknown). */
static void
resolve_indices(const struct usp_session *z, struct usp_msg *m)
{
	size_t i;

	for (i = 0; i < m->nservices; i++)
		if (m->services[i] <= z->nmenu)
			str_copy(m->streams[i].application, z->menu[m->services[i] - 1],
			         sizeof(m->streams[i].application));
	m->nstreams = m->nservices;
}

static void
on_service_request(struct session *s, struct usp_msg *m)
{
	if (check_authz(s, m) != 0)
		return;
	resolve_indices(s->usp, m);
	if (!m->authenticate) {
		answer_services(s, m, false);
	} else if (s->caller != NULL) {
		usp_refuse(s, "already authenticated", "already authenticated");
	} else {
		ask_authentication(s, m);
	}
}

/* application_session "begin": flow 3 for the token's own application, in its own vhost. */
static void
begin_application(struct session *s, struct usp_msg *m)
{
	struct token_claims c;
	const char *why;

	if (tokens_open(s->site->tokens, m->tokens[0], (uint64_t)time(NULL), &c, &why) != 0) {
		metrics_auth_failed(&s->site->metrics, AUTH_TOKEN);
		session_audit(s, "token_refused", json_pack("{s:s}", "reason", why));
		usp_refuse(s, "invalid token", "invalid token");
		return;
	}
	str_copy(m->vhost, c.vhost, sizeof(m->vhost));
	str_copy(m->streams[0].application, c.app, sizeof(m->streams[0].application));
	m->streams[0].token = m->tokens[0];
	m->tokens[0] = NULL;
	m->ntokens = 0;
	m->nstreams = 1;
	on_initialize(s, m);
}

/* The email's first request: the menu, or an application begun or ended with its token. */
static void
on_session_request(struct session *s, struct usp_msg *m)
{
	/* "Ignore authorization_token as it's only meant for menu access." */
	if (m->action == USP_ACTION_BEGIN)
		begin_application(s, m);
	else if (m->action == USP_ACTION_END)
		on_invalidate(s, m);
	else if (check_authz(s, m) == 0)
		send_app_menu(s);
}

/* A proof of the session's identity; a refusal ends the connection, as every USP error does. */
static void
on_proveauth(struct session *s, const struct usp_msg *m)
{
	char proof[PROOF_SIZE], *out = NULL;
	const char *why;
	size_t len = 0;
	int r;

	if (session_prove(s, m->hash, 0, proof, &why) != 0) {
		usp_refuse(s, why, why);
		return;
	}
	r = usp_encode_proof(&s->usp->ids, proof, &out, &len);
	send_encoded(s, r, out, len);
}

static void
on_getsignkey(struct session *s)
{
	char key[PROOF_KEY_B64_SIZE], *out = NULL;
	const char *provider;
	size_t len = 0;
	int r;

	session_signkey(s, key, &provider);
	if (provider[0] == '\0') {
		usp_refuse(s, "no provider name", "no provider name");
		return;
	}
	r = usp_encode_signkey(&s->usp->ids, key, provider, &out, &len);
	send_encoded(s, r, out, len);
}

/* A message of the authentication exchange, as the text dialect's line would be. */
static void
on_exchange(struct session *s, const struct usp_msg *m)
{
	struct auth_line l;

	memset(&l, 0, sizeof(l));
	str_copy(l.user, m->user, sizeof(l.user));
	switch (m->type) {
	case USP_PUBKEY:
		l.has_key = true;
		memcpy(l.pk, m->pk, sizeof(l.pk));
		break;
	case USP_PASSWORD:
		break;
	case USP_SIGNATURE:
		l.kind = AUTH_LINE_SIGNATURE;
		memcpy(l.sig, m->sig, sizeof(l.sig));
		break;
	case USP_RESPONSE:
		l.kind = AUTH_LINE_RESPONSE;
		memcpy(l.response, m->response, m->response_len);
		l.response_len = m->response_len;
		break;
	case USP_TOKEN:
		free(s->usp->presented);
		s->usp->presented = strdup(m->tokens[0]);
		auth_token(s, m->tokens[0]);
		return;
	default:
		auth_input(s, NULL);
		return;
	}
	auth_input(s, &l);
	sodium_memzero(&l, sizeof(l));
}

static void
note_client_id(struct session *s, const struct usp_msg *m)
{
	struct usp_ids *ids = &s->usp->ids;

	if (m->client_session_id[0] == '\0' || strcmp(ids->client, m->client_session_id) == 0)
		return;
	str_copy(ids->client, m->client_session_id, sizeof(ids->client));
	session_audit(s, "usp", json_pack("{s:s}", "client_session_id", ids->client));
}

static void
dispatch(struct session *s, struct usp_msg *m)
{
	note_client_id(s, m);
	if (s->state == S_AUTH) {
		on_exchange(s, m);
		return;
	}
	switch (m->type) {
	case USP_INITIALIZE:
		on_initialize(s, m);
		break;
	case USP_MENU:
		on_menu(s, m);
		break;
	case USP_INVALIDATE:
		on_invalidate(s, m);
		break;
	case USP_PROVEAUTH:
		on_proveauth(s, m);
		break;
	case USP_GETSIGNKEY:
		on_getsignkey(s);
		break;
	case USP_SESSION_REQUEST:
		on_session_request(s, m);
		break;
	case USP_SERVICE_REQUEST:
		on_service_request(s, m);
		break;
	default:
		usp_refuse(s, "malformed message", "malformed message: not expected now");
		break;
	}
}

/* --- input ----------------------------------------------------------------------- */

/* No complete message is held: wait, unless the client has ended its stream. */
static void
need_more(struct session *s)
{
	if (s->client_eof_early)
		session_ended_before_request(s);
}

void
usp_session_take(struct session *s)
{
	char reason[USP_REASON_MAX], text[USP_REASON_MAX + 32];
	struct usp_msg m;
	size_t len, used;
	int r;

	while (s->state == S_COMMAND || s->state == S_AUTH) {
		if (++s->commands > COMMANDS_MAX) {
			usp_refuse(s, "too many commands", "too many messages");
			return;
		}
		switch (usp_line_take(s->in.data, s->in.len, &len, &used)) {
		case USP_LINE_TOO_LONG:
			usp_refuse(s, "malformed message", "malformed message: too long");
			return;
		case USP_LINE_NEED_MORE:
			s->commands--;
			need_more(s);
			return;
		case USP_LINE_OK:
			break;
		}
		r = usp_decode((const char *)s->in.data, len, &m, reason);
		/* The line may hold a password: nothing of it stays behind. */
		sodium_memzero(s->in.data, used);
		buf_consume(&s->in, used);
		if (r != 0) {
			note_client_id(s, &m);
			snprintf(text, sizeof(text), "malformed message: %s", reason);
			usp_refuse(s, "malformed message", text);
			return;
		}
		dispatch(s, &m);
		usp_msg_free(&m);
	}
}
