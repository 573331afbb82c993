/*
 * A hostile TLS server as libfive's TLS transport meets it
 * (src/client/transport/tls.c): five_tls_start, what five_tls_open runs
 * once it has dialed, on one end of a socketpair, with the server's key
 * given (no known_hosts); then fived's first lines read through a
 * struct five_conn (five_tls_unwrap under five_conn_read_line), and the
 * session's end (five_seal_end).  The server is a real OpenSSL server,
 * with the fixed certificate of tests/fuzz/fuzz_tls_keys.h, on a thread
 * of its own over memory BIOs, so that what it sends can be tampered
 * with: the input says what it does once the handshake is done, and may
 * damage its handshake flights too.
 *
 * OpenSSL's random bytes come from fuzz_random.h's fixed stream, but two
 * threads draw from it and the one that waits on a socket decides little:
 * an input usually, not always, runs the same way.
 *
 * Byte 0 is a mode, the rest the server's operations:
 *
 *   bit 0   the key given is another one: the handshake must stop at the pin
 *   bit 1   the client sends a request line before it reads
 *
 * Each operation is a byte, its low three bits the kind, the rest an
 * argument A (0 to 31); WRITE and RAW take A + 1 bytes of the input after
 * it (what is left, when fewer):
 *
 *   0 WRITE   those bytes in one record
 *   1 CLOSE   close_notify
 *   2 RAW     those bytes on the wire as they are
 *   3 FLIP    bit A % 8 of byte A / 8 of the next flight is flipped
 *   4 HALF    only the first half of the next flight is sent
 *   5 UPDATE  a KeyUpdate, asking for the client's (A odd) or not
 *   6 BIG     a record of BIG_SIZE bytes, a line longer than any reply
 *   7 EMPTY   a record of no bytes
 *
 * FLIP and HALF before any other operation apply to the handshake; a RAW
 * after them goes out before it, as a refusal in text from a server over
 * its limits does.
 */
/*
 * RAND_set_rand_method is deprecated in OpenSSL 3 but still honoured: short
 * of a provider of our own, the only way to give OpenSSL a fixed stream.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/dialect/text.h"
#include "client/transport/conn.h"
#include "client/transport/tls.h"
#include "five.h"
#include "fuzz.h"
#include "fuzz_random.h"
#include "fuzz_tls_keys.h"
#include "proto/tlsclients.h"

#define MODE_WRONG_KEY 0x01
#define MODE_REQUEST   0x02

#define OP_WRITE  0
#define OP_CLOSE  1
#define OP_RAW    2
#define OP_FLIP   3
#define OP_HALF   4
#define OP_UPDATE 5
#define OP_BIG    6
#define OP_EMPTY  7
#define OP_KIND   0x07
#define OP_SHIFT  3

#define BIG_SIZE    16384
#define FLIGHT_MAX  (64 * 1024)
#define LINES_MAX   16
#define TIMEOUT_MS  100
#define SERVER_WAIT 1000 /* ms: the server's wait for the client, which times out first */

/* A key that is not the server's, in tls_clients' form. */
#define OTHER_KEY "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

struct server {
	int fd;
	const uint8_t *p, *end; /* the operations left */
	SSL *ssl;
	BIO *in, *out;
	long flip; /* the bit to flip in the next flight, or -1 */
	bool half;
};

static SSL_CTX *server_ctx;
static char server_key[TLSCLIENTS_FP_TEXT_MAX];
static pthread_mutex_t rand_lock = PTHREAD_MUTEX_INITIALIZER;

/* --- the server, on its thread ------------------------------------------------ */

static void
send_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0 && (n = send(fd, p, len, MSG_NOSIGNAL)) > 0) {
		p += n;
		len -= (size_t)n;
	}
}

/* What OpenSSL wrote goes to the client, damaged as asked. */
static void
flight(struct server *s)
{
	static uint8_t buf[FLIGHT_MAX];
	int n;

	while ((n = BIO_read(s->out, buf, sizeof(buf))) > 0) {
		if (s->flip >= 0 && s->flip / 8 < n)
			buf[s->flip / 8] ^= (uint8_t)(1u << (s->flip % 8));
		if (s->half)
			n /= 2;
		s->flip = -1;
		s->half = false;
		send_all(s->fd, buf, (size_t)n);
	}
}

/* The client's bytes, for OpenSSL.  Returns false when it has gone or is silent. */
static bool
take(struct server *s)
{
	struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
	uint8_t buf[FLIGHT_MAX];
	ssize_t n;

	if (poll(&pfd, 1, SERVER_WAIT) <= 0 || (n = recv(s->fd, buf, sizeof(buf), 0)) <= 0)
		return false;
	return BIO_write(s->in, buf, (int)n) == (int)n;
}

static bool
handshake(struct server *s)
{
	int r;

	for (;;) {
		r = SSL_do_handshake(s->ssl);
		flight(s);
		if (r == 1)
			return true;
		if (SSL_get_error(s->ssl, r) != SSL_ERROR_WANT_READ || !take(s))
			return false;
	}
}

/* FLIP and HALF: the next flight's damage.  Returns whether op was one. */
static bool
damage(struct server *s, uint8_t op, uint8_t arg)
{
	if (op == OP_FLIP)
		s->flip = arg;
	else if (op == OP_HALF)
		s->half = true;
	return op == OP_FLIP || op == OP_HALF;
}

/* The bytes a WRITE or RAW of argument arg takes: arg + 1, or what is left. */
static size_t
op_bytes(const struct server *s, uint8_t arg)
{
	return (size_t)arg + 1 < (size_t)(s->end - s->p) ? (size_t)arg + 1
	                                                 : (size_t)(s->end - s->p);
}

