#include "server/backend/control.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/io.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/control.h"
#include "server/policy/policy.h"
#include "server/policy/site.h"
#include "server/privsep/priv.h"

/* One application's connection to the control socket. */
struct app {
	struct app *next;
	struct control *ctl;
	uv_poll_t poll;
	int fd;
	uid_t uid;
	char service[NAME_MAX_LEN + 1]; /* "" until registered */
	unsigned wants; /* STREAM's members beyond the first eight: CONTROL_WANTS_* */
};

struct control {
	struct site *site;
	uv_poll_t poll;
	int fd;
	struct app *apps;
	size_t napps;
	struct app *last_used; /* where the round-robin resumes */
};

static void
free_app(uv_handle_t *h)
{
	struct app *a = h->data;

	close(a->fd);
	free(a);
}

static void
drop_app(struct app *a)
{
	struct control *ctl = a->ctl;
	struct app **pp;

	for (pp = &ctl->apps; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	}
	if (ctl->last_used == a)
		ctl->last_used = NULL;
	ctl->napps--;
	if (a->service[0] != '\0')
		log_info("control: %s unregistered (uid %u)", a->service, (unsigned)a->uid);
	uv_close((uv_handle_t *)&a->poll, free_app);
}

static void
send_reply(struct app *a, bool ok, const char *text)
{
	char msg[CONTROL_MESSAGE_MAX];
	size_t len;

	if (control_reply_encode(ok, text, msg, sizeof(msg), &len) == 0)
		send(a->fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Whether the connecting uid is one of the service's register_users (looked up by priv). */
static bool
may_register(struct priv *priv, const struct service *svc, uid_t uid)
{
	unsigned long user_uid;
	char *groups;
	size_t i, len;

	for (i = 0; i < svc->nregister_users; i++) {
		if (priv_account(priv, svc->register_users[i], &user_uid, &groups, &len) != 0)
			continue;
		free(groups);
		if (user_uid == (unsigned long)uid)
			return true;
	}
	return false;
}

static const struct service *
find_service(const struct config *cfg, const char *name)
{
	const struct service *svc;

	for (svc = cfg->services; svc != NULL; svc = svc->next)
		if (strcmp(svc->name, name) == 0)
			return svc;
	return NULL;
}

/* The one request: REGISTER.  Anything after it, or a refused one, ends the connection. */
static void
handle_message(struct app *a, const char *msg, size_t len)
{
	char service[NAME_MAX_LEN + 1], text[NAME_MAX_LEN + 16];
	const struct service *svc;
	const char *refusal = NULL;
	unsigned wants;

	if (a->service[0] != '\0' || control_register_decode(msg, len, service, &wants) != 0) {
		send_reply(a, false, "malformed request");
		drop_app(a);
		return;
	}
	svc = find_service(a->ctl->site->cfg, service);
	if (svc == NULL)
		refusal = "unknown service";
	else if (svc->backend != BACKEND_REGISTER)
		refusal = "not a registered service";
	else if (!may_register(a->ctl->site->priv, svc, a->uid))
		refusal = "not permitted";
	if (refusal != NULL) {
		log_info("control: uid %u may not register %s: %s", (unsigned)a->uid, service,
		         refusal);
		send_reply(a, false, refusal);
		drop_app(a);
		return;
	}
	str_copy(a->service, service, sizeof(a->service));
	a->wants = wants;
	snprintf(text, sizeof(text), "%s%s", CONTROL_REGISTERED, service);
	send_reply(a, true, text);
	log_info("control: %s registered (uid %u)", service, (unsigned)a->uid);
}

static void
on_app(uv_poll_t *p, int status, int events)
{
	struct app *a = p->data;
	char msg[CONTROL_MESSAGE_MAX];
	ssize_t n;

	if (status < 0 || (n = recv(a->fd, msg, sizeof(msg), MSG_DONTWAIT | MSG_TRUNC)) == 0 ||
	    (n < 0 && errno != EAGAIN && errno != EINTR) || n > (ssize_t)sizeof(msg)) {
		drop_app(a);
		return;
	}
	if (n > 0)
		handle_message(a, msg, (size_t)n);
}

static void
on_accept(uv_poll_t *p, int status, int events)
{
	struct control *ctl = p->data;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct app *a;
	int fd;

	while ((fd = accept4(ctl->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		if (ctl->napps >= CONTROL_CONNECTIONS_MAX ||
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
		    (a = calloc(1, sizeof(*a))) == NULL) {
			close(fd);
			continue;
		}
		a->ctl = ctl;
		a->fd = fd;
		a->uid = cred.uid;
		a->next = ctl->apps;
		ctl->apps = a;
		ctl->napps++;
		uv_poll_init(ctl->site->loop, &a->poll, fd);
		a->poll.data = a;
		uv_poll_start(&a->poll, UV_READABLE | UV_DISCONNECT, on_app);
	}
}

int
control_open(struct site *site)
{
	struct control *ctl;
	struct addr_spec a = {.kind = ADDR_UNIX};
	int fd;

	if (site->cfg->control_socket[0] == '\0')
		return 0;
	str_copy(a.path, site->cfg->control_socket, sizeof(a.path));
	if ((fd = priv_listen(site->priv, &a, PRIV_SOCKET_CONTROL)) < 0) {
		log_error("cannot open the control socket %s: %s", a.path, strerror(-fd));
		return -1;
	}
	if ((ctl = calloc(1, sizeof(*ctl))) == NULL) {
		close(fd);
		return -1;
	}
	ctl->site = site;
	ctl->fd = fd;
	uv_poll_init(site->loop, &ctl->poll, fd);
	ctl->poll.data = ctl;
	uv_poll_start(&ctl->poll, UV_READABLE, on_accept);
	site->control = ctl;
	log_info("control socket %s", a.path);
	return 0;
}

static void
free_control(uv_handle_t *h)
{
	struct control *ctl = h->data;

	close(ctl->fd);
	free(ctl);
}

void
control_close(struct site *site)
{
	struct control *ctl = site->control;

	if (ctl == NULL)
		return;
	while (ctl->apps != NULL)
		drop_app(ctl->apps);
	if (!site->priv->separated)
		unlink(site->cfg->control_socket);
	uv_close((uv_handle_t *)&ctl->poll, free_control);
	site->control = NULL;
}

/* The next registration for service after the last one used. */
static struct app *
next_app(struct control *ctl, const char *service, struct app *after)
{
	struct app *a, *start = after != NULL ? after->next : ctl->apps;

	for (a = start; a != NULL; a = a->next)
		if (strcmp(a->service, service) == 0)
			return a;
	for (a = ctl->apps; a != NULL && a != start; a = a->next)
		if (strcmp(a->service, service) == 0)
			return a;
	return NULL;
}

/* The stream as every application may hear of it: the first eight members. */
static void
describe(const struct backend_who *who, const char *service, struct control_stream *cs)
{
	memset(cs, 0, sizeof(*cs));
	str_copy(cs->session, who->session_id, sizeof(cs->session));
	str_copy(cs->service, service, sizeof(cs->service));
	str_copy(cs->vhost, who->vhost, sizeof(cs->vhost));
	str_copy(cs->auth_method, who->method, sizeof(cs->auth_method));
	cs->has_identity = who->identity != NULL;
	str_copy(cs->identity, who->identity != NULL ? who->identity : "", sizeof(cs->identity));
	cs->withheld = who->withheld;
	if (who->peer_shown) {
		str_copy(cs->remote_addr, who->peer_ip, sizeof(cs->remote_addr));
		cs->remote_port = who->peer_port;
	}
}

/* One STREAM message: with the members REGISTER asked for, or without. */
struct stream_msg {
	char text[CONTROL_MESSAGE_MAX];
	size_t len;
};

/* Sends a the STREAM message for who with the members it asked for, with fd attached.  0 or -1. */
static int
hand_over(struct app *a, const struct backend_who *who, const char *service, int fd)
{
	struct control_stream cs;
	struct stream_msg m;

	describe(who, service, &cs);
	if ((a->wants & CONTROL_WANTS_TRANSPORT) != 0)
		str_copy(cs.transport, who->transport, sizeof(cs.transport));
	cs.has_stream = (a->wants & CONTROL_WANTS_STREAM) != 0;
	cs.stream = who->stream;
	if (control_stream_encode(&cs, m.text, sizeof(m.text), &m.len) != 0)
		return -1;
	return io_send_with_fd(a->fd, m.text, m.len, fd, MSG_NOSIGNAL | MSG_DONTWAIT) ==
	                       (ssize_t)m.len
	               ? 0
	               : -1;
}

void
control_deliver(struct backend *b, const struct backend_who *who)
{
	struct control *ctl = b->site->control;
	struct app *a, *first;
	int sp[2];

	if (ctl == NULL || (first = next_app(ctl, b->svc->name, ctl->last_used)) == NULL) {
		backend_ready(b, UV_ECONNREFUSED);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
		backend_ready(b, UV_EMFILE);
		return;
	}
	/* An application whose queue is full is passed over for the next one. */
	for (a = first; hand_over(a, who, b->svc->name, sp[1]) != 0;) {
		a = next_app(ctl, b->svc->name, a);
		if (a == first) {
			close(sp[0]);
			close(sp[1]);
			backend_ready(b, UV_EAGAIN);
			return;
		}
	}
	ctl->last_used = a;
	close(sp[1]);
	backend_adopt(b, sp[0]);
}
