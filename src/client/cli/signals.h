/*
 * How SIGHUP, SIGTERM and SIGINT (and SIGPIPE, standard output's reader
 * gone) end five without passing a cut stream off as a whole one.  A
 * plain stream has no end of its own but TCP's, and the kernel ends a
 * killed process's connections in order: five resets every TCP
 * connection it still holds (to fived, and -L's) before the signal ends
 * it.  While a relay or a forwarder runs, the signals stop it instead,
 * so that streams end in the protocol's own way first.  A signal ignored
 * when five started (nohup, a background job's SIGINT) stays ignored.
 */
#ifndef FIVE_CLI_SIGNALS_H
#define FIVE_CLI_SIGNALS_H

#include <stdbool.h>

/* From now on the signals end five at once, its TCP connections reset. */
void cli_signals_end_at_once(void);

/*
 * From now on the signals stop what polls the returned descriptor: it
 * becomes readable, with a byte relay.h's stop_fd reads
 * (RELAY_STOP_AT_END for SIGHUP when hangup_gently, RELAY_STOP_NOW
 * otherwise).  ssh sends SIGHUP to its ProxyCommand as it exits, just
 * after closing its standard input: gently, that session still ends in
 * order.  Returns -1 when no pipe can be made (the signals then end five
 * at once).
 */
int cli_signals_catch(bool hangup_gently);

/* In a child just forked: its own pipe when it catches, none shared with its parent. */
void cli_signals_after_fork(void);

/*
 * After a signal was caught: five ends by it, silently, with its TCP
 * connections still open reset.  Returns when none was.
 */
void cli_signals_die_if_caught(void);

#endif
