/* The configuration parser: values, defaults, and every error with its line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "server/conf/config.h"

static struct config *
parse(const char *text, struct config_errors *errs)
{
	return config_parse("t.conf", text, strlen(text), errs);
}

/* Parsing must fail with this exact first error line. */
static void
expect_error(const char *text, const char *first_line)
{
	struct config_errors errs;
	struct config *cfg = parse(text, &errs);
	char line[512];

	assert_null(cfg);
	assert_true(errs.count > 0);
	snprintf(line, sizeof(line), "%.*s", (int)strcspn(errs.text, "\n"), errs.text);
	assert_string_equal(line, first_line);
}

/* workers: auto or 1 to 64; a worker's share of the server-wide limits, rounded up. */
static void
test_workers_and_their_share(void **state)
{
	struct config_errors errs;
	struct config *cfg;

	(void)state;
	cfg = parse("[server]\nlisten = tcp:127.0.0.1:1\n", &errs);
	assert_non_null(cfg);
	assert_int_equal(cfg->workers, 1);
	config_unref(cfg);
	cfg = parse("[server]\nlisten = tcp:127.0.0.1:1\nworkers = auto\n", &errs);
	assert_non_null(cfg);
	assert_int_equal(cfg->workers, WORKERS_AUTO);
	config_unref(cfg);
	cfg = parse("[server]\nlisten = tcp:127.0.0.1:1\nworkers = 3\nmax_connections = 10\n"
	            "max_detachable = 1\nrelay_memory_max = 1M\n",
	            &errs);
	assert_non_null(cfg);
	assert_int_equal(cfg->workers, 3);
	config_share(cfg, 3);
	assert_int_equal(cfg->max_connections, 4);
	assert_int_equal(cfg->max_detachable, 1);
	assert_int_equal(cfg->relay_memory_max, (1024 * 1024 + 2) / 3);
	config_share(cfg, 1);
	assert_int_equal(cfg->max_connections, 4);
	config_unref(cfg);
	expect_error(
	        "[server]\nlisten = tcp:127.0.0.1:1\nworkers = 0\n",
	        "t.conf:3: workers: expected auto or a number of worker processes from 1 to 64");
	expect_error(
	        "[server]\nlisten = tcp:127.0.0.1:1\nworkers = 65\n",
	        "t.conf:3: workers: expected auto or a number of worker processes from 1 to 64");
	expect_error(
	        "[server]\nlisten = tcp:127.0.0.1:1\nworkers = many\n",
	        "t.conf:3: workers: expected auto or a number of worker processes from 1 to 64");
}

static void
test_builtin(void **state)
{
	struct config *cfg = config_builtin();
	const struct service *svc;

	assert_non_null(cfg);
	assert_int_equal(cfg->nlisten, 1);
	assert_int_equal(cfg->listen[0].port, 1);
	assert_true(cfg->has_listen_fallback);
	assert_int_equal(cfg->listen_fallback.port, FALLBACK_PORT);
	svc = config_lookup(cfg, NULL, "ECHO");
	assert_non_null(svc);
	assert_int_equal(svc->backend, BACKEND_BUILTIN);
	assert_int_equal(svc->builtin, BUILTIN_ECHO);
	assert_non_null(config_lookup(cfg, NULL, "chargen"));
	assert_null(config_lookup(cfg, NULL, "ssh"));
	config_unref(cfg);
}

