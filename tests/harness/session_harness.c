#include "session_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/keytable.h"
#include "common/log.h"
#include "proto/replay.h"
#include "server/conf/config.h"
#include "server/daemon/server.h"
#include "server/policy/governor.h"
#include "server/policy/penalty.h"
#include "server/privsep/priv.h"
#include "server/privsep/privops.h"
#include "server/session/session.h"

/*
 * Rounds of the loop in a row in which nothing happened before a phase is
 * over: more than one, as a callback may queue work for the next round.
 */
#define IDLE_ROUNDS 3

/* Bounds on one phase of a case (writing a piece, waiting, closing). */
#define PHASE_ROUNDS_MAX 4096
#define PHASE_MS_MAX     2000

#define READ_CHUNK       65536
#define DIR_MAX          256 /* the temporary directory's path */
#define CONFIG_TEXT_MAX  2048
#define CLIENTS_TEXT_MAX 128

/* The governor's budgets, as fived has them, but for the one source every case comes from. */
#define BUDGET_FORGET_MS 60000
#define BUDGET_SOURCES   16

/* A loaded governor stays loaded for this many of its ticks, or more. */
#define LOADED_TICKS 2

/* Where the known client's static key comes from: a fixed key, so its peer can be built. */
#define KNOWN_CLIENT_LABEL "five harness known client"

/*
 * The worker: request_timeout is long enough that no case meets it (the
 * harness does not wait for timers), auth_methods leaves out password so
 * that no PAM helper is ever started.
 */
static const char config_format[] = "[server]\n"
                                    "listen = unix:%s/listen.sock\n"
                                    "key_file = %s/server.key\n"
                                    "audit_log = %s/audit.log\n"
                                    "authorized_keys = %s/authorized_keys\n"
                                    "authorized_clients = %s/authorized_clients\n"
                                    "auth_methods = pubkey token\n"
                                    "allow_plaintext_pubkey = yes\n"
                                    "request_timeout = 30\n"
                                    "[service:echo]\n"
                                    "backend = builtin:echo\n"
                                    "[service:discard]\n"
                                    "backend = builtin:discard\n"
                                    "[service:daytime]\n"
                                    "backend = builtin:daytime\n"
                                    "[service:secret]\n"
                                    "backend = builtin:echo\n"
                                    "auth = required\n"
                                    "encryption = optional\n"
                                    "[vhost:alpha.example]\n"
                                    "services = db=echo daytime\n";

static struct {
	bool ready;
	char dir[DIR_MAX];
	char config[CONFIG_TEXT_MAX];
	uv_loop_t loop;
	struct priv_state st;
	struct priv priv;
	struct server srv;
	int audit_fd;     /* the harness's own reader of the audit log */
	unsigned handles; /* the worker's own open handles, between cases */
} h = {.audit_fd = -1};

static int
remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void
remove_dir(void)
{
	if (h.dir[0] != '\0')
		nftw(h.dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	h.dir[0] = '\0';
}

static int
write_file(const char *name, const char *text)
{
	char path[DIR_MAX + 32];
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "%s/%s", h.dir, name);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	r = fputs(text, f) < 0 ? -1 : 0;
	return fclose(f) != 0 ? -1 : r;
}

void
harness_known_client(uint8_t sk[HARNESS_KEY_LEN])
{
	crypto_generichash(sk, HARNESS_KEY_LEN, (const uint8_t *)KNOWN_CLIENT_LABEL,
	                   strlen(KNOWN_CLIENT_LABEL), NULL, 0);
}

/* authorized_clients: the known client's key, as HARNESS_KNOWN_IDENTITY. */
static int
write_clients(void)
{
	uint8_t sk[HARNESS_KEY_LEN], pk[HARNESS_KEY_LEN];
	char b64[sodium_base64_ENCODED_LEN(HARNESS_KEY_LEN, sodium_base64_VARIANT_ORIGINAL)];
	char text[CLIENTS_TEXT_MAX];

	harness_known_client(sk);
	if (crypto_scalarmult_curve25519_base(pk, sk) != 0)
		return -1;
	sodium_memzero(sk, sizeof(sk));
	sodium_bin2base64(b64, sizeof(b64), pk, sizeof(pk), sodium_base64_VARIANT_ORIGINAL);
	snprintf(text, sizeof(text), "%s %s\n", b64, HARNESS_KNOWN_IDENTITY);
	return write_file("authorized_clients", text);
}

