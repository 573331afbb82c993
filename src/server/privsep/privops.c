#include "server/privsep/privops.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/io.h"
#include "common/keyfile.h"
#include "common/keytable.h"
#include "common/log.h"
#include "common/util.h"
#include "crypto/paseto.h"
#include "proto/sealed.h"
#include "server/conf/keys.h"
#include "server/conf/tlsfiles.h"
#include "server/privsep/sockets.h"

#define KEY_STRIP          ".key"
#define TOKEN_KEY_SUFFIX   "-token.key"
#define SIGN_KEY_SUFFIX    "-sign.key"
#define REVOKED_SUFFIX     "-revoked"
#define EARLY_FILE_MAX     64
#define EARLY_MODE         0600
#define NS_PER_S           1000000000ULL
#define GROUPS_TRY_MAX     65536 /* gids getgrouplist may report; more is refused */
#define CONTROL_PREFIX     "control:"
#define ADMIN_PREFIX       "admin:"
#define PEER_PREFIX        "peer:" /* a worker's socket for ATTACHes the others pass on */
#define PEER_NAME_MAX      64
#define ACCOUNT_GROUPS_MAX (PRIVMSG_TEXT_MAX - 32)
/* systemd's native journal protocol: one datagram per entry (see auditlog.h). */
#define JOURNAL_SOCKET          "/run/systemd/journal/socket"
#define JOURNAL_SEND_TIMEOUT_MS 1000

/* --- answers ---------------------------------------------------------------- */

static int
answer(struct priv_answer *ans, bool ok, const void *text, size_t len)
{
	ans->ok = ok;
	ans->len = 0;
	if (len > PRIVMSG_TEXT_MAX)
		return -1;
	if ((ans->text = malloc(len + 1)) == NULL) {
		ans->ok = false;
		return 0;
	}
	if (len > 0)
		memcpy(ans->text, text, len);
	ans->text[len] = '\0';
	ans->len = len;
	return 0;
}

static int
refuse(struct priv_answer *ans, const char *why)
{
	return answer(ans, false, why, strlen(why));
}

/* A refusal whose text is an errno, as priv.c turns it back into one. */
static int
refuse_errno(struct priv_answer *ans, int e)
{
	char text[16];

	snprintf(text, sizeof(text), "%d", e);
	return answer(ans, false, text, strlen(text));
}

void
privops_answer_clear(struct priv_answer *ans)
{
	if (ans->text != NULL)
		sodium_memzero(ans->text, ans->len);
	free(ans->text);
	ans->text = NULL;
	ans->len = 0;
	if (ans->fd >= 0)
		close(ans->fd);
	ans->fd = -1;
}

/* --- loading ------------------------------------------------------------------ */

/* The 0-RTT floor's file, beside the static key. */
static int
early_path(const char *key_path, char *out, size_t size)
{
	return path_beside(key_path, KEY_STRIP, PRIVOPS_EARLY_SUFFIX, out, size);
}

void
privops_key_path(const struct config *cfg, char *out, size_t size)
{
	const char *home = getenv("HOME");

	if (cfg->key_file[0] != '\0')
		snprintf(out, size, "%s", cfg->key_file);
	else if (geteuid() == 0 || home == NULL)
		snprintf(out, size, "%s", PRIVOPS_DEFAULT_KEY_FILE);
	else
		snprintf(out, size, "%s%s", home, PRIVOPS_USER_KEY_FILE);
}

int
privops_key_flags(const struct config *cfg)
{
	return KEYFILE_CREATE | (cfg->key_file[0] == '\0' ? KEYFILE_MKDIR : 0);
}

int
privops_token_key_path(const char *key_path, char *out, size_t size)
{
	return path_beside(key_path, KEY_STRIP, TOKEN_KEY_SUFFIX, out, size);
}

int
privops_load_server_key(const char *key_path, int flags, struct server_secret **out)
{
	struct server_secret *k = sodium_malloc(sizeof(*k));
	char err[KEYFILE_ERR_MAX], fp[KEYFILE_FP_MAX], path[CONFIG_PATH_MAX + 80];
	int made;

	*out = NULL;
	if (k == NULL) {
		log_error("out of memory");
		return -1;
	}
	if ((made = keyfile_load(key_path, PRIVOPS_SERVER_KEY_LABEL, flags, k->sk, err,
	                         sizeof(err))) < 0) {
		log_error("%s", err);
		sodium_free(k);
		return -1;
	}
	crypto_scalarmult_base(k->pk, k->sk);
	if (made == KEYFILE_CREATED) {
		keyfile_fingerprint(k->pk, fp);
		log_info("created a new server key in %s (fingerprint %s)", key_path, fp);
		/* A new key has served no 0-RTT data: its floor starts at 0, not guessed. */
		if (early_path(key_path, path, sizeof(path)) == 0 &&
		    io_replace_file(path, "0\n", 2, EARLY_MODE) != 0)
			log_warn("%s: cannot write the 0-RTT floor", path);
	}
	*out = k;
	return 0;
}

/* An Ed25519 key kept as its seed in path under label, into locked memory; what names it. */
static int
load_seed_key(const char *path, const char *label, const char *what, int flags,
              struct token_key **out)
{
	char err[KEYFILE_ERR_MAX];
	uint8_t seed[TOKEN_SEED_LEN];
	struct token_key *k;
	int made, r;

	*out = NULL;
	if ((k = sodium_malloc(sizeof(*k))) == NULL) {
		log_error("out of memory");
		return -1;
	}
	memset(k, 0, sizeof(*k));
	if ((made = keyfile_load(path, label, flags, seed, err, sizeof(err))) < 0) {
		log_error("%s", err);
		sodium_free(k);
		return -1;
	}
	r = token_key_from_seed(seed, k);
	sodium_memzero(seed, sizeof(seed));
	if (r != 0) {
		log_error("%s: cannot derive the %s", path, what);
		sodium_free(k);
		return -1;
	}
	if (made == KEYFILE_CREATED)
		log_info("created a new %s in %s (key id %s)", what, path, k->kid);
	*out = k;
	return 0;
}

