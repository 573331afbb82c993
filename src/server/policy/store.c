#include "server/policy/store.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/keytable.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/token.h"
#include "server/conf/revocations.h"

#define KEY_0RTT          "fived:0rtt:"
#define KEY_REVOKED       "fived:revoked"
#define KEY_EPOCH         "fived:epoch"
#define KEY_ISSUED        "fived:issued:"
#define ISSUED_HOUR_S     3600
#define ISSUED_KEY_LEN    24    /* the hour (8 bytes) and a hash of the identity (16) */
#define ISSUED_MAX        65536 /* identities whose count is kept */
#define DIAL_TIMEOUT_MS   1000  /* at least: a connection not made by then is tried again */
#define STORE_REFUSAL_MAX 192   /* a store's refusal of AUTH or PING, as the log shows it */

/*
 * A claim, atomically: only while the store's epoch is still the one this
 * node read (a store emptied without losing its connections, by FLUSHALL
 * or a failover to an empty replica, lost its epoch with its claims), and
 * only if nobody claimed the message before.  1: claimed now; 0: claimed
 * before; -1: the epoch changed.
 */
#define CLAIM_SCRIPT                                                                               \
	"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end "                             \
	"if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then return 1 end "               \
	"return 0"
#define CLAIM_EPOCH_CHANGED (-1)

/* A claim in flight: hiredis's callback frees it, whether or not it was answered before. */
struct store_claim {
	struct store_claim *prev, *next; /* among the store's unanswered claims */
	struct store *st;
	store_claim_fn cb; /* NULL once answered or cancelled */
	void *arg;
	uint64_t deadline_ms;
};

struct store {
	uv_loop_t *loop;
	struct addr_spec addr;
	char name[ADDR_TEXT_MAX];
	uint64_t timeout_ms;
	uint64_t stale_max_ms; /* revocation_stale_max */
	struct store_events ev;
	char user[PRINCIPAL_NAME_MAX + 1]; /* AUTH's user; "" the store's default */
	char *password;                    /* AUTH's password, NULL for none; wiped, freed */
	size_t password_len;
	redisAsyncContext *cmd; /* claims, revocations sent, the list read; NULL when down */
	redisAsyncContext *sub; /* subscribed to the revocations pushed */
	bool cmd_up, sub_up;    /* connected, not only dialed */
	bool subscribed;
	uint64_t epoch_s;        /* claims hold for stamps after it (KEY_EPOCH); 0 until read */
	bool current;            /* the list was read, and the push channel is up since */
	uint64_t stale_since_ms; /* when the list stopped being current (or fived started) */
	uint64_t dialed_ms;      /* when the connections down were last dialed */
	bool reset;              /* an answer came too late: drop the connections */
	bool said_down;          /* the log said it is unreachable, and not since that it is back */
	bool said_claims_refused;   /* the log said it refused a claim, and none was taken since */
	struct keytable *issued;    /* the cluster's counts of tokens, per identity and hour */
	struct store_claim *claims; /* unanswered, oldest last */
	unsigned nclaims;
	uv_timer_t tick;
};

static void on_connected(const redisAsyncContext *ac, int status);
static void on_disconnected(const redisAsyncContext *ac, int status);

static uint64_t
now_ms(const struct store *st)
{
	return uv_now(st->loop);
}

/* --- the connections ------------------------------------------------------- */

static void
say_down(struct store *st, const char *why)
{
	if (st->said_down)
		return;
	st->said_down = true;
	log_warn("store %s unreachable (%s): 0-RTT early data is refused, revocations known are "
	         "kept",
	         st->name, why);
}

static void
say_up(struct store *st)
{
	if (!st->cmd_up || !st->sub_up)
		return;
	log_info("store %s reachable", st->name);
	st->said_down = false;
}