static void
test_full(void **state)
{
	struct config_errors errs;
	struct config *cfg = parse("[server]\n"
	                           "listen = tcp:127.0.0.1:0 tcp:[::1]:7\n"
	                           "listen = unix:/tmp/x.sock\n"
	                           "audit_log = /var/log/fived.json\n"
	                           "max_connections = 10\n"
	                           "max_per_source = 2\n"
	                           "relay_memory_max = 64M\n"
	                           "request_timeout = 1500ms\n"
	                           "idle_timeout = 2m\n"
	                           "connect_timeout = 3\n"
	                           "drain_timeout = 0\n"
	                           "defer_accept = 1500ms\n"
	                           "tcp_fastopen = 256\n"
	                           "; a comment\n"
	                           "# another\n"
	                           "[service:ssh]\n"
	                           "backend = tcp:localhost:22\n"
	                           "proxy_protocol = v2\n"
	                           "idle_timeout = 0\n"
	                           "fastopen = yes\n"
	                           "[service:prog]\n"
	                           "backend = exec:/bin/sh -c \"echo \\\"hi there\\\"\" x\n"
	                           "[service:web]\n"
	                           "backend = unix:/run/web.sock\n"
	                           "connect_timeout = 250ms\n",
	                           &errs);
	const struct service *svc;

	assert_non_null(cfg);
	assert_int_equal(cfg->nlisten, 3);
	assert_int_equal(cfg->listen[1].kind, ADDR_TCP);
	assert_string_equal(cfg->listen[1].host, "::1");
	assert_int_equal(cfg->listen[2].kind, ADDR_UNIX);
	assert_string_equal(cfg->audit_log, "/var/log/fived.json");
	assert_int_equal(cfg->max_connections, 10);
	assert_int_equal(cfg->max_per_source, 2);
	assert_int_equal(cfg->relay_memory_max, 64 << 20);
	assert_int_equal(cfg->request_timeout_ms, 1500);
	assert_int_equal(cfg->idle_timeout_ms, 120000);
	assert_int_equal(cfg->drain_timeout_ms, 0);
	assert_int_equal(cfg->defer_accept_ms, 1500);
	assert_int_equal(cfg->tcp_fastopen, 256);
	assert_false(cfg->names_groups);
	svc = config_lookup(cfg, NULL, "ssh");
	assert_int_equal(svc->backend, BACKEND_TCP);
	assert_false(svc->addr.numeric);
	assert_int_equal(svc->addr.port, 22);
	assert_int_equal(svc->proxy, PROXY_V2);
	assert_true(svc->fastopen);
	assert_int_equal(svc->idle_timeout_ms, 0);
	assert_int_equal(svc->connect_timeout_ms, 3000);
	svc = config_lookup(cfg, NULL, "prog");
	assert_int_equal(svc->backend, BACKEND_EXEC);
	assert_string_equal(svc->argv[0], "/bin/sh");
	assert_string_equal(svc->argv[1], "-c");
	assert_string_equal(svc->argv[2], "echo \"hi there\"");
	assert_string_equal(svc->argv[3], "x");
	assert_null(svc->argv[4]);
	assert_int_equal(svc->idle_timeout_ms, 120000);
	svc = config_lookup(cfg, NULL, "web");
	assert_int_equal(svc->backend, BACKEND_UNIX);
	assert_string_equal(svc->addr.path, "/run/web.sock");
	assert_int_equal(svc->connect_timeout_ms, 250);
	assert_false(svc->fastopen);
	config_unref(cfg);
}

/* Which audit logs the privileged side opens: a file and the journal, not standard output. */
static void
test_audit_log_values(void **state)
{
	struct config_errors errs;
	struct config *cfg =
	        parse("[server]\nlisten = tcp:0.0.0.0:1\naudit_log = journal\n", &errs);

	assert_non_null(cfg);
	assert_string_equal(cfg->audit_log, CONFIG_AUDIT_JOURNAL);
	assert_true(config_audit_opened(cfg));
	config_unref(cfg);
	assert_non_null(cfg = parse("[server]\nlisten = tcp:0.0.0.0:1\naudit_log = -\n", &errs));
	assert_false(config_audit_opened(cfg));
	config_unref(cfg);
	assert_null(parse("[server]\nlisten = tcp:0.0.0.0:1\naudit_log = journald\n", &errs));
	assert_non_null(strstr(errs.text, "journal or none"));
}

