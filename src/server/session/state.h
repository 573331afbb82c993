/*
 * A session's states and the moves between them.  Pure: the table is
 * checked by session_set_state, and by the unit tests directly.
 */
#ifndef FIVE_SESSION_STATE_H
#define FIVE_SESSION_STATE_H

#include <stdbool.h>

enum session_state {
	S_DETECT,     /* waiting for the first bytes: sealed, TLS, a plain dialect, or legacy */
	S_HANDSHAKE,  /* a sealed or TLS handshake is under way */
	S_COMMAND,    /* reading requests */
	S_AUTH,       /* reading the lines of an authentication exchange */
	S_AUTH_WAIT,  /* an exchange waits (PAM, a penalty delay); input is held */
	S_CONNECTING, /* a service was chosen; its backend is being reached */
	S_RELAY,      /* bytes flow both ways */
	S_MUX,        /* framed: streams inside the session (MULTIPLEX) */
	S_DETACHED,   /* framed and detachable, its connection broken: waits for an ATTACH */
	S_LINGER,     /* a final reply is on its way; input is read and discarded */
	S_DARK,       /* a stranger to a dark server: told nothing, held until its deadline */
	S_CLOSED,     /* handles are closing; freed after the last close callback */
	S_COUNT
};

/* The state's name, for log lines. */
const char *session_state_name(enum session_state state);

/* Whether a session may move from one state to the other (staying is always allowed). */
bool session_state_allowed(enum session_state from, enum session_state to);

#endif
