#include "server/session/proof.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "server/policy/policy.h"
#include "server/policy/site.h"
#include "server/privsep/priv.h"

_Static_assert(PROOF_KEY_B64_SIZE + PROOF_PROVIDER_MAX + 16 <= PROOF_REPLY_MAX,
               "a SIGNKEY reply fits where a PROOF reply does");

/* The identities a session may prove: those it authenticated itself. */
static const char *
refusal(const struct session *s)
{
	if (s->caller == NULL)
		return "authentication required";
	/* A token's identity is another issuer's word, scoped to one service, or withheld. */
	if (s->caller->method == AUTH_TOKEN || s->caller->anonymous)
		return "not permitted: a token does not prove an identity";
	return NULL;
}

/* The record's extra members, with the stream that asked when there is one. */
static json_t *
with_stream(json_t *extra, uint32_t stream)
{
	if (extra != NULL && stream != 0)
		json_object_set_new(extra, "stream", json_integer(stream));
	return extra;
}

int
session_prove(struct session *s, const char *hex, uint32_t stream, char out[PROOF_SIZE],
              const char **why)
{
	uint8_t hash[PROOF_HASH_LEN];

	out[0] = '\0';
	if ((*why = refusal(s)) == NULL && proof_hash_parse(hex, hash) != 0)
		*why = "invalid hash";
	if (*why == NULL && priv_proof_sign(s->site->priv, s->caller->identity, s->caller->method,
	                                    hash, out, PROOF_SIZE, why) == 0) {
		session_audit(
		        s, "proof_issued",
		        with_stream(json_pack("{s:s,s:s,s:s}", "identity", s->caller->identity,
		                              "method", auth_method_name(s->caller->method), "hash",
		                              hex),
		                    stream));
		return 0;
	}
	session_audit(s, "proof_refused", with_stream(json_pack("{s:s}", "reason", *why), stream));
	return -1;
}

void
session_signkey(const struct session *s, char key[PROOF_KEY_B64_SIZE], const char **provider)
{
	proof_key_format(s->site->sign_pk, key);
	*provider = s->site->provider;
}

/* reply[0..n) with n from snprintf, or "" when it did not fit (a bug: the sizes are fixed). */
static size_t
reply_length(int n)
{
	return n > 0 && n < PROOF_REPLY_MAX ? (size_t)n : 0;
}

size_t
session_prove_reply(struct session *s, const char *hex, uint32_t stream,
                    char reply[PROOF_REPLY_MAX])
{
	char proof[PROOF_SIZE];
	const char *why;

	if (session_prove(s, hex, stream, proof, &why) == 0)
		return reply_length(snprintf(reply, PROOF_REPLY_MAX, "+ PROOF %s\r\n", proof));
	return reply_length(snprintf(reply, PROOF_REPLY_MAX, "- %s\r\n", why));
}

size_t
session_signkey_reply(const struct session *s, char reply[PROOF_REPLY_MAX])
{
	char key[PROOF_KEY_B64_SIZE];
	const char *provider;

	session_signkey(s, key, &provider);
	if (provider[0] == '\0')
		return reply_length(snprintf(reply, PROOF_REPLY_MAX, "- no provider name\r\n"));
	return reply_length(snprintf(reply, PROOF_REPLY_MAX, "+ SIGNKEY %s %s\r\n", key, provider));
}

void
session_prove_command(struct session *s, const struct cmd *c)
{
	char reply[PROOF_REPLY_MAX];
	size_t n = session_prove_reply(s, c->args[0], 0, reply);

	if (n == 0 || session_send(s, reply, n) != 0)
		session_close(s, "out of memory");
}

void
session_signkey_command(struct session *s)
{
	char reply[PROOF_REPLY_MAX];
	size_t n = session_signkey_reply(s, reply);

	if (n == 0 || session_send(s, reply, n) != 0)
		session_close(s, "out of memory");
}
