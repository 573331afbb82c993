/* libfive-shim.so's pure parts: shim.conf's parser and matching, the address table, errnos. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

#include "five.h"
#include "shim/conf.h"
#include "shim/open.h"
#include "shim/table.h"

static struct shim_conf conf;

static int
parse(const char *text, char *why, size_t size)
{
	shim_conf_init(&conf);
	return shim_conf_parse(&conf, 0, text, strlen(text), why, size);
}

/* The reason text is refused for, "" when it is accepted. */
static const char *
refused(const char *text)
{
	static char why[256];

	why[0] = '\0';
	if (parse(text, why, sizeof(why)) == 0 && shim_conf_check(&conf, why, sizeof(why)) == 0)
		return "";
	return why;
}

static void
test_rules(void **state)
{
	const struct shim_rule *r;
	char why[256];

	assert_int_equal(parse("# mapped names\n"
	                       "\n"
	                       "db.corp:5432 = db.example.org research-db\n"
	                       "  *.Five = 192.0.2.1 web tls port=5501 vhost=a.example timeout=3 "
	                       "  # a comment\n"
	                       "ssh.corp = 2001:db8::1 ssh plain auth=pubkey identity=/k user=bob\n"
	                       "key.corp = h.example s key=AAAA/+=\n",
	                       why, sizeof(why)),
	                 0);
	assert_int_equal(conf.n, 4);
	r = &conf.rules[0];
	assert_string_equal(r->name, "db.corp");
	assert_false(r->suffix);
	assert_int_equal(r->port, 5432);
	assert_string_equal(r->host, "db.example.org");
	assert_string_equal(r->service, "research-db");
	assert_int_equal(r->transport, FIVE_SEALED);
	assert_int_equal(r->line, 3);
	r = &conf.rules[1];
	assert_string_equal(r->name, "five");
	assert_true(r->suffix);
	assert_int_equal(r->port, 0);
	assert_int_equal(r->transport, FIVE_TLS);
	assert_string_equal(r->fived_port, "5501");
	assert_string_equal(r->vhost, "a.example");
	assert_int_equal(r->timeout_ms, 3000);
	r = &conf.rules[2];
	assert_int_equal(r->transport, FIVE_PLAIN);
	assert_true(r->auth_pubkey);
	assert_string_equal(r->identity, "/k");
	assert_string_equal(r->user, "bob");
	assert_string_equal(conf.rules[3].key, "AAAA/+=");
	assert_int_equal(shim_conf_check(&conf, why, sizeof(why)), 0);
}

