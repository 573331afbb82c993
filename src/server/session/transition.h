/*
 * Transition on the same port (docs/PROTOCOL.md section 1.1): with
 * legacy_ssh, legacy_http or legacy_tls set, a plain connection's first
 * bytes are looked at before any dialect reads them; those of an older
 * protocol's client go, exactly as they came, to that protocol's backend.
 */
#ifndef FIVE_SESSION_TRANSITION_H
#define FIVE_SESSION_TRANSITION_H

#include <stdbool.h>
#include <uv.h>

struct session;

/*
 * The longest fived waits for the first bytes to say what they are,
 * within request_timeout: then they are fived's.  An SSH, HTTP or TLS
 * client sends its first line or hello at once.
 */
#define TRANSITION_DECIDE_MS 3000

/* Whether a session of this configuration looks at its first bytes. */
bool transition_wanted(const struct session *s);

/* Starts looking, with TRANSITION_DECIDE_MS to decide (on s->timer). */
void transition_watch(struct session *s);

/*
 * Client bytes (or the end, or an error) while looking: held in s->in,
 * charged to the relay budget, and decided on as soon as they can be.
 */
void transition_input(struct session *s, ssize_t nread, const uv_buf_t *buf);

#endif
