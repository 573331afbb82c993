/*
 * The text dialect's decisions, without a socket: a table of commands, what
 * the session has established, and the verdict and reply each must get
 * (RFC 1078's HELP, fived's LIST, HOST, QUIT, TLS and service requests).
 */
#include <string.h>

#include "proto/line.h"
#include "server/conf/config.h"
#include "server/policy/policy.h"
#include "server/session/command.h"
#include "unit.h"

static const char CONFIG[] = "[server]\n"
                             "listen = tcp:127.0.0.1:20999\n"
                             "[service:echo]\nbackend = builtin:echo\n"
                             "[service:secret]\nbackend = builtin:echo\nauth = required\n"
                             "[service:sealed]\nbackend = builtin:echo\nencryption = required\n"
                             "[service:adminonly]\nbackend = builtin:echo\nauth = required\n"
                             "allow = user:admin\n"
                             "[vhost:alpha.example.org]\nservices = db=echo\n"
                             "[vhost:staff.example.org]\nservices = s=secret\n";

/* Who is asking, as a row says it. */
enum who { STRANGER, ALICE, ALICE_SEALED, STRANGER_SEALED };

struct row {
	const char *line;
	enum who who;
	bool auth_usable;
	enum command_verdict verdict;
	const char *text;   /* the whole reply, or NULL when none is sent */
	const char *reason; /* VERDICT_REFUSE */
	const char *svc;    /* VERDICT_GRANT: the service's name */
};

static const struct row rows[] = {
        {"echo", STRANGER, false, VERDICT_GRANT, NULL, NULL, "echo"},
        {"ECHO", STRANGER, false, VERDICT_GRANT, NULL, NULL, "echo"},
        {"nosuch", STRANGER, false, VERDICT_REFUSE, NULL, "unknown service", NULL},
        /* Invisible before authentication: answered as if it did not exist. */
        {"secret", STRANGER, false, VERDICT_REFUSE, NULL, "unknown service", NULL},
        /* auth = required asks for encryption too, unless the service says otherwise. */
        {"secret", ALICE, false, VERDICT_REFUSE, NULL, "encryption required", NULL},
        {"secret", ALICE_SEALED, false, VERDICT_GRANT, NULL, NULL, "secret"},
        {"adminonly", ALICE_SEALED, false, VERDICT_REFUSE, NULL, "not permitted", NULL},
        {"sealed", STRANGER, false, VERDICT_REFUSE, NULL, "encryption required", NULL},
        {"sealed", STRANGER_SEALED, false, VERDICT_GRANT, NULL, NULL, "sealed"},
        {"HELP", STRANGER, false, VERDICT_FINISH, "echo\r\n", NULL, NULL},
        /* The report's LIST: a name per line, commands usable now in capitals first. */
        {"LIST", STRANGER, false, VERDICT_REPLY,
         "+ LIST\r\nHELP\r\nLIST\r\nHOST\r\nQUIT\r\nTLS\r\nMULTIPLEX\r\nGETSIGNKEY\r\n"
         "echo\r\nsealed\r\n.\r\n",
         NULL, NULL},
        {"LIST", STRANGER, true, VERDICT_REPLY,
         "+ LIST\r\nHELP\r\nLIST\r\nHOST\r\nQUIT\r\nAUTH\r\nTLS\r\nMULTIPLEX\r\n"
         "GETSIGNKEY\r\necho\r\nsealed\r\n.\r\n",
         NULL, NULL},
        /* Authenticated: TLS no longer, TOKEN now; what policy grants is listed. */
        {"LIST", ALICE, true, VERDICT_REPLY,
         "+ LIST\r\nHELP\r\nLIST\r\nHOST\r\nQUIT\r\nTOKEN\r\nMULTIPLEX\r\nPROVEAUTH\r\n"
         "GETSIGNKEY\r\necho\r\nsecret\r\nsealed\r\n.\r\n",
         NULL, NULL},
        /* "When LIST is followed by a service name, fived returns the service name if it
           exists": extension discovery, the same for commands usable now. */
        {"LIST ECHO", STRANGER, false, VERDICT_REPLY, "+ echo\r\n", NULL, NULL},
        {"LIST tls", STRANGER, false, VERDICT_REPLY, "+ TLS\r\n", NULL, NULL},
        {"LIST TLS", STRANGER_SEALED, false, VERDICT_REPLY, "- command not available\r\n", NULL,
         NULL},
        {"LIST AUTH", STRANGER, false, VERDICT_REPLY, "- command not available\r\n", NULL, NULL},
        {"LIST PROVEAUTH", ALICE, false, VERDICT_REPLY, "+ PROVEAUTH\r\n", NULL, NULL},
        {"LIST DETACHABLE", ALICE, false, VERDICT_REPLY, "- command not available\r\n", NULL, NULL},
        {"LIST secret", STRANGER, false, VERDICT_REPLY, "- unknown service\r\n", NULL, NULL},
        {"LIST secret", ALICE, false, VERDICT_REPLY, "+ secret\r\n", NULL, NULL},
        {"HOST alpha.example.org", STRANGER, false, VERDICT_HOST, "+ alpha.example.org\r\n", NULL,
         NULL},
        /* The slides' "HOST / + Success / Which VHOST? main": the vhosts this client may
           see; one whose every service is hidden from it is not named. */
        {"HOST", STRANGER, false, VERDICT_HOST_ASK, "+ HOST\r\nalpha.example.org\r\n.\r\n", NULL,
         NULL},
        {"HOST", ALICE, false, VERDICT_HOST_ASK,
         "+ HOST\r\nalpha.example.org\r\nstaff.example.org\r\n.\r\n", NULL, NULL},
        {"HOST beta.example.org", STRANGER, false, VERDICT_REFUSE, NULL, "unknown host", NULL},
        {"QUIT", STRANGER, false, VERDICT_FINISH, "+ bye\r\n", NULL, NULL},
        {"TLS", STRANGER, false, VERDICT_TLS, "+ SUCCESS\r\n", NULL, NULL},
        {"TLS", STRANGER_SEALED, false, VERDICT_REPLY, "- already encrypted\r\n", NULL, NULL},
        {"TLS", ALICE, false, VERDICT_REPLY, "- TLS must come before AUTH\r\n", NULL, NULL},
        {"AUTH PUBKEY", STRANGER, true, VERDICT_AUTH, NULL, NULL, NULL},
        {"TOKEN myapp", ALICE, false, VERDICT_TOKEN, NULL, NULL, NULL},
        {"MULTIPLEX", STRANGER, false, VERDICT_MULTIPLEX, "+ MULTIPLEX\r\n", NULL, NULL},
};

