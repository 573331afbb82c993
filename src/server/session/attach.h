/*
 * ATTACH (docs/PROTOCOL.md section 12.5): a new connection takes over a
 * detachable session, detached or not, by its ticket.
 */
#ifndef FIVE_ATTACH_H
#define FIVE_ATTACH_H

struct cmd;
struct session;

/*
 * "ATTACH ticket received" on s: s adopts the session the ticket names
 * (its id, identity, streams) and goes on in framed mode after
 * "+ ATTACHED", or is refused and closed.  A wrong ticket counts as a
 * failed authentication of s's source.
 */
void attach_command(struct session *s, const struct cmd *c);

#endif
