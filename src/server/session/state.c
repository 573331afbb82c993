#include "server/session/state.h"

#include <stdint.h>

#include "common/util.h"

#define TO(s) (1u << (s))

/* Where a session may go from each state.  Any state but CLOSED may end at once. */
#define ENDS (TO(S_LINGER) | TO(S_CLOSED))

static const uint16_t allowed[S_COUNT] = {
        /*
         * A plain first byte, an end before any, or a handshake; a dark server holds
         * strangers; a legacy protocol's first bytes go to its backend.
         */
        [S_DETECT] = TO(S_COMMAND) | TO(S_HANDSHAKE) | TO(S_CONNECTING) | TO(S_DARK) | ENDS,
        [S_HANDSHAKE] = TO(S_COMMAND) | TO(S_DARK) | ENDS,
        /* TLS after a plain LIST: a handshake again. */
        [S_COMMAND] = TO(S_AUTH) | TO(S_AUTH_WAIT) | TO(S_CONNECTING) | TO(S_HANDSHAKE) |
                      TO(S_MUX) | TO(S_DARK) | ENDS,
        [S_AUTH] = TO(S_AUTH_WAIT) | TO(S_COMMAND) | TO(S_DARK) | ENDS,
        [S_AUTH_WAIT] = TO(S_AUTH) | TO(S_COMMAND) | TO(S_DARK) | ENDS,
        [S_CONNECTING] = TO(S_RELAY) | TO(S_DARK) | ENDS,
        /* An ATTACH passed on to a worker that never answers is answered and lingers. */
        [S_RELAY] = TO(S_LINGER) | TO(S_CLOSED),
        /* A detachable session whose connection broke waits, and only ends from there. */
        [S_MUX] = TO(S_DETACHED) | ENDS,
        [S_DETACHED] = TO(S_CLOSED),
        [S_LINGER] = TO(S_CLOSED),
        [S_DARK] = TO(S_CLOSED),
        [S_CLOSED] = 0,
};

static const char *const names[S_COUNT] = {
        [S_DETECT] = "detect", [S_HANDSHAKE] = "handshake", [S_COMMAND] = "command",
        [S_AUTH] = "auth",     [S_AUTH_WAIT] = "auth-wait", [S_CONNECTING] = "connecting",
        [S_RELAY] = "relay",   [S_MUX] = "multiplex",       [S_DETACHED] = "detached",
        [S_LINGER] = "linger", [S_DARK] = "dark",           [S_CLOSED] = "closed",
};

const char *
session_state_name(enum session_state state)
{
	return (unsigned)state < ARRAY_LEN(names) ? names[state] : "unknown";
}

bool
session_state_allowed(enum session_state from, enum session_state to)
{
	if ((unsigned)from >= S_COUNT || (unsigned)to >= S_COUNT)
		return false;
	return from == to || (allowed[from] & TO(to)) != 0;
}
