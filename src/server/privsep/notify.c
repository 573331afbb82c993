#include "server/privsep/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"

#ifdef FIVE_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define USEC_PER_MS     1000ULL
#define USEC_PER_SEC    1000000ULL
#define NOTIFY_LINE_MAX 64

static uint64_t watchdog_usec; /* WATCHDOG_USEC for this process, 0 when none */

#ifdef FIVE_HAVE_SYSTEMD

int
notify_init(void)
{
	uint64_t usec = 0;

	watchdog_usec = sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
	if (watchdog_usec > 0)
		log_info("systemd watchdog: WATCHDOG=1 every %llu ms while the service answers",
		         (unsigned long long)notify_watchdog_interval_ms());
	return 0;
}

/* A failure to notify is logged and otherwise ignored: systemd acts on the silence. */
static void
send_state(const char *state)
{
	int r = sd_notify(0, state);

	if (r < 0)
		log_warn("cannot notify systemd (%s): error %d", state, -r);
}

void
notify_reloading(void)
{
	char line[NOTIFY_LINE_MAX];
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(line, sizeof(line), "RELOADING=1\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * USEC_PER_SEC +
	                 (unsigned long long)ts.tv_nsec / USEC_PER_MS);
	send_state(line);
}

#else

/* Without libsystemd: starting under a systemd that waits to be told would only time out. */
int
notify_init(void)
{
	if (getenv("NOTIFY_SOCKET") == NULL && getenv("WATCHDOG_USEC") == NULL)
		return 0;
	log_error("systemd expects notifications (NOTIFY_SOCKET or WATCHDOG_USEC is set), but "
	          "this fived was built without libsystemd: use Type=simple and no WatchdogSec, "
	          "or build with libsystemd-dev");
	return -1;
}

static void
send_state(const char *state)
{
	(void)state;
}

void
notify_reloading(void)
{
}

#endif

void
notify_ready(void)
{
	send_state("READY=1");
}

void
notify_stopping(void)
{
	send_state("STOPPING=1");
}

uint64_t
notify_watchdog_interval_ms(void)
{
	uint64_t ms = watchdog_usec / 2 / USEC_PER_MS;

	return watchdog_usec > 0 && ms == 0 ? 1 : ms;
}

void
notify_watchdog(void)
{
	if (watchdog_usec > 0)
		send_state("WATCHDOG=1");
}

void
notify_forget(void)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}