int
privops_load_token_key(const char *key_path, int flags, struct token_key **out)
{
	char path[CONFIG_PATH_MAX + 80];

	*out = NULL;
	if (privops_token_key_path(key_path, path, sizeof(path)) != 0) {
		log_error("%s: path too long for the token key", key_path);
		return -1;
	}
	return load_seed_key(path, PRIVOPS_TOKEN_KEY_LABEL, "token key", flags, out);
}

int
privops_sign_key_path(const struct config *cfg, const char *key_path, char *out, size_t size)
{
	if (cfg->sign_key_file[0] != '\0')
		return str_copy(out, cfg->sign_key_file, size) < size ? 0 : -1;
	return path_beside(key_path, KEY_STRIP, SIGN_KEY_SUFFIX, out, size);
}

int
privops_load_sign_key(const char *path, int flags, struct token_key **out)
{
	return load_seed_key(path, PRIVOPS_SIGN_KEY_LABEL, "signing key", flags, out);
}

int
privops_provider_name(const struct config *cfg, char out[PROOF_PROVIDER_MAX + 1])
{
	char host[PROOF_PROVIDER_MAX + 2];

	out[0] = '\0';
	if (cfg->provider_name[0] != '\0') {
		str_copy(out, cfg->provider_name, PROOF_PROVIDER_MAX + 1);
		return 0;
	}
	/* A name cut short by gethostname would sign for another provider: refused. */
	if (gethostname(host, sizeof(host)) != 0 || memchr(host, '\0', sizeof(host)) == NULL ||
	    !proof_provider_valid(host))
		return -1;
	str_copy(out, host, PROOF_PROVIDER_MAX + 1);
	return 0;
}

int
privops_revocations_path(const struct config *cfg, const char *key_path, char *out, size_t size)
{
	if (cfg->revocation_file[0] != '\0')
		return str_copy(out, cfg->revocation_file, size) < size ? 0 : -1;
	return path_beside(key_path, KEY_STRIP, REVOKED_SUFFIX, out, size);
}

static int
load_revoked(struct priv_state *st)
{
	char path[sizeof(st->key_path) + 16];

	if (privops_revocations_path(st->cfg, st->key_path, path, sizeof(path)) != 0) {
		log_error("%s: path too long for the revocation file", st->key_path);
		return -1;
	}
	return revocations_load_file(&st->revoked, path, (uint64_t)time(NULL));
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/*
 * Only one fived on a host acts on a key's early data: another one, with
 * its own record of the timestamps it has seen, would act on a first
 * message the first has acted on already.
 */
static bool
early_lock(struct priv_state *st)
{
	char path[sizeof(st->early_path) + 8];

	snprintf(path, sizeof(path), "%s.lock", st->early_path);
	st->early_lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, EARLY_MODE);
	if (st->early_lock >= 0 && flock(st->early_lock, LOCK_EX | LOCK_NB) == 0)
		return true;
	log_warn("%s: another fived uses this key; this one acts on no early data (0-RTT), "
	         "only on the one round trip handshake",
	         path);
	return false;
}

/*
 * The 0-RTT floor: no early data whose timestamp is at or below it is
 * acted on.  Its file is made with the key (floor 0).  Without it, a key
 * that may have served 0-RTT we no longer know of gets a floor as late as
 * any such timestamp could be (now and the clock skew allowed ahead).
 */
static int
load_early(struct priv_state *st)
{
	char *text = NULL;
	size_t len;
	uint64_t v;
	int e;

	if (early_path(st->key_path, st->early_path, sizeof(st->early_path)) != 0)
		return -1;
	if (!early_lock(st)) {
		st->early_reserved = UINT64_MAX;
		return 0;
	}
	e = io_read_file(st->early_path, EARLY_FILE_MAX, &text, &len);
	if (e == 0 && len > 0 && text[len - 1] == '\n')
		text[len - 1] = '\0';
	if (e == 0 && parse_uint(text, UINT64_MAX, &v) == 0) {
		st->early_reserved = v;
	} else {
		if (e != -ENOENT)
			log_warn("%s: %s; refusing 0-RTT data for %d s", st->early_path,
			         e != 0 ? strerror(-e) : "damaged", PRIVOPS_EARLY_SKEW_S);
		st->early_reserved = now_ns() + PRIVOPS_EARLY_SKEW_S * NS_PER_S;
	}
	free(text);
	return 0;
}

static int
load_sign(struct priv_state *st)
{
	char name[PROOF_PROVIDER_MAX + 1];

	if (privops_sign_key_path(st->cfg, st->key_path, st->sign_path, sizeof(st->sign_path)) !=
	    0) {
		log_error("%s: path too long for the signing key", st->key_path);
		return -1;
	}
	if (privops_provider_name(st->cfg, name) != 0)
		log_warn("this host's name is not a provider name: proofs of identity are refused "
		         "until provider_name is set");
	return privops_load_sign_key(st->sign_path, privops_key_flags(st->cfg), &st->sign_key);
}

/*
 * The cluster key, when one is configured: never made here, since every
 * node must hold the same one (docs/CLUSTER.md says how it is made).
 */
static int
load_cluster_key(struct priv_state *st)
{
	const char *path = st->cfg->cluster_key_file;
	char err[KEYFILE_ERR_MAX];

	if (path[0] == '\0')
		return 0;
	if ((st->cluster_key = sodium_malloc(KEYFILE_SECRET_LEN)) == NULL) {
		log_error("out of memory");
		return -1;
	}
	if (keyfile_load(path, PRIVOPS_CLUSTER_KEY_LABEL, 0, st->cluster_key, err, sizeof(err)) !=
	    KEYFILE_READ) {
		log_error("cluster key: %s", err);
		return -1;
	}
	return 0;
}

static void on_early_evict(void *ctx, const struct keytable_value *v);

