/*
 * The USP dialect's codec: line framing, every client message decoded, every
 * strictness rule broken once with the reason the client is told, and the
 * server's messages byte for byte.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/sshkey.h"
#include "proto/usp.h"
#include "unit.h"

#define SERVER_ID  "0123456789abcdef0123456789abcdef"
#define TOKEN_A    "v4.public.eyJhcHAiOiJkYiJ9c2lnbmF0dXJl"
#define TOKEN_B    "v4.local.bm9uY2VjaXBoZXJ0ZXh0dGFn.eyJraWQiOiJrMSJ9"
#define LINE_BYTES (USP_LINE_MAX + 16)
#define B64_MAX    1024

static const struct usp_ids ids_server_only = {SERVER_ID, ""};
static const struct usp_ids ids_both = {SERVER_ID, "c-1"};

static uint8_t big[LINE_BYTES];

/* Decodes a NUL-terminated line that must be accepted. */
static void
decode_ok(const char *line, struct usp_msg *m)
{
	char reason[USP_REASON_MAX];

	if (usp_decode(line, strlen(line), m, reason) != 0)
		fail_msg("refused (%s): %s", reason, line);
}

/* Decodes line[0..len), which must be refused for exactly the reason given. */
static void
refused_n(const char *line, size_t len, const char *why)
{
	static const struct usp_msg zero;
	char reason[USP_REASON_MAX];
	struct usp_msg m;

	memset(&m, 0xa5, sizeof(m));
	if (usp_decode(line, len, &m, reason) != -1)
		fail_msg("accepted: %.*s", (int)len, line);
	assert_string_equal(reason, why);
	/* Only a valid client_session_id outlives a refusal: the error echoes it. */
	memset(m.client_session_id, 0, sizeof(m.client_session_id));
	assert_memory_equal(&m, &zero, sizeof(m));
}

static void
refused(const char *line, const char *why)
{
	refused_n(line, strlen(line), why);
}

static void
b64(const uint8_t *p, size_t n, char out[B64_MAX])
{
	sodium_bin2base64(out, B64_MAX, p, n, sodium_base64_VARIANT_ORIGINAL);
}

/* --- framing --------------------------------------------------------------- */

static void
test_line_lf_crlf(void **state)
{
	static const char data[] = "{\"a\":1}\r\n{\"b\":2}\nrest";
	const uint8_t *p = (const uint8_t *)data;
	size_t len, used;

	assert_int_equal(usp_line_take(p, strlen(data), &len, &used), USP_LINE_OK);
	assert_int_equal(len, 7);
	assert_int_equal(used, 9);
	assert_int_equal(usp_line_take(p + used, strlen(data) - used, &len, &used), USP_LINE_OK);
	assert_int_equal(len, 7);
	assert_int_equal(used, 8);
	assert_int_equal(usp_line_take(p + 17, 4, &len, &used), USP_LINE_NEED_MORE);
	assert_int_equal(len, 0);
	assert_int_equal(used, 0);
}

static void
test_line_split(void **state)
{
	static const char data[] = "{\"message\":\"menu\"}\r\n";
	const uint8_t *p = (const uint8_t *)data;
	size_t i, len, used;

	for (i = 0; i < strlen(data); i++)
		assert_int_equal(usp_line_take(p, i, &len, &used), USP_LINE_NEED_MORE);
	/* A CR waiting for its LF is not a terminator yet. */
	assert_int_equal(usp_line_take(p, strlen(data) - 1, &len, &used), USP_LINE_NEED_MORE);
	assert_int_equal(usp_line_take(p, strlen(data), &len, &used), USP_LINE_OK);
	assert_int_equal(len, strlen(data) - 2);
	assert_int_equal(used, strlen(data));
}

static void
test_line_empty(void **state)
{
	size_t len, used;

	assert_int_equal(usp_line_take((const uint8_t *)"\n", 1, &len, &used), USP_LINE_OK);
	assert_int_equal(len, 0);
	assert_int_equal(used, 1);
	assert_int_equal(usp_line_take((const uint8_t *)"\r\n", 2, &len, &used), USP_LINE_OK);
	assert_int_equal(len, 0);
	assert_int_equal(used, 2);
	assert_int_equal(usp_line_take((const uint8_t *)"", 0, &len, &used), USP_LINE_NEED_MORE);
}

static void
test_line_limit(void **state)
{
	size_t len, used;

	memset(big, 'x', sizeof(big));
	/* USP_LINE_MAX bytes with the LF: the longest line. */
	big[USP_LINE_MAX - 1] = '\n';
	assert_int_equal(usp_line_take(big, sizeof(big), &len, &used), USP_LINE_OK);
	assert_int_equal(len, USP_LINE_MAX - 1);
	assert_int_equal(used, USP_LINE_MAX);
	/* With CRLF the CR counts too. */
	big[USP_LINE_MAX - 2] = '\r';
	assert_int_equal(usp_line_take(big, sizeof(big), &len, &used), USP_LINE_OK);
	assert_int_equal(len, USP_LINE_MAX - 2);
	big[USP_LINE_MAX - 2] = 'x';
	big[USP_LINE_MAX - 1] = '\r';
	big[USP_LINE_MAX] = '\n';
	assert_int_equal(usp_line_take(big, sizeof(big), &len, &used), USP_LINE_TOO_LONG);
	/* Reported as soon as the limit is reached, and not before. */
	big[USP_LINE_MAX - 1] = 'x';
	assert_int_equal(usp_line_take(big, USP_LINE_MAX - 1, &len, &used), USP_LINE_NEED_MORE);
	assert_int_equal(usp_line_take(big, USP_LINE_MAX, &len, &used), USP_LINE_TOO_LONG);
}

/* --- client messages ------------------------------------------------------- */

