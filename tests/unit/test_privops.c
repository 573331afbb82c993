/*
 * The privileged side's answers (privops.c) and the tables it and the
 * worker keep: each request is checked against the configuration, keys
 * never leave, limits refuse instead of failing open.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <poll.h>
#include <seccomp.h>
#include <sodium.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <uv.h>

#include "common/keytable.h"
#include "proto/sealed.h"
#include "server/conf/config.h"
#include "server/conf/revocations.h"
#include "server/policy/penalty.h"
#include "server/privsep/privops.h"
#include "server/privsep/sockets.h"

struct fixture {
	char dir[64];
	char *text;
	struct config *cfg;
	struct priv_state st;
};

static int
setup(void **state)
{
	static struct fixture f;
	struct config_errors errs;
	char text[1024];
	int n;

	memset(&f, 0, sizeof(f));
	strcpy(f.dir, "/tmp/test_privops.XXXXXX");
	if (sodium_init() < 0 || mkdtemp(f.dir) == NULL)
		return -1;
	n = snprintf(text, sizeof(text),
	             "[server]\nlisten = tcp:127.0.0.1:0\nkey_file = %s/server.key\n"
	             "audit_log = none\nmax_tokens_per_hour = 3\ntoken_max_ttl = 600\n"
	             "provider_name = idp.example\nproof_ttl = 120\n"
	             "[service:local]\nbackend = unix:%s/backend.sock\n",
	             f.dir, f.dir);
	if ((f.cfg = config_parse("test", text, (size_t)n, &errs)) == NULL ||
	    privops_init(&f.st, f.cfg, NULL, text, (size_t)n) != 0)
		return -1;
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	privops_free(&f->st);
	config_unref(f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct priv_answer
ask(struct fixture *f, struct priv_request *req, int expect)
{
	struct priv_answer ans;

	assert_int_equal(privops_answer(&f->st, req, &ans), expect);
	return ans;
}

/* Only the addresses the configuration names, and the same socket every time. */
static void
test_listen(void **state)
{
	struct fixture *f = *state;
	struct priv_request req = {.type = PRIV_LISTEN};
	struct sockaddr_storage a, b;
	socklen_t alen = sizeof(a), blen = sizeof(b);
	struct priv_answer ans;
	int first;

	strcpy(req.arg, "tcp:127.0.0.1:9");
	ans = ask(f, &req, 0);
	assert_false(ans.ok);
	assert_string_equal((char *)ans.text, "1"); /* EPERM */
	assert_int_equal(ans.fd, -1);
	privops_answer_clear(&ans);
	strcpy(req.arg, "control:/tmp/elsewhere.sock");
	ans = ask(f, &req, 0);
	assert_false(ans.ok);
	privops_answer_clear(&ans);
	strcpy(req.arg, "tcp:127.0.0.1:0");
	ans = ask(f, &req, 0);
	assert_true(ans.ok);
	first = ans.fd;
	ans.fd = -1;
	privops_answer_clear(&ans);
	ans = ask(f, &req, 0);
	assert_true(ans.ok);
	assert_int_equal(getsockname(first, (struct sockaddr *)&a, &alen), 0);
	assert_int_equal(getsockname(ans.fd, (struct sockaddr *)&b, &blen), 0);
	assert_memory_equal(&a, &b, alen);
	close(first);
	privops_answer_clear(&ans);
	/* Not even an address: the worker is not to be trusted. */
	strcpy(req.arg, "nonsense");
	ask(f, &req, -1);
}

static void
test_files_and_backends(void **state)
{
	struct fixture *f = *state;
	struct priv_request req = {.type = PRIV_FILE};
	struct priv_answer ans;

	strcpy(req.arg, "/etc/passwd");
	ans = ask(f, &req, 0);
	assert_false(ans.ok);
	privops_answer_clear(&ans);
	req.type = PRIV_CONNECT;
	strcpy(req.arg, "/run/some.sock");
	ans = ask(f, &req, 0);
	assert_false(ans.ok);
	assert_string_equal((char *)ans.text, "1");
	privops_answer_clear(&ans);
	/* A configured one that nobody listens on: its errno, not a refusal. */
	snprintf(req.arg, sizeof(req.arg), "%s/backend.sock", f->dir);
	ans = ask(f, &req, 0);
	assert_false(ans.ok);
	assert_string_equal((char *)ans.text, "2"); /* ENOENT */
	privops_answer_clear(&ans);
}