int
privops_init(struct priv_state *st, struct config *cfg, const char *cfg_path, const char *text,
             size_t len)
{
	memset(st, 0, sizeof(*st));
	st->early_lock = -1;
	revocations_init(&st->revoked);
	st->cfg = config_ref(cfg);
	st->cfg_path = cfg_path;
	st->worker_uid = geteuid();
	st->worker_gid = getegid();
	st->nworkers = 1;
	randombytes_buf(&st->peer_token, sizeof(st->peer_token));
	if ((st->cfg_text = malloc(len + 1)) == NULL ||
	    (st->issued = keytable_new(PRIVOPS_ISSUE_WINDOW_S * 1000ULL,
	                               PRIVOPS_ISSUE_IDENTITIES)) == NULL ||
	    (st->early_last = keytable_new(PRIVOPS_EARLY_FORGET_MS, PRIVOPS_EARLY_KEYS_MAX)) ==
	            NULL) {
		log_error("out of memory");
		goto fail;
	}
	keytable_on_evict(st->early_last, on_early_evict, st);
	memcpy(st->cfg_text, text, len);
	st->cfg_text[len] = '\0';
	st->cfg_len = len;
	privops_key_path(cfg, st->key_path, sizeof(st->key_path));
	if (privops_load_server_key(st->key_path, privops_key_flags(cfg), &st->key) != 0 ||
	    privops_load_token_key(st->key_path, privops_key_flags(cfg), &st->token_key) != 0 ||
	    load_sign(st) != 0 || load_cluster_key(st) != 0 || load_revoked(st) != 0 ||
	    load_early(st) != 0 || tls_files_prepare(cfg, st->key_path) != 0)
		goto fail;
	return 0;
fail:
	privops_free(st);
	return -1;
}

static void
close_listening(struct privops_listening *l)
{
	unsigned i;

	for (i = 0; i < l->nfds; i++)
		close(l->fds[i]);
	if (l->unlink_path[0] != '\0')
		unlink(l->unlink_path);
}

void
privops_close_listening(struct priv_state *st)
{
	size_t i;

	for (i = 0; i < st->nlistening; i++)
		close_listening(&st->listening[i]);
	st->nlistening = 0;
}

void
privops_free(struct priv_state *st)
{
	privops_close_listening(st);
	if (st->key != NULL)
		sodium_free(st->key);
	if (st->token_key != NULL) {
		token_key_wipe(st->token_key);
		sodium_free(st->token_key);
	}
	if (st->sign_key != NULL) {
		token_key_wipe(st->sign_key);
		sodium_free(st->sign_key);
	}
	if (st->cluster_key != NULL)
		sodium_free(st->cluster_key);
	st->cluster_key = NULL;
	st->key = NULL;
	st->token_key = NULL;
	st->sign_key = NULL;
	revocations_free(&st->revoked);
	if (st->early_lock >= 0)
		close(st->early_lock);
	st->early_lock = -1;
	keytable_free(st->issued);
	st->issued = NULL;
	keytable_free(st->early_last);
	st->early_last = NULL;
	free(st->cfg_text);
	st->cfg_text = NULL;
	config_unref(st->cfg);
	st->cfg = NULL;
}

/* --- listening sockets ------------------------------------------------------- */

/* The path after prefix in address, or NULL when address does not start with it. */
static const char *
after(const char *address, const char *prefix)
{
	return strncmp(address, prefix, strlen(prefix)) == 0 ? address + strlen(prefix) : NULL;
}

/* The path of a control or admin socket ("control:PATH", "admin:PATH"), or NULL. */
static const char *
local_socket(const char *address)
{
	const char *path = after(address, CONTROL_PREFIX);

	return path != NULL ? path : after(address, ADMIN_PREFIX);
}

static bool
is_address(const struct addr_spec *a, const char *address)
{
	char text[ADDR_TEXT_MAX];

	addr_format(a, text, sizeof(text));
	return strcmp(text, address) == 0;
}

/* Whether address is where sessions come: a listen entry or the fallback. */
static bool
names_sessions(const struct config *cfg, const char *address)
{
	size_t i;

	for (i = 0; i < cfg->nlisten; i++)
		if (is_address(&cfg->listen[i], address))
			return true;
	return cfg->has_listen_fallback && is_address(&cfg->listen_fallback, address);
}

/*
 * Whether path is a worker's admin socket: admin_socket itself (the
 * first worker's), or with several, admin_socket.K for worker K.
 */
static bool
names_admin(const struct config *cfg, unsigned nworkers, const char *path)
{
	size_t len = strlen(cfg->admin_socket);
	uint64_t k;

	if (len == 0 || strncmp(path, cfg->admin_socket, len) != 0)
		return false;
	if (path[len] == '\0')
		return true;
	return path[len] == '.' && parse_uint(path + len + 1, nworkers - 1, &k) == 0 && k > 0;
}

/*
 * Whether the configuration names address: a listen entry, the fallback,
 * the metrics endpoint, the control socket or an admin socket.
 */
static bool
names_listen(const struct config *cfg, unsigned nworkers, const char *address)
{
	const char *path;

	/* Made for the workers, not named by the configuration: kept while they are. */
	if (after(address, PEER_PREFIX) != NULL)
		return nworkers > 1;

	if ((path = after(address, CONTROL_PREFIX)) != NULL)
		return cfg->control_socket[0] != '\0' && strcmp(path, cfg->control_socket) == 0;
	if ((path = after(address, ADMIN_PREFIX)) != NULL)
		return names_admin(cfg, nworkers, path);
	return names_sessions(cfg, address) ||
	       (cfg->has_metrics_listen && is_address(&cfg->metrics_listen, address));
}

/* A copy of the asking worker's socket of l. */
static int
hand_listening(const struct priv_state *st, const struct privops_listening *l,
               struct priv_answer *ans)
{
	int fd = l->fds[l->nfds > 1 ? st->asking % l->nfds : 0];

