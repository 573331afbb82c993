/*
 * The application side of the control socket (proto/control.h): register a
 * service name with fived, then receive each granted stream as a descriptor
 * passed with SCM_RIGHTS, together with who is calling.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client/base/error.h"
#include "common/util.h"
#include "five.h"
#include "proto/control.h"
#include "proto/line.h"

/*
 * A STREAM carries one descriptor, and the control buffer is sized for it.
 * Its alignment padding may still let a second one in, and the kernel
 * closes any that do not fit, setting MSG_CTRUNC: both are refused.
 */
#define PASSED_FDS_MAX 1

#define CLOSED_MESSAGE "fived closed the control socket"

/* What a fived older than REGISTER's words answers them with. */
#define MALFORMED_REPLY "malformed request"

/*
 * The smallest struct five_identity there is: the one of the first libfive
 * to size it, which ends with encrypted.  Members are appended after it.
 */
#define IDENTITY_SIZE_MIN                                                                          \
	(offsetof(struct five_identity, encrypted) + sizeof(((struct five_identity *)0)->encrypted))

/* An identity will never take this much: a larger size is not one five_identity_init set. */
#define IDENTITY_SIZE_MAX 4096

#define FIELD_SIZE(type, member) sizeof(((type *)0)->member)
#define SAME_SIZE(member)                                                                          \
	_Static_assert(FIELD_SIZE(struct five_identity, member) ==                                 \
	                       FIELD_SIZE(struct control_stream, member),                          \
	               "five_identity." #member " and control_stream." #member " differ")

/* five.h cannot include the protocol's header, so its sizes are checked here. */
SAME_SIZE(session);
SAME_SIZE(service);
SAME_SIZE(vhost);
SAME_SIZE(identity);
SAME_SIZE(auth_method);
SAME_SIZE(remote_addr);

struct five_listener {
	int fd;
	char service[NAME_MAX_LEN + 1]; /* as registered */
};

static int
send_message(int fd, const char *msg, size_t len, struct five_error *err)
{
	ssize_t n;

	while ((n = send(fd, msg, len, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
		return five_fail(err, FIVE_ERR_CONNECT, CLOSED_MESSAGE);
	if (n < 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "send: %s", strerror(errno));
	/* A SOCK_SEQPACKET message goes whole or not at all. */
	if ((size_t)n != len)
		return five_fail(err, FIVE_ERR_SYSTEM, "send: short write");
	return 0;
}

/* Waits up to timeout_ms for fd to become readable (or to hang up). */
static int
wait_readable(int fd, int timeout_ms, struct five_error *err)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	uint64_t deadline = monotonic_ms() + (uint64_t)timeout_ms;
	uint64_t now;
	int r;

	for (;;) {
		now = monotonic_ms();
		if (now >= deadline)
			return five_fail(err, FIVE_ERR_PROTOCOL, "no reply from fived within %d ms",
			                 timeout_ms);
		if ((r = poll(&pfd, 1, (int)(deadline - now))) > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return five_fail(err, FIVE_ERR_SYSTEM, "poll: %s", strerror(errno));
	}
}

/* Takes every descriptor of an SCM_RIGHTS message: the first into *passed, the others closed. */
static bool
take_fds(struct cmsghdr *c, int *passed)
{
	size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	bool extra = false;
	size_t i;
	int d;

	for (i = 0; i < count; i++) {
		memcpy(&d, CMSG_DATA(c) + i * sizeof(int), sizeof(d));
		if (*passed < 0) {
			*passed = d;
		} else {
			close(d);
			extra = true;
		}
	}
	return extra;
}

/*
 * Receives one message of at most CONTROL_MESSAGE_MAX bytes into buf, and
 * at most one descriptor into *passed (-1 when none came).  Returns 0, or
 * -1 with err filled and every descriptor that arrived closed.
 */
static int
recv_message(int fd, char buf[CONTROL_MESSAGE_MAX], size_t *len, int *passed,
             struct five_error *err)
{
	union {
		char buf[CMSG_SPACE(PASSED_FDS_MAX * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = CONTROL_MESSAGE_MAX};
	struct msghdr msg;
	struct cmsghdr *c;
	bool extra = false, foreign = false;
	ssize_t n;
	int r = -1;

	*passed = -1;
	do {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == ECONNRESET)
			five_fail(err, FIVE_ERR_CONNECT, CLOSED_MESSAGE);
		else
			five_fail(err, FIVE_ERR_SYSTEM, "recvmsg: %s", strerror(errno));
		goto out;
	}
	/* Descriptors first, so that every one is accounted for whatever else is wrong. */
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len >= CMSG_LEN(0))
			extra |= take_fds(c, passed);
		else
			foreign = true;
	}
	/* A SOCK_SEQPACKET read of 0 bytes is the end of the connection. */
	if (n == 0)
		five_fail(err, FIVE_ERR_CONNECT, CLOSED_MESSAGE);
	else if (extra || (msg.msg_flags & MSG_CTRUNC) != 0)
		five_fail(err, FIVE_ERR_PROTOCOL, "more than one descriptor with a message");
	else if (foreign)
		five_fail(err, FIVE_ERR_PROTOCOL, "unexpected control data with a message");
	else if ((msg.msg_flags & MSG_TRUNC) != 0)
		five_fail(err, FIVE_ERR_PROTOCOL, "message longer than %d bytes",
		          CONTROL_MESSAGE_MAX);
	else
		r = 0;
out:
	if (r != 0 && *passed >= 0) {
		close(*passed);
		*passed = -1;
	}
	if (r == 0)
		*len = (size_t)n;
	return r;
}

/* fived's answer to REGISTER: "+ registered <service>" or "- <reason>". */
static int
check_reply(const struct five_listener *l, const char *msg, size_t len, struct five_error *err)
{
	char text[CONTROL_MESSAGE_MAX];
	const char *name;
	bool ok;

	if (control_reply_decode(msg, len, &ok, text, sizeof(text)) != 0)
		return five_fail(err, FIVE_ERR_PROTOCOL, "malformed reply on the control socket");
	if (!ok && strcmp(text, MALFORMED_REPLY) == 0)
		return five_fail(
		        err, FIVE_ERR_REFUSED,
		        "%s: fived is older than this libfive (it does not tell a stream's "
		        "transport)",
		        text);
	if (!ok)
		return five_fail(err, FIVE_ERR_REFUSED, "%s", text);
	/* Service names are case-insensitive; fived answers with the configured spelling. */
	name = text + strlen(CONTROL_REGISTERED);
	if (strcasecmp(name, l->service) != 0)
		return five_fail(err, FIVE_ERR_PROTOCOL, "fived registered \"%s\", not \"%s\"",
		                 name, l->service);
	return 0;
}

struct five_listener *
five_listen_fd(int fd, const char *service, struct five_error *err)
{
	struct five_error scratch;
	struct five_listener *l = NULL;
	char msg[CONTROL_MESSAGE_MAX];
	size_t len;
	int type, passed;
	socklen_t tlen = sizeof(type);

	err = five_error_or(err, &scratch);
	if (service == NULL || !name_valid(service)) {
		five_fail(err, FIVE_ERR_USAGE, "invalid service name \"%.64s\"",
		          service != NULL ? service : "");
		goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_SEQPACKET) {
		five_fail(err, FIVE_ERR_USAGE,
		          "the control connection is not a SOCK_SEQPACKET socket");
		goto fail;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
		goto fail;
	}
	l->fd = fd;
	str_copy(l->service, service, sizeof(l->service));
	/* The transport of each stream makes five_identity's encrypted. */
	if (control_register_encode(service, CONTROL_WANTS_TRANSPORT | CONTROL_WANTS_STREAM, msg,
	                            sizeof(msg), &len) != 0) {
		five_fail(err, FIVE_ERR_USAGE, "cannot encode REGISTER");
		goto fail;
	}
	if (send_message(fd, msg, len, err) != 0 ||
	    wait_readable(fd, FIVE_DEFAULT_TIMEOUT_MS, err) != 0 ||
	    recv_message(fd, msg, &len, &passed, err) != 0)
		goto fail;
	if (passed >= 0) {
		close(passed);
		five_fail(err, FIVE_ERR_PROTOCOL, "a descriptor came with the reply to REGISTER");
		goto fail;
	}
	if (check_reply(l, msg, len, err) != 0)
		goto fail;
	return l;
fail:
	free(l);
	if (fd >= 0)
		close(fd);
	return NULL;
}

struct five_listener *
five_listen_at(const char *control_path, const char *service, struct five_error *err)
{
	struct five_error scratch;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	err = five_error_or(err, &scratch);
	if (control_path == NULL || control_path[0] == '\0' ||
	    strlen(control_path) >= sizeof(sun.sun_path)) {
		five_fail(err, FIVE_ERR_USAGE, "invalid control socket path");
		return NULL;
	}
	/* Checked here too, so that a bad name does not cost a connection. */
	if (service == NULL || !name_valid(service)) {
		five_fail(err, FIVE_ERR_USAGE, "invalid service name \"%.64s\"",
		          service != NULL ? service : "");
		return NULL;
	}
	memcpy(sun.sun_path, control_path, strlen(control_path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0) {
		five_fail(err, FIVE_ERR_SYSTEM, "socket: %s", strerror(errno));
		return NULL;
	}
	/* An interrupted AF_UNIX connect is left unconnected, so it can simply be tried again. */
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 && errno != EISCONN) {
		if (errno == EINTR)
			continue;
		five_fail(err, FIVE_ERR_CONNECT, "control socket %s: %s", control_path,
		          strerror(errno));
		close(fd);
		return NULL;
	}
	return five_listen_fd(fd, service, err);
}

struct five_listener *
five_listen(const char *service, struct five_error *err)
{
	const char *path = secure_getenv(CONTROL_SOCKET_ENV);

	if (path == NULL || path[0] == '\0')
		path = CONTROL_SOCKET_DEFAULT;
	return five_listen_at(path, service, err);
}

void
five_identity_init(struct five_identity *id)
{
	if (id == NULL)
		return;
	memset(id, 0, sizeof(*id));
	id->size = sizeof(*id);
}

/* Copies what of from fits in id's size (its size kept): no byte past the caller's struct. */
static void
identity_put(struct five_identity *id, const struct five_identity *from)
{
	size_t size = id->size;

	memcpy(id, from, size < sizeof(*from) ? size : sizeof(*from));
	id->size = size;
}

static void
identity_of(const struct control_stream *s, struct five_identity *id)
{
	struct five_identity all;

	five_identity_init(&all);
	memcpy(all.session, s->session, sizeof(all.session));
	memcpy(all.service, s->service, sizeof(all.service));
	memcpy(all.vhost, s->vhost, sizeof(all.vhost));
	memcpy(all.identity, s->identity, sizeof(all.identity));
	memcpy(all.auth_method, s->auth_method, sizeof(all.auth_method));
	all.withheld = s->withheld;
	memcpy(all.remote_addr, s->remote_addr, sizeof(all.remote_addr));
	all.remote_port = s->remote_port;
	/* A fived before MULTIPLEX does not know the word: its sessions carry one stream. */
	all.stream = s->has_stream ? s->stream : 0;
	all.encrypted = strcmp(s->transport, "plain") != 0;
	identity_put(id, &all);
}

int
five_accept(struct five_listener *l, struct five_identity *id, struct five_error *err)
{
	struct five_error scratch;
	char msg[CONTROL_MESSAGE_MAX];
	char text[CONTROL_MESSAGE_MAX];
	struct control_stream s;
	size_t len;
	bool ok;
	int fd = -1;

	err = five_error_or(err, &scratch);
	if (id != NULL && (id->size < IDENTITY_SIZE_MIN || id->size > IDENTITY_SIZE_MAX))
		return five_fail(err, FIVE_ERR_USAGE,
		                 "struct five_identity of %zu bytes: set it up with "
		                 "five_identity_init",
		                 id->size);
	if (id != NULL) {
		struct five_identity empty;

		five_identity_init(&empty);
		identity_put(id, &empty);
	}
	if (l == NULL)
		return five_fail(err, FIVE_ERR_USAGE, "no listener");
	if (recv_message(l->fd, msg, &len, &fd, err) != 0)
		return -1;
	if (control_stream_decode(msg, len, &s) != 0) {
		/* fived may say why it gives up on the registration before it closes. */
		if (control_reply_decode(msg, len, &ok, text, sizeof(text)) == 0 && !ok)
			five_fail(err, FIVE_ERR_REFUSED, "%s", text);
		else
			five_fail(err, FIVE_ERR_PROTOCOL,
			          "malformed message on the control socket");
		goto fail;
	}
	if (fd < 0) {
		five_fail(err, FIVE_ERR_PROTOCOL, "STREAM without a descriptor");
		goto fail;
	}
	/* REGISTER asked for it: without it, encrypted would be a guess. */
	if (s.transport[0] == '\0') {
		five_fail(err, FIVE_ERR_PROTOCOL, "STREAM without the client's transport");
		goto fail;
	}
	if (strcasecmp(s.service, l->service) != 0) {
		five_fail(err, FIVE_ERR_PROTOCOL, "a stream for \"%s\", registered \"%s\"",
		          s.service, l->service);
		goto fail;
	}
	if (id != NULL)
		identity_of(&s, id);
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

int
five_listener_fd(const struct five_listener *l)
{
	return l != NULL ? l->fd : -1;
}

void
five_listener_close(struct five_listener *l)
{
	if (l == NULL)
		return;
	close(l->fd);
	free(l);
}
