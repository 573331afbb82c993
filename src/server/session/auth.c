#include "server/session/auth.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "crypto/sshkey.h"
#include "proto/auth.h"
#include "server/policy/chunk.h"
#include "server/policy/penalty.h"
#include "server/policy/policy.h"
#include "server/policy/site.h"
#include "server/privsep/priv.h"
#include "server/session/sessiontoken.h"
#include "server/session/uspsession.h"

#define WHY_MAX 256

/* AUTH token's one line: this, then the token. */
#define TOKEN_LINE_PREFIX "TOKEN "

enum auth_step {
	STEP_WANT_USER,      /* the USER line */
	STEP_WANT_SIGNATURE, /* pubkey: the signature over the challenge */
	STEP_WANT_RESPONSE,  /* password: the answer to a prompt */
	STEP_PAM,            /* password: waiting for the PAM helper */
	STEP_DELAY,          /* a penalty delay before the next reply */
};

/* One exchange in progress.  Owned by the session (s->auth). */
struct auth_exchange {
	struct session *s;
	enum auth_method method;
	enum auth_step step;
	char user[AUTH_USER_MAX + 1];
	uint8_t pk[AUTH_PK_LEN];
	uint8_t nonce[AUTH_NONCE_LEN];
	uv_timer_t delay;
	const char *after_delay; /* the reply to send when the delay ends, or NULL to begin */
	uv_pipe_t pam;           /* to the PAM helper */
	bool pam_open;
	struct buf pam_in;
	unsigned open_handles;
};

bool
auth_method_usable(const struct session *s, enum auth_method m)
{
	if (m >= AUTH_METHOD_COUNT || !s->cfg->auth_methods[m])
		return false;
	if (m == AUTH_PASSWORD)
		return s->encrypted || s->cfg->allow_plaintext_password;
	if (m == AUTH_PUBKEY)
		return s->encrypted || s->cfg->allow_plaintext_pubkey;
	return m == AUTH_TOKEN;
}

static const char *
peer_ip(const struct session *s)
{
	return s->peer_is_ip ? s->peer_ip : "";
}

static void
reply(struct session *s, const char *sign, const char *text)
{
	char line[LINE_MAX_BYTES + 8];
	int n = snprintf(line, sizeof(line), "%s %s\r\n", sign, text);

	if (n > 0 && (size_t)n < sizeof(line))
		session_send(s, line, (size_t)n);
}

/* --- ending an exchange -------------------------------------------------- */

static void
on_exchange_closed(uv_handle_t *h)
{
	struct auth_exchange *a = h->data;

	if (--a->open_handles == 0) {
		buf_free(&a->pam_in);
		sodium_memzero(a, sizeof(*a));
		free(a);
	}
}

/* Frees the exchange once its handles are closed; the session goes on without it. */
static void
exchange_free(struct session *s)
{
	struct auth_exchange *a = s->auth;

	if (a == NULL)
		return;
	s->auth = NULL;
	uv_close((uv_handle_t *)&a->delay, on_exchange_closed);
	if (a->pam_open)
		uv_close((uv_handle_t *)&a->pam, on_exchange_closed);
}

void
auth_abort(struct session *s)
{
	exchange_free(s);
}

/* Back to reading commands, with a fresh request deadline, after saying so (or NULL). */
static void
resume_commands(struct session *s, void (*say)(struct session *s))
{
	exchange_free(s);
	session_set_state(s, S_COMMAND);
	session_restart_request_timer(s);
	if (say != NULL)
		say(s);
	if (s->state == S_COMMAND)
		session_process_input(s);
}

/* The method's exchange begins: "+ SUCCESS method", or USP's authenticate. */
static void
say_begin(struct session *s)
{
	struct auth_exchange *a = s->auth;

	if (s->usp != NULL)
		usp_send_authenticate(s, a->method);
	else
		reply(s, "+ SUCCESS", auth_method_name(a->method));
	a->step = STEP_WANT_USER;
	session_set_state(s, S_AUTH);
}