	if ((ans->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return refuse_errno(ans, errno);
	return answer(ans, true, "", 0);
}

/*
 * What worker listens on when it asks for address: with several workers,
 * worker K's admin socket is admin_socket.K.  Returns 0, or -1 when that
 * name is too long.
 */
static int
worker_address(const char *address, unsigned worker, char *out, size_t size)
{
	const char *path = after(address, ADMIN_PREFIX);
	int n;

	if (path == NULL || worker == 0)
		n = snprintf(out, size, "%s", address);
	else
		n = snprintf(out, size, "%s%s.%u", ADMIN_PREFIX, path, worker);
	return n >= 0 && (size_t)n < size ? 0 : -1;
}

/* The socket address a worker names: "control:PATH" or "admin:PATH", or an address. */
static int
listen_address(const char *address, struct addr_spec *a)
{
	const char *local = local_socket(address), *why;
	char text[PRIVMSG_ARG_MAX + 8];

	snprintf(text, sizeof(text), "%s%s", local != NULL ? "unix:" : "",
	         local != NULL ? local : address);
	return addr_parse(text, a, &why) != 0 || (local != NULL && a->kind != ADDR_UNIX) ? -1 : 0;
}

/*
 * Worker k's peer socket: a Unix socket in the abstract namespace, whose
 * name has a secret of this fived's in it.  Anyone who learns the name
 * (/proc/net/unix lists it) may connect: the worker takes connections
 * only from its monitor (SO_PEERCRED), which makes them.
 */
static socklen_t
peer_address(const struct priv_state *st, unsigned k, struct sockaddr_un *sun)
{
	int n;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1, "fived-peer-%016llx-%u",
	             (unsigned long long)st->peer_token, k);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* The kept socket of that name, or NULL. */
static struct privops_listening *
find_listening(struct priv_state *st, const char *name)
{
	size_t i;

	for (i = 0; i < st->nlistening; i++)
		if (strcmp(st->listening[i].address, name) == 0)
			return &st->listening[i];
	return NULL;
}

/*
 * The next free entry, named, for one socket and no file (the caller
 * fills in its descriptors), not yet counted; NULL when there is none.
 */
static struct privops_listening *
next_listening(struct priv_state *st, const char *name)
{
	struct privops_listening *l;

	if (st->nlistening == PRIVOPS_LISTEN_MAX)
		return NULL;
	l = &st->listening[st->nlistening];
	str_copy(l->address, name, sizeof(l->address));
	l->nfds = 1;
	l->unlink_path[0] = '\0';
	return l;
}

/* Worker k's peer socket, made the first time either it or another asks. */
static struct privops_listening *
peer_listening(struct priv_state *st, unsigned k)
{
	struct privops_listening *l;
	char name[PEER_NAME_MAX];
	struct sockaddr_un sun;
	socklen_t len = peer_address(st, k, &sun);

	snprintf(name, sizeof(name), "%s%u", PEER_PREFIX, k);
	if ((l = find_listening(st, name)) != NULL)
		return l;
	if ((l = next_listening(st, name)) == NULL ||
	    (l->fds[0] = sockets_listen_abstract(&sun, len)) < 0)
		return NULL;
	st->nlistening++;
	return l;
}

/* With several workers: the asking worker's peer socket, to accept on. */
static int
answer_peer_listen(struct priv_state *st, struct priv_answer *ans)
{
	struct privops_listening *l;

	if (st->nworkers <= 1)
		return -1;
	if ((l = peer_listening(st, st->asking)) == NULL)
		return refuse_errno(ans, EMFILE);
	return hand_listening(st, l, ans);
}

/*
 * A connection to worker k's peer socket, for the asking worker to pass
 * on an ATTACH whose session worker k holds.  The monitor connects, so
 * that worker k sees the monitor's credentials on it.
 */
static int
answer_peer_connect(struct priv_state *st, const struct priv_request *req, struct priv_answer *ans)
{
	struct sockaddr_un sun;
	socklen_t len;
	int fd;

	if (st->nworkers <= 1 || req->number >= st->nworkers || req->number == st->asking)
		return -1;
	if (peer_listening(st, (unsigned)req->number) == NULL)
		return refuse_errno(ans, EMFILE);
	len = peer_address(st, (unsigned)req->number, &sun);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return refuse_errno(ans, errno);
	if (connect(fd, (struct sockaddr *)&sun, len) != 0) {
		int e = errno;

		close(fd);
		return refuse_errno(ans, e);
	}
	ans->fd = fd;
	return answer(ans, true, "", 0);
}

/*
 * The socket worker has for address (a name the configuration has, which
 * listen_address parsed into *a): kept, or made now.  NULL with *err, an
 * errno value, when it cannot be.
 */
static struct privops_listening *
listening_for(struct priv_state *st, const char *address, unsigned worker, struct addr_spec *a,
              int *err)
{
	char name[PRIVMSG_ARG_MAX];
	struct privops_listening *l;
	int fd;

	if (worker_address(address, worker, name, sizeof(name)) != 0 ||
	    listen_address(name, a) != 0) {
		log_error("cannot listen on %s's admin socket for worker %u: the path is too long",
		          address, worker);
		*err = ENAMETOOLONG;
		return NULL;
	}
	if ((l = find_listening(st, name)) != NULL)
		return l;
	*err = EMFILE;
	if ((l = next_listening(st, name)) == NULL)
		return NULL;
	/* Several workers share a TCP address for sessions by the connections' sources. */
	if (st->nworkers > 1 && a->kind == ADDR_TCP && names_sessions(st->cfg, address)) {
		fd = sockets_listen_group(a, st->nworkers, l->fds);
		l->nfds = st->nworkers;
	} else {
		fd = l->fds[0] = sockets_listen(a, local_socket(name) != NULL,
		                                names_sessions(st->cfg, address));
	}
	if (fd < 0) {
		*err = -fd;
		return NULL;
	}
	if (a->kind == ADDR_UNIX)
		str_copy(l->unlink_path, a->path, sizeof(l->unlink_path));
	st->nlistening++;
	return l;
}

static int
answer_listen(struct priv_state *st, const struct priv_request *req, struct priv_answer *ans)
{
	struct privops_listening *l;
	struct addr_spec a;
	unsigned k;
	int err;

	if (strcmp(req->arg, PEER_PREFIX) == 0)
		return answer_peer_listen(st, ans);
	if (listen_address(req->arg, &a) != 0)
		return -1;
	if (!names_listen(st->cfg, 1, req->arg)) {
		log_error("the worker asked to listen on %s, which the configuration does not name",
		          req->arg);
		return refuse_errno(ans, EPERM);
	}
	/*
	 * Every worker's admin socket at once: fivectl asks them in turn until
	 * one is missing, and one whose worker is down must not look absent.
	 */
	for (k = 0; after(req->arg, ADMIN_PREFIX) != NULL && k < st->nworkers; k++)
		if (listening_for(st, req->arg, k, &a, &err) == NULL)
			return refuse_errno(ans, err);
	if ((l = listening_for(st, req->arg, st->asking, &a, &err)) == NULL)
		return refuse_errno(ans, err);
	return hand_listening(st, l, ans);
}

/* After a reload: sockets the configuration no longer names are closed. */
static void
prune_listening(struct priv_state *st)
{
	size_t i = 0;

	while (i < st->nlistening) {
		if (names_listen(st->cfg, st->nworkers, st->listening[i].address)) {
			i++;
			continue;
		}
		close_listening(&st->listening[i]);
		st->listening[i] = st->listening[--st->nlistening];
	}
}

int
privops_set_config(struct priv_state *st, struct config *cfg, char *text, size_t len)
{
	char key_path[sizeof(st->key_path)];

	privops_key_path(cfg, key_path, sizeof(key_path));
	if (strcmp(key_path, st->key_path) != 0 ||
	    strcmp(cfg->revocation_file, st->cfg->revocation_file) != 0 ||
	    strcmp(cfg->sign_key_file, st->cfg->sign_key_file) != 0) {
		log_error("reload rejected, keeping the running configuration: key_file, "
		          "revocation_file and sign_key_file change only with a restart");
		return -1;
	}
	config_unref(st->cfg);
	free(st->cfg_text);
	st->cfg = cfg;
	st->cfg_text = text;
	st->cfg_len = len;
	prune_listening(st);
	return 0;
}

/* --- files ------------------------------------------------------------------------ */

/*
 * Whether path is a file the configuration names for the worker to read;
 * *secret names what it holds when it is a secret (NULL when it is not).
 */
static bool
names_file(const struct priv_state *st, const char *path, const char **secret)
{
	const struct config *cfg = st->cfg;
	char cert[sizeof(st->key_path) + 16], key[sizeof(st->key_path) + 16];
	const char *plain[] = {cfg->authorized_clients, cfg->tls_clients, cfg->tls_client_ca,
	                       cfg->token_trusted_keys, cert};
	size_t i;

	*secret = NULL;
	if (tls_files_paths(cfg, st->key_path, cert, sizeof(cert), key, sizeof(key)) != 0)
		return false;
	for (i = 0; i < ARRAY_LEN(plain); i++)
		if (plain[i][0] != '\0' && strcmp(plain[i], path) == 0)
			return true;
	if (strcmp(key, path) == 0)
		*secret = "TLS key";
	else if (cfg->store_password_file[0] != '\0' && strcmp(cfg->store_password_file, path) == 0)
		*secret = "store password file";
	return *secret != NULL;
}

static int
answer_file(struct priv_state *st, const struct priv_request *req, struct priv_answer *ans)
{
	char *text, why[PRIVMSG_ARG_MAX + 128];
	const char *secret;
	size_t len;
	int e;

	if (!names_file(st, req->arg, &secret)) {
		log_error("the worker asked for %s, which the configuration does not name",
		          req->arg);
		return refuse(ans, "not a file the configuration names");
	}
	if (secret != NULL && secret_file_check(secret, req->arg, why, sizeof(why)) != 0)
		return refuse(ans, why);
	if ((e = io_read_file(req->arg, CONFIG_FILE_MAX, &text, &len)) != 0) {
		snprintf(why, sizeof(why), "%s: %s", req->arg,
		         e == -EFBIG ? "larger than 1 MiB" : strerror(-e));
		return refuse(ans, why);
	}
	e = answer(ans, true, text, len);
	sodium_memzero(text, len);
	free(text);
	return e;
}

/*
 * A socket connected to the journal's native socket.  Sends wait at most
 * JOURNAL_SEND_TIMEOUT_MS for room in its queue: a journal stalled longer
 * loses records (counted, and refused sessions with audit_required) rather
 * than stopping the worker's loop.
 */
static int
journal_socket(void)
{
	const struct timeval timeout = {.tv_sec = JOURNAL_SEND_TIMEOUT_MS / 1000,
	                                .tv_usec = JOURNAL_SEND_TIMEOUT_MS % 1000 * 1000};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, e;

	str_copy(sa.sun_path, JOURNAL_SOCKET, sizeof(sa.sun_path));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout)) != 0 ||
	    connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* The file the configuration names, opened for appending; a descriptor or -errno. */
static int
audit_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);

	return fd >= 0 ? fd : -errno;
}

