/*
 * One answer from several workers' (fived's `workers`): each worker
 * serves its own admin socket and knows only its own sessions and
 * counters.  Pure: no I/O.
 */
#ifndef FIVE_FIVECTL_MERGE_H
#define FIVE_FIVECTL_MERGE_H

#include <jansson.h>

#include "proto/admin.h"

/*
 * Adds worker's reply to command into into (a copy of the first
 * worker's): SESSIONS joins the lists and adds their counts; STATS and
 * GOVERNOR add numbers, but for difficulty, the highest, and a flag is
 * set when any worker's is.  Returns 0, or -1 when the two do not have
 * the same shape.
 */
int merge_reply(enum admin_command command, json_t *into, const json_t *worker);

#endif