static redisAsyncContext *
dial(struct store *st)
{
	redisAsyncContext *ac = st->addr.kind == ADDR_UNIX
	                                ? redisAsyncConnectUnix(st->addr.path)
	                                : redisAsyncConnect(st->addr.host, st->addr.port);

	if (ac == NULL) {
		say_down(st, "out of memory");
		return NULL;
	}
	if (ac->err != 0) {
		say_down(st, ac->errstr);
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = st;
	if (redisLibuvAttach(ac, st->loop) != REDIS_OK) {
		say_down(st, "cannot watch the connection");
		redisAsyncFree(ac);
		return NULL;
	}
	redisAsyncSetConnectCallback(ac, on_connected);
	redisAsyncSetDisconnectCallback(ac, on_disconnected);
	return ac;
}

/* The list is not current from now on, unless it already was not. */
static void
lose_current(struct store *st)
{
	if (st->current)
		st->stale_since_ms = now_ms(st);
	st->current = false;
}

/* A connection hiredis is freeing (or failed to make): forgotten here. */
static void
forget(struct store *st, const redisAsyncContext *ac)
{
	if (ac == st->cmd) {
		st->cmd = NULL;
		st->cmd_up = false;
		st->epoch_s = 0;
	} else if (ac == st->sub) {
		st->sub = NULL;
		st->sub_up = false;
		st->subscribed = false;
		lose_current(st);
	}
}

static void
on_disconnected(const redisAsyncContext *ac, int status)
{
	struct store *st = ac->data;

	say_down(st, ac->errstr[0] != '\0' ? ac->errstr : "connection closed");
	forget(st, ac);
}

static void on_list(redisAsyncContext *ac, void *reply, void *privdata);
static void on_epoch(redisAsyncContext *ac, void *reply, void *privdata);
static void on_push(redisAsyncContext *ac, void *reply, void *privdata);

/*
 * Reads the whole list once the push channel is subscribed, so that no
 * revocation falls between the two; drops the expired ones.
 */
static void
read_revocations(struct store *st)
{
	unsigned long long now = (unsigned long long)time(NULL);

	if (!st->cmd_up || !st->subscribed || st->current)
		return;
	redisAsyncCommand(st->cmd, on_list, st, "ZRANGEBYSCORE %s %llu +inf WITHSCORES LIMIT 0 %d",
	                  KEY_REVOKED, now, REVOCATIONS_MAX);
	redisAsyncCommand(st->cmd, NULL, NULL, "ZREMRANGEBYSCORE %s -inf (%llu", KEY_REVOKED, now);
}

/*
 * A store that lost its claims (restarted empty, or emptied) starts a new
 * epoch, and lost its revocations too: this node sends those it knows.
 */
static void
begin_epoch(struct store *st)
{
	st->epoch_s = 0;
	redisAsyncCommand(st->cmd, NULL, NULL, "SET %s %llu NX", KEY_EPOCH,
	                  (unsigned long long)(time(NULL) + STORE_EPOCH_MARGIN_S));
	redisAsyncCommand(st->cmd, on_epoch, st, "GET %s", KEY_EPOCH);
	if (st->ev.reconnected != NULL)
		st->ev.reconnected(st->ev.arg);
}

/* A connection ready for use: connected, and authenticated when the store asks for it. */
static void
ready(struct store *st, const redisAsyncContext *ac)
{
	if (ac == st->cmd) {
		st->cmd_up = true;
		begin_epoch(st);
	} else {
		st->sub_up = true;
		redisAsyncCommand(st->sub, on_push, st, "SUBSCRIBE %s", KEY_REVOKED);
	}
	say_up(st);
	read_revocations(st);
}

/*
 * The answer to a connection's first command, AUTH or PING: only +OK or
 * +PONG makes it ready.  A store that wants a password fived lacks, or
 * refuses the one it has, stays unreachable, said once, rather than
 * reachable until its first refusal, again and again.
 */
/*
 * What the store answered to command, for the log: its error's words,
 * printable and on one line, or that the answer was not one expected.
 */
static void
answer_words(const redisReply *r, const char *command, char why[STORE_REFUSAL_MAX])
{
	size_t i, n;

	if (r->type == REDIS_REPLY_ERROR)
		n = (size_t)snprintf(why, STORE_REFUSAL_MAX, "%s refused: %.*s", command,
		                     (int)r->len, r->str);
	else
		n = (size_t)snprintf(why, STORE_REFUSAL_MAX, "an unexpected answer to %s", command);
	for (i = 0; i < n && i < STORE_REFUSAL_MAX - 1; i++)
		if ((unsigned char)why[i] < 0x20 || (unsigned char)why[i] >= 0x7f)
			why[i] = '?';
}

static void
on_hello(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store *st = privdata;
	const redisReply *r = reply;
	char why[STORE_REFUSAL_MAX];

	if (r == NULL) /* the connection went first */
		return;
	if (r->type == REDIS_REPLY_STATUS &&
	    strcmp(r->str, st->password != NULL ? "OK" : "PONG") == 0) {
		ready(st, ac);
		return;
	}
	answer_words(r, st->password != NULL ? "AUTH" : "PING", why);
	say_down(st, why);
	redisAsyncDisconnect(ac);
}

static void
on_connected(const redisAsyncContext *ac, int status)
{
	struct store *st = ac->data;
	/* hiredis hands the context over const: the one it is, as this store holds it. */
	redisAsyncContext *c = ac == st->cmd ? st->cmd : st->sub;

	if (status != REDIS_OK) {
		say_down(st, ac->errstr);
		forget(st, ac);
		return;
	}
	if (st->password == NULL)
		redisAsyncCommand(c, on_hello, st, "PING");
	else if (st->user[0] != '\0')
		redisAsyncCommand(c, on_hello, st, "AUTH %s %b", st->user, st->password,
		                  st->password_len);
	else
		redisAsyncCommand(c, on_hello, st, "AUTH %b", st->password, st->password_len);
}

/* Drops both connections now: unanswered claims are answered unreachable by hiredis's calls. */
static void
drop(struct store *st)
{
	if (st->cmd != NULL)
		redisAsyncFree(st->cmd);
	if (st->sub != NULL)
		redisAsyncFree(st->sub);
	st->cmd = st->sub = NULL;
	st->cmd_up = st->sub_up = st->subscribed = false;
	lose_current(st);
}

/* --- revocations ------------------------------------------------------------ */

static bool
jti_valid(const char *s, size_t len)
{
	size_t i;

	if (len != TOKEN_JTI_LEN)
		return false;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* One revocation as the store holds it: a token id and its expiry in decimal. */
static void
take_revocation(struct store *st, const char *jti, size_t jti_len, const char *exp, size_t exp_len)
{
	char id[TOKEN_JTI_LEN + 1], when[24];
	uint64_t t;

	if (!jti_valid(jti, jti_len) || exp_len == 0 || exp_len >= sizeof(when)) {
		log_warn("store %s: a malformed revocation, ignored", st->name);
		return;
	}
	memcpy(id, jti, jti_len);
	id[jti_len] = '\0';
	memcpy(when, exp, exp_len);
	when[exp_len] = '\0';
	if (parse_uint(when, UINT64_MAX, &t) != 0) {
		log_warn("store %s: a revocation with a malformed expiry, ignored", st->name);
		return;
	}
	st->ev.revoked(st->ev.arg, id, t);
}

static void
on_list(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store *st = privdata;
	redisReply *r = reply;
	size_t i;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) {
		if (r != NULL)
			log_warn("store %s: the revocations could not be read", st->name);
		return;
	}
	for (i = 0; i < r->elements; i += 2) {
		redisReply *jti = r->element[i], *exp = r->element[i + 1];
		if (jti->type == REDIS_REPLY_STRING && exp->type == REDIS_REPLY_STRING)
			take_revocation(st, jti->str, jti->len, exp->str, exp->len);
	}
	/* Still subscribed: nothing pushed since the subscription was missed. */
	if (st->subscribed)
		st->current = true;
}

/* "JTI EXP", as store_revoke publishes it. */
static void
on_message(struct store *st, const char *text, size_t len)
{
	const char *space = memchr(text, ' ', len);

	if (space == NULL) {
		log_warn("store %s: a malformed revocation pushed, ignored", st->name);
		return;
	}
	take_revocation(st, text, (size_t)(space - text), space + 1,
	                len - (size_t)(space - text) - 1);
}

static void
on_push(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store *st = privdata;
	redisReply *r = reply, *kind;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
		return;
	kind = r->element[0];
	if (kind->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(kind->str, "subscribe") == 0) {
		st->subscribed = true;
		read_revocations(st);
	} else if (strcmp(kind->str, "message") == 0 && r->element[2]->type == REDIS_REPLY_STRING) {
		on_message(st, r->element[2]->str, r->element[2]->len);
	}
}

int
store_revoke(struct store *st, const char *jti, uint64_t exp)
{
	unsigned long long e = (unsigned long long)exp;
	char message[REVOCATIONS_LINE_MAX];

	if (!st->cmd_up)
		return -1;
	snprintf(message, sizeof(message), "%s %llu", jti, e);
	if (redisAsyncCommand(st->cmd, NULL, NULL, "ZADD %s %llu %s", KEY_REVOKED, e, jti) !=
	            REDIS_OK ||
	    redisAsyncCommand(st->cmd, NULL, NULL, "PUBLISH %s %s", KEY_REVOKED, message) !=
	            REDIS_OK)
		return -1;
	return 0;
}

bool
store_revocations_current(const struct store *st)
{
	return st == NULL || st->current || st->stale_max_ms == 0 ||
	       now_ms(st) - st->stale_since_ms < st->stale_max_ms;
}

bool
store_up(const struct store *st)
{
	return st->cmd_up && st->sub_up;
}

/* --- claims ----------------------------------------------------------------- */

static void
on_epoch(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store *st = privdata;
	redisReply *r = reply;
	char text[24];
	uint64_t t;

	if (r == NULL || r->type != REDIS_REPLY_STRING || r->len == 0 || r->len >= sizeof(text))
		return;
	memcpy(text, r->str, r->len);
	text[r->len] = '\0';
	if (parse_uint(text, UINT64_MAX, &t) == 0 && t > 0)
		st->epoch_s = t;
	else
		log_warn("store %s: %s is not a time: 0-RTT stays refused", st->name, KEY_EPOCH);
}

static void
unlink_claim(struct store_claim *c)
{
	struct store *st = c->st;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		st->claims = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	st->nclaims--;
}

static void
answer(struct store_claim *c, enum store_answer a)
{
	store_claim_fn cb = c->cb;

	if (cb == NULL)
		return;
	c->cb = NULL;
	unlink_claim(c);
	cb(c->arg, a);
}

static void
on_claim_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store_claim *c = privdata;
	redisReply *r = reply;
	char why[STORE_REFUSAL_MAX];

	if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
		/* A store that takes the connection but not the claim (an ACL without EVAL, say).
		 */
		if (r != NULL && !c->st->said_claims_refused) {
			answer_words(r, "a 0-RTT claim", why);
			log_warn("store %s: %s: 0-RTT early data is refused while it is",
			         c->st->name, why);
			c->st->said_claims_refused = true;
		}
		answer(c, STORE_UNREACHABLE);
	} else if (r->integer == CLAIM_EPOCH_CHANGED) {
		/* Acted on in the emptied store or not, nobody can say: as if seen. */
		answer(c, STORE_UNREACHABLE);
		if (c->st->epoch_s != 0) {
			log_warn("store %s: its epoch changed (emptied?): a new one begins",
			         c->st->name);
			begin_epoch(c->st);
		}
	} else {
		c->st->said_claims_refused = false;
		answer(c, r->integer == 1 ? STORE_FRESH : STORE_SEEN);
	}
	free(c);
}

