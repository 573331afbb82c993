/*
 * libfive's own threads (a relay, a name lookup, a multiplexed session's
 * engine): they take no signals, which are the application's to handle.
 */
#ifndef FIVE_CLIENT_BASE_THREAD_H
#define FIVE_CLIENT_BASE_THREAD_H

#include <pthread.h>
#include <stdbool.h>

/*
 * Starts fn(arg) on a thread with every signal blocked: detached, or
 * joinable with its id in *joinable when that is not NULL.  Returns 0,
 * or -1 when no thread could be made.
 */
int five_thread_start(void *(*fn)(void *), void *arg, pthread_t *joinable);

#endif
