/*
 * OpenSSH key formats and the ssh-agent client, against keys made by
 * ssh-keygen at test time, a real ssh-agent, and scripted fake agents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/keys/agent.h"
#include "common/util.h"
#include "crypto/sshkey.h"

#define PATH_LEN       256
#define FILE_BUF       (SSHKEY_FILE_MAX + 1)
#define BODY_BUF       (SSHKEY_FILE_MAX / 4 * 3)
#define B64_BUF        1024
#define ARMOUR_COLUMNS 70 /* ssh-keygen's line length */
#define REPLY_BUF      4096
#define FAKE_REQ_MAX   65536
#define WAIT_STEP_MS   10
#define WAIT_MAX_MS    5000
#define PAD_MAX        7 /* private section padding: less than a block of 8 */
#define PASSPHRASE     "secret"
#define COMMENT        "test"
#define CHALLENGE      "fived challenge"

#define SSH_AGENT_FAILURE           5
#define SSH_AGENT_IDENTITIES_ANSWER 12
#define SSH_AGENT_SIGN_RESPONSE     14

struct fixture {
	char dir[PATH_LEN];
	char ed[PATH_LEN];    /* Ed25519, no passphrase */
	char rsa[PATH_LEN];   /* RSA, no passphrase */
	char enc[PATH_LEN];   /* Ed25519 with PASSPHRASE */
	char other[PATH_LEN]; /* Ed25519 never given to the agent */
	char sock[PATH_LEN];
	char askpass[PATH_LEN];
	pid_t agent;
};

static struct fixture fx;

/* --- helpers --------------------------------------------------------------- */

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* out = a + b, which must fit. */
static void
join(char *out, size_t size, const char *a, const char *b)
{
	int n = snprintf(out, size, "%s%s", a, b);

	assert_true(n > 0 && (size_t)n < size);
}

/* Runs argv with standard input and output on /dev/null; returns its exit status. */
static int
run(char *const argv[])
{
	pid_t pid;
	int status = 0, fd;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = open("/dev/null", O_RDWR);
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
keygen(const char *path, const char *type, const char *bits, const char *pass)
{
	char *argv[] = {"ssh-keygen", "-q", "-t",    (char *)type, "-b",         (char *)bits, "-N",
	                (char *)pass, "-C", COMMENT, "-f",         (char *)path, NULL};

	assert_int_equal(run(argv), 0);
}

static size_t
slurp(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, size - 1, f);
	fclose(f);
	assert_true(n < size - 1);
	buf[n] = '\0';
	return n;
}

static size_t
slurp_pub(const char *key, char *buf, size_t size)
{
	char path[PATH_LEN];

	join(path, sizeof(path), key, ".pub");
	return slurp(path, buf, size);
}

static void
public_of(const char *key, uint8_t pk[SSHKEY_ED25519_PUBLEN])
{
	char text[FILE_BUF];
	const char *why = NULL;
	size_t n = slurp_pub(key, text, sizeof(text));

	assert_int_equal(sshkey_parse_public(text, n, pk, &why), 0);
}

/* The second field of a .pub file: the base64 blob. */
static void
b64_of(const char *key, char *out, size_t size)
{
	char text[FILE_BUF];
	char *p, *end;

	slurp_pub(key, text, sizeof(text));
	p = strchr(text, ' ');
	assert_non_null(p);
	p++;
	end = strchr(p, ' ');
	assert_non_null(end);
	assert_true((size_t)(end - p) < size);
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
}

static bool
all_zero(const uint8_t *p, size_t n)
{
	return sodium_is_zero(p, n) == 1;
}

/* Decodes the base64 body of a private key file. */
static size_t
unarmour(const char *text, uint8_t *body, size_t size)
{
	const char *b = strchr(text, '\n');
	const char *e = strstr(text, "-----END");
	size_t len = 0;

	assert_non_null(b);
	assert_non_null(e);
	assert_int_equal(sodium_base642bin(body, size, b + 1, (size_t)(e - b - 1), "\n", &len, NULL,
	                                   sodium_base64_VARIANT_ORIGINAL),
	                 0);
	return len;
}

/* Writes body as ssh-keygen would; returns the length of the text. */
static size_t
armour(const uint8_t *body, size_t len, char *out, size_t size)
{
	char b64[FILE_BUF];
	size_t n, i, o;

	sodium_bin2base64(b64, sizeof(b64), body, len, sodium_base64_VARIANT_ORIGINAL);
	n = strlen(b64);
	o = (size_t)snprintf(out, size, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
	for (i = 0; i < n; i += ARMOUR_COLUMNS)
		o += (size_t)snprintf(out + o, size - o, "%.*s\n",
		                      (int)(n - i < ARMOUR_COLUMNS ? n - i : ARMOUR_COLUMNS),
		                      b64 + i);
	o += (size_t)snprintf(out + o, size - o, "-----END OPENSSH PRIVATE KEY-----\n");
	assert_true(o < size);
	return o;
}

static int
parse(const char *line, struct sshkey_authorized_key *k, const char **why)
{
	*why = NULL;
	return sshkey_authorized_parse_line(line, strlen(line), k, why);
}

/* --- fixture --------------------------------------------------------------- */

static int
group_setup(void **state)
{
	char tmpl[] = "/tmp/test_sshkey.XXXXXX";
	FILE *f;

	if (sodium_init() < 0 || mkdtemp(tmpl) == NULL)
		return -1;
	memset(&fx, 0, sizeof(fx));
	snprintf(fx.dir, sizeof(fx.dir), "%s", tmpl);
	join(fx.ed, sizeof(fx.ed), fx.dir, "/ed");
	join(fx.rsa, sizeof(fx.rsa), fx.dir, "/rsa");
	join(fx.enc, sizeof(fx.enc), fx.dir, "/enc");
	join(fx.other, sizeof(fx.other), fx.dir, "/other");
	join(fx.sock, sizeof(fx.sock), fx.dir, "/agent.sock");
	join(fx.askpass, sizeof(fx.askpass), fx.dir, "/askpass");
	keygen(fx.ed, "ed25519", "256", "");
	keygen(fx.rsa, "rsa", "2048", "");
	keygen(fx.enc, "ed25519", "256", PASSPHRASE);
	keygen(fx.other, "ed25519", "256", "");
	if ((f = fopen(fx.askpass, "w")) == NULL)
		return -1;
	fprintf(f, "#!/bin/sh\necho %s\n", PASSPHRASE);
	fclose(f);
	return chmod(fx.askpass, 0700);
}

static int
group_teardown(void **state)
{
	char *argv[] = {"rm", "-rf", fx.dir, NULL};

	return run(argv);
}

static int
agent_stop(void **state)
{
	if (fx.agent > 0) {
		kill(fx.agent, SIGTERM);
		waitpid(fx.agent, NULL, 0);
		fx.agent = 0;
	}
	unsetenv("SSH_AUTH_SOCK");
	unlink(fx.sock);
	return 0;
}

static int
agent_start(void **state)
{
	uint8_t keys[1][SSHKEY_ED25519_PUBLEN];
	char err[AGENT_ERR_MAX];
	size_t n;
	pid_t pid;
	int fd, waited;

	unlink(fx.sock);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		fd = open("/dev/null", O_RDWR);
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		/* -D: stays in the foreground, so this pid is the agent's. */
		execlp("ssh-agent", "ssh-agent", "-D", "-a", fx.sock, (char *)NULL);
		_exit(127);
	}
	fx.agent = pid;
	/* Ready once it answers, not merely once its socket exists. */
	for (waited = 0; agent_list(fx.sock, keys, 1, &n, err, sizeof(err)) != 0;
	     waited += WAIT_STEP_MS) {
		if (waited >= WAIT_MAX_MS) {
			agent_stop(state);
			return -1;
		}
		sleep_ms(WAIT_STEP_MS);
	}
	setenv("SSH_AUTH_SOCK", fx.sock, 1);
	return 0;
}