static void
play(struct server *s)
{
	static uint8_t big[BIG_SIZE];
	uint8_t op, arg;
	size_t n, wrote;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\n';
	while (s->p < s->end) {
		op = *s->p & OP_KIND;
		arg = *s->p++ >> OP_SHIFT;
		n = op_bytes(s, arg);
		if (damage(s, op, arg))
			continue;
		switch (op) {
		case OP_WRITE:
			SSL_write_ex(s->ssl, s->p, n, &wrote);
			s->p += n;
			break;
		case OP_CLOSE:
			SSL_shutdown(s->ssl);
			break;
		case OP_RAW:
			send_all(s->fd, s->p, n);
			s->p += n;
			break;
		case OP_UPDATE:
			if (SSL_key_update(s->ssl, (arg & 1) != 0
			                                   ? SSL_KEY_UPDATE_REQUESTED
			                                   : SSL_KEY_UPDATE_NOT_REQUESTED) == 1)
				SSL_do_handshake(s->ssl);
			break;
		case OP_BIG:
			SSL_write_ex(s->ssl, big, sizeof(big), &wrote);
			break;
		case OP_EMPTY:
			SSL_write_ex(s->ssl, big, 0, &wrote);
			break;
		}
		ERR_clear_error();
		flight(s);
	}
}

static void *
serve(void *arg)
{
	struct server *s = arg;
	size_t n;

	if ((s->ssl = SSL_new(server_ctx)) == NULL || (s->in = BIO_new(BIO_s_mem())) == NULL ||
	    (s->out = BIO_new(BIO_s_mem())) == NULL)
		abort();
	BIO_set_mem_eof_return(s->in, -1);
	SSL_set_bio(s->ssl, s->in, s->out);
	SSL_set_accept_state(s->ssl);
	while (s->p < s->end && damage(s, *s->p & OP_KIND, *s->p >> OP_SHIFT))
		s->p++;
	if (s->p < s->end && (*s->p & OP_KIND) == OP_RAW) {
		n = op_bytes(s, *s->p++ >> OP_SHIFT);
		send_all(s->fd, s->p, n);
		s->p += n;
	}
	if (handshake(s))
		play(s);
	ERR_clear_error();
	/* The server's stream ends; what the client still sends is read until it closes. */
	shutdown(s->fd, SHUT_WR);
	while (take(s))
		(void)BIO_reset(s->in);
	SSL_free(s->ssl);
	ERR_clear_error();
	return NULL;
}

/* --- the client --------------------------------------------------------------- */

static int
rand_bytes(unsigned char *buf, int num)
{
	pthread_mutex_lock(&rand_lock);
	fuzz_random_buf(buf, (size_t)num);
	pthread_mutex_unlock(&rand_lock);
	return 1;
}

static int
rand_status(void)
{
	return 1;
}

static const RAND_METHOD fixed_rand = {
        .bytes = rand_bytes,
        .pseudorand = rand_bytes,
        .status = rand_status,
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	BIO *cb = BIO_new_mem_buf(FUZZ_TLS_SERVER_CERT, -1);
	BIO *kb = BIO_new_mem_buf(FUZZ_TLS_SERVER_KEY, -1);
	X509 *cert = cb != NULL ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	EVP_PKEY *key = kb != NULL ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	uint8_t fp[TLSCLIENTS_FP_LEN];

	(void)argc;
	(void)argv;
	if (randombytes_set_implementation(&fuzz_random_impl) != 0 || sodium_init() < 0 ||
	    RAND_set_rand_method(&fixed_rand) != 1)
		abort();
	server_ctx = SSL_CTX_new(TLS_server_method());
	if (server_ctx == NULL || cert == NULL || key == NULL ||
	    SSL_CTX_set_min_proto_version(server_ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_use_certificate(server_ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(server_ctx, key) != 1 || tlsclients_fingerprint(cert, fp) != 0)
		abort();
	SSL_CTX_set_num_tickets(server_ctx, 0);
	tlsclients_fp_text(fp, server_key);
	X509_free(cert);
	EVP_PKEY_free(key);
	BIO_free(cb);
	BIO_free(kb);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char request[] = "echo\r\n";
	struct server s = {.flip = -1};
	struct five_options o;
	struct five_error err;
	struct five_seal *z;
	struct five_conn c;
	char note[FIVE_LINE_MAX], line[FIVE_TEXT_REPLY_MAX];
	pthread_t thread;
	int sv[2], fd, i;

	if (size < 1)
		return 0;
	fuzz_random_reset();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	s.fd = sv[1];
	s.p = data + 1;
	s.end = data + size;
	if (pthread_create(&thread, NULL, serve, &s) != 0)
		abort();

	five_options_init(&o);
	o.transport = FIVE_TLS;
	o.timeout_ms = TIMEOUT_MS;
	o.server_key = (data[0] & MODE_WRONG_KEY) != 0 ? OTHER_KEY : server_key;
	fd = five_tls_start(sv[0], "fived.example", "5001", &o, false, &z, note, sizeof(note),
	                    &err);
	if (fd >= 0) {
		if ((data[0] & MODE_WRONG_KEY) != 0)
			abort();
		memset(&c, 0, sizeof(c));
		c.fd = fd;
		c.seal = z;
		c.timeout_ms = TIMEOUT_MS;
		if ((data[0] & MODE_REQUEST) != 0)
			five_conn_send(&c, request, sizeof(request) - 1, &err);
		for (i = 0; i < LINES_MAX && five_conn_read_line(&c, line, sizeof(line), &err) == 0;
		     i++)
			five_text_check_reply(line, &err);
		/* close_notify out, the rest read and dropped; closes the descriptor. */
		five_conn_close(&c);
	}
	pthread_join(thread, NULL);
	close(sv[1]);
	ERR_clear_error();
	return 0;
}
