#include "client/keys/agent.h"

#include <errno.h>
#include <poll.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"

/* Message numbers from draft-miller-ssh-agent. */
#define SSH_AGENT_FAILURE             5
#define SSH_AGENTC_REQUEST_IDENTITIES 11
#define SSH_AGENT_IDENTITIES_ANSWER   12
#define SSH_AGENTC_SIGN_REQUEST       13
#define SSH_AGENT_SIGN_RESPONSE       14

#define LEN_PREFIX 4
#define U32_LEN    4

/* Ed25519 signatures take no flags. */
#define SIGN_FLAGS 0

/* An identity is at least two empty strings: a bound on what a count may claim. */
#define IDENTITY_MIN (2 * U32_LEN)

/* length || type || string(blob) || uint32 data length: what precedes the data. */
#define SIGN_HEAD_MAX (LEN_PREFIX + 1 + U32_LEN + SSHKEY_BLOB_MAX + U32_LEN)

_Static_assert(1 + U32_LEN + SSHKEY_BLOB_MAX + U32_LEN + AGENT_DATA_MAX + U32_LEN <=
                       AGENT_REPLY_MAX,
               "a sign request of AGENT_DATA_MAX bytes exceeds the message limit");

/* One exchange with the agent: the socket, its deadline, where errors go. */
struct conn {
	int fd;
	uint64_t deadline_ms;
	char *err;
	size_t err_size;
};

static void seterr(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
seterr(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err_size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(c->err, c->err_size, fmt, ap);
	va_end(ap);
}

static void
conn_init(struct conn *c, char *err, size_t err_size)
{
	c->fd = -1;
	c->deadline_ms = monotonic_ms() + AGENT_TIMEOUT_MS;
	c->err = err;
	c->err_size = err_size;
	if (err_size > 0)
		err[0] = '\0';
}

static void
conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Waits until the socket is ready for events, or fails at the deadline. */
static int
wait_ready(struct conn *c, short events)
{
	struct pollfd pfd = {.fd = c->fd, .events = events};
	uint64_t now;
	int r;

	for (;;) {
		now = monotonic_ms();
		if (now >= c->deadline_ms) {
			seterr(c, "the agent did not answer within %d s", AGENT_TIMEOUT_MS / 1000);
			return -1;
		}
		r = poll(&pfd, 1, (int)(c->deadline_ms - now));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR) {
			seterr(c, "poll: %s", strerror(errno));
			return -1;
		}
	}
}

static int
conn_open(struct conn *c, const char *path)
{
	struct sockaddr_un sun;
	int soerr = 0;
	socklen_t soerr_len = sizeof(soerr);

	if (path == NULL)
		path = getenv("SSH_AUTH_SOCK");
	if (path == NULL || *path == '\0') {
		seterr(c, "no ssh-agent: SSH_AUTH_SOCK is not set");
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (str_copy(sun.sun_path, path, sizeof(sun.sun_path)) >= sizeof(sun.sun_path)) {
		seterr(c, "agent socket path too long");
		return -1;
	}
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
		seterr(c, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return 0;
	if (errno != EINPROGRESS) {
		seterr(c, "cannot connect to the agent at %s: %s", path, strerror(errno));
		return -1;
	}
	if (wait_ready(c, POLLOUT) != 0)
		return -1;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &soerr_len) != 0 || soerr != 0) {
		seterr(c, "cannot connect to the agent at %s: %s", path,
		       strerror(soerr != 0 ? soerr : errno));
		return -1;
	}
	return 0;
}

