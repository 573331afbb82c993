/*
 * The client side of AUTH (docs/PROTOCOL.md section 4): pubkey with
 * OpenSSH Ed25519 keys (a key file, or ssh-agent), password answering
 * fived's PAM prompts.
 */
#include "client/dialect/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/base/options.h"
#include "client/dialect/text.h"
#include "client/keys/agent.h"
#include "client/transport/conn.h"
#include "client/transport/seal.h"
#include "common/b64.h"
#include "common/keyfile.h"
#include "common/util.h"
#include "crypto/sshkey.h"
#include "five.h"
#include "proto/auth.h"
#include "proto/line.h"

#define KEYS_MAX    16 /* candidate keys tried, at most */
#define ANSWER_MAX  AUTH_RESPONSE_MAX
#define DEFAULT_KEY "/.ssh/id_ed25519"
#define ASKPASS_ENV "FIVE_ASKPASS"
/* getpwuid_r's room for the entry's strings: glibc asks for 1024 at most. */
#define PASSWD_BUF_SIZE 4096

/* A key to try: signed with locally (has_secret) or through ssh-agent. */
struct candidate {
	uint8_t pk[AUTH_PK_LEN];
	uint8_t sk[SSHKEY_ED25519_SECLEN];
	bool has_secret;
};

struct keyring {
	struct candidate keys[KEYS_MAX];
	size_t n;
	const char *agent; /* $SSH_AUTH_SOCK, or NULL */
};

/*
 * The login name, into buf[0..size): getpwuid_r, not getpwuid, whose entry
 * another thread's call would overwrite.  Returns buf, or NULL when there
 * is none (or it does not fit).
 */
static const char *
login_name(char *buf, size_t size)
{
	char strings[PASSWD_BUF_SIZE];
	struct passwd pw, *found = NULL;

	if (getpwuid_r(getuid(), &pw, strings, sizeof(strings), &found) != 0 || found == NULL ||
	    str_copy(buf, pw.pw_name, size) >= size)
		return NULL;
	return buf;
}

/* --- keys ------------------------------------------------------------------ */

static int
read_small_file(const char *path, char *buf, size_t size, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size);
	close(fd);
	if (n < 0 || (size_t)n == size)
		return -1;
	*len = (size_t)n;
	return 0;
}

/* Adds the key in path; an encrypted one only as a public key for the agent. */
static int
add_key_file(struct keyring *kr, const char *path, bool required, struct five_error *err)
{
	struct candidate *c = &kr->keys[kr->n];
	char text[SSHKEY_FILE_MAX + 1];
	const char *why;
	size_t len;
	int r;

	if (kr->n == KEYS_MAX)
		return 0;
	if (read_small_file(path, text, sizeof(text), &len) != 0) {
		if (required)
			return five_fail(err, FIVE_ERR_USAGE, "%s: %s", path, strerror(errno));
		return 0;
	}
	r = sshkey_parse_private(text, len, c->sk, c->pk, &why);
	sodium_memzero(text, sizeof(text));
	if (r == 0) {
		c->has_secret = true;
		kr->n++;
	} else if (r == SSHKEY_ENCRYPTED && kr->agent != NULL) {
		kr->n++;
	} else if (required) {
		return five_fail(err, FIVE_ERR_USAGE, "%s: %s", path, why);
	}
	return 0;
}

static int
gather_keys(struct keyring *kr, const struct five_auth *a, struct five_error *err)
{
	uint8_t agent_keys[KEYS_MAX][32];
	char path[4096], msg[AGENT_ERR_MAX];
	const char *home = getenv("HOME");
	size_t n = 0, i;

	memset(kr, 0, sizeof(*kr));
	kr->agent = getenv("SSH_AUTH_SOCK");
	if (kr->agent != NULL && kr->agent[0] == '\0')
		kr->agent = NULL;
	if (a->key_file != NULL)
		return add_key_file(kr, a->key_file, true, err);
	if (kr->agent != NULL &&
	    agent_list(kr->agent, agent_keys, KEYS_MAX, &n, msg, sizeof(msg)) == 0)
		for (i = 0; i < n && kr->n < KEYS_MAX; i++)
			memcpy(kr->keys[kr->n++].pk, agent_keys[i], 32);
	if (home != NULL &&
	    snprintf(path, sizeof(path), "%s%s", home, DEFAULT_KEY) < (int)sizeof(path))
		return add_key_file(kr, path, false, err);
	return 0;
}

