/*
 * Socket activation (sd_listen_fds(3)): listening sockets systemd made
 * and handed to fived, used instead of binding.  Each must be one that a
 * listen entry names, so that a socket unit and the configuration cannot
 * silently disagree on where fived serves.
 */
#ifndef FIVE_ACTIVATION_H
#define FIVE_ACTIVATION_H

#include "server/conf/config.h"
#include "server/privsep/privops.h"

/*
 * How many descriptors systemd handed to this process (from
 * SD_LISTEN_FDS_START on), 0 when none: called before fived closes the
 * descriptors it did not open.  Returns -1 (logged) when it was handed
 * some and was built without libsystemd.
 */
int activation_count(void);

/*
 * Adopts the n handed descriptors as st's listening sockets, each under
 * the listen entry of cfg with its address, and logs each; the worker
 * then gets them as it would a socket fived bound.  Returns 0, or -1
 * (logged, naming it) when one is not a listening stream socket or no
 * listen entry names its address.
 */
int activation_adopt(struct priv_state *st, const struct config *cfg, int n);

#endif
