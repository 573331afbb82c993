/*
 * Telling systemd how fived is doing (sd_notify(3)): ready, reloading,
 * stopping, and the watchdog.  Only the process systemd started talks to
 * it, the monitor, or fived alone without privilege separation; a child
 * forgets the protocol's variables before it runs anything, so that the
 * worker, PAM helpers and programs cannot speak for fived.
 *
 * Built without libsystemd, every call is a no-op, and notify_init
 * refuses to start under a systemd that expects to be told.
 */
#ifndef FIVE_NOTIFY_H
#define FIVE_NOTIFY_H

#include <stdint.h>

/*
 * Reads the environment systemd set (NOTIFY_SOCKET, WATCHDOG_USEC).
 * Returns 0, or -1 (logged) when systemd expects notifications that this
 * build cannot send.
 */
int notify_init(void);

/* READY=1: fived serves (at start, and when a reload is done). */
void notify_ready(void);

/* RELOADING=1 with MONOTONIC_USEC: a reload starts; notify_ready ends it. */
void notify_reloading(void);

/* STOPPING=1: fived was asked to stop. */
void notify_stopping(void);

/* How often to send WATCHDOG=1 (half of WATCHDOG_USEC), in ms; 0 when there is no watchdog. */
uint64_t notify_watchdog_interval_ms(void);

/* WATCHDOG=1: the service is alive and answering. */
void notify_watchdog(void);

/* In a child about to exec: the variables above are unset. */
void notify_forget(void);

#endif
