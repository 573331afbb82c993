/*
 * A session's moves between states: every pair is listed, so that a move
 * added to or taken from the table is a decision this test has to follow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/session/state.h"

/* Row: from; a column per destination, in enum order; 1 where the move is allowed. */
static const char moves[S_COUNT][S_COUNT + 1] = {
        /*               D H C A W N R M T L K X */
        [S_DETECT] = "111001000111",    [S_HANDSHAKE] = "011000000111",
        [S_COMMAND] = "011111010111",   [S_AUTH] = "001110000111",
        [S_AUTH_WAIT] = "001110000111", [S_CONNECTING] = "000001100111",
        [S_RELAY] = "000000100101",     [S_MUX] = "000000011101",
        [S_DETACHED] = "000000001001",  [S_LINGER] = "000000000101",
        [S_DARK] = "000000000011",      [S_CLOSED] = "000000000001",
};

static void
test_every_move(void **state)
{
	unsigned from, to;

	for (from = 0; from < S_COUNT; from++)
		for (to = 0; to < S_COUNT; to++) {
			bool want = moves[from][to] == '1';

			if (session_state_allowed(from, to) != want)
				fail_msg("%s -> %s: %s expected", session_state_name(from),
				         session_state_name(to), want ? "allowed" : "refused");
		}
}

static void
test_nothing_outside_the_states(void **state)
{
	assert_false(session_state_allowed(S_COUNT, S_CLOSED));
	assert_false(session_state_allowed(S_COMMAND, S_COUNT));
	assert_string_equal(session_state_name(S_COUNT), "unknown");
	assert_string_equal(session_state_name(S_HANDSHAKE), "handshake");
}

/* Whatever happened, a session can always be closed, and nothing leaves CLOSED. */
static void
test_every_state_can_close(void **state)
{
	unsigned s;

	for (s = 0; s < S_COUNT; s++) {
		assert_true(session_state_allowed(s, S_CLOSED));
		if (s != S_CLOSED)
			assert_false(session_state_allowed(S_CLOSED, s));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_every_move),
	        cmocka_unit_test(test_nothing_outside_the_states),
	        cmocka_unit_test(test_every_state_can_close),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