/* --- wire encoding and blobs ---------------------------------------------- */

static void
test_wire(void **state)
{
	static const uint8_t short_string[] = {0, 0, 0, 5, 'a', 'b'};
	static const uint8_t huge_string[] = {0xff, 0xff, 0xff, 0xff, 'a'};
	uint8_t buf[16];
	struct sshkey_writer w;
	struct sshkey_reader r;
	const uint8_t *s;
	size_t len;
	uint32_t v;
	uint8_t b;

	sshkey_writer_init(&w, buf, sizeof(buf));
	assert_int_equal(sshkey_put_u32(&w, 0x01020304), 0);
	assert_int_equal(sshkey_put_string(&w, "abc", 3), 0);
	assert_int_equal(sshkey_put_u8(&w, 9), 0);
	assert_int_equal(sshkey_put_string(&w, "abcd", 4), -1);
	assert_int_equal(w.len, 12);
	assert_int_equal(sshkey_put_u32(&w, 7), 0);
	assert_int_equal(sshkey_put_u8(&w, 1), -1);
	assert_int_equal(sshkey_put_u32(&w, 1), -1);
	assert_int_equal(w.len, sizeof(buf));

	sshkey_reader_init(&r, buf, w.len);
	assert_int_equal(sshkey_get_u32(&r, &v), 0);
	assert_int_equal(v, 0x01020304);
	assert_int_equal(sshkey_get_string(&r, &s, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(s, "abc", 3);
	assert_int_equal(sshkey_get_u8(&r, &b), 0);
	assert_int_equal(b, 9);
	assert_int_equal(sshkey_get_u32(&r, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(sshkey_reader_left(&r), 0);
	assert_int_equal(sshkey_get_u8(&r, &b), -1);
	assert_int_equal(sshkey_get_string(&r, &s, &len), -1);

	/* Failed reads leave the reader where it was. */
	sshkey_reader_init(&r, short_string, sizeof(short_string));
	assert_int_equal(sshkey_get_string(&r, &s, &len), -1);
	assert_int_equal(r.off, 0);
	sshkey_reader_init(&r, huge_string, sizeof(huge_string));
	assert_int_equal(sshkey_get_string(&r, &s, &len), -1);
	assert_int_equal(r.off, 0);
	sshkey_reader_init(&r, short_string, 3);
	assert_int_equal(sshkey_get_u32(&r, &v), -1);
	assert_int_equal(r.off, 0);
}

static void
test_blobs(void **state)
{
	uint8_t pk[SSHKEY_ED25519_PUBLEN], sk[SSHKEY_ED25519_SECLEN], got[SSHKEY_ED25519_PUBLEN];
	uint8_t sig[SSHKEY_ED25519_SIGLEN], got_sig[SSHKEY_ED25519_SIGLEN];
	uint8_t blob[SSHKEY_BLOB_MAX + 1], sblob[SSHKEY_SIG_BLOB_MAX + 1], odd[SSHKEY_SIG_BLOB_MAX];
	uint8_t zeros[SSHKEY_ED25519_PUBLEN + 1] = {0};
	struct sshkey_writer w;
	size_t len, slen;

	crypto_sign_keypair(pk, sk);
	assert_int_equal(sshkey_blob_encode(pk, blob, sizeof(blob), &len), 0);
	assert_int_equal(len, 51);
	assert_int_equal(sshkey_blob_encode(pk, blob, len - 1, &len), -1);
	assert_int_equal(sshkey_blob_encode(pk, blob, sizeof(blob), &len), 0);
	assert_int_equal(sshkey_blob_decode(blob, len, got), 0);
	assert_memory_equal(got, pk, sizeof(pk));
	assert_int_equal(sshkey_blob_decode(blob, len - 1, got), -1);
	blob[len] = 0;
	assert_int_equal(sshkey_blob_decode(blob, len + 1, got), -1);
	blob[4] = 'x';
	assert_int_equal(sshkey_blob_decode(blob, len, got), -1);

	/* Key lengths one short and one long. */
	sshkey_writer_init(&w, odd, sizeof(odd));
	sshkey_put_string(&w, "ssh-ed25519", 11);
	sshkey_put_string(&w, zeros, SSHKEY_ED25519_PUBLEN - 1);
	assert_int_equal(sshkey_blob_decode(odd, w.len, got), -1);
	sshkey_writer_init(&w, odd, sizeof(odd));
	sshkey_put_string(&w, "ssh-ed25519", 11);
	sshkey_put_string(&w, zeros, SSHKEY_ED25519_PUBLEN + 1);
	assert_int_equal(sshkey_blob_decode(odd, w.len, got), -1);

	crypto_sign_detached(sig, NULL, (const uint8_t *)CHALLENGE, strlen(CHALLENGE), sk);
	assert_int_equal(sshkey_sig_encode(sig, sblob, sizeof(sblob), &slen), 0);
	assert_int_equal(slen, 83);
	assert_int_equal(sshkey_sig_encode(sig, sblob, slen - 1, &slen), -1);
	assert_int_equal(sshkey_sig_encode(sig, sblob, sizeof(sblob), &slen), 0);
	assert_int_equal(sshkey_sig_decode(sblob, slen, got_sig), 0);
	assert_memory_equal(got_sig, sig, sizeof(sig));
	sblob[slen] = 0;
	assert_int_equal(sshkey_sig_decode(sblob, slen + 1, got_sig), -1);
	assert_int_equal(sshkey_sig_decode(sblob, slen - 1, got_sig), -1);
	/* A key blob is not a signature blob, nor the other way round. */
	assert_int_equal(sshkey_blob_encode(pk, blob, sizeof(blob), &len), 0);
	assert_int_equal(sshkey_sig_decode(blob, len, got_sig), -1);
	assert_int_equal(sshkey_blob_decode(sblob, slen, got), -1);
}

static void
test_fingerprint(void **state)
{
	char cmd[2 * PATH_LEN], line[512], want[SSHKEY_FINGERPRINT_MAX];
	char fp[SSHKEY_FINGERPRINT_MAX];
	const char *keys[] = {fx.ed, fx.enc, fx.other};
	uint8_t pk[SSHKEY_ED25519_PUBLEN];
	FILE *p;
	size_t i;

	for (i = 0; i < ARRAY_LEN(keys); i++) {
		snprintf(cmd, sizeof(cmd), "ssh-keygen -lf '%s.pub'", keys[i]);
		assert_non_null(p = popen(cmd, "r"));
		assert_non_null(fgets(line, sizeof(line), p));
		assert_int_equal(pclose(p), 0);
		/* "256 SHA256:... test (ED25519)" */
		assert_int_equal(sscanf(line, "%*s %63s", want), 1);
		public_of(keys[i], pk);
		sshkey_fingerprint(pk, fp);
		assert_string_equal(fp, want);
	}
}

/* --- key files ------------------------------------------------------------- */

static void
test_private(void **state)
{
	char text[FILE_BUF], crlf[2 * FILE_BUF], tmp[FILE_BUF + 16];
	uint8_t sk[SSHKEY_ED25519_SECLEN], pk[SSHKEY_ED25519_PUBLEN];
	uint8_t pub[SSHKEY_ED25519_PUBLEN], sig[SSHKEY_ED25519_SIGLEN];
	const char *why = NULL;
	size_t n, i, m;

	n = slurp(fx.ed, text, sizeof(text));
	assert_int_equal(sshkey_parse_private(text, n, sk, pk, &why), 0);
	public_of(fx.ed, pub);
	assert_memory_equal(pk, pub, sizeof(pk));
	assert_memory_equal(sk + 32, pk, sizeof(pk));
	crypto_sign_detached(sig, NULL, (const uint8_t *)CHALLENGE, strlen(CHALLENGE), sk);
	assert_int_equal(
	        crypto_sign_verify_detached(sig, (const uint8_t *)CHALLENGE, strlen(CHALLENGE), pk),
	        0);

	/* CRLF line ends and trailing blank lines are fine. */
	for (i = 0, m = 0; i < n; i++) {
		if (text[i] == '\n')
			crlf[m++] = '\r';
		crlf[m++] = text[i];
	}
	assert_int_equal(sshkey_parse_private(crlf, m, sk, pk, &why), 0);
	m = (size_t)snprintf(tmp, sizeof(tmp), "%s\n \n", text);
	assert_int_equal(sshkey_parse_private(tmp, m, sk, pk, &why), 0);

	/* Anything else around the armour is not. */
	m = (size_t)snprintf(tmp, sizeof(tmp), "%sx\n", text);
	assert_int_equal(sshkey_parse_private(tmp, m, sk, pk, &why), SSHKEY_ERR);
	assert_true(all_zero(sk, sizeof(sk)));
	assert_true(all_zero(pk, sizeof(pk)));
	m = (size_t)snprintf(tmp, sizeof(tmp), "junk\n%s", text);
	assert_int_equal(sshkey_parse_private(tmp, m, sk, pk, &why), SSHKEY_ERR);
	assert_int_equal(
	        sshkey_parse_private(text, (size_t)(strstr(text, "-----END") - text), sk, pk, &why),
	        SSHKEY_ERR);
	assert_string_equal(why, "private key armour has no end line");
	assert_int_equal(sshkey_parse_private(text, n - 1, sk, pk, &why), 0);
	memcpy(tmp, text, n);
	tmp[n / 2] = '\0';
	assert_int_equal(sshkey_parse_private(tmp, n, sk, pk, &why), SSHKEY_ERR);
	assert_int_equal(sshkey_parse_private(text, 0, sk, pk, &why), SSHKEY_ERR);

	/* A public key file is not a private one, nor the other way round. */
	m = slurp_pub(fx.ed, tmp, sizeof(tmp));
	assert_int_equal(sshkey_parse_private(tmp, m, sk, pk, &why), SSHKEY_ERR);
	assert_int_equal(sshkey_parse_public(text, n, pk, &why), SSHKEY_ERR);
}

static void
test_private_refused(void **state)
{
	char text[FILE_BUF], big[SSHKEY_FILE_MAX + 2];
	uint8_t sk[SSHKEY_ED25519_SECLEN], pk[SSHKEY_ED25519_PUBLEN], pub[SSHKEY_ED25519_PUBLEN];
	const char *why = NULL;
	size_t n;

	n = slurp(fx.enc, text, sizeof(text));
	assert_int_equal(sshkey_parse_private(text, n, sk, pk, &why), SSHKEY_ENCRYPTED);
	assert_non_null(strstr(why, "ssh-agent"));
	assert_true(all_zero(sk, sizeof(sk)));
	/* Its public half is given: it names the key to ask the agent for. */
	public_of(fx.enc, pub);
	assert_memory_equal(pk, pub, sizeof(pk));

	n = slurp(fx.rsa, text, sizeof(text));
	assert_int_equal(sshkey_parse_private(text, n, sk, pk, &why), SSHKEY_UNSUPPORTED);
	assert_string_equal(why, "unsupported key type");

	n = slurp(fx.ed, text, sizeof(text));
	memset(big, '\n', sizeof(big));
	memcpy(big, text, n);
	assert_int_equal(sshkey_parse_private(big, SSHKEY_FILE_MAX, sk, pk, &why), 0);
	assert_int_equal(sshkey_parse_private(big, SSHKEY_FILE_MAX + 1, sk, pk, &why), SSHKEY_ERR);
	assert_string_equal(why, "private key file too large");
}

/* Every byte of the decoded file flipped two ways, and every truncation. */
static void
test_private_corrupt(void **state)
{
	static const uint8_t flips[] = {0x01, 0x80};
	char text[FILE_BUF], again[FILE_BUF];
	uint8_t body[BODY_BUF], bad[BODY_BUF];
	uint8_t sk0[SSHKEY_ED25519_SECLEN], pk0[SSHKEY_ED25519_PUBLEN];
	uint8_t sk[SSHKEY_ED25519_SECLEN], pk[SSHKEY_ED25519_PUBLEN];
	const char *why = NULL;
	size_t n, len, m, pos, f, accepted = 0, refused = 0;
	int r;

	n = slurp(fx.ed, text, sizeof(text));
	assert_int_equal(sshkey_parse_private(text, n, sk0, pk0, &why), 0);
	len = unarmour(text, body, sizeof(body));
	/* The helper writes exactly what ssh-keygen wrote. */
	m = armour(body, len, again, sizeof(again));
	assert_int_equal(m, n);
	assert_memory_equal(again, text, n);

	for (pos = 0; pos < len; pos++) {
		for (f = 0; f < ARRAY_LEN(flips); f++) {
			memcpy(bad, body, len);
			bad[pos] ^= flips[f];
			m = armour(bad, len, text, sizeof(text));
			r = sshkey_parse_private(text, m, sk, pk, &why);
			if (r == 0) {
				/* Only the comment, its length and the padding after it may change.
				 */
				assert_true(pos >= len - (4 + strlen(COMMENT) + PAD_MAX));
				assert_memory_equal(sk, sk0, sizeof(sk));
				assert_memory_equal(pk, pk0, sizeof(pk));
				accepted++;
			} else {
				assert_true(r < 0);
				assert_non_null(why);
				assert_true(all_zero(sk, sizeof(sk)));
				refused++;
			}
		}
	}
	assert_true(refused > 0 && accepted < refused);

	for (m = 0; m < len; m++) {
		armour(body, m, text, sizeof(text));
		assert_true(sshkey_parse_private(text, strlen(text), sk, pk, &why) < 0);
	}
}

static void
test_public(void **state)
{
	char text[FILE_BUF], tmp[2 * FILE_BUF];
	uint8_t pk[SSHKEY_ED25519_PUBLEN], pk2[SSHKEY_ED25519_PUBLEN];
	const char *why = NULL;
	size_t n, m;

	n = slurp_pub(fx.ed, text, sizeof(text));
	assert_int_equal(sshkey_parse_public(text, n, pk, &why), 0);
	assert_int_equal(sshkey_parse_public(text, n - 1, pk2, &why), 0);
	assert_memory_equal(pk, pk2, sizeof(pk));
	m = (size_t)snprintf(tmp, sizeof(tmp), "%s\r\n\n", text);
	assert_int_equal(sshkey_parse_public(tmp, m, pk2, &why), 0);

	m = (size_t)snprintf(tmp, sizeof(tmp), "%s%s", text, text);
	assert_int_equal(sshkey_parse_public(tmp, m, pk2, &why), SSHKEY_ERR);
	assert_true(all_zero(pk2, sizeof(pk2)));
	m = (size_t)snprintf(tmp, sizeof(tmp), "no-pty %s", text);
	assert_int_equal(sshkey_parse_public(tmp, m, pk2, &why), SSHKEY_ERR);
	assert_int_equal(sshkey_parse_public("", 0, pk2, &why), SSHKEY_ERR);
	assert_int_equal(sshkey_parse_public("# x\n", 4, pk2, &why), SSHKEY_ERR);
	assert_int_equal(sshkey_parse_public("ssh-ed25519\n", 12, pk2, &why), SSHKEY_ERR);

	n = slurp_pub(fx.rsa, text, sizeof(text));
	assert_int_equal(sshkey_parse_public(text, n, pk2, &why), SSHKEY_UNSUPPORTED);
}

/* --- authorized_keys ------------------------------------------------------- */

static struct sshkey_authorized_key k; /* 16 KiB: off the stack */

static void
test_authorized_keys(void **state)
{
	char b64[B64_BUF], line[2 * FILE_BUF], val[SSHKEY_LINE_MAX];
	uint8_t pk[SSHKEY_ED25519_PUBLEN];
	const char *why;

	public_of(fx.ed, pk);
	b64_of(fx.ed, b64, sizeof(b64));

	snprintf(line, sizeof(line), "ssh-ed25519 %s test\n", b64);
	assert_int_equal(parse(line, &k, &why), 1);
	assert_memory_equal(k.pk, pk, sizeof(pk));
	assert_string_equal(k.comment, "test");
	assert_string_equal(k.options, "");
	assert_int_equal(sshkey_authorized_option(&k, "from", val, sizeof(val)), 0);

	snprintf(line, sizeof(line),
	         "from=\"127.0.0.1\",principals=\"alice\" ssh-ed25519 %s alice@laptop", b64);
	assert_int_equal(parse(line, &k, &why), 1);
	assert_memory_equal(k.pk, pk, sizeof(pk));
	assert_string_equal(k.comment, "alice@laptop");
	assert_int_equal(sshkey_authorized_option(&k, "from", val, sizeof(val)), 1);
	assert_string_equal(val, "127.0.0.1");
	assert_int_equal(sshkey_authorized_option(&k, "principals", val, sizeof(val)), 1);
	assert_string_equal(val, "alice");
	assert_int_equal(sshkey_authorized_option(&k, "no-pty", val, sizeof(val)), 0);

	snprintf(line, sizeof(line), "no-pty,command=\"x \\\"y\\\"\" ssh-ed25519 %s", b64);
	assert_int_equal(parse(line, &k, &why), 1);
	assert_string_equal(k.comment, "");
	assert_int_equal(sshkey_authorized_option(&k, "no-pty", val, sizeof(val)), 1);
	assert_string_equal(val, "");
	assert_int_equal(sshkey_authorized_option(&k, "command", val, sizeof(val)), 1);
	assert_string_equal(val, "x \"y\"");
	/* The value must fit, or the lookup fails rather than truncate. */
	assert_int_equal(sshkey_authorized_option(&k, "command", val, 5), -1);
	assert_int_equal(sshkey_authorized_option(&k, "command", val, 6), 1);

	/* Tabs, runs of blanks, CRLF, names in any case, blanks inside quotes. */
	snprintf(line, sizeof(line),
	         "  command=\"echo a  b\",NO-X11-Forwarding \t ssh-ed25519\t%s   c d  \r\n", b64);
	assert_int_equal(parse(line, &k, &why), 1);
	assert_string_equal(k.comment, "c d");
	assert_int_equal(sshkey_authorized_option(&k, "COMMAND", val, sizeof(val)), 1);
	assert_string_equal(val, "echo a  b");
	assert_int_equal(sshkey_authorized_option(&k, "no-x11-forwarding", val, sizeof(val)), 1);

	/* cert-authority parses like any option: the caller must refuse what it cannot honour. */
	snprintf(line, sizeof(line), "cert-authority ssh-ed25519 %s", b64);
	assert_int_equal(parse(line, &k, &why), 1);
	assert_int_equal(sshkey_authorized_option(&k, "cert-authority", val, sizeof(val)), 1);

	/* A backslash not before a quote is itself. */
	snprintf(line, sizeof(line), "environment=\"A=b\\\\c\\n\" ssh-ed25519 %s", b64);
	assert_int_equal(parse(line, &k, &why), 1);
	assert_int_equal(sshkey_authorized_option(&k, "environment", val, sizeof(val)), 1);
	assert_string_equal(val, "A=b\\\\c\\n");
}

static void
test_authorized_skipped(void **state)
{
	static const char *const nothing[] = {
	        "", "\n", "\r\n", "   \t ", "# comment", "   #indented", "#ssh-ed25519 AAAA"};
	static const char *const unsupported[] = {
	        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= x",
	        "sk-ssh-ed25519@openssh.com AAAA x",
	        "ssh-ed25519-cert-v01@openssh.com AAAA",
	        "no-pty ssh-dss AAAA",
	};
	char rsa[FILE_BUF], line[2 * FILE_BUF], b64[B64_BUF];
	const char *why;
	size_t i;

	for (i = 0; i < ARRAY_LEN(nothing); i++)
		assert_int_equal(parse(nothing[i], &k, &why), 0);
	for (i = 0; i < ARRAY_LEN(unsupported); i++) {
		assert_int_equal(parse(unsupported[i], &k, &why), SSHKEY_UNSUPPORTED);
		assert_string_equal(why, "unsupported key type");
	}
	slurp_pub(fx.rsa, rsa, sizeof(rsa));
	assert_int_equal(parse(rsa, &k, &why), SSHKEY_UNSUPPORTED);
	snprintf(line, sizeof(line), "from=\"10.0.0.0/8\" %s", rsa);
	assert_int_equal(parse(line, &k, &why), SSHKEY_UNSUPPORTED);
	/* The written type decides: an Ed25519 blob under ssh-rsa is still skipped. */
	b64_of(fx.ed, b64, sizeof(b64));
	snprintf(line, sizeof(line), "ssh-rsa %s", b64);
	assert_int_equal(parse(line, &k, &why), SSHKEY_UNSUPPORTED);
}

/* line must be refused with a message containing reason. */
static void
expect_bad(const char *line, size_t len, const char *reason)
{
	const char *why = NULL;

	assert_int_equal(sshkey_authorized_parse_line(line, len, &k, &why), SSHKEY_ERR);
	assert_non_null(why);
	if (strstr(why, reason) == NULL)
		fail_msg("\"%.60s\": \"%s\", not \"%s\"", line, why, reason);
	assert_true(all_zero(k.pk, sizeof(k.pk)));
}

static void
expect_bad_line(const char *line, const char *reason)
{
	expect_bad(line, strlen(line), reason);
}

static void
test_authorized_bad(void **state)
{
	/* Options before a good key, and why each line is refused. */
	static const struct {
		const char *options, *why;
	} bad_options[] = {
	        {"from=\"unterminated", "unterminated quote"},
	        {",no-pty", "malformed options"},
	        {"no-pty,", "malformed options"},
	        {"no-pty,,x", "malformed options"},
	        {"from=127.0.0.1", "malformed options"},
	        {"from=\"a\"x", "malformed options"},
	        {"x\\\"y", "malformed options"},
	        {"bad name", "unknown key type"},
	};
	char b64[B64_BUF], rsa64[B64_BUF], line[2 * SSHKEY_LINE_MAX], blob64[B64_BUF];
	uint8_t pk[SSHKEY_ED25519_PUBLEN], blob[SSHKEY_BLOB_MAX + 1];
	const char *why;
	size_t len, n, i;

	public_of(fx.ed, pk);
	b64_of(fx.ed, b64, sizeof(b64));
	b64_of(fx.rsa, rsa64, sizeof(rsa64));

	snprintf(line, sizeof(line), "ssh-ed25519 AAAA*AAA");
	expect_bad_line(line, "bad base64");
	snprintf(line, sizeof(line), "ssh-ed25519 %.*s x", (int)strlen(b64) - 1, b64);
	expect_bad_line(line, "bad base64");
	snprintf(line, sizeof(line), "ssh-ed25519 %s x", rsa64);
	expect_bad_line(line, "does not match");

	/* Truncated blob, and one with a byte too many. */
	assert_int_equal(sshkey_blob_encode(pk, blob, sizeof(blob), &len), 0);
	sodium_bin2base64(blob64, sizeof(blob64), blob, len - 4, sodium_base64_VARIANT_ORIGINAL);
	snprintf(line, sizeof(line), "ssh-ed25519 %s", blob64);
	expect_bad_line(line, "malformed key blob");
	blob[len] = 0;
	sodium_bin2base64(blob64, sizeof(blob64), blob, len + 1, sodium_base64_VARIANT_ORIGINAL);
	snprintf(line, sizeof(line), "ssh-ed25519 %s", blob64);
	expect_bad_line(line, "malformed key blob");
	sodium_bin2base64(blob64, sizeof(blob64), blob, 3, sodium_base64_VARIANT_ORIGINAL);
	snprintf(line, sizeof(line), "ssh-ed25519 %s", blob64);
	expect_bad_line(line, "malformed key blob");

	expect_bad_line("ssh-ed25519", "missing key");
	expect_bad_line("ssh-ed25519   \n", "missing key");
	expect_bad_line("no-pty ssh-ed25519", "missing key");
	expect_bad_line("no-pty", "missing key type");

	/* Options: unterminated quotes, stray commas, unquoted values, unknown types. */
	for (i = 0; i < sizeof(bad_options) / sizeof(bad_options[0]); i++) {
		snprintf(line, sizeof(line), "%s ssh-ed25519 %s", bad_options[i].options, b64);
		expect_bad_line(line, bad_options[i].why);
	}
	snprintf(line, sizeof(line), "%0*d ssh-ed25519 %s", SSHKEY_OPTION_NAME_MAX, 7, b64);
	expect_bad_line(line, "malformed options");

	/* Control characters, NUL included. */
	n = (size_t)snprintf(line, sizeof(line), "ssh-ed25519 %s x", b64);
	line[n - 1] = '\0';
	expect_bad(line, n, "control character");
	snprintf(line, sizeof(line), "ssh-ed25519 %s x\ry", b64);
	expect_bad_line(line, "control character");
	snprintf(line, sizeof(line), "ssh-ed25519 %s x\x7f", b64);
	expect_bad_line(line, "control character");

	/* SSHKEY_LINE_MAX bytes with the terminator pass; one more does not. */
	n = (size_t)snprintf(line, sizeof(line), "ssh-ed25519 %s ", b64);
	memset(line + n, 'c', SSHKEY_LINE_MAX - 1 - n);
	line[SSHKEY_LINE_MAX - 1] = '\n';
	assert_int_equal(sshkey_authorized_parse_line(line, SSHKEY_LINE_MAX, &k, &why), 1);
	assert_int_equal(strlen(k.comment), SSHKEY_LINE_MAX - 1 - n);
	line[SSHKEY_LINE_MAX - 1] = 'c';
	line[SSHKEY_LINE_MAX] = '\n';
	expect_bad(line, SSHKEY_LINE_MAX + 1, "line too long");
}

static void
test_authorized_options(void **state)
{
	static const char *const names[] = {"no-pty", "command", "from", "restrict"};
	static const char *const values[] = {"", "x \"y\"", "a b", ""};
	char b64[B64_BUF], line[FILE_BUF], name[SSHKEY_OPTION_NAME_MAX], val[64];
	const char *why;
	size_t cursor = 0, i;

	b64_of(fx.ed, b64, sizeof(b64));
	snprintf(line, sizeof(line),
	         "no-pty,command=\"x \\\"y\\\"\",from=\"a b\",restrict ssh-ed25519 %s", b64);
	assert_int_equal(parse(line, &k, &why), 1);
	for (i = 0; i < ARRAY_LEN(names); i++) {
		assert_int_equal(sshkey_authorized_option_next(&k, &cursor, name, sizeof(name), val,
		                                               sizeof(val)),
		                 1);
		assert_string_equal(name, names[i]);
		assert_string_equal(val, values[i]);
	}
	assert_int_equal(
	        sshkey_authorized_option_next(&k, &cursor, name, sizeof(name), val, sizeof(val)),
	        0);

	/* A repeated option is ambiguous: neither value wins. */
	snprintf(line, sizeof(line), "from=\"a\",no-pty,FROM=\"b\" ssh-ed25519 %s", b64);
	assert_int_equal(parse(line, &k, &why), 1);
	assert_int_equal(sshkey_authorized_option(&k, "from", val, sizeof(val)), -1);
	assert_int_equal(sshkey_authorized_option(&k, "no-pty", val, sizeof(val)), 1);

	/* Options damaged after parsing are reported, not trusted. */
	snprintf(k.options, sizeof(k.options), "from=\"a");
	assert_int_equal(sshkey_authorized_option(&k, "from", val, sizeof(val)), -1);
	cursor = 0;
	assert_int_equal(
	        sshkey_authorized_option_next(&k, &cursor, name, sizeof(name), val, sizeof(val)),
	        -1);
	memset(k.options, 'a', sizeof(k.options));
	assert_int_equal(sshkey_authorized_option(&k, "a", val, sizeof(val)), -1);
}

/* --- ssh-agent ----------------------------------------------------------- */

static void
test_agent(void **state)
{
	char *add_ed[] = {"ssh-add", fx.ed, NULL};
	char *add_rsa[] = {"ssh-add", fx.rsa, NULL};
	char *add_enc[] = {"ssh-add", fx.enc, NULL};
	uint8_t keys[4][SSHKEY_ED25519_PUBLEN];
	uint8_t ed[SSHKEY_ED25519_PUBLEN], enc[SSHKEY_ED25519_PUBLEN], other[SSHKEY_ED25519_PUBLEN];
	uint8_t sig[SSHKEY_ED25519_SIGLEN];
	const uint8_t *msg = (const uint8_t *)CHALLENGE;
	char err[AGENT_ERR_MAX];
	uint8_t *big;
	size_t n = 99;

	public_of(fx.ed, ed);
	public_of(fx.enc, enc);
	public_of(fx.other, other);

	assert_int_equal(agent_list(fx.sock, keys, ARRAY_LEN(keys), &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	assert_int_equal(run(add_ed), 0);
	assert_int_equal(run(add_rsa), 0);

	/* The RSA key is held but not listed; NULL means $SSH_AUTH_SOCK. */
	assert_int_equal(agent_list(NULL, keys, ARRAY_LEN(keys), &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(keys[0], ed, sizeof(ed));

	assert_int_equal(agent_sign(NULL, ed, msg, strlen(CHALLENGE), sig, err, sizeof(err)), 0);
	assert_int_equal(crypto_sign_verify_detached(sig, msg, strlen(CHALLENGE), ed), 0);
	assert_int_equal(agent_sign(fx.sock, ed, msg, 0, sig, err, sizeof(err)), 0);
	assert_int_equal(crypto_sign_verify_detached(sig, msg, 0, ed), 0);

	/* Large data, up to the bound. */
	big = calloc(1, AGENT_DATA_MAX + 1);
	assert_non_null(big);
	assert_int_equal(agent_sign(fx.sock, ed, big, AGENT_DATA_MAX, sig, err, sizeof(err)), 0);
	assert_int_equal(crypto_sign_verify_detached(sig, big, AGENT_DATA_MAX, ed), 0);
	assert_int_equal(agent_sign(fx.sock, ed, big, AGENT_DATA_MAX + 1, sig, err, sizeof(err)),
	                 -1);
	free(big);

	/* A key the agent does not hold. */
	assert_int_equal(agent_sign(fx.sock, other, msg, strlen(CHALLENGE), sig, err, sizeof(err)),
	                 -1);
	assert_non_null(strstr(err, "refused"));
	assert_true(all_zero(sig, sizeof(sig)));

	/* The encrypted key, as the private key parser tells users to load it. */
	setenv("SSH_ASKPASS", fx.askpass, 1);
	setenv("SSH_ASKPASS_REQUIRE", "force", 1);
	assert_int_equal(run(add_enc), 0);
	unsetenv("SSH_ASKPASS");
	unsetenv("SSH_ASKPASS_REQUIRE");
	assert_int_equal(agent_list(fx.sock, keys, ARRAY_LEN(keys), &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(agent_list(fx.sock, keys, 1, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(agent_sign(fx.sock, enc, msg, strlen(CHALLENGE), sig, err, sizeof(err)),
	                 0);
	assert_int_equal(crypto_sign_verify_detached(sig, msg, strlen(CHALLENGE), enc), 0);
}

static void
test_agent_missing(void **state)
{
	uint8_t keys[1][SSHKEY_ED25519_PUBLEN], pk[SSHKEY_ED25519_PUBLEN] = {0};
	uint8_t sig[SSHKEY_ED25519_SIGLEN];
	char err[AGENT_ERR_MAX], path[PATH_LEN];
	size_t n;

	join(path, sizeof(path), fx.dir, "/no-such-agent");
	assert_int_equal(agent_list(path, keys, 1, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot connect"));
	assert_int_equal(agent_sign(path, pk, pk, 1, sig, err, sizeof(err)), -1);
	unsetenv("SSH_AUTH_SOCK");
	assert_int_equal(agent_list(NULL, keys, 1, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "SSH_AUTH_SOCK"));
	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(agent_list(path, keys, 1, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too long"));
	/* A tiny error buffer is truncated, not overrun. */
	assert_int_equal(agent_list(path, keys, 1, &n, err, 4), -1);
	assert_int_equal(strlen(err), 3);
	assert_int_equal(agent_list(path, keys, 1, &n, NULL, 0), -1);
}

/* --- fake agents --------------------------------------------------------- */

static int
io_full(int fd, void *p, size_t n, bool writing)
{
	uint8_t *b = p;
	ssize_t r;

	while (n > 0) {
		r = writing ? write(fd, b, n) : read(fd, b, n);
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * An agent for one request: accepts one connection, reads one message,
 * writes reply[0..len) verbatim and exits; with hang it never answers.
 */
static pid_t
fake_agent(const uint8_t *reply, size_t len, bool hang)
{
	static uint8_t req[FAKE_REQ_MAX];
	struct sockaddr_un sun;
	uint8_t head[4];
	uint32_t n;
	pid_t pid;
	int lfd, cfd;

	unlink(fx.sock);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_true(str_copy(sun.sun_path, fx.sock, sizeof(sun.sun_path)) < sizeof(sun.sun_path));
	assert_true((lfd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		if ((cfd = accept(lfd, NULL, NULL)) >= 0 && io_full(cfd, head, 4, false) == 0) {
			n = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 |
			    (uint32_t)head[2] << 8 | head[3];
			if (n <= sizeof(req) && io_full(cfd, req, n, false) == 0 && !hang)
				io_full(cfd, (void *)reply, len, true);
		}
		while (hang)
			pause();
		_exit(0);
	}
	close(lfd);
	return pid;
}

static void
fake_agent_stop(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	unlink(fx.sock);
}

/* Prefixes body with its length. */
static size_t
frame(const uint8_t *body, size_t len, uint8_t *out, size_t size)
{
	struct sshkey_writer w;

	sshkey_writer_init(&w, out, size);
	assert_int_equal(sshkey_put_u32(&w, (uint32_t)len), 0);
	assert_true(size - w.len >= len);
	memcpy(out + w.len, body, len);
	return w.len + len;
}

/* agent_sign of CHALLENGE with pk against an agent answering the framed body. */
static int
fake_sign(const uint8_t *body, size_t len, const uint8_t pk[SSHKEY_ED25519_PUBLEN],
          uint8_t sig[SSHKEY_ED25519_SIGLEN], char *err)
{
	uint8_t msg[REPLY_BUF];
	pid_t pid = fake_agent(msg, frame(body, len, msg, sizeof(msg)), false);
	int r;

	r = agent_sign(fx.sock, pk, (const uint8_t *)CHALLENGE, strlen(CHALLENGE), sig, err,
	               AGENT_ERR_MAX);
	fake_agent_stop(pid);
	return r;
}

static int
fake_list(const uint8_t *body, size_t len, uint8_t keys[][SSHKEY_ED25519_PUBLEN], size_t max,
          size_t *n, char *err)
{
	uint8_t msg[REPLY_BUF];
	pid_t pid = fake_agent(msg, frame(body, len, msg, sizeof(msg)), false);
	int r;

	r = agent_list(fx.sock, keys, max, n, err, AGENT_ERR_MAX);
	fake_agent_stop(pid);
	return r;
}

/* A sign response: type, string(signature blob), then extra trailing bytes. */
static size_t
sign_response(const uint8_t sig[SSHKEY_ED25519_SIGLEN], size_t extra, uint8_t *out, size_t size)
{
	struct sshkey_writer w;
	uint8_t sblob[SSHKEY_SIG_BLOB_MAX];
	size_t slen;

	assert_int_equal(sshkey_sig_encode(sig, sblob, sizeof(sblob), &slen), 0);
	sshkey_writer_init(&w, out, size);
	sshkey_put_u8(&w, SSH_AGENT_SIGN_RESPONSE);
	sshkey_put_string(&w, sblob, slen);
	while (extra-- > 0)
		sshkey_put_u8(&w, 0);
	return w.len;
}

static void
test_fake_agent_sign(void **state)
{
	uint8_t pk[SSHKEY_ED25519_PUBLEN], sk[SSHKEY_ED25519_SECLEN];
	uint8_t good[SSHKEY_ED25519_SIGLEN], wrong[SSHKEY_ED25519_SIGLEN];
	uint8_t sig[SSHKEY_ED25519_SIGLEN], body[REPLY_BUF];
	static const uint8_t failure[] = {SSH_AGENT_FAILURE};
	static const uint8_t other_type[] = {SSH_AGENT_IDENTITIES_ANSWER, 0, 0, 0, 0};
	char err[AGENT_ERR_MAX];
	struct sshkey_writer w;
	size_t len;

	crypto_sign_keypair(pk, sk);
	crypto_sign_detached(good, NULL, (const uint8_t *)CHALLENGE, strlen(CHALLENGE), sk);
	crypto_sign_detached(wrong, NULL, (const uint8_t *)"other", 5, sk);

	len = sign_response(good, 0, body, sizeof(body));
	assert_int_equal(fake_sign(body, len, pk, sig, err), 0);
	assert_memory_equal(sig, good, sizeof(sig));

	len = sign_response(wrong, 0, body, sizeof(body));
	assert_int_equal(fake_sign(body, len, pk, sig, err), -1);
	assert_non_null(strstr(err, "does not verify"));
	assert_true(all_zero(sig, sizeof(sig)));

	len = sign_response(good, 1, body, sizeof(body));
	assert_int_equal(fake_sign(body, len, pk, sig, err), -1);
	assert_non_null(strstr(err, "malformed"));

	/* An RSA-typed signature blob around Ed25519 bytes. */
	sshkey_writer_init(&w, body, sizeof(body));
	sshkey_put_u8(&w, SSH_AGENT_SIGN_RESPONSE);
	sshkey_put_u32(&w, 4 + 12 + 4 + SSHKEY_ED25519_SIGLEN);
	sshkey_put_string(&w, "rsa-sha2-512", 12);
	sshkey_put_string(&w, good, sizeof(good));
	assert_int_equal(fake_sign(body, w.len, pk, sig, err), -1);
	assert_non_null(strstr(err, "not an Ed25519"));

	assert_int_equal(fake_sign(failure, sizeof(failure), pk, sig, err), -1);
	assert_non_null(strstr(err, "refused"));
	assert_int_equal(fake_sign(other_type, sizeof(other_type), pk, sig, err), -1);
	assert_non_null(strstr(err, "unexpected reply"));
}

static void
test_fake_agent_list(void **state)
{
	uint8_t a[SSHKEY_ED25519_PUBLEN], b[SSHKEY_ED25519_PUBLEN], sk[SSHKEY_ED25519_SECLEN];
	uint8_t blob[SSHKEY_BLOB_MAX], body[REPLY_BUF], keys[8][SSHKEY_ED25519_PUBLEN];
	static const uint8_t rsa_blob[] = {0,   0,   0,   7, 's', 's', 'h', '-',
	                                   'r', 's', 'a', 0, 0,   0,   0};
	char err[AGENT_ERR_MAX];
	struct sshkey_writer w;
	size_t len, n = 99, count_at;

	crypto_sign_keypair(a, sk);
	crypto_sign_keypair(b, sk);
	sshkey_writer_init(&w, body, sizeof(body));
	sshkey_put_u8(&w, SSH_AGENT_IDENTITIES_ANSWER);
	count_at = w.len;
	sshkey_put_u32(&w, 3);
	sshkey_put_string(&w, rsa_blob, sizeof(rsa_blob));
	sshkey_put_string(&w, "rsa", 3);
	assert_int_equal(sshkey_blob_encode(a, blob, sizeof(blob), &len), 0);
	sshkey_put_string(&w, blob, len);
	sshkey_put_string(&w, "a", 1);
	assert_int_equal(sshkey_blob_encode(b, blob, sizeof(blob), &len), 0);
	sshkey_put_string(&w, blob, len);
	sshkey_put_string(&w, "", 0);

	assert_int_equal(fake_list(body, w.len, keys, ARRAY_LEN(keys), &n, err), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(keys[0], a, sizeof(a));
	assert_memory_equal(keys[1], b, sizeof(b));
	assert_int_equal(fake_list(body, w.len, keys, 1, &n, err), 0);
	assert_int_equal(n, 1);

	/* Counts that disagree with the identities present. */
	body[count_at + 3] = 2;
	assert_int_equal(fake_list(body, w.len, keys, ARRAY_LEN(keys), &n, err), -1);
	assert_int_equal(n, 0);
	assert_non_null(strstr(err, "trailing"));
	body[count_at + 3] = 4;
	assert_int_equal(fake_list(body, w.len, keys, ARRAY_LEN(keys), &n, err), -1);
	body[count_at] = 0x10;
	assert_int_equal(fake_list(body, w.len, keys, ARRAY_LEN(keys), &n, err), -1);
	assert_non_null(strstr(err, "malformed"));
	/* A string running past the end. */
	body[count_at] = 0;
	body[count_at + 3] = 3;
	assert_int_equal(fake_list(body, w.len - 1, keys, ARRAY_LEN(keys), &n, err), -1);
}

static void
test_fake_agent_framing(void **state)
{
	static const uint8_t too_long[] = {0x00, 0x04, 0x00, 0x01, SSH_AGENT_FAILURE};
	static const uint8_t empty[] = {0, 0, 0, 0};
	static const uint8_t truncated[] = {0, 0, 0, 100, SSH_AGENT_IDENTITIES_ANSWER, 0, 0, 0};
	const struct {
		const uint8_t *reply;
		size_t len;
		const char *err;
	} cases[] = {
	        {too_long, sizeof(too_long), "out of bounds"},
	        {empty, sizeof(empty), "out of bounds"},
	        {truncated, sizeof(truncated), "closed"},
	        {truncated, 2, "closed"},
	};
	uint8_t keys[1][SSHKEY_ED25519_PUBLEN];
	char err[AGENT_ERR_MAX];
	size_t i, n;
	pid_t pid;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		pid = fake_agent(cases[i].reply, cases[i].len, false);
		assert_int_equal(agent_list(fx.sock, keys, 1, &n, err, sizeof(err)), -1);
		fake_agent_stop(pid);
		if (strstr(err, cases[i].err) == NULL)
			fail_msg("case %zu: \"%s\"", i, err);
	}
}

static void
test_fake_agent_silent(void **state)
{
	uint8_t pk[SSHKEY_ED25519_PUBLEN] = {0}, sig[SSHKEY_ED25519_SIGLEN];
	char err[AGENT_ERR_MAX];
	uint64_t start, elapsed;
	pid_t pid;
	int r;

	pid = fake_agent(NULL, 0, true);
	start = monotonic_ms();
	r = agent_sign(fx.sock, pk, pk, sizeof(pk), sig, err, sizeof(err));
	elapsed = monotonic_ms() - start;
	fake_agent_stop(pid);
	assert_int_equal(r, -1);
	assert_true(elapsed >= AGENT_TIMEOUT_MS - 100);
	assert_non_null(strstr(err, "did not answer"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_wire),
	        cmocka_unit_test(test_blobs),
	        cmocka_unit_test(test_fingerprint),
	        cmocka_unit_test(test_private),
	        cmocka_unit_test(test_private_refused),
	        cmocka_unit_test(test_private_corrupt),
	        cmocka_unit_test(test_public),
	        cmocka_unit_test(test_authorized_keys),
	        cmocka_unit_test(test_authorized_skipped),
	        cmocka_unit_test(test_authorized_bad),
	        cmocka_unit_test(test_authorized_options),
	        cmocka_unit_test_setup_teardown(test_agent, agent_start, agent_stop),
	        cmocka_unit_test(test_agent_missing),
	        cmocka_unit_test(test_fake_agent_sign),
	        cmocka_unit_test(test_fake_agent_list),
	        cmocka_unit_test(test_fake_agent_framing),
	        cmocka_unit_test(test_fake_agent_silent),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