/* Refused with the errno, so that the worker can say why (priv_audit). */
static int
answer_audit(struct priv_state *st, struct priv_answer *ans)
{
	int fd;

	if (strcmp(st->cfg->audit_log, CONFIG_AUDIT_JOURNAL) == 0)
		fd = journal_socket();
	else if (st->cfg->audit_log[0] == '/')
		fd = audit_file(st->cfg->audit_log);
	else
		return refuse(ans, "the audit log is neither a file nor the journal");
	if (fd < 0)
		return refuse_errno(ans, -fd);
	ans->fd = fd;
	return answer(ans, true, "", 0);
}

/* --- keys ------------------------------------------------------------------------- */

/*
 * The public halves and where the key lives: pk (32), token pk (32),
 * signing pk (32), the provider's name as one length byte and its bytes
 * (0 when it has none), the key's path.
 */
static int
answer_keys(struct priv_state *st, struct priv_answer *ans)
{
	uint8_t out[PRIVOPS_KEYS_FIXED + PROOF_PROVIDER_MAX + sizeof(st->key_path)];
	char name[PROOF_PROVIDER_MAX + 1];
	size_t n = strlen(st->key_path), m;

	if (privops_provider_name(st->cfg, name) != 0)
		name[0] = '\0';
	m = strlen(name);
	memcpy(out, st->key->pk, 32);
	memcpy(out + 32, st->token_key->pk, 32);
	memcpy(out + 64, st->sign_key->pk, 32);
	out[96] = (uint8_t)m;
	memcpy(out + PRIVOPS_KEYS_FIXED, name, m);
	memcpy(out + PRIVOPS_KEYS_FIXED + m, st->key_path, n);
	return answer(ans, true, out, PRIVOPS_KEYS_FIXED + m + n);
}

static int
answer_dh(struct priv_state *st, const struct priv_request *req, struct priv_answer *ans)
{
	uint8_t shared[PRIVMSG_DH_LEN];
	int r;

	/* A low-order point gives all zeros: refused, as Noise requires. */
	if (crypto_scalarmult(shared, st->key->sk, req->pk) != 0)
		return refuse(ans, "not a usable public key");
	r = answer(ans, true, shared, sizeof(shared));
	sodium_memzero(shared, sizeof(shared));
	return r;
}