static void
wipe_keys(struct keyring *kr)
{
	sodium_memzero(kr, sizeof(*kr));
}

static int
sign(const struct keyring *kr, const struct candidate *c, const uint8_t *data, size_t len,
     uint8_t sig[AUTH_SIG_LEN], struct five_error *err)
{
	char msg[AGENT_ERR_MAX];

	if (c->has_secret) {
		crypto_sign_detached(sig, NULL, data, len, c->sk);
		return 0;
	}
	if (agent_sign(kr->agent, c->pk, data, len, sig, msg, sizeof(msg)) != 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "ssh-agent: %s", msg);
	return 0;
}

/* --- the exchange ---------------------------------------------------------- */

int
five_auth_can_sign(const struct five_conn *c, struct five_error *err)
{
	if (c->seal != NULL || c->has_server_pk)
		return 0;
	return five_fail(err, FIVE_ERR_USAGE,
	                 "pubkey authentication without encryption needs the server's key: pin "
	                 "it first (any sealed session does) or give it with --key");
}

int
five_auth_can_send_password(const struct five_options *o, struct five_error *err)
{
	if (o->transport != FIVE_PLAIN || o->password_in_clear)
		return 0;
	return five_fail(err, FIVE_ERR_REFUSED,
	                 "no password over plain TCPMUX, where anyone on the path reads it: use a "
	                 "sealed or TLS session, or allow it with --password-in-clear");
}

int
five_auth_signed_data(const struct five_conn *c, const char *sid,
                      const uint8_t nonce[AUTH_NONCE_LEN], const char *user,
                      const uint8_t pk[AUTH_PK_LEN], uint8_t *out, size_t size, size_t *len,
                      struct five_error *err)
{
	struct auth_signed in = {
	        .session_id = sid,
	        .nonce = nonce,
	        .user = user,
	        .pk = pk,
	        .server_key = c->has_server_pk ? c->server_pk : NULL,
	        .binding = c->seal != NULL ? c->seal->hash : NULL,
	        .binding_len = c->seal != NULL ? five_seal_binding_len(c->seal) : 0,
	};

	if (auth_signed_data(&in, out, size, len) != 0)
		return five_fail(err, FIVE_ERR_PROTOCOL, "malformed challenge");
	return 0;
}

/* "+ CHALLENGE <session-id> <nonce>" */
static int
parse_challenge(const char *line, char sid[AUTH_SESSION_ID_LEN + 1], uint8_t nonce[AUTH_NONCE_LEN])
{
	const char *p = line + strlen("+ CHALLENGE ");
	size_t len;

	if (strncmp(line, "+ CHALLENGE ", 12) != 0 || strlen(p) < AUTH_SESSION_ID_LEN + 2 ||
	    p[AUTH_SESSION_ID_LEN] != ' ')
		return -1;
	memcpy(sid, p, AUTH_SESSION_ID_LEN);
	sid[AUTH_SESSION_ID_LEN] = '\0';
	p += AUTH_SESSION_ID_LEN + 1;
	if (b64_decode(p, strlen(p), NULL, sodium_base64_VARIANT_ORIGINAL, nonce, AUTH_NONCE_LEN,
	               &len) != 0 ||
	    len != AUTH_NONCE_LEN)
		return -1;
	return 0;
}

/*
 * One pubkey attempt up to the signature: 1 with the SIGNATURE line in
 * tail, 0 when fived does not accept this key, -1 on error.
 */