/* The worker gets Diffie-Hellman results, never the key, and none with a low-order point. */
static void
test_dh(void **state)
{
	struct fixture *f = *state;
	struct priv_request req = {.type = PRIV_DH};
	uint8_t sk[32], expect[32];
	struct priv_answer ans;

	ans = ask(f, &req, 0);
	assert_false(ans.ok);
	privops_answer_clear(&ans);
	randombytes_buf(sk, sizeof(sk));
	crypto_scalarmult_base(req.pk, sk);
	ans = ask(f, &req, 0);
	assert_true(ans.ok);
	assert_int_equal(ans.len, 32);
	assert_int_equal(crypto_scalarmult(expect, sk, f->st.key->pk), 0);
	assert_memory_equal(ans.text, expect, 32);
	privops_answer_clear(&ans);
	req.type = PRIV_KEYS;
	ans = ask(f, &req, 0);
	assert_true(ans.ok);
	assert_memory_equal(ans.text, f->st.key->pk, 32);
	assert_memory_not_equal(ans.text, f->st.key->sk, 32);
	privops_answer_clear(&ans);
}

/*
 * Proofs: the monitor's own name and lifetime, never the worker's; only
 * identities a session authenticated itself; a malformed request is the
 * worker's fault.
 */
static void
test_proof_sign(void **state)
{
	struct fixture *f = *state;
	struct priv_request req = {.type = PRIV_PROOF_SIGN, .number = AUTH_PUBKEY};
	uint64_t now = (uint64_t)time(NULL);
	uint8_t hash[PROOF_HASH_LEN];
	struct proof_claims c;
	struct priv_answer ans;

	randombytes_buf(hash, sizeof(hash));
	strcpy(req.arg, "alice");
	memcpy(req.blob, hash, sizeof(hash));
	req.blob_len = sizeof(hash);
	ans = ask(f, &req, 0);
	assert_true(ans.ok);
	assert_int_equal(proof_verify(f->st.sign_key->pk, (char *)ans.text, hash, now, &c),
	                 PROOF_OK);
	assert_string_equal(c.iss, "idp.example");
	assert_string_equal(c.sub, "alice");
	assert_true(c.exp - c.iat == 120 && c.iat + 5 >= now);
	/* Not the token key: a proof is not a token, nor signed like one. */
	assert_int_equal(proof_verify(f->st.token_key->pk, (char *)ans.text, hash, now, &c),
	                 PROOF_OTHER_KEY);
	privops_answer_clear(&ans);
	req.number = AUTH_TOKEN;
	ans = ask(f, &req, 0);
	assert_false(ans.ok);
	privops_answer_clear(&ans);
	req.number = AUTH_PUBKEY;
	req.blob_len = sizeof(hash) - 1;
	ans = ask(f, &req, -1);
	privops_answer_clear(&ans);
	req.blob_len = sizeof(hash);
	strcpy(req.arg, "not an identity");
	ans = ask(f, &req, -1);
	privops_answer_clear(&ans);
}

static size_t
claims(char *out, size_t size, uint64_t iat, uint64_t exp)
{
	struct token_claims c;
	size_t len;

	memset(&c, 0, sizeof(c));
	strcpy(c.app, "db");
	strcpy(c.sub, "alice");
	c.has_sub = true;
	c.amr = AUTH_PUBKEY;
	c.iat = iat;
	c.exp = exp;
	strcpy(c.jti, "0123456789abcdef0123456789abcdef");
	assert_int_equal(token_claims_encode(&c, out, size, &len), 0);
	return len;
}

