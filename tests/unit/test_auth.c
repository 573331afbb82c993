/* The AUTH exchange's pure parts: method lists, client lines, signed data, PAM conversation lines.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "proto/auth.h"
#include "unit.h"

static void
test_methods(void **state)
{
	enum auth_method m[AUTH_METHODS_MAX];
	size_t n;

	assert_int_equal(auth_methods_parse("pubkey,password", m, AUTH_METHODS_MAX, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(m[0], AUTH_PUBKEY);
	assert_int_equal(m[1], AUTH_PASSWORD);
	/* Unknown names are skipped: a client may be newer than the server. */
	assert_int_equal(auth_methods_parse("gssapi,password", m, AUTH_METHODS_MAX, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(m[0], AUTH_PASSWORD);
	assert_int_equal(auth_methods_parse("", m, AUTH_METHODS_MAX, &n), -1);
	assert_int_equal(auth_methods_parse("pubkey,", m, AUTH_METHODS_MAX, &n), -1);
	assert_int_equal(auth_methods_parse(",pubkey", m, AUTH_METHODS_MAX, &n), -1);
	assert_int_equal(auth_methods_parse("PubKey", m, AUTH_METHODS_MAX, &n), -1);
	assert_int_equal(auth_methods_parse("a,b,c,d,e,f,g,h,i", m, AUTH_METHODS_MAX, &n), -1);
	assert_int_equal(auth_methods_parse("averyveryverylongname", m, AUTH_METHODS_MAX, &n), -1);
	assert_string_equal(auth_method_name(AUTH_EXTERNAL), "external");
}

static void
test_names(void **state)
{
	assert_true(auth_user_valid("alice"));
	assert_true(auth_user_valid("_svc.db-1"));
	assert_false(auth_user_valid("1alice"));
	assert_false(auth_user_valid("al ice"));
	assert_false(auth_user_valid(""));
	assert_false(auth_user_valid("a23456789012345678901234567890123"));
	assert_true(auth_identity_valid("alice@example.org"));
	assert_false(auth_identity_valid("alice bob"));
}

static void
test_user_and_signature_lines(void **state)
{
	uint8_t pk[AUTH_PK_LEN], sk[64], sig[AUTH_SIG_LEN];
	struct auth_line l;
	char line[512];
	const char *why;

	crypto_sign_keypair(pk, sk);
	assert_int_equal(auth_user_line("alice", pk, line, sizeof(line)), 0);
	assert_memory_equal(line, "USER alice ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", 48);
	line[strlen(line) - 2] = '\0';
	assert_int_equal(auth_line_parse(line, &l, &why), 0);
	assert_int_equal(l.kind, AUTH_LINE_USER);
	assert_string_equal(l.user, "alice");
	assert_true(l.has_key);
	assert_memory_equal(l.pk, pk, AUTH_PK_LEN);

	assert_int_equal(auth_line_parse("USER bob", &l, &why), 0);
	assert_false(l.has_key);
	assert_int_equal(auth_line_parse("USER", &l, &why), -1);
	assert_int_equal(auth_line_parse("USER bob ssh-rsa AAAA", &l, &why), -1);
	assert_string_equal(why, "unsupported key type");
	assert_int_equal(auth_line_parse("USER bob ssh-ed25519 AAAA", &l, &why), -1);
	assert_int_equal(auth_line_parse("USER b/b", &l, &why), -1);
	assert_int_equal(auth_line_parse("USER  bob", &l, &why), -1);

	memset(sig, 7, sizeof(sig));
	assert_int_equal(auth_signature_line(sig, line, sizeof(line)), 0);
	line[strlen(line) - 2] = '\0';
	assert_int_equal(auth_line_parse(line, &l, &why), 0);
	assert_int_equal(l.kind, AUTH_LINE_SIGNATURE);
	assert_memory_equal(l.sig, sig, AUTH_SIG_LEN);
	assert_int_equal(auth_line_parse("SIGNATURE AAAA", &l, &why), -1);
	assert_int_equal(auth_line_parse("SIGNATURE", &l, &why), -1);
	assert_int_equal(auth_line_parse("signature AAAA", &l, &why), -1);
}

static void
test_response_line(void **state)
{
	struct auth_line l;
	char line[512];
	const char *why;

	assert_int_equal(auth_response_line((const uint8_t *)"s3cret pass", 11, line, sizeof(line)),
	                 0);
	line[strlen(line) - 2] = '\0';
	assert_int_equal(auth_line_parse(line, &l, &why), 0);
	assert_int_equal(l.kind, AUTH_LINE_RESPONSE);
	assert_int_equal(l.response_len, 11);
	assert_memory_equal(l.response, "s3cret pass", 11);
	assert_int_equal(auth_line_parse("RESPONSE ===", &l, &why), -1);
	assert_int_equal(
	        auth_response_line((const uint8_t *)"", AUTH_RESPONSE_MAX + 1, line, sizeof(line)),
	        -1);
}

static void
test_signed_data_binds_everything(void **state)
{
	uint8_t nonce[AUTH_NONCE_LEN] = {1}, pk[AUTH_PK_LEN] = {2};
	uint8_t server[AUTH_SERVER_KEY_LEN] = {3};
	uint8_t a[AUTH_SIGNED_MAX], b[AUTH_SIGNED_MAX];
	struct auth_signed in = {.session_id = "0123456789abcdef0123456789abcdef",
	                         .nonce = nonce,
	                         .user = "alice",
	                         .pk = pk};
	struct auth_signed other;
	size_t alen, blen;

	assert_int_equal(auth_signed_data(&in, a, sizeof(a), &alen), 0);
	assert_memory_equal(a, "\0\0\0\x14" AUTH_PUBKEY_CONTEXT, 24);
	other = in;
	other.session_id = "0123456789abcdef0123456789abcdee";
	assert_int_equal(auth_signed_data(&other, b, sizeof(b), &blen), 0);
	assert_memory_not_equal(a, b, alen);
	nonce[31] ^= 1;
	assert_int_equal(auth_signed_data(&in, b, sizeof(b), &blen), 0);
	assert_memory_not_equal(a, b, alen);
	nonce[31] ^= 1;
	other = in;
	other.user = "alicf";
	assert_int_equal(auth_signed_data(&other, b, sizeof(b), &blen), 0);
	assert_memory_not_equal(a, b, alen);
	other = in;
	other.binding = (const uint8_t *)"x";
	other.binding_len = 1;
	assert_int_equal(auth_signed_data(&other, b, sizeof(b), &blen), 0);
	assert_int_not_equal(alen, blen);
	/* The server's key is bound when given: a signature for one server fails at another. */
	other = in;
	other.server_key = server;
	assert_int_equal(auth_signed_data(&other, b, sizeof(b), &blen), 0);
	assert_int_equal(blen, alen + AUTH_SERVER_KEY_LEN);
	server[0] ^= 1;
	assert_int_equal(auth_signed_data(&other, a, sizeof(a), &alen), 0);
	assert_memory_not_equal(a, b, alen);
	other = in;
	other.session_id = "short";
	assert_int_equal(auth_signed_data(&other, b, sizeof(b), &blen), -1);
	assert_int_equal(auth_signed_data(&in, b, 20, &blen), -1);
}

static void
test_pamconv(void **state)
{
	struct pamconv_msg m, back;
	char line[PAMCONV_LINE_MAX];
	int n;

	memset(&m, 0, sizeof(m));
	m.kind = PAMCONV_PROMPT_ECHO_OFF;
	strcpy(m.text, "Password: \x01\xff");
	n = pamconv_encode(&m, line, sizeof(line));
	assert_string_equal(line, "P Password: ??\n");
	assert_int_equal(pamconv_parse(line, (size_t)n - 1, &back), 0);
	assert_int_equal(back.kind, PAMCONV_PROMPT_ECHO_OFF);
	assert_string_equal(back.text, "Password: ??");

	m.kind = PAMCONV_ANSWER;
	memcpy(m.answer, "hunter2\0x", 9);
	m.answer_len = 9;
	n = pamconv_encode(&m, line, sizeof(line));
	assert_int_equal(pamconv_parse(line, (size_t)n - 1, &back), 0);
	assert_int_equal(back.answer_len, 9);
	assert_memory_equal(back.answer, "hunter2\0x", 9);

	assert_int_equal(pamconv_parse("S alice", 7, &back), 0);
	assert_string_equal(back.text, "alice");
	assert_int_equal(pamconv_parse("F", 1, &back), 0);
	assert_int_equal(back.kind, PAMCONV_FAILURE);
	assert_int_equal(pamconv_parse("F x", 3, &back), -1);
	assert_int_equal(pamconv_parse("S", 1, &back), -1);
	assert_int_equal(pamconv_parse("S al ice", 8, &back), -1);
	assert_int_equal(pamconv_parse("X hi", 4, &back), -1);
	assert_int_equal(pamconv_parse("Phi", 3, &back), -1);
	assert_int_equal(pamconv_parse("I a\tb", 5, &back), -1);
	assert_int_equal(pamconv_parse("", 0, &back), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_methods),
	        cmocka_unit_test(test_names),
	        cmocka_unit_test(test_user_and_signature_lines),
	        cmocka_unit_test(test_response_line),
	        cmocka_unit_test(test_signed_data_binds_everything),
	        cmocka_unit_test(test_pamconv),
	};

	return UNIT_RUN_WITH_SODIUM(tests, NULL, NULL);
}