static int
try_key(struct five_conn *c, const char *user, const struct keyring *kr,
        const struct candidate *key, bool pipeline, char *tail, size_t size, struct five_error *err)
{
	char request[LINE_MAX_BYTES + 32], line[FIVE_LINE_MAX], sid[AUTH_SESSION_ID_LEN + 1];
	char user_line[LINE_MAX_BYTES];
	uint8_t nonce[AUTH_NONCE_LEN], data[AUTH_SIGNED_MAX], sig[AUTH_SIG_LEN];
	size_t len;

	if (auth_user_line(user, key->pk, user_line, sizeof(user_line)) != 0)
		return five_fail(err, FIVE_ERR_USAGE, "invalid user name \"%s\"", user);
	/*
	 * When pubkey is the only method, the USER line goes along with AUTH,
	 * saving a round trip: fived reads it once it has chosen pubkey.
	 */
	snprintf(request, sizeof(request), "AUTH pubkey\r\n%s", pipeline ? user_line : "");
	if (five_conn_send(c, request, strlen(request), err) != 0 ||
	    five_conn_read_line(c, line, sizeof(line), err) != 0)
		return -1;
	if (strcmp(line, "+ SUCCESS pubkey") != 0)
		return five_text_check_reply(line, err) == 0
		               ? five_fail(err, FIVE_ERR_PROTOCOL, "unexpected \"%.64s\"", line)
		               : -1;
	if (!pipeline && five_conn_send(c, user_line, strlen(user_line), err) != 0)
		return -1;
	if (five_conn_read_line(c, line, sizeof(line), err) != 0)
		return -1;
	if (line[0] == '-')
		return 0;
	if (parse_challenge(line, sid, nonce) != 0)
		return five_fail(err, FIVE_ERR_PROTOCOL, "malformed challenge");
	if (five_auth_signed_data(c, sid, nonce, user, key->pk, data, sizeof(data), &len, err) !=
	            0 ||
	    sign(kr, key, data, len, sig, err) != 0)
		return -1;
	if (auth_signature_line(sig, tail, size) != 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "the signature does not fit its line");
	return 1;
}

static int
pubkey(struct five_conn *c, const struct five_options *o, const char *user, bool pipeline,
       char *tail, size_t size, struct five_error *err)
{
	struct keyring kr;
	size_t i, offered;
	int r = 0;

	if (five_auth_can_sign(c, err) != 0 || gather_keys(&kr, o->auth, err) != 0)
		return -1;
	offered = kr.n;
	for (i = 0; i < kr.n && r == 0; i++)
		r = try_key(c, user, &kr, &kr.keys[i], pipeline, tail, size, err);
	wipe_keys(&kr);
	if (r == 0)
		return five_fail(err, FIVE_ERR_REFUSED,
		                 offered == 0 ? "no Ed25519 key to offer" : "no key was accepted");
	return r < 0 ? -1 : 0;
}

/* --- password ---------------------------------------------------------------- */

static int
ask_tty(const char *prompt, int echo, char *answer, size_t size)
{
	struct termios saved, quiet;
	FILE *tty = fopen("/dev/tty", "r+");
	int r = -1;

	if (tty == NULL)
		return -1;
	fprintf(tty, "%s", prompt);
	fflush(tty);
	if (!echo && tcgetattr(fileno(tty), &saved) == 0) {
		quiet = saved;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	}
	if (fgets(answer, (int)size, tty) != NULL) {
		answer[strcspn(answer, "\r\n")] = '\0';
		r = 0;
	}
	if (!echo) {
		tcsetattr(fileno(tty), TCSAFLUSH, &saved);
		fputc('\n', tty);
	}
	fclose(tty);
	return r;
}

