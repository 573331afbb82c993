/*
 * The sealed handshake, client side (docs/PROTOCOL.md section 6): IK when
 * the server's key is pinned (the request and first bytes ride in the
 * first message), XX for first contact (trust on first use), a cookie and
 * proof-of-work round when the server is loaded.  Blocking: libfive's
 * callers and the five command both want a ready session.
 */
#include "client/transport/seal.h"

#include <errno.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client/base/error.h"
#include "client/base/options.h"
#include "client/base/sock.h"
#include "client/dial/dial.h"
#include "client/keys/knownhosts.h"
#include "client/transport/tls.h"
#include "common/io.h"
#include "common/keyfile.h"
#include "common/util.h"
#include "crypto/aesgcm.h"
#include "crypto/noise.h"
#include "crypto/record.h"
#include "proto/line.h"
#include "proto/sealed.h"

/* Work a client is willing to do for a cookie: 2^24 hashes is a second or two. */
#define POW_ATTEMPTS_MAX (1ULL << 26)
#define NAME_MAX_TEXT    300
/*
 * Cookies answered before giving up: a second one comes when the work the
 * server demands rose while we solved the first.
 */
#define COOKIES_MAX 2

struct handshake {
	struct noise_handshake hs;
	unsigned pattern;
	uint16_t suites;       /* offered, bound into the prologue */
	uint8_t server_pk[32]; /* IK: the pinned key; XX: learned from message 2 */
	bool known;
	uint8_t noise1[SEALED_IK1_MAX];
	size_t noise1_len;
	uint8_t mac1_orig[SEALED_MAC_LEN]; /* of the first INITIATION */
	uint8_t cookie[SEALED_COOKIE_LEN];
	uint8_t pow_nonce[SEALED_POW_NONCE_LEN];
	bool have_cookie;
	char name[NAME_MAX_TEXT];
	char known_hosts[4096];
	unsigned known_line;
	bool given;                    /* server_pk came from the caller, not from known_hosts */
	char made_note[FIVE_LINE_MAX]; /* five's identity was made: for the caller's notice */
	struct identity_keys keys;     /* IK: our static key for the server, and ss; wiped */
};

/* IK's Diffie-Hellman with our static key: ss as kept (knownhosts.h), se computed. */
static int
static_dh(void *ctx, const uint8_t pub[32], bool peer_static, uint8_t shared[32])
{
	const struct identity_keys *keys = ctx;

	if (peer_static) {
		memcpy(shared, keys->ss, sizeof(keys->ss));
		return 0;
	}
	return crypto_scalarmult(shared, keys->sk, pub);
}

static void
handshake_wipe(struct handshake *h)
{
	noise_handshake_wipe(&h->hs);
	sodium_memzero(&h->keys, sizeof(h->keys));
}

static void
mac1_key_for(const struct handshake *h, uint8_t key[32])
{
	static const uint8_t zero[32];

	sealed_mac1_key(h->pattern == SEALED_IK ? h->server_pk : zero, key);
}

/*
 * The record suites we offer: XChaCha20-Poly1305 always, AES-256-GCM where
 * this CPU runs it in hardware (in software it is slower and harder to keep
 * constant-time).  The server chooses.
 */
static uint16_t
offered_suites(void)
{
	uint16_t suites = SEALED_SUITE_BIT(RECORD_SUITE_XCHACHA20POLY1305);

	if (aesgcm_hardware())
		suites |= SEALED_SUITE_BIT(RECORD_SUITE_AES256GCM);
	return suites;
}

/* --- reading frames ------------------------------------------------------ */

struct reader {
	int fd;
	int timeout_ms;
	uint8_t buf[SEALED_PENDING_MAX]; /* all of it may be left over for z->pending */
	size_t len;
};

int
five_text_refusal(const uint8_t *buf, size_t len, struct five_error *err)
{
	const uint8_t *end = memchr(buf, '\n', len);
	char line[FIVE_TEXT_REFUSAL_MAX];
	const char *text;
	size_t n;
	int ok;

	if (len == 0 || buf[0] != '-')
		return 0;
	if (end == NULL)
		return len < FIVE_TEXT_REFUSAL_MAX ? 1 : 0;
	n = (size_t)(end - buf);
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	n = n < sizeof(line) ? n : sizeof(line) - 1;
	memcpy(line, buf, n);
	line[n] = '\0';
	reply_parse(line, &ok, &text); /* a '-' line: a reply line (PROTOCOL.md 2.1) */
	return five_fail(err, FIVE_ERR_REFUSED, "%s", text[0] != '\0' ? text : "refused");
}