/* The keys of several nodes: balancers, the cluster key, the store. */
static void
test_cluster_keys(void **state)
{
	struct config_errors errs;
	struct config *cfg = parse("[server]\nlisten = tcp:0.0.0.0:1\n"
	                           "proxy_from = 192.0.2.10 2001:db8::/64\n"
	                           "proxy_from = 10.0.0.0/8\nstore = tcp:10.0.0.20:6379\n"
	                           "cluster_key_file = /etc/fived/cluster.key\n",
	                           &errs);
	struct sockaddr_in in = {.sin_family = AF_INET};

	assert_non_null(cfg);
	assert_int_equal(cfg->nproxy_from, 3);
	assert_string_equal(cfg->proxy_from[1], "2001:db8::/64");
	in.sin_addr.s_addr = htonl(0x0a010203);
	assert_true(config_balancer(cfg, (struct sockaddr *)&in));
	in.sin_addr.s_addr = htonl(0xc000020b);
	assert_false(config_balancer(cfg, (struct sockaddr *)&in));
	assert_true(cfg->has_store);
	assert_int_equal(cfg->store.port, 6379);
	assert_int_equal(cfg->proxy_timeout_ms, DEFAULT_PROXY_TIMEOUT);
	assert_int_equal(cfg->store_timeout_ms, DEFAULT_STORE_TIMEOUT);
	assert_int_equal(cfg->revocation_stale_max_ms, DEFAULT_REVOCATION_STALE_MAX);
	config_unref(cfg);
	expect_error("[server]\nlisten = tcp:0.0.0.0:1\nproxy_from = 10.0.0.1/4\n",
	             "t.conf:3: proxy_from: expected IP addresses or prefixes, such as 192.0.2.10 "
	             "or 2001:db8::/64");
	expect_error("[server]\nlisten = tcp:0.0.0.0:1\nproxy_from = balancer.example\n",
	             "t.conf:3: proxy_from: expected IP addresses or prefixes, such as 192.0.2.10 "
	             "or 2001:db8::/64");
	expect_error("[server]\nlisten = tcp:0.0.0.0:1\nstore = tcp:redis.example:6379\n",
	             "t.conf:3: store: expected tcp:IP:PORT, unix:PATH or none");
	expect_error("[server]\nlisten = tcp:0.0.0.0:1\ncluster_key_file = cluster.key\n",
	             "t.conf:3: cluster_key_file: expected an absolute path or none");
}

static void
test_defaults(void **state)
{
	struct config_errors errs;
	struct config *cfg = parse("[server]\nlisten = tcp:0.0.0.0:1\n", &errs);

	assert_non_null(cfg);
	assert_string_equal(cfg->audit_log, "-");
	assert_false(cfg->audit_required);
	assert_int_equal(cfg->max_connections, DEFAULT_MAX_CONNECTIONS);
	assert_int_equal(cfg->max_per_source, DEFAULT_MAX_PER_SOURCE);
	assert_int_equal(cfg->relay_memory_max, 256 << 20);
	assert_int_equal(cfg->request_timeout_ms, 10000);
	assert_int_equal(cfg->connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT);
	assert_int_equal(cfg->idle_timeout_ms, DEFAULT_IDLE_TIMEOUT);
	assert_int_equal(cfg->drain_timeout_ms, DEFAULT_DRAIN_TIMEOUT);
	assert_int_equal(cfg->defer_accept_ms, 0);
	assert_int_equal(cfg->tcp_fastopen, 0);
	assert_null(cfg->services);
	config_unref(cfg);
}

static void
test_vhosts(void **state)
{
	struct config_errors errs;
	struct config *cfg = parse("[server]\nlisten = tcp:127.0.0.1:1\n"
	                           "[service:a-db]\nbackend = tcp:127.0.0.1:5432\n"
	                           "[service:b-db]\nbackend = tcp:127.0.0.1:5433\n"
	                           "[service:echo]\nbackend = builtin:echo\n"
	                           "[vhost:Alpha.example]\nservices = db=a-db echo\n"
	                           "[vhost:beta]\nservices = db=b-db\n",
	                           &errs);
	const struct vhost *alpha, *beta;

	assert_non_null(cfg);
	alpha = config_vhost(cfg, "alpha.EXAMPLE");
	beta = config_vhost(cfg, "beta");
	assert_non_null(alpha);
	assert_non_null(beta);
	assert_null(config_vhost(cfg, "gamma"));
	assert_string_equal(config_lookup(cfg, alpha, "db")->name, "a-db");
	assert_string_equal(config_lookup(cfg, beta, "DB")->name, "b-db");
	assert_string_equal(config_lookup(cfg, alpha, "echo")->name, "echo");
	assert_null(config_lookup(cfg, beta, "echo"));
	assert_null(config_lookup(cfg, alpha, "a-db"));
	/* Without HOST and without default_vhost: every service by its own name. */
	assert_non_null(config_lookup(cfg, NULL, "a-db"));
	assert_null(config_lookup(cfg, NULL, "db"));
	config_unref(cfg);

	cfg = parse("[server]\nlisten = tcp:127.0.0.1:1\ndefault_vhost = pub\n"
	            "[service:echo]\nbackend = builtin:echo\n"
	            "[service:secret]\nbackend = builtin:echo\n"
	            "[vhost:pub]\nservices = echo\n",
	            &errs);
	assert_non_null(cfg);
	assert_non_null(config_lookup(cfg, NULL, "echo"));
	assert_null(config_lookup(cfg, NULL, "secret"));
	config_unref(cfg);
}

