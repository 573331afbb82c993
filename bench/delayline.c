/*
 * delayline: a wide-area link between two network namespaces, for kernels
 * without the netem qdisc.
 *
 *   delayline -a NETNS:IFNAME -b NETNS:IFNAME [-d MS] [-q PACKETS] [-r]
 *
 * Creates a TUN device in each namespace, prints "ready" once both exist,
 * and from then on passes every IP packet read from one device to the other
 * after holding it DELAY milliseconds (14 by default): first in, first out,
 * nothing dropped.  While a direction's queue is full the device it reads
 * from is not read, so the kernel's own device queue holds the excess.  The
 * caller configures addresses and routes.  SIGUSR1 prints what it carried
 * since the last report and how late it was to standard error; SIGTERM or
 * SIGINT prints the same and exits, and the devices go with it.
 *
 * -r asks for SCHED_FIFO so that a busy CPU delays packets as little as
 * possible; the process sleeps between packets, so it never holds the CPU.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define DEFAULT_DELAY_MS 14
#define DEFAULT_QUEUE    8192
#define QUEUE_MAX        65536
#define SLOT_BYTES       2048 /* above the TUN MTU the bench sets (1500) */
#define NETNS_DIR        "/run/netns/"
#define PATH_BYTES       256
#define FIFO_PRIORITY    10
#define TIMER_SLACK_NS   1000
#define NS_PER_MS        1000000LL
#define READS_PER_WAKE   64 /* one device cannot starve the other */

struct slot {
	int64_t due;
	uint16_t len;
	unsigned char data[SLOT_BYTES];
};

struct queue {
	struct slot *slots;
	size_t cap, head, count;
	uint64_t packets, bytes, max_depth;
	int64_t max_late, total_late;
};

struct end {
	const char *netns;
	const char *ifname;
	int fd;
};

static volatile sig_atomic_t stop, want_report;

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_report = 1;
	else
		stop = sig;
}

