#include "client/cli/shared.h"

#include <stdio.h>
#include <unistd.h>

#include "client/cli/signals.h"
#include "client/mux/mux.h"
#include "five.h"

/* Runs on the session's engine thread: says why a stream fived ended. */
static void
on_end(void *arg, uint32_t id, const char *service, bool refused, const char *reason)
{
	const struct cli_request *req = arg;

	if (reason == NULL)
		return;
	fprintf(stderr, "five: -L %s %s: stream %u: %s: %s\n", req->host, service, (unsigned)id,
	        refused ? "refused" : "reset", reason);
}

void
shared_reap(struct shared *sh)
{
	size_t i;

	for (i = 0; i < SHARED_RETIRED_MAX; i++) {
		if (sh->retired[i] != NULL && mux_streams_open(sh->retired[i]) == 0) {
			five_session_close(sh->retired[i]);
			sh->retired[i] = NULL;
		}
	}
}

void
shared_close(struct shared *sh)
{
	size_t i;

	five_session_close(sh->current);
	sh->current = NULL;
	for (i = 0; i < SHARED_RETIRED_MAX; i++) {
		five_session_close(sh->retired[i]);
		sh->retired[i] = NULL;
	}
}

/* The current session stops taking streams; those it has go on to their end. */
static void
retire(struct shared *sh)
{
	size_t i;

	for (i = 0; i < SHARED_RETIRED_MAX && sh->current != NULL; i++) {
		if (sh->retired[i] == NULL) {
			sh->retired[i] = sh->current;
			sh->current = NULL;
		}
	}
	/* No room: its streams are cut short. */
	five_session_close(sh->current);
	sh->current = NULL;
}

/* A session that takes streams, opened if need be.  Returns 0, or -1 with err filled. */
static int
session(struct shared *sh, struct five_error *err)
{
	if (sh->current != NULL && mux_usable(sh->current))
		return 0;
	if (sh->current != NULL)
		retire(sh);
	shared_reap(sh);
	/* Opening blocks, up to the timeout: meanwhile a signal ends five at once. */
	cli_signals_end_at_once();
	sh->current = five_session_open(sh->req->host, &sh->req->opts, err);
	cli_signals_catch(false);
	if (sh->current == NULL)
		return -1;
	mux_on_end(sh->current, on_end, (void *)sh->req);
	mux_on_resume(sh->current, cli_on_resume, (void *)sh->req->host);
	return 0;
}

bool
shared_take(struct shared *sh, int conn)
{
	const struct cli_request *req = sh->req;
	struct five_error err;

	if (sh->fallback)
		return false;
	if (session(sh, &err) != 0 && err.step == FIVE_ERR_REFUSED) {
		/* Any refusal of MULTIPLEX: a session per connection says why, if it fails too. */
		fprintf(stderr,
		        "five: -L %s: no multiplexed session (%s): one session per connection\n",
		        req->host, err.message);
		sh->fallback = true;
		return false;
	}
	if (sh->current == NULL) {
		fprintf(stderr, "five: -L %s %s: %s: %s\n", req->host, req->service,
		        five_step_name(err.step), err.message);
		close(conn);
		return true;
	}
	if (mux_attach(sh->current, conn, req->service, NULL, 0, false, 0, &err) == 0)
		fprintf(stderr, "five: -L %s %s: %s: %s\n", req->host, req->service,
		        five_step_name(err.step), err.message);
	return true;
}