static void
on_delay(uv_timer_t *t)
{
	struct auth_exchange *a = t->data;
	struct session *s = a->s;
	const char *text = a->after_delay;

	if (text == NULL) {
		say_begin(s);
		session_process_input(s);
		return;
	}
	/* USP allows one attempt per connection (PROTOCOL.md section 8.4, flow 5). */
	if (s->usp != NULL || s->auth_failures >= s->cfg->max_auth_tries) {
		session_refuse(s, s->usp != NULL ? "authentication failed"
		                                 : "too many authentication failures");
		return;
	}
	reply(s, "-", text);
	resume_commands(s, NULL);
}

/* Waits, reading nothing, then sends text (or, with NULL, the method's "+ SUCCESS"). */
static void
delay_then(struct session *s, uint64_t ms, const char *text)
{
	struct auth_exchange *a = s->auth;

	a->step = STEP_DELAY;
	a->after_delay = text;
	session_set_state(s, S_AUTH_WAIT);
	uv_timer_start(&a->delay, on_delay, ms, 0);
}

static void
fail(struct session *s, const char *why)
{
	struct site *site = s->site;
	struct auth_exchange *a = s->auth;
	uint64_t now = uv_now(site->loop), delay;

	s->auth_failures++;
	metrics_auth_failed(&site->metrics, a->method);
	penalty_fail(site->source_failures, s->source_key, sizeof(s->source_key), now);
	delay = penalty_delay(site->source_failures, s->source_key, sizeof(s->source_key), now);
	if (a->user[0] != '\0') {
		penalty_fail(site->identity_failures, a->user, strlen(a->user), now);
		uint64_t d = penalty_delay(site->identity_failures, a->user, strlen(a->user), now);
		delay = d > delay ? d : delay;
	}
	session_audit(s, "auth_failed",
	              json_pack("{s:s,s:s,s:s}", "method", auth_method_name(a->method), "user",
	                        a->user, "reason", why));
	if (log_ratelimit_allow(&site->refusals, now))
		log_info("session %s: %s authentication for \"%s\" failed: %s", s->id,
		         auth_method_name(a->method), a->user, why);
	delay_then(s, delay, "authentication failed");
}

/* The caller is s->caller now: forget the failures, say so, and go on. */
static void
succeeded(struct session *s)
{
	struct site *site = s->site;
	struct auth_exchange *a = s->auth;
	char text[LINE_MAX_BYTES];
	uint64_t now = uv_now(site->loop);

	penalty_clear(site->source_failures, s->source_key, sizeof(s->source_key), now);
	penalty_clear(site->identity_failures, a->user, strlen(a->user), now);
	if (s->usp != NULL) {
		resume_commands(s, usp_authenticated);
		return;
	}
	snprintf(text, sizeof(text), "Authentication as %s successful",
	         s->caller->anonymous ? "(withheld)" : s->caller->identity);
	reply(s, "+", text);
	resume_commands(s, NULL);
}

static void
succeed(struct session *s, const char *identity, const uint8_t *pk)
{
	struct caller *c = caller_new(identity, s->auth->method, s->site->priv, s->cfg);

	if (c == NULL) {
		session_close(s, "out of memory");
		return;
	}
	if (pk != NULL)
		sshkey_fingerprint(pk, c->key_fingerprint);
	if (session_set_caller(s, c, json_pack("{s:s}", "key", c->key_fingerprint)) != 0) {
		session_close(s, "a second identity");
		return;
	}
	succeeded(s);
}

/* --- token ------------------------------------------------------------------- */

void
auth_token(struct session *s, const char *token)
{
	const char *why;

	if (s->auth->method != AUTH_TOKEN || s->auth->step != STEP_WANT_USER) {
		fail(s, "message out of turn");
		return;
	}
	if (session_token_take(s, NULL, token, &why) == NULL) {
		fail(s, why);
		return;
	}
	succeeded(s);
}

/* --- pubkey ------------------------------------------------------------------ */