/*
 * Reads until buf holds a whole handshake message; *total its length.  0,
 * or -1 (EOF: 1).  The timeout bounds the whole message, not the silence
 * between its bytes: a server that trickles them cannot hold the client
 * longer.
 */
static int
read_frame(struct reader *r, size_t *total, struct five_error *err)
{
	struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
	uint64_t deadline = monotonic_ms() + (uint64_t)r->timeout_ms;
	ssize_t n;
	int st, refusal;

	for (;;) {
		st = sealed_frame_length(r->buf, r->len, total);
		if (st == SEALED_OK && *total <= r->len)
			return 0;
		if ((refusal = five_text_refusal(r->buf, r->len, err)) < 0)
			return -1;
		if (refusal == 0 && st != SEALED_OK && st != SEALED_NEED_MORE)
			return five_fail(err, FIVE_ERR_PROTOCOL, "not a sealed handshake message");
		if (poll(&pfd, 1, five_ms_left(deadline)) <= 0)
			return five_fail(err, FIVE_ERR_PROTOCOL, "no handshake reply within %d ms",
			                 r->timeout_ms);
		if ((n = recv(r->fd, r->buf + r->len, sizeof(r->buf) - r->len, 0)) < 0 &&
		    errno == EINTR)
			continue;
		if (n <= 0) {
			five_fail(err, FIVE_ERR_PROTOCOL, "connection closed during the handshake");
			return 1;
		}
		r->len += (size_t)n;
	}
}

static void
consume(struct reader *r, size_t n)
{
	memmove(r->buf, r->buf + n, r->len - n);
	r->len -= n;
}

/* --- building the first message ----------------------------------------- */

static int
start_noise(struct handshake *h, const void *early, size_t early_len, struct five_error *err)
{
	uint8_t prologue[SEALED_PROLOGUE_LEN], payload[SEALED_MSG1_PAYLOAD_MAX];
	uint8_t stamp[SEALED_TAI64N_LEN];
	struct noise_static_ref key;
	struct timespec now;
	size_t plen = 0;
	int r = -1;

	h->noise1_len = sealed_noise1_len(h->pattern, early_len);
	h->suites = offered_suites();
	sealed_prologue(h->pattern, h->suites, h->noise1_len, prologue);
	if (h->pattern == SEALED_XX) {
		r = noise_handshake_init(&h->hs, SEALED_NOISE_XX, NOISE_INITIATOR, prologue,
		                         sizeof(prologue), NULL, NULL);
		if (r == 0)
			r = noise_write_message(&h->hs, NULL, 0, h->noise1, sizeof(h->noise1),
			                        &h->noise1_len);
		return r == 0 ? 0 : five_fail(err, FIVE_ERR_SYSTEM, "handshake setup failed");
	}
	if (identity_session_keys(h->server_pk, &h->keys, h->made_note, sizeof(h->made_note),
	                          err) != 0)
		return -1;
	key.dh = static_dh;
	key.ctx = &h->keys;
	memcpy(key.pub, h->keys.pk, sizeof(key.pub));
	clock_gettime(CLOCK_REALTIME, &now);
	if (sealed_tai64n_encode((uint64_t)now.tv_sec, (uint32_t)now.tv_nsec, stamp) == 0 &&
	    sealed_msg1_payload_encode(stamp, early, early_len, payload, sizeof(payload), &plen) ==
	            0 &&
	    noise_handshake_init_ref(&h->hs, SEALED_NOISE_IK, NOISE_INITIATOR, prologue,
	                             sizeof(prologue), &key, h->server_pk) == 0 &&
	    noise_write_message(&h->hs, payload, plen, h->noise1, sizeof(h->noise1),
	                        &h->noise1_len) == 0)
		r = 0;
	sodium_memzero(payload, sizeof(payload));
	return r == 0 ? 0 : five_fail(err, FIVE_ERR_SYSTEM, "handshake setup failed");
}

