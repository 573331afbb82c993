#include "server/privsep/priv.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/io.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/privmsg.h"
#include "server/privsep/notify.h"
#include "server/privsep/pam_helper.h"
#include "server/privsep/privops.h"

/* --- talking to the monitor --------------------------------------------- */

#define PRIV_READ_AHEAD 4096 /* an answer's first read: its header and most bodies */

/*
 * Reads the start of an answer into buf: its header and as much of its
 * body as came with it (the whole of most answers, in one system call),
 * and the descriptor that may come with it.  Returns the bytes read, at
 * least PRIVMSG_HEADER, or -1.
 */
static ssize_t
read_start(int fd, uint8_t *buf, size_t size, int *passed)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {buf, size};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;
	ssize_t n;

	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	*passed = -1;
	while ((n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (n <= 0)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (cm != NULL && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(passed, CMSG_DATA(cm), sizeof(int));
	if (n < PRIVMSG_HEADER && io_read_all(fd, buf + n, PRIVMSG_HEADER - (size_t)n) != 0)
		return -1;
	return n < PRIVMSG_HEADER ? PRIVMSG_HEADER : n;
}

/*
 * An answer's body (malloc'd, one byte more for a NUL) from the start
 * read_start read and the rest of it from fd.  Only one request is in
 * flight, so a byte beyond the body is a monitor that answers out of turn.
 */
static uint8_t *
read_body(int fd, const uint8_t *start, size_t have, uint32_t len)
{
	uint8_t *body;

	if (have > len || (body = malloc((size_t)len + 1)) == NULL)
		return NULL;
	memcpy(body, start, have);
	if (io_read_all(fd, body + have, len - have) != 0) {
		free(body);
		return NULL;
	}
	return body;
}

/*
 * One request, one answer (ans->text malloc'd, the caller clears ans).  A
 * monitor that answers out of turn is as fatal as one that is gone.  The
 * start of the answer may hold a secret (a Diffie-Hellman result): wiped.
 */
static int
call(struct priv *p, const struct priv_request *req, struct priv_answer *ans)
{
	static uint8_t msg[PRIVMSG_REQUEST_MAX];
	static uint8_t start[PRIV_READ_AHEAD];
	uint8_t *body = NULL;
	struct priv_reply reply;
	uint32_t type, len;
	ssize_t got = -1;
	size_t n;

	if (privmsg_request_encode(req, msg, sizeof(msg), &n) != 0 ||
	    io_write_all(p->fd, msg, n) != 0 ||
	    (got = read_start(p->fd, start, sizeof(start), &ans->fd)) < 0 ||
	    privmsg_header_decode(start, &type, &len, PRIVMSG_REPLY_MAX) != 0 ||
	    type != req->type ||
	    (body = read_body(p->fd, start + PRIVMSG_HEADER, (size_t)got - PRIVMSG_HEADER, len)) ==
	            NULL ||
	    privmsg_reply_decode(body, len, &reply) != 0) {
		log_error("the monitor is gone or broken; stopping");
		kill(getpid(), SIGTERM);
		free(body);
		sodium_memzero(start, sizeof(start));
		privops_answer_clear(ans);
		return -1;
	}
	sodium_memzero(start, got > 0 ? (size_t)got : 0);
	ans->ok = reply.ok;
	ans->len = reply.text_len;
	memmove(body, reply.text, reply.text_len);
	body[reply.text_len] = '\0';
	ans->text = body;
	return 0;
}

/* Asks the monitor, or answers in this process without one.  Returns 0 or -1. */
static int
transact(struct priv *p, const struct priv_request *req, struct priv_answer *ans)
{
	memset(ans, 0, sizeof(*ans));
	ans->fd = -1;
	if (p->separated)
		return call(p, req, ans);
	if (privops_answer(p->state, req, ans) != 0) {
		log_error("a privileged request of type %d was refused as malformed", req->type);
		privops_answer_clear(ans);
		return -1;
	}
	return 0;
}

/* A request's answer as text into out (a reason when refused); 1 ok, 0 refused, -1 failed. */
static int
transact_text(struct priv *p, const struct priv_request *req, char *out, size_t size)
{
	struct priv_answer ans;
	int r;

	if (transact(p, req, &ans) != 0)
		return -1;
	if (out != NULL)
		snprintf(out, size, "%.*s", (int)ans.len, ans.text != NULL ? (char *)ans.text : "");
	r = ans.ok ? 1 : 0;
	privops_answer_clear(&ans);
	return r;
}

/* A refusal whose text is an errno, as privops writes it. */
static int
answer_errno(const struct priv_answer *ans)
{
	uint64_t e;

	if (ans->text != NULL && parse_uint((const char *)ans->text, 4096, &e) == 0 && e > 0)
		return -(int)e;
	return -EIO;
}

/*
 * A request answered with a descriptor: the descriptor, or -errno.  With
 * id, the answer's text is a number that goes with it, there.
 */
static int
transact_fd(struct priv *p, const struct priv_request *req, uint64_t *id)
{
	struct priv_answer ans;
	int fd;

	if (transact(p, req, &ans) != 0)
		return -EIO;
	if (!ans.ok || ans.fd < 0 ||
	    (id != NULL &&
	     (ans.text == NULL || parse_uint((const char *)ans.text, UINT64_MAX, id) != 0))) {
		fd = ans.ok ? -EIO : answer_errno(&ans);
		privops_answer_clear(&ans);
		return fd;
	}
	fd = ans.fd;
	ans.fd = -1;
	privops_answer_clear(&ans);
	return fd;
}

/* --- setting up ----------------------------------------------------------- */

static void
find_self(struct priv *p)
{
	ssize_t n = readlink("/proc/self/exe", p->self, sizeof(p->self) - 1);

	p->self[n > 0 ? n : 0] = '\0';
}

void
priv_init_local(struct priv *p, struct priv_state *st, const char *config_name, uv_loop_t *loop)
{
	memset(p, 0, sizeof(*p));
	p->fd = -1;
	p->state = st;
	p->loop = loop;
	p->config_name = config_name;
	p->nworkers = 1;
	find_self(p);
}

void
priv_init_worker(struct priv *p, const char *config_name, unsigned index, unsigned nworkers)
{
	memset(p, 0, sizeof(*p));
	p->separated = true;
	p->fd = PRIV_WORKER_FD;
	p->config_name = config_name;
	p->index = index;
	p->nworkers = nworkers;
	p->monitor = getppid();
}

bool
priv_shared(const struct priv *p)
{
	return p->nworkers > 1;
}

/* --- the operations ------------------------------------------------------- */

int
priv_pubkey_check(struct priv *p, const char *user, const uint8_t pk[32], const char *peer_ip,
                  char *why, size_t why_size)
{
	struct priv_request req = {.type = PRIV_PUBKEY_CHECK};

	str_copy(req.user, user, sizeof(req.user));
	memcpy(req.pk, pk, sizeof(req.pk));
	str_copy(req.peer_ip, peer_ip, sizeof(req.peer_ip));
	return transact_text(p, &req, why, why_size);
}

struct helper {
	uv_process_t proc;
	struct priv *priv;
};

static void
free_helper(uv_handle_t *h)
{
	free(h->data);
}

static void
on_helper_exit(uv_process_t *proc, int64_t status, int signal)
{
	struct helper *h = proc->data;

	pam_slots_release(&h->priv->pam, (long)proc->pid);
	uv_close((uv_handle_t *)proc, free_helper);
}

/* Without a monitor: this process starts the helper, and libuv reaps it. */
static int
spawn_helper(struct priv *p, const struct config *cfg, const char *user, const char *peer_ip,
             int fd, struct pam_slot *slot)
{
	struct pam_helper_args args = {0};
	uv_stdio_container_t stdio[4];
	uv_process_options_t o;
	struct helper *h = calloc(1, sizeof(*h));
	int r;

	if (h == NULL)
		return -1;
	h->priv = p;
	h->proc.data = h;
	pam_helper_argv(&args, p->self, cfg->pam_service, user, peer_ip, cfg->auth_timeout_ms);
	memset(&o, 0, sizeof(o));
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_IGNORE;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = STDERR_FILENO;
	stdio[3].flags = UV_INHERIT_FD;
	stdio[3].data.fd = fd;
	o.file = p->self;
	o.args = args.argv;
	o.stdio = stdio;
	o.stdio_count = 4;
	o.exit_cb = on_helper_exit;
	if ((r = uv_spawn(p->loop, &h->proc, &o)) != 0) {
		log_error("cannot start the PAM helper: %s", uv_strerror(r));
		uv_close((uv_handle_t *)&h->proc, free_helper);
		return -1;
	}
	slot->id = (long)h->proc.pid;
	return 0;
}

static int
pam_start_local(struct priv *p, const struct config *cfg, const char *user, const char *peer_ip,
                const char **why)
{
	struct pam_slot *slot;
	int sp[2];

	if ((slot = pam_slots_take(&p->pam, peer_ip, cfg->max_pam_helpers,
	                           cfg->max_pam_helpers_per_source, why)) == NULL)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
		pam_slots_release(&p->pam, slot->id);
		*why = "cannot start PAM";
		return -1;
	}
	if (spawn_helper(p, cfg, user, peer_ip, sp[1], slot) != 0) {
		pam_slots_release(&p->pam, slot->id);
		close(sp[0]);
		sp[0] = -1;
		*why = "cannot start PAM";
	}
	close(sp[1]);
	return sp[0];
}

int
priv_pam_start(struct priv *p, const struct config *cfg, const char *user, const char *peer_ip,
               const char **why)
{
	struct priv_request req = {.type = PRIV_PAM_START};
	struct priv_answer ans;
	int fd;

	if (!p->separated)
		return pam_start_local(p, cfg, user, peer_ip, why);
	str_copy(req.user, user, sizeof(req.user));
	str_copy(req.peer_ip, peer_ip, sizeof(req.peer_ip));
	*why = "cannot start PAM";
	if (transact(p, &req, &ans) != 0)
		return -1;
	if (!ans.ok && ans.text != NULL && strstr((char *)ans.text, "too many") != NULL)
		*why = strstr((char *)ans.text, "address") != NULL
		               ? "too many password authentications in progress from your address"
		               : "too many password authentications in progress";
	fd = ans.ok ? ans.fd : -1;
	if (ans.ok)
		ans.fd = -1;
	privops_answer_clear(&ans);
	return fd;
}

/* Without a monitor: the file (or the built-in text) read again, as the monitor would. */
static struct config *
config_local(struct priv *p, struct config_errors *errs)
{
	struct priv_state *st = p->state;
	struct config *cfg;
	size_t len;
	char *text;

	if (st->cfg_path == NULL) {
		len = strlen(config_builtin_text);
		text = strdup(config_builtin_text);
	} else if (config_read_file(st->cfg_path, &text, &len, errs) != 0) {
		return NULL;
	}
	if (text == NULL || (cfg = config_parse(p->config_name, text, len, errs)) == NULL) {
		free(text);
		return NULL;
	}
	if (privops_set_config(st, config_ref(cfg), text, len) != 0) {
		config_unref(cfg);
		config_unref(cfg);
		free(text);
		errs->count = 1;
		snprintf(errs->text, sizeof(errs->text),
		         "key_file and revocation_file change only with a restart\n");
		return NULL;
	}
	return cfg;
}

struct config *
priv_config(struct priv *p, struct config_errors *errs)
{
	struct priv_request req = {.type = PRIV_CONFIG};
	struct priv_answer ans;
	struct config *cfg;

	memset(errs, 0, sizeof(*errs));
	if (!p->separated)
		return config_local(p, errs);
	errs->count = 1;
	snprintf(errs->text, sizeof(errs->text), "the monitor did not answer\n");
	if (transact(p, &req, &ans) != 0)
		return NULL;
	cfg = config_parse(p->config_name, (const char *)ans.text, ans.len, errs);
	privops_answer_clear(&ans);
	if (cfg != NULL)
		config_share(cfg, p->nworkers);
	return cfg;
}

/* A request answered with text: *text (malloc'd, NUL after *len bytes), or -1 with err. */
static int
transact_take(struct priv *p, const struct priv_request *req, char **text, size_t *len, char *err,
              size_t err_size)
{
	struct priv_answer ans;

	*text = NULL;
	*len = 0;
	if (transact(p, req, &ans) != 0) {
		snprintf(err, err_size, "the monitor did not answer");
		return -1;
	}
	if (!ans.ok) {
		snprintf(err, err_size, "%.*s", (int)ans.len,
		         ans.text != NULL ? (char *)ans.text : "");
		privops_answer_clear(&ans);
		return -1;
	}
	*text = (char *)ans.text;
	*len = ans.len;
	ans.text = NULL;
	privops_answer_clear(&ans);
	return 0;
}

int
priv_file(struct priv *p, const char *path, char **text, size_t *len, char *err, size_t err_size)
{
	struct priv_request req = {.type = PRIV_FILE};

	str_copy(req.arg, path, sizeof(req.arg));
	return transact_take(p, &req, text, len, err, err_size);
}

int
priv_listen(struct priv *p, const struct addr_spec *a, enum priv_socket kind)
{
	struct priv_request req = {.type = PRIV_LISTEN};
	char text[ADDR_TEXT_MAX];

	addr_format(a, text, sizeof(text));
	/* The control and admin sockets: the monitor knows them by these prefixes. */
	if (kind == PRIV_SOCKET_CONTROL)
		snprintf(req.arg, sizeof(req.arg), "control:%s", a->path);
	else if (kind == PRIV_SOCKET_ADMIN)
		snprintf(req.arg, sizeof(req.arg), "admin:%s", a->path);
	else if (kind == PRIV_SOCKET_PEER)
		str_copy(req.arg, "peer:", sizeof(req.arg));
	else
		str_copy(req.arg, text, sizeof(req.arg));
	return transact_fd(p, &req, NULL);
}

int
priv_audit(struct priv *p)
{
	struct priv_request req = {.type = PRIV_AUDIT};

	return transact_fd(p, &req, NULL);
}

/* PRIV_KEYS's answer (privops.c, answer_keys).  Returns 0 or -1. */
static int
keys_decode(const uint8_t *text, size_t len, struct priv_keys *out)
{
	size_t m, n;

	if (text == NULL || len < PRIVOPS_KEYS_FIXED)
		return -1;
	m = text[96];
	if (m > PROOF_PROVIDER_MAX || len - PRIVOPS_KEYS_FIXED < m)
		return -1;
	n = len - PRIVOPS_KEYS_FIXED - m;
	if (n == 0 || n >= sizeof(out->key_path))
		return -1;
	memcpy(out->server_pk, text, 32);
	memcpy(out->token_pk, text + 32, 32);
	memcpy(out->sign_pk, text + 64, 32);
	memcpy(out->provider, text + PRIVOPS_KEYS_FIXED, m);
	out->provider[m] = '\0';
	memcpy(out->key_path, text + PRIVOPS_KEYS_FIXED + m, n);
	out->key_path[n] = '\0';
	return 0;
}

int
priv_keys(struct priv *p, struct priv_keys *out)
{
	struct priv_request req = {.type = PRIV_KEYS};
	struct priv_answer ans;
	int r = -1;

	if (transact(p, &req, &ans) != 0)
		return -1;
	r = keys_decode(ans.ok ? ans.text : NULL, ans.len, out);
	privops_answer_clear(&ans);
	return r;
}

int
priv_dh(void *ctx, const uint8_t pub[32], uint8_t shared[32])
{
	struct priv_request req = {.type = PRIV_DH};
	struct priv_answer ans;
	int r = -1;

	memcpy(req.pk, pub, sizeof(req.pk));
	if (transact(ctx, &req, &ans) != 0)
		return -1;
	if (ans.ok && ans.len == 32) {
		memcpy(shared, ans.text, 32);
		r = 0;
	}
	privops_answer_clear(&ans);
	return r;
}

int
priv_token_issue(struct priv *p, const char *identity, int format, const char *claims, size_t len,
                 char *out, size_t size, const char **why)
{
	static struct priv_request req;
	struct priv_answer ans;
	int r = -1;

	if (len > sizeof(req.blob)) {
		*why = "cannot issue a token";
		return -1;
	}
	memset(&req, 0, sizeof(req));
	req.type = PRIV_TOKEN_ISSUE;
	str_copy(req.arg, identity, sizeof(req.arg));
	req.number = (uint64_t)format;
	memcpy(req.blob, claims, len);
	req.blob_len = len;
	if (transact(p, &req, &ans) != 0) {
		*why = "cannot issue a token";
		return -1;
	}
	if (ans.ok && ans.len < size) {
		memcpy(out, ans.text, ans.len + 1);
		r = 0;
	} else {
		*why = ans.text != NULL && strstr((char *)ans.text, "quota") != NULL
		               ? "token quota reached"
		               : "cannot issue a token";
	}
	privops_answer_clear(&ans);
	return r;
}

int
priv_proof_sign(struct priv *p, const char *identity, enum auth_method method,
                const uint8_t hash[PROOF_HASH_LEN], char *out, size_t size, const char **why)
{
	static struct priv_request req;
	struct priv_answer ans;
	int r = -1;

	memset(&req, 0, sizeof(req));
	req.type = PRIV_PROOF_SIGN;
	str_copy(req.arg, identity, sizeof(req.arg));
	req.number = (uint64_t)method;
	memcpy(req.blob, hash, PROOF_HASH_LEN);
	req.blob_len = PROOF_HASH_LEN;
	*why = "cannot sign a proof";
	if (transact(p, &req, &ans) != 0)
		return -1;
	if (ans.ok && ans.len < size) {
		memcpy(out, ans.text, ans.len + 1);
		r = 0;
	} else if (!ans.ok && ans.text != NULL && strstr((char *)ans.text, "provider") != NULL) {
		*why = "cannot sign a proof: no provider name";
	}
	privops_answer_clear(&ans);
	return r;
}

int
priv_token_open(struct priv *p, const uint8_t *body, size_t blen, const char *footer, uint8_t *m,
                size_t m_size, size_t *mlen)
{
	static struct priv_request req;
	struct priv_answer ans;
	int r = -1;

	*mlen = 0;
	if (blen > sizeof(req.blob))
		return -1;
	memset(&req, 0, sizeof(req));
	req.type = PRIV_TOKEN_OPEN;
	str_copy(req.arg, footer, sizeof(req.arg));
	memcpy(req.blob, body, blen);
	req.blob_len = blen;
	if (transact(p, &req, &ans) != 0)
		return -1;
	if (ans.ok && ans.len <= m_size) {
		memcpy(m, ans.text, ans.len);
		*mlen = ans.len;
		r = 0;
	}
	privops_answer_clear(&ans);
	return r;
}

int
priv_revoke(struct priv *p, const char *jti, uint64_t exp, char *err, size_t err_size)
{
	struct priv_request req = {.type = PRIV_REVOKE};
	int r;

	str_copy(req.arg, jti, sizeof(req.arg));
	req.number = exp;
	if ((r = transact_text(p, &req, err, err_size)) < 0)
		snprintf(err, err_size, "the monitor did not answer");
	return r == 1 ? 0 : -1;
}

/* A request without arguments answered with text (what: for the log), as transact_take. */
static int
take_logged(struct priv *p, enum priv_type type, const char *what, char **text, size_t *len)
{
	struct priv_request req = {.type = type};
	char err[256];

	if (transact_take(p, &req, text, len, err, sizeof(err)) == 0)
		return 0;
	log_error("cannot have %s: %s", what, err);
	return -1;
}

int
priv_revoked(struct priv *p, char **text, size_t *len)
{
	return take_logged(p, PRIV_REVOKED, "the revoked tokens", text, len);
}

int
priv_early_reserve(struct priv *p, uint64_t stamp_ns, uint64_t *floor)
{
	struct priv_request req = {.type = PRIV_EARLY_RESERVE};
	char text[32];

	req.number = stamp_ns;
	if (transact_text(p, &req, text, sizeof(text)) != 1 ||
	    parse_uint(text, UINT64_MAX, floor) != 0)
		return -1;
	return 0;
}

int
priv_early_admit(struct priv *p, const uint8_t pk[32], uint64_t stamp_ns)
{
	struct priv_request req = {.type = PRIV_EARLY_ADMIT, .number = stamp_ns};

	memcpy(req.pk, pk, sizeof(req.pk));
	return transact_text(p, &req, NULL, 0);
}

int
priv_is_revoked(struct priv *p, const char *jti)
{
	struct priv_request req = {.type = PRIV_IS_REVOKED};
	char text[8];
	int r;

	str_copy(req.arg, jti, sizeof(req.arg));
	if ((r = transact_text(p, &req, text, sizeof(text))) != 1)
		return -1;
	return strcmp(text, "1") == 0;
}

int
priv_peer_connect(struct priv *p, unsigned worker)
{
	struct priv_request req = {.type = PRIV_PEER_CONNECT, .number = worker};

	return transact_fd(p, &req, NULL);
}

bool
priv_from_monitor(const struct priv *p, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	return p->monitor > 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
	       cred.pid == p->monitor && cred.uid == 0;
}

int
priv_cookie_secret(struct priv *p, uint64_t bucket, uint8_t out[32])
{
	struct priv_request req = {.type = PRIV_COOKIE_SECRET};
	struct priv_answer ans;
	int r = -1;

	req.number = bucket;
	if (transact(p, &req, &ans) != 0)
		return -1;
	if (ans.ok && ans.len == 32) {
		memcpy(out, ans.text, 32);
		r = 0;
	} else {
		log_error("no cookie secret from the monitor: %.*s", (int)ans.len,
		          ans.text != NULL ? (char *)ans.text : "");
	}
	privops_answer_clear(&ans);
	return r;
}

int
priv_exec(struct priv *p, const char *svc, char *const env[], uint64_t *program)
{
	static struct priv_request req;
	size_t i, n;

	memset(&req, 0, sizeof(req));
	req.type = PRIV_EXEC;
	str_copy(req.arg, svc, sizeof(req.arg));
	for (i = 0; env[i] != NULL; i++) {
		n = strlen(env[i]) + 1;
		if (req.blob_len + n > sizeof(req.blob))
			return -E2BIG;
		memcpy(req.blob + req.blob_len, env[i], n);
		req.blob_len += n;
	}
	return transact_fd(p, &req, program);
}

void
priv_exec_end(struct priv *p, uint64_t program, bool cut)
{
	struct priv_request req = {.type = cut ? PRIV_EXEC_END : PRIV_EXEC_DONE, .number = program};
	struct priv_answer ans;

	if (transact(p, &req, &ans) == 0)
		privops_answer_clear(&ans);
}

int
priv_connect(struct priv *p, const char *path)
{
	struct priv_request req = {.type = PRIV_CONNECT};

	str_copy(req.arg, path, sizeof(req.arg));
	return transact_fd(p, &req, NULL);
}

int
priv_account(struct priv *p, const char *user, unsigned long *uid, char **groups, size_t *len)
{
	struct priv_request req = {.type = PRIV_ACCOUNT};
	char err[256], *text, *nl;
	uint64_t v;
	size_t n;

	*groups = NULL;
	*len = 0;
	if (!auth_user_valid(user))
		return -1;
	str_copy(req.user, user, sizeof(req.user));
	if (transact_take(p, &req, &text, &n, err, sizeof(err)) != 0)
		return strcmp(err, "no such user") == 0 ? 1 : -1;
	if ((nl = strchr(text, '\n')) == NULL) {
		free(text);
		return -1;
	}
	*nl = '\0';
	if (parse_uint(text, UINT32_MAX, &v) != 0) {
		free(text);
		return -1;
	}
	*uid = (unsigned long)v;
	*len = n - (size_t)(nl + 1 - text);
	memmove(text, nl + 1, *len + 1);
	*groups = text;
	return 0;
}

int
priv_admin(struct priv *p, unsigned long uid, char *why, size_t why_size)
{
	struct priv_request req = {.type = PRIV_ADMIN};

	req.number = uid;
	return transact_text(p, &req, why, why_size);
}

int
priv_reload(struct priv *p, char *err, size_t err_size)
{
	struct priv_request req = {.type = PRIV_RELOAD};
	int r;

	if (!p->separated)
		return 0;
	if ((r = transact_text(p, &req, err, err_size)) < 0)
		snprintf(err, err_size, "the monitor did not answer");
	return r == 1 ? 0 : -1;
}

void
priv_ready(struct priv *p)
{
	struct priv_request req = {.type = PRIV_READY};

	if (p->separated)
		transact_text(p, &req, NULL, 0);
	else
		notify_ready();
}

void
priv_reloading(struct priv *p)
{
	if (!p->separated)
		notify_reloading();
}

void
priv_stopping(struct priv *p)
{
	if (!p->separated)
		notify_stopping();
}

void
priv_alive(struct priv *p, uint64_t now_ms, const void *share, size_t len)
{
	struct priv_request req = {.type = PRIV_ALIVE};
	uint64_t every = p->separated ? PRIV_ALIVE_MS : notify_watchdog_interval_ms();

	if (every == 0 || now_ms - p->alive_ms < every)
		return;
	p->alive_ms = now_ms;
	if (!p->separated) {
		notify_watchdog();
		return;
	}
	if (share != NULL && len <= sizeof(req.blob)) {
		memcpy(req.blob, share, len);
		req.blob_len = len;
	}
	transact_text(p, &req, NULL, 0);
}

bool
priv_alive_due(const struct priv *p, uint64_t now_ms)
{
	return p->separated && now_ms - p->alive_ms >= PRIV_ALIVE_MS;
}

int
priv_shares(struct priv *p, char **blobs, size_t *len)
{
	return take_logged(p, PRIV_SHARES, "the other workers' counters", blobs, len);
}

int
priv_inherit(struct priv *p, char **blob, size_t *len)
{
	return take_logged(p, PRIV_INHERIT, "the counters of this worker's predecessor", blob, len);
}