/* Tokens only as configured, and no more than the hourly quota per identity. */
static void
test_token_issue(void **state)
{
	struct fixture *f = *state;
	struct priv_request req = {.type = PRIV_TOKEN_ISSUE, .number = TOKEN_PUBLIC};
	uint64_t now = (uint64_t)time(NULL);
	struct priv_answer ans;
	int i;

	strcpy(req.arg, "alice");
	req.blob_len = claims((char *)req.blob, sizeof(req.blob), now, now + 6000);
	ans = ask(f, &req, 0);
	assert_false(ans.ok); /* beyond token_max_ttl */
	privops_answer_clear(&ans);
	req.blob_len = claims((char *)req.blob, sizeof(req.blob), now - 3600, now + 60);
	ans = ask(f, &req, 0);
	assert_false(ans.ok); /* not issued now */
	privops_answer_clear(&ans);
	req.blob_len = claims((char *)req.blob, sizeof(req.blob), now, now + 60);
	for (i = 0; i < 3; i++) {
		ans = ask(f, &req, 0);
		assert_true(ans.ok);
		assert_memory_equal(ans.text, "v4.public.", 10);
		privops_answer_clear(&ans);
	}
	ans = ask(f, &req, 0);
	assert_false(ans.ok);
	assert_string_equal((char *)ans.text, "token quota reached");
	privops_answer_clear(&ans);
	strcpy(req.arg, "bob");
	ans = ask(f, &req, 0);
	assert_true(ans.ok);
	privops_answer_clear(&ans);
}

/* The floor rises past a timestamp, durably, before the worker may act on it. */
static void
test_early_reserve(void **state)
{
	struct fixture *f = *state;
	struct priv_request req = {.type = PRIV_EARLY_RESERVE};
	uint64_t now = (uint64_t)time(NULL) * 1000000000ULL, floor;
	struct priv_answer ans;
	char path[128], text[64];
	FILE *fp;

	ans = ask(f, &req, 0);
	assert_true(ans.ok);
	privops_answer_clear(&ans);
	req.number = now - 3600ULL * 1000000000ULL;
	ans = ask(f, &req, 0);
	assert_false(ans.ok);
	privops_answer_clear(&ans);
	req.number = now;
	ans = ask(f, &req, 0);
	assert_true(ans.ok);
	assert_int_equal(sscanf((char *)ans.text, "%lu", &floor), 1);
	assert_true(floor >= now + PRIVOPS_EARLY_AHEAD_NS);
	privops_answer_clear(&ans);
	snprintf(path, sizeof(path), "%s/server%s", f->dir, PRIVOPS_EARLY_SUFFIX);
	assert_non_null(fp = fopen(path, "r"));
	assert_non_null(fgets(text, sizeof(text), fp));
	fclose(fp);
	assert_int_equal(strtoull(text, NULL, 10), floor);
}

/* The cluster's cookie secrets: with a cluster key only, and never of a bucket to come. */
static void
test_cookie_secret(void **state)
{
	struct fixture *f = *state;
	struct priv_request req = {.type = PRIV_COOKIE_SECRET};
	uint64_t bucket = sealed_cookie_bucket((uint64_t)time(NULL));
	uint8_t want[SEALED_KEY_LEN];
	struct priv_answer ans;

	req.number = bucket;
	ans = ask(f, &req, 0);
	assert_false(ans.ok);
	privops_answer_clear(&ans);
	assert_non_null(f->st.cluster_key = sodium_malloc(SEALED_KEY_LEN));
	memset(f->st.cluster_key, 0x42, SEALED_KEY_LEN);
	ans = ask(f, &req, 0);
	assert_true(ans.ok);
	assert_int_equal(ans.len, SEALED_KEY_LEN);
	sealed_cookie_secret_derive(f->st.cluster_key, bucket, want);
	assert_memory_equal(ans.text, want, SEALED_KEY_LEN);
	privops_answer_clear(&ans);
	req.number = bucket - 1;
	ans = ask(f, &req, 0);
	assert_true(ans.ok);
	privops_answer_clear(&ans);
	req.number = bucket + 2;
	ans = ask(f, &req, 0);
	assert_false(ans.ok);
	privops_answer_clear(&ans);
	sodium_free(f->st.cluster_key);
	f->st.cluster_key = NULL;
}