struct store_claim *
store_claim(struct store *st, const uint8_t id[STORE_ID_LEN], uint64_t stamp_s, uint64_t ttl_s,
            store_claim_fn cb, void *arg)
{
	char key[sizeof(KEY_0RTT) + 2 * STORE_ID_LEN];
	struct store_claim *c;

	/* Claimed before the epoch began, it may have been claimed in a store since emptied. */
	if (!st->cmd_up || st->reset || st->epoch_s == 0 || stamp_s <= st->epoch_s ||
	    st->nclaims >= STORE_PENDING_MAX || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	memcpy(key, KEY_0RTT, sizeof(KEY_0RTT) - 1);
	hex_encode(id, STORE_ID_LEN, key + sizeof(KEY_0RTT) - 1);
	c->st = st;
	c->cb = cb;
	c->arg = arg;
	c->deadline_ms = now_ms(st) + st->timeout_ms;
	if (redisAsyncCommand(st->cmd, on_claim_reply, c, "EVAL %s 2 %s %s %llu %llu", CLAIM_SCRIPT,
	                      KEY_EPOCH, key, (unsigned long long)st->epoch_s,
	                      (unsigned long long)ttl_s) != REDIS_OK) {
		free(c);
		return NULL;
	}
	c->next = st->claims;
	if (c->next != NULL)
		c->next->prev = c;
	st->claims = c;
	st->nclaims++;
	return c;
}

void
store_claim_cancel(struct store_claim *c)
{
	if (c == NULL || c->cb == NULL)
		return;
	c->cb = NULL;
	unlink_claim(c);
}

/* --- token quotas ----------------------------------------------------------------- */

/* A count asked for: which entry its answer updates. */
struct issued_count {
	struct store *st;
	uint8_t key[ISSUED_KEY_LEN];
};

static void
issued_key(const char *identity, uint8_t key[ISSUED_KEY_LEN], uint64_t *hour)
{
	*hour = (uint64_t)time(NULL) / ISSUED_HOUR_S;
	memcpy(key, hour, sizeof(*hour));
	crypto_generichash(key + sizeof(*hour), ISSUED_KEY_LEN - sizeof(*hour),
	                   (const uint8_t *)identity, strlen(identity), NULL, 0);
}

uint64_t
store_issued(struct store *st, const char *identity)
{
	uint8_t key[ISSUED_KEY_LEN];
	struct keytable_value *v;
	uint64_t hour;

	issued_key(identity, key, &hour);
	v = keytable_get(st->issued, key, sizeof(key), now_ms(st), 0);
	return v != NULL ? v->count : 0;
}

static void
on_issued(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct issued_count *q = privdata;
	redisReply *r = reply;
	struct keytable_value *v;

	if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer > 0 &&
	    (v = keytable_get(q->st->issued, q->key, sizeof(q->key), now_ms(q->st), 1)) != NULL &&
	    (uint64_t)r->integer > v->count)
		v->count = (uint64_t)r->integer;
	free(q);
}