static void
test_decode_initialize(void **state)
{
	struct usp_msg m;

	decode_ok("{\"message\":\"initialize\",\"streams\":[{\"application\":\"Echo\"},"
	          "{\"token\":\"" TOKEN_A "\",\"application\":\"db\"}],"
	          "\"authentication\":[\"kerberos-9\",\"password\",\"none\",\"pubkey\"],"
	          "\"vhost\":\"Example.ORG\",\"client_session_id\":\"Az09._:-\"}",
	          &m);
	assert_int_equal(m.type, USP_INITIALIZE);
	assert_int_equal(m.nstreams, 2);
	assert_string_equal(m.streams[0].application, "echo");
	assert_null(m.streams[0].token);
	assert_string_equal(m.streams[1].application, "db");
	assert_string_equal(m.streams[1].token, TOKEN_A);
	assert_int_equal(m.nprotocols, 2);
	assert_int_equal(m.protocols[0], AUTH_PASSWORD);
	assert_int_equal(m.protocols[1], AUTH_PUBKEY);
	assert_true(m.offered_protocols);
	assert_string_equal(m.vhost, "example.org");
	assert_string_equal(m.client_session_id, "Az09._:-");
	usp_msg_free(&m);
	assert_null(m.streams[1].token);

	decode_ok("{\"message\":\"initialize\",\"streams\":[{\"application\":\"echo\"}],"
	          "\"authentication\":[]}",
	          &m);
	assert_int_equal(m.nstreams, 1);
	assert_int_equal(m.nprotocols, 0);
	assert_false(m.offered_protocols);
	assert_string_equal(m.vhost, "");
	assert_string_equal(m.client_session_id, "");
	usp_msg_free(&m);

	/* Whitespace between tokens is JSON's. */
	decode_ok(" { \"streams\" : [ { \"application\" : \"echo\" } ] , \"message\" : "
	          "\"initialize\" } ",
	          &m);
	assert_int_equal(m.type, USP_INITIALIZE);
	usp_msg_free(&m);
}

static void
test_decode_limits_accepted(void **state)
{
	char line[LINE_BYTES];
	struct usp_msg m;
	size_t n;
	int i;

	n = (size_t)snprintf(line, sizeof(line), "{\"message\":\"initialize\",\"streams\":[");
	for (i = 0; i < USP_STREAMS_MAX; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n,
		                      "%s{\"application\":\"a%d\",\"token\":\"" TOKEN_B "\"}",
		                      i ? "," : "", i);
	n += (size_t)snprintf(line + n, sizeof(line) - n, "],\"authentication\":[");
	for (i = 0; i < USP_PROTOCOLS_MAX; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s\"%s\"", i ? "," : "",
		                      "abcdefghijklmnopqrstuvwxyz-01234");
	snprintf(line + n, sizeof(line) - n, "]}");
	decode_ok(line, &m);
	assert_int_equal(m.nstreams, USP_STREAMS_MAX);
	assert_string_equal(m.streams[USP_STREAMS_MAX - 1].token, TOKEN_B);
	assert_int_equal(m.nprotocols, 0);
	assert_true(m.offered_protocols);
	usp_msg_free(&m);
}

static void
test_decode_menu(void **state)
{
	struct usp_msg m;

	decode_ok("{\"message\":\"menu\"}", &m);
	assert_int_equal(m.type, USP_MENU);
	assert_string_equal(m.vhost, "");
	usp_msg_free(&m);
	decode_ok("{\"message\":\"menu\",\"vhost\":\"a.example\",\"client_session_id\":\"x\"}", &m);
	assert_string_equal(m.vhost, "a.example");
	assert_string_equal(m.client_session_id, "x");
	usp_msg_free(&m);
}

static void
test_decode_invalidate(void **state)
{
	char line[USP_TOKENS_MAX * (sizeof(TOKEN_A) + 3) + 128];
	struct usp_msg m;
	size_t n, i;

	decode_ok("{\"message\":\"invalidate\",\"tokens\":[\"" TOKEN_A "\",\"" TOKEN_B
	          "\"],\"client_session_id\":\"s\"}",
	          &m);
	assert_int_equal(m.type, USP_INVALIDATE);
	assert_int_equal(m.ntokens, 2);
	assert_string_equal(m.tokens[0], TOKEN_A);
	assert_string_equal(m.tokens[1], TOKEN_B);
	assert_string_equal(m.client_session_id, "s");
	usp_msg_free(&m);

	n = (size_t)snprintf(line, sizeof(line), "{\"message\":\"invalidate\",\"tokens\":[");
	for (i = 0; i < USP_TOKENS_MAX; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s\"" TOKEN_A "\"",
		                      i ? "," : "");
	snprintf(line + n, sizeof(line) - n, "]}");
	decode_ok(line, &m);
	assert_int_equal(m.ntokens, USP_TOKENS_MAX);
	usp_msg_free(&m);
}

static void
test_decode_pubkey_signature(void **state)
{
	uint8_t pk[SSHKEY_ED25519_PUBLEN], sig[SSHKEY_ED25519_SIGLEN];
	uint8_t blob[SSHKEY_SIG_BLOB_MAX];
	char key64[B64_MAX], sig64[B64_MAX], line[2 * B64_MAX];
	struct usp_msg m;
	size_t n;

	memset(pk, 0x11, sizeof(pk));
	memset(sig, 0x22, sizeof(sig));
	assert_int_equal(sshkey_blob_encode(pk, blob, sizeof(blob), &n), 0);
	b64(blob, n, key64);
	snprintf(line, sizeof(line), "{\"message\":\"pubkey\",\"user\":\"alice\",\"key\":\"%s\"}",
	         key64);
	decode_ok(line, &m);
	assert_int_equal(m.type, USP_PUBKEY);
	assert_string_equal(m.user, "alice");
	assert_memory_equal(m.pk, pk, sizeof(pk));
	usp_msg_free(&m);

	assert_int_equal(sshkey_sig_encode(sig, blob, sizeof(blob), &n), 0);
	b64(blob, n, sig64);
	snprintf(line, sizeof(line), "{\"message\":\"signature\",\"signature\":\"%s\"}", sig64);
	decode_ok(line, &m);
	assert_int_equal(m.type, USP_SIGNATURE);
	assert_memory_equal(m.sig, sig, sizeof(sig));
	usp_msg_free(&m);

	/* A signature blob is no key blob, and the other way round. */
	snprintf(line, sizeof(line), "{\"message\":\"pubkey\",\"user\":\"alice\",\"key\":\"%s\"}",
	         sig64);
	refused(line, "key: invalid base64 or too long");
	snprintf(line, sizeof(line), "{\"message\":\"signature\",\"signature\":\"%s\"}", key64);
	refused(line, "signature: not an Ed25519 signature blob");
	/* Padding is required. */
	key64[strlen(key64) - 1] = '\0';
	snprintf(line, sizeof(line), "{\"message\":\"pubkey\",\"user\":\"alice\",\"key\":\"%s\"}",
	         key64);
	refused(line, "key: invalid base64 or too long");
}

