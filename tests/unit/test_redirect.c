/*
 * Redirects (docs/PROTOCOL.md section 2.13) and on-demand execution's
 * parameters (section 8.8): the pure parsers, fived's USP message, and
 * five's rules for what goes to the next server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/dialect/redirect.h"
#include "client/dialect/text.h"
#include "proto/line.h"
#include "proto/usp.h"

static void
test_redirect_parse(void **state)
{
	char text[REDIRECT_TEXT_SIZE];
	struct redirect r;
	const char *why;

	assert_int_equal(redirect_parse("db2.example.org 5501 Postgres", &r, &why), 0);
	assert_string_equal(r.host, "db2.example.org");
	assert_int_equal(r.port, 5501);
	assert_string_equal(r.service, "postgres");
	redirect_format(&r, text);
	assert_string_equal(text, "db2.example.org 5501 postgres");
	assert_int_equal(redirect_parse("::1 1 echo", &r, &why), 0);
	assert_string_equal(r.host, "::1");

	assert_int_equal(redirect_parse("", &r, &why), -1);
	assert_int_equal(redirect_parse("host 1", &r, &why), -1);
	assert_int_equal(redirect_parse("host 1 echo extra", &r, &why), -1);
	assert_int_equal(redirect_parse("host 1 echo ", &r, &why), -1);
	assert_int_equal(redirect_parse("host  1 echo", &r, &why), -1);
	assert_int_equal(redirect_parse("host 0 echo", &r, &why), -1);
	assert_string_equal(why, "invalid redirect port");
	assert_int_equal(redirect_parse("host 65536 echo", &r, &why), -1);
	assert_int_equal(redirect_parse("host -1 echo", &r, &why), -1);
	assert_int_equal(redirect_parse("-host 1 echo", &r, &why), -1);
	assert_string_equal(why, "invalid redirect host");
	assert_int_equal(redirect_parse("h/st 1 echo", &r, &why), -1);
	assert_int_equal(redirect_parse("host 1 .echo", &r, &why), -1);
	assert_string_equal(why, "invalid redirect service name");
	assert_int_equal(redirect_parse("host 1 HELP", &r, &why), -1);
	assert_string_equal(why, "invalid redirect service name");
	assert_int_equal(redirect_parse("host 024002 echo", &r, &why), -1);
	assert_string_equal(why, "invalid redirect port");
}

static void
test_redirect_usp(void **state)
{
	struct usp_ids ids = {.server = "0123456789abcdef0123456789abcdef"};
	struct redirect r = {.host = "b.example", .port = 47, .service = "echo2"};
	char *out;
	size_t len;

	assert_int_equal(usp_encode_redirect(&ids, "echo", &r, &out, &len), 0);
	assert_string_equal(out, "{\"message\":\"redirect\",\"application\":\"echo\",\"host\":"
	                         "\"b.example\",\"port\":47,\"target_application\":\"echo2\","
	                         "\"server_session_id\":\"0123456789abcdef0123456789abcdef\"}\n");
	free(out);
	r.port = 0;
	assert_int_equal(usp_encode_redirect(&ids, "echo", &r, &out, &len), -1);
	assert_null(out);
}

/* The client reads "- redirect ..." as FIVE_ERR_REDIRECT with exactly the three words. */
static void
test_redirect_reply(void **state)
{
	struct five_error err;

	assert_int_equal(five_text_check_reply("- redirect b.example 5501 echo2", &err), -1);
	assert_int_equal(err.step, FIVE_ERR_REDIRECT);
	assert_string_equal(err.message, "b.example 5501 echo2");
	/* PROTOCOL.md 2.13: the service in lowercase, or a protocol error. */
	assert_int_equal(five_text_check_reply("- redirect b.example 5501 Echo2", &err), -1);
	assert_int_equal(err.step, FIVE_ERR_PROTOCOL);
	assert_int_equal(five_text_check_reply("- redirect b.example 0 echo2", &err), -1);
	assert_int_equal(err.step, FIVE_ERR_PROTOCOL);
	assert_int_equal(five_text_check_reply("- redirect", &err), -1);
	assert_int_equal(err.step, FIVE_ERR_REFUSED);
	assert_int_equal(five_text_check_reply("- redirected elsewhere", &err), -1);
	assert_int_equal(err.step, FIVE_ERR_REFUSED);
}

