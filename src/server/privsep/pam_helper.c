/*
 * The PAM conversation, in a process of its own: fived runs itself as
 *
 *	fived --pam-helper SERVICE USER RHOST TIMEOUT_MS
 *
 * with a socket on descriptor 3, from the privileged side (the monitor, or
 * fived itself when it runs without privilege separation).  PAM modules
 * block and may need privilege; keeping them out of the network-facing
 * process means a stuck or hostile module costs one short-lived process.
 * The lines it exchanges are pamconv_* (src/proto/auth.h).
 */
#include "server/privsep/pam_helper.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "proto/auth.h"

#define CONV_MESSAGES_MAX 32 /* in one whole conversation */
#define PAM_HELPER_ARGC   6

struct conv_state {
	int fd;
	int timeout_ms;
	unsigned messages;
	char in[PAMCONV_LINE_MAX];
	size_t in_len;
};

static int
send_msg(struct conv_state *c, enum pamconv_kind kind, const char *text)
{
	struct pamconv_msg m;
	char line[PAMCONV_LINE_MAX];
	int n;

	memset(&m, 0, sizeof(m));
	m.kind = kind;
	str_copy(m.text, text != NULL ? text : "", sizeof(m.text));
	if ((n = pamconv_encode(&m, line, sizeof(line))) < 0)
		return -1;
	return write(c->fd, line, (size_t)n) == n ? 0 : -1;
}

/* Reads the answer line to a prompt, within the timeout. */
static int
read_answer(struct conv_state *c, struct pamconv_msg *m)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	char *nl;
	ssize_t n;
	int r;

	while ((nl = memchr(c->in, '\n', c->in_len)) == NULL) {
		if (c->in_len == sizeof(c->in))
			return -1;
		if ((r = poll(&pfd, 1, c->timeout_ms)) < 0 && errno == EINTR)
			continue;
		if (r <= 0 || (n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len)) <= 0)
			return -1;
		c->in_len += (size_t)n;
	}
	r = pamconv_parse(c->in, (size_t)(nl - c->in), m);
	c->in_len -= (size_t)(nl + 1 - c->in);
	memmove(c->in, nl + 1, c->in_len);
	return r == 0 && m->kind == PAMCONV_ANSWER ? 0 : -1;
}

static void
free_responses(struct pam_response *resp, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (resp[i].resp != NULL) {
			explicit_bzero(resp[i].resp, strlen(resp[i].resp));
			free(resp[i].resp);
		}
	}
	free(resp);
}

/* Answers one prompt: the client's reply, as a string PAM will free. */
static int
prompt(struct conv_state *c, const struct pam_message *msg, struct pam_response *resp)
{
	struct pamconv_msg answer;
	int r = -1;

	if (send_msg(c,
	             msg->msg_style == PAM_PROMPT_ECHO_OFF ? PAMCONV_PROMPT_ECHO_OFF
	                                                   : PAMCONV_PROMPT_ECHO_ON,
	             msg->msg) != 0 ||
	    read_answer(c, &answer) != 0)
		goto out;
	/* PAM wants a C string: an answer holding a NUL is not a password. */
	if (memchr(answer.answer, '\0', answer.answer_len) != NULL ||
	    (resp->resp = malloc(answer.answer_len + 1)) == NULL)
		goto out;
	memcpy(resp->resp, answer.answer, answer.answer_len);
	resp->resp[answer.answer_len] = '\0';
	r = 0;
out:
	explicit_bzero(&answer, sizeof(answer));
	return r;
}

static int
conversation(int n, const struct pam_message **msgs, struct pam_response **out, void *arg)
{
	struct conv_state *c = arg;
	struct pam_response *resp;
	int i, style;

	if (n <= 0 || n > CONV_MESSAGES_MAX || (c->messages += (unsigned)n) > CONV_MESSAGES_MAX)
		return PAM_CONV_ERR;
	if ((resp = calloc((size_t)n, sizeof(*resp))) == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		style = msgs[i]->msg_style;
		if (style == PAM_PROMPT_ECHO_OFF || style == PAM_PROMPT_ECHO_ON) {
			if (out == NULL || prompt(c, msgs[i], &resp[i]) != 0)
				goto fail;
		} else if (style == PAM_TEXT_INFO || style == PAM_ERROR_MSG) {
			if (send_msg(c, style == PAM_TEXT_INFO ? PAMCONV_INFO : PAMCONV_ERROR,
			             msgs[i]->msg) != 0)
				goto fail;
		} else {
			goto fail;
		}
	}
	/* Some modules pass no reply pointer for messages that need no answer. */
	if (out == NULL) {
		free_responses(resp, n);
		return PAM_SUCCESS;
	}
	*out = resp;
	return PAM_SUCCESS;
fail:
	free_responses(resp, n);
	return PAM_CONV_ERR;
}