/* A full table makes room by forgetting its least recently used key; it never refuses. */
static void
test_keytable_evicts_the_least_recently_used(void **state)
{
	struct keytable *t = keytable_new(1000000, 3);
	struct keytable_value *v;
	uint64_t now = 1000;

	assert_non_null(keytable_get(t, "a", 1, now, 1));
	assert_non_null(keytable_get(t, "b", 1, now, 1));
	assert_non_null(keytable_get(t, "c", 1, now, 1));
	assert_non_null(keytable_get(t, "a", 1, now, 0)); /* a is used again: b is the oldest */
	assert_non_null(v = keytable_get(t, "d", 1, now, 1));
	assert_int_equal(keytable_count(t), 3);
	assert_null(keytable_get(t, "b", 1, now, 0));
	assert_non_null(keytable_get(t, "a", 1, now, 0));
	assert_non_null(keytable_get(t, "c", 1, now, 0));
	keytable_free(t);
}

/* A new source meets its penalty even when the table is full of others. */
static void
test_penalties_of_a_full_table(void **state)
{
	struct penalty_table *t = penalty_table_new();
	uint64_t now = 1000000;
	uint32_t i;

	for (i = 0; i < PENALTY_ENTRIES_MAX + 10; i++)
		penalty_fail(t, &i, sizeof(i), now);
	assert_true(penalty_delay(t, &i, sizeof(i), now) == 0);
	penalty_fail(t, "new", 3, now);
	assert_true(penalty_delay(t, "new", 3, now) > 0);
	penalty_table_free(t);
}

/* Token ids are random hex, as fived makes them. */
static void
random_jti(char jti[TOKEN_JTI_LEN + 1])
{
	uint8_t raw[TOKEN_JTI_LEN / 2];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(jti, TOKEN_JTI_LEN + 1, raw, sizeof(raw));
}

/* A full list refuses, saying so: never a revocation reported and not kept. */
static void
test_revocations_refuse_when_full(void **state)
{
	struct revocations r;
	char jti[TOKEN_JTI_LEN + 1], err[128];
	uint64_t now = 1000;
	size_t i;

	revocations_init(&r);
	for (i = 0; i < REVOCATIONS_MAX; i++) {
		random_jti(jti);
		assert_int_equal(revocations_add(&r, jti, now + 10, now, err, sizeof(err)), 0);
	}
	random_jti(jti);
	assert_int_equal(revocations_add(&r, jti, now + 10, now, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "full"));
	assert_false(revocations_contains(&r, jti, now));
	/* Expired ones make room. */
	assert_int_equal(revocations_add(&r, jti, now + 20, now + 10, err, sizeof(err)), 0);
	assert_true(revocations_contains(&r, jti, now + 10));
	assert_int_equal(revocations_add(&r, "not-a-jti", now + 20, now, err, sizeof(err)), -1);
	revocations_free(&r);
}

/*
 * A Unix socket file is made with its mode by bind itself: a chmod by path
 * afterwards would follow a symbolic link another user of the directory
 * swapped in.  A child that any chmod would kill makes one.
 */