static void
test_strict(void **state)
{
	char why[256];
	static const struct {
		const char *text, *why;
	} cases[] = {
	        {"db.corp db.example.org svc\n", "line 1: expected NAME[:PORT] = HOST SERVICE"},
	        {"db.corp = db.example.org\n", "line 1: expected"},
	        {"db.corp=db.example.org svc\n", "line 1: expected"},
	        {"\n\ndb.corp:0 = h s\n", "line 3: invalid port 0"},
	        {"db.corp:65536 = h s\n", "line 1: invalid port"},
	        {"db.corp:x = h s\n", "line 1: invalid port"},
	        {"* = h s\n", "line 1: invalid name *"},
	        {"*. = h s\n", "line 1: invalid name"},
	        {"db..corp = h s\n", "line 1: invalid name"},
	        {"10.0.0.1 = h s\n", "line 1: invalid name"},
	        {"d*b = h s\n", "line 1: invalid name"},
	        {"db = h_ s!\n", "line 1: invalid service"},
	        {"db = h/x s\n", "line 1: invalid host"},
	        {"db = h s foo\n", "line 1: unknown option foo"},
	        {"db = h s foo=1\n", "line 1: unknown option foo"},
	        {"db = h s plain tls\n", "line 1: plain or tls"},
	        {"db = h s port=0\n", "line 1: invalid port=0"},
	        {"db = h s timeout=0\n", "line 1: invalid timeout"},
	        {"db = h s timeout=1h\n", "line 1: invalid timeout"},
	        {"db = h s auth=password\n", "line 1: auth=password: only auth=pubkey"},
	        {"db = h s identity=/k\n", "line 1: identity= and user= go with auth=pubkey"},
	        {"db = h s auth=pubkey identity=k\n", "line 1: identity=k: not an absolute path"},
	        {"db = h s vhost=-x\n", "line 1: invalid vhost"},
	        {"db = h s\nDB = h2 s2\n", "line 2: the same name and port as line 1"},
	        /* A rule whose fived would be reached through the shim itself. */
	        {"*.five = a.five s\n", "line 1: host a.five is itself a name the shim maps"},
	        {"x = 127.95.0.1 s\n", "line 1: host 127.95.0.1 is one of the shim's own"},
	        {"x = ::ffff:127.95.1.2 s\n", "line 1: host ::ffff:127.95.1.2 is one of"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = refused(cases[i].text);

		if (strncmp(got, cases[i].why, strlen(cases[i].why)) != 0)
			fail_msg("%s: got \"%s\", expected \"%s\"", cases[i].text, got,
			         cases[i].why);
	}
	shim_conf_init(&conf);
	assert_int_equal(shim_conf_parse(&conf, 0, "db = h s\0x\n", 11, why, sizeof(why)), -1);
	assert_string_equal(why, "line 1: too long, or a NUL byte");
	/* The same name and port in two files: the first file's wins, no error. */
	shim_conf_init(&conf);
	assert_int_equal(shim_conf_parse(&conf, 0, "db = a s\n", 9, NULL, 0), 0);
	assert_int_equal(shim_conf_parse(&conf, 1, "db = b s\n", 9, NULL, 0), 0);
	assert_string_equal(shim_conf_match(&conf, "db", 1)->host, "a");
}

static void
test_match(void **state)
{
	char why[256], name[SHIM_NAME_MAX + 1];

	assert_int_equal(parse("*.five = suffix s\n"
	                       "*.db.five = longer s\n"
	                       "pg.db.five = exact s\n"
	                       "pg.db.five:5432 = exact-port s\n"
	                       "*.five:80 = suffix-port s\n",
	                       why, sizeof(why)),
	                 0);
	assert_string_equal(shim_conf_match(&conf, "a.five", 1)->host, "suffix");
	assert_string_equal(shim_conf_match(&conf, "a.five", 80)->host, "suffix-port");
	assert_string_equal(shim_conf_match(&conf, "x.db.five", 80)->host, "longer");
	assert_string_equal(shim_conf_match(&conf, "pg.db.five", 80)->host, "exact");
	assert_string_equal(shim_conf_match(&conf, "pg.db.five", 5432)->host, "exact-port");
	assert_null(shim_conf_match(&conf, "five", 1));
	assert_null(shim_conf_match(&conf, "xfive", 1));
	assert_null(shim_conf_match(&conf, "a.five.org", 1));
	assert_true(shim_conf_handles(&conf, "a.b.five"));
	assert_false(shim_conf_handles(&conf, "five"));
	/* Names as programs give them: any case, a trailing dot. */
	assert_int_equal(shim_conf_normalize("PG.DB.Five.", name), 0);
	assert_string_equal(name, "pg.db.five");
	assert_int_equal(shim_conf_normalize("127.0.0.1", name), -1);
	assert_int_equal(shim_conf_normalize("::1", name), -1);
	assert_int_equal(shim_conf_normalize("", name), -1);
	assert_int_equal(shim_conf_normalize(".", name), -1);

	/* A port rule alone leaves the name handled on other ports, but with no rule there. */
	assert_int_equal(parse("db.corp:5432 = h s\n", why, sizeof(why)), 0);
	assert_true(shim_conf_handles(&conf, "db.corp"));
	assert_null(shim_conf_match(&conf, "db.corp", 80));
}

static void
test_load(void **state)
{
	char dir[] = "/tmp/shimconfXXXXXX", path[64], why[256];
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/shim.conf", dir);
	shim_conf_init(&conf);
	/* Missing: nothing to map, unless the file was named explicitly. */
	assert_int_equal(shim_conf_load(&conf, 0, path, false, why, sizeof(why)), 0);
	assert_int_equal(shim_conf_load(&conf, 0, path, true, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "No such file"));
	assert_non_null(f = fopen(path, "w"));
	fputs("db = h s\nbad\n", f);
	fclose(f);
	chmod(path, 0644);
	assert_int_equal(shim_conf_load(&conf, 0, path, true, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "shim.conf: line 2: expected"));
	assert_non_null(f = fopen(path, "w"));
	fputs("db = h s\n", f);
	fclose(f);
	chmod(path, 0666);
	assert_int_equal(shim_conf_load(&conf, 0, path, true, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "others can write it"));
	chmod(path, 0600);
	shim_conf_init(&conf);
	assert_int_equal(shim_conf_load(&conf, 0, path, true, why, sizeof(why)), 0);
	assert_int_equal(conf.n, 1);
	assert_int_equal(shim_conf_load(&conf, 0, dir, true, why, sizeof(why)), -1);
	unlink(path);
	rmdir(dir);
}

static void
test_table(void **state)
{
	static struct shim_table t;
	struct sockaddr_storage got;
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(7)};
	char name[SHIM_NAME_MAX + 1], other[16];
	uint8_t a[4], b[4];
	socklen_t len;
	size_t i;

	shim_table_init(&t);
	assert_int_equal(shim_table_address(&t, "a.five", a), 0);
	assert_memory_equal(a, "\x7f\x5f\x00\x01", 4);
	assert_int_equal(shim_table_address(&t, "b.five", b), 0);
	assert_memory_equal(b, "\x7f\x5f\x00\x02", 4);
	assert_int_equal(shim_table_address(&t, "a.five", b), 0);
	assert_memory_equal(a, b, 4);
	assert_true(shim_table_name(&t, a, name));
	assert_string_equal(name, "a.five");
	assert_false(shim_table_name(&t, (const uint8_t *)"\x7f\x5f\x00\x03", name));
	assert_false(shim_table_name(&t, (const uint8_t *)"\x7f\x5f\x00\x00", name));
	assert_false(shim_table_name(&t, (const uint8_t *)"\x7f\x00\x00\x01", name));
	assert_true(shim_table_in_range((const uint8_t *)"\x7f\x5f\xff\xff"));
	assert_false(shim_table_in_range((const uint8_t *)"\x7f\x5e\x00\x01"));
	/* Full: a new name has no address, the known ones keep theirs. */
	for (i = 2; i < SHIM_NAMES_MAX; i++) {
		snprintf(other, sizeof(other), "n%zu", i);
		assert_int_equal(shim_table_address(&t, other, b), 0);
	}
	assert_memory_equal(b, "\x7f\x5f\x10\x00", 4);
	assert_int_equal(shim_table_address(&t, "one.more", b), -1);
	assert_int_equal(shim_table_address(&t, "b.five", b), 0);

	/* Sockets by inode; the oldest forgotten once the ring is full. */
	memcpy(&in.sin_addr, a, 4);
	assert_false(shim_table_peer(&t, 1, 10, &got, &len));
	shim_table_peer_add(&t, 1, 10, (struct sockaddr *)&in, sizeof(in));
	assert_true(shim_table_peer(&t, 1, 10, &got, &len));
	assert_int_equal(len, sizeof(in));
	assert_memory_equal(&got, &in, sizeof(in));
	assert_false(shim_table_peer(&t, 2, 10, &got, &len));
	for (i = 0; i < SHIM_PEERS_MAX; i++)
		shim_table_peer_add(&t, 1, 100 + i, (struct sockaddr *)&in, sizeof(in));
	assert_false(shim_table_peer(&t, 1, 10, &got, &len));
	assert_true(shim_table_peer(&t, 1, 100, &got, &len));
}

