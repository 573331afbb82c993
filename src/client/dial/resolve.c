/*
 * Name resolution that keeps to a timeout.  getaddrinfo can be neither
 * told a deadline nor stopped, so a name is looked up in a thread of its
 * own, which the caller waits for with a timed condition wait and, when
 * the time is up, leaves behind: the thread finishes the lookup alone and
 * frees the lookup, whoever of the two is last.  Not getaddrinfo_a: a
 * request it is working on cannot be cancelled either (gai_cancel answers
 * EAI_NOTCANCELED), its struct gaicb must then outlive the call, and
 * knowing when it may be freed takes a notification thread of glibc's
 * (SIGEV_THREAD): the same thread, with its ownership less plain.
 */
#include "client/dial/resolve.h"
#include "client/base/thread.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/base/error.h"
#include "common/util.h"

#define MS_PER_S  1000
#define NS_PER_MS 1000000L
#define NS_PER_S  1000000000L
/* A service is a port number here: "65535" and its NUL fit. */
#define PORT_TEXT_MAX 16

/* One lookup, shared by the caller and its thread until both are done with it. */
struct lookup {
	pthread_mutex_t lock;
	pthread_cond_t done_cond; /* on CLOCK_MONOTONIC */
	bool done;                /* the thread has answered */
	bool abandoned;           /* the caller has stopped waiting: the thread frees */
	five_resolver resolver;
	char host[NI_MAXHOST];
	char port[PORT_TEXT_MAX];
	struct addrinfo hints;
	struct addrinfo *res;
	int status;
};

static void
lookup_free(struct lookup *l)
{
	if (l->res != NULL)
		freeaddrinfo(l->res);
	pthread_cond_destroy(&l->done_cond);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

static void *
run_lookup(void *arg)
{
	struct lookup *l = arg;
	struct addrinfo *res = NULL;
	int status = l->resolver(l->host, l->port, &l->hints, &res);
	bool last;

	pthread_mutex_lock(&l->lock);
	l->res = res;
	l->status = status;
	l->done = true;
	last = l->abandoned;
	pthread_cond_signal(&l->done_cond);
	pthread_mutex_unlock(&l->lock);
	if (last)
		lookup_free(l);
	return NULL;
}

/* A lookup of host and port, not started; NULL when memory runs out. */
static struct lookup *
lookup_new(five_resolver resolver, const char *host, const char *port, const struct addrinfo *hints)
{
	struct lookup *l = calloc(1, sizeof(*l));
	pthread_condattr_t attr;

	if (l == NULL)
		return NULL;
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&l->done_cond, &attr);
	pthread_condattr_destroy(&attr);
	l->resolver = resolver;
	str_copy(l->host, host, sizeof(l->host));
	str_copy(l->port, port, sizeof(l->port));
	l->hints = *hints;
	return l;
}

/* The lookup's thread, detached and taking no signals (they are the application's). */
static int
start(struct lookup *l)
{
	return five_thread_start(run_lookup, l, NULL);
}

/* CLOCK_MONOTONIC's now, plus ms. */
static struct timespec
after_ms(int ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / MS_PER_S;
	t.tv_nsec += (long)(ms % MS_PER_S) * NS_PER_MS;
	if (t.tv_nsec >= NS_PER_S) {
		t.tv_sec++;
		t.tv_nsec -= NS_PER_S;
	}
	return t;
}

/* Waits for l's answer until timeout_ms have passed.  Returns whether it came. */
static bool
wait_answer(struct lookup *l, int timeout_ms)
{
	struct timespec deadline = after_ms(timeout_ms);
	bool done;

	pthread_mutex_lock(&l->lock);
	while (!l->done && pthread_cond_timedwait(&l->done_cond, &l->lock, &deadline) == 0)
		;
	done = l->done;
	l->abandoned = !done;
	pthread_mutex_unlock(&l->lock);
	return done;
}

/* A name: looked up in a thread, waited for at most timeout_ms. */
static int
resolve_name(five_resolver resolver, const char *host, const char *port,
             const struct addrinfo *hints, int timeout_ms, struct addrinfo **res,
             struct five_error *err)
{
	struct lookup *l;
	int status;

	if (strlen(host) >= NI_MAXHOST || strlen(port) >= PORT_TEXT_MAX)
		return five_fail(err, FIVE_ERR_RESOLVE, "%.64s...: name too long", host);
	if ((l = lookup_new(resolver, host, port, hints)) == NULL)
		return five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
	if (start(l) != 0) {
		lookup_free(l);
		return five_fail(err, FIVE_ERR_SYSTEM, "cannot start a resolver thread");
	}
	/* Abandoned, l is the thread's to free from now on. */
	if (!wait_answer(l, timeout_ms))
		return five_fail(err, FIVE_ERR_RESOLVE, "%s: timed out after %d ms", host,
		                 timeout_ms);
	status = l->status;
	*res = l->res;
	l->res = NULL;
	lookup_free(l);
	if (status != 0)
		return five_fail(err, FIVE_ERR_RESOLVE, "%s: %s", host, gai_strerror(status));
	return 0;
}

int
five_resolve(five_resolver resolver, const char *host, const char *port,
             const struct addrinfo *hints, int timeout_ms, struct addrinfo **res,
             struct five_error *err)
{
	struct addrinfo numeric = *hints;
	int status;

	*res = NULL;
	/* An address asks nothing of the network: no thread, no wait. */
	numeric.ai_flags |= AI_NUMERICHOST;
	if ((status = resolver(host, port, &numeric, res)) == 0)
		return 0;
	if (status != EAI_NONAME)
		return five_fail(err, FIVE_ERR_RESOLVE, "%s: %s", host, gai_strerror(status));
	return resolve_name(resolver, host, port, hints, timeout_ms, res, err);
}
