#include "server/daemon/server.h"

#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "server/backend/control.h"
#include "server/conf/tlsfiles.h"
#include "server/daemon/admin.h"
#include "server/daemon/listener.h"
#include "server/daemon/metrics.h"
#include "server/daemon/peers.h"
#include "server/daemon/shares.h"
#include "server/mux/mux.h"
#include "server/policy/auditlog.h"
#include "server/policy/earlydata.h"
#include "server/policy/penalty.h"
#include "server/policy/sources.h"
#include "server/policy/store.h"
#include "server/policy/tokens.h"
#include "server/privsep/priv.h"
#include "server/session/session.h"
#include "server/stream/stream.h"
#include "server/transport/tls.h"

/* Relayed clients that are not read are asked whether they were reset every so many ticks (1 s). */
#define REAP_TICKS (1000 / GOVERNOR_TICK_MS)

/*
 * Authorized clients whose static-static X25519 (clients.h) is asked of
 * the monitor each tick, so that every known client's handshake soon
 * takes as long as every other's: a table kept only as keys are used
 * would tell who connected since the last reload to whoever can time a
 * handshake made with a client's public key.  64 a tick holds the loop
 * for a few milliseconds in 250.
 */
#define CLIENTS_FILL_BATCH 64

/* --- listeners --------------------------------------------------------- */

/* A listener in list serving the configured entry name, unlinked from list; or NULL. */
static struct listener *
take_listener(struct listener **list, const char *name)
{
	struct listener **pp, *l;

	for (pp = list; (l = *pp) != NULL; pp = &l->next) {
		if (strcmp(l->configured, name) == 0) {
			*pp = l->next;
			l->next = NULL;
			return l;
		}
	}
	return NULL;
}

static void
close_listeners(struct listener *list)
{
	struct listener *next;

	for (; list != NULL; list = next) {
		next = list->next;
		log_info("no longer listening on %s", list->bound);
		listener_close(list);
	}
}

/*
 * Opens one configured entry.  A TCP entry that cannot be bound for lack
 * of privilege (port 1 as a normal user) or because it is taken moves to
 * listen_fallback if set.
 */
static struct listener *
open_entry(struct server *srv, const struct config *cfg, const struct addr_spec *a,
           const char *name)
{
	struct listener *l;
	char fb[ADDR_TEXT_MAX];
	int err;

	if ((l = listener_open(srv, a, name, &err)) != NULL)
		return l;
	if ((err == UV_EACCES || err == UV_EADDRINUSE) && a->kind == ADDR_TCP &&
	    cfg->has_listen_fallback) {
		addr_format(&cfg->listen_fallback, fb, sizeof(fb));
		log_warn("cannot listen on %s (%s); using %s instead", name, uv_strerror(err), fb);
		if ((l = listener_open(srv, &cfg->listen_fallback, name, &err)) != NULL)
			return l;
		name = fb;
	}
	log_error("cannot listen on %s: %s", name, uv_strerror(err));
	return NULL;
}

/*
 * Makes the listeners match cfg: keeps those already open for an entry,
 * opens the new ones, closes the rest.  On failure changes nothing.
 */
static int
reconcile_listeners(struct server *srv, const struct config *cfg)
{
	struct listener *kept = NULL, *opened = NULL, *l;
	char name[ADDR_TEXT_MAX];
	size_t i;

	for (i = 0; i < cfg->nlisten; i++) {
		addr_format(&cfg->listen[i], name, sizeof(name));
		if ((l = take_listener(&srv->listeners, name)) != NULL) {
			l->next = kept;
			kept = l;
			continue;
		}
		if ((l = open_entry(srv, cfg, &cfg->listen[i], name)) == NULL)
			goto fail;
		log_info("listening on %s", l->bound);
		l->next = opened;
		opened = l;
	}
	close_listeners(srv->listeners);
	srv->listeners = kept;
	while ((l = opened) != NULL) {
		opened = l->next;
		l->next = srv->listeners;
		srv->listeners = l;
	}
	for (l = srv->listeners; l != NULL; l = l->next)
		listener_tune(l, cfg);
	return 0;
fail:
	close_listeners(opened);
	while ((l = kept) != NULL) {
		kept = l->next;
		l->next = srv->listeners;
		srv->listeners = l;
	}
	return -1;
}