static void
test_unix_socket_without_chmod(void **state)
{
	struct addr_spec a = {.kind = ADDR_UNIX};
	char dir[] = "/tmp/test_sockets.XXXXXX";
	struct stat st;
	scmp_filter_ctx f;
	int status, fd;
	pid_t pid;

	assert_non_null(mkdtemp(dir));
	snprintf(a.path, sizeof(a.path), "%s/s.sock", dir);
	if ((pid = fork()) == 0) {
		f = seccomp_init(SCMP_ACT_ALLOW);
		if (f == NULL ||
		    seccomp_rule_add(f, SCMP_ACT_KILL_PROCESS, SCMP_SYS(chmod), 0) != 0 ||
		    seccomp_rule_add(f, SCMP_ACT_KILL_PROCESS, SCMP_SYS(fchmodat), 0) != 0 ||
		    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || seccomp_load(f) != 0)
			_exit(2);
		fd = sockets_listen(&a, false, false);
		_exit(fd >= 0 && stat(a.path, &st) == 0 && (st.st_mode & 0777) == SOCKETS_UNIX_MODE
		              ? 0
		              : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	unlink(a.path);
	rmdir(dir);
}

/* A connection's options, as accepted from listener: TCP_NODELAY and a zero linger. */
static bool
accepted_tuned(int listener)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int c, a, nodelay = 0;
	socklen_t nlen = sizeof(nodelay);
	struct linger l = {0};
	socklen_t llen = sizeof(l);

	assert_int_equal(getsockname(listener, (struct sockaddr *)&ss, &len), 0);
	assert_true((c = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(connect(c, (struct sockaddr *)&ss, len), 0);
	assert_true((a = accept(listener, NULL, NULL)) >= 0);
	getsockopt(a, IPPROTO_TCP, TCP_NODELAY, &nodelay, &nlen);
	getsockopt(a, SOL_SOCKET, SO_LINGER, &l, &llen);
	close(a);
	close(c);
	return nodelay != 0 && l.l_onoff != 0 && l.l_linger == 0;
}

/* A listener for sessions hands its connections TCP_NODELAY and the reset on close. */
static void
test_session_listener_options(void **state)
{
	struct addr_spec a;
	const char *why;
	int fd;

	(void)state;
	assert_int_equal(addr_parse("tcp:127.0.0.1:0", &a, &why), 0);
	assert_true((fd = sockets_listen(&a, false, true)) >= 0);
	assert_true(sockets_are_relayed(fd));
	assert_true(accepted_tuned(fd));
	close(fd);
	assert_true((fd = sockets_listen(&a, false, false)) >= 0);
	assert_false(sockets_are_relayed(fd));
	assert_false(accepted_tuned(fd));
	close(fd);
}

/* A connected pair on loopback: *ours and the *peer's end of it. */
static void
connected_pair(int *ours, int *peer)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	*ours = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(*ours, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_true((*peer = accept(l, NULL, NULL)) >= 0);
	close(l);
}

/* How sockets_end_was_reset reads ours once the peer ended it. */
static bool
end_read_as_reset(int ours, bool ours_ended)
{
	uv_loop_t loop;
	uv_tcp_t h;
	bool reset;

	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(uv_tcp_init(&loop, &h), 0);
	assert_int_equal(uv_tcp_open(&h, ours), 0);
	reset = sockets_end_was_reset((uv_handle_t *)&h, ours_ended);
	uv_close((uv_handle_t *)&h, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return reset;
}

/*
 * A reset stays a reset also when a write took its error first (the read
 * that follows sees only an end); an end in order, before or after our own,
 * stays one.
 */
static void
test_end_was_reset(void **state)
{
	struct linger reset_on_close = {.l_onoff = 1, .l_linger = 0};
	struct pollfd p = {.events = POLLIN};
	int ours, peer;
	char c;

	(void)state;
	connected_pair(&ours, &peer);
	setsockopt(peer, SOL_SOCKET, SO_LINGER, &reset_on_close, sizeof(reset_on_close));
	close(peer);
	p.fd = ours;
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_int_equal(send(ours, "x", 1, MSG_NOSIGNAL), -1);
	assert_int_equal(recv(ours, &c, 1, 0), 0);
	assert_true(end_read_as_reset(ours, false));

	connected_pair(&ours, &peer);
	shutdown(peer, SHUT_WR);
	p.fd = ours;
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_false(end_read_as_reset(ours, false));
	close(peer);

	connected_pair(&ours, &peer);
	close(peer);
	p.fd = ours;
	assert_int_equal(poll(&p, 1, 5000), 1);
	shutdown(ours, SHUT_WR);
	assert_false(end_read_as_reset(ours, true));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_listen),
	        cmocka_unit_test(test_files_and_backends),
	        cmocka_unit_test(test_dh),
	        cmocka_unit_test(test_token_issue),
	        cmocka_unit_test(test_early_reserve),
	        cmocka_unit_test(test_cookie_secret),
	        cmocka_unit_test(test_proof_sign),
	};
	const struct CMUnitTest tables[] = {
	        cmocka_unit_test(test_keytable_evicts_the_least_recently_used),
	        cmocka_unit_test(test_penalties_of_a_full_table),
	        cmocka_unit_test(test_revocations_refuse_when_full),
	        cmocka_unit_test(test_unix_socket_without_chmod),
	        cmocka_unit_test(test_session_listener_options),
	        cmocka_unit_test(test_end_was_reset),
	};

	return cmocka_run_group_tests(tests, setup, teardown) |
	       cmocka_run_group_tests(tables, NULL, NULL);
}
