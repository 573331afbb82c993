/*
 * libfive's internal helpers, shared by its files and by the five command.
 */
#ifndef FIVE_CLIENT_INTERNAL_H
#define FIVE_CLIENT_INTERNAL_H

#include <stdbool.h>

#include "crypto/noise.h"
#include "crypto/record.h"
#include "five.h"
#include "proto/auth.h"
#include "proto/sealed.h"

/*
 * What a sealed session may have read past its handshake: at most what the
 * handshake's reader holds, the server's answer and a record behind it.
 */
#define SEALED_PENDING_MAX (SEALED_MESSAGE_MAX + RECORD_WIRE_MAX)

/* Fills err and returns -1, so that callers can write "return five_fail(...)". */
int five_fail(struct five_error *err, enum five_step step, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Copies opts (or the defaults when NULL) into out, with defaults filled in. */
void five_options_resolve(const struct five_options *opts, struct five_options *out);

/*
 * Checks one reply line read from fived.  Returns 0 for '+', or -1 with
 * err filled (FIVE_ERR_REFUSED with the server's reason, FIVE_ERR_PROTOCOL
 * for a line that is not a reply).
 */
int five_check_reply(const char *line, struct five_error *err);

/* How many reply lines a request made with these options produces before the grant. */
unsigned five_replies_expected(const struct five_options *opts);

/* A TCP port as five takes one: decimal digits only, 1 to 65535. */
bool five_port_valid(const char *port);

/* five_dial, also telling which port answered (port_out, size bytes). */
int five_dial_port(const char *host, const struct five_options *opts, char *port_out, size_t size,
                   struct five_error *err);

/* An established encrypted session, client side: sealed records, or TLS. */
struct five_tls;
struct five_seal {
	struct five_tls *tls; /* TLS (client/tls.h); NULL for the sealed records */
	struct record_sender tx;
	struct record_receiver rx;
	/* Binds signatures to this session: the handshake hash, or TLS's exporter value. */
	uint8_t hash[NOISE_HASHLEN];
	bool early_taken;  /* the server acted on the early data in the handshake */
	bool final_sealed; /* FINAL (TLS: close_notify) is sealed: nothing may follow it */
	bool ended;        /* ended by five_seal_end, or given up without FINAL */
	int fd;
	uint8_t pending[SEALED_PENDING_MAX]; /* server bytes read after the handshake */
	size_t pending_len;
	uint8_t server_pk[32]; /* the sealed handshake's server key (not TLS's) */
	bool has_server_pk;
};

/*
 * Dials host and makes the sealed handshake; early (at most 16 KiB) goes
 * with it and reaches the service either way.  tofu: pin a first-contact
 * server's key (note then says so, for the user).  Returns the connected
 * descriptor with *seal, or -1 with err filled.
 */
int five_seal_open(const char *host, const struct five_options *o, const void *early,
                   size_t early_len, bool tofu, struct five_seal **seal, char *note,
                   size_t note_size, struct five_error *err);

void five_seal_free(struct five_seal *z);

/*
 * The server key pinned for host and port (known_hosts, or o->server_key),
 * without a connection.  Returns 1 with pk, 0 when none is pinned, or -1
 * with err filled.
 */
int five_pinned_key(const char *host, const char *port, const struct five_options *o,
                    uint8_t pk[32], struct five_error *err);

/*
 * A first contact pins the key it learns: whether the pin for name could
 * be saved in path (knownhosts_can_add), asked before the handshake so
 * that five never goes on with a key it cannot pin.  Returns 0, or -1
 * with err filled (FIVE_ERR_SYSTEM, "cannot save the pin for ...").
 */
int five_can_pin(const char *path, const char *name, struct five_error *err);

/*
 * The key of the server fived on host, as pinned, or pinned now by a
 * first contact (note then says so).  Returns 0 or -1 with err filled.
 */
int five_server_key(const char *host, const struct five_options *o, uint8_t pk[32], char *note,
                    size_t note_size, struct five_error *err);

/*
 * The plaintext one five_seal_wrap call takes at most.  Its output must fit
 * in RECORD_WIRE_MAX: a TLS 1.3 record adds 22 bytes (header, content
 * type, tag), and OpenSSL may put a small record before it (the answer to
 * a KeyUpdate).
 */
#define TLS_RECORD_OVERHEAD    22
#define TLS_CONTROL_RECORD_MAX 32
#define FIVE_WRAP_MAX          (RECORD_WIRE_MAX - TLS_RECORD_OVERHEAD - TLS_CONTROL_RECORD_MAX)

/*
 * One record (final: the FINAL record, or TLS's close_notify) of len
 * bytes of pt (at most FIVE_WRAP_MAX) into out, room being at least
 * RECORD_WIRE_MAX.  Returns 0 or -1.
 */
int five_seal_wrap(struct five_seal *z, const uint8_t *pt, size_t len, bool final, uint8_t *out,
                   size_t room, size_t *n);

/* How many bytes of z->hash are the channel binding. */
size_t five_seal_binding_len(const struct five_seal *z);

/* record_open's contract (crypto/record.h) on the session's receiving direction. */
int five_seal_unwrap(struct five_seal *z, const uint8_t *in, size_t len, size_t *used, uint8_t *pt,
                     size_t room, size_t *n);

/* Sends data on fd as records.  Returns 0 or -1 (errno set). */
int five_seal_send(struct five_seal *z, int fd, const void *data, size_t len);

/*
 * How long a session that ends waits, at most, for fived's end of stream
 * before its socket is closed (no longer than the session's timeout).
 */
#define FIVE_LINGER_MS 2000

/*
 * Ends the session on fd cleanly: FINAL (TLS: close_notify) unless it
 * was sealed already, TCP's half-close, then what fived still sends is
 * read and dropped up to its end of stream, for at most FIVE_LINGER_MS:
 * a socket closed with unread bytes resets the connection, and the reset
 * may discard FINAL before fived reads it.  Does nothing once z has
 * ended (z->ended), and marks it ended.  Returns 0, or -1 when FINAL
 * could not be sent (fived then sees a truncated stream).
 */
int five_seal_end(struct five_seal *z, int fd, int timeout_ms);

/* A connection to fived before the relay: plain, or through a sealed session. */
struct five_conn {
	int fd;
	struct five_seal *seal; /* NULL: plain */
	int timeout_ms;
	unsigned replies_due;     /* authentication replies still to come before the request's */
	char note[FIVE_LINE_MAX]; /* for the user: a server key pinned on first contact */
	uint8_t server_pk[32];    /* the server's static key, when known: signatures name it */
	bool has_server_pk;
	uint8_t in[FIVE_LINE_MAX * 4]; /* sealed: plaintext read ahead */
	size_t in_len;
};

/*
 * Dials host over o->transport, authenticates as o->auth says, and sends
 * request (the request lines and any first bytes of the application, len
 * bytes): in the sealed handshake when nothing comes before it, else
 * right after the last authentication line.  The replies are left to
 * read: c->replies_due for authentication, then the request's own.
 * Returns 0, or -1 with err filled and nothing left open.
 */
int five_conn_open(struct five_conn *c, const char *host, const struct five_options *o,
                   const void *request, size_t len, struct five_error *err);

/* Reads replies lines, each of which must be '+'.  Returns 0 or -1. */
int five_conn_await(struct five_conn *c, unsigned replies, struct five_error *err);

/*
 * Ends a sealed or TLS session cleanly (five_seal_end) unless it has
 * ended already, then closes the connection.  What was sent before the
 * relay (the request, early bytes) was sent whole, so a connection given
 * up on a refusal or an error also ends cleanly: its stream is complete.
 */
void five_conn_close(struct five_conn *c);

/*
 * A granted sealed connection as an ordinary socket: returns one end of a
 * socketpair, relayed to c by a thread.  c is taken over (and left
 * closed) either way.  Returns the descriptor or -1 with err filled.
 */
int five_handoff(struct five_conn *c, const struct five_options *o, struct five_error *err);

/* Sends data (sealed into records when the session is).  Returns 0 or -1. */
int five_conn_send(struct five_conn *c, const void *data, size_t len, struct five_error *err);

/* Reads one line (without its CRLF).  Returns 0 or -1. */
int five_conn_read_line(struct five_conn *c, char *line, size_t size, struct five_error *err);

/* five_authenticate on a connection, plain or sealed. */
int five_conn_authenticate(struct five_conn *c, const struct five_options *o,
                           struct five_error *err);

/* Reads one line without reading past it.  Returns 0, or -1 with err filled. */
int five_read_line(int fd, int timeout_ms, char *line, size_t size, struct five_error *err);

/* Writes all of data.  Returns 0, or -1 with err filled. */
int five_send_all(int fd, const void *data, size_t len, struct five_error *err);

/*
 * Writes all of data on the socket fd, waiting for room until deadline
 * (monotonic_ms()) at most.  Returns 0, or -1 with err filled.
 */
int five_send_by(int fd, const void *data, size_t len, uint64_t deadline, struct five_error *err);

/*
 * The request for service (HOST first when opts->vhost; "SERVICE TOKEN"
 * when opts->token), followed by early, in a buffer the caller frees
 * (*out, *out_len bytes).  Returns 0 or -1 (FIVE_ERR_USAGE for an invalid
 * name or token, or a token with opts->auth).
 */
int five_request_text(const char *service, const struct five_options *opts, const void *early,
                      size_t len, uint8_t **out, size_t *out_len, struct five_error *err);

/*
 * Checks a token before it goes on the wire: 1 to max characters, each one
 * a token may hold ([A-Za-z0-9_.-]), so that it can neither end nor split
 * a line or a JSON string.  Returns 0, or -1 with err filled
 * (FIVE_ERR_USAGE).
 */
int five_token_check(const char *token, size_t max, struct five_error *err);

/*
 * five_issue_token, also telling the user's note of five_conn_open (a
 * server key pinned on first contact) in note[0..note_size) when note is
 * not NULL.
 */
int five_token_fetch(const char *host, const char *service, const char *bind, unsigned long ttl_s,
                     const struct five_options *opts, char *token, size_t size, char *note,
                     size_t note_size, struct five_error *err);

/*
 * For a dialect that allows one authentication attempt per connection (USP),
 * the pieces of auth.c one at a time.  five_auth_user: a->user, or the
 * login name (NULL when there is none).  five_auth_ask: the five_auth
 * ask contract, through a->ask, $FIVE_ASKPASS or /dev/tty.
 * five_auth_first_key: the key pubkey would offer first (the key file,
 * else ssh-agent's first key, else ~/.ssh/id_ed25519), FIVE_ERR_REFUSED
 * when there is none.  five_auth_sign: signs data with that key, found
 * again.  Each returns 0 or -1 with err filled.
 */
const char *five_auth_user(const struct five_auth *a);
int five_auth_ask(const struct five_auth *a, const char *prompt, int echo, char *answer,
                  size_t size);
int five_auth_first_key(const struct five_auth *a, uint8_t pk[AUTH_PK_LEN], struct five_error *err);

/*
 * Whether a pubkey signature on c can name the server: c is encrypted, or
 * the server's key is known.  Returns 0, or -1 with err filled.
 */
int five_auth_can_sign(const struct five_conn *c, struct five_error *err);

/*
 * The bytes a pubkey signature on c covers (PROTOCOL.md 4.2): the
 * challenge, the user and key, the server's key when c knows it, c's
 * channel binding.  Returns 0 with *len, or -1.
 */
int five_auth_signed_data(const struct five_conn *c, const char *sid,
                          const uint8_t nonce[AUTH_NONCE_LEN], const char *user,
                          const uint8_t pk[AUTH_PK_LEN], uint8_t *out, size_t size, size_t *len);
int five_auth_sign(const struct five_auth *a, const uint8_t pk[AUTH_PK_LEN], const uint8_t *data,
                   size_t len, uint8_t sig[AUTH_SIG_LEN], struct five_error *err);

/*
 * Dials host over o->transport and asks for service in the USP dialect
 * (docs/PROTOCOL.md section 8): initialize with o->token when set, offering
 * the protocols of o->auth that five can carry out (pubkey when a key is at
 * hand, password); when fived asks, the exchange, the stream's token and
 * initialize again, up to fived's connect.  early (only without o->auth:
 * an exchange reads messages) goes right after the first initialize.
 * Returns 0 with c ready for the relay (c->in holding what followed
 * connect), or -1 with err filled (FIVE_ERR_REFUSED: fived's error) and
 * nothing left open.
 */
int five_usp_open(struct five_conn *c, const char *host, const char *service,
                  const struct five_options *o, const void *early, size_t early_len,
                  struct five_error *err);

/*
 * Authentication whose last step travels with the request: for pubkey,
 * the signature line is left in tail (to be sent before the request) and
 * *pending counts the reply to it still due; a password exchange is
 * finished here.  Returns 0 or -1 with err filled.
 */
int five_auth_pipelined(struct five_conn *c, const struct five_options *o, char *tail, size_t size,
                        size_t *tail_len, unsigned *pending, struct five_error *err);

#endif
