/*
 * ATTACH (docs/PROTOCOL.md section 12.5): a new connection takes over a
 * detachable session, detached or not, by its ticket.
 */
#ifndef FIVE_ATTACH_H
#define FIVE_ATTACH_H

struct cmd;
struct proxy_in;
struct session;

/*
 * "ATTACH ticket received" on s: s adopts the session the ticket names
 * (its id, identity, streams) and goes on in framed mode after
 * "+ ATTACHED", or is refused and closed.  A wrong ticket counts as a
 * failed authentication of s's source.
 */
void attach_command(struct session *s, const struct cmd *c);

/*
 * With several workers, s's ATTACH was passed on to the worker that holds
 * its session (its ticket's first byte), as a backend: reached (err 0)
 * or not.
 */
void attach_passed_on(struct session *s, int err);

/*
 * s comes from another worker passing on its client's ATTACH: its PROXY
 * header h (whose bytes are s's held input) names what carries the
 * client and the identity it proved.  Returns 0, or -1 when it does not.
 */
int attach_from_worker(struct session *s, const struct proxy_in *h);

#endif