static void
test_errors(void **state)
{
	expect_error("listen = tcp:127.0.0.1:1\n", "t.conf:1: listen: key outside any section");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\nlisten_port = 4\n",
	             "t.conf:3: unknown key \"listen_port\" in [server]");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[servce]\n",
	             "t.conf:3: unknown section [servce]");
	expect_error("[server]\nlisten = tcp:127.0.0.1:99999\n",
	             "t.conf:2: listen: port must be a number from 0 to 65535");
	expect_error("[server]\nlisten = tcp:::1:80\n",
	             "t.conf:2: listen: an IPv6 address must be written in brackets");
	expect_error("[server]\nlisten = tcp:localhost:80\n",
	             "t.conf:2: listen: a listen address must be an IP address, not a name");
	expect_error("[server]\nlisten = unix:relative\n",
	             "t.conf:2: listen: a unix socket path must be absolute");
	expect_error("[server]\n", "t.conf: no listen address: set listen in [server]");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\nmax_connections = 0\n",
	             "t.conf:3: max_connections: expected a positive whole number");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\ntcp_fastopen = 65536\n",
	             "t.conf:3: tcp_fastopen: expected a queue length from 0 (none) to 65535");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\ntcp_fastopen = yes\n",
	             "t.conf:3: tcp_fastopen: expected a queue length from 0 (none) to 65535");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\ndefer_accept = later\n",
	             "t.conf:3: defer_accept: expected a duration such as 30s, 500ms, 5m or 0 for "
	             "none");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\nrelay_memory_max = 512K\n",
	             "t.conf:3: relay_memory_max: expected a size from 1M to 1024G, such as 256M");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\nrelay_memory_max = 2T\n",
	             "t.conf:3: relay_memory_max: expected a size from 1M to 1024G, such as 256M");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\nrequest_timeout = soon\n",
	             "t.conf:3: request_timeout: expected a positive duration such as 30s, 500ms "
	             "or 5m");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\nmax_per_source = 3\nmax_per_source = 4\n",
	             "t.conf:4: max_per_source: set twice in this section");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\n",
	             "t.conf:3: service x: no backend or redirect");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nbackend = builtin:echo\n"
	             "redirect = b.example 1 x\n",
	             "t.conf:5: redirect: a service has a backend or a redirect, not both");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nredirect = b.example 1 x\n"
	             "backend = builtin:echo\n",
	             "t.conf:5: backend: a service has a backend or a redirect, not both");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nredirect = b.example 0 x\n",
	             "t.conf:4: redirect: invalid redirect port");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nredirect = b.example x\n",
	             "t.conf:4: redirect: expected HOST PORT SERVICE");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nbackend = builtin:echo\n"
	             "parameters = n:integer\n",
	             "t.conf:3: service x: parameters are for exec: backends only");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nbackend = exec:/bin/cat\n"
	             "parameters = n:int\n",
	             "t.conf:5: parameters: expected NAME:TYPE, TYPE string, integer, number, "
	             "boolean or json");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nbackend = ftp:a\n",
	             "t.conf:4: backend: expected tcp:HOST:PORT, unix:PATH, exec:PROGRAM ARGS, "
	             "builtin:NAME or register");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nbackend = exec:sh\n",
	             "t.conf:4: backend: exec: needs an absolute program path");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nbackend = exec:/bin/x \"a\n",
	             "t.conf:4: backend: unterminated quote");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nbackend = builtin:ftp\n",
	             "t.conf:4: backend: unknown built-in (echo, discard, daytime, chargen)");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nbackend = builtin:echo\n"
	             "proxy_protocol = v2\n",
	             "t.conf:3: service x: proxy_protocol needs a tcp: or unix: backend");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nbackend = unix:/run/x\n"
	             "fastopen = yes\n",
	             "t.conf:3: service x: fastopen needs a tcp: backend");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nbackend = builtin:echo\n"
	             "chargen_rate = 5\n",
	             "t.conf:3: service x: chargen_rate is for builtin:chargen only");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:list]\nbackend = builtin:echo\n",
	             "t.conf:3: invalid or reserved service name \"list\"");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nbackend = builtin:echo\n"
	             "[service:X]\nbackend = builtin:echo\n",
	             "t.conf:5: service X already defined at line 3");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[vhost:v]\nservices = nope\n",
	             "t.conf:3: vhost v: no service nope");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\ndefault_vhost = v\n",
	             "t.conf:3: default_vhost: no [vhost:v]");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n  [service:x]\n",
	             "t.conf:3: a section header must start in the first column");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x\n",
	             "t.conf:3: section header without ']'");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\njunk\n",
	             "t.conf:3: syntax error: expected [section] or key = value");
}

