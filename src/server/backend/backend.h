/*
 * Reaching a granted service's backend: connecting to a TCP or Unix socket
 * (trying each address of a name in turn), running a program per
 * connection, starting a built-in service, or handing the connection to a
 * registered application.  The backend reports up only through the events
 * it was given: reached or not (exactly once per backend_start), and each
 * of its handles and requests done after backend_close.
 */
#ifndef FIVE_BACKEND_H
#define FIVE_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

#include "common/addr.h"
#include "server/conf/config.h"

struct site;

union backend_handle {
	uv_handle_t handle;
	uv_stream_t stream;
	uv_tcp_t tcp;
	uv_pipe_t pipe;
};

struct backend_events {
	/* The backend is reached (err 0: handle is open) or not (a libuv error). */
	void (*ready)(void *owner, int err);
	/* One of the handles or requests backend_close counted is done. */
	void (*closed)(void *owner);
};

/* Who a stream serves, as far as its backend may learn it. */
struct backend_who {
	const char *session_id;
	uint32_t stream;    /* the stream inside a multiplexed session; 0: the session's only one */
	const char *vhost;  /* "" for none */
	const char *method; /* how the caller authenticated (auth_method_name) */
	const char *transport; /* how the client's session is carried: "plain", "sealed", "tls" */
	const char *identity;  /* NULL: none, or withheld from this service */
	bool withheld;         /* there is an identity, withheld from this service */
	bool peer_shown;       /* the client's address may be shown: the fields below */
	const char *peer_ip;
	uint16_t peer_port;
	const struct sockaddr *local;
	const char *parameters; /* exec: a USP stream's, checked against the service; NULL: none */
};

struct child;

/* A stream's backend.  Lives inside its owner; handle.data is the owner. */
struct backend {
	union backend_handle h; /* valid while open */
	bool open;
	bool reset;   /* close with a TCP reset, not an end of stream; a program is killed */
	bool waiting; /* started, and ready not called yet */
	bool closed;  /* backend_close was called: a second call counts nothing */
	bool resolving;
	bool retrying; /* a failed address's handle is closing, to try the next */
	uv_connect_t connect_req;
	uv_getaddrinfo_t resolve_req;
	struct addrinfo *candidates, *next_candidate;
	struct site *site;
	const struct service *svc;
	const char *id; /* the session's, for log lines */
	const struct backend_events *ev;
	void *owner;
	uint64_t program;    /* an exec service's program the monitor runs (its id), or 0 */
	struct child *child; /* one this process runs, while it does; not owned */
	pid_t group;         /* its process group, while one of it may run, or 0 */
};

/* Prepares b for svc, for the session id (which outlives b); nothing is started. */
void backend_init(struct backend *b, struct site *site, const struct service *svc, const char *id,
                  const struct backend_events *ev, void *owner);

/* Starts reaching the backend, for who; ends in exactly one ev->ready (maybe before returning). */
void backend_start(struct backend *b, const struct backend_who *who);

/*
 * Stops b: cancels what is in progress and closes its handle (with a
 * reset if b->reset and it is TCP).  Returns how many ev->closed calls
 * will follow.  ev->ready is not called after it.  Safe more than once,
 * and on a backend never started (zeroed).
 */
unsigned backend_close(struct backend *b);

/* Frees what b keeps after its close (the resolved addresses). */
void backend_free(struct backend *b);

/* For the kinds of backend (control.c): the end of the attempt, told the owner once. */
void backend_ready(struct backend *b, int err);

/* For the kinds of backend: fd, connected (taken over), is the backend; ready follows. */
void backend_adopt(struct backend *b, int fd);

#endif