static int
send_all(struct conn *c, const void *p, size_t n)
{
	const uint8_t *b = p;
	ssize_t w;

	while (n > 0) {
		/* MSG_NOSIGNAL: an agent that went away is an error here, not SIGPIPE. */
		w = send(c->fd, b, n, MSG_NOSIGNAL);
		if (w > 0) {
			b += w;
			n -= (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_ready(c, POLLOUT) != 0)
				return -1;
		} else {
			seterr(c, "writing to the agent: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int
recv_all(struct conn *c, void *p, size_t n)
{
	uint8_t *b = p;
	ssize_t r;

	while (n > 0) {
		r = recv(c->fd, b, n, 0);
		if (r > 0) {
			b += r;
			n -= (size_t)r;
		} else if (r == 0) {
			seterr(c, "the agent closed the connection");
			return -1;
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (wait_ready(c, POLLIN) != 0)
				return -1;
		} else {
			seterr(c, "reading from the agent: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

/*
 * Reads one message, uint32 length || body, checking the length against
 * AGENT_REPLY_MAX before allocating.  On success *body (the caller frees
 * it) holds *len >= 1 bytes.
 */
static int
recv_msg(struct conn *c, uint8_t **body, size_t *len)
{
	uint8_t head[LEN_PREFIX];
	struct sshkey_reader r;
	uint32_t n = 0;
	uint8_t *p = NULL;
	int ret = -1;

	*body = NULL;
	if (recv_all(c, head, sizeof(head)) != 0)
		goto out;
	sshkey_reader_init(&r, head, sizeof(head));
	(void)sshkey_get_u32(&r, &n);
	if (n == 0 || n > AGENT_REPLY_MAX) {
		seterr(c, "agent reply of %u bytes is out of bounds", (unsigned)n);
		goto out;
	}
	if ((p = malloc(n)) == NULL) {
		seterr(c, "out of memory");
		goto out;
	}
	if (recv_all(c, p, n) != 0)
		goto out;
	*body = p;
	*len = n;
	p = NULL;
	ret = 0;
out:
	free(p);
	return ret;
}

/* Reads the reply's type byte; the agent's refusal gets its own message. */
static int
reply_type(struct conn *c, struct sshkey_reader *r, uint8_t want, const char *refused)
{
	uint8_t type = 0;

	(void)sshkey_get_u8(r, &type);
	if (type == SSH_AGENT_FAILURE) {
		seterr(c, "%s", refused);
		return -1;
	}
	if (type != want) {
		seterr(c, "unexpected reply type %u from the agent", type);
		return -1;
	}
	return 0;
}

int
agent_list(const char *sock_path, uint8_t keys[][SSHKEY_ED25519_PUBLEN], size_t max, size_t *n,
           char *err, size_t err_size)
{
	struct conn c;
	struct sshkey_writer w;
	struct sshkey_reader r;
	uint8_t req[LEN_PREFIX + 1];
	uint8_t pk[SSHKEY_ED25519_PUBLEN];
	uint8_t *reply = NULL;
	size_t reply_len = 0, blob_len, comment_len;
	const uint8_t *blob, *comment;
	uint32_t count, i;
	int ret = -1;

	*n = 0;
	conn_init(&c, err, err_size);
	sshkey_writer_init(&w, req, sizeof(req));
	(void)sshkey_put_u32(&w, 1);
	(void)sshkey_put_u8(&w, SSH_AGENTC_REQUEST_IDENTITIES);
	if (conn_open(&c, sock_path) != 0 || send_all(&c, req, w.len) != 0 ||
	    recv_msg(&c, &reply, &reply_len) != 0)
		goto out;
	sshkey_reader_init(&r, reply, reply_len);
	if (reply_type(&c, &r, SSH_AGENT_IDENTITIES_ANSWER, "the agent refused to list its keys") !=
	    0)
		goto out;
	if (sshkey_get_u32(&r, &count) != 0 || count > sshkey_reader_left(&r) / IDENTITY_MIN) {
		seterr(&c, "malformed key list from the agent");
		goto out;
	}
	for (i = 0; i < count; i++) {
		if (sshkey_get_string(&r, &blob, &blob_len) != 0 ||
		    sshkey_get_string(&r, &comment, &comment_len) != 0) {
			seterr(&c, "malformed key list from the agent");
			goto out;
		}
		/* Keys of other types are not ours to use: skip them. */
		if (sshkey_blob_decode(blob, blob_len, pk) != 0)
			continue;
		if (*n < max)
			memcpy(keys[(*n)++], pk, SSHKEY_ED25519_PUBLEN);
	}
	if (sshkey_reader_left(&r) != 0) {
		seterr(&c, "trailing bytes in the agent's key list");
		goto out;
	}
	ret = 0;
out:
	if (ret != 0)
		*n = 0;
	free(reply);
	conn_close(&c);
	return ret;
}

int
agent_sign(const char *sock_path, const uint8_t pk[SSHKEY_ED25519_PUBLEN], const uint8_t *data,
           size_t len, uint8_t sig[SSHKEY_ED25519_SIGLEN], char *err, size_t err_size)
{
	struct conn c;
	struct sshkey_writer hw, tw;
	struct sshkey_reader r;
	uint8_t blob[SSHKEY_BLOB_MAX];
	uint8_t head[SIGN_HEAD_MAX];
	uint8_t tail[U32_LEN];
	uint8_t got[SSHKEY_ED25519_SIGLEN];
	uint8_t *reply = NULL;
	size_t blob_len = 0, reply_len = 0, sig_len;
	const uint8_t *sig_blob;
	int ret = -1;

	memset(sig, 0, SSHKEY_ED25519_SIGLEN);
	conn_init(&c, err, err_size);
	if (len > AGENT_DATA_MAX) {
		seterr(&c, "%zu bytes are too many to sign through the agent", len);
		goto out;
	}
	(void)sshkey_blob_encode(pk, blob, sizeof(blob), &blob_len);
	/* The data goes out from the caller's buffer: no copy of up to 256 KiB. */
	sshkey_writer_init(&hw, head, sizeof(head));
	(void)sshkey_put_u32(&hw, (uint32_t)(1 + U32_LEN + blob_len + U32_LEN + len + U32_LEN));
	(void)sshkey_put_u8(&hw, SSH_AGENTC_SIGN_REQUEST);
	(void)sshkey_put_string(&hw, blob, blob_len);
	(void)sshkey_put_u32(&hw, (uint32_t)len);
	sshkey_writer_init(&tw, tail, sizeof(tail));
	(void)sshkey_put_u32(&tw, SIGN_FLAGS);
	if (conn_open(&c, sock_path) != 0 || send_all(&c, head, hw.len) != 0 ||
	    send_all(&c, data, len) != 0 || send_all(&c, tail, tw.len) != 0 ||
	    recv_msg(&c, &reply, &reply_len) != 0)
		goto out;
	sshkey_reader_init(&r, reply, reply_len);
	if (reply_type(&c, &r, SSH_AGENT_SIGN_RESPONSE,
	               "the agent refused to sign (does it hold the key?)") != 0)
		goto out;
	if (sshkey_get_string(&r, &sig_blob, &sig_len) != 0 || sshkey_reader_left(&r) != 0) {
		seterr(&c, "malformed signature reply from the agent");
		goto out;
	}
	if (sshkey_sig_decode(sig_blob, sig_len, got) != 0) {
		seterr(&c, "the agent's signature is not an Ed25519 signature");
		goto out;
	}
	/* A confused or hostile agent must not get a bad signature sent on our behalf. */
	if (crypto_sign_verify_detached(got, data, len, pk) != 0) {
		seterr(&c, "the agent's signature does not verify");
		goto out;
	}
	memcpy(sig, got, SSHKEY_ED25519_SIGLEN);
	ret = 0;
out:
	free(reply);
	conn_close(&c);
	return ret;
}
