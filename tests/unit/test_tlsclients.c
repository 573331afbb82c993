/* The tls_clients file: certificates by fingerprint or verified subject, to identities. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/tlsclients.h"
#include "server/conf/config.h"

#define ERR_MAX 256

/* SHA256: texts of the fingerprints 0x00.. and 0x01.. (32 equal bytes). */
#define FP_ZERO "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define FP_ONES "SHA256:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"

static int
parse(const char *text, bool subjects_ok, struct tls_clients *c, char *err)
{
	return tlsclients_parse("tls_clients", text, strlen(text), subjects_ok, c, err, ERR_MAX);
}

static void
fails(const char *text, bool subjects_ok, const char *expected)
{
	struct tls_clients c;
	char err[ERR_MAX];

	assert_int_equal(parse(text, subjects_ok, &c, err), -1);
	assert_string_equal(err, expected);
	assert_null(c.fps);
	assert_null(c.subjects);
	assert_int_equal(c.nfps + c.nsubjects, 0);
}

static void
test_fingerprints(void **state)
{
	struct tls_clients c;
	uint8_t fp[TLSCLIENTS_FP_LEN];
	char err[ERR_MAX], text[TLSCLIENTS_FP_TEXT_MAX];

	assert_int_equal(parse("# who may present what\n\n" FP_ONES " bob\r\n  " FP_ZERO
	                       "\talice  \n",
	                       false, &c, err),
	                 0);
	assert_int_equal(c.nfps, 2);
	memset(fp, 0, sizeof(fp));
	assert_string_equal(tlsclients_by_fingerprint(&c, fp), "alice");
	tlsclients_fp_text(fp, text);
	assert_string_equal(text, FP_ZERO);
	memset(fp, 1, sizeof(fp));
	assert_string_equal(tlsclients_by_fingerprint(&c, fp), "bob");
	tlsclients_fp_text(fp, text);
	assert_string_equal(text, FP_ONES);
	memset(fp, 2, sizeof(fp));
	assert_null(tlsclients_by_fingerprint(&c, fp));
	assert_null(tlsclients_by_subject(&c, "CN=alice"));
	tlsclients_free(&c);
	tlsclients_free(&c);
}

static void
test_subjects(void **state)
{
	struct tls_clients c;
	char err[ERR_MAX];

	assert_int_equal(parse("subject:CN=Alice Liddell,O=Wonderland alice\n"
	                       "subject:CN=bob\\, the builder,O=Example bob\n" FP_ZERO " carol\n",
	                       true, &c, err),
	                 0);
	assert_int_equal(c.nsubjects, 2);
	assert_int_equal(c.nfps, 1);
	assert_string_equal(tlsclients_by_subject(&c, "CN=Alice Liddell,O=Wonderland"), "alice");
	assert_string_equal(tlsclients_by_subject(&c, "CN=bob\\, the builder,O=Example"), "bob");
	/* Exact strings: no case folding, no reordering. */
	assert_null(tlsclients_by_subject(&c, "CN=alice liddell,O=Wonderland"));
	assert_null(tlsclients_by_subject(&c, "O=Wonderland,CN=Alice Liddell"));
	tlsclients_free(&c);
}

static void
test_empty(void **state)
{
	struct tls_clients c;
	uint8_t fp[TLSCLIENTS_FP_LEN] = {0};
	char err[ERR_MAX];

	assert_int_equal(tlsclients_parse("tls_clients", "", 0, false, &c, err, sizeof(err)), 0);
	assert_null(tlsclients_by_fingerprint(&c, fp));
	assert_null(tlsclients_by_subject(&c, "CN=x"));
	tlsclients_free(&c);
}

static void
test_errors(void **state)
{
	fails("subject:CN=alice alice\n", false,
	      "tls_clients:1: subject: lines need tls_client_ca");
	fails("# ok\n" FP_ZERO "\n", false, "tls_clients:2: expected CERTIFICATE IDENTITY");
	fails(FP_ZERO " bad/identity\n", false, "tls_clients:1: not a valid identity");
	fails("SHA256:AAAA alice\n", false,
	      "tls_clients:1: not a SHA256: fingerprint (43 characters of base64, no padding)");
	fails(FP_ZERO "= alice\n", false,
	      "tls_clients:1: not a SHA256: fingerprint (43 characters of base64, no padding)");
	fails("sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA alice\n", false,
	      "tls_clients:1: expected SHA256:FINGERPRINT or subject:SUBJECT");
	fails("subject: CN=x alice\n", true,
	      "tls_clients:1: expected a subject of 1 to 512 characters right after subject:");
	fails("subject: alice\n", true,
	      "tls_clients:1: expected a subject of 1 to 512 characters right after subject:");
	fails("subject:CN=\xc3\xa9 alice\n", true,
	      "tls_clients:1: a subject is printable ASCII (RFC 2253 escapes the rest)");
	fails(FP_ZERO " alice\n" FP_ONES " bob\n" FP_ZERO " carol\n", false,
	      "tls_clients:3: a certificate listed twice");
	fails("subject:CN=a alice\nsubject:CN=a bob\n", true,
	      "tls_clients:2: a certificate listed twice");
}

static void
test_bad_bytes_and_lengths(void **state)
{
	static const char nul[] = FP_ZERO " al\0ice\n";
	char err[ERR_MAX], big[TLSCLIENTS_LINE_MAX + 16];
	struct tls_clients c;

	assert_int_equal(tlsclients_parse("f", nul, sizeof(nul) - 1, false, &c, err, sizeof(err)),
	                 -1);
	assert_string_equal(err, "f:1: line too long, or a NUL byte");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	fails(big, false, "tls_clients:1: line too long, or a NUL byte");
}

/* The two configuration keys that go with the file. */
static void
test_config_keys(void **state)
{
	static const char base[] = "[server]\nlisten = tcp:127.0.0.1:1\n";
	struct config_errors errs;
	struct config *cfg;
	char text[256];

	snprintf(text, sizeof(text),
	         "%stls_clients = /etc/fived/tls_clients\n"
	         "tls_client_ca = /etc/fived/ca.pem\n",
	         base);
	assert_non_null(cfg = config_parse("t.conf", text, strlen(text), &errs));
	assert_string_equal(cfg->tls_clients, "/etc/fived/tls_clients");
	assert_string_equal(cfg->tls_client_ca, "/etc/fived/ca.pem");
	config_unref(cfg);
	snprintf(text, sizeof(text), "%stls_clients = none\n", base);
	assert_non_null(cfg = config_parse("t.conf", text, strlen(text), &errs));
	assert_string_equal(cfg->tls_clients, "");
	assert_string_equal(cfg->tls_client_ca, "");
	config_unref(cfg);
	snprintf(text, sizeof(text), "%stls_clients = clients\n", base);
	assert_null(config_parse("t.conf", text, strlen(text), &errs));
	assert_string_equal(errs.text,
	                    "t.conf:3: tls_clients: expected an absolute path or none\n");
	snprintf(text, sizeof(text), "%stls_client_ca = ca.pem\n", base);
	assert_null(config_parse("t.conf", text, strlen(text), &errs));
	assert_string_equal(errs.text,
	                    "t.conf:3: tls_client_ca: expected an absolute path or none\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_fingerprints),
	        cmocka_unit_test(test_subjects),
	        cmocka_unit_test(test_empty),
	        cmocka_unit_test(test_errors),
	        cmocka_unit_test(test_bad_bytes_and_lengths),
	        cmocka_unit_test(test_config_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
