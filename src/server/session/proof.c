#include "server/session/proof.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "server/policy/policy.h"
#include "server/policy/site.h"
#include "server/privsep/priv.h"

/* "+ PROOF " and CRLF around a proof. */
#define PROOF_REPLY_MAX (PROOF_SIZE + 16)

/* "+ SIGNKEY ", the key, a space, the provider's name, CRLF. */
#define SIGNKEY_REPLY_MAX (PROOF_KEY_B64_SIZE + PROOF_PROVIDER_MAX + 16)

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

int
session_prove(struct session *s, const char *hex, char out[PROOF_SIZE], const char **why)
{
	uint8_t hash[PROOF_HASH_LEN];

	out[0] = '\0';
	if ((*why = refusal(s)) == NULL && proof_hash_parse(hex, hash) != 0)
		*why = "invalid hash";
	if (*why == NULL && priv_proof_sign(s->site->priv, s->caller->identity, s->caller->method,
	                                    hash, out, PROOF_SIZE, why) == 0) {
		session_audit(s, "proof_issued",
		              json_pack("{s:s,s:s,s:s}", "identity", s->caller->identity, "method",
		                        auth_method_name(s->caller->method), "hash", hex));
		return 0;
	}
	session_audit(s, "proof_refused", json_pack("{s:s}", "reason", *why));
	return -1;
}

void
session_signkey(const struct session *s, char key[PROOF_KEY_B64_SIZE], const char **provider)
{
	proof_key_format(s->site->sign_pk, key);
	*provider = s->site->provider;
}

void
session_prove_command(struct session *s, const struct cmd *c)
{
	char proof[PROOF_SIZE], reply[PROOF_REPLY_MAX];
	const char *why;
	int n;

	if (session_prove(s, c->args[0], proof, &why) == 0)
		n = snprintf(reply, sizeof(reply), "+ PROOF %s\r\n", proof);
	else
		n = snprintf(reply, sizeof(reply), "- %s\r\n", why);
	if (n < 0 || (size_t)n >= sizeof(reply) || session_send(s, reply, (size_t)n) != 0)
		session_close(s, "out of memory");
}

void
session_signkey_command(struct session *s)
{
	char key[PROOF_KEY_B64_SIZE], reply[SIGNKEY_REPLY_MAX];
	const char *provider;
	int n;

	session_signkey(s, key, &provider);
	if (provider[0] != '\0')
		n = snprintf(reply, sizeof(reply), "+ SIGNKEY %s %s\r\n", key, provider);
	else
		n = snprintf(reply, sizeof(reply), "- no provider name\r\n");
	if (n < 0 || (size_t)n >= sizeof(reply) || session_send(s, reply, (size_t)n) != 0)
		session_close(s, "out of memory");
}