static struct config *cfg;

static int
setup(void **state)
{
	struct config_errors errs;

	cfg = config_parse("t.conf", CONFIG, strlen(CONFIG), &errs);
	return cfg != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	config_unref(cfg);
	return 0;
}

static void
check_row(const struct row *r)
{
	struct caller alice = {.identity = "alice", .method = AUTH_PASSWORD};
	struct command_view v = {
	        .cfg = cfg,
	        .caller = r->who == ALICE || r->who == ALICE_SEALED ? &alice : NULL,
	        .encrypted = r->who == ALICE_SEALED || r->who == STRANGER_SEALED,
	        .auth_usable = r->auth_usable,
	        .signkey_usable = true,
	};
	struct command_decision d;
	const char *why;
	struct cmd c;

	assert_int_equal(cmd_parse(r->line, &c, &why), 0);
	command_decide(&v, &c, &d);
	if (d.verdict != r->verdict)
		fail_msg("%s: verdict %d (%s), expected %d", r->line, d.verdict,
		         d.reason != NULL ? d.reason : "", r->verdict);
	if (r->text != NULL) {
		if (d.text == NULL || d.len != strlen(r->text) ||
		    memcmp(d.text, r->text, d.len) != 0)
			fail_msg("%s: replied \"%.*s\"", r->line, d.text != NULL ? (int)d.len : 0,
			         d.text != NULL ? d.text : "");
	} else {
		assert_null(d.text);
	}
	if (r->reason != NULL)
		assert_string_equal(d.reason, r->reason);
	if (r->svc != NULL)
		assert_string_equal(d.svc->name, r->svc);
	command_decision_free(&d);
}

static void
test_every_row(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		check_row(&rows[i]);
}

/* A vhost chosen by HOST is where names are looked up: its own names only. */
static void
test_names_in_a_vhost(void **state)
{
	const struct row db = {"db", STRANGER, false, VERDICT_GRANT, NULL, NULL, "echo"};
	struct command_view v = {.cfg = cfg, .vhost = config_vhost(cfg, "alpha.example.org")};
	struct command_decision d;
	const char *why;
	struct cmd c;

	assert_non_null(v.vhost);
	assert_int_equal(cmd_parse(db.line, &c, &why), 0);
	command_decide(&v, &c, &d);
	assert_int_equal(d.verdict, VERDICT_GRANT);
	assert_string_equal(d.svc->name, "echo");
	assert_int_equal(cmd_parse("sealed", &c, &why), 0);
	command_decide(&v, &c, &d);
	assert_int_equal(d.verdict, VERDICT_REFUSE);
	assert_string_equal(d.reason, "unknown service");
}

/* After a bare HOST the next line is a vhost name alone, decided as HOST NAME. */
static void
test_host_name_after_a_bare_host(void **state)
{
	static const struct {
		const char *line;
		enum command_verdict verdict;
		const char *said; /* the reply, or the refusal's reason */
	} answers[] = {
	        {"alpha.example.org", VERDICT_HOST, "+ alpha.example.org\r\n"},
	        {"  Alpha.Example.ORG ", VERDICT_HOST, "+ alpha.example.org\r\n"},
	        {"beta.example.org", VERDICT_REFUSE, "unknown host"},
	        {"alpha.example.org echo", VERDICT_REFUSE, "wrong number of arguments"},
	        {"", VERDICT_REFUSE, "empty request"},
	        {"   ", VERDICT_REFUSE, "empty request"},
	};
	struct command_view v = {.cfg = cfg};
	struct command_decision d;
	char longest[VHOST_MAX_LEN + 2];
	size_t i;

	for (i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		command_decide_host_name(&v, answers[i].line, &d);
		assert_int_equal(d.verdict, answers[i].verdict);
		if (d.verdict == VERDICT_HOST)
			assert_memory_equal(d.text, answers[i].said, d.len);
		else
			assert_string_equal(d.reason, answers[i].said);
		command_decision_free(&d);
	}
	memset(longest, 'a', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	command_decide_host_name(&v, longest, &d);
	assert_int_equal(d.verdict, VERDICT_REFUSE);
	assert_string_equal(d.reason, "unknown host");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_every_row),
	        cmocka_unit_test(test_names_in_a_vhost),
	        cmocka_unit_test(test_host_name_after_a_bare_host),
	};

	return UNIT_RUN_WITH_SODIUM(tests, setup, teardown);
}