static void
test_authentication_keys(void **state)
{
	struct config_errors errs;
	struct config *cfg =
	        parse("[server]\nlisten = tcp:127.0.0.1:1\nuser = fivebox\n"
	              "authorized_keys = /etc/fived/keys\n"
	              "user_authorized_keys = %h/.ssh/authorized_keys\n"
	              "pam_service = login\nauth_methods = pubkey\nmax_auth_tries = 5\n"
	              "auth_timeout = 2m\nallow_plaintext_password = yes\n"
	              "control_socket = /run/x.sock\n"
	              "[service:db]\nbackend = tcp:127.0.0.1:5432\nauth = required\n"
	              "allow = user:alice group:dba\n"
	              "allow = key:SHA256:LX/g48MTnNNUXz0MScQiRDxLIa57QbcoyAno+o5D+lA\n"
	              "deny = user:mallory\nidentity = withhold\n"
	              "[service:app]\nbackend = register\nregister_users = alice bob\n",
	              &errs);
	const struct service *db, *app;

	assert_non_null(cfg);
	assert_string_equal(cfg->user, "fivebox");
	assert_string_equal(cfg->authorized_keys, "/etc/fived/keys");
	assert_string_equal(cfg->user_authorized_keys, "%h/.ssh/authorized_keys");
	assert_string_equal(cfg->pam_service, "login");
	assert_true(cfg->auth_methods[AUTH_PUBKEY]);
	assert_false(cfg->auth_methods[AUTH_PASSWORD]);
	assert_int_equal(cfg->max_auth_tries, 5);
	assert_int_equal(cfg->auth_timeout_ms, 120000);
	assert_true(cfg->allow_plaintext_password);
	assert_string_equal(cfg->control_socket, "/run/x.sock");
	db = config_lookup(cfg, NULL, "db");
	assert_true(db->auth_required && db->withhold_identity);
	assert_int_equal(db->nallow, 3);
	assert_int_equal(db->allow[1].kind, PRINCIPAL_GROUP);
	assert_string_equal(db->allow[1].name, "dba");
	assert_int_equal(db->allow[2].kind, PRINCIPAL_KEY);
	assert_int_equal(db->ndeny, 1);
	assert_true(cfg->names_groups);
	app = config_lookup(cfg, NULL, "app");
	assert_int_equal(app->backend, BACKEND_REGISTER);
	assert_int_equal(app->nregister_users, 2);
	config_unref(cfg);

	/* Defaults. */
	cfg = parse("[server]\nlisten = tcp:127.0.0.1:1\n", &errs);
	assert_true(cfg->auth_methods[AUTH_PUBKEY] && cfg->auth_methods[AUTH_PASSWORD]);
	assert_false(cfg->allow_plaintext_password);
	assert_string_equal(cfg->pam_service, "fived");
	assert_int_equal(cfg->max_auth_tries, 3);
	assert_int_equal(cfg->auth_timeout_ms, 60000);
	config_unref(cfg);
}