static void
test_decode_password_response_token(void **state)
{
	char answer[B64_MAX], line[2 * B64_MAX];
	uint8_t bytes[AUTH_RESPONSE_MAX + 1];
	struct usp_msg m;

	decode_ok("{\"message\":\"password\",\"user\":\"_svc.a-1\"}", &m);
	assert_int_equal(m.type, USP_PASSWORD);
	assert_string_equal(m.user, "_svc.a-1");
	usp_msg_free(&m);

	decode_ok("{\"message\":\"response\",\"response\":\"aHVudGVyMg==\"}", &m);
	assert_int_equal(m.type, USP_RESPONSE);
	assert_int_equal(m.response_len, 7);
	assert_memory_equal(m.response, "hunter2", 7);
	usp_msg_free(&m);
	assert_int_equal(m.response_len, 0);

	decode_ok("{\"message\":\"response\",\"response\":\"\"}", &m);
	assert_int_equal(m.response_len, 0);
	usp_msg_free(&m);

	memset(bytes, 'p', sizeof(bytes));
	b64(bytes, AUTH_RESPONSE_MAX, answer);
	snprintf(line, sizeof(line), "{\"message\":\"response\",\"response\":\"%s\"}", answer);
	decode_ok(line, &m);
	assert_int_equal(m.response_len, AUTH_RESPONSE_MAX);
	usp_msg_free(&m);

	decode_ok("{\"message\":\"token\",\"token\":\"" TOKEN_B "\"}", &m);
	assert_int_equal(m.type, USP_TOKEN);
	assert_int_equal(m.ntokens, 1);
	assert_string_equal(m.tokens[0], TOKEN_B);
	usp_msg_free(&m);
	usp_msg_free(NULL);
}

/* --- strictness -------------------------------------------------------------- */

static void
test_refused_json(void **state)
{
	static const char nul[] = "{\"message\":\"menu\"\0}";

	refused("", "not JSON");
	refused("   ", "not JSON");
	refused("{\"message\":\"menu\"", "not JSON");
	refused("{\"message\":\"menu\"}x", "not JSON");
	refused("{\"message\":\"menu\"}{}", "not JSON");
	refused("{'message':'menu'}", "not JSON");
	refused("[{\"message\":\"menu\"}]", "not an object");
	refused("\"menu\"", "not an object");
	refused("1", "not an object");
	refused("null", "not an object");
	refused("{\"message\":\"menu\",\"message\":\"menu\"}", "duplicate member");
	refused("{\"message\":\"menu\",\"vhost\":\"a\",\"vhost\":\"a\"}", "duplicate member");
	refused("{\"message\":\"m\xc3\"}", "invalid UTF-8");
	refused("{\"message\":\"\xed\xa0\x80\"}", "invalid UTF-8");
	refused("{\"message\":\"m\\u0000\"}", "NUL in a string");
	refused("{\"message\":\"menu\",\"x\":1e999}", "number out of range");
	refused("{\"message\":\"menu\",\"x\":99999999999999999999}", "number out of range");
	refused_n(nul, sizeof(nul) - 1, "NUL byte");
}

static void
test_refused_depth(void **state)
{
	struct usp_msg m;

	refused("{\"message\":\"menu\",\"x\":[[[[[[[1]]]]]]]}", "nested more than 7 levels");
	refused("[[[[[[[[", "nested more than 7 levels");
	/* Seven levels (a stream's parameters need them) are the limit's: the member is the reason.
	 */
	refused("{\"message\":\"menu\",\"x\":[[[[[[1]]]]]]}", "unknown member \"x\"");
	/* Brackets in strings do not nest, escaped quotes do not end strings. */
	refused("{\"message\":\"menu\",\"client_session_id\":\"[[[[[{{{{{\\\"[[[[[\"}",
	        "client_session_id: invalid");
	decode_ok("{\"message\":\"menu\",\"vhost\":\"a\",\"client_session_id\":\"b\"}", &m);
	usp_msg_free(&m);
}

/* Refused for another member, a message still names its client's session: the error echoes it. */
static void
test_refused_keeps_client_id(void **state)
{
	static const char kept[] = "{\"message\":\"menu\",\"x\":1,\"client_session_id\":\"c7\"}";
	static const char invalid[] = "{\"message\":\"menu\",\"x\":1,\"client_session_id\":\"[\"}";
	char reason[USP_REASON_MAX];
	struct usp_msg m;

	(void)state;
	assert_int_equal(usp_decode(kept, strlen(kept), &m, reason), -1);
	assert_string_equal(m.client_session_id, "c7");
	assert_int_equal(usp_decode(invalid, strlen(invalid), &m, reason), -1);
	assert_string_equal(m.client_session_id, "");
}

static void
test_refused_members(void **state)
{
	refused("{}", "missing member \"message\"");
	refused("{\"message\":1}", "message: expected a string");
	refused("{\"message\":\"hello\"}", "unknown message \"hello\"");
	refused("{\"message\":\"Menu\"}", "unknown message \"Menu\"");
	refused("{\"message\":\"menu\",\"x\":1}", "unknown member \"x\"");
	refused("{\"message\":\"menu\",\"tokens\":[]}", "unknown member \"tokens\"");
	refused("{\"message\":\"menu\",\"\\u0001\\\"abcdefghijklmnopqrstuvwxyz\":1}",
	        "unknown member \"??abcdefghijklmnopqrstuv...\"");
	refused("{\"message\":\"x\\u00e9\"}", "unknown message \"x??\"");
	refused("{\"message\":\"menu\",\"vhost\":1}", "vhost: expected a string");
	refused("{\"message\":\"menu\",\"vhost\":null}", "vhost: expected a string");
	refused("{\"message\":\"initialize\"}", "missing member \"streams\"");
	refused("{\"message\":\"initialize\",\"streams\":{}}", "streams: expected an array");
	refused("{\"message\":\"initialize\",\"streams\":[{\"application\":\"a\"}],"
	        "\"authentication\":\"pubkey\"}",
	        "authentication: expected an array");
	refused("{\"message\":\"pubkey\",\"user\":\"alice\"}", "missing member \"key\"");
	refused("{\"message\":\"password\",\"user\":\"alice\",\"key\":\"\"}",
	        "unknown member \"key\"");
	refused("{\"message\":\"token\",\"token\":[\"" TOKEN_A "\"]}", "token: expected a string");
	refused("{\"message\":\"invalidate\",\"tokens\":[\"" TOKEN_A "\"],\"vhost\":\"a\"}",
	        "unknown member \"vhost\"");
}