/* Opens a TUN device named e->ifname inside network namespace e->netns. */
static int
open_tun(struct end *e)
{
	char path[PATH_BYTES];
	struct ifreq ifr;
	int nsfd, fd = -1;

	snprintf(path, sizeof(path), NETNS_DIR "%s", e->netns);
	if ((nsfd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "delayline: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (setns(nsfd, CLONE_NEWNET) != 0) {
		fprintf(stderr, "delayline: setns %s: %s\n", e->netns, strerror(errno));
		goto out;
	}
	if ((fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
		fprintf(stderr, "delayline: /dev/net/tun: %s\n", strerror(errno));
		goto out;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", e->ifname);
	if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
		fprintf(stderr, "delayline: TUNSETIFF %s in %s: %s\n", e->ifname, e->netns,
		        strerror(errno));
		close(fd);
		fd = -1;
	}
out:
	close(nsfd);
	e->fd = fd;
	return fd < 0 ? -1 : 0;
}

static int
parse_end(char *arg, struct end *e)
{
	char *colon = strchr(arg, ':');

	if (colon == NULL || colon == arg || colon[1] == '\0' || strlen(colon + 1) >= IFNAMSIZ)
		return -1;
	*colon = '\0';
	e->netns = arg;
	e->ifname = colon + 1;
	return 0;
}

/* Reads what src has, up to the room in q, stamping each packet now + delay. */
static void
take(int src, struct queue *q, int64_t delay)
{
	int i;

	for (i = 0; i < READS_PER_WAKE && q->count < q->cap; i++) {
		struct slot *s = &q->slots[(q->head + q->count) % q->cap];
		ssize_t n = read(src, s->data, sizeof(s->data));

		if (n <= 0)
			return;
		s->len = (uint16_t)n;
		s->due = now_ns() + delay;
		q->count++;
		if (q->count > q->max_depth)
			q->max_depth = q->count;
	}
}

/* Writes every packet whose time has come to dst. */
static void
give(int dst, struct queue *q)
{
	int64_t now = now_ns();

	while (q->count > 0 && q->slots[q->head].due <= now) {
		struct slot *s = &q->slots[q->head];
		int64_t late = now - s->due;

		/* A TUN write hands the packet to the stack: it does not block. */
		if (write(dst, s->data, s->len) == (ssize_t)s->len) {
			q->packets++;
			q->bytes += s->len;
		}
		if (late > q->max_late)
			q->max_late = late;
		q->total_late += late;
		q->head = (q->head + 1) % q->cap;
		q->count--;
		now = now_ns();
	}
}

static void
report(const char *name, struct queue *q)
{
	fprintf(stderr,
	        "delayline: %s: %llu packets, %llu bytes, max queue %llu, late by at most %.3f ms, "
	        "%.3f ms on average\n",
	        name, (unsigned long long)q->packets, (unsigned long long)q->bytes,
	        (unsigned long long)q->max_depth, (double)q->max_late / NS_PER_MS,
	        q->packets > 0 ? (double)q->total_late / (double)q->packets / NS_PER_MS : 0.0);
	q->packets = q->bytes = q->max_depth = 0;
	q->max_late = q->total_late = 0;
}

static void
usage(void)
{
	fprintf(stderr,
	        "usage: delayline -a NETNS:IFNAME -b NETNS:IFNAME [-d MS] [-q PACKETS] [-r]\n");
}

int
main(int argc, char **argv)
{
	struct end a = {.fd = -1}, b = {.fd = -1};
	struct queue ab = {0}, ba = {0};
	struct sigaction sa;
	int64_t delay = DEFAULT_DELAY_MS * NS_PER_MS;
	long qcap = DEFAULT_QUEUE;
	int c, realtime = 0, status = 1;

	while ((c = getopt(argc, argv, "a:b:d:q:r")) != -1) {
		switch (c) {
		case 'a':
		case 'b':
			if (parse_end(optarg, c == 'a' ? &a : &b) != 0) {
				usage();
				return 2;
			}
			break;
		case 'd':
			delay = (int64_t)(strtod(optarg, NULL) * NS_PER_MS);
			break;
		case 'q':
			qcap = strtol(optarg, NULL, 10);
			break;
		case 'r':
			realtime = 1;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (a.netns == NULL || b.netns == NULL || delay < 0 || qcap < 1 || qcap > QUEUE_MAX) {
		usage();
		return 2;
	}
	ab.cap = ba.cap = (size_t)qcap;
	ab.slots = calloc(ab.cap, sizeof(struct slot));
	ba.slots = calloc(ba.cap, sizeof(struct slot));
	if (ab.slots == NULL || ba.slots == NULL) {
		fprintf(stderr, "delayline: out of memory\n");
		goto out;
	}
	if (open_tun(&a) != 0 || open_tun(&b) != 0)
		goto out;
	prctl(PR_SET_TIMERSLACK, TIMER_SLACK_NS, 0, 0, 0);
	if (realtime) {
		struct sched_param sp = {.sched_priority = FIFO_PRIORITY};
		if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
			fprintf(stderr, "delayline: SCHED_FIFO: %s (carrying on)\n",
			        strerror(errno));
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	printf("ready\n");
	fflush(stdout);

	while (!stop) {
		struct pollfd pfd[2] = {{.fd = -1}, {.fd = -1}};
		struct timespec ts, *tp = NULL;
		int64_t next = INT64_MAX, wait;

		if (want_report) {
			want_report = 0;
			report("a->b", &ab);
			report("b->a", &ba);
		}

		give(b.fd, &ab);
		give(a.fd, &ba);
		if (ab.count > 0)
			next = ab.slots[ab.head].due;
		if (ba.count > 0 && ba.slots[ba.head].due < next)
			next = ba.slots[ba.head].due;
		if (next != INT64_MAX) {
			wait = next - now_ns();
			if (wait < 0)
				wait = 0;
			ts.tv_sec = (time_t)(wait / NS_PER_S);
			ts.tv_nsec = (long)(wait % NS_PER_S);
			tp = &ts;
		}
		if (ab.count < ab.cap)
			pfd[0] = (struct pollfd){.fd = a.fd, .events = POLLIN};
		if (ba.count < ba.cap)
			pfd[1] = (struct pollfd){.fd = b.fd, .events = POLLIN};
		if (ppoll(pfd, 2, tp, NULL) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "delayline: ppoll: %s\n", strerror(errno));
			goto out;
		}
		if (pfd[0].revents & POLLIN)
			take(a.fd, &ab, delay);
		if (pfd[1].revents & POLLIN)
			take(b.fd, &ba, delay);
	}
	report("a->b", &ab);
	report("b->a", &ba);
	status = 0;
out:
	if (a.fd >= 0)
		close(a.fd);
	if (b.fd >= 0)
		close(b.fd);
	free(ab.slots);
	free(ba.slots);
	return status;
}