/* The user PAM settled on, if it is one fived can hand to a service. */
static const char *
final_user(pam_handle_t *pamh)
{
	const void *item = NULL;

	if (pam_get_item(pamh, PAM_USER, &item) != PAM_SUCCESS || item == NULL ||
	    !auth_identity_valid(item))
		return NULL;
	return item;
}

int
pam_helper_main(int argc, char **argv)
{
	struct conv_state c = {.fd = PAM_HELPER_FD};
	struct pam_conv conv = {conversation, &c};
	pam_handle_t *pamh = NULL;
	const char *user = NULL;
	uint64_t timeout;
	int r;

	if (argc != PAM_HELPER_ARGC || parse_uint(argv[5], 3600 * 1000, &timeout) != 0 ||
	    !auth_user_valid(argv[3]))
		return 2;
	c.timeout_ms = (int)timeout;
	if (pam_start(argv[2], argv[3], &conv, &pamh) != PAM_SUCCESS) {
		send_msg(&c, PAMCONV_FAILURE, NULL);
		return 1;
	}
	if (argv[4][0] != '\0')
		pam_set_item(pamh, PAM_RHOST, argv[4]);
	r = pam_authenticate(pamh, PAM_DISALLOW_NULL_AUTHTOK);
	if (r == PAM_SUCCESS)
		r = pam_acct_mgmt(pamh, PAM_DISALLOW_NULL_AUTHTOK);
	if (r == PAM_SUCCESS)
		user = final_user(pamh);
	if (user != NULL)
		send_msg(&c, PAMCONV_SUCCESS, user);
	else
		send_msg(&c, PAMCONV_FAILURE, NULL);
	pam_end(pamh, r);
	return user != NULL ? 0 : 1;
}

void
pam_helper_argv(struct pam_helper_args *a, const char *self, const char *service, const char *user,
                const char *peer_ip, uint64_t timeout_ms)
{
	snprintf(a->timeout, sizeof(a->timeout), "%llu", (unsigned long long)timeout_ms);
	a->argv[0] = (char *)self;
	a->argv[1] = (char *)PAM_HELPER_FLAG;
	a->argv[2] = (char *)service;
	a->argv[3] = (char *)user;
	a->argv[4] = (char *)peer_ip;
	a->argv[5] = a->timeout;
	a->argv[6] = NULL;
}

/* The source a helper counts against: an IPv4 address, or an IPv6 address's /64. */
static void
source_of(const char *peer_ip, char out[ADDR_IP_MAX])
{
	struct in6_addr a6;

	if (inet_pton(AF_INET6, peer_ip, &a6) == 1) {
		memset(a6.s6_addr + 8, 0, 8);
		inet_ntop(AF_INET6, &a6, out, ADDR_IP_MAX);
		return;
	}
	str_copy(out, peer_ip[0] != '\0' ? peer_ip : "local", ADDR_IP_MAX);
}

struct pam_slot *
pam_slots_take(struct pam_slots *s, const char *peer_ip, uint64_t max, uint64_t per_source,
               const char **why)
{
	char source[ADDR_IP_MAX];
	struct pam_slot *free_slot = NULL;
	uint64_t same = 0;
	size_t i;

	source_of(peer_ip, source);
	for (i = 0; i < PAM_SLOTS_MAX; i++) {
		if (s->slot[i].id == 0) {
			if (free_slot == NULL)
				free_slot = &s->slot[i];
			continue;
		}
		if (strcmp(s->slot[i].source, source) == 0)
			same++;
	}
	if (s->used >= max || free_slot == NULL) {
		*why = "too many password authentications in progress";
		return NULL;
	}
	if (same >= per_source) {
		*why = "too many password authentications in progress from your address";
		return NULL;
	}
	str_copy(free_slot->source, source, sizeof(free_slot->source));
	free_slot->id = -1;
	s->used++;
	return free_slot;
}

void
pam_slots_release(struct pam_slots *s, long id)
{
	size_t i;

	for (i = 0; i < PAM_SLOTS_MAX; i++) {
		if (s->slot[i].id == id && id != 0) {
			s->slot[i].id = 0;
			s->used--;
			return;
		}
	}
}