static void
test_refused_streams(void **state)
{
	char line[LINE_BYTES];
	size_t n;
	int i;

	refused("{\"message\":\"initialize\",\"streams\":[]}", "streams: expected 1 to 8 entries");
	n = (size_t)snprintf(line, sizeof(line), "{\"message\":\"initialize\",\"streams\":[");
	for (i = 0; i <= USP_STREAMS_MAX; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s{\"application\":\"a\"}",
		                      i ? "," : "");
	snprintf(line + n, sizeof(line) - n, "]}");
	refused(line, "streams: expected 1 to 8 entries");
	refused("{\"message\":\"initialize\",\"streams\":[\"echo\"]}", "streams: expected objects");
	refused("{\"message\":\"initialize\",\"streams\":[{}]}",
	        "streams: missing member \"application\"");
	refused("{\"message\":\"initialize\",\"streams\":[{\"application\":\"a\",\"x\":1}]}",
	        "streams: unknown member \"x\"");
	refused("{\"message\":\"initialize\",\"streams\":[{\"application\":1}]}",
	        "streams: application: expected a string");
	refused("{\"message\":\"initialize\",\"streams\":[{\"application\":\"-a\"}]}",
	        "streams: invalid application name");
	refused("{\"message\":\"initialize\",\"streams\":[{\"application\":\"\"}]}",
	        "streams: invalid application name");
	refused("{\"message\":\"initialize\",\"streams\":[{\"application\":\"a\",\"token\":\"x\"}]"
	        "}",
	        "streams: invalid token");
	/* A later stream's error frees the earlier streams' tokens. */
	refused("{\"message\":\"initialize\",\"streams\":[{\"application\":\"a\",\"token\":"
	        "\"" TOKEN_A "\"},{\"application\":\"b c\"}]}",
	        "streams: invalid application name");
}

static void
test_refused_protocols(void **state)
{
	refused("{\"message\":\"initialize\",\"streams\":[{\"application\":\"a\"}],"
	        "\"authentication\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]}",
	        "authentication: expected 0 to 8 entries");
	refused("{\"message\":\"initialize\",\"streams\":[{\"application\":\"a\"}],"
	        "\"authentication\":[1]}",
	        "authentication: expected strings");
	refused("{\"message\":\"initialize\",\"streams\":[{\"application\":\"a\"}],"
	        "\"authentication\":[\"PubKey\"]}",
	        "authentication: invalid protocol name");
	refused("{\"message\":\"initialize\",\"streams\":[{\"application\":\"a\"}],"
	        "\"authentication\":[\"\"]}",
	        "authentication: invalid protocol name");
	refused("{\"message\":\"initialize\",\"streams\":[{\"application\":\"a\"}],"
	        "\"authentication\":[\"abcdefghijklmnopqrstuvwxyz-012345\"]}",
	        "authentication: invalid protocol name");
}

static void
test_refused_tokens(void **state)
{
	char line[LINE_BYTES];
	struct usp_msg m;
	size_t n;
	int i;

	refused("{\"message\":\"invalidate\",\"tokens\":[]}", "tokens: expected 1 to 16 entries");
	n = (size_t)snprintf(line, sizeof(line), "{\"message\":\"invalidate\",\"tokens\":[");
	for (i = 0; i <= USP_TOKENS_MAX; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s\"" TOKEN_A "\"",
		                      i ? "," : "");
	snprintf(line + n, sizeof(line) - n, "]}");
	refused(line, "tokens: expected 1 to 16 entries");
	refused("{\"message\":\"invalidate\",\"tokens\":[null]}", "tokens: expected strings");
	refused("{\"message\":\"invalidate\",\"tokens\":[\"" TOKEN_A "\",\"v3.public.AAAA\"]}",
	        "tokens: invalid token");

	refused("{\"message\":\"token\",\"token\":\"v4.public.\"}", "token: invalid token");
	refused("{\"message\":\"token\",\"token\":\"v4.local.AAAA.\"}", "token: invalid token");
	refused("{\"message\":\"token\",\"token\":\"v4.local.AA.AA.AA\"}", "token: invalid token");
	refused("{\"message\":\"token\",\"token\":\"v4.local.AA+A\"}", "token: invalid token");
	refused("{\"message\":\"token\",\"token\":\"V4.LOCAL.AAAA\"}", "token: invalid token");

	/* USP_TOKEN_MAX characters pass, one more does not. */
	n = (size_t)snprintf(line, sizeof(line), "{\"message\":\"token\",\"token\":\"v4.local.");
	memset(line + n, 'A', USP_TOKEN_MAX - strlen("v4.local."));
	n += USP_TOKEN_MAX - strlen("v4.local.");
	snprintf(line + n, sizeof(line) - n, "\"}");
	decode_ok(line, &m);
	assert_int_equal(strlen(m.tokens[0]), USP_TOKEN_MAX);
	usp_msg_free(&m);
	line[n] = 'A';
	snprintf(line + n + 1, sizeof(line) - n - 1, "\"}");
	refused(line, "token: invalid token");
}

static void
test_refused_values(void **state)
{
	char line[2 * B64_MAX], answer[B64_MAX];
	uint8_t bytes[AUTH_RESPONSE_MAX + 1];

	refused("{\"message\":\"menu\",\"vhost\":\"\"}", "vhost: invalid name");
	refused("{\"message\":\"menu\",\"vhost\":\"a b\"}", "vhost: invalid name");
	refused("{\"message\":\"menu\",\"client_session_id\":\"\"}", "client_session_id: invalid");
	refused("{\"message\":\"menu\",\"client_session_id\":\"a/b\"}",
	        "client_session_id: invalid");
	refused("{\"message\":\"menu\",\"client_session_id\":"
	        "\"0123456789012345678901234567890123456789012345678901234567890123x\"}",
	        "client_session_id: invalid");
	refused("{\"message\":\"password\",\"user\":\"1alice\"}", "user: invalid name");
	refused("{\"message\":\"password\",\"user\":\"abcdefghijklmnopqrstuvwxyz0123456\"}",
	        "user: invalid name");
	refused("{\"message\":\"pubkey\",\"user\":\"al ice\",\"key\":\"AAAA\"}",
	        "user: invalid name");
	refused("{\"message\":\"pubkey\",\"user\":\"alice\",\"key\":\"AAAA\"}",
	        "key: not an Ed25519 public key blob");
	refused("{\"message\":\"pubkey\",\"user\":\"alice\",\"key\":\"A\\u00e9AA\"}",
	        "key: invalid base64 or too long");
	refused("{\"message\":\"signature\",\"signature\":\"AAAA\"}",
	        "signature: not an Ed25519 signature blob");
	refused("{\"message\":\"response\",\"response\":\"aHVudGVyMg\"}",
	        "response: invalid base64 or too long");
	refused("{\"message\":\"response\",\"response\":\"aHVu\\nZGVyMg==\"}",
	        "response: invalid base64 or too long");
	refused("{\"message\":\"response\",\"response\":\"aHVudGVyAA==\"}",
	        "response: NUL byte in the answer");
	memset(bytes, 'p', sizeof(bytes));
	b64(bytes, sizeof(bytes), answer);
	snprintf(line, sizeof(line), "{\"message\":\"response\",\"response\":\"%s\"}", answer);
	refused(line, "response: invalid base64 or too long");
}

/* --- server messages ------------------------------------------------------- */

/* Checks an encoder's result and frees it. */
static void
expect(int r, char *out, size_t len, const char *want)
{
	assert_int_equal(r, 0);
	assert_non_null(out);
	assert_string_equal(out, want);
	assert_int_equal(len, strlen(want));
	free(out);
}

static void
test_encode(void **state)
{
	static const enum auth_method supported[] = {AUTH_PUBKEY, AUTH_TOKEN};
	const struct usp_token_result results[] = {
	        {"db", TOKEN_A, NULL},
	        {"web", NULL, "not permitted"},
	};
	const struct usp_menu_entry apps[] = {
	        {"echo", false, false},
	        {"db", true, true},
	        {"vault", false, true},
	};
	uint8_t nonce[AUTH_NONCE_LEN];
	char *out;
	size_t len;
	int r;

	memset(nonce, 0, sizeof(nonce));
	r = usp_encode_authenticate(&ids_server_only, AUTH_PUBKEY, &out, &len);
	expect(r, out, len,
	       "{\"message\":\"authenticate\",\"protocol\":\"pubkey\",\"server_session_id\":"
	       "\"" SERVER_ID "\"}\n");
	r = usp_encode_challenge(&ids_both, SERVER_ID, nonce, &out, &len);
	expect(r, out, len,
	       "{\"message\":\"challenge\",\"session\":\"" SERVER_ID "\",\"nonce\":"
	       "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"server_session_id\":\"" SERVER_ID
	       "\",\"client_session_id\":\"c-1\"}\n");
	r = usp_encode_prompt(&ids_server_only, USP_PROMPT_ECHO_OFF, "Password: ", &out, &len);
	expect(r, out, len,
	       "{\"message\":\"prompt\",\"kind\":\"echo-off\",\"text\":\"Password: \","
	       "\"server_session_id\":\"" SERVER_ID "\"}\n");
	r = usp_encode_prompt(&ids_server_only, USP_PROMPT_INFO, "say \"hi\"\\\n", &out, &len);
	expect(r, out, len,
	       "{\"message\":\"prompt\",\"kind\":\"info\",\"text\":\"say \\\"hi\\\"\\\\\\n\","
	       "\"server_session_id\":\"" SERVER_ID "\"}\n");
	r = usp_encode_token(&ids_both, "alice", results, 2, &out, &len);
	expect(r, out, len,
	       "{\"message\":\"token\",\"identity\":\"alice\",\"streams\":[{\"application\":\"db\","
	       "\"token\":\"" TOKEN_A "\"},{\"application\":\"web\",\"error\":\"not permitted\"}],"
	       "\"server_session_id\":\"" SERVER_ID "\",\"client_session_id\":\"c-1\"}\n");
	r = usp_encode_token(&ids_server_only, NULL, results, 1, &out, &len);
	expect(r, out, len,
	       "{\"message\":\"token\",\"streams\":[{\"application\":\"db\",\"token\":\"" TOKEN_A
	       "\"}],\"server_session_id\":\"" SERVER_ID "\"}\n");
	r = usp_encode_connect(&ids_server_only, "echo", &out, &len);
	expect(r, out, len,
	       "{\"message\":\"connect\",\"application\":\"echo\",\"server_session_id\":"
	       "\"" SERVER_ID "\"}\n");
	r = usp_encode_menu(&ids_server_only, apps, 3, &out, &len);
	expect(r, out, len,
	       "{\"message\":\"menu\",\"applications\":[{\"application\":\"echo\",\"requires\":[]},"
	       "{\"application\":\"db\",\"requires\":[\"authentication\",\"encryption\"]},"
	       "{\"application\":\"vault\",\"requires\":[\"encryption\"]}],"
	       "\"server_session_id\":\"" SERVER_ID "\"}\n");
	r = usp_encode_menu(&ids_server_only, NULL, 0, &out, &len);
	expect(r, out, len,
	       "{\"message\":\"menu\",\"applications\":[],\"server_session_id\":\"" SERVER_ID
	       "\"}\n");
	r = usp_encode_invalidated(&ids_both, 3, &out, &len);
	expect(r, out, len,
	       "{\"message\":\"invalidated\",\"count\":3,\"server_session_id\":\"" SERVER_ID
	       "\",\"client_session_id\":\"c-1\"}\n");
	r = usp_encode_error(&ids_server_only, "no common authentication protocol", NULL, supported,
	                     2, &out, &len);
	expect(r, out, len,
	       "{\"message\":\"error\",\"error\":\"no common authentication protocol\","
	       "\"supported\":[\"pubkey\",\"token\"],\"server_session_id\":\"" SERVER_ID "\"}\n");
	r = usp_encode_error(&ids_server_only, "not permitted", "db", NULL, 0, &out, &len);
	expect(r, out, len,
	       "{\"message\":\"error\",\"error\":\"not permitted\",\"application\":\"db\","
	       "\"server_session_id\":\"" SERVER_ID "\"}\n");
	r = usp_encode_error(&ids_server_only, "no common authentication protocol", NULL, supported,
	                     0, &out, &len);
	expect(r, out, len,
	       "{\"message\":\"error\",\"error\":\"no common authentication protocol\","
	       "\"supported\":[],\"server_session_id\":\"" SERVER_ID "\"}\n");
}

/*
 * An encoder call, writing to out and len, that must refuse: -1, and both
 * outputs cleared from what they held before.
 */
#define REFUSES(call)                                                                              \
	do {                                                                                       \
		out = sentinel;                                                                    \
		len = sizeof(sentinel);                                                            \
		assert_int_equal((call), -1);                                                      \
		assert_null(out);                                                                  \
		assert_int_equal(len, 0);                                                          \
	} while (0)

static char sentinel[] = "untouched";

static void
test_encode_refused(void **state)
{
	static const struct usp_ids bad_server = {"0123456789ABCDEF0123456789abcdef", ""};
	static const struct usp_ids bad_client = {SERVER_ID, "c 1"};
	static const enum auth_method none[] = {AUTH_NONE};
	const struct usp_token_result good = {"db", TOKEN_A, NULL};
	const struct usp_token_result both = {"db", TOKEN_A, "x"};
	const struct usp_token_result neither = {"db", NULL, NULL};
	const struct usp_token_result bad_token = {"db", "v4.public.", NULL};
	const struct usp_token_result empty_error = {"db", NULL, ""};
	const struct usp_menu_entry bad_app = {"-db", false, false};
	uint8_t nonce[AUTH_NONCE_LEN] = {0};
	char *out;
	size_t len;

	REFUSES(usp_encode_connect(&bad_server, "echo", &out, &len));
	REFUSES(usp_encode_connect(&bad_client, "echo", &out, &len));
	REFUSES(usp_encode_connect(&ids_both, "e cho", &out, &len));
	REFUSES(usp_encode_authenticate(&ids_both, AUTH_NONE, &out, &len));
	REFUSES(usp_encode_authenticate(&ids_both, AUTH_METHOD_COUNT, &out, &len));
	REFUSES(usp_encode_challenge(&ids_both, "abc", nonce, &out, &len));
	REFUSES(usp_encode_prompt(&ids_both, USP_PROMPT_ERROR, "\xff", &out, &len));
	REFUSES(usp_encode_prompt(&ids_both, (enum usp_prompt_kind)4, "x", &out, &len));
	REFUSES(usp_encode_token(&ids_both, NULL, &both, 1, &out, &len));
	REFUSES(usp_encode_token(&ids_both, NULL, &neither, 1, &out, &len));
	REFUSES(usp_encode_token(&ids_both, NULL, &bad_token, 1, &out, &len));
	REFUSES(usp_encode_token(&ids_both, NULL, &empty_error, 1, &out, &len));
	REFUSES(usp_encode_token(&ids_both, "al ice", &good, 1, &out, &len));
	REFUSES(usp_encode_token(&ids_both, NULL, &good, 0, &out, &len));
	REFUSES(usp_encode_menu(&ids_both, &bad_app, 1, &out, &len));
	REFUSES(usp_encode_invalidated(&ids_both, USP_TOKENS_MAX + 1, &out, &len));
	REFUSES(usp_encode_error(&ids_both, "", NULL, NULL, 0, &out, &len));
	REFUSES(usp_encode_error(&ids_both, "x", "a b", NULL, 0, &out, &len));
	REFUSES(usp_encode_error(&ids_both, "x", NULL, none, 1, &out, &len));
}

/* Section 13's messages: the hash's exact form; the answers' members. */
static void
test_proveauth(void **state)
{
	static const char hex[] =
	        "297e089a0942a3f5bd5800aecf4178d4a71e08a8beff2d2385790fc806a8d030";
	static const char key[] = "VZyG/pbYSlIkR2EKpJTTpqGQhKBGg3aVaueVirCGAdU=";
	struct usp_msg m;
	char *out;
	size_t len;
	int r;

	(void)state;
	decode_ok("{\"message\":\"proveauth\",\"hash\":\"297e089a0942a3f5bd5800aecf4178d4a71e08a8"
	          "beff2d2385790fc806a8d030\",\"client_session_id\":\"c-1\"}",
	          &m);
	assert_int_equal(m.type, USP_PROVEAUTH);
	assert_string_equal(m.hash, hex);
	usp_msg_free(&m);
	decode_ok("{\"message\":\"getsignkey\"}", &m);
	assert_int_equal(m.type, USP_GETSIGNKEY);
	usp_msg_free(&m);
	refused("{\"message\":\"proveauth\",\"hash\":\"297E\"}",
	        "hash: expected 64 lowercase hex digits");
	refused("{\"message\":\"proveauth\"}", "missing member \"hash\"");
	r = usp_encode_signkey(&ids_server_only, key, "idp.example", &out, &len);
	expect(r, out, len,
	       "{\"message\":\"signkey\",\"key\":\"VZyG/pbYSlIkR2EKpJTTpqGQhKBGg3aVaueVirCGAdU=\","
	       "\"provider\":\"idp.example\",\"server_session_id\":\"" SERVER_ID "\"}\n");
	r = usp_encode_proof(&ids_server_only, "v4.public.abc.def", &out, &len);
	expect(r, out, len,
	       "{\"message\":\"proof\",\"proof\":\"v4.public.abc.def\",\"server_session_id\":"
	       "\"" SERVER_ID "\"}\n");
	assert_int_equal(usp_encode_proof(&ids_server_only, "v4.local.abc", &out, &len), -1);
	assert_int_equal(usp_encode_signkey(&ids_server_only, key, "", &out, &len), -1);
}

/* --- the email's forms (section 8.7) ------------------------------------------ */

#define AUTHZ "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void
test_email_session_request(void **state)
{
	struct usp_msg m;

	(void)state;
	decode_ok("{\"client_session_id\":\"c-1\",\"authorization_token\":null,"
	          "\"application_session\":null}",
	          &m);
	assert_int_equal(m.type, USP_SESSION_REQUEST);
	assert_int_equal(m.authz_kind, USP_AUTHZ_NULL);
	assert_int_equal(m.action, USP_ACTION_NONE);
	assert_string_equal(m.client_session_id, "c-1");
	usp_msg_free(&m);
	decode_ok("{\"client_session_id\":\"c-1\",\"authorization_token\":\"" AUTHZ "\","
	          "\"application_session\":{\"token\":\"" TOKEN_A "\",\"action\":\"begin\"}}",
	          &m);
	assert_int_equal(m.authz_kind, USP_AUTHZ_GIVEN);
	assert_string_equal(m.authz, AUTHZ);
	assert_int_equal(m.action, USP_ACTION_BEGIN);
	assert_int_equal(m.ntokens, 1);
	assert_string_equal(m.tokens[0], TOKEN_A);
	usp_msg_free(&m);
	/* Not fived's form: taken, and judged invalid where it counts. */
	decode_ok("{\"application_session\":{\"action\":\"end\",\"token\":\"" TOKEN_B "\"},"
	          "\"authorization_token\":\"" AUTHZ "0\",\"client_session_id\":\"c-1\"}",
	          &m);
	assert_int_equal(m.authz_kind, USP_AUTHZ_OTHER);
	assert_int_equal(m.action, USP_ACTION_END);
	usp_msg_free(&m);
	refused("{\"client_session_id\":\"c-1\",\"authorization_token\":null}",
	        "missing member \"message\"");
	refused("{\"client_session_id\":\"c-1\",\"application_session\":null}",
	        "missing member \"authorization_token\"");
	refused("{\"authorization_token\":null,\"application_session\":null}",
	        "missing member \"client_session_id\"");
	refused("{\"client_session_id\":null,\"authorization_token\":null,"
	        "\"application_session\":null}",
	        "client_session_id: expected a string");
	refused("{\"client_session_id\":\"c-1\",\"authorization_token\":1,"
	        "\"application_session\":null}",
	        "authorization_token: expected a string or null");
	refused("{\"client_session_id\":\"c-1\",\"authorization_token\":null,"
	        "\"application_session\":null,\"requested_services\":{}}",
	        "unknown member \"requested_services\"");
	refused("{\"client_session_id\":\"c-1\",\"authorization_token\":null,"
	        "\"application_session\":{\"token\":null,\"action\":\"begin\"}}",
	        "application_session: token: expected a token");
	refused("{\"client_session_id\":\"c-1\",\"authorization_token\":null,"
	        "\"application_session\":{\"token\":\"" TOKEN_A "\",\"action\":\"resume\"}}",
	        "application_session: action: expected \"begin\" or \"end\"");
	refused("{\"client_session_id\":\"c-1\",\"authorization_token\":null,"
	        "\"application_session\":{\"token\":\"" TOKEN_A "\"}}",
	        "application_session: missing member \"action\"");
}

static void
test_email_service_request(void **state)
{
	struct usp_msg m;

	(void)state;
	decode_ok("{\"client_session_id\":\"c-1\",\"authorization_token\":null,"
	          "\"requested_services\":{\"3\":{},\"0\":{\"auth_method\":\"pubkey\"},"
	          "\"1\":{},\"999999\":{}}}",
	          &m);
	assert_int_equal(m.type, USP_SERVICE_REQUEST);
	assert_true(m.authenticate);
	assert_false(m.invalidate);
	assert_true(m.offered_protocols);
	assert_int_equal(m.nprotocols, 1);
	assert_int_equal(m.protocols[0], AUTH_PUBKEY);
	assert_int_equal(m.nservices, 3);
	assert_int_equal(m.services[0], 3);
	assert_int_equal(m.services[1], 1);
	assert_int_equal(m.services[2], 999999);
	usp_msg_free(&m);
	/* A method fived does not know is offered, and none is usable: flow 4. */
	decode_ok("{\"client_session_id\":\"c-1\",\"authorization_token\":null,"
	          "\"requested_services\":{\"0\":{\"auth_method\":\"kerberos\"}}}",
	          &m);
	assert_true(m.offered_protocols);
	assert_int_equal(m.nprotocols, 0);
	usp_msg_free(&m);
	decode_ok("{\"client_session_id\":\"c-1\",\"authorization_token\":\"" AUTHZ "\","
	          "\"requested_services\":{\"0\":[\"" TOKEN_A "\",\"" TOKEN_B "\"]}}",
	          &m);
	assert_true(m.invalidate);
	assert_int_equal(m.ntokens, 2);
	assert_string_equal(m.tokens[1], TOKEN_B);
	assert_int_equal(m.nservices, 0);
	usp_msg_free(&m);

#define SERVICES(x)                                                                                \
	"{\"client_session_id\":\"c-1\",\"authorization_token\":null,"                             \
	"\"requested_services\":" x "}"
	refused(SERVICES("{}"), "requested_services: expected at least one index");
	refused(SERVICES("[]"), "requested_services: expected an object");
	refused(SERVICES("{\"01\":{}}"), "requested_services: \"01\" is not an index");
	refused(SERVICES("{\"-1\":{}}"), "requested_services: \"-1\" is not an index");
	refused(SERVICES("{\"1000000\":{}}"), "requested_services: \"1000000\" is not an index");
	refused(SERVICES("{\"db\":{}}"), "requested_services: \"db\" is not an index");
	refused(SERVICES("{\"1\":{\"a\":\"\"}}"), "requested_services: 1: expected {}");
	refused(SERVICES("{\"1\":[]}"), "requested_services: 1: expected {}");
	refused(SERVICES("{\"1\":{},\"2\":{},\"3\":{},\"4\":{},\"5\":{},\"6\":{},\"7\":{},"
	                 "\"8\":{},\"9\":{}}"),
	        "requested_services: at most 8 applications");
	refused(SERVICES("{\"0\":\"pubkey\"}"),
	        "requested_services: 0: expected an object or an array");
	refused(SERVICES("{\"0\":{}}"), "requested_services: 0: missing member \"auth_method\"");
	refused(SERVICES("{\"0\":{\"auth_method\":\"PUBKEY\"}}"),
	        "requested_services: 0: auth_method: invalid protocol name");
	refused(SERVICES("{\"0\":[]}"), "requested_services: 0: expected 1 to 16 entries");
	refused(SERVICES("{\"0\":[\"nope\"]}"), "requested_services: 0: invalid token");
	refused(SERVICES("{\"1\":{},\"1\":{}}"), "duplicate member");
#undef SERVICES
}

static void
test_email_encode(void **state)
{
	static const enum auth_method methods[] = {AUTH_PUBKEY, AUTH_PASSWORD};
	const struct usp_menu_entry apps[] = {
	        {"echo", false, false},
	        {"vault", false, true},
	};
	struct usp_app_menu menu = {false, methods, 2, apps, 2};
	const struct usp_service_result results[] = {
	        {3, TOKEN_A, NULL},
	        {1, NULL, "authentication required"},
	};
	struct usp_service_answer a = {.results = results, .nresults = 2};
	char *out;
	size_t len;
	int r;

	(void)state;
	r = usp_encode_app_menu(&ids_both, &menu, &out, &len);
	expect(r, out, len,
	       "{\"application_menu\":{\"0\":[{\"auth_method\":\"pubkey\",\"expected_request_"
	       "body\":"
	       "{\"auth_method\":\"\"}},{\"auth_method\":\"password\",\"expected_request_body\":"
	       "{\"auth_method\":\"\"}}],\"1\":{\"name\":\"echo\",\"requires\":[],"
	       "\"expected_request_body\":{}},\"2\":{\"name\":\"vault\",\"requires\":"
	       "[\"encryption\"],\"expected_request_body\":{}}},\"server_session_id\":\"" SERVER_ID
	       "\",\"client_session_id\":\"c-1\"}\n");
	menu.authenticated = true;
	menu.napps = 0;
	r = usp_encode_app_menu(&ids_server_only, &menu, &out, &len);
	expect(r, out, len,
	       "{\"application_menu\":{\"0\":{\"name\":\"token invalidation\","
	       "\"expected_request_body\":[\"\"]}},\"server_session_id\":\"" SERVER_ID "\"}\n");
	r = usp_encode_service_answer(&ids_server_only, &a, &out, &len);
	expect(r, out, len,
	       "{\"3\":{\"token\":\"" TOKEN_A "\"},\"1\":{\"error\":{\"message\":\"authentication "
	       "required\"}},\"server_session_id\":\"" SERVER_ID "\"}\n");
	a.authz = AUTHZ;
	a.menu = &menu;
	a.invalidated = true;
	a.count = 2;
	a.nresults = 0;
	r = usp_encode_service_answer(&ids_server_only, &a, &out, &len);
	expect(r, out, len,
	       "{\"authorization_token\":\"" AUTHZ "\",\"application_menu\":{\"0\":{\"name\":"
	       "\"token "
	       "invalidation\",\"expected_request_body\":[\"\"]}},\"0\":{\"invalidated\":2},"
	       "\"server_session_id\":\"" SERVER_ID "\"}\n");
	/* What a caller must not ask for: a short authorization token, index 0 as a service. */
	a.authz = "abc";
	REFUSES(usp_encode_service_answer(&ids_server_only, &a, &out, &len));
	a.authz = NULL;
	a.results = (const struct usp_service_result[]){{0, TOKEN_A, NULL}};
	a.nresults = 1;
	REFUSES(usp_encode_service_answer(&ids_server_only, &a, &out, &len));
	a.results = (const struct usp_service_result[]){{1000000, TOKEN_A, NULL}};
	REFUSES(usp_encode_service_answer(&ids_server_only, &a, &out, &len));
}

static void
test_encode_line_limit(void **state)
{
	enum { APPS = 1024 };
	static char names[APPS][NAME_MAX_LEN + 1];
	static struct usp_menu_entry apps[APPS];
	char *out;
	size_t len, i;

	for (i = 0; i < APPS; i++) {
		memset(names[i], 'a', NAME_MAX_LEN);
		apps[i].application = names[i];
		apps[i].needs_authentication = true;
	}
	/* 113 bytes each: 500 fit in a line, 1024 do not. */
	assert_int_equal(usp_encode_menu(&ids_both, apps, 500, &out, &len), 0);
	assert_true(len <= USP_LINE_MAX);
	free(out);
	REFUSES(usp_encode_menu(&ids_both, apps, APPS, &out, &len));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_line_lf_crlf),
	        cmocka_unit_test(test_line_split),
	        cmocka_unit_test(test_line_empty),
	        cmocka_unit_test(test_line_limit),
	        cmocka_unit_test(test_decode_initialize),
	        cmocka_unit_test(test_decode_limits_accepted),
	        cmocka_unit_test(test_decode_menu),
	        cmocka_unit_test(test_decode_invalidate),
	        cmocka_unit_test(test_decode_pubkey_signature),
	        cmocka_unit_test(test_decode_password_response_token),
	        cmocka_unit_test(test_refused_json),
	        cmocka_unit_test(test_refused_depth),
	        cmocka_unit_test(test_refused_keeps_client_id),
	        cmocka_unit_test(test_refused_members),
	        cmocka_unit_test(test_refused_streams),
	        cmocka_unit_test(test_refused_protocols),
	        cmocka_unit_test(test_refused_tokens),
	        cmocka_unit_test(test_refused_values),
	        cmocka_unit_test(test_encode),
	        cmocka_unit_test(test_encode_refused),
	        cmocka_unit_test(test_encode_line_limit),
	        cmocka_unit_test(test_proveauth),
	        cmocka_unit_test(test_email_session_request),
	        cmocka_unit_test(test_email_service_request),
	        cmocka_unit_test(test_email_encode),
	};

	return UNIT_RUN_WITH_SODIUM(tests, NULL, NULL);
}
