/*
 * Proofs of identity, client side (docs/PROTOCOL.md section 13): asking
 * fived for one with GETSIGNKEY and PROVEAUTH after authentication, the
 * signing key pinned as a server key is; and verifying one, as a consumer
 * does, with proto/proof.c.
 */
#include "client/dialect/proof.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client/base/error.h"
#include "client/base/options.h"
#include "client/dialect/text.h"
#include "client/keys/knownhosts.h"
#include "client/transport/conn.h"
#include "common/util.h"
#include "five.h"
#include "proto/proof.h"

/* What comes before the proof and the key in fived's answers. */
#define PROOF_REPLY_PREFIX   "+ PROOF "
#define SIGNKEY_REPLY_PREFIX "+ SIGNKEY "

/* An answer's line: a prefix, a proof (or a key and a name), CRLF. */
#define REPLY_MAX (PROOF_SIZE + 32)

/* The signing key's pin in known_hosts: the server's name and this. */
#define SIGN_PIN_SUFFIX "/sign"
#define PIN_NAME_MAX    (KNOWNHOSTS_LINE_MAX / 2)

_Static_assert(FIVE_PROOF_SIZE == PROOF_SIZE && FIVE_SIGN_KEY_SIZE == PROOF_KEY_B64_SIZE &&
                       FIVE_PROVIDER_SIZE == PROOF_PROVIDER_MAX + 1 &&
                       FIVE_PROOF_NONCE_MIN == PROOF_NONCE_MIN &&
                       FIVE_PROOF_NONCE_MAX == PROOF_NONCE_MAX &&
                       FIVE_PROOF_CONSUMER_MAX == PROOF_CONSUMER_MAX,
               "five.h's sizes are proto/proof.h's");

static int
challenge_of(const void *nonce, size_t nlen, const char *consumer, uint8_t hash[PROOF_HASH_LEN],
             struct five_error *err)
{
	if (nonce == NULL || nlen < PROOF_NONCE_MIN || nlen > PROOF_NONCE_MAX)
		return five_fail(err, FIVE_ERR_USAGE, "the nonce must be %d to %d bytes",
		                 PROOF_NONCE_MIN, PROOF_NONCE_MAX);
	if (consumer == NULL ||
	    proof_challenge(nonce, nlen, (const uint8_t *)consumer, strlen(consumer), hash) != 0)
		return five_fail(err, FIVE_ERR_USAGE, "the consumer's name must be 1 to %d bytes",
		                 PROOF_CONSUMER_MAX);
	return 0;
}

