/*
 * five agent: a per-user process holding multiplexed sessions, one per
 * host, port, transport and identity, that five commands open their
 * streams on (OpenSSH's ControlMaster, for fived).  agentline.h is its
 * protocol; agentuse.c its client.
 */
#ifndef FIVE_CLI_AGENT_H
#define FIVE_CLI_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "five.h"

/* Sessions without a stream are closed after this long, unless --idle says otherwise. */
#define AGENT_IDLE_MS (10 * 60 * 1000)

/*
 * Starts an agent in the background and prints the shell lines that name
 * its socket; or, with stop, stops the running one and prints the line
 * that forgets it.  detachable: its sessions ask fived to outlive their
 * connections (docs/PROTOCOL.md section 12).  Returns 0, or -1 with err
 * filled.
 */
int cli_agent(bool stop, uint64_t idle_ms, bool detachable, struct five_error *err);

/*
 * Runs an agent in this process until five agent -k stops it (returning 0)
 * or SIGTERM does: on the socket systemd's socket activation handed over
 * (LISTEN_FDS), else on the one cli_agent_path names, which it makes and
 * removes when it stops.  Prints nothing.  Returns -1 with err filled when
 * it cannot start (another agent answers on the socket).
 */
int cli_agent_foreground(uint64_t idle_ms, bool detachable, struct five_error *err);

/* The agent's socket path into path[0..size), its directory made and checked.  0 or -1. */
int cli_agent_path(char *path, size_t size, struct five_error *err);

/* A connection to the agent at path, or -1. */
int cli_agent_dial(const char *path);

#endif
