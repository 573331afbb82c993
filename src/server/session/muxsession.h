/*
 * MULTIPLEX in a session (docs/PROTOCOL.md section 11): the session goes
 * into framed mode, and each stream its client opens is judged as a
 * service request of its own.
 */
#ifndef FIVE_MUXSESSION_H
#define FIVE_MUXSESSION_H

#include <stddef.h>

struct session;

/* Sends reply[0..len) ("+ MULTIPLEX"), then frames both ways; what the client sent behind its line is frames. */
void session_start_mux(struct session *s, const char *reply, size_t len);

#endif