static void
pubkey_user(struct session *s, const struct auth_line *l)
{
	struct auth_exchange *a = s->auth;
	char why[WHY_MAX],
	        nonce[sodium_base64_ENCODED_LEN(AUTH_NONCE_LEN, sodium_base64_VARIANT_ORIGINAL)];
	char text[sizeof(nonce) + SESSION_ID_LEN + 16];
	int ok;

	if (!l->has_key) {
		fail(s, "USER without a key");
		return;
	}
	str_copy(a->user, l->user, sizeof(a->user));
	memcpy(a->pk, l->pk, sizeof(a->pk));
	ok = priv_pubkey_check(s->site->priv, a->user, a->pk, peer_ip(s), why, sizeof(why));
	log_debug("session %s: key for %s: %s", s->id, a->user, why);
	if (ok != 1) {
		fail(s, "key not authorized");
		return;
	}
	randombytes_buf(a->nonce, sizeof(a->nonce));
	a->step = STEP_WANT_SIGNATURE;
	if (s->usp != NULL) {
		usp_send_challenge(s, a->nonce);
		return;
	}
	sodium_bin2base64(nonce, sizeof(nonce), a->nonce, sizeof(a->nonce),
	                  sodium_base64_VARIANT_ORIGINAL);
	snprintf(text, sizeof(text), "CHALLENGE %s %s", s->id, nonce);
	reply(s, "+", text);
}

/* Whether sig covers this exchange, naming the server as server_key (or NULL: unnamed). */
static bool
signature_valid(const struct session *s, const uint8_t sig[AUTH_SIG_LEN], const uint8_t *server_key)
{
	const struct auth_exchange *a = s->auth;
	struct auth_signed in = {.session_id = s->id,
	                         .nonce = a->nonce,
	                         .user = a->user,
	                         .pk = a->pk,
	                         .server_key = server_key,
	                         .binding = s->binding_len > 0 ? s->binding : NULL,
	                         .binding_len = s->binding_len};
	uint8_t data[AUTH_SIGNED_MAX];
	size_t len;

	return auth_signed_data(&in, data, sizeof(data), &len) == 0 &&
	       crypto_sign_verify_detached(sig, data, len, a->pk) == 0;
}

/*
 * The signature must name this server by its key; a client that does not
 * know the key may leave it out only where the channel binding already
 * ties the signature to this server's handshake.
 */
static void
pubkey_signature(struct session *s, const struct auth_line *l)
{
	struct auth_exchange *a = s->auth;

	if (!signature_valid(s, l->sig, s->site->keys.pk) &&
	    !(s->binding_len > 0 && signature_valid(s, l->sig, NULL))) {
		fail(s, "bad signature");
		return;
	}
	succeed(s, a->user, a->pk);
}

/* --- password: the PAM helper ------------------------------------------------ */

static void
on_helper_written(uv_write_t *req, int status)
{
	struct chunk *c = (struct chunk *)req;
	struct session *s = c->owner;

	chunk_free(c);
	if (status < 0 && s->state != S_CLOSED)
		session_close(s, "PAM helper unreachable");
}

/* Queues a copy of line[0..len) to the PAM helper (not charged: it is no client's data). */
static int
helper_write(struct session *s, const char *line, size_t len)
{
	struct chunk *c = chunk_copy(NULL, line, len);

	if (c == NULL)
		return -1;
	return chunk_write(c, 0, len, (uv_stream_t *)&s->auth->pam, s, NULL, on_helper_written);
}

static void
pam_send_answer(struct session *s, const struct auth_line *l)
{
	struct auth_exchange *a = s->auth;
	struct pamconv_msg m;
	char line[PAMCONV_LINE_MAX];
	int n;

	memset(&m, 0, sizeof(m));
	m.kind = PAMCONV_ANSWER;
	memcpy(m.answer, l->response, l->response_len);
	m.answer_len = l->response_len;
	n = pamconv_encode(&m, line, sizeof(line));
	sodium_memzero(&m, sizeof(m));
	if (n < 0 || helper_write(s, line, (size_t)n) != 0) {
		sodium_memzero(line, sizeof(line));
		fail(s, "PAM helper unreachable");
		return;
	}
	sodium_memzero(line, sizeof(line));
	a->step = STEP_PAM;
	session_set_state(s, S_AUTH_WAIT);
}