void
store_count_issued(struct store *st, const char *identity)
{
	char name[sizeof(KEY_ISSUED) + 20 + 1 + 2 * (ISSUED_KEY_LEN - 8)];
	struct issued_count *q;
	struct keytable_value *v;
	uint64_t hour;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return;
	q->st = st;
	issued_key(identity, q->key, &hour);
	/* Counted here at once: the answer, when it comes, says the cluster's. */
	if ((v = keytable_get(st->issued, q->key, sizeof(q->key), now_ms(st), 1)) != NULL)
		v->count++;
	snprintf(name, sizeof(name), "%s%llu:", KEY_ISSUED, (unsigned long long)hour);
	hex_encode(q->key + 8, ISSUED_KEY_LEN - 8, name + strlen(name));
	if (!st->cmd_up || redisAsyncCommand(st->cmd, on_issued, q, "INCR %s", name) != REDIS_OK) {
		free(q);
		return;
	}
	redisAsyncCommand(st->cmd, NULL, NULL, "EXPIRE %s %d", name, 2 * ISSUED_HOUR_S);
}

/* --- the tick: timeouts and reconnection --------------------------------------- */

static void
on_tick(uv_timer_t *t)
{
	struct store *st = t->data;
	uint64_t now = now_ms(st),
	         dial_ms = st->timeout_ms > DIAL_TIMEOUT_MS ? st->timeout_ms : DIAL_TIMEOUT_MS;
	struct store_claim *c, *next;

	for (c = st->claims; c != NULL; c = next) {
		next = c->next;
		if (now >= c->deadline_ms) {
			answer(c, STORE_UNREACHABLE);
			st->reset = true;
		}
	}
	/* Dialed long ago and still not up: as dead as one that stopped answering. */
	if (((st->cmd != NULL && !st->cmd_up) || (st->sub != NULL && !st->sub_up)) &&
	    now - st->dialed_ms >= dial_ms)
		st->reset = true;
	if (st->reset) {
		st->reset = false;
		say_down(st, "no answer in time");
		drop(st);
		st->dialed_ms = now;
		return;
	}
	if ((st->cmd != NULL && st->sub != NULL) || now - st->dialed_ms < STORE_RETRY_MS)
		return;
	st->dialed_ms = now;
	if (st->cmd == NULL)
		st->cmd = dial(st);
	if (st->sub == NULL)
		st->sub = dial(st);
}