/* --- tokens ------------------------------------------------------------------------- */

/* Counts a token for identity; false when its hour's quota is spent. */
static bool
take_quota(struct priv_state *st, const char *identity)
{
	uint64_t now_ms = now_ns() / 1000000, window_ms = PRIVOPS_ISSUE_WINDOW_S * 1000ULL;
	struct keytable_value *v = keytable_get(st->issued, identity, strlen(identity), now_ms, 1);

	if (v == NULL)
		return false;
	if (now_ms - v->stamp_ms >= window_ms || v->count == 0) {
		v->stamp_ms = now_ms;
		v->count = 0;
	}
	if (v->count >= st->cfg->max_tokens_per_hour)
		return false;
	v->count++;
	return true;
}

/* Whether claims are what this node issues now: well-formed, current, within the lifetime allowed.
 */
static const char *
check_claims(const struct priv_state *st, const struct priv_request *req, struct token_claims *c)
{
	uint64_t now = (uint64_t)time(NULL);

	if (token_claims_decode(req->blob, req->blob_len, c) != 0)
		return "malformed claims";
	if (c->iat + TOKEN_CLOCK_SKEW < now || c->iat > now + TOKEN_CLOCK_SKEW)
		return "not issued now";
	if (c->exp - c->iat > st->cfg->token_max_ttl_s)
		return "lifetime beyond token_max_ttl";
	if (req->number != (st->cfg->token_local ? TOKEN_LOCAL : TOKEN_PUBLIC))
		return "not the configured token format";
	return NULL;
}

static int
answer_issue(struct priv_state *st, const struct priv_request *req, struct priv_answer *ans)
{
	struct token_claims c;
	char token[PASETO_TOKEN_SIZE];
	const char *why;
	int r;

	if (req->arg[0] != '\0' && !auth_identity_valid(req->arg))
		return -1;
	if ((why = check_claims(st, req, &c)) != NULL)
		return refuse(ans, why);
	if (!take_quota(st, req->arg)) {
		log_warn("token quota: %s asked for more than %llu tokens this hour",
		         req->arg[0] != '\0' ? req->arg : "an unauthenticated client",
		         (unsigned long long)st->cfg->max_tokens_per_hour);
		return refuse(ans, "token quota reached");
	}
	if (token_issue(st->token_key, (enum token_format)req->number, &c, token, sizeof(token)) !=
	    0)
		return refuse(ans, "cannot issue");
	r = answer(ans, true, token, strlen(token));
	sodium_memzero(&c, sizeof(c));
	return r;
}

static int
answer_open(struct priv_state *st, const struct priv_request *req, struct priv_answer *ans)
{
	char footer[TOKEN_FOOTER_LEN + 1];
	uint8_t m[PASETO_MESSAGE_MAX];
	size_t mlen;
	int r;

	snprintf(footer, sizeof(footer), "%s%s%s", TOKEN_FOOTER_PREFIX, st->token_key->kid,
	         TOKEN_FOOTER_SUFFIX);
	if (strcmp(req->arg, footer) != 0)
		return refuse(ans, "unknown key");
	if (paseto_v4_local_open_body(st->token_key->local, req->blob, req->blob_len,
	                              (const uint8_t *)footer, strlen(footer),
	                              (const uint8_t *)TOKEN_ASSERTION, strlen(TOKEN_ASSERTION), m,
	                              sizeof(m), &mlen) != 0)
		return refuse(ans, "bad signature");
	r = answer(ans, true, m, mlen);
	sodium_memzero(m, sizeof(m));
	return r;
}

static int
answer_revoke(struct priv_state *st, const struct priv_request *req, struct priv_answer *ans)
{
	char err[256];

	if (!revocations_jti_valid(req->arg) || req->number > TOKEN_TIME_MAX)
		return -1;
	if (revocations_add(&st->revoked, req->arg, req->number, (uint64_t)time(NULL), err,
	                    sizeof(err)) != 0)
		return refuse(ans, err);
	return answer(ans, true, "", 0);
}

/* With several workers: whether a token is revoked, by whichever worker. */
static int
answer_is_revoked(struct priv_state *st, const struct priv_request *req, struct priv_answer *ans)
{
	if (!revocations_jti_valid(req->arg))
		return -1;
	return answer(
	        ans, true,
	        revocations_contains(&st->revoked, req->arg, (uint64_t)time(NULL)) ? "1" : "0", 1);
}

static int
answer_revoked(struct priv_state *st, struct priv_answer *ans)
{
	char *text;
	size_t len;
	int r;

	if (revocations_format(&st->revoked, &text, &len) != 0)
		return refuse(ans, "out of memory");
	r = answer(ans, true, text, len);
	free(text);
	return r;
}

/* --- proofs of identity ------------------------------------------------------- */

/*
 * Signs a proof for the worker's session: the identity and method are the
 * worker's word, as for tokens; the provider's name, the times and the
 * lifetime are this side's own, so that a worker cannot sign for another
 * provider, backdate a proof or make one last.
 */
static int
answer_proof(struct priv_state *st, const struct priv_request *req, struct priv_answer *ans)
{
	uint64_t now = (uint64_t)time(NULL);
	char proof[PROOF_SIZE];
	struct proof_claims c;
	int r;

	if (!auth_identity_valid(req->arg) || req->blob_len != PROOF_HASH_LEN)
		return -1;
	memset(&c, 0, sizeof(c));
	if (req->number != AUTH_PUBKEY && req->number != AUTH_PASSWORD &&
	    req->number != AUTH_EXTERNAL)
		return refuse(ans, "a proof is for an identity this server authenticated");
	if (privops_provider_name(st->cfg, c.iss) != 0)
		return refuse(ans, "no provider name: set provider_name");
	str_copy(c.sub, req->arg, sizeof(c.sub));
	c.amr = (enum auth_method)req->number;
	memcpy(c.hash, req->blob, PROOF_HASH_LEN);
	c.iat = now;
	c.exp = now + st->cfg->proof_ttl_s;
	if (proof_sign(st->sign_key, &c, proof, sizeof(proof)) != 0)
		return refuse(ans, "cannot sign");
	r = answer(ans, true, proof, strlen(proof));
	sodium_memzero(&c, sizeof(c));
	return r;
}