static int
send_initiation(int fd, struct handshake *h, struct five_error *err)
{
	struct sealed_initiation m;
	uint8_t out[SEALED_INITIATION_MAX], mac1_key[32];
	size_t n;

	memset(&m, 0, sizeof(m));
	m.pattern = (uint8_t)h->pattern;
	m.suites = h->suites;
	m.noise = h->noise1;
	m.noise_len = h->noise1_len;
	memcpy(m.pow_nonce, h->pow_nonce, sizeof(m.pow_nonce));
	mac1_key_for(h, mac1_key);
	if (sealed_initiation_encode(&m, mac1_key, h->have_cookie ? h->cookie : NULL, out,
	                             sizeof(out), &n) != 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "cannot build the first message");
	if (!h->have_cookie)
		memcpy(h->mac1_orig, m.mac1, sizeof(h->mac1_orig));
	return io_write_all(fd, out, n) == 0
	               ? 0
	               : five_fail(err, FIVE_ERR_CONNECT, "send: %s", strerror(errno));
}

/* A COOKIE: open it and do the work it asks; the caller connects again. */
static int
take_cookie(struct handshake *h, const uint8_t *msg, size_t len, struct five_error *err)
{
	static const uint8_t zero[32];
	struct sealed_cookie_msg c;
	uint8_t key[32];

	sealed_cookie_key(h->pattern == SEALED_IK ? h->server_pk : zero, key);
	if (sealed_cookie_decode(msg, len, &c) != SEALED_OK ||
	    sealed_cookie_open(&c, key, h->mac1_orig, h->cookie) != 0)
		return five_fail(err, FIVE_ERR_PROTOCOL, "a cookie that is not for us");
	if (sealed_pow_solve(h->cookie, h->mac1_orig, c.difficulty, POW_ATTEMPTS_MAX,
	                     h->pow_nonce) != 0)
		return five_fail(err, FIVE_ERR_REFUSED, "the server asks for %u bits of work",
		                 c.difficulty);
	h->have_cookie = true;
	return 0;
}

static int
rejected(const uint8_t *msg, size_t len, struct five_error *err)
{
	static const char *const why[] = {"", "version", "cipher suite",
	                                  "first contact (no pinned key) not allowed", "busy"};
	struct sealed_reject r;

	if (sealed_reject_decode(msg, len, &r) != SEALED_OK)
		return five_fail(err, FIVE_ERR_PROTOCOL, "malformed refusal");
	return five_fail(err, FIVE_ERR_REFUSED, "sealed handshake refused: %s",
	                 r.code < sizeof(why) / sizeof(why[0]) ? why[r.code] : "unknown reason");
}

/* --- the keys we know -------------------------------------------------------- */

static int
pin_lookup(struct handshake *h, const struct five_options *o, const char *host, const char *port,
           struct five_error *err)
{
	knownhosts_name(host, port, h->name, sizeof(h->name));
	if (o->server_key != NULL) {
		if (keyfile_b64_decode(o->server_key, h->server_pk) != 0)
			return five_fail(err, FIVE_ERR_USAGE, "not a server key: %s",
			                 o->server_key);
		h->known = true;
		h->given = true;
		return 0;
	}
	return knownhosts_lookup(o->known_hosts, h->name, h->known_hosts, sizeof(h->known_hosts),
	                         h->server_pk, &h->known_line, &h->known, err);
}

int
five_pinned_key(const char *host, const char *port, const struct five_options *o, uint8_t pk[32],
                bool *found, struct five_error *err)
{
	struct handshake *h = calloc(1, sizeof(*h));
	int r = -1;

	if (h == NULL)
		return five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
	if (pin_lookup(h, o, host, port, err) == 0) {
		r = 0;
		*found = h->known;
		if (h->known)
			memcpy(pk, h->server_pk, 32);
	}
	free(h);
	return r;
}

/*
 * XX told us the server's key: first contact pins it (with tofu); a key
 * different from the one pinned is a hard failure that says what to do.
 */
static int
check_learned_key(struct handshake *h, const uint8_t learned[32], bool tofu, char *note,
                  size_t note_size, struct five_error *err)
{
	char fp[KEYFILE_FP_MAX], old[KEYFILE_FP_MAX];

	keyfile_fingerprint(learned, fp);
	if (h->known) {
		if (sodium_memcmp(learned, h->server_pk, 32) == 0)
			return 0;
		keyfile_fingerprint(h->server_pk, old);
		if (h->given)
			return five_fail(err, FIVE_ERR_TRUST,
			                 "the key of %s is %s, not %s as given", h->name, fp, old);
		return five_fail(
		        err, FIVE_ERR_TRUST,
		        "THE KEY OF %s HAS CHANGED: pinned %s, now %s. Someone may be "
		        "impersonating it. If the change is expected, delete line %u of %s "
		        "and connect again",
		        h->name, old, fp, h->known_line, h->known_hosts);
	}
	if (!tofu)
		return five_fail(err, FIVE_ERR_TRUST, "no key pinned for %s (it offers %s)",
		                 h->name, fp);
	if (knownhosts_add(h->known_hosts, h->name, learned, err) != 0)
		return -1;
	snprintf(note, note_size, "new host %s, key %s, pinned in %s", h->name, fp, h->known_hosts);
	return 0;
}

