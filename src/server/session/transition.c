/*
 * The transition on the same port.  The USP paper, section 8.2, "Adoption
 * in Existing Infrastructure": "Application servers implementing USP would
 * also know what USP and application layer messages to expect, so they
 * would be able to determine whether to route application layer traffic
 * directly to the application or process USP messages, and whether to
 * strictly require USP or permit application layer directly, perhaps while
 * transitioning to a new TCP/IP model."
 *
 * Only a plain connection's first bytes are looked at, before any dialect
 * has read one: a connection that has sent a command, a USP message or a
 * sealed initiation, or that is inside fived's TLS, is never handed over.
 * The rules (src/legacy/legacy.c) are strict and bounded; what is not
 * certainly an older protocol's is fived's, so that its dialects refuse it
 * as they always did.  Whatever was read while deciding goes to the legacy
 * backend first and in order, by the session's one stream, as held bytes
 * go to any backend; the client hears nothing from fived.
 */
#include "server/session/transition.h"

#include "common/util.h"
#include "server/session/internal.h"

bool
transition_wanted(const struct session *s)
{
	return config_legacy_on(s->cfg) && !s->cfg->dark;
}

static void
on_decide_deadline(uv_timer_t *t)
{
	struct session *s = t->data;

	if (s->state == S_DETECT && s->legacy_watch)
		session_detected(s, false);
}

void
transition_watch(struct session *s)
{
	uint64_t wait = s->cfg->request_timeout_ms;

	s->legacy_watch = true;
	uv_timer_start(&s->timer, on_decide_deadline,
	               wait < TRANSITION_DECIDE_MS ? wait : TRANSITION_DECIDE_MS, 0);
}

static void
rules_of(const struct config *cfg, struct legacy_rules *rules)
{
	int i;

	for (i = 0; i < LEGACY_PROTO_COUNT; i++)
		rules->enabled[i] = cfg->legacy[i].backend != BACKEND_NONE;
	rules->names = cfg->tls_names;
	rules->nnames = cfg->ntls_names;
}

/*
 * The legacy backend is reached as a service's is, within what is left of
 * the request phase; the stream relays, held bytes first, once it answers.
 */
static void
hand_over(struct session *s, enum legacy_proto proto)
{
	s->legacy_watch = false;
	s->legacy = proto;
	str_copy(s->requested, s->cfg->legacy[proto].name, sizeof(s->requested));
	session_start_service(s, &s->cfg->legacy[proto]);
	/* Reading goes on only while what is held leaves room for another read. */
	if (s->state == S_CONNECTING)
		session_process_input(s);
}

void
transition_input(struct session *s, ssize_t nread, const uv_buf_t *buf)
{
	bool eof = nread == UV_EOF;
	struct legacy_rules rules;
	enum legacy_proto proto;

	if (session_hold_read(s, nread, buf, "early data over its bound") != 0)
		return;
	if (nread < 0 && !eof) {
		session_close(s, "client read failed");
		return;
	}
	if (nread == 0)
		return;
	rules_of(s->cfg, &rules);
	switch (legacy_classify(&rules, s->in.data, s->in.len, &proto)) {
	case LEGACY_HAND_OVER:
		s->client_eof_early = eof;
		hand_over(s, proto);
		break;
	case LEGACY_NEED_MORE:
		if (eof)
			session_detected(s, true);
		break;
	case LEGACY_FIVED:
		session_detected(s, eof);
		break;
	}
}