/* One line from the helper. */
static void
pam_message(struct session *s, const struct pamconv_msg *m)
{
	static const char *const prefixes[] = {
	        [PAMCONV_PROMPT_ECHO_OFF] = "PROMPT-ECHO-OFF",
	        [PAMCONV_PROMPT_ECHO_ON] = "PROMPT-ECHO-ON",
	        [PAMCONV_INFO] = "INFO",
	        [PAMCONV_ERROR] = "ERROR",
	};
	char text[LINE_MAX_BYTES];

	switch (m->kind) {
	case PAMCONV_PROMPT_ECHO_OFF:
	case PAMCONV_PROMPT_ECHO_ON:
	case PAMCONV_INFO:
	case PAMCONV_ERROR:
		if (s->usp != NULL) {
			usp_send_prompt(s, m->kind, m->text);
		} else {
			snprintf(text, sizeof(text), "%s %s", prefixes[m->kind], m->text);
			reply(s, "+", text);
		}
		if (m->kind == PAMCONV_PROMPT_ECHO_OFF || m->kind == PAMCONV_PROMPT_ECHO_ON) {
			s->auth->step = STEP_WANT_RESPONSE;
			session_set_state(s, S_AUTH);
			session_process_input(s);
		}
		break;
	case PAMCONV_SUCCESS:
		succeed(s, m->text, NULL);
		break;
	case PAMCONV_FAILURE:
	case PAMCONV_ANSWER:
		fail(s, m->kind == PAMCONV_FAILURE ? "PAM refused" : "PAM helper out of turn");
		break;
	}
}

static void
on_pam_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct auth_exchange *a = st->data;
	struct session *s = a->s;
	struct pamconv_msg m;
	char *nl;
	size_t len;

	if (nread > 0 && buf_append(&a->pam_in, buf->base, (size_t)nread) != 0)
		nread = UV_ENOBUFS;
	chunk_release(buf);
	if (nread < 0 && s->auth == a && a->step == STEP_PAM) {
		uv_read_stop(st);
		fail(s, "PAM helper ended without an answer");
		return;
	}
	while (s->auth == a && a->step == STEP_PAM &&
	       (nl = memchr(a->pam_in.data, '\n', a->pam_in.len)) != NULL) {
		len = (size_t)(nl - (char *)a->pam_in.data);
		if (pamconv_parse((char *)a->pam_in.data, len, &m) != 0) {
			fail(s, "PAM helper spoke nonsense");
			return;
		}
		buf_consume(&a->pam_in, len + 1);
		pam_message(s, &m);
	}
}

static void
password_user(struct session *s, const struct auth_line *l)
{
	struct auth_exchange *a = s->auth;
	const char *why;
	int fd;

	if (l->has_key) {
		fail(s, "a key offered for password authentication");
		return;
	}
	str_copy(a->user, l->user, sizeof(a->user));
	if ((fd = priv_pam_start(s->site->priv, s->cfg, a->user, peer_ip(s), &why)) < 0) {
		/* Busy is not a failed authentication: no penalty, and the client is told. */
		if (strncmp(why, "too many", 8) == 0)
			session_refuse(s, why);
		else
			fail(s, why);
		return;
	}
	uv_pipe_init(s->site->loop, &a->pam, 0);
	a->pam.data = a;
	a->pam_open = true;
	a->open_handles++;
	if (uv_pipe_open(&a->pam, fd) != 0) {
		close(fd);
		fail(s, "cannot talk to PAM");
		return;
	}
	buf_init(&a->pam_in, PAMCONV_LINE_MAX * 4);
	uv_read_start((uv_stream_t *)&a->pam, chunk_alloc, on_pam_read);
	a->step = STEP_PAM;
	session_set_state(s, S_AUTH_WAIT);
}