static void
count_handle(uv_handle_t *handle, void *arg)
{
	if (!uv_is_closing(handle))
		(*(unsigned *)arg)++;
}

static unsigned
open_handles(void)
{
	unsigned n = 0;

	uv_walk(&h.loop, count_handle, &n);
	return n;
}

/* The configuration, its files, and the in-process privileged side. */
static struct config *
prepare(void)
{
	struct config_errors errs;
	struct config *cfg;
	const char *d = h.dir;
	int n;

	n = snprintf(h.config, sizeof(h.config), config_format, d, d, d, d, d);
	if (n < 0 || (size_t)n >= sizeof(h.config) || write_file("authorized_keys", "") != 0 ||
	    write_clients() != 0 || write_file("audit.log", "") != 0) {
		log_error("harness: cannot write its files in %s", d);
		return NULL;
	}
	if ((cfg = config_parse("(harness)", h.config, (size_t)n, &errs)) == NULL) {
		log_error("harness: %s", errs.text);
		return NULL;
	}
	if (privops_init(&h.st, cfg, NULL, h.config, (size_t)n) != 0) {
		config_unref(cfg);
		return NULL;
	}
	return cfg;
}

/* The daemon's signal handling is not the harness's: SIGINT and SIGTERM stay fatal. */
static void
unwatch_signals(void)
{
	uv_signal_stop(&h.srv.sig_hup);
	uv_signal_stop(&h.srv.sig_term);
	uv_signal_stop(&h.srv.sig_int);
}

int
harness_init(void)
{
	char path[DIR_MAX + 32];
	struct config *cfg;

	if (h.ready)
		return 0;
	log_init("fived", LOGL_WARN);
	signal(SIGPIPE, SIG_IGN);
	snprintf(h.dir, sizeof(h.dir), "%s/five-harness-XXXXXX",
	         getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(h.dir) == NULL) {
		log_error("harness: mkdtemp: %s", strerror(errno));
		h.dir[0] = '\0';
		return -1;
	}
	/* A fuzzer exits without harness_cleanup: its directory goes all the same. */
	atexit(remove_dir);
	if ((cfg = prepare()) == NULL)
		goto fail;
	uv_loop_init(&h.loop);
	priv_init_local(&h.priv, &h.st, "(harness)", &h.loop);
	if (server_start(&h.srv, &h.loop, cfg, &h.priv) != 0) {
		config_unref(cfg);
		privops_free(&h.st);
		uv_loop_close(&h.loop);
		goto fail;
	}
	unwatch_signals();
	snprintf(path, sizeof(path), "%s/audit.log", h.dir);
	h.audit_fd = open(path, O_RDWR | O_CLOEXEC);
	h.handles = open_handles();
	h.ready = true;
	return 0;
fail:
	remove_dir();
	return -1;
}

/* --- the client's end -------------------------------------------------- */

struct client {
	int fd; /* -1 once the harness closed it */
	struct harness_result *res;
};

/* Reads what the server sent; true if anything came (bytes or the end). */
static bool
drain(struct client *c)
{
	char buf[READ_CHUNK];
	size_t keep;
	bool moved = false;
	ssize_t n;

	while (c->fd >= 0 && !c->res->eof) {
		n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		moved = true;
		if (n <= 0) {
			c->res->eof = true; /* the end, or a reset: either way the server is done */
			break;
		}
		keep = HARNESS_OUTPUT_MAX - c->res->out_len;
		keep = (size_t)n < keep ? (size_t)n : keep;
		memcpy(c->res->out + c->res->out_len, buf, keep);
		c->res->out_len += keep;
		c->res->out_dropped += (size_t)n - keep;
	}
	return moved;
}