/* --- signals, reload, drain ----------------------------------------- */

static void
on_signal(uv_signal_t *h, int signum)
{
	struct server *srv = h->data;

	if (signum == SIGHUP) {
		priv_reloading(srv->site.priv);
		server_reload(srv);
		priv_ready(srv->site.priv);
	} else {
		priv_stopping(srv->site.priv);
		server_drain(srv);
	}
}

static void
watch_signal(struct server *srv, uv_signal_t *h, int signum)
{
	uv_signal_init(srv->site.loop, h);
	h->data = srv;
	uv_signal_start(h, on_signal, signum);
}

/* The audit log a configuration names, opened through priv when it is a file or the journal. */
static struct auditlog *
open_audit(struct server *srv, const struct config *cfg)
{
	int fd = -1;

	if (config_audit_opened(cfg) && (fd = priv_audit(srv->site.priv)) < 0) {
		log_error("cannot open the audit log %s: %s", cfg->audit_log, strerror(-fd));
		return NULL;
	}
	return auditlog_open(cfg->audit_log, fd);
}

/* The authorized_clients file cfg names, through priv, parsed into out. */
static int
load_clients(struct server *srv, const struct config *cfg, struct client_keys *out, char *err,
             size_t err_size)
{
	char *text;
	size_t len;
	int r;

	memset(out, 0, sizeof(*out));
	if (cfg->authorized_clients[0] == '\0')
		return 0;
	if (priv_file(srv->site.priv, cfg->authorized_clients, &text, &len, err, err_size) != 0)
		return -1;
	r = clients_parse(cfg->authorized_clients, text, len, out, err, err_size);
	free(text);
	return r;
}

/* What cfg changes for TLS (its tls_clients file), ready to commit. */
static int
prepare_tls(struct server *srv, const struct config *cfg, struct tls_clients *next, char *err,
            size_t err_size)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	if (cfg->tls_clients[0] != '\0' &&
	    priv_file(srv->site.priv, cfg->tls_clients, &text, &len, err, err_size) != 0)
		return -1;
	r = tls_server_prepare(srv->site.tls, cfg, text, len, next, err, err_size);
	free(text);
	return r;
}

/* GETSIGNKEY names the provider the monitor signs as, which provider_name may have changed. */
static void
refresh_provider(struct server *srv)
{
	struct priv_keys keys;

	if (priv_keys(srv->site.priv, &keys) != 0) {
		log_warn("cannot have the provider's name after the reload");
		return;
	}
	str_copy(srv->site.provider, keys.provider, sizeof(srv->site.provider));
}

/* The store and its settings are read at start. */
static int
store_reload_check(const struct config *old, const struct config *cfg, char *err, size_t size)
{
	char a[ADDR_TEXT_MAX] = "", b[ADDR_TEXT_MAX] = "";

	if (old->has_store)
		addr_format(&old->store, a, sizeof(a));
	if (cfg->has_store)
		addr_format(&cfg->store, b, sizeof(b));
	if (strcmp(a, b) != 0 || old->store_timeout_ms != cfg->store_timeout_ms ||
	    old->revocation_stale_max_ms != cfg->revocation_stale_max_ms ||
	    strcmp(old->cluster_key_file, cfg->cluster_key_file) != 0 ||
	    strcmp(old->store_user, cfg->store_user) != 0 ||
	    strcmp(old->store_password_file, cfg->store_password_file) != 0) {
		snprintf(err, size,
		         "store, store_timeout, store_user, store_password_file, "
		         "revocation_stale_max and cluster_key_file change only with a restart");
		return -1;
	}
	return 0;
}