/* --- the answer -------------------------------------------------------------- */

/* XX: message 3, carrying our static key (derived from the server's) and the early data. */
static int
send_finish(int fd, struct handshake *h, const uint8_t server_pk[32], const void *early,
            size_t early_len, struct five_error *err)
{
	uint8_t payload[SEALED_FINISH_PAYLOAD_MAX], noise[SEALED_XX3_MAX], msg[SEALED_FINISH_MAX];
	uint8_t sk[32], pk[32];
	size_t plen, nlen, mlen;
	int r = -1;

	if (identity_static_key(server_pk, sk, pk, h->made_note, sizeof(h->made_note), err) != 0)
		return -1;
	if (noise_handshake_set_static(&h->hs, sk) == 0 &&
	    sealed_finish_payload_encode(early, early_len, payload, sizeof(payload), &plen) == 0 &&
	    noise_write_message(&h->hs, payload, plen, noise, sizeof(noise), &nlen) == 0 &&
	    sealed_finish_encode(noise, nlen, msg, sizeof(msg), &mlen) == 0 &&
	    io_write_all(fd, msg, mlen) == 0)
		r = 0;
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(payload, sizeof(payload));
	return r == 0 ? 0 : five_fail(err, FIVE_ERR_CONNECT, "cannot finish the handshake");
}

int
five_seal_send(struct five_seal *z, int fd, const void *data, size_t len, struct five_error *err)
{
	const uint8_t *pt = data;
	uint8_t out[RECORD_WIRE_MAX];
	size_t piece, n;

	while (len > 0) {
		piece = len < FIVE_WRAP_MAX ? len : FIVE_WRAP_MAX;
		if (five_seal_wrap(z, pt, piece, false, out, sizeof(out), &n, err) != 0)
			return -1;
		if (io_write_all(fd, out, n) != 0)
			return five_fail(err, FIVE_ERR_CONNECT, "send: %s", strerror(errno));
		pt += piece;
		len -= piece;
	}
	return 0;
}

static int
on_response(int fd, struct handshake *h, struct reader *rd, size_t total, const void *early,
            size_t early_len, bool tofu, char *note, size_t note_size, struct five_seal *z,
            struct five_error *err)
{
	struct noise_cipher send, recv;
	struct sealed_frame f;
	uint8_t payload[SEALED_RESPONSE_PAYLOAD_LEN], learned[32], header[RECORD_HEADER_MAX];
	enum record_suite suite;
	uint8_t flags = 0;
	size_t plen, hlen = 0;
	int r = -1;

	if (sealed_response_decode(rd->buf, total, h->pattern, &f) != SEALED_OK ||
	    noise_read_message(&h->hs, f.noise, f.noise_len, payload, sizeof(payload), &plen) !=
	            0 ||
	    sealed_response_payload_decode(payload, plen, h->suites, &suite, &flags) != 0)
		return five_fail(err, FIVE_ERR_PROTOCOL,
		                 "the server's answer does not authenticate");
	consume(rd, total);
	if (h->pattern == SEALED_XX) {
		if (noise_remote_static(&h->hs, learned) != 0 ||
		    check_learned_key(h, learned, tofu, note, note_size, err) != 0 ||
		    send_finish(fd, h, learned, early, early_len, err) != 0)
			return -1;
		flags |= SEALED_FLAG_0RTT; /* FINISH's data is acted on at once */
	}
	memcpy(z->server_pk, h->pattern == SEALED_XX ? learned : h->server_pk, 32);
	z->has_server_pk = true;
	noise_handshake_hash(&h->hs, z->hash);
	if (noise_split(&h->hs, &send, &recv) == 0 &&
	    record_init_from_split(&z->tx, &z->rx, suite, &send, &recv, header, &hlen) == 0 &&
	    (hlen == 0 || io_write_all(fd, header, hlen) == 0) &&
	    ((flags & SEALED_FLAG_0RTT) || five_seal_send(z, fd, early, early_len, err) == 0))
		r = 0;
	z->early_taken = (flags & SEALED_FLAG_0RTT) != 0;
	noise_cipher_wipe(&send);
	noise_cipher_wipe(&recv);
	return r == 0 ? 0 : five_fail(err, FIVE_ERR_CONNECT, "cannot start the records");
}