/* Whether the loop has anything to do now: due work, or descriptors ready. */
static bool
loop_busy(void)
{
	struct pollfd p = {.fd = uv_backend_fd(&h.loop), .events = POLLIN};

	return uv_backend_timeout(&h.loop) == 0 || poll(&p, 1, 0) > 0;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Runs the loop until nothing happens for IDLE_ROUNDS rounds, or done()
 * holds, within the phase's bounds; writes out[0..len) meanwhile as the
 * client's socket takes it.  Returns what of out is left unwritten.
 */
static size_t
run_phase(struct client *c, const char *out, size_t len, bool (*done)(void))
{
	uint64_t deadline = now_ms() + PHASE_MS_MAX;
	size_t before = h.srv.site.nsessions;
	unsigned rounds, idle = 0;
	bool moved;
	ssize_t n;

	for (rounds = 0; rounds < PHASE_ROUNDS_MAX && now_ms() < deadline; rounds++) {
		moved = false;
		if (len > 0 && c->fd >= 0 &&
		    (n = send(c->fd, out, len, MSG_DONTWAIT | MSG_NOSIGNAL)) != 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				len = 0; /* the server is gone: the rest is lost, as for a real
				            client */
			else if (n > 0) {
				out += n;
				len -= (size_t)n;
				moved = true;
			}
		}
		uv_run(&h.loop, UV_RUN_NOWAIT);
		moved |= drain(c) || h.srv.site.nsessions != before || loop_busy();
		before = h.srv.site.nsessions;
		if (done != NULL && done())
			break;
		idle = moved || len > 0 ? 0 : idle + 1;
		if (idle >= IDLE_ROUNDS)
			break;
	}
	return len;
}

static bool
no_sessions(void)
{
	return h.srv.site.nsessions == 0 && open_handles() == h.handles;
}

/* --- the audit log ----------------------------------------------------- */

/* Each case's records start an empty log: a long fuzzing run does not fill the disk. */
static void
empty_audit(void)
{
	if (ftruncate(h.audit_fd, 0) != 0 || lseek(h.audit_fd, 0, SEEK_SET) != 0)
		log_warn("harness: cannot empty the audit log: %s", strerror(errno));
}

static char *
read_audit(void)
{
	size_t len = 0, size = READ_CHUNK;
	char *text = malloc(size + 1), *bigger;
	ssize_t n;

	while (text != NULL && (n = read(h.audit_fd, text + len, size - len)) > 0) {
		len += (size_t)n;
		if (len == size) {
			size *= 2;
			if ((bigger = realloc(text, size + 1)) == NULL)
				free(text);
			text = bigger;
		}
	}
	if (text != NULL)
		text[len] = '\0';
	return text;
}

/* Copies record's string member name into out[0..size) if it is one. */
static void
copy_member(json_t *record, const char *name, char *out, size_t size)
{
	const char *v = json_string_value(json_object_get(record, name));

	if (v != NULL)
		snprintf(out, size, "%s", v);
}

/* The session id, the close and the refusal reasons, from the case's audit lines. */
static void
read_records(struct harness_result *res)
{
	char *line, *save = NULL, *text;
	const char *event;
	json_t *rec;

	if (res->audit == NULL || (text = strdup(res->audit)) == NULL)
		return;
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if ((rec = json_loads(line, 0, NULL)) == NULL)
			continue;
		event = json_string_value(json_object_get(rec, "event"));
		if (event != NULL && strcmp(event, "accepted") == 0)
			copy_member(rec, "session", res->sid, sizeof(res->sid));
		else if (event != NULL && strcmp(event, "closed") == 0)
			copy_member(rec, "reason", res->reason, sizeof(res->reason));
		else if (event != NULL && strcmp(event, "refused") == 0)
			copy_member(rec, "reason", res->refused, sizeof(res->refused));
		json_decref(rec);
	}
	free(text);
}

/* --- a case ------------------------------------------------------------ */

/*
 * What earlier cases left is forgotten: failures by source and identity,
 * and the governor's memory (every case comes from the same source, and a
 * fuzzer's ephemerals repeat): its budgets, its replay filter (kept where
 * it is: a new one per case would be most of a case's time), the CPU it
 * measured.  No case pays for another's.  The cookie secrets stay, so that
 * a client can come back with the cookie an earlier case got.  The governor
 * is loaded, so that initiations get a COOKIE, only if asked.
 */