/* --- 0-RTT ------------------------------------------------------------------------- */

static bool
early_in_time(uint64_t stamp)
{
	uint64_t now = now_ns(), skew = PRIVOPS_EARLY_SKEW_S * NS_PER_S;

	return stamp + skew >= now && stamp <= now + PRIVOPS_EARLY_FUTURE_S * NS_PER_S;
}

/* The floor raised past stamp, in the file first.  Returns 0, or -1 after logging why. */
static int
early_reserve(struct priv_state *st, uint64_t stamp)
{
	uint64_t want = stamp + PRIVOPS_EARLY_AHEAD_NS;
	char text[32];
	int n, e;

	if (want <= st->early_reserved)
		return 0;
	n = snprintf(text, sizeof(text), "%llu\n", (unsigned long long)want);
	if ((e = io_replace_file(st->early_path, text, (size_t)n, EARLY_MODE)) != 0) {
		log_error("%s: cannot record the 0-RTT floor: %s; 0-RTT data is refused",
		          st->early_path, strerror(-e));
		return -1;
	}
	st->early_reserved = want;
	return 0;
}

/*
 * Raises the floor past stamp (ns), durably, before the worker may act on
 * early data carrying it; answers the floor.  stamp 0 only asks for it.
 */
static int
answer_early(struct priv_state *st, const struct priv_request *req, struct priv_answer *ans)
{
	char text[32];
	int n;

	if (req->number != 0 && !early_in_time(req->number))
		return refuse(ans, "timestamp too far from our clock");
	if (req->number != 0 && early_reserve(st, req->number) != 0)
		return refuse(ans, "cannot record the 0-RTT floor");
	n = snprintf(text, sizeof(text), "%llu", (unsigned long long)st->early_reserved);
	return answer(ans, true, text, (size_t)n);
}

/* A key pushed out takes its timestamp into the floor: nothing at or below it is new. */
static void
on_early_evict(void *ctx, const struct keytable_value *v)
{
	struct priv_state *st = ctx;

	if (v->count > st->early_evicted)
		st->early_evicted = v->count;
}

/*
 * With several workers, the newest 0-RTT timestamp acted on per client
 * key is kept here, so that a message replayed from another address (to
 * another worker) is no newer than the one acted on: early data is acted
 * on only when its timestamp is newer than the key's last, and the floor
 * is raised past it first.
 */
static int
answer_early_admit(struct priv_state *st, const struct priv_request *req, struct priv_answer *ans)
{
	uint64_t now_ms = now_ns() / 1000000;
	struct keytable_value *last;

	if (!early_in_time(req->number))
		return refuse(ans, "timestamp too far from our clock");
	if (req->number <= st->early_evicted ||
	    (last = keytable_get(st->early_last, req->pk, PRIVMSG_DH_LEN, now_ms, 1)) == NULL ||
	    req->number <= last->count)
		return refuse(ans, "not newer than the last acted on");
	if (early_reserve(st, req->number) != 0)
		return refuse(ans, "cannot record the 0-RTT floor");
	last->count = req->number;
	last->stamp_ms = now_ms;
	return answer(ans, true, "", 0);
}

/* --- cookies ------------------------------------------------------------------------ */

/*
 * The cluster's cookie secret of a bucket, only of the current one or
 * its neighbours: a worker taken over learns no secret of the future.
 */
static int
answer_cookie_secret(struct priv_state *st, const struct priv_request *req, struct priv_answer *ans)
{
	uint64_t now = sealed_cookie_bucket((uint64_t)time(NULL));
	uint8_t secret[SEALED_KEY_LEN];
	int r;

	if (st->cluster_key == NULL)
		return refuse(ans, "no cluster_key_file");
	if (req->number + 1 < now || req->number > now + 1)
		return refuse(ans, "bucket too far from our clock");
	sealed_cookie_secret_derive(st->cluster_key, req->number, secret);
	r = answer(ans, true, secret, sizeof(secret));
	sodium_memzero(secret, sizeof(secret));
	return r;
}

/* --- backends, accounts --------------------------------------------------------- */

static bool
names_unix_backend(const struct config *cfg, const char *path)
{
	const struct service *svc;

	int i;

	for (svc = cfg->services; svc != NULL; svc = svc->next)
		if (svc->backend == BACKEND_UNIX && strcmp(svc->addr.path, path) == 0)
			return true;
	for (i = 0; i < LEGACY_PROTO_COUNT; i++)
		if (cfg->legacy[i].backend == BACKEND_UNIX &&
		    strcmp(cfg->legacy[i].addr.path, path) == 0)
			return true;
	return false;
}

/* Connects as the worker would, so that the backend sees the worker's credentials. */
static int
connect_as_worker(struct priv_state *st, const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	bool switch_ids = geteuid() == 0 && st->worker_uid != 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), e = 0;
	gid_t groups[PRIVOPS_GROUPS_MAX];
	int ngroups = 0;

	if (fd < 0)
		return -errno;
	str_copy(sun.sun_path, path, sizeof(sun.sun_path));
	/* The worker's groups too: root's own would let it reach what the worker may not. */
	if (switch_ids && (ngroups = getgroups(PRIVOPS_GROUPS_MAX, groups)) < 0) {
		e = errno;
		switch_ids = false;
	}
	if (switch_ids && (setgroups(1, &st->worker_gid) != 0 || setegid(st->worker_gid) != 0 ||
	                   seteuid(st->worker_uid) != 0))
		e = errno;
	if (e == 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		e = errno;
	if (switch_ids &&
	    (seteuid(0) != 0 || setegid(0) != 0 || setgroups((size_t)ngroups, groups) != 0)) {
		log_error("cannot take back root after a backend connect: %s", strerror(errno));
		abort();
	}
	if (e != 0) {
		close(fd);
		return -e;
	}
	return fd;
}

static int
answer_connect(struct priv_state *st, const struct priv_request *req, struct priv_answer *ans)
{
	int fd;

	if (!names_unix_backend(st->cfg, req->arg)) {
		log_error("the worker asked to connect to %s, which no service names", req->arg);
		return refuse_errno(ans, EPERM);
	}
	if ((fd = connect_as_worker(st, req->arg)) < 0)
		return refuse_errno(ans, -fd);
	ans->fd = fd;
	return answer(ans, true, "", 0);
}

