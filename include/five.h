/*
 * libfive: reach a service on a host by its name, through fived.
 *
 *	struct five_error err;
 *	int fd = five_connect("db.example.org", "postgres", NULL, &err);
 *	if (fd < 0)
 *		fprintf(stderr, "%s: %s\n", five_step_name(err.step), err.message);
 *
 * What is written to the descriptor returned reaches the service, what the
 * service sends can be read from it.  A plain session's descriptor is the
 * TCP connection to fived itself.  A sealed or TLS session's (sealed is
 * the default) is one end of a loopback TCP connection (IPv4), whose other
 * end a thread of libfive relays to and from the encrypted connection:
 * getpeername says 127.0.0.1, a stream cut short (its service failed,
 * fived's worker died, the connection broke) reads as a reset
 * (ECONNRESET) after the bytes that came before it, as on TCP, and after
 * fork() only the process that connected has the relay (a child should
 * close the descriptor).
 *
 * Threads.  libfive has no global state and keeps none between calls:
 * any function may be called from any thread, concurrently with any
 * other, on distinct objects (listeners, descriptors, errors, identities,
 * token buffers; options and what they point to may be shared while
 * nobody changes them).  One object is not for two calls at once: two
 * five_accept on one listener, say.  Callbacks (a five_auth's ask, a
 * five_options' notice) run in the thread that made the call.  What
 * threads share is the process's: the environment, which libfive reads
 * (HOME, FIVE_KNOWN_HOSTS, FIVE_IDENTITY_FILE, FIVE_ASKPASS,
 * SSH_AUTH_SOCK, FIVE_CONTROL_SOCKET; do not change it while a call
 * runs); the files it names (calls that pin one server's key at once may
 * each add its line; five's identity made at once is made once); and the
 * terminal, where password prompts of concurrent calls without ask would
 * interleave.  libfive's own threads, the relay of a sealed or TLS
 * session and a name lookup left to finish alone when its time was up,
 * block every signal: signals stay the application's.
 */
