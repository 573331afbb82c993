/*
 * What a text-dialect command asks for, decided without I/O: from the
 * parsed command and what the session has established (struct
 * command_view), a verdict and the reply text.  text.c carries verdicts
 * out; the unit tests check them directly.
 */
#ifndef FIVE_COMMAND_H
#define FIVE_COMMAND_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/line.h"
#include "server/conf/config.h"

struct caller;

/* What the session has established, as the decision needs it. */
struct command_view {
	const struct config *cfg;
	const struct vhost *vhost;   /* chosen by HOST, or NULL */
	const struct caller *caller; /* the identity, or NULL */
	bool encrypted;              /* sealed or TLS */
	bool auth_usable;            /* AUTH has a method usable now */
	bool signkey_usable;         /* GETSIGNKEY has a provider name to give */
};

enum command_verdict {
	VERDICT_REPLY,     /* send text and read on */
	VERDICT_FINISH,    /* send text as the last reply, then close */
	VERDICT_REFUSE,    /* refuse with reason (the session ends) */
	VERDICT_GRANT,     /* start svc */
	VERDICT_HOST,      /* vhost is chosen: send text */
	VERDICT_HOST_ASK,  /* send text (the vhosts), then take the next line as a vhost name */
	VERDICT_AUTH,      /* begin the AUTH exchange of the command */
	VERDICT_TLS,       /* send text ("+ SUCCESS"), then TLS */
	VERDICT_TOKEN,     /* the TOKEN command */
	VERDICT_MULTIPLEX, /* send text ("+ MULTIPLEX"), then frames */
	VERDICT_PROVE,     /* the PROVEAUTH command */
	VERDICT_SIGNKEY,   /* the GETSIGNKEY command */
	VERDICT_ATTACH,    /* ATTACH: go on with a detachable session (attach.c) */
	VERDICT_NO_MEMORY, /* the reply could not be built */
};

struct command_decision {
	enum command_verdict verdict;
	const char *reason; /* VERDICT_REFUSE: static */
	char *text;         /* the reply for the verbs that send one; malloc'd, or NULL */
	size_t len;
	const struct service *svc; /* VERDICT_GRANT */
	const struct vhost *vhost; /* VERDICT_HOST */
};

/*
 * Decides what c asks for, seen from v.  A SERVICE with a token is
 * decided as if the token's identity were v->caller: the caller checks
 * the token first.  Free d with command_decision_free.
 */
void command_decide(const struct command_view *v, const struct cmd *c, struct command_decision *d);

/*
 * Decides the line a client sends after a bare HOST listed the vhosts:
 * one vhost name, decided as "HOST name" would be (VERDICT_HOST or
 * VERDICT_REFUSE).  Free d with command_decision_free.
 */
void command_decide_host_name(const struct command_view *v, const char *line,
                              struct command_decision *d);

/* Frees the reply text.  Safe on a decision never made (zeroed). */
void command_decision_free(struct command_decision *d);

/* Whether TLS may start now: not inside another encryption, not after AUTH. */
bool command_tls_usable(const struct command_view *v);

#endif