/* "+ SIGNKEY KEY PROVIDER": the key. */
static int
read_signkey(struct five_conn *c, uint8_t pk[TOKEN_PK_LEN], struct five_error *err)
{
	char line[REPLY_MAX], key[PROOF_KEY_B64_SIZE];
	const char *rest = line + strlen(SIGNKEY_REPLY_PREFIX);
	const char *space;

	if (five_conn_read_line(c, line, sizeof(line), err) != 0)
		return -1;
	if (strncmp(line, SIGNKEY_REPLY_PREFIX, strlen(SIGNKEY_REPLY_PREFIX)) != 0)
		return five_text_check_reply(line, err) == 0
		               ? five_fail(err, FIVE_ERR_PROTOCOL, "not a signing key: \"%.64s\"",
		                           line)
		               : -1;
	if ((space = strchr(rest, ' ')) == NULL || (size_t)(space - rest) != sizeof(key) - 1 ||
	    !proof_provider_valid(space + 1))
		return five_fail(err, FIVE_ERR_PROTOCOL, "not a signing key: \"%.64s\"", line);
	memcpy(key, rest, sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	if (proof_key_parse(key, pk) != 0)
		return five_fail(err, FIVE_ERR_PROTOCOL, "not a signing key: \"%.64s\"", line);
	return 0;
}

/* "+ PROOF P": the proof, into proof[0..size). */
static int
read_proof(struct five_conn *c, char *proof, size_t size, struct five_error *err)
{
	char line[REPLY_MAX];
	const char *p = line + strlen(PROOF_REPLY_PREFIX);

	if (five_conn_read_line(c, line, sizeof(line), err) != 0)
		return -1;
	if (strncmp(line, PROOF_REPLY_PREFIX, strlen(PROOF_REPLY_PREFIX)) != 0)
		return five_text_check_reply(line, err) == 0
		               ? five_fail(err, FIVE_ERR_PROTOCOL, "not a proof: \"%.64s\"", line)
		               : -1;
	if (str_copy(proof, p, size) >= size)
		return five_fail(err, FIVE_ERR_USAGE, "the proof is longer than %zu bytes",
		                 size - 1);
	return 0;
}

int
five_proof_read(struct five_conn *c, unsigned replies, uint8_t pk[TOKEN_PK_LEN], char *proof,
                size_t size, struct five_error *err)
{
	if (five_text_await(c, replies, err) != 0 || read_signkey(c, pk, err) != 0)
		return -1;
	return read_proof(c, proof, size, err);
}

/*
 * The signing key pinned for host, as server keys are: the same one as
 * before, or, on first contact and with trust_on_first_use, pinned now.
 */
static int
pin_signkey(const char *host, const struct five_options *o, const uint8_t pk[TOKEN_PK_LEN],
            struct five_error *err)
{
	char base[PIN_NAME_MAX], name[PIN_NAME_MAX + sizeof(SIGN_PIN_SUFFIX)], path[4096];
	char note[FIVE_LINE_MAX];
	uint8_t pinned[TOKEN_PK_LEN];
	unsigned line = 0;
	bool found;

	knownhosts_name(host, o->port != NULL ? o->port : FIVE_PORT, base, sizeof(base));
	snprintf(name, sizeof(name), "%s%s", base, SIGN_PIN_SUFFIX);
	if (knownhosts_lookup(o->known_hosts, name, path, sizeof(path), pinned, &line, &found,
	                      err) != 0)
		return -1;
	if (found)
		return sodium_memcmp(pinned, pk, TOKEN_PK_LEN) == 0
		               ? 0
		               : five_fail(err, FIVE_ERR_TRUST,
		                           "the signing key of %s is not the one pinned in %s:%u",
		                           name, path, line);
	if (!o->trust_on_first_use)
		return five_fail(err, FIVE_ERR_TRUST, "no signing key pinned for %s in %s", name,
		                 path);
	if (knownhosts_add(path, name, pk, err) != 0)
		return -1;
	/* A path too long for the line is cut short: the note only tells the user. */
	if (snprintf(note, sizeof(note), "new signing key %s pinned in %.256s", name, path) > 0)
		five_notice(o, note);
	return 0;
}

/* One connection: [AUTH,] GETSIGNKEY, PROVEAUTH, QUIT; the key and the proof. */
static int
fetch_once(const char *host, const struct five_options *o, const char *request,
           uint8_t pk[TOKEN_PK_LEN], char *proof, size_t size, struct five_error *err)
{
	struct five_conn c;
	int r;

	if (five_text_open(&c, host, o, request, strlen(request), err) != 0)
		return -1;
	five_notice(o, c.note);
	r = five_proof_read(&c, c.replies_due, pk, proof, size, err);
	five_conn_close(&c);
	return r;
}

/* Asks, without authenticating first over a handshake that may have done it already. */
static int
fetch(const char *host, const struct five_options *o, const char *request, uint8_t pk[TOKEN_PK_LEN],
      char *proof, size_t size, struct five_error *err)
{
	struct five_options bare;

	if (o->transport == FIVE_PLAIN)
		return fetch_once(host, o, request, pk, proof, size, err);
	bare = *o;
	bare.auth = NULL;
	if (fetch_once(host, &bare, request, pk, proof, size, err) == 0)
		return 0;
	if (o->auth == NULL || err->step != FIVE_ERR_REFUSED ||
	    strstr(err->message, "authentication required") == NULL)
		return -1;
	return fetch_once(host, o, request, pk, proof, size, err);
}

int
five_prove(const char *host, const void *nonce, size_t nonce_len, const char *consumer,
           const struct five_options *opts, char *proof, size_t size, char *key,
           struct five_error *err)
{
	char request[LINE_MAX_BYTES], hex[PROOF_HASH_SIZE];
	uint8_t hash[PROOF_HASH_LEN], pk[TOKEN_PK_LEN];
	struct five_error scratch;
	struct proof_claims c;
	struct five_options o;
	enum proof_status s;

	err = five_error_or(err, &scratch);
	if (proof == NULL || size == 0)
		return five_fail(err, FIVE_ERR_USAGE, "no room for the proof");
	proof[0] = '\0';
	if (five_options_resolve(opts, &o, err) != 0 ||
	    challenge_of(nonce, nonce_len, consumer, hash, err) != 0)
		return -1;
	if (o.token != NULL)
		return five_fail(err, FIVE_ERR_USAGE, "a token does not prove an identity");
	proof_hash_format(hash, hex);
	/* QUIT: fived closes once it has answered, and the session ends cleanly. */
	snprintf(request, sizeof(request), "GETSIGNKEY\r\nPROVEAUTH %s\r\nQUIT\r\n", hex);
	if (fetch(host, &o, request, pk, proof, size, err) != 0 ||
	    pin_signkey(host, &o, pk, err) != 0)
		goto fail;
	if ((s = proof_verify(pk, proof, hash, (uint64_t)time(NULL), &c)) != PROOF_OK) {
		five_fail(err, FIVE_ERR_PROTOCOL, "fived's proof does not verify: %s",
		          proof_status_text(s));
		goto fail;
	}
	if (key != NULL)
		proof_key_format(pk, key);
	return 0;
fail:
	proof[0] = '\0';
	return -1;
}

int
five_verify_proof(const char *key, const void *nonce, size_t nonce_len, const char *consumer,
                  const char *proof, struct five_proof *out, struct five_error *err)
{
	uint8_t hash[PROOF_HASH_LEN], pk[TOKEN_PK_LEN];
	struct five_error scratch;
	struct proof_claims c;
	enum proof_status s;

	err = five_error_or(err, &scratch);
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (key == NULL || proof_key_parse(key, pk) != 0)
		return five_fail(err, FIVE_ERR_USAGE,
		                 "not a signing key (44 characters of base64)");
	if (proof == NULL || out == NULL)
		return five_fail(err, FIVE_ERR_USAGE, "no proof, or no room for what it says");
	if (challenge_of(nonce, nonce_len, consumer, hash, err) != 0)
		return -1;
	if ((s = proof_verify(pk, proof, hash, (uint64_t)time(NULL), &c)) != PROOF_OK)
		return five_fail(err, FIVE_ERR_REFUSED, "%s", proof_status_text(s));
	str_copy(out->identity, c.sub, sizeof(out->identity));
	str_copy(out->method, auth_method_name(c.amr), sizeof(out->method));
	str_copy(out->provider, c.iss, sizeof(out->provider));
	out->issued_at = (long long)c.iat;
	out->expires_at = (long long)c.exp;
	return 0;
}
