#include "client/base/thread.h"

#include <signal.h>

int
five_thread_start(void *(*fn)(void *), void *arg, pthread_t *joinable)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;
	int r;

	sigfillset(&all);
	if (pthread_attr_init(&attr) != 0)
		return -1;
	if (joinable == NULL)
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* The new thread inherits the mask in force as it is made. */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(joinable != NULL ? joinable : &t, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return r == 0 ? 0 : -1;
}