static void
test_authentication_errors(void **state)
{
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nbackend = builtin:echo\n"
	             "allow = user:alice\n",
	             "t.conf:3: service x: allow, deny and identity need auth = required");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nbackend = builtin:echo\n"
	             "auth = required\nallow = alice\n",
	             "t.conf:6: allow: expected user:NAME, group:NAME or key:SHA256:FINGERPRINT");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nbackend = builtin:echo\n"
	             "auth = required\nallow = key:SHA256:short\n",
	             "t.conf:6: allow: expected user:NAME, group:NAME or key:SHA256:FINGERPRINT");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nbackend = builtin:echo\n"
	             "auth = maybe\n",
	             "t.conf:5: auth: expected required or none");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\ncontrol_socket = /r.sock\n"
	             "[service:x]\nbackend = register\n",
	             "t.conf:4: service x: backend = register and register_users go together");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\n[service:x]\nbackend = register\n"
	             "register_users = alice\n",
	             "t.conf:3: service x: backend = register needs control_socket");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\nauth_methods = pubkey kerberos\n",
	             "t.conf:3: auth_methods: expected methods among pubkey, password and token");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\nauth_methods = external\n",
	             "t.conf:3: auth_methods: expected methods among pubkey, password and token");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\nauthorized_keys = keys\n",
	             "t.conf:3: authorized_keys: expected an absolute path or none");
}

static void
test_seal_suites(void **state)
{
	struct config_errors errs;
	struct config *cfg = parse("[server]\nlisten = tcp:127.0.0.1:1\n"
	                           "seal_suites = xchacha20poly1305 aes256gcm\n",
	                           &errs);

	assert_non_null(cfg);
	assert_int_equal(cfg->seal_suites_len, 2);
	assert_int_equal(cfg->seal_suites[0], RECORD_SUITE_XCHACHA20POLY1305);
	assert_int_equal(cfg->seal_suites[1], RECORD_SUITE_AES256GCM);
	config_unref(cfg);
	cfg = parse("[server]\nlisten = tcp:127.0.0.1:1\nseal_suites = aes256gcm\n", &errs);
	assert_int_equal(cfg->seal_suites_len, 1);
	assert_int_equal(cfg->seal_suites[0], RECORD_SUITE_AES256GCM);
	config_unref(cfg);
	/* Not given: the transport's default, which depends on the CPU. */
	cfg = parse("[server]\nlisten = tcp:127.0.0.1:1\n", &errs);
	assert_int_equal(cfg->seal_suites_len, 0);
	config_unref(cfg);

	expect_error("[server]\nlisten = tcp:127.0.0.1:1\nseal_suites = aes128gcm\n",
	             "t.conf:3: seal_suites: expected suites among aes256gcm, xchacha20poly1305");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\nseal_suites = aes256gcm aes256gcm\n",
	             "t.conf:3: seal_suites: a suite named twice");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\nseal_suites =\n",
	             "t.conf:3: seal_suites: expected at least one suite");
}

static void
test_long_and_binary_lines(void **state)
{
	char text[600];
	struct config_errors errs;

	snprintf(text, sizeof(text), "[server]\nlisten = tcp:127.0.0.1:1\naudit_log = /%0250d\n",
	         0);
	expect_error(text, "t.conf:3: line longer than 198 characters (continue a list on an "
	                   "indented next line)");
	assert_null(config_parse("t.conf", "[server]\nlisten\0 = x\n", 19, &errs));
	assert_non_null(strstr(errs.text, "t.conf:2: NUL byte in line"));
}

static void
test_many_errors_reported(void **state)
{
	struct config_errors errs;

	assert_null(parse("[server]\nlisten = tcp:127.0.0.1:1\na = 1\nb = 2\n[service:x]\nc = 3\n",
	                  &errs));
	assert_int_equal(errs.count, 4);
	assert_non_null(strstr(errs.text, "t.conf:3:"));
	assert_non_null(strstr(errs.text, "t.conf:4:"));
	assert_non_null(strstr(errs.text, "t.conf:6:"));
}

static void
test_continuation(void **state)
{
	struct config_errors errs;
	struct config *cfg =
	        parse("[server]\nlisten = tcp:127.0.0.1:1\n  tcp:127.0.0.1:2\n", &errs);

	assert_non_null(cfg);
	assert_int_equal(cfg->nlisten, 2);
	config_unref(cfg);
}

/* Parsing must fail with exactly these errors, each on its own line. */
static void
expect_errors(const char *text, const char *all)
{
	struct config_errors errs;

	assert_null(parse(text, &errs));
	assert_string_equal(errs.text, all);
}