static void
test_errnos(void **state)
{
	assert_int_equal(shim_errno(FIVE_ERR_REFUSED, "unknown service"), ECONNREFUSED);
	assert_int_equal(shim_errno(FIVE_ERR_REFUSED, "service unavailable"), ECONNREFUSED);
	assert_int_equal(shim_errno(FIVE_ERR_REFUSED, "not permitted"), EACCES);
	assert_int_equal(shim_errno(FIVE_ERR_REFUSED, "encryption required"), EACCES);
	assert_int_equal(shim_errno(FIVE_ERR_REFUSED, "request timeout"), ETIMEDOUT);
	assert_int_equal(shim_errno(FIVE_ERR_TRUST, "key mismatch"), EACCES);
	assert_int_equal(shim_errno(FIVE_ERR_RESOLVE, "x: Name or service not known"),
	                 EHOSTUNREACH);
	assert_int_equal(shim_errno(FIVE_ERR_RESOLVE, "x: timed out after 5 ms"), ETIMEDOUT);
	assert_int_equal(shim_errno(FIVE_ERR_CONNECT, strerror(ECONNREFUSED)), ECONNREFUSED);
	assert_int_equal(shim_errno(FIVE_ERR_CONNECT, strerror(ENETUNREACH)), ENETUNREACH);
	assert_int_equal(shim_errno(FIVE_ERR_CONNECT, "timed out after 10 s"), ETIMEDOUT);
	assert_int_equal(shim_errno(FIVE_ERR_PROTOCOL, "no reply within 10 ms"), ETIMEDOUT);
	assert_int_equal(shim_errno(FIVE_ERR_PROTOCOL, "no handshake reply within 10 ms"),
	                 ETIMEDOUT);
	assert_int_equal(shim_errno(FIVE_ERR_PROTOCOL, "no TLS handshake reply within 10 ms"),
	                 ETIMEDOUT);
	assert_int_equal(shim_errno(FIVE_ERR_PROTOCOL, "not the protocol"), EPROTO);
	assert_int_equal(shim_errno(FIVE_ERR_SYSTEM, "out of memory"), ENOMEM);
	assert_int_equal(shim_errno(FIVE_ERR_USAGE, "no host"), EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rules), cmocka_unit_test(test_strict),
	        cmocka_unit_test(test_match), cmocka_unit_test(test_load),
	        cmocka_unit_test(test_table), cmocka_unit_test(test_errnos),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