/* Every group of pw, by name, a line each after the uid; -1 when any cannot be had. */
static int
list_groups(const struct passwd *pw, char *out, size_t size, size_t *len)
{
	gid_t *gids = NULL, *grown;
	int n = 64, want, i, r = -1;
	struct group *gr;
	size_t used;

	used = (size_t)snprintf(out, size, "%lu\n", (unsigned long)pw->pw_uid);
	for (;;) {
		if ((grown = realloc(gids, (size_t)n * sizeof(*gids))) == NULL)
			goto out;
		gids = grown;
		want = n;
		if (getgrouplist(pw->pw_name, pw->pw_gid, gids, &want) >= 0) {
			n = want;
			break;
		}
		if (want <= n || want > GROUPS_TRY_MAX)
			goto out;
		n = want;
	}
	for (i = 0; i < n; i++) {
		if ((gr = getgrgid(gids[i])) == NULL || used + strlen(gr->gr_name) + 2 > size)
			goto out;
		used += (size_t)snprintf(out + used, size - used, "%s\n", gr->gr_name);
	}
	*len = used;
	r = 0;
out:
	free(gids);
	return r;
}

static int
answer_account(const struct priv_request *req, struct priv_answer *ans)
{
	struct passwd *pw = getpwnam(req->user);
	size_t len;
	char *text;
	int r;

	if (pw == NULL)
		return refuse(ans, "no such user");
	if ((text = malloc(ACCOUNT_GROUPS_MAX)) == NULL)
		return refuse(ans, "out of memory");
	r = list_groups(pw, text, ACCOUNT_GROUPS_MAX, &len) == 0
	            ? answer(ans, true, text, len)
	            : refuse(ans, "cannot list its groups");
	free(text);
	return r;
}

/* Whether the group list of list_groups ("UID\n" then names) holds group. */
static bool
lists_group(const char *text, const char *group)
{
	const char *line = strchr(text, '\n');
	size_t n = strlen(group);

	for (; line != NULL; line = strchr(line, '\n')) {
		line++;
		if (strncmp(line, group, n) == 0 && line[n] == '\n')
			return true;
	}
	return false;
}

static int
answer_admin(const struct priv_state *st, const struct priv_request *req, struct priv_answer *ans)
{
	const char *group = st->cfg->admin_group;
	struct passwd *pw;
	size_t len;
	char *text;
	bool in;

	if (req->number == 0)
		return answer(ans, true, "", 0);
	if (group[0] == '\0')
		return refuse(ans, "not root, and no admin_group is set");
	if (req->number > UINT32_MAX || (pw = getpwuid((uid_t)req->number)) == NULL)
		return refuse(ans, "an unknown uid");
	if ((text = malloc(ACCOUNT_GROUPS_MAX)) == NULL)
		return refuse(ans, "out of memory");
	in = list_groups(pw, text, ACCOUNT_GROUPS_MAX, &len) == 0 && lists_group(text, group);
	free(text);
	return in ? answer(ans, true, "", 0) : refuse(ans, "not root, nor in admin_group");
}

static int
answer_pubkey(struct priv_state *st, const struct priv_request *req, struct priv_answer *ans)
{
	char why[256];
	int ok = keys_authorized(st->cfg, req->user, req->pk, req->peer_ip, why, sizeof(why));

	return answer(ans, ok == 1, why, strlen(why));
}

/* --- the dispatcher ------------------------------------------------------------- */

int
privops_answer(struct priv_state *st, const struct priv_request *req, struct priv_answer *ans)
{
	memset(ans, 0, sizeof(*ans));
	ans->fd = -1;
	switch (req->type) {
	case PRIV_CONFIG:
		return answer(ans, true, st->cfg_text, st->cfg_len);
	case PRIV_LISTEN:
		return answer_listen(st, req, ans);
	case PRIV_PEER_CONNECT:
		return answer_peer_connect(st, req, ans);
	case PRIV_AUDIT:
		return answer_audit(st, ans);
	case PRIV_FILE:
		return answer_file(st, req, ans);
	case PRIV_KEYS:
		return answer_keys(st, ans);
	case PRIV_DH:
		return answer_dh(st, req, ans);
	case PRIV_TOKEN_ISSUE:
		return answer_issue(st, req, ans);
	case PRIV_TOKEN_OPEN:
		return answer_open(st, req, ans);
	case PRIV_REVOKE:
		return answer_revoke(st, req, ans);
	case PRIV_REVOKED:
		return answer_revoked(st, ans);
	case PRIV_EARLY_ADMIT:
		return answer_early_admit(st, req, ans);
	case PRIV_IS_REVOKED:
		return answer_is_revoked(st, req, ans);
	case PRIV_EARLY_RESERVE:
		return answer_early(st, req, ans);
	case PRIV_CONNECT:
		return answer_connect(st, req, ans);
	case PRIV_ACCOUNT:
		return answer_account(req, ans);
	case PRIV_READY:
	case PRIV_ALIVE:
		return answer(ans, true, "", 0);
	case PRIV_ADMIN:
		return answer_admin(st, req, ans);
	case PRIV_PUBKEY_CHECK:
		return answer_pubkey(st, req, ans);
	case PRIV_PROOF_SIGN:
		return answer_proof(st, req, ans);
	case PRIV_COOKIE_SECRET:
		return answer_cookie_secret(st, req, ans);
	case PRIV_PAM_START:
	case PRIV_EXEC:
	case PRIV_EXEC_END:
	case PRIV_EXEC_DONE:
	case PRIV_RELOAD:
	case PRIV_SHARES:
	case PRIV_INHERIT:
		break;
	}
	return -1;
}

unsigned
privops_workers(const struct config *cfg)
{
	long cpus;

	if (cfg->workers != WORKERS_AUTO)
		return (unsigned)cfg->workers;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	return cpus < 1 ? 1 : cpus > WORKERS_MAX ? WORKERS_MAX : (unsigned)cpus;
}

void
privops_asking(struct priv_state *st, unsigned index, unsigned nworkers)
{
	st->asking = index;
	st->nworkers = nworkers;
}