static void
test_errors_once_on_their_line(void **state)
{
	/* A bad listen address is not also "no listen address". */
	expect_errors("[server]\nlisten = tcp:127.0.0.1:99999\n",
	              "t.conf:2: listen: port must be a number from 0 to 65535\n");
	expect_errors(
	        "[server]\nlisten = tcp:127.0.0.1:99999\n[service:x]\nbackend = builtin:echo\n",
	        "t.conf:2: listen: port must be a number from 0 to 65535\n");
	/* Nor is an unknown key, which may be listen misspelt. */
	expect_errors("[server]\nlistne = tcp:127.0.0.1:1\n",
	              "t.conf:2: unknown key \"listne\" in [server]\n");
	/* A whole-file error names the file, not a line. */
	expect_errors("", "t.conf: no listen address: set listen in [server]\n");
	expect_errors("# nothing\n\n[server]\n[service:x]\nbackend = builtin:echo\n",
	              "t.conf: no listen address: set listen in [server]\n");
	/* A missing '=' on its own line, after an earlier error. */
	expect_errors("[server]\nlisten = tcp:127.0.0.1:1\n[service:x\n[service:y]\n"
	              "backend = builtin:echo\njunk\n",
	              "t.conf:3: section header without ']'\n"
	              "t.conf:6: syntax error: expected [section] or key = value\n");
	expect_errors("[server]\nlisten = tcp:127.0.0.1:1\njunk\nmore junk\n",
	              "t.conf:3: syntax error: expected [section] or key = value\n"
	              "t.conf:4: syntax error: expected [section] or key = value\n");
	/* An indented header after a key is one error, not also a value for that key. */
	expect_errors("[server]\nlisten = tcp:127.0.0.1:1\n  [service:x]\n",
	              "t.conf:3: a section header must start in the first column\n");
	/* Checks of two keys together point at the key, wherever it is. */
	expect_errors("[server]\nlisten = tcp:127.0.0.1:1\nhandshake_cpu_low = 60\n"
	              "[service:x]\nbackend = builtin:echo\n",
	              "t.conf:3: handshake_cpu_low is above handshake_cpu_high\n");
	expect_errors("[server]\nlisten = tcp:127.0.0.1:1\npow_difficulty_max = 4\n"
	              "[service:x]\nbackend = builtin:echo\n",
	              "t.conf:3: pow_difficulty_min is above pow_difficulty_max\n");
	expect_errors("[server]\nlisten = tcp:127.0.0.1:1\ntoken_ttl = 100\n"
	              "token_max_ttl = 50\n[service:x]\nbackend = builtin:echo\n",
	              "t.conf:3: token_ttl is longer than token_max_ttl\n");
	expect_errors("[server]\nlisten = tcp:127.0.0.1:1\ntls_key = /k.pem\n"
	              "[service:x]\nbackend = builtin:echo\n",
	              "t.conf:3: tls_certificate and tls_key go together\n");
	expect_errors("[server]\nlisten = tcp:127.0.0.1:1\naudit_required = yes\n"
	              "audit_log = none\n",
	              "t.conf:3: audit_required needs an audit log (audit_log is none)\n");
	expect_errors("[server]\nlisten = tcp:127.0.0.1:1\nstore_user = node\n"
	              "[service:x]\nbackend = builtin:echo\n",
	              "t.conf:3: store_user needs store_password_file\n");
	/* ... and say nothing more about a key whose value was refused. */
	expect_errors("[server]\nlisten = tcp:127.0.0.1:1\ntls_certificate = c.pem\n"
	              "tls_key = /k.pem\n",
	              "t.conf:3: tls_certificate: expected an absolute path\n");
	expect_errors("[server]\nlisten = tcp:127.0.0.1:1\nhandshake_cpu_high = 500\n"
	              "handshake_cpu_low = 60\n",
	              "t.conf:3: handshake_cpu_high: expected a percentage from 1 to 100\n");
	expect_errors("[server]\nlisten = tcp:127.0.0.1:1\ncontrol_socket = x.sock\n"
	              "[service:x]\nbackend = register\nregister_users = alice\n",
	              "t.conf:3: control_socket: expected an absolute path or none\n");
}