/* --- the command and its lines --------------------------------------------- */

void
auth_input(struct session *s, const struct auth_line *l)
{
	struct auth_exchange *a = s->auth;

	if (l == NULL || a->method == AUTH_TOKEN)
		fail(s, "message out of turn");
	else if (a->step == STEP_WANT_USER && l->kind == AUTH_LINE_USER)
		(a->method == AUTH_PUBKEY ? pubkey_user : password_user)(s, l);
	else if (a->step == STEP_WANT_SIGNATURE && l->kind == AUTH_LINE_SIGNATURE)
		pubkey_signature(s, l);
	else if (a->step == STEP_WANT_RESPONSE && l->kind == AUTH_LINE_RESPONSE)
		pam_send_answer(s, l);
	else
		fail(s, "message out of turn");
}

void
auth_line(struct session *s, const char *line)
{
	struct auth_line l;
	const char *why;

	if (s->auth->method == AUTH_TOKEN) {
		if (strncmp(line, TOKEN_LINE_PREFIX, strlen(TOKEN_LINE_PREFIX)) != 0)
			fail(s, "line out of turn");
		else
			auth_token(s, line + strlen(TOKEN_LINE_PREFIX));
		return;
	}
	if (auth_line_parse(line, &l, &why) != 0) {
		fail(s, why);
		return;
	}
	auth_input(s, &l);
	sodium_memzero(&l, sizeof(l));
}

/* The methods this session may use, as "pubkey,password". */
static void
usable_list(const struct session *s, char *out, size_t size)
{
	unsigned m;

	out[0] = '\0';
	for (m = 0; m < AUTH_METHOD_COUNT; m++) {
		if (!auth_method_usable(s, (enum auth_method)m))
			continue;
		if (out[0] != '\0')
			strncat(out, ",", size - strlen(out) - 1);
		strncat(out, auth_method_name((enum auth_method)m), size - strlen(out) - 1);
	}
}

/*
 * An AUTH refused before any exchange begins: the connection stays open
 * for another command (PROTOCOL.md 4.1), and the refusal, reason, is
 * recorded as any other is.
 */
static void
refuse_auth(struct session *s, const char *reason, const char *text)
{
	session_record_refusal(s, reason);
	reply(s, "-", text);
}

void
auth_begin(struct session *s, const struct cmd *c)
{
	enum auth_method offered[AUTH_METHODS_MAX];
	char usable[LINE_MAX_BYTES], text[LINE_MAX_BYTES + 64];
	size_t n, i;

	if (auth_methods_parse(c->args[0], offered, AUTH_METHODS_MAX, &n) != 0) {
		session_refuse(s, "malformed method list");
		return;
	}
	if (s->caller != NULL) {
		refuse_auth(s, "already authenticated", "already authenticated");
		return;
	}
	for (i = 0; i < n && !auth_method_usable(s, offered[i]); i++)
		;
	if (i == n) {
		usable_list(s, usable, sizeof(usable));
		snprintf(text, sizeof(text), "no common authentication method; supported: %s",
		         usable[0] != '\0' ? usable : "none");
		refuse_auth(s, "no common authentication method", text);
		return;
	}
	auth_start(s, offered[i]);
}

void
auth_start(struct session *s, enum auth_method method)
{
	struct auth_exchange *a;
	uint64_t delay;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		session_close(s, "out of memory");
		return;
	}
	a->s = s;
	a->method = method;
	uv_timer_init(s->site->loop, &a->delay);
	a->delay.data = a;
	a->open_handles = 1;
	s->auth = a;
	session_start_auth_timer(s);
	/* A source with recent failures waits before every attempt, before any check. */
	delay = penalty_delay(s->site->source_failures, s->source_key, sizeof(s->source_key),
	                      uv_now(s->site->loop));
	if (delay > 0) {
		delay_then(s, delay, NULL);
		return;
	}
	say_begin(s);
}
