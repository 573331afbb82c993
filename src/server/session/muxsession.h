/*
 * MULTIPLEX in a session (docs/PROTOCOL.md section 11): the session goes
 * into framed mode, and each stream its client opens is judged as a
 * service request of its own.
 */
#ifndef FIVE_MUXSESSION_H
#define FIVE_MUXSESSION_H

#include <stddef.h>

struct session;

/*
 * Sends reply[0..len) ("+ MULTIPLEX"), then frames both ways: what the
 * client sent behind its request is frames.
 */
void session_start_mux(struct session *s, const char *reply, size_t len);

/*
 * session_start_mux in two steps, for streams opened between them (USP's
 * initialize names its first streams): after the reply, framed mode;
 * returns 0, or -1 when the session ended.
 */
int session_enter_mux(struct session *s, const char *reply, size_t len);

/* ... then the frames the client sent behind its request, and its next ones. */
void session_mux_take_held(struct session *s);

#endif