static const struct five_auth both = {.methods = "password,pubkey", .user = "alice"};
static const struct five_auth password_only = {.methods = "password"};

static void
redirect_err(struct five_error *err, const char *where)
{
	err->step = FIVE_ERR_REDIRECT;
	strcpy(err->message, where);
}

/* Nothing meant for the first server goes to the next; FIVE_REDIRECTS_MAX in a row, no more. */
static void
test_hops(void **state)
{
	struct five_options o;
	struct five_error err;
	struct five_hop hop;
	unsigned i;

	five_options_init(&o);
	o.server_key = "AAAA";
	o.token = "v4.public.x";
	o.vhost = "alpha";
	o.auth = &both;
	five_hop_start(&hop, "a.example", "db", &o);
	err.step = FIVE_ERR_REFUSED;
	strcpy(err.message, "b.example 2 db");
	assert_false(five_hop_next(&hop, &err));
	redirect_err(&err, "b.example 2 db2");
	assert_true(five_hop_next(&hop, &err));
	assert_string_equal(hop.host, "b.example");
	assert_string_equal(hop.service, "db2");
	assert_string_equal(hop.o.port, "2");
	assert_null(hop.o.server_key);
	assert_null(hop.o.token);
	assert_null(hop.o.vhost);
	assert_non_null(hop.o.auth);
	assert_string_equal(hop.o.auth->methods, "pubkey");
	assert_string_equal(hop.o.auth->user, "alice");
	for (i = 1; i < FIVE_REDIRECTS_MAX; i++)
		assert_true(five_hop_next(&hop, &err));
	assert_false(five_hop_next(&hop, &err));
	assert_int_equal(err.step, FIVE_ERR_REDIRECT);

	o.auth = &password_only;
	five_hop_start(&hop, "a.example", "db", &o);
	assert_true(five_hop_next(&hop, &err));
	assert_null(hop.o.auth);

	o.no_redirect = 1;
	five_hop_start(&hop, "a.example", "db", &o);
	assert_false(five_hop_next(&hop, &err));
}

static void
test_params_spec(void **state)
{
	struct params_spec spec = {0};
	const char *why;

	assert_int_equal(params_spec_add(&spec, "count:integer", &why), 0);
	assert_int_equal(params_spec_add(&spec, "name:string", &why), 0);
	assert_int_equal(params_spec_add(&spec, "ratio:number", &why), 0);
	assert_int_equal(params_spec_add(&spec, "verbose:boolean", &why), 0);
	assert_int_equal(params_spec_add(&spec, "opts:json", &why), 0);
	assert_int_equal(spec.n, 5);
	assert_int_equal(params_spec_add(&spec, "count:string", &why), -1);
	assert_string_equal(why, "a parameter named twice");
	assert_int_equal(params_spec_add(&spec, "x:float", &why), -1);
	assert_int_equal(params_spec_add(&spec, "x", &why), -1);
	assert_int_equal(params_spec_add(&spec, "Big:string", &why), -1);
	assert_int_equal(params_spec_add(&spec, "1x:string", &why), -1);
	assert_int_equal(params_spec_add(&spec, ":string", &why), -1);
}

static enum params_status
check(const char *text, const struct params_spec *spec, char *name)
{
	return params_check(text, strlen(text), spec, name);
}