static void
test_byte_order_mark_and_crlf(void **state)
{
	struct config_errors errs;
	struct config *cfg = parse("\xEF\xBB\xBF[server]\r\nlisten = tcp:127.0.0.1:1 ; one\r\n"
	                           "\r\n  tcp:127.0.0.1:2\r\n",
	                           &errs);

	assert_non_null(cfg);
	assert_int_equal(cfg->nlisten, 2);
	config_unref(cfg);
}

static void
test_load_missing_file(void **state)
{
	struct config_errors errs;

	assert_null(config_load("/nonexistent/fived.conf", &errs));
	assert_non_null(strstr(errs.text, "/nonexistent/fived.conf: No such file"));
}

/* Transition on the same port: off by default; each key a tcp: or unix: backend. */
static void
test_legacy(void **state)
{
	struct config_errors errs;
	struct config *cfg = parse("[server]\nlisten = tcp:127.0.0.1:1\n", &errs);

	assert_non_null(cfg);
	assert_false(config_legacy_on(cfg));
	assert_int_equal(cfg->legacy[LEGACY_TLS].backend, BACKEND_NONE);
	config_unref(cfg);
	cfg = parse("[server]\nlisten = tcp:127.0.0.1:1\nconnect_timeout = 2s\n"
	            "legacy_ssh = tcp:127.0.0.1:22\nlegacy_tls = unix:/run/tls.sock\n"
	            "tls_names = Fived.Example five.example\ntls_names = x\n",
	            &errs);
	assert_non_null(cfg);
	assert_true(config_legacy_on(cfg));
	assert_int_equal(cfg->legacy[LEGACY_SSH].backend, BACKEND_TCP);
	assert_int_equal(cfg->legacy[LEGACY_SSH].addr.port, 22);
	assert_string_equal(cfg->legacy[LEGACY_SSH].name, "legacy-ssh");
	assert_int_equal(cfg->legacy[LEGACY_SSH].connect_timeout_ms, 2000);
	assert_int_equal(cfg->legacy[LEGACY_SSH].proxy, PROXY_NONE);
	assert_int_equal(cfg->legacy[LEGACY_HTTP].backend, BACKEND_NONE);
	assert_int_equal(cfg->legacy[LEGACY_TLS].backend, BACKEND_UNIX);
	assert_int_equal(cfg->ntls_names, 3);
	assert_string_equal(cfg->tls_names[0], "fived.example");
	assert_string_equal(cfg->tls_names[2], "x");
	config_unref(cfg);
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\nlegacy_http = builtin:echo\n",
	             "t.conf:3: legacy_http: expected tcp:HOST:PORT or unix:PATH");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\nlegacy_http = tcp:127.0.0.1:0\n",
	             "t.conf:3: legacy_http: a backend needs a port other than 0");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\ndark = yes\nlegacy_ssh = tcp:h:22\n",
	             "t.conf:4: legacy_ssh and dark = yes contradict: a dark server answers only "
	             "the sealed handshake");
	expect_error("[server]\nlisten = tcp:127.0.0.1:1\ntls_names = a.example\n",
	             "t.conf:3: tls_names is for legacy_tls: set both or neither");
	expect_error(
	        "[server]\nlisten = tcp:127.0.0.1:1\nlegacy_tls = tcp:h:1\n"
	        "tls_names = a/b\n",
	        "t.conf:4: tls_names: expected host names of letters, digits, '.', '-' and '_'");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_builtin),
	        cmocka_unit_test(test_full),
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_audit_log_values),
	        cmocka_unit_test(test_vhosts),
	        cmocka_unit_test(test_errors),
	        cmocka_unit_test(test_cluster_keys),
	        cmocka_unit_test(test_legacy),
	        cmocka_unit_test(test_authentication_keys),
	        cmocka_unit_test(test_authentication_errors),
	        cmocka_unit_test(test_seal_suites),
	        cmocka_unit_test(test_long_and_binary_lines),
	        cmocka_unit_test(test_many_errors_reported),
	        cmocka_unit_test(test_continuation),
	        cmocka_unit_test(test_errors_once_on_their_line),
	        cmocka_unit_test(test_byte_order_mark_and_crlf),
	        cmocka_unit_test(test_load_missing_file),
	        cmocka_unit_test(test_workers_and_their_share),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