/*
 * The pinned key went unanswered: ask the server its key the first-contact
 * way, so that a changed key is reported as such.  Returns -1 always (with
 * err saying the best that is known).
 */
static int
diagnose_silence(const char *host, const struct five_options *o, struct handshake *pinned,
                 struct five_error *err)
{
	struct handshake *h = calloc(1, sizeof(*h));
	struct reader *rd = calloc(1, sizeof(*rd));
	uint8_t learned[32], payload[SEALED_RESPONSE_PAYLOAD_LEN];
	struct sealed_frame f;
	char port[16], note[8];
	size_t total, plen;
	int fd = -1;

	five_fail(err, FIVE_ERR_REFUSED,
	          "%s closed the connection during the handshake: it may not know us (a dark "
	          "server), or its key may no longer be the one pinned",
	          pinned->name);
	if (h == NULL || rd == NULL || (fd = five_dial_port(host, o, port, sizeof(port), err)) < 0)
		goto out;
	*h = *pinned;
	h->pattern = SEALED_XX;
	h->have_cookie = false;
	rd->fd = fd;
	rd->timeout_ms = o->timeout_ms;
	if (start_noise(h, NULL, 0, err) == 0 && send_initiation(fd, h, err) == 0 &&
	    read_frame(rd, &total, err) == 0 && rd->buf[0] == SEALED_RESPONSE &&
	    sealed_response_decode(rd->buf, total, SEALED_XX, &f) == SEALED_OK &&
	    noise_read_message(&h->hs, f.noise, f.noise_len, payload, sizeof(payload), &plen) ==
	            0 &&
	    noise_remote_static(&h->hs, learned) == 0)
		check_learned_key(h, learned, false, note, sizeof(note), err);
out:
	if (fd >= 0)
		close(fd);
	if (h != NULL)
		handshake_wipe(h);
	free(h);
	free(rd);
	return -1;
}

/* Frees h, telling o's notice first when five's identity was made for it (it stays made). */
static void
handshake_free(struct handshake *h, const struct five_options *o)
{
	if (h == NULL)
		return;
	five_notice(o, h->made_note);
	handshake_wipe(h);
	free(h);
}

int
five_seal_open(const char *host, const struct five_options *o, const void *early, size_t early_len,
               bool tofu, struct five_seal **out, char *note, size_t note_size,
               struct five_error *err)
{
	struct handshake *h = calloc(1, sizeof(*h));
	struct five_seal *z = calloc(1, sizeof(*z));
	struct reader *rd = calloc(1, sizeof(*rd));
	char port[16];
	size_t total;
	int fd = -1, round, st;

	note[0] = '\0';
	*out = NULL;
	if (h == NULL || z == NULL || rd == NULL) {
		five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
		goto fail;
	}
	if (early_len > SEALED_EARLY_MAX) {
		five_fail(err, FIVE_ERR_USAGE, "more than %d bytes of early data",
		          SEALED_EARLY_MAX);
		goto fail;
	}
	for (round = 0; round <= COOKIES_MAX; round++) {
		if ((fd = five_dial_port(host, o, port, sizeof(port), err)) < 0)
			goto fail;
		if (round == 0) {
			if (pin_lookup(h, o, host, port, err) != 0 ||
			    (!h->known && tofu &&
			     knownhosts_can_add(h->known_hosts, h->name, err) != 0))
				goto fail;
			h->pattern = h->known ? SEALED_IK : SEALED_XX;
			if (start_noise(h, h->pattern == SEALED_IK ? early : NULL,
			                h->pattern == SEALED_IK ? early_len : 0, err) != 0)
				goto fail;
		}
		rd->fd = fd;
		rd->timeout_ms = o->timeout_ms;
		rd->len = 0;
		if (send_initiation(fd, h, err) != 0)
			goto fail;
		if ((st = read_frame(rd, &total, err)) != 0) {
			if (st > 0 && h->pattern == SEALED_IK)
				diagnose_silence(host, o, h, err);
			goto fail;
		}
		if (rd->buf[0] == SEALED_COOKIE) {
			if (round == COOKIES_MAX)
				break;
			if (take_cookie(h, rd->buf, total, err) != 0)
				goto fail;
			close(fd);
			fd = -1;
			continue;
		}
		if (rd->buf[0] == SEALED_REJECT) {
			rejected(rd->buf, total, err);
			goto fail;
		}
		if (on_response(fd, h, rd, total, early, early_len, tofu, note, note_size, z,
		                err) != 0)
			goto fail;
		/* What came after the answer is the start of the server's records. */
		memcpy(z->pending, rd->buf, rd->len);
		z->pending_len = rd->len;
		z->fd = fd;
		handshake_free(h, o);
		free(rd);
		*out = z;
		return fd;
	}
	five_fail(err, FIVE_ERR_REFUSED, "the server is busy");
fail:
	if (fd >= 0)
		close(fd);
	handshake_free(h, o);
	free(rd);
	five_seal_free(z);
	return -1;
}