#ifndef FIVE_H
#define FIVE_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Marks libfive's public functions: libfive is built with every other
 * symbol hidden, so that only these can be reached from outside it (and
 * none of its internals can collide with an application's own names).
 */
#if defined(__GNUC__)
#define FIVE_EXPORT __attribute__((visibility("default")))
#else
#define FIVE_EXPORT
#endif

/* fived's port: TCPMUX (RFC 1078). */
#define FIVE_PORT "1"

/*
 * Where fived's built-in configuration listens when it may not bind port 1.
 * Without an explicit port, the client tries FIVE_PORT, then this one.
 */
#define FIVE_FALLBACK_PORT "5501"

/* A request or reply line, with its CRLF. */
#define FIVE_LINE_MAX 512

#define FIVE_DEFAULT_TIMEOUT_MS 10000

/* Which step failed.  New steps are appended: the values above never change. */
enum five_step {
	FIVE_OK = 0,
	FIVE_ERR_SYSTEM,   /* a local failure: memory, descriptors */
	FIVE_ERR_USAGE,    /* an invalid argument */
	FIVE_ERR_RESOLVE,  /* the host name could not be resolved, or not in time */
	FIVE_ERR_CONNECT,  /* no address of the host accepted a connection */
	FIVE_ERR_REFUSED,  /* fived refused the request; message is its reason */
	FIVE_ERR_PROTOCOL, /* the answer was not the protocol, or came too late */
	/*
	 * This side does not trust the server (sealed, TLS): no key is pinned
	 * for it and trust_on_first_use is off, or it showed another key than
	 * the one pinned or given.  The request reached no server but the one
	 * trusted (it went, if at all, sealed to the key pinned or given).
	 */
	FIVE_ERR_TRUST,
	/*
	 * fived said the service lives elsewhere (docs/PROTOCOL.md section
	 * 2.13) and it was not followed: opts->no_redirect is set, a redirect
	 * came after FIVE_REDIRECTS_MAX in a row, or the call does not follow
	 * redirects (five_await).  message is then exactly "HOST PORT
	 * SERVICE", where fived sent the client: nothing was sent there.  A
	 * stream of a multiplexed session (five_session_stream) is reset
	 * instead, with the reason "redirect": ask with five_connect.
	 */
	FIVE_ERR_REDIRECT,
};

/*
 * Redirects five_connect (and five_connect_early, five_connect_start)
 * follows in a row; one more fails with FIVE_ERR_REDIRECT.
 */
#define FIVE_REDIRECTS_MAX 3

/*
 * Why a call failed.  Every function taking one accepts NULL: a failure
 * is then not reported (the return value still says that it failed).
 */
struct five_error {
	enum five_step step;
	char message[FIVE_LINE_MAX];
};

/*
 * Authentication before the request (fived's AUTH command).  pubkey signs
 * fived's challenge with an OpenSSH Ed25519 key: the key file, or else
 * every Ed25519 key ssh-agent holds ($SSH_AUTH_SOCK), then
 * ~/.ssh/id_ed25519.  An encrypted key file is used through ssh-agent.
 * password answers fived's PAM prompts with ask.
 */
struct five_auth {
	const char *methods;  /* "pubkey", "password" or "pubkey,password"; NULL: "pubkey" */
	const char *user;     /* NULL: the login name */
	const char *key_file; /* NULL: ssh-agent's keys, then ~/.ssh/id_ed25519 */
	/*
	 * Answers a prompt (echo: whether the answer may be shown) into
	 * answer[0..size), NUL-terminated.  Returns 0, or -1 to give up.
	 * NULL: run $FIVE_ASKPASS with the prompt as argument if set, else
	 * ask on /dev/tty.
	 */
	int (*ask)(void *arg, const char *prompt, int echo, char *answer, size_t size);
	void *ask_arg;
};

/*
 * How to reach fived.  Set up with five_options_init before setting any
 * member; a function given NULL options uses the defaults.
 */
struct five_options {
	/*
	 * sizeof(struct five_options) where the application was compiled, as
	 * five_options_init sets it: libfive reads no member beyond it, so
	 * that a program keeps working with a later libfive whose options
	 * have grown.  Any other value is FIVE_ERR_USAGE, and so are options
	 * set beyond the end of this libfive's own struct.
	 */
	size_t size;
	const char *port;             /* NULL: FIVE_PORT, then FIVE_FALLBACK_PORT */
	const char *vhost;            /* NULL: no HOST command */
	int timeout_ms;               /* resolve+connect, each reply; 0: FIVE_DEFAULT_TIMEOUT_MS */
	int family;                   /* AF_UNSPEC (0), AF_INET or AF_INET6 */
	const struct five_auth *auth; /* NULL: no authentication */
	int transport;                /* FIVE_SEALED (the default), FIVE_PLAIN or FIVE_TLS */
	const char *server_key;       /* sealed: the server's key (base64), not known_hosts */
	const char *known_hosts;      /* NULL: $FIVE_KNOWN_HOSTS, ~/.config/five/known_hosts */
	/*
	 * Sealed, TLS: a server whose key is neither pinned in known_hosts nor
	 * given is FIVE_ERR_TRUST, and known_hosts is not written.  Set to 1,
	 * its key is pinned there (the file and its directory made if need
	 * be) and notice is told so, as five(1) does.
	 */
	int trust_on_first_use;
	const char *tls_certificate; /* TLS: a client certificate to present (PEM); NULL: none */
	const char *tls_key;         /* TLS: its key (PEM, unencrypted); NULL: in tls_certificate */
	/*
	 * A token (docs/PROTOCOL.md section 9), from five_issue_token or
	 * handed over by whoever obtained one: five_connect and
	 * five_connect_early (and five_request) ask for the service as
	 * "SERVICE TOKEN", reaching it as the token's identity without
	 * authenticating.  Printable characters of a token only
	 * ([A-Za-z0-9_.-]), and short enough for the request line
	 * (FIVE_LINE_MAX with the service's name), else FIVE_ERR_USAGE.  A
	 * token replaces authentication: auth must then be NULL.  NULL: none.
	 */
	const char *token;
	/*
	 * Told what the user should hear of although nothing failed, as one
	 * line of text: that trust_on_first_use pinned the key of a server
	 * met for the first time ("new host HOST:PORT, key SHA256:..., pinned
	 * in PATH"), that five's identity was made ("five's identity made in
	 * PATH").  Called in the calling thread before the function returns,
	 * whether it then succeeds or not; text lasts for the call only.
	 * NULL: nobody is told.
	 */
	void (*notice)(void *arg, const char *text);
	void *notice_arg;
	/*
	 * five_session_open: 1 asks fived to make the session detachable
	 * (docs/PROTOCOL.md section 12), in the same round trip as
	 * MULTIPLEX; five_session_open returns once fived has answered.
	 * When the connection breaks (an error, a reset, an end without the
	 * session's proper end, or no frame from fived for 30 seconds) the
	 * session's engine attaches again over a new connection to the same
	 * host and port, with the same transport and TLS certificate; a
	 * sealed server must prove the key the first one proved, a TLS one
	 * the key pinned or given (no first-use pinning then).  Nothing is
	 * authenticated again: fived's ticket, kept in memory only, proves
	 * the session.  It retries with a delay doubling from 100 ms to 5 s
	 * until fived's detach timeout has passed since the break.  No
	 * stream byte is lost or repeated either way: the streams'
	 * descriptors stay open and see only a pause.  A session not
	 * attached again in time, or that fived refuses for good ("unknown
	 * session", "not permitted", "resume point lost"), fails as any
	 * other, with that reason, and its streams are reset.
	 * five_session_close while it attaches again waits for the try under
	 * way (at most the session's timeout); the session fived holds
	 * detached then ends at its detach timeout.  A fived that refuses to
	 * make the session detachable serves it all the same, not
	 * detachable: notice is told why, and five_session_detachable says
	 * 0.  five_connect and five_connect_early (and five_connect_start)
	 * fail with FIVE_ERR_USAGE when it is set: one stream outside framed
	 * mode cannot be resumed.  The other calls ignore it.  0: not
	 * detachable.
	 */
	int detachable;
	/*
	 * five_connect, five_connect_early and five_connect_start follow a
	 * redirect (docs/PROTOCOL.md section 2.13): to a server fived named,
	 * up to FIVE_REDIRECTS_MAX in a row, asking again with early, each
	 * new server's key checked against known_hosts as a server named by
	 * the caller would be (trust_on_first_use as set, or off when
	 * server_key was given: the caller wanted no first-use trust).  What was meant
	 * for the first server is not sent to another: not server_key, not
	 * token, not vhost, and no password (auth keeps its pubkey method
	 * only, whose signature covers the new server's own challenge).
	 * notice is told of each redirect followed.  Set to 1, a redirect is
	 * FIVE_ERR_REDIRECT instead.  0: follow.
	 */
	int no_redirect;
	/*
	 * Plain TCPMUX (transport FIVE_PLAIN): a password is not sent where
	 * anyone on the path reads it, whatever the server offers (a server
	 * in the middle would offer it): the password method is then
	 * FIVE_ERR_REFUSED, and the next method in auth->methods is tried.
	 * Set to 1, it is sent, for a fived configured with
	 * allow_plaintext_password on a path the caller trusts.  0: refused.
	 */
	int password_in_clear;
	/* New members are appended here: the offsets above never move. */
};

/* How a session is carried. */
enum five_transport {
	FIVE_SEALED = 0, /* the sealed handshake (Noise), the server's key pinned */
	FIVE_PLAIN = 1,  /* plain TCPMUX, unencrypted */
	FIVE_TLS = 2,    /* TLS 1.3, the server's key pinned */
};

/* Zeroes opts, which sets every option to its default, and sets opts->size.  NULL: a no-op. */
FIVE_EXPORT void five_options_init(struct five_options *opts);

/* A short name for a step ("resolve", "connect", ...). */
FIVE_EXPORT const char *five_step_name(enum five_step step);

/*
 * Connects to host (trying every address, IPv6 and IPv4 raced Happy
 * Eyeballs style) and asks for service.  Returns a connected descriptor the
 * caller owns, or -1 with err filled.  opts may be NULL for defaults.
 *
 * A sealed or TLS session is relayed to the descriptor, one end of a
 * loopback connection (see the top of this file), by a thread of libfive, which
 * ends the session's stream cleanly (FINAL, close_notify) when the caller
 * ends its side, and ends once both directions have ended.  It does not
 * outlive the process: end your side with shutdown(fd, SHUT_WR) before
 * waiting for the service's end of stream, which then reaches you only
 * after the session's own end has gone.  At exit (exit(3), a return from
 * main) libfive gives the relays whose descriptor was shut down or closed
 * up to half a second to send their end; a process that ends otherwise
 * (_exit, a signal), or with its side still open, leaves fived a
 * truncated stream.  The other way, a stream cut short reads as a reset
 * (ECONNRESET), never as an end of file.
 */
FIVE_EXPORT int five_connect(const char *host, const char *service, const struct five_options *opts,
                             struct five_error *err);

/*
 * Like five_connect, but sends early (len bytes, may be 0) right after the
 * request line in the same write: the service receives it first.  If the
 * request is refused, fived discards it.
 */
FIVE_EXPORT int five_connect_early(const char *host, const char *service,
                                   const struct five_options *opts, const void *early, size_t len,
                                   struct five_error *err);

/*
 * The steps of a plain TCPMUX session (RFC 1078, unencrypted), for an
 * application that drives them itself: five_dial, five_authenticate when
 * it authenticates, five_request, five_await; the descriptor then carries
 * the service's bytes.  They never encrypt: opts->transport must be
 * FIVE_PLAIN (so opts may not be NULL, whose transport is FIVE_SEALED),
 * else each fails with FIVE_ERR_USAGE before anything is sent.  A sealed
 * or TLS session is five_connect's.
 */

/* The network part only: a TCP connection to fived on host.  Returns a descriptor or -1. */
FIVE_EXPORT int five_dial(const char *host, const struct five_options *opts,
                          struct five_error *err);

/*
 * Writes the request for service on fd (with HOST first when opts->vhost),
 * followed by early bytes, in one write.  Returns 0 or -1.
 */
FIVE_EXPORT int five_request(int fd, const char *service, const struct five_options *opts,
                             const void *early, size_t len, struct five_error *err);

/*
 * Authenticates on fd as opts->auth says (nothing when it is NULL).
 * pubkey needs the server's key in opts->server_key: in the clear, the
 * signature names the server it is for.  Returns 0 once fived has
 * confirmed the identity, or -1 with err filled (FIVE_ERR_REFUSED: no
 * key or answer was accepted).
 */
FIVE_EXPORT int five_authenticate(int fd, const struct five_options *opts, struct five_error *err);

/*
 * Reads the answers to five_request, one byte at a time so that nothing
 * after them is consumed.  Returns 0 when the service is granted, -1
 * otherwise (FIVE_ERR_REFUSED with fived's reason in err->message).
 */
FIVE_EXPORT int five_await(int fd, const struct five_options *opts, struct five_error *err);

/* Room for any token five_issue_token returns, with its NUL. */
#define FIVE_TOKEN_SIZE 2048

/*
 * Authenticates to fived on host as opts->auth says (it must not be NULL)
 * and asks for a token for service (docs/PROTOCOL.md section 9.2): bound
 * to bind, a client address or prefix ("192.0.2.7", "2001:db8::/48"), so
 * that only a connection from there can use it (NULL: any address);
 * living ttl_s seconds (0: the server's token_ttl).  The token is for
 * opts->vhost when it is set.  Writes the token, NUL-terminated, into
 * token[0..size) (FIVE_TOKEN_SIZE is enough) and returns 0; or returns -1
 * with err filled: FIVE_ERR_REFUSED with fived's reason ("not
 * permitted", "invalid address", "invalid lifetime", ...) or the
 * authentication's, FIVE_ERR_USAGE for invalid arguments or a token
 * longer than size, the other steps as for five_connect.
 */
FIVE_EXPORT int five_issue_token(const char *host, const char *service, const char *bind,
                                 unsigned long ttl_s, const struct five_options *opts, char *token,
                                 size_t size, struct five_error *err);

/*
 * Proofs of identity (docs/PROTOCOL.md section 13, PROVEAUTH): the user
 * proves to a consumer the identity its session with fived authenticated,
 * without fived learning who the consumer is.  The consumer gives the user
 * a nonce (FIVE_PROOF_NONCE_MIN to FIVE_PROOF_NONCE_MAX bytes, random) and
 * its own name (1 to FIVE_PROOF_CONSUMER_MAX bytes); the user asks fived
 * with five_prove and hands the proof to the consumer, who checks it with
 * five_verify_proof and fived's signing key.
 */
#define FIVE_PROOF_SIZE         1025 /* any proof, with its NUL */
#define FIVE_PROOF_NONCE_MIN    16
#define FIVE_PROOF_NONCE_MAX    255
#define FIVE_PROOF_CONSUMER_MAX 255
#define FIVE_SIGN_KEY_SIZE      45  /* the key in base64, with its NUL */
#define FIVE_PROVIDER_SIZE      254 /* a provider's name, with its NUL */

/*
 * Authenticates to fived on host as opts->auth says (NULL: only a sealed
 * or TLS handshake that authenticated this client) and asks for a proof of
 * that identity for the consumer's nonce[0..nonce_len) and consumer name.
 * fived's signing key (GETSIGNKEY) is pinned as a server key is
 * (opts->trust_on_first_use; the pin is known_hosts' "HOST:PORT/sign",
 * PORT opts->port or FIVE_PORT) and the proof is verified with it before
 * it is returned.  Writes the proof, NUL-terminated, into proof[0..size)
 * (FIVE_PROOF_SIZE is enough) and, when key is not NULL, the signing key
 * into key[0..FIVE_SIGN_KEY_SIZE).  Returns 0, or -1 with err filled:
 * FIVE_ERR_REFUSED with fived's reason ("authentication required", "not
 * permitted: a token does not prove an identity"), FIVE_ERR_TRUST for a
 * signing key that is not the one pinned (or none pinned and
 * trust_on_first_use off), FIVE_ERR_PROTOCOL for a proof that does not
 * verify, FIVE_ERR_USAGE for invalid arguments, the other steps as for
 * five_connect.
 */
FIVE_EXPORT int five_prove(const char *host, const void *nonce, size_t nonce_len,
                           const char *consumer, const struct five_options *opts, char *proof,
                           size_t size, char *key, struct five_error *err);

/* What a proof says, once five_verify_proof has accepted it. */
struct five_proof {
	char identity[65];                 /* as fived's session authenticated it */
	char method[16];                   /* "pubkey", "password" or "external" */
	char provider[FIVE_PROVIDER_SIZE]; /* the provider's name (iss) */
	long long issued_at, expires_at;   /* Unix seconds */
};

/*
 * What a consumer runs: verifies proof as made by the provider whose
 * signing key is key (44 characters of base64, as GETSIGNKEY and fived
 * --print-sign-key give it) for its own nonce[0..nonce_len) and name
 * consumer, now.  Returns 0 with *out filled, or -1 with err filled
 * (FIVE_ERR_REFUSED, the message saying why: "signed by another key
 * (another provider)", "bad signature", "made for another challenge (wrong
 * consumer or wrong nonce)", "expired", ...; FIVE_ERR_USAGE for invalid
 * arguments).  Does no I/O.
 */
FIVE_EXPORT int five_verify_proof(const char *key, const void *nonce, size_t nonce_len,
                                  const char *consumer, const char *proof, struct five_proof *out,
                                  struct five_error *err);

/*
 * The services host shows to this client.  On success returns 0 and sets
 * *names to a NULL-terminated array of *count strings, freed with
 * five_free_names.  Returns -1 with err filled otherwise.
 */
FIVE_EXPORT int five_list(const char *host, const struct five_options *opts, char ***names,
                          size_t *count, struct five_error *err);

FIVE_EXPORT void five_free_names(char **names);

/*
 * The application side.  Instead of fived connecting to a backend, a local
 * program registers a service name over fived's control socket and then
 * receives each granted stream of that service as a descriptor, with who
 * is calling.  The program binds no port.
 *
 *	struct five_error err;
 *	struct five_identity who;
 *	struct five_listener *l = five_listen("myapp", &err);
 *	int fd;
 *
 *	five_identity_init(&who);
 *	while (l != NULL && (fd = five_accept(l, &who, &err)) >= 0) {
 *		serve(fd, &who);
 *		close(fd);
 *	}
 *
 * Closing the listener unregisters the name.
 */

/* A registration; opaque. */
struct five_listener;

/*
 * What fived says about the caller of one stream.  Every string is
 * NUL-terminated.  Set up with five_identity_init before five_accept
 * fills it.
 */
struct five_identity {
	/*
	 * sizeof(struct five_identity) where the application was compiled, as
	 * five_identity_init sets it: five_accept writes no member beyond it,
	 * so that a later libfive, whose identity has grown, writes nothing
	 * past the application's struct.
	 */
	size_t size;
	char session[33];     /* fived's session id, 32 hex digits */
	char service[65];     /* the service as fived configures it */
	char vhost[254];      /* the virtual host the client named, or "" */
	char identity[65];    /* the authenticated user; "" when none or withheld */
	char auth_method[16]; /* "none", "pubkey", "password", "token" or "external" */
	int withheld;         /* 1: the caller authenticated, but the service hides who */
	char remote_addr[46]; /* the client's IPv4 or IPv6 address; "" on a Unix socket */
	unsigned remote_port;
	/*
	 * The stream's id within a multiplexed session (MULTIPLEX, odd, from
	 * 1); 0 when the session carries this one stream.
	 */
	unsigned stream;
	/*
	 * 1: the client's session with fived was encrypted (sealed or TLS),
	 * as fived says; 0: plain TCPMUX.  What fived's side of the stream
	 * (the descriptor) carries is local either way.
	 */
	int encrypted;
	/* New members are appended here: the offsets above never move. */
};

/* Zeroes id and sets id->size.  NULL: a no-op. */
FIVE_EXPORT void five_identity_init(struct five_identity *id);

/*
 * Registers service with fived through the control socket named by the
 * environment variable FIVE_CONTROL_SOCKET, or "/run/fived/control.sock"
 * when it is unset or empty (or the program runs set-user-ID).  See
 * five_listen_at.
 */
FIVE_EXPORT struct five_listener *five_listen(const char *service, struct five_error *err);

/*
 * Connects to fived's control socket at control_path and registers service.
 * Waits for fived's answer for at most FIVE_DEFAULT_TIMEOUT_MS.  Returns a
 * listener the caller frees with five_listener_close, or NULL with err
 * filled: FIVE_ERR_USAGE for an invalid name or path, FIVE_ERR_CONNECT
 * when the socket cannot be reached, FIVE_ERR_REFUSED with fived's reason,
 * FIVE_ERR_PROTOCOL for an answer that is not the protocol or none in
 * time, FIVE_ERR_SYSTEM otherwise.
 */
FIVE_EXPORT struct five_listener *five_listen_at(const char *control_path, const char *service,
                                                 struct five_error *err);

/*
 * Like five_listen_at over fd, an already connected SOCK_SEQPACKET control
 * connection (one a supervisor passed down, say).  fd belongs to the
 * listener from then on: it is closed on failure and by
 * five_listener_close.
 */
FIVE_EXPORT struct five_listener *five_listen_fd(int fd, const char *service,
                                                 struct five_error *err);

/*
 * Blocks until fived hands over the next stream.  Returns its descriptor,
 * which the caller owns, and fills *id (when id is not NULL; it must have
 * been set up by five_identity_init, else FIVE_ERR_USAGE before any
 * stream is taken); or returns -1 with err filled, *id emptied, and every
 * descriptor that came with the message closed.
 * FIVE_ERR_CONNECT ("fived closed the control socket") and
 * FIVE_ERR_REFUSED (fived's reason for ending the registration) mean the
 * registration is gone: close the listener, and listen again to register
 * anew.  After FIVE_ERR_PROTOCOL (a malformed message, or a STREAM without
 * exactly one descriptor) the listener stays usable.  FIVE_ERR_SYSTEM for
 * a local failure.
 */
FIVE_EXPORT int five_accept(struct five_listener *l, struct five_identity *id,
                            struct five_error *err);

/*
 * The control connection's descriptor, for poll() and the like: readable
 * means five_accept will not block.  Do not read from it, nor close it.
 */
FIVE_EXPORT int five_listener_fd(const struct five_listener *l);

/* Closes the control connection, which unregisters the name, and frees l.  NULL is a no-op. */
FIVE_EXPORT void five_listener_close(struct five_listener *l);

/*
 * Multiplexed sessions (docs/PROTOCOL.md section 11, MULTIPLEX): one
 * connection to fived, encrypted and authenticated once, carrying many
 * streams, each a service request granted or refused on its own and
 * opened without a round trip of its own.
 *
 *	struct five_error err;
 *	struct five_session *s = five_session_open("db.example.org", NULL, &err);
 *	int a = five_session_stream(s, "postgres", NULL, 0, &err);
 *	int b = five_session_stream(s, "redis", NULL, 0, &err);
 *	...
 *	close(a);
 *	close(b);
 *	five_session_close(s);
 *
 * Threads: a session runs one thread of libfive, its engine, which moves
 * every stream's bytes.  five_session_stream and five_session_request
 * may be called from several threads at once on one session;
 * five_session_close must not run while any other call on the session
 * does, nor may any follow it.  Descriptors returned are the caller's,
 * to use from any thread.
 */

/*
 * Connecting from an event loop (libuv, epoll, poll), without blocking it:
 * five_connect_early's work (name lookup, connect, handshake, request)
 * runs on a thread of libfive, and five_pending_fd becomes readable once
 * it is done.
 *
 *	struct five_pending *p = five_connect_start(host, "db", &o, NULL, 0, &err);
 *	... wait in the loop until five_pending_fd(p) is readable ...
 *	int fd = five_connect_finish(p, &err);
 *
 * host, service, opts and what opts points to must stay valid until
 * five_connect_finish or five_connect_cancel (early is copied);
 * opts->auth->ask and opts->notice run on libfive's thread.  Returns NULL
 * with err filled when no thread could be started.
 */
struct five_pending;
FIVE_EXPORT struct five_pending *five_connect_start(const char *host, const char *service,
                                                    const struct five_options *opts,
                                                    const void *early, size_t len,
                                                    struct five_error *err);

/* The descriptor that becomes readable once the connect is done: poll it, do not read it. */
FIVE_EXPORT int five_pending_fd(const struct five_pending *p);

/*
 * The connect's result, as five_connect_early returns it (waiting for it
 * if it is not done yet), and frees p.
 */
FIVE_EXPORT int five_connect_finish(struct five_pending *p, struct five_error *err);

/*
 * Gives the connect up and frees p: one that is still under way finishes
 * on its thread, which then closes what it got.  NULL is a no-op.
 */
FIVE_EXPORT void five_connect_cancel(struct five_pending *p);

/* A multiplexed session; opaque. */
struct five_session;

/*
 * Dials host, makes the transport's handshake and authenticates as
 * five_connect does (opts as for five_connect; opts->vhost is the
 * session's virtual host, opts->token goes with every stream), then asks
 * for MULTIPLEX and starts the session's engine.  Returns the session,
 * closed with five_session_close, or NULL with err filled: the steps of
 * five_connect, and FIVE_ERR_REFUSED "command not supported" from a
 * fived that does not multiplex (then five_connect each stream instead).
 */
FIVE_EXPORT struct five_session *
five_session_open(const char *host, const struct five_options *opts, struct five_error *err);

/*
 * Opens a stream to service on s with early (len bytes, may be 0) as its
 * first data, sent in the same frame as the request (as far as the flow
 * control windows allow): no round trip comes before it.  Waits for
 * fived's answer (at most the session's timeout).  Returns the caller's
 * end of a socketpair the engine relays to the stream: shutdown(fd,
 * SHUT_WR) ends the stream's input (a FIN), the service's end shows as end
 * of file; a stream fived resets (its backend failed, the session ended)
 * shows as end of file too (unlike five_connect's: a socketpair has no
 * reset).  Or returns -1
 * with err filled: FIVE_ERR_REFUSED with fived's reason ("unknown
 * service", "not permitted", "too many streams", "the server takes no
 * new streams" after its GOAWAY), FIVE_ERR_PROTOCOL when no answer came
 * in time (the stream is then cancelled), the session's own error once
 * it has failed.
 */
FIVE_EXPORT int five_session_stream(struct five_session *s, const char *service, const void *early,
                                    size_t len, struct five_error *err);

/*
 * Messages, not streams: sends request (len bytes) to service on s and
 * ends the stream's input at once, then reads the reply into
 * reply[0..size) until the service ends its side, within timeout_ms for
 * the whole exchange (0: the session's timeout).  Returns 0 with
 * *reply_len set; or -1 with err filled: as five_session_stream, and
 * FIVE_ERR_PROTOCOL "timed out" when the reply did not end in time,
 * FIVE_ERR_USAGE when it is larger than size, FIVE_ERR_CONNECT when the
 * stream was reset before its end.  On a timeout or a reply too large the
 * stream is cancelled (fived resets the service's side); *reply_len (when
 * reply_len is not NULL) says how much was read either way.
 */
FIVE_EXPORT int five_session_request(struct five_session *s, const char *service,
                                     const void *request, size_t len, void *reply, size_t size,
                                     size_t *reply_len, int timeout_ms, struct five_error *err);

/*
 * 1 while s is detachable (opts->detachable, granted by fived), also
 * while it attaches again after a break; 0 otherwise (not asked,
 * refused, or the session has ended).  NULL: 0.
 */
FIVE_EXPORT int five_session_detachable(struct five_session *s);

/*
 * Ends s: every stream still open is reset (fived resets its backend;
 * the stream's descriptor sees its end), then the session's own stream
 * ends cleanly (the sealed FINAL, TLS close_notify, TCP's half-close) as
 * five_connect's relay ends it; waits for the engine to finish (at most
 * the session's timeout for what is still to send) and frees s.  End your
 * streams first (shutdown, then read to their end) for the services to
 * see complete streams.  NULL is a no-op.
 */
FIVE_EXPORT void five_session_close(struct five_session *s);

#ifdef __cplusplus
}
#endif

#endif