int
server_reload(struct server *srv)
{
	struct config_errors errs;
	struct client_keys clients;
	struct tls_clients tls_clients;
	struct config *cfg;
	struct auditlog *audit = NULL;
	char err[CONFIG_ERRORS_MAX];

	if (srv->site.draining)
		return -1;
	if ((cfg = priv_config(srv->site.priv, &errs)) == NULL) {
		log_error("reload rejected, keeping the running configuration");
		config_errors_log(&errs);
		return -1;
	}
	if (tokens_reload_check(srv->site.tokens, cfg, err, sizeof(err)) != 0 ||
	    store_reload_check(srv->site.cfg, cfg, err, sizeof(err)) != 0 ||
	    load_clients(srv, cfg, &clients, err, sizeof(err)) != 0) {
		log_error("reload rejected, keeping the running configuration: %s", err);
		goto fail;
	}
	if (prepare_tls(srv, cfg, &tls_clients, err, sizeof(err)) != 0) {
		log_error("reload rejected, keeping the running configuration: %s", err);
		clients_free(&clients);
		goto fail;
	}
	if ((audit = open_audit(srv, cfg)) == NULL || reconcile_listeners(srv, cfg) != 0) {
		log_error("reload rejected, keeping the running configuration");
		clients_free(&clients);
		tlsclients_free(&tls_clients);
		goto fail;
	}
	auditlog_close(srv->site.audit);
	srv->site.audit = audit;
	budget_set_max(&srv->site.budget, cfg->relay_memory_max);
	clients_carry(&clients, &srv->site.clients);
	clients_free(&srv->site.clients);
	srv->site.clients = clients;
	tls_server_commit(srv->site.tls, &tls_clients);
	config_unref(srv->site.cfg);
	srv->site.cfg = cfg;
	refresh_provider(srv);
	log_info("reloaded the configuration; %zu %s", srv->site.nsessions,
	         plural(srv->site.nsessions, "session continues", "sessions continue"));
	return 0;
fail:
	auditlog_close(audit);
	config_unref(cfg);
	return -1;
}

/* What server_start builds and server_stop tears down, besides handles. */
static void
free_state(struct server *srv)
{
	auditlog_close(srv->site.audit);
	srv->site.audit = NULL;
	source_table_free(srv->site.sources);
	srv->site.sources = NULL;
	penalty_table_free(srv->site.source_failures);
	penalty_table_free(srv->site.identity_failures);
	srv->site.source_failures = srv->site.identity_failures = NULL;
	early_guard_free(srv->site.early);
	srv->site.early = NULL;
	store_free(srv->site.store);
	srv->site.store = NULL;
	clients_free(&srv->site.clients);
	tls_server_free(srv->site.tls);
	srv->site.tls = NULL;
	tokens_free(srv->site.tokens);
	srv->site.tokens = NULL;
	governor_free(&srv->site.gov);
	listener_limits_free(srv);
	peers_free(srv);
}

/*
 * Everything is finished: close the server's own handles so that uv_run
 * returns once the built-ins of the last sessions have seen their peers go.
 */
static void
server_stop(struct server *srv)
{
	log_info("stopped");
	control_close(&srv->site);
	admin_close(srv);
	metrics_close(srv);
	peers_close(srv);
	close_listeners(srv->listeners);
	srv->listeners = NULL;
	free_state(srv);
	config_unref(srv->site.cfg);
	srv->site.cfg = NULL;
	uv_close((uv_handle_t *)&srv->sig_hup, NULL);
	uv_close((uv_handle_t *)&srv->sig_term, NULL);
	uv_close((uv_handle_t *)&srv->sig_int, NULL);
	uv_close((uv_handle_t *)&srv->drain_timer, NULL);
	uv_close((uv_handle_t *)&srv->gov_timer, NULL);
}

static void
on_drain_timeout(uv_timer_t *t)
{
	struct server *srv = t->data;

	log_warn("drain timeout: closing %zu %s", srv->site.nsessions,
	         plural(srv->site.nsessions, "session", "sessions"));
	session_close_all(&srv->site, "shutdown");
}