void
five_seal_free(struct five_seal *z)
{
	if (z == NULL)
		return;
	five_tls_free(z->tls);
	record_sender_wipe(&z->tx);
	record_receiver_wipe(&z->rx);
	sodium_memzero(z, sizeof(*z));
	free(z);
}

int
five_seal_wrap(struct five_seal *z, const uint8_t *pt, size_t len, bool final, uint8_t *out,
               size_t room, size_t *n, struct five_error *err)
{
	int r;

	if (z->tls != NULL)
		r = five_tls_wrap(z->tls, pt, len, final, out, room, n);
	else
		r = record_seal(&z->tx, pt, len, final, out, room, n);
	if (r != 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "cannot seal a record");
	if (final)
		z->final_sealed = true;
	return 0;
}

void
five_seal_end(struct five_seal *z, int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	struct five_error ignored;
	uint8_t out[RECORD_WIRE_MAX], drop[4096];
	uint64_t now, deadline;
	ssize_t got;
	size_t n;
	int r;

	if (z->ended)
		return;
	z->ended = true;
	deadline = monotonic_ms() +
	           (uint64_t)(timeout_ms < FIVE_LINGER_MS ? timeout_ms : FIVE_LINGER_MS);
	/* Without FINAL, fived sees a truncated stream: nothing more can be done here. */
	if (!z->final_sealed &&
	    (five_seal_wrap(z, NULL, 0, true, out, sizeof(out), &n, &ignored) != 0 ||
	     five_sock_send_by(fd, out, n, deadline, &ignored) != 0))
		return;
	shutdown(fd, SHUT_WR);
	while ((now = monotonic_ms()) < deadline) {
		if ((r = poll(&pfd, 1, (int)(deadline - now))) < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if ((got = recv(fd, drop, sizeof(drop), 0)) < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
	}
}

int
five_seal_unwrap(struct five_seal *z, const uint8_t *in, size_t len, size_t *used, uint8_t *pt,
                 size_t room, size_t *n, int *status, struct five_error *err)
{
	if (z->tls != NULL)
		*status = five_tls_unwrap(z->tls, in, len, used, pt, room, n);
	else
		*status = record_open(&z->rx, in, len, used, pt, room, n);
	if (*status == RECORD_ERROR)
		return five_fail(err, FIVE_ERR_PROTOCOL, "a record failed to authenticate");
	return 0;
}

size_t
five_seal_binding_len(const struct five_seal *z)
{
	return z->tls != NULL ? FIVE_TLS_BINDING_LEN : sizeof(z->hash);
}

int
five_server_key(const char *host, const struct five_options *opts, uint8_t pk[32], char *note,
                size_t note_size, struct five_error *err)
{
	struct handshake *h = calloc(1, sizeof(*h));
	struct five_seal *z = NULL;
	struct five_options resolved, *o = &resolved;
	char port[16];
	int fd, r = -1;

	note[0] = '\0';
	if (h == NULL)
		return five_fail(err, FIVE_ERR_SYSTEM, "out of memory");
	if (five_options_resolve(opts, &resolved, err) != 0)
		goto out;
	if ((fd = five_dial_port(host, o, port, sizeof(port), err)) < 0)
		goto out;
	close(fd);
	if (pin_lookup(h, o, host, port, err) != 0)
		goto out;
	/* Not pinned yet: a first contact pins it, as any session would. */
	if (!h->known) {
		if ((fd = five_seal_open(host, o, NULL, 0, true, &z, note, note_size, err)) < 0)
			goto out;
		five_seal_end(z, fd, o->timeout_ms);
		close(fd);
		five_seal_free(z);
		if (pin_lookup(h, o, host, port, err) != 0)
			goto out;
	}
	memcpy(pk, h->server_pk, 32);
	r = 0;
out:
	free(h);
	return r;
}
