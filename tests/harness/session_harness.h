/*
 * Whole server sessions, in-process: a worker set up as the daemon sets
 * one up unprivileged (server_start with privops answering in-process),
 * and, per case, one connection handed to session_accept as the listener
 * hands it over, a client's bytes written to it (fixed, or answering
 * what the server sent), and what came back.  Linked into the cmocka test
 * of sessions and into the session fuzz targets.  Not thread-safe: one
 * worker per process.
 */
#ifndef FIVE_TESTS_SESSION_HARNESS_H
#define FIVE_TESTS_SESSION_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest close reason kept from the audit log. */
#define HARNESS_REASON_MAX 128

/* A session id as the audit log and USP messages show it. */
#define HARNESS_SID_MAX 64

/* What a case keeps of the client's output; more is read and dropped. */
#define HARNESS_OUTPUT_MAX (1024 * 1024)

/* A sealed handshake's static keys (X25519). */
#define HARNESS_KEY_LEN 32

/* The identity authorized_clients gives the known client (harness_known_client). */
#define HARNESS_KNOWN_IDENTITY "known"

/* Client bytes written as one write(2), before the loop runs again. */
struct harness_piece {
	const void *data;
	size_t len;
};

struct harness_result {
	char *out; /* what the client received, NUL after out_len bytes; malloc'd */
	size_t out_len;
	size_t out_dropped; /* received past HARNESS_OUTPUT_MAX */
	bool eof;           /* the server ended the client's stream */
	bool ended;         /* the session was gone before the harness closed the client */
	bool forced;        /* it outlived the client's close and was closed by the harness */
	char *audit;        /* the audit lines the case wrote; malloc'd */
	char sid[HARNESS_SID_MAX];        /* the session's id, or "" */
	char reason[HARNESS_REASON_MAX];  /* its "closed" record's reason, or "" */
	char refused[HARNESS_REASON_MAX]; /* its last "refused" record's reason, or "" */
};

/*
 * Sets up the worker once per process: a temporary directory with the
 * configuration's key, TLS and audit files, the configuration (a built-in
 * echo, discard and daytime, "secret" with auth = required, a vhost), and
 * server_start on the harness's loop.  Later calls do nothing.  Returns 0,
 * or -1 after logging why.
 */
int harness_init(void);

/*
 * Runs one session: writes each of the n pieces to a new connection in
 * turn, running the loop until nothing more happens after each, shuts the
 * client's write side if shut, waits again, then closes the client and
 * runs the loop until the session is freed.  The loop runs a bounded number
 * of rounds and time per phase.  Fills res (free it with
 * harness_result_free).  Returns 0, or -1 if the session or its handles
 * outlived everything, or the site's counters did not come back (a leak).
 */
int harness_run(const struct harness_piece *pieces, size_t n, bool shut,
                struct harness_result *res);

/*
 * A client that answers the server: after each phase, next sees what the
 * server has sent so far (sofar: out, out_len, eof; the rest is not filled
 * yet) and sets the next piece, or returns false when it has no more.  It
 * must end: the harness asks as long as it answers.
 */
struct harness_dialog {
	bool (*next)(void *arg, const struct harness_result *sofar, struct harness_piece *piece);
	void *arg;
	bool shut;   /* the client ends its stream after its last piece */
	bool loaded; /* the governor as under load: initiations without cookie and work get a COOKIE
	              */
};

/* As harness_run, with the pieces from d. */
int harness_run_dialog(const struct harness_dialog *d, struct harness_result *res);

/* The worker's sealed-handshake public key (after harness_init). */
void harness_server_key(uint8_t pk[HARNESS_KEY_LEN]);

/* The secret key of the client authorized_clients lists as HARNESS_KNOWN_IDENTITY. */
void harness_known_client(uint8_t sk[HARNESS_KEY_LEN]);

/* Frees what harness_run filled; a zeroed result is a no-op. */
void harness_result_free(struct harness_result *res);

/* Stops the worker, closes its loop and removes the temporary directory. */
void harness_cleanup(void);

#endif