int
store_password_parse(const char *text, size_t len, size_t *password_len)
{
	if (len > 0 && text[len - 1] == '\n')
		len -= len > 1 && text[len - 2] == '\r' ? 2 : 1;
	if (len == 0 || len > STORE_PASSWORD_MAX || memchr(text, '\n', len) != NULL ||
	    memchr(text, '\r', len) != NULL || memchr(text, '\0', len) != NULL)
		return -1;
	*password_len = len;
	return 0;
}

/* store_password_file's text kept in st.  Returns 0, or -1 after logging why. */
static int
take_password(struct store *st, const struct config *cfg, const char *text, size_t len)
{
	if (store_password_parse(text, len, &len) != 0) {
		log_error("store_password_file %s: " STORE_PASSWORD_FORM, cfg->store_password_file,
		          STORE_PASSWORD_MAX);
		return -1;
	}
	if ((st->password = malloc(len)) == NULL) {
		log_error("out of memory");
		return -1;
	}
	memcpy(st->password, text, len);
	st->password_len = len;
	str_copy(st->user, cfg->store_user, sizeof(st->user));
	return 0;
}

static void
free_password(struct store *st)
{
	if (st->password != NULL)
		sodium_memzero(st->password, st->password_len);
	free(st->password);
}

struct store *
store_new(uv_loop_t *loop, const struct config *cfg, const char *password, size_t password_len,
          const struct store_events *ev)
{
	struct store *st;

	if (!cfg->has_store)
		return NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (st->issued = keytable_new(2 * ISSUED_HOUR_S * 1000ULL, ISSUED_MAX)) == NULL) {
		log_error("out of memory");
		free(st);
		return NULL;
	}
	if (password != NULL && take_password(st, cfg, password, password_len) != 0) {
		keytable_free(st->issued);
		free(st);
		return NULL;
	}
	st->loop = loop;
	st->addr = cfg->store;
	addr_format(&cfg->store, st->name, sizeof(st->name));
	st->timeout_ms = cfg->store_timeout_ms;
	st->stale_max_ms = cfg->revocation_stale_max_ms;
	st->ev = *ev;
	st->stale_since_ms = now_ms(st);
	st->dialed_ms = now_ms(st);
	st->cmd = dial(st);
	st->sub = dial(st);
	uv_timer_init(loop, &st->tick);
	st->tick.data = st;
	uv_timer_start(&st->tick, on_tick, STORE_TICK_MS, STORE_TICK_MS);
	return st;
}

static void
on_tick_closed(uv_handle_t *h)
{
	struct store *st = h->data;

	keytable_free(st->issued);
	free_password(st);
	free(st);
}

void
store_free(struct store *st)
{
	if (st == NULL)
		return;
	st->said_down = true; /* closing it is not losing it */
	drop(st);
	uv_close((uv_handle_t *)&st->tick, on_tick_closed);
}