static void
test_params_check(void **state)
{
	struct params_spec spec = {0};
	char name[PARAMS_NAME_MAX + 1], big[PARAMS_BYTES_MAX + 64];
	const char *why;

	params_spec_add(&spec, "count:integer", &why);
	params_spec_add(&spec, "name:string", &why);
	params_spec_add(&spec, "ratio:number", &why);
	params_spec_add(&spec, "opts:json", &why);
	assert_int_equal(check("{}", &spec, name), PARAMS_OK);
	assert_int_equal(check("{\"count\":3,\"name\":\"x\",\"ratio\":1}", &spec, name), PARAMS_OK);
	assert_int_equal(check("{\"ratio\":0.5,\"opts\":{\"a\":[1]}}", &spec, name), PARAMS_OK);

	assert_int_equal(check("{\"other\":1}", &spec, name), PARAMS_UNKNOWN);
	assert_string_equal(name, "other");
	assert_int_equal(check("{\"count\":\"3\"}", &spec, name), PARAMS_WRONG_TYPE);
	assert_string_equal(name, "count");
	assert_int_equal(check("{\"count\":3.5}", &spec, name), PARAMS_WRONG_TYPE);
	assert_int_equal(check("{\"name\":null}", &spec, name), PARAMS_WRONG_TYPE);
	assert_int_equal(check("{\"Name\":\"x\"}", &spec, name), PARAMS_BAD_NAME);
	assert_int_equal(check("[1]", &spec, name), PARAMS_NOT_OBJECT);
	assert_int_equal(check("{\"count\":1,\"count\":2}", &spec, name), PARAMS_NOT_OBJECT);
	assert_int_equal(check("{", &spec, name), PARAMS_NOT_OBJECT);
	/* The object is level 1: opts may nest two more levels, not three. */
	assert_int_equal(check("{\"opts\":{\"a\":[1]}}", &spec, name), PARAMS_OK);
	assert_int_equal(check("{\"opts\":{\"a\":[[1]]}}", &spec, name), PARAMS_TOO_DEEP);
	memset(big, 0, sizeof(big));
	strcpy(big, "{\"name\":\"");
	memset(big + strlen(big), 'x', PARAMS_BYTES_MAX - 12);
	strcat(big, "\"}");
	assert_int_equal(check(big, &spec, name), PARAMS_OK);
	big[strlen(big) - 2] = '\0';
	strcat(big, "xx\"}");
	assert_int_equal(check(big, &spec, name), PARAMS_TOO_LARGE);
}

/* A stream's parameters in initialize: their form checked and written canonically. */
static void
test_params_usp(void **state)
{
	char reason[USP_REASON_MAX];
	struct usp_msg m;
	const char *ok = "{\"message\":\"initialize\",\"streams\":[{\"application\":\"run\","
	                 "\"parameters\":{\"b\":\"\\u00e9\",\"a\":[1,{\"x\":true}]}}]}";
	const char *deep = "{\"message\":\"initialize\",\"streams\":[{\"application\":\"run\","
	                   "\"parameters\":{\"a\":[[[1]]]}}]}";
	const char *deeper = "{\"message\":\"initialize\",\"streams\":[{\"application\":\"run\","
	                     "\"parameters\":{\"a\":[[[[1]]]]}}]}";
	const char *array = "{\"message\":\"initialize\",\"streams\":[{\"application\":\"run\","
	                    "\"parameters\":[1]}]}";

	assert_int_equal(usp_decode(ok, strlen(ok), &m, reason), 0);
	assert_string_equal(m.streams[0].parameters, "{\"a\":[1,{\"x\":true}],\"b\":\"\\u00E9\"}");
	usp_msg_free(&m);
	assert_int_equal(usp_decode(deep, strlen(deep), &m, reason), -1);
	assert_string_equal(reason, "streams: parameters too deep");
	assert_int_equal(usp_decode(deeper, strlen(deeper), &m, reason), -1);
	assert_string_equal(reason, "nested more than 7 levels");
	assert_int_equal(usp_decode(array, strlen(array), &m, reason), -1);
	assert_string_equal(reason, "streams: parameters: expected an object");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_redirect_parse), cmocka_unit_test(test_redirect_usp),
	        cmocka_unit_test(test_redirect_reply), cmocka_unit_test(test_hops),
	        cmocka_unit_test(test_params_spec),    cmocka_unit_test(test_params_check),
	        cmocka_unit_test(test_params_usp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