void
server_drain(struct server *srv)
{
	if (srv->site.draining) {
		log_warn("second stop signal: closing %zu %s now", srv->site.nsessions,
		         plural(srv->site.nsessions, "session", "sessions"));
		session_close_all(&srv->site, "shutdown");
		return;
	}
	srv->site.draining = true;
	log_info("stopping: no new connections; %zu %s may finish", srv->site.nsessions,
	         plural(srv->site.nsessions, "session", "sessions"));
	close_listeners(srv->listeners);
	srv->listeners = NULL;
	session_drain_all(&srv->site);
	if (srv->site.nsessions == 0) {
		server_stop(srv);
		return;
	}
	uv_timer_start(&srv->drain_timer, on_drain_timeout, srv->site.cfg->drain_timeout_ms, 0);
}

/* A session was freed: a drain ends with the last one (site.session_gone). */
static void
session_gone(void *arg)
{
	struct server *srv = arg;

	if (srv->site.draining && srv->site.nsessions == 0 && srv->site.cfg != NULL)
		server_stop(srv);
}

static void
on_gov_tick(uv_timer_t *t)
{
	struct server *srv = t->data;
	uint64_t now = uv_now(srv->site.loop);

	governor_tick(&srv->site.gov, srv->site.cfg, &srv->site.budget, now);
	auditlog_tick(srv->site.audit);
	shares_alive(srv, now);
	log_ratelimit_flush(&srv->site.refusals, now);
	log_ratelimit_flush(&srv->site.backend_failures, now);
	log_ratelimit_flush(&srv->fd_shortage, now);
	if (++srv->ticks % REAP_TICKS == 0)
		session_reap_reset_clients(&srv->site);
	clients_fill(&srv->site.clients, CLIENTS_FILL_BATCH, priv_dh, srv->site.priv);
}

/* The TLS context, from the files the privileged side reads for us. */
static struct tls_server *
start_tls(struct server *srv, const struct config *cfg, const char *key_path)
{
	char cert[CONFIG_PATH_MAX + 64], key[CONFIG_PATH_MAX + 64], err[CONFIG_ERRORS_MAX];
	struct tls_pem pem = {.cert_name = cert, .key_name = key};
	char *cert_text = NULL, *key_text = NULL, *ca_text = NULL;
	struct tls_server *tls = NULL;

	if (tls_files_paths(cfg, key_path, cert, sizeof(cert), key, sizeof(key)) != 0 ||
	    priv_file(srv->site.priv, cert, &cert_text, &pem.cert_len, err, sizeof(err)) != 0 ||
	    priv_file(srv->site.priv, key, &key_text, &pem.key_len, err, sizeof(err)) != 0 ||
	    (cfg->tls_client_ca[0] != '\0' &&
	     priv_file(srv->site.priv, cfg->tls_client_ca, &ca_text, &pem.ca_len, err,
	               sizeof(err)) != 0)) {
		log_error("TLS: %s", err);
		goto out;
	}
	pem.cert = cert_text;
	pem.key = key_text;
	pem.ca = ca_text;
	tls = tls_server_new(cfg, &pem);
out:
	free(cert_text);
	if (key_text != NULL)
		sodium_memzero(key_text, pem.key_len);
	free(key_text);
	free(ca_text);
	return tls;
}

static void
on_store_revoked(void *arg, const char *jti, uint64_t exp)
{
	struct server *srv = arg;

	tokens_revoked_elsewhere(srv->site.tokens, jti, exp, (uint64_t)time(NULL));
}

static void
on_store_reconnected(void *arg)
{
	struct server *srv = arg;

	tokens_republish(srv->site.tokens, (uint64_t)time(NULL));
}

/* The store several nodes share, when one is configured. */
static int
start_store(struct server *srv, const struct config *cfg)
{
	struct store_events ev = {
	        .revoked = on_store_revoked, .reconnected = on_store_reconnected, .arg = srv};
	char err[CONFIG_ERRORS_MAX], *password = NULL;
	size_t len = 0;

	if (!cfg->has_store)
		return 0;
	if (cfg->store_password_file[0] != '\0' &&
	    priv_file(srv->site.priv, cfg->store_password_file, &password, &len, err,
	              sizeof(err)) != 0) {
		log_error("store_password_file: %s", err);
		return -1;
	}
	srv->site.store = store_new(srv->site.loop, cfg, password, len, &ev);
	if (password != NULL)
		sodium_memzero(password, len);
	free(password);
	if (srv->site.store == NULL)
		return -1;
	srv->site.tokens->store = srv->site.store;
	return 0;
}