/* $FIVE_ASKPASS PROMPT: its first line of output is the answer, as with SSH_ASKPASS. */
static int
ask_program(const char *program, const char *prompt, char *answer, size_t size)
{
	int p[2], status;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	if ((pid = fork()) == 0) {
		dup2(p[1], STDOUT_FILENO);
		execlp(program, program, prompt, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (pid > 0 && got + 1 < size && (n = read(p[0], answer + got, size - 1 - got)) > 0)
		got += (size_t)n;
	close(p[0]);
	answer[got] = '\0';
	answer[strcspn(answer, "\r\n")] = '\0';
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return -1;
	return 0;
}

static int
ask(const struct five_auth *a, const char *prompt, int echo, char *answer, size_t size)
{
	const char *program = getenv(ASKPASS_ENV);

	if (a->ask != NULL)
		return a->ask(a->ask_arg, prompt, echo, answer, size);
	if (program != NULL && program[0] != '\0')
		return ask_program(program, prompt, answer, size);
	return ask_tty(prompt, echo, answer, size);
}

/* One server line of a password exchange: 1 done, 0 go on, -1 failed. */
static int
password_step(struct five_conn *c, const struct five_options *o, const char *line,
              struct five_error *err)
{
	char answer[ANSWER_MAX + 1], out[LINE_MAX_BYTES], text[FIVE_LINE_MAX];
	bool echo = strncmp(line, "+ PROMPT-ECHO-ON ", 17) == 0;
	int r;

	if (strncmp(line, "+ Authentication as ", 20) == 0)
		return 1;
	/* PAM's words, which fived makes printable: a hostile server's may not be. */
	five_printable(strchr(line + 2, ' ') != NULL ? strchr(line + 2, ' ') + 1 : "", text,
	               sizeof(text));
	if (strncmp(line, "+ INFO ", 7) == 0 || strncmp(line, "+ ERROR ", 8) == 0) {
		fprintf(stderr, "%s\n", text);
		return 0;
	}
	if (!echo && strncmp(line, "+ PROMPT-ECHO-OFF ", 18) != 0)
		return five_text_check_reply(line, err) == 0
		               ? five_fail(err, FIVE_ERR_PROTOCOL, "unexpected \"%.64s\"", line)
		               : -1;
	if (ask(o->auth, text, echo, answer, sizeof(answer)) != 0) {
		sodium_memzero(answer, sizeof(answer));
		return five_fail(err, FIVE_ERR_REFUSED, "no answer to \"%s\"", line + 2);
	}
	r = auth_response_line((const uint8_t *)answer, strlen(answer), out, sizeof(out));
	sodium_memzero(answer, sizeof(answer));
	if (r != 0 || five_conn_send(c, out, strlen(out), err) != 0) {
		sodium_memzero(out, sizeof(out));
		return r != 0 ? five_fail(err, FIVE_ERR_USAGE, "answer too long") : -1;
	}
	sodium_memzero(out, sizeof(out));
	return 0;
}

static int
password(struct five_conn *c, const struct five_options *o, const char *user,
         struct five_error *err)
{
	char request[LINE_MAX_BYTES + 32], line[FIVE_LINE_MAX];
	int r = 0;

	if (five_auth_can_send_password(o, err) != 0)
		return -1;
	if (auth_user_line(user, NULL, request, sizeof(request)) != 0)
		return five_fail(err, FIVE_ERR_USAGE, "invalid user name \"%s\"", user);
	/* The USER line waits for + SUCCESS: after a refusal it would be read as a request. */
	if (five_conn_send(c, "AUTH password\r\n", 15, err) != 0 ||
	    five_conn_read_line(c, line, sizeof(line), err) != 0 ||
	    five_text_check_reply(line, err) != 0 ||
	    five_conn_send(c, request, strlen(request), err) != 0)
		return -1;
	while (r == 0) {
		if (five_conn_read_line(c, line, sizeof(line), err) != 0)
			return -1;
		r = password_step(c, o, line, err);
	}
	return r < 0 ? -1 : 0;
}

/* --- one key, one attempt (the USP dialect) ------------------------------------ */

const char *
five_auth_user(const struct five_auth *a, char *buf, size_t size)
{
	return a->user != NULL ? a->user : login_name(buf, size);
}

int
five_auth_ask(const struct five_auth *a, const char *prompt, int echo, char *answer, size_t size)
{
	return ask(a, prompt, echo, answer, size);
}

int
five_auth_first_key(const struct five_auth *a, uint8_t pk[AUTH_PK_LEN], struct five_error *err)
{
	struct keyring kr;
	int r = -1;

	if (gather_keys(&kr, a, err) != 0)
		goto out;
	if (kr.n == 0) {
		five_fail(err, FIVE_ERR_REFUSED, "no Ed25519 key to offer");
		goto out;
	}
	memcpy(pk, kr.keys[0].pk, AUTH_PK_LEN);
	r = 0;
out:
	wipe_keys(&kr);
	return r;
}

int
five_auth_sign(const struct five_auth *a, const uint8_t pk[AUTH_PK_LEN], const uint8_t *data,
               size_t len, uint8_t sig[AUTH_SIG_LEN], struct five_error *err)
{
	struct keyring kr;
	size_t i;
	int r = -1;

	if (gather_keys(&kr, a, err) != 0)
		goto out;
	for (i = 0; i < kr.n && sodium_memcmp(kr.keys[i].pk, pk, AUTH_PK_LEN) != 0; i++)
		;
	if (i == kr.n) {
		/* The agent let the key go between the offer and the challenge. */
		five_fail(err, FIVE_ERR_SYSTEM, "the key offered is no longer available");
		goto out;
	}
	r = sign(&kr, &kr.keys[i], data, len, sig, err);
out:
	wipe_keys(&kr);
	return r;
}

/* --- entry points -------------------------------------------------------- */

int
five_auth_pipelined(struct five_conn *c, const struct five_options *o, char *tail, size_t size,
                    size_t *tail_len, unsigned *pending, struct five_error *err)
{
	const struct five_auth *a = o->auth;
	const char *methods = a->methods != NULL ? a->methods : "pubkey";
	char login[FIVE_AUTH_USER_MAX];
	const char *user = five_auth_user(a, login, sizeof(login));
	enum auth_method m[AUTH_METHODS_MAX];
	size_t n, i;

	*tail_len = 0;
	*pending = 0;
	if (user == NULL)
		return five_fail(err, FIVE_ERR_USAGE, "no user name");
	if (auth_methods_parse(methods, m, AUTH_METHODS_MAX, &n) != 0 || n == 0)
		return five_fail(err, FIVE_ERR_USAGE, "unknown authentication methods \"%s\"",
		                 methods);
	for (i = 0; i < n; i++) {
		if (m[i] == AUTH_PUBKEY && pubkey(c, o, user, n == 1, tail, size, err) == 0) {
			*tail_len = strlen(tail);
			*pending = 1;
			return 0;
		}
		if (m[i] == AUTH_PASSWORD && password(c, o, user, err) == 0)
			return 0;
		/* A refusal lets the next method try; anything else ends it. */
		if (err->step != FIVE_ERR_REFUSED)
			return -1;
	}
	return -1;
}

/* five_authenticate on a connection, plain or sealed. */
static int
authenticate(struct five_conn *c, const struct five_options *o, struct five_error *err)
{
	char tail[LINE_MAX_BYTES], line[FIVE_LINE_MAX];
	unsigned pending;
	size_t len;

	if (o->auth == NULL)
		return 0;
	if (five_auth_pipelined(c, o, tail, sizeof(tail), &len, &pending, err) != 0)
		return -1;
	if (pending == 0)
		return 0;
	if (five_conn_send(c, tail, len, err) != 0 ||
	    five_conn_read_line(c, line, sizeof(line), err) != 0 ||
	    five_text_check_reply(line, err) != 0)
		return -1;
	return 0;
}

int
five_authenticate(int fd, const struct five_options *opts, struct five_error *err)
{
	struct five_error scratch;
	struct five_options o;
	struct five_conn c = {.fd = fd};

	err = five_error_or(err, &scratch);
	if (five_options_resolve(opts, &o, err) != 0 ||
	    five_options_plain_step(&o, "five_authenticate", err) != 0)
		return -1;
	c.timeout_ms = o.timeout_ms;
	if (sodium_init() < 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "libsodium cannot start");
	/* In the clear, a pubkey signature names the server: only the caller can know its key. */
	if (o.server_key != NULL && keyfile_b64_decode(o.server_key, c.server_pk) != 0)
		return five_fail(err, FIVE_ERR_USAGE, "not a server key: %s", o.server_key);
	c.has_server_pk = o.server_key != NULL;
	return authenticate(&c, &o, err);
}