static int
forget_earlier(bool loaded)
{
	struct site *site = &h.srv.site;
	struct governor *g = &site->gov;

	penalty_table_free(site->source_failures);
	penalty_table_free(site->identity_failures);
	site->source_failures = penalty_table_new();
	site->identity_failures = penalty_table_new();
	keytable_free(g->budget);
	keytable_free(g->cookie_budget);
	g->budget = keytable_new(BUDGET_FORGET_MS, BUDGET_SOURCES);
	g->cookie_budget = keytable_new(BUDGET_FORGET_MS, BUDGET_SOURCES);
	if (site->source_failures == NULL || site->identity_failures == NULL || g->budget == NULL ||
	    g->cookie_budget == NULL)
		return -1;
	replay_wipe(g->replay);
	replay_init(g->replay, NULL);
	g->cpu_ns = 0;
	g->percent = 0;
	g->loaded = loaded;
	/* Above the least: the governor's tick, every 250 ms, steps down before it unloads. */
	g->difficulty = (unsigned)site->cfg->pow_min + LOADED_TICKS;
	return 0;
}

/*
 * The site is as it was before the case: no session, no handle, nothing
 * charged, no sealed handshake counted as in progress.
 */
static bool
site_back(void)
{
	const struct site *site = &h.srv.site;

	return no_sessions() && site->nending == 0 && site->nheld == 0 && site->budget.used == 0 &&
	       site->budget_held == NULL && site->budget_muxes == NULL && site->gov.pending == 0;
}

/* Writes what the dialog gives, shuts if asked; the session may end meanwhile. */
static void
talk(struct client *c, const struct harness_dialog *d)
{
	struct harness_piece piece;

	while (d->next(d->arg, c->res, &piece))
		run_phase(c, piece.data, piece.len, NULL);
	if (d->shut) {
		shutdown(c->fd, SHUT_WR);
		run_phase(c, NULL, 0, NULL);
	}
}

int
harness_run_dialog(const struct harness_dialog *d, struct harness_result *res)
{
	struct client c = {.fd = -1, .res = res};
	int sv[2];

	memset(res, 0, sizeof(*res));
	if (harness_init() != 0 || forget_earlier(d->loaded) != 0 ||
	    (res->out = malloc(HARNESS_OUTPUT_MAX + 1)) == NULL ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	c.fd = sv[0];
	empty_audit();
	session_accept(&h.srv.site, &(struct accepted_conn){.fd = sv[1], .kind = ACCEPTED_UNIX},
	               NULL);
	talk(&c, d);
	res->ended = h.srv.site.nsessions == 0;
	close(c.fd);
	c.fd = -1;
	run_phase(&c, NULL, 0, no_sessions);
	if (h.srv.site.nsessions != 0) {
		res->forced = true;
		session_close_all(&h.srv.site, "harness");
		run_phase(&c, NULL, 0, no_sessions);
	}
	res->out[res->out_len] = '\0';
	res->audit = read_audit();
	read_records(res);
	return site_back() ? 0 : -1;
}

/* A fixed list of pieces, as a dialog that does not look at the answers. */
struct script {
	const struct harness_piece *pieces;
	size_t n, at;
};

static bool
script_next(void *arg, const struct harness_result *sofar, struct harness_piece *piece)
{
	struct script *s = arg;

	(void)sofar;
	if (s->at == s->n)
		return false;
	*piece = s->pieces[s->at++];
	return true;
}

int
harness_run(const struct harness_piece *pieces, size_t n, bool shut, struct harness_result *res)
{
	struct script s = {pieces, n, 0};
	struct harness_dialog d = {.next = script_next, .arg = &s, .shut = shut};

	return harness_run_dialog(&d, res);
}

void
harness_server_key(uint8_t pk[HARNESS_KEY_LEN])
{
	memcpy(pk, h.srv.site.keys.pk, HARNESS_KEY_LEN);
}

void
harness_result_free(struct harness_result *res)
{
	free(res->out);
	free(res->audit);
	memset(res, 0, sizeof(*res));
}

void
harness_cleanup(void)
{
	if (!h.ready)
		return;
	server_drain(&h.srv);
	uv_run(&h.loop, UV_RUN_DEFAULT);
	uv_loop_close(&h.loop);
	privops_free(&h.st);
	if (h.audit_fd >= 0)
		close(h.audit_fd);
	h.audit_fd = -1;
	remove_dir();
	h.ready = false;
}