/* What the privileged side holds for us: keys, tokens, TLS, authorized clients. */
static int
load_state(struct server *srv, const struct config *cfg)
{
	struct tls_clients tls_clients;
	struct priv_keys keys;
	char err[CONFIG_ERRORS_MAX];

	if (priv_keys(srv->site.priv, &keys) != 0) {
		log_error("cannot have the server's public keys");
		return -1;
	}
	sealed_server_keys_derive(&srv->site.keys, keys.server_pk);
	memcpy(srv->site.sign_pk, keys.sign_pk, sizeof(srv->site.sign_pk));
	str_copy(srv->site.provider, keys.provider, sizeof(srv->site.provider));
	if ((srv->site.tokens = tokens_load(cfg, srv->site.priv, keys.token_pk,
	                                    (uint64_t)time(NULL))) == NULL ||
	    (srv->site.tls = start_tls(srv, cfg, keys.key_path)) == NULL ||
	    (srv->site.early = early_guard_new(srv->site.priv)) == NULL)
		return -1;
	if (load_clients(srv, cfg, &srv->site.clients, err, sizeof(err)) != 0 ||
	    prepare_tls(srv, cfg, &tls_clients, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return -1;
	}
	tls_server_commit(srv->site.tls, &tls_clients);
	return start_store(srv, cfg);
}

/* The relay budget fell below its low-water mark: single streams and multiplexed sessions go on. */
static void
budget_low_again(void *arg)
{
	stream_budget_low(arg);
	mux_budget_low(arg);
}

int
server_start(struct server *srv, uv_loop_t *loop, struct config *cfg, struct priv *priv)
{
	memset(srv, 0, sizeof(*srv));
	srv->site.loop = loop;
	srv->site.cfg = cfg;
	srv->site.priv = priv;
	srv->spare_fd = -1;
	srv->site.backend_failures.what = "backend failure warnings";
	srv->fd_shortage.what = "descriptor shortage messages";
	budget_init(&srv->site.budget, cfg->relay_memory_max, budget_low_again, &srv->site);
	srv->site.session_gone = session_gone;
	srv->site.session_gone_arg = srv;
	if (governor_init(&srv->site.gov, priv) != 0 ||
	    (srv->site.sources = source_table_new()) == NULL ||
	    (srv->site.source_failures = penalty_table_new()) == NULL ||
	    (srv->site.identity_failures = penalty_table_new()) == NULL) {
		log_error("out of memory");
		goto fail;
	}
	if (load_state(srv, cfg) != 0 || listener_limits(srv) != 0)
		goto fail;
	shares_inherit(srv);
	if ((srv->site.audit = open_audit(srv, cfg)) == NULL ||
	    reconcile_listeners(srv, cfg) != 0 || control_open(&srv->site) != 0 ||
	    admin_open(srv) != 0 || metrics_open(srv) != 0 || peers_open(srv) != 0)
		goto fail;
	uv_timer_init(loop, &srv->drain_timer);
	srv->drain_timer.data = srv;
	uv_timer_init(loop, &srv->gov_timer);
	srv->gov_timer.data = srv;
	governor_tick(&srv->site.gov, cfg, &srv->site.budget, uv_now(loop));
	uv_timer_start(&srv->gov_timer, on_gov_tick, GOVERNOR_TICK_MS, GOVERNOR_TICK_MS);
	watch_signal(srv, &srv->sig_hup, SIGHUP);
	watch_signal(srv, &srv->sig_term, SIGTERM);
	watch_signal(srv, &srv->sig_int, SIGINT);
	return 0;
fail:
	control_close(&srv->site);
	admin_close(srv);
	metrics_close(srv);
	peers_close(srv);
	close_listeners(srv->listeners);
	srv->listeners = NULL;
	free_state(srv);
	return -1;
}
