#include "server/conf/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/mux.h"

/* inih reads lines into a buffer of this size; longer lines are refused here. */
#define INI_LINE_BUFFER 200

/* A file's first line may start with a UTF-8 byte order mark, which inih skips. */
#define UTF8_BOM "\xEF\xBB\xBF"

enum section {
	SEC_NONE,
	SEC_SERVER,
	SEC_SERVICE,
	SEC_VHOST,
	SEC_INVALID, /* a bad header: keys under it are ignored, the header was reported */
};

struct parser;
typedef int (*key_setter)(struct parser *p, const char *value, const char **why);

/*
 * How a key's value is read: most [server] keys are one of a few kinds of
 * value kept in a field of struct config, the others have a function.
 */
enum value_kind {
	V_SETTER,           /* the key's own function */
	V_COUNT,            /* uint64_t from 1 to the key's arg */
	V_DURATION,         /* uint64_t milliseconds, positive */
	V_DURATION_OR_NONE, /* uint64_t milliseconds, 0 for none */
	V_PERCENT,          /* uint64_t from 1 to 100 */
	V_BITS,             /* uint64_t from 0 to POW_BITS_MAX */
	V_BOOL,             /* bool: yes or no */
	V_PATH,             /* char[arg]: an absolute path */
	V_PATH_OR_NONE,     /* char[arg]: an absolute path, "" for none */
	V_USER,             /* char[arg]: a user name */
};

struct key {
	const char *name;
	enum section sec;
	bool repeatable;
	enum value_kind kind;
	size_t field;   /* the offset of the field in struct config, but for V_SETTER */
	uint64_t arg;   /* V_COUNT: the largest value; V_PATH*, V_USER: the field's size */
	key_setter set; /* V_SETTER */
};

#define KEYS_MAX 96

struct parser {
	const char *name; /* the file, for messages */
	const char *text;
	size_t len, pos;
	unsigned line;
	struct config *cfg;
	struct config_errors *errs;
	enum section sec;
	bool server_seen;
	bool seen[KEYS_MAX]; /* keys set in the current section */
	/* [server] keys, for the checks of several keys together: */
	unsigned key_line[KEYS_MAX]; /* where each was set, 0 when it was not */
	bool key_refused[KEYS_MAX];  /* its value was an error, reported there */
	bool after_key;              /* an indented line continues the last key's value */
	struct service *svc;         /* current [service:] */
	struct vhost *vh;            /* current [vhost:] */
	struct service **svc_tail;
	struct vhost **vh_tail;
};

/* One error, "NAME:LINE: message", or "NAME: message" for line 0 (the whole file). */
static void __attribute__((format(printf, 3, 4)))
error_at(struct parser *p, unsigned line, const char *fmt, ...)
{
	struct config_errors *e = p->errs;
	size_t used = strlen(e->text);
	va_list ap;
	int n;

	e->count++;
	if (used >= sizeof(e->text) - 1)
		return;
	if (line == 0)
		n = snprintf(e->text + used, sizeof(e->text) - used, "%s: ", p->name);
	else
		n = snprintf(e->text + used, sizeof(e->text) - used, "%s:%u: ", p->name, line);
	if (n < 0 || (size_t)n >= sizeof(e->text) - used)
		return;
	used += (size_t)n;
	va_start(ap, fmt);
	vsnprintf(e->text + used, sizeof(e->text) - used, fmt, ap);
	va_end(ap);
	used = strlen(e->text);
	if (used < sizeof(e->text) - 1) {
		e->text[used] = '\n';
		e->text[used + 1] = '\0';
	}
}

/* --- values ---------------------------------------------------------------- */

static int
set_count(uint64_t *dst, const char *value, uint64_t max, const char **why)
{
	if (parse_uint(value, max, dst) != 0 || *dst == 0) {
		*why = "expected a positive whole number";
		return -1;
	}
	return 0;
}

static int
set_timeout(uint64_t *dst, const char *value, bool zero_ok, const char **why)
{
	if (parse_duration_ms(value, MAX_TIMEOUT_MS, dst) != 0 || (!zero_ok && *dst == 0)) {
		*why = zero_ok ? "expected a duration such as 30s, 500ms, 5m or 0 for none"
		               : "expected a positive duration such as 30s, 500ms or 5m";
		return -1;
	}
	return 0;
}

static int
set_percent(uint64_t *dst, const char *value, const char **why)
{
	if (parse_uint(value, 100, dst) != 0 || *dst == 0) {
		*why = "expected a percentage from 1 to 100";
		return -1;
	}
	return 0;
}

static int
set_bits(uint64_t *dst, const char *value, const char **why)
{
	if (parse_uint(value, POW_BITS_MAX, dst) != 0) {
		*why = "expected a number of bits from 0 to 32";
		return -1;
	}
	return 0;
}

static int
set_bool(bool *dst, const char *value, const char **why)
{
	if (parse_bool(value, dst) != 0) {
		*why = "expected yes or no";
		return -1;
	}
	return 0;
}

/* A value that is one of two words: *dst is true for yes, false for no. */
static int
set_either(bool *dst, const char *value, const char *yes, const char *no, const char *expected,
           const char **why)
{
	if (strcmp(value, yes) != 0 && strcmp(value, no) != 0) {
		*why = expected;
		return -1;
	}
	*dst = strcmp(value, yes) == 0;
	return 0;
}

static int
set_path(char *dst, size_t size, const char *value, bool none_ok, const char **why)
{
	if (none_ok && strcmp(value, "none") == 0) {
		dst[0] = '\0';
		return 0;
	}
	if (value[0] != '/' || str_copy(dst, value, size) >= size) {
		*why = none_ok ? "expected an absolute path or none" : "expected an absolute path";
		return -1;
	}
	return 0;
}

static int
set_user(char *dst, size_t size, const char *value, const char **why)
{
	if (!auth_user_valid(value)) {
		*why = "expected a user name";
		return -1;
	}
	str_copy(dst, value, size);
	return 0;
}

/* Calls set for each word of value, split at spaces and tabs, until one fails. */
static int
each_word(struct parser *p, const char *value, key_setter set, const char **why)
{
	char copy[INI_LINE_BUFFER];
	char *word, *save = NULL;

	str_copy(copy, value, sizeof(copy));
	for (word = strtok_r(copy, " \t", &save); word != NULL; word = strtok_r(NULL, " \t", &save))
		if (set(p, word, why) != 0)
			return -1;
	return 0;
}

/* Sets the field of struct config that key k names, as its kind says. */
static int
set_value(struct parser *p, const struct key *k, const char *value, const char **why)
{
	void *field = (char *)p->cfg + k->field;

	switch (k->kind) {
	case V_COUNT:
		return set_count(field, value, k->arg, why);
	case V_DURATION:
		return set_timeout(field, value, false, why);
	case V_DURATION_OR_NONE:
		return set_timeout(field, value, true, why);
	case V_PERCENT:
		return set_percent(field, value, why);
	case V_BITS:
		return set_bits(field, value, why);
	case V_BOOL:
		return set_bool(field, value, why);
	case V_PATH:
		return set_path(field, k->arg, value, false, why);
	case V_PATH_OR_NONE:
		return set_path(field, k->arg, value, true, why);
	case V_USER:
		return set_user(field, k->arg, value, why);
	case V_SETTER:
		break;
	}
	return k->set(p, value, why);
}

/*
 * Splits a command line into words at spaces and tabs; double quotes group
 * words and a backslash inside them escapes '"' or '\'.  Returns a
 * NULL-terminated array the caller frees with free_argv, or NULL.
 */
static char **
split_argv(const char *s, const char **why)
{
	char **argv = calloc(CONFIG_EXEC_ARGS_MAX + 1, sizeof(*argv));
	char *word = malloc(strlen(s) + 1);
	size_t n = 0, w;

	if (argv == NULL || word == NULL)
		goto fail;
	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		if (n == CONFIG_EXEC_ARGS_MAX) {
			*why = "too many arguments";
			goto fail;
		}
		for (w = 0; *s != '\0' && *s != ' ' && *s != '\t'; s++) {
			if (*s != '"') {
				word[w++] = *s;
				continue;
			}
			for (s++; *s != '"'; s++) {
				if (*s == '\0') {
					*why = "unterminated quote";
					goto fail;
				}
				if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
					s++;
				word[w++] = *s;
			}
		}
		word[w] = '\0';
		if ((argv[n++] = strdup(word)) == NULL)
			goto fail;
	}
	free(word);
	return argv;
fail:
	for (w = 0; argv != NULL && argv[w] != NULL; w++)
		free(argv[w]);
	free(argv);
	free(word);
	return NULL;
}

static void
free_argv(char **argv)
{
	size_t i;

	for (i = 0; argv != NULL && argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

/* A tcp: or unix: backend. */
static int
backend_address(struct service *svc, const char *value, const char **why)
{
	if (addr_parse(value, &svc->addr, why) != 0)
		return -1;
	if (svc->addr.kind == ADDR_TCP && svc->addr.port == 0) {
		*why = "a backend needs a port other than 0";
		return -1;
	}
	svc->backend = svc->addr.kind == ADDR_TCP ? BACKEND_TCP : BACKEND_UNIX;
	return 0;
}

/* --- [server] --------------------------------------------------------------- */

static int
listen_address(struct parser *p, const char *word, const char **why)
{
	struct addr_spec *a;

	if (p->cfg->nlisten == CONFIG_LISTEN_MAX) {
		*why = "too many listen addresses";
		return -1;
	}
	a = &p->cfg->listen[p->cfg->nlisten];
	if (addr_parse(word, a, why) != 0)
		return -1;
	if (a->kind == ADDR_TCP && !a->numeric) {
		*why = "a listen address must be an IP address, not a name";
		return -1;
	}
	p->cfg->nlisten++;
	return 0;
}

static int
server_listen(struct parser *p, const char *value, const char **why)
{
	return each_word(p, value, listen_address, why);
}

static int
proxy_from_prefix(struct parser *p, const char *word, const char **why)
{
	struct config *cfg = p->cfg;

	if (cfg->nproxy_from == CONFIG_PROXY_FROM_MAX) {
		*why = "too many proxy_from addresses";
		return -1;
	}
	if (token_addr_canonical(word, cfg->proxy_from[cfg->nproxy_from]) != 0) {
		*why = "expected IP addresses or prefixes, such as 192.0.2.10 or 2001:db8::/64";
		return -1;
	}
	cfg->nproxy_from++;
	return 0;
}

static int
server_proxy_from(struct parser *p, const char *value, const char **why)
{
	return each_word(p, value, proxy_from_prefix, why);
}

/*
 * The worker dials the store from its chroot, with no name service: an
 * IP address, or a Unix socket as the worker sees it.
 */
static int
server_store(struct parser *p, const char *value, const char **why)
{
	struct addr_spec *a = &p->cfg->store;

	if (strcmp(value, "none") == 0) {
		p->cfg->has_store = false;
		return 0;
	}
	if (addr_parse(value, a, why) != 0)
		return -1;
	if ((a->kind != ADDR_TCP || !a->numeric || a->port == 0) && a->kind != ADDR_UNIX) {
		*why = "expected tcp:IP:PORT, unix:PATH or none";
		return -1;
	}
	p->cfg->has_store = true;
	return 0;
}

static int
server_listen_fallback(struct parser *p, const char *value, const char **why)
{
	if (addr_parse(value, &p->cfg->listen_fallback, why) != 0)
		return -1;
	if (p->cfg->listen_fallback.kind != ADDR_TCP || !p->cfg->listen_fallback.numeric) {
		*why = "the fallback must be a tcp: address with an IP address";
		return -1;
	}
	p->cfg->has_listen_fallback = true;
	return 0;
}

/*
 * A legacy backend is reached as a service's tcp: or unix: backend is,
 * under the name legacy-PROTO in logs, audit records and fivectl.
 */
static int
legacy_backend(struct parser *p, enum legacy_proto proto, const char *value, const char **why)
{
	struct service *svc = &p->cfg->legacy[proto];

	if (strncmp(value, "tcp:", 4) != 0 && strncmp(value, "unix:", 5) != 0) {
		*why = "expected tcp:HOST:PORT or unix:PATH";
		return -1;
	}
	snprintf(svc->name, sizeof(svc->name), "legacy-%s", legacy_proto_name(proto));
	return backend_address(svc, value, why);
}

static int
server_legacy_ssh(struct parser *p, const char *value, const char **why)
{
	return legacy_backend(p, LEGACY_SSH, value, why);
}

static int
server_legacy_http(struct parser *p, const char *value, const char **why)
{
	return legacy_backend(p, LEGACY_HTTP, value, why);
}

static int
server_legacy_tls(struct parser *p, const char *value, const char **why)
{
	return legacy_backend(p, LEGACY_TLS, value, why);
}

/* A DNS name as a ClientHello's server_name carries it (RFC 6066): kept lowercase. */
static int
tls_name_add(struct parser *p, const char *word, const char **why)
{
	struct config *cfg = p->cfg;
	size_t i, n = strlen(word);

	if (cfg->ntls_names == LEGACY_NAMES_MAX) {
		*why = "too many names";
		return -1;
	}
	if (n == 0 || n > TLSHELLO_NAME_MAX ||
	    strspn(word, "abcdefghijklmnopqrstuvwxyz"
	                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                 "0123456789.-_") != n) {
		*why = "expected host names of letters, digits, '.', '-' and '_'";
		return -1;
	}
	for (i = 0; i <= n; i++)
		cfg->tls_names[cfg->ntls_names][i] = (char)tolower((unsigned char)word[i]);
	cfg->ntls_names++;
	return 0;
}

static int
server_tls_names(struct parser *p, const char *value, const char **why)
{
	return each_word(p, value, tls_name_add, why);
}

/*
 * Metrics are for this host's collector: a Unix socket, or TCP on a
 * loopback address only, so that a typo cannot publish them.
 */
static int
server_metrics_listen(struct parser *p, const char *value, const char **why)
{
	struct addr_spec *a = &p->cfg->metrics_listen;

	if (addr_parse(value, a, why) != 0)
		return -1;
	if (a->kind != ADDR_UNIX && (a->kind != ADDR_TCP || (strcmp(a->host, "127.0.0.1") != 0 &&
	                                                     strcmp(a->host, "::1") != 0))) {
		*why = "expected unix:PATH, tcp:127.0.0.1:PORT or tcp:[::1]:PORT: metrics stay on "
		       "this host";
		return -1;
	}
	p->cfg->has_metrics_listen = true;
	return 0;
}

static int
server_audit_log(struct parser *p, const char *value, const char **why)
{
	if (strcmp(value, "-") != 0 && strcmp(value, "none") != 0 &&
	    strcmp(value, CONFIG_AUDIT_JOURNAL) != 0 && value[0] != '/') {
		*why = "expected an absolute path, - (standard output), journal or none";
		return -1;
	}
	free(p->cfg->audit_log);
	if ((p->cfg->audit_log = strdup(strcmp(value, "none") == 0 ? "" : value)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	return 0;
}

static int
server_relay_memory_max(struct parser *p, const char *value, const char **why)
{
	if (parse_size(value, RELAY_MEMORY_LIMIT, &p->cfg->relay_memory_max) != 0 ||
	    p->cfg->relay_memory_max < RELAY_MEMORY_MIN) {
		*why = "expected a size from 1M to 1024G, such as 256M";
		return -1;
	}
	return 0;
}

static int
server_tcp_fastopen(struct parser *p, const char *value, const char **why)
{
	if (parse_uint(value, TCP_FASTOPEN_QUEUE_MAX, &p->cfg->tcp_fastopen) != 0) {
		*why = "expected a queue length from 0 (none) to 65535";
		return -1;
	}
	return 0;
}

static int
server_workers(struct parser *p, const char *value, const char **why)
{
	if (strcmp(value, "auto") == 0) {
		p->cfg->workers = WORKERS_AUTO;
		return 0;
	}
	if (parse_uint(value, WORKERS_MAX, &p->cfg->workers) != 0 || p->cfg->workers == 0) {
		*why = "expected auto or a number of worker processes from 1 to 64";
		return -1;
	}
	return 0;
}

static int
server_detach_timeout(struct parser *p, const char *value, const char **why)
{
	if (set_timeout(&p->cfg->detach_timeout_ms, value, false, why) != 0)
		return -1;
	if (p->cfg->detach_timeout_ms < DETACH_TIMEOUT_MIN) {
		*why = "expected a duration of at least 1s, such as 15m";
		return -1;
	}
	return 0;
}

static int
server_detach_queue_max(struct parser *p, const char *value, const char **why)
{
	if (parse_size(value, DETACH_QUEUE_LIMIT, &p->cfg->detach_queue_max) != 0 ||
	    p->cfg->detach_queue_max < DETACH_QUEUE_MIN) {
		*why = "expected a size from 64K to 1G, such as 4M";
		return -1;
	}
	return 0;
}

static int
server_attach_from(struct parser *p, const char *value, const char **why)
{
	static const char *const words[] = {
	        [ATTACH_FROM_ANY] = "any",
	        [ATTACH_FROM_ADDRESS] = "address",
	        [ATTACH_FROM_NETWORK] = "network",
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(words); i++)
		if (strcmp(value, words[i]) == 0) {
			p->cfg->attach_from = (enum attach_from)i;
			return 0;
		}
	*why = "expected any, address or network";
	return -1;
}

static int
server_detach_end(struct parser *p, const char *value, const char **why)
{
	if (strcmp(value, "close") == 0)
		p->cfg->detach_end = DETACH_END_CLOSE;
	else if (strcmp(value, "reset") == 0)
		p->cfg->detach_end = DETACH_END_RESET;
	else {
		*why = "expected close or reset";
		return -1;
	}
	return 0;
}

/* A stream's or session's window may grow to this (docs/PROTOCOL.md 11.4). */
static int
server_mux_window_max(struct parser *p, const char *value, const char **why)
{
	if (parse_size(value, MUX_WINDOW_MAX_LIMIT, &p->cfg->mux_window_max) != 0 ||
	    p->cfg->mux_window_max < MUX_SESSION_WINDOW) {
		*why = "expected a size from 1M to 1G, such as 16M";
		return -1;
	}
	return 0;
}

static int
server_default_vhost(struct parser *p, const char *value, const char **why)
{
	if (!vhost_name_valid(value)) {
		*why = "invalid vhost name";
		return -1;
	}
	str_copy(p->cfg->default_vhost, value, sizeof(p->cfg->default_vhost));
	str_lower(p->cfg->default_vhost);
	return 0;
}

/* The name proofs carry as iss (section 13): a host name's form, kept as written. */
static int
server_provider_name(struct parser *p, const char *value, const char **why)
{
	if (!proof_provider_valid(value)) {
		*why = "invalid provider name";
		return -1;
	}
	str_copy(p->cfg->provider_name, value, sizeof(p->cfg->provider_name));
	return 0;
}

static int
server_chroot(struct parser *p, const char *value, const char **why)
{
	if (strcmp(value, "none") == 0) {
		str_copy(p->cfg->chroot, value, sizeof(p->cfg->chroot));
		return 0;
	}
	if (strcmp(value, "/") == 0) {
		*why = "expected a directory of its own, or none";
		return -1;
	}
	return set_path(p->cfg->chroot, sizeof(p->cfg->chroot), value, false, why);
}

static int
server_user_authorized_keys(struct parser *p, const char *value, const char **why)
{
	if (strcmp(value, "none") != 0 && strncmp(value, "%h/", 3) == 0) {
		str_copy(p->cfg->user_authorized_keys, value, sizeof(p->cfg->user_authorized_keys));
		return 0;
	}
	return set_path(p->cfg->user_authorized_keys, sizeof(p->cfg->user_authorized_keys), value,
	                true, why);
}

static int
server_pam_service(struct parser *p, const char *value, const char **why)
{
	if (!name_valid(value)) {
		*why = "expected a PAM service name";
		return -1;
	}
	str_copy(p->cfg->pam_service, value, sizeof(p->cfg->pam_service));
	return 0;
}

static int
auth_method(struct parser *p, const char *word, const char **why)
{
	enum auth_method m;

	/* external is how a transport's key authenticates, not an AUTH method to allow. */
	if (auth_method_from_name(word, &m) != 0 || m == AUTH_NONE || m == AUTH_EXTERNAL) {
		*why = "expected methods among pubkey, password and token";
		return -1;
	}
	p->cfg->auth_methods[m] = true;
	return 0;
}

static int
server_auth_methods(struct parser *p, const char *value, const char **why)
{
	memset(p->cfg->auth_methods, 0, sizeof(p->cfg->auth_methods));
	return each_word(p, value, auth_method, why);
}

static int
server_token_format(struct parser *p, const char *value, const char **why)
{
	return set_either(&p->cfg->token_local, value, "local", "public",
	                  "expected public or local", why);
}

static int
server_cookie(struct parser *p, const char *value, const char **why)
{
	return set_either(&p->cfg->cookie_always, value, "always", "auto",
	                  "expected auto or always", why);
}

static int
seal_suite(struct parser *p, const char *word, const char **why)
{
	enum record_suite suite = record_suite_from_name(word);
	size_t i;

	if (suite == RECORD_SUITE_NONE) {
		*why = "expected suites among aes256gcm, xchacha20poly1305";
		return -1;
	}
	for (i = 0; i < p->cfg->seal_suites_len; i++) {
		if (p->cfg->seal_suites[i] == suite) {
			*why = "a suite named twice";
			return -1;
		}
	}
	p->cfg->seal_suites[p->cfg->seal_suites_len++] = suite;
	return 0;
}

static int
server_seal_suites(struct parser *p, const char *value, const char **why)
{
	p->cfg->seal_suites_len = 0;
	if (each_word(p, value, seal_suite, why) != 0)
		return -1;
	if (p->cfg->seal_suites_len == 0) {
		*why = "expected at least one suite";
		return -1;
	}
	return 0;
}

static int
server_log(struct parser *p, const char *value, const char **why)
{
	static const char *const names[] = {
	        [CONFIG_LOG_STDERR] = "stderr",
	        [CONFIG_LOG_SYSLOG] = "syslog",
	        [CONFIG_LOG_JOURNAL] = "journal",
	};
	size_t i;

	for (i = 0; i < ARRAY_LEN(names); i++) {
		if (strcmp(value, names[i]) == 0) {
			p->cfg->log = (enum config_log)i;
			return 0;
		}
	}
	*why = "expected stderr, syslog or journal";
	return -1;
}

/* --- [service:NAME] ------------------------------------------------------- */

static int
backend_builtin(struct service *svc, const char *name, const char **why)
{
	static const struct {
		const char *name;
		enum builtin_kind kind;
	} builtins[] = {{"echo", BUILTIN_ECHO},
	                {"discard", BUILTIN_DISCARD},
	                {"daytime", BUILTIN_DAYTIME},
	                {"chargen", BUILTIN_CHARGEN}};
	size_t i;

	for (i = 0; i < ARRAY_LEN(builtins); i++) {
		if (strcmp(name, builtins[i].name) == 0) {
			svc->backend = BACKEND_BUILTIN;
			svc->builtin = builtins[i].kind;
			return 0;
		}
	}
	*why = "unknown built-in (echo, discard, daytime, chargen)";
	return -1;
}

static int
backend_exec(struct service *svc, const char *cmdline, const char **why)
{
	*why = "exec: needs an absolute program path";
	if ((svc->argv = split_argv(cmdline, why)) == NULL)
		return -1;
	if (svc->argv[0] == NULL || svc->argv[0][0] != '/') {
		*why = "exec: needs an absolute program path";
		return -1;
	}
	svc->backend = BACKEND_EXEC;
	return 0;
}

static int
service_backend(struct parser *p, const char *value, const char **why)
{
	struct service *svc = p->svc;

	if (svc->backend == BACKEND_REDIRECT) {
		*why = "a service has a backend or a redirect, not both";
		return -1;
	}
	svc->has_backend_key = true;
	if (strcmp(value, "register") == 0) {
		svc->backend = BACKEND_REGISTER;
		return 0;
	}
	if (strncmp(value, "builtin:", 8) == 0)
		return backend_builtin(svc, value + 8, why);
	if (strncmp(value, "exec:", 5) == 0)
		return backend_exec(svc, value + 5, why);
	if (strncmp(value, "tcp:", 4) == 0 || strncmp(value, "unix:", 5) == 0)
		return backend_address(svc, value, why);
	*why = "expected tcp:HOST:PORT, unix:PATH, exec:PROGRAM ARGS, builtin:NAME or register";
	return -1;
}

static int
service_redirect(struct parser *p, const char *value, const char **why)
{
	struct service *svc = p->svc;

	if (svc->has_backend_key) {
		*why = "a service has a backend or a redirect, not both";
		return -1;
	}
	if (redirect_parse(value, &svc->redirect, why) != 0)
		return -1;
	svc->has_backend_key = true;
	svc->backend = BACKEND_REDIRECT;
	return 0;
}

static int
service_parameter(struct parser *p, const char *word, const char **why)
{
	return params_spec_add(&p->svc->params, word, why);
}

static int
service_parameters(struct parser *p, const char *value, const char **why)
{
	return each_word(p, value, service_parameter, why);
}

static int
service_proxy_protocol(struct parser *p, const char *value, const char **why)
{
	if (strcmp(value, "v1") == 0)
		p->svc->proxy = PROXY_V1;
	else if (strcmp(value, "v2") == 0)
		p->svc->proxy = PROXY_V2;
	else if (strcmp(value, "none") == 0)
		p->svc->proxy = PROXY_NONE;
	else {
		*why = "expected v1, v2 or none";
		return -1;
	}
	return 0;
}

static int
service_idle_timeout(struct parser *p, const char *value, const char **why)
{
	p->svc->has_idle_timeout = true;
	return set_timeout(&p->svc->idle_timeout_ms, value, true, why);
}

static int
service_connect_timeout(struct parser *p, const char *value, const char **why)
{
	p->svc->has_connect_timeout = true;
	return set_timeout(&p->svc->connect_timeout_ms, value, false, why);
}

static int
service_chargen_rate(struct parser *p, const char *value, const char **why)
{
	p->svc->has_chargen_rate = true;
	return set_count(&p->svc->chargen_rate, value, CHARGEN_RATE_MAX, why);
}

static int
service_fastopen(struct parser *p, const char *value, const char **why)
{
	return set_bool(&p->svc->fastopen, value, why);
}

static int
service_auth(struct parser *p, const char *value, const char **why)
{
	return set_either(&p->svc->auth_required, value, "required", "none",
	                  "expected required or none", why);
}

static int
service_encryption(struct parser *p, const char *value, const char **why)
{
	p->svc->has_encryption = true;
	return set_either(&p->svc->encryption_required, value, "required", "optional",
	                  "expected required or optional", why);
}

static int
service_identity(struct parser *p, const char *value, const char **why)
{
	return set_either(&p->svc->withhold_identity, value, "withhold", "pass",
	                  "expected pass or withhold", why);
}

/* "user:NAME", "group:NAME" or "key:SHA256:BASE64" */
static int
parse_principal(const char *word, struct principal *out, const char **why)
{
	static const struct {
		const char *prefix;
		enum principal_kind kind;
	} kinds[] = {
	        {"user:", PRINCIPAL_USER}, {"group:", PRINCIPAL_GROUP}, {"key:", PRINCIPAL_KEY}};
	size_t i, n;

	for (i = 0; i < ARRAY_LEN(kinds); i++) {
		n = strlen(kinds[i].prefix);
		if (strncmp(word, kinds[i].prefix, n) != 0)
			continue;
		out->kind = kinds[i].kind;
		if (str_copy(out->name, word + n, sizeof(out->name)) >= sizeof(out->name))
			break;
		if (out->kind == PRINCIPAL_KEY
		            ? strncmp(out->name, "SHA256:", 7) == 0 && strlen(out->name) == 50
		            : auth_user_valid(out->name))
			return 0;
		break;
	}
	*why = "expected user:NAME, group:NAME or key:SHA256:FINGERPRINT";
	return -1;
}

static int
add_principal(struct principal *list, size_t *n, const char *word, const char **why)
{
	if (*n == PRINCIPALS_MAX) {
		*why = "too many entries";
		return -1;
	}
	if (parse_principal(word, &list[*n], why) != 0)
		return -1;
	(*n)++;
	return 0;
}

static int
allow_word(struct parser *p, const char *word, const char **why)
{
	if (add_principal(p->svc->allow, &p->svc->nallow, word, why) != 0)
		return -1;
	p->cfg->names_groups |= p->svc->allow[p->svc->nallow - 1].kind == PRINCIPAL_GROUP;
	return 0;
}

static int
deny_word(struct parser *p, const char *word, const char **why)
{
	if (add_principal(p->svc->deny, &p->svc->ndeny, word, why) != 0)
		return -1;
	p->cfg->names_groups |= p->svc->deny[p->svc->ndeny - 1].kind == PRINCIPAL_GROUP;
	return 0;
}

static int
service_allow(struct parser *p, const char *value, const char **why)
{
	return each_word(p, value, allow_word, why);
}

static int
service_deny(struct parser *p, const char *value, const char **why)
{
	return each_word(p, value, deny_word, why);
}

static int
register_user(struct parser *p, const char *word, const char **why)
{
	struct service *svc = p->svc;

	if (svc->nregister_users == REGISTER_USERS_MAX || !auth_user_valid(word)) {
		*why = "expected up to 16 user names";
		return -1;
	}
	str_copy(svc->register_users[svc->nregister_users++], word, sizeof(svc->register_users[0]));
	return 0;
}

static int
service_register_users(struct parser *p, const char *value, const char **why)
{
	return each_word(p, value, register_user, why);
}

/* --- [vhost:NAME] ----------------------------------------------------------- */

/* One word of services: NAME or ALIAS=NAME. */
static int
vhost_add(struct parser *p, const char *item, const char **why)
{
	struct vhost *vh = p->vh;
	struct vhost_entry *e, *grown;
	const char *eq = strchr(item, '=');
	size_t i;

	if (vh->nentries == CONFIG_VHOST_ENTRIES_MAX) {
		*why = "too many services in one vhost";
		return -1;
	}
	grown = realloc(vh->entries, (vh->nentries + 1) * sizeof(*e));
	if (grown == NULL) {
		*why = "out of memory";
		return -1;
	}
	vh->entries = grown;
	e = &vh->entries[vh->nentries];
	memset(e, 0, sizeof(*e));
	if (eq != NULL && (size_t)(eq - item) <= NAME_MAX_LEN)
		memcpy(e->alias, item, (size_t)(eq - item));
	str_copy(e->target, eq != NULL ? eq + 1 : item, sizeof(e->target));
	if (eq == NULL)
		str_copy(e->alias, item, sizeof(e->alias));
	str_lower(e->alias);
	str_lower(e->target);
	if (!name_valid(e->alias) || !name_valid(e->target) || name_reserved(e->alias)) {
		*why = "expected service names, each NAME or ALIAS=NAME";
		return -1;
	}
	for (i = 0; i < vh->nentries; i++) {
		if (strcmp(vh->entries[i].alias, e->alias) == 0) {
			*why = "a name appears twice in this vhost";
			return -1;
		}
	}
	vh->nentries++;
	return 0;
}

static int
vhost_services(struct parser *p, const char *value, const char **why)
{
	return each_word(p, value, vhost_add, why);
}

/*
 * The type of field f of struct config is checked here, at compile time, since
 * set_value writes it through a pointer without a type.
 */
#define CONFIG_FIELD(type, f)                                                                      \
	_Generic(((struct config *)NULL)->f, type : offsetof(struct config, f))
#define CONFIG_SIZE(f) sizeof(((struct config *)NULL)->f)

/* [server] keys: with a function of their own, or a kind of value and its field. */
#define SERVER(name, set)                                                                          \
	{                                                                                          \
		name, SEC_SERVER, false, V_SETTER, 0, 0, set                                       \
	}
#define SERVER_U64(name, kind, f, max)                                                             \
	{                                                                                          \
		name, SEC_SERVER, false, kind, CONFIG_FIELD(uint64_t, f), max, NULL                \
	}
#define SERVER_BOOL(name, f)                                                                       \
	{                                                                                          \
		name, SEC_SERVER, false, V_BOOL, CONFIG_FIELD(bool, f), 0, NULL                    \
	}
#define SERVER_STR(name, kind, f)                                                                  \
	{                                                                                          \
		name, SEC_SERVER, false, kind, CONFIG_FIELD(char *, f), CONFIG_SIZE(f), NULL       \
	}
#define SECTION(sec, name, repeatable, set)                                                        \
	{                                                                                          \
		name, sec, repeatable, V_SETTER, 0, 0, set                                         \
	}

static const struct key keys[] = {
        SECTION(SEC_SERVER, "listen", true, server_listen),
        SERVER("listen_fallback", server_listen_fallback),
        SERVER("audit_log", server_audit_log),
        SERVER_BOOL("audit_required", audit_required),
        SERVER_U64("max_connections", V_COUNT, max_connections, 1000000),
        SERVER_U64("max_per_source", V_COUNT, max_per_source, 1000000),
        SERVER("relay_memory_max", server_relay_memory_max),
        SERVER_BOOL("splice", splice),
        SERVER_U64("defer_accept", V_DURATION_OR_NONE, defer_accept_ms, 0),
        SERVER("tcp_fastopen", server_tcp_fastopen),
        SERVER("workers", server_workers),
        SERVER_U64("request_timeout", V_DURATION, request_timeout_ms, 0),
        SERVER_U64("connect_timeout", V_DURATION, connect_timeout_ms, 0),
        SERVER_U64("idle_timeout", V_DURATION_OR_NONE, idle_timeout_ms, 0),
        SERVER_U64("drain_timeout", V_DURATION_OR_NONE, drain_timeout_ms, 0),
        SERVER("default_vhost", server_default_vhost),
        SERVER_STR("user", V_USER, user),
        SERVER_STR("exec_user", V_USER, exec_user),
        SERVER("chroot", server_chroot),
        SERVER_U64("max_pam_helpers", V_COUNT, max_pam_helpers, PAM_HELPERS_LIMIT),
        SERVER_U64("max_pam_helpers_per_source", V_COUNT, max_pam_helpers_per_source,
                   PAM_HELPERS_LIMIT),
        SERVER_U64("max_tokens_per_hour", V_COUNT, max_tokens_per_hour, UINT32_MAX),
        SERVER_STR("authorized_keys", V_PATH_OR_NONE, authorized_keys),
        SERVER("user_authorized_keys", server_user_authorized_keys),
        SERVER("pam_service", server_pam_service),
        SERVER("auth_methods", server_auth_methods),
        SERVER_U64("max_auth_tries", V_COUNT, max_auth_tries, 100),
        SERVER_U64("auth_timeout", V_DURATION, auth_timeout_ms, 0),
        SERVER_BOOL("allow_plaintext_password", allow_plaintext_password),
        SERVER_BOOL("allow_plaintext_pubkey", allow_plaintext_pubkey),
        SERVER_STR("control_socket", V_PATH_OR_NONE, control_socket),
        SERVER_STR("key_file", V_PATH, key_file),
        SERVER_BOOL("dark", dark),
        SERVER_STR("authorized_clients", V_PATH_OR_NONE, authorized_clients),
        SERVER("cookie", server_cookie),
        SERVER("seal_suites", server_seal_suites),
        SERVER_U64("handshake_cpu_high", V_PERCENT, handshake_cpu_high, 0),
        SERVER_U64("handshake_cpu_low", V_PERCENT, handshake_cpu_low, 0),
        SERVER_U64("pow_difficulty_min", V_BITS, pow_min, 0),
        SERVER_U64("pow_difficulty_max", V_BITS, pow_max, 0),
        SERVER_U64("handshakes_per_source", V_COUNT, handshake_rate, 1000000),
        SERVER_STR("tls_certificate", V_PATH, tls_certificate),
        SERVER_STR("tls_key", V_PATH, tls_key),
        SERVER_STR("tls_clients", V_PATH_OR_NONE, tls_clients),
        SERVER_STR("tls_client_ca", V_PATH_OR_NONE, tls_client_ca),
        SERVER("legacy_ssh", server_legacy_ssh),
        SERVER("legacy_http", server_legacy_http),
        SERVER("legacy_tls", server_legacy_tls),
        SECTION(SEC_SERVER, "tls_names", true, server_tls_names),
        SERVER("token_format", server_token_format),
        SERVER_U64("token_ttl", V_COUNT, token_ttl_s, TOKEN_TTL_LIMIT),
        SERVER_U64("token_max_ttl", V_COUNT, token_max_ttl_s, TOKEN_TTL_LIMIT),
        SERVER_STR("token_trusted_keys", V_PATH_OR_NONE, token_trusted_keys),
        SERVER_STR("revocation_file", V_PATH, revocation_file),
        SERVER("provider_name", server_provider_name),
        SERVER_U64("proof_ttl", V_COUNT, proof_ttl_s, PROOF_TTL_MAX),
        SERVER_STR("sign_key_file", V_PATH, sign_key_file),
        SECTION(SEC_SERVICE, "backend", false, service_backend),
        SECTION(SEC_SERVICE, "redirect", false, service_redirect),
        SECTION(SEC_SERVICE, "parameters", true, service_parameters),
        SECTION(SEC_SERVICE, "proxy_protocol", false, service_proxy_protocol),
        SECTION(SEC_SERVICE, "idle_timeout", false, service_idle_timeout),
        SECTION(SEC_SERVICE, "connect_timeout", false, service_connect_timeout),
        SECTION(SEC_SERVICE, "chargen_rate", false, service_chargen_rate),
        SECTION(SEC_SERVICE, "fastopen", false, service_fastopen),
        SECTION(SEC_SERVICE, "auth", false, service_auth),
        SECTION(SEC_SERVICE, "allow", true, service_allow),
        SECTION(SEC_SERVICE, "deny", true, service_deny),
        SECTION(SEC_SERVICE, "identity", false, service_identity),
        SECTION(SEC_SERVICE, "encryption", false, service_encryption),
        SECTION(SEC_SERVICE, "register_users", true, service_register_users),
        SECTION(SEC_VHOST, "services", true, vhost_services),
        SERVER("log", server_log),
        SERVER_STR("admin_socket", V_PATH_OR_NONE, admin_socket),
        /* A group name has a user name's form. */
        SERVER_STR("admin_group", V_USER, admin_group),
        SERVER("metrics_listen", server_metrics_listen),
        SERVER_BOOL("multiplex", multiplex),
        SERVER_U64("max_streams", V_COUNT, max_streams, MAX_STREAMS_LIMIT),
        SERVER_U64("max_pending_opens", V_COUNT, max_pending_opens, MAX_STREAMS_LIMIT),
        SERVER("mux_window_max", server_mux_window_max),
        SERVER_U64("mux_idle_timeout", V_DURATION, mux_idle_timeout_ms, 0),
        SERVER_BOOL("detachable", detachable),
        SERVER("detach_timeout", server_detach_timeout),
        SERVER("detach_queue_max", server_detach_queue_max),
        SERVER_U64("max_detachable", V_COUNT, max_detachable, 1000000),
        SERVER_BOOL("detach_plaintext", detach_plaintext),
        SERVER("attach_from", server_attach_from),
        SERVER("detach_end", server_detach_end),
        SECTION(SEC_SERVER, "proxy_from", true, server_proxy_from),
        SERVER_U64("proxy_timeout", V_DURATION, proxy_timeout_ms, 0),
        SERVER_STR("cluster_key_file", V_PATH_OR_NONE, cluster_key_file),
        SERVER("store", server_store),
        SERVER_U64("store_timeout", V_DURATION, store_timeout_ms, 0),
        SERVER_STR("store_user", V_USER, store_user),
        SERVER_STR("store_password_file", V_PATH_OR_NONE, store_password_file),
        SERVER_U64("revocation_stale_max", V_DURATION_OR_NONE, revocation_stale_max_ms, 0),
};

_Static_assert(ARRAY_LEN(keys) <= KEYS_MAX, "KEYS_MAX too small");

/* --- sections --------------------------------------------------------------- */

/* Checks made when a section is complete, while its line is still known. */
static void
section_end(struct parser *p)
{
	struct service *svc = p->svc;

	if (p->sec != SEC_SERVICE || svc == NULL)
		return;
	if (!svc->has_backend_key)
		error_at(p, svc->line, "service %s: no backend or redirect", svc->name);
	if (svc->params.n > 0 && svc->backend != BACKEND_EXEC)
		error_at(p, svc->line, "service %s: parameters are for exec: backends only",
		         svc->name);
	if (svc->proxy != PROXY_NONE && svc->backend != BACKEND_TCP && svc->backend != BACKEND_UNIX)
		error_at(p, svc->line, "service %s: proxy_protocol needs a tcp: or unix: backend",
		         svc->name);
	if ((svc->nallow > 0 || svc->ndeny > 0 || svc->withhold_identity) && !svc->auth_required)
		error_at(p, svc->line, "service %s: allow, deny and identity need auth = required",
		         svc->name);
	if ((svc->backend == BACKEND_REGISTER) != (svc->nregister_users > 0))
		error_at(p, svc->line,
		         "service %s: backend = register and register_users go together",
		         svc->name);
	if (svc->fastopen && svc->backend != BACKEND_TCP)
		error_at(p, svc->line, "service %s: fastopen needs a tcp: backend", svc->name);
	if (svc->has_chargen_rate &&
	    !(svc->backend == BACKEND_BUILTIN && svc->builtin == BUILTIN_CHARGEN))
		error_at(p, svc->line, "service %s: chargen_rate is for builtin:chargen only",
		         svc->name);
}

/*
 * Begins a [service:] or [vhost:] section, of kind what, with a new object
 * of the given size that the caller links to the configuration; returns
 * NULL when the name is invalid (then invalid says so), when a section
 * defined at line other has it already (0 for none), or without memory:
 * the header is reported and the keys under it ignored.
 */
static void *
begin_named(struct parser *p, enum section sec, const char *what, const char *name,
            const char *invalid, unsigned other, size_t size)
{
	void *obj = NULL;

	if (invalid != NULL)
		error_at(p, p->line, "%s \"%s\"", invalid, name);
	else if (other != 0)
		error_at(p, p->line, "%s %s already defined at line %u", what, name, other);
	else if ((obj = calloc(1, size)) == NULL)
		error_at(p, p->line, "out of memory");
	else
		p->sec = sec;
	return obj;
}

static unsigned
service_line(const struct config *cfg, const char *name)
{
	const struct service *svc;

	for (svc = cfg->services; svc != NULL; svc = svc->next)
		if (strcasecmp(svc->name, name) == 0)
			return svc->line;
	return 0;
}

static void
begin_service(struct parser *p, const char *name)
{
	const char *invalid = name_valid(name) && !name_reserved(name)
	                              ? NULL
	                              : "invalid or reserved service name";
	struct service *svc = begin_named(p, SEC_SERVICE, "service", name, invalid,
	                                  service_line(p->cfg, name), sizeof(*svc));

	if (svc == NULL)
		return;
	str_copy(svc->name, name, sizeof(svc->name));
	str_lower(svc->name);
	svc->line = p->line;
	svc->chargen_rate = DEFAULT_CHARGEN_RATE;
	*p->svc_tail = svc;
	p->svc_tail = &svc->next;
	p->svc = svc;
}

static void
begin_vhost(struct parser *p, const char *name)
{
	const struct vhost *other = config_vhost(p->cfg, name);
	struct vhost *vh = begin_named(p, SEC_VHOST, "vhost", name,
	                               vhost_name_valid(name) ? NULL : "invalid vhost name",
	                               other != NULL ? other->line : 0, sizeof(*vh));

	if (vh == NULL)
		return;
	str_copy(vh->name, name, sizeof(vh->name));
	str_lower(vh->name);
	vh->line = p->line;
	*p->vh_tail = vh;
	p->vh_tail = &vh->next;
	p->vh = vh;
}

/* A header line "[...]" starting in column 1. */
static void
begin_section(struct parser *p, const char *line, size_t len)
{
	char name[INI_LINE_BUFFER];
	const char *close = memchr(line, ']', len);
	size_t n;

	section_end(p);
	memset(p->seen, 0, sizeof(p->seen));
	p->svc = NULL;
	p->vh = NULL;
	p->sec = SEC_INVALID;
	if (close == NULL) {
		error_at(p, p->line, "section header without ']'");
		return;
	}
	n = (size_t)(close - line - 1);
	memcpy(name, line + 1, n);
	name[n] = '\0';
	if (strcmp(name, "server") == 0) {
		if (p->server_seen)
			error_at(p, p->line, "[server] appears twice");
		p->server_seen = true;
		p->sec = SEC_SERVER;
	} else if (strncmp(name, "service:", 8) == 0) {
		begin_service(p, name + 8);
	} else if (strncmp(name, "vhost:", 6) == 0) {
		begin_vhost(p, name + 6);
	} else {
		error_at(p, p->line, "unknown section [%s]", name);
	}
}

/* --- inih glue ------------------------------------------------------------- */

/*
 * Whether inih finds a key in line[0..len): a '=' or ':' before any inline
 * comment (a ';' after white space), as its find_chars_or_comment looks.
 */
static bool
has_separator(const char *line, size_t len)
{
	bool was_space = false;
	size_t i;

	for (i = 0; i < len; i++) {
		if (line[i] == '=' || line[i] == ':')
			return true;
		if (was_space && line[i] == ';')
			return false;
		was_space = isspace((unsigned char)line[i]) != 0;
	}
	return false;
}

/*
 * Checks the syntax of one line (no newline) as inih would read it, and
 * notes a section header.  Returns whether inih may have the line: one
 * with an error, reported here, is not handed on, so that it is reported
 * once and other lines keep their own line numbers (inih reports only the
 * first line it cannot read).
 */
static bool
check_line(struct parser *p, const char *line, size_t len)
{
	size_t indent;

	for (indent = 0; indent < len && isspace((unsigned char)line[indent]); indent++)
		;
	if (indent == len || line[indent] == '#' || line[indent] == ';')
		return true;
	if (indent == 0 && line[0] == '[') {
		begin_section(p, line, len);
		p->after_key = false;
		return memchr(line, ']', len) != NULL;
	}
	if (line[indent] == '[') {
		error_at(p, p->line, "a section header must start in the first column");
		return false;
	}
	if (indent > 0 && p->after_key)
		return true;
	if (!has_separator(line, len)) {
		error_at(p, p->line, "syntax error: expected [section] or key = value");
		return false;
	}
	p->after_key = true;
	return true;
}

/*
 * inih's reader: hands over one whole line at a time, so that the number of
 * calls is the line number, and notes section headers as they pass.  A line
 * with an error is handed over empty.
 */
static char *
read_line(char *str, int num, void *stream)
{
	struct parser *p = stream;
	const char *start = p->text + p->pos;
	const char *nl;
	size_t len;

	if (p->pos >= p->len)
		return NULL;
	nl = memchr(start, '\n', p->len - p->pos);
	len = nl != NULL ? (size_t)(nl - start) : p->len - p->pos;
	p->pos += len + (nl != NULL);
	p->line++;
	str[0] = '\0';
	if (memchr(start, '\0', len) != NULL) {
		error_at(p, p->line, "NUL byte in line");
		return str;
	}
	if (len + 2 > (size_t)num) {
		error_at(
		        p, p->line,
		        "line longer than %d characters (continue a list on an indented next line)",
		        num - 2);
		return str;
	}
	if (p->line == 1 && len >= 3 && memcmp(start, UTF8_BOM, 3) == 0) {
		start += 3;
		len -= 3;
	}
	if (!check_line(p, start, len))
		return str;
	memcpy(str, start, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

static int
handle_key(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	const char *why = "invalid value";
	size_t i;

	if (p->sec == SEC_INVALID)
		return 1;
	if (p->sec == SEC_NONE) {
		error_at(p, p->line, "%s: key outside any section", name);
		return 1;
	}
	for (i = 0; i < ARRAY_LEN(keys); i++) {
		if (keys[i].sec != p->sec || strcmp(keys[i].name, name) != 0)
			continue;
		if (p->seen[i] && !keys[i].repeatable) {
			error_at(p, p->line, "%s: set twice in this section", name);
			return 1;
		}
		p->seen[i] = true;
		if (keys[i].sec == SEC_SERVER)
			p->key_line[i] = p->line;
		if (set_value(p, &keys[i], value, &why) != 0) {
			error_at(p, p->line, "%s: %s", name, why);
			p->key_refused[i] = true;
		}
		return 1;
	}
	error_at(p, p->line, "unknown key \"%s\" in [%s]", name, section);
	return 1;
}

/* --- whole-file checks ----------------------------------------------------- */

static size_t
server_key(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(keys); i++)
		if (keys[i].sec == SEC_SERVER && strcmp(keys[i].name, name) == 0)
			break;
	return i;
}

/*
 * Where the first of two [server] keys checked together was set, else the
 * second; 0 when the value of either was refused, so that the check says
 * nothing more about a line already reported.
 */
static unsigned
pair_line(const struct parser *p, const char *first, const char *second)
{
	size_t a = server_key(first), b = server_key(second);

	if (p->key_refused[a] || p->key_refused[b])
		return 0;
	return p->key_line[a] != 0 ? p->key_line[a] : p->key_line[b];
}

/* The legacy backends take the server's timeouts; they make no sense on a dark server. */
static void
resolve_legacy(struct parser *p)
{
	static const char *const keys_of[LEGACY_PROTO_COUNT] = {"legacy_ssh", "legacy_http",
	                                                        "legacy_tls"};
	struct config *cfg = p->cfg;
	unsigned line;
	int i;

	for (i = 0; i < LEGACY_PROTO_COUNT; i++) {
		cfg->legacy[i].idle_timeout_ms = cfg->idle_timeout_ms;
		cfg->legacy[i].connect_timeout_ms = cfg->connect_timeout_ms;
		if (cfg->dark && cfg->legacy[i].backend != BACKEND_NONE &&
		    (line = pair_line(p, keys_of[i], "dark")) != 0)
			error_at(p, line,
			         "%s and dark = yes contradict: a dark server answers "
			         "only the sealed handshake",
			         keys_of[i]);
	}
	if (cfg->ntls_names > 0 && cfg->legacy[LEGACY_TLS].backend == BACKEND_NONE &&
	    (line = pair_line(p, "tls_names", "legacy_tls")) != 0)
		error_at(p, line, "tls_names is for legacy_tls: set both or neither");
}

static void
resolve(struct parser *p)
{
	struct config *cfg = p->cfg;
	struct service *svc;
	struct vhost *vh;
	unsigned line;
	size_t i;

	/* A shorter token_max_ttl alone shortens the default lifetime too. */
	if (cfg->token_ttl_s > cfg->token_max_ttl_s && p->key_line[server_key("token_ttl")] == 0)
		cfg->token_ttl_s = cfg->token_max_ttl_s;
	if (cfg->token_ttl_s > cfg->token_max_ttl_s &&
	    (line = pair_line(p, "token_ttl", "token_max_ttl")) != 0)
		error_at(p, line, "token_ttl is longer than token_max_ttl");
	for (svc = cfg->services; svc != NULL; svc = svc->next) {
		if (svc->backend == BACKEND_REGISTER && cfg->control_socket[0] == '\0' &&
		    !p->key_refused[server_key("control_socket")])
			error_at(p, svc->line,
			         "service %s: backend = register needs control_socket", svc->name);
		if (!svc->has_encryption)
			svc->encryption_required = svc->auth_required;
		if (!svc->has_idle_timeout)
			svc->idle_timeout_ms = cfg->idle_timeout_ms;
		if (!svc->has_connect_timeout)
			svc->connect_timeout_ms = cfg->connect_timeout_ms;
	}
	for (vh = cfg->vhosts; vh != NULL; vh = vh->next) {
		for (i = 0; i < vh->nentries; i++) {
			struct vhost_entry *e = &vh->entries[i];
			for (svc = cfg->services; svc != NULL; svc = svc->next)
				if (strcmp(svc->name, e->target) == 0)
					break;
			if (svc == NULL)
				error_at(p, vh->line, "vhost %s: no service %s", vh->name,
				         e->target);
			e->service = svc;
		}
	}
	resolve_legacy(p);
	if (cfg->handshake_cpu_low > cfg->handshake_cpu_high &&
	    (line = pair_line(p, "handshake_cpu_low", "handshake_cpu_high")) != 0)
		error_at(p, line, "handshake_cpu_low is above handshake_cpu_high");
	if (cfg->pow_min > cfg->pow_max &&
	    (line = pair_line(p, "pow_difficulty_min", "pow_difficulty_max")) != 0)
		error_at(p, line, "pow_difficulty_min is above pow_difficulty_max");
	if ((cfg->tls_certificate[0] == '\0') != (cfg->tls_key[0] == '\0') &&
	    (line = pair_line(p, "tls_certificate", "tls_key")) != 0)
		error_at(p, line, "tls_certificate and tls_key go together");
	if (cfg->audit_required && cfg->audit_log[0] == '\0' &&
	    (line = pair_line(p, "audit_required", "audit_log")) != 0)
		error_at(p, line, "audit_required needs an audit log (audit_log is none)");
	if (cfg->store_user[0] != '\0' && cfg->store_password_file[0] == '\0')
		error_at(p, p->key_line[server_key("store_user")],
		         "store_user needs store_password_file");
	if (cfg->default_vhost[0] != '\0' && config_vhost(cfg, cfg->default_vhost) == NULL)
		error_at(p, p->key_line[server_key("default_vhost")],
		         "default_vhost: no [vhost:%s]", cfg->default_vhost);
	/*
	 * Last, and only in a file without other errors: a listen line that
	 * was refused, misspelt or in a misspelt section is reported as such.
	 */
	if (cfg->nlisten == 0 && p->errs->count == 0)
		error_at(p, 0, "no listen address: set listen in [server]");
}

static void
config_free(struct config *cfg)
{
	struct service *svc, *svc_next;
	struct vhost *vh, *vh_next;

	for (svc = cfg->services; svc != NULL; svc = svc_next) {
		svc_next = svc->next;
		free_argv(svc->argv);
		free(svc);
	}
	for (vh = cfg->vhosts; vh != NULL; vh = vh_next) {
		vh_next = vh->next;
		free(vh->entries);
		free(vh);
	}
	free(cfg->audit_log);
	free(cfg);
}

struct config *
config_parse(const char *name, const char *text, size_t len, struct config_errors *errs)
{
	struct parser p;
	struct config *cfg;
	int r;

	memset(errs, 0, sizeof(*errs));
	memset(&p, 0, sizeof(p));
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL || (cfg->audit_log = strdup("-")) == NULL) {
		free(cfg);
		snprintf(errs->text, sizeof(errs->text), "%s: out of memory\n", name);
		errs->count = 1;
		return NULL;
	}
	cfg->refs = 1;
	cfg->max_connections = DEFAULT_MAX_CONNECTIONS;
	cfg->max_per_source = DEFAULT_MAX_PER_SOURCE;
	cfg->relay_memory_max = DEFAULT_RELAY_MEMORY_MAX;
	cfg->request_timeout_ms = DEFAULT_REQUEST_TIMEOUT;
	cfg->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT;
	cfg->idle_timeout_ms = DEFAULT_IDLE_TIMEOUT;
	cfg->drain_timeout_ms = DEFAULT_DRAIN_TIMEOUT;
	cfg->max_auth_tries = DEFAULT_MAX_AUTH_TRIES;
	str_copy(cfg->exec_user, DEFAULT_EXEC_USER, sizeof(cfg->exec_user));
	str_copy(cfg->chroot, DEFAULT_CHROOT, sizeof(cfg->chroot));
	cfg->max_pam_helpers = DEFAULT_PAM_HELPERS;
	cfg->max_pam_helpers_per_source = DEFAULT_PAM_PER_SOURCE;
	cfg->max_tokens_per_hour = DEFAULT_TOKENS_PER_HOUR;
	cfg->auth_timeout_ms = DEFAULT_AUTH_TIMEOUT;
	str_copy(cfg->pam_service, DEFAULT_PAM_SERVICE, sizeof(cfg->pam_service));
	cfg->auth_methods[AUTH_PUBKEY] = true;
	cfg->auth_methods[AUTH_PASSWORD] = true;
	cfg->auth_methods[AUTH_TOKEN] = true;
	cfg->token_ttl_s = DEFAULT_TOKEN_TTL;
	cfg->token_max_ttl_s = DEFAULT_TOKEN_MAX_TTL;
	cfg->proof_ttl_s = PROOF_TTL_DEFAULT;
	cfg->handshake_cpu_high = DEFAULT_CPU_HIGH;
	cfg->handshake_cpu_low = DEFAULT_CPU_LOW;
	cfg->pow_min = DEFAULT_POW_MIN;
	cfg->pow_max = DEFAULT_POW_MAX;
	cfg->handshake_rate = DEFAULT_HANDSHAKE_RATE;
	cfg->multiplex = true;
	cfg->splice = false;
	cfg->defer_accept_ms = 0;
	cfg->tcp_fastopen = 0;
	cfg->workers = 1;
	cfg->max_streams = DEFAULT_MAX_STREAMS;
	cfg->max_pending_opens = DEFAULT_MAX_PENDING_OPENS;
	cfg->mux_window_max = DEFAULT_MUX_WINDOW_MAX;
	cfg->mux_idle_timeout_ms = DEFAULT_MUX_IDLE_TIMEOUT;
	cfg->detachable = true;
	cfg->detach_timeout_ms = DEFAULT_DETACH_TIMEOUT;
	cfg->detach_queue_max = DEFAULT_DETACH_QUEUE_MAX;
	cfg->max_detachable = DEFAULT_MAX_DETACHABLE;
	cfg->attach_from = ATTACH_FROM_ANY;
	cfg->detach_end = DETACH_END_RESET;
	cfg->proxy_timeout_ms = DEFAULT_PROXY_TIMEOUT;
	cfg->store_timeout_ms = DEFAULT_STORE_TIMEOUT;
	cfg->revocation_stale_max_ms = DEFAULT_REVOCATION_STALE_MAX;
	p.name = name;
	p.text = text;
	p.len = len;
	p.cfg = cfg;
	p.errs = errs;
	p.svc_tail = &cfg->services;
	p.vh_tail = &cfg->vhosts;
	r = ini_parse_stream(read_line, &p, handle_key, &p);
	section_end(&p);
	if (r > 0)
		error_at(&p, (unsigned)r, "syntax error: expected [section] or key = value");
	else if (r < 0)
		error_at(&p, 0, "out of memory");
	resolve(&p);
	if (errs->count > 0) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

int
config_read_file(const char *path, char **text, size_t *len, struct config_errors *errs)
{
	struct stat st;
	ssize_t n;
	int fd;

	memset(errs, 0, sizeof(*errs));
	errs->count = 1;
	*text = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(errs->text, sizeof(errs->text), "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX) {
		snprintf(errs->text, sizeof(errs->text),
		         "%s: not a regular file of at most %d bytes\n", path, CONFIG_FILE_MAX);
		goto fail;
	}
	if ((*text = malloc((size_t)st.st_size + 1)) == NULL ||
	    (n = read(fd, *text, (size_t)st.st_size)) != st.st_size) {
		snprintf(errs->text, sizeof(errs->text), "%s: cannot read\n", path);
		goto fail;
	}
	*len = (size_t)n;
	close(fd);
	errs->count = 0;
	return 0;
fail:
	free(*text);
	*text = NULL;
	close(fd);
	return -1;
}

void
config_errors_log(const struct config_errors *errs)
{
	const char *line, *end;

	for (line = errs->text; *line != '\0'; line = *end != '\0' ? end + 1 : end) {
		end = line + strcspn(line, "\n");
		log_error("%.*s", (int)(end - line), line);
	}
}

struct config *
config_load(const char *path, struct config_errors *errs)
{
	struct config *cfg;
	char *text;
	size_t len;

	if (config_read_file(path, &text, &len, errs) != 0)
		return NULL;
	cfg = config_parse(path, text, len, errs);
	free(text);
	return cfg;
}

struct config *
config_builtin(void)
{
	struct config_errors errs;

	return config_parse("(built-in)", config_builtin_text, strlen(config_builtin_text), &errs);
}

struct config *
config_ref(struct config *cfg)
{
	cfg->refs++;
	return cfg;
}

void
config_unref(struct config *cfg)
{
	if (cfg != NULL && --cfg->refs == 0)
		config_free(cfg);
}

bool
config_legacy_on(const struct config *cfg)
{
	int i;

	for (i = 0; i < LEGACY_PROTO_COUNT; i++)
		if (cfg->legacy[i].backend != BACKEND_NONE)
			return true;
	return false;
}

const struct vhost *
config_vhost(const struct config *cfg, const char *name)
{
	const struct vhost *vh;

	for (vh = cfg->vhosts; vh != NULL; vh = vh->next)
		if (strcasecmp(vh->name, name) == 0)
			return vh;
	return NULL;
}

const struct service *
config_lookup(const struct config *cfg, const struct vhost *vh, const char *name)
{
	const struct service *svc;
	size_t i;

	if (vh == NULL && cfg->default_vhost[0] != '\0')
		vh = config_vhost(cfg, cfg->default_vhost);
	if (vh != NULL) {
		for (i = 0; i < vh->nentries; i++)
			if (strcasecmp(vh->entries[i].alias, name) == 0)
				return vh->entries[i].service;
		return NULL;
	}
	for (svc = cfg->services; svc != NULL; svc = svc->next)
		if (strcasecmp(svc->name, name) == 0)
			return svc;
	return NULL;
}

bool
config_audit_opened(const struct config *cfg)
{
	return cfg->audit_log[0] == '/' || strcmp(cfg->audit_log, CONFIG_AUDIT_JOURNAL) == 0;
}

void
config_each_name(const struct config *cfg, const struct vhost *vh,
                 void (*fn)(void *arg, const char *name, const struct service *svc), void *arg)
{
	const struct service *svc;
	size_t i;

	if (vh == NULL && cfg->default_vhost[0] != '\0')
		vh = config_vhost(cfg, cfg->default_vhost);
	if (vh != NULL) {
		for (i = 0; i < vh->nentries; i++)
			fn(arg, vh->entries[i].alias, vh->entries[i].service);
		return;
	}
	for (svc = cfg->services; svc != NULL; svc = svc->next)
		fn(arg, svc->name, svc);
}

/*
 * Without -c, fived serves inetd's classic internal services on loopback:
 * something real to try, and nothing reachable from another host.
 */
const char config_builtin_text[] = "# fived's built-in configuration (fived --print-builtin)\n"
                                   "[server]\n"
                                   "listen = tcp:127.0.0.1:1\n"
                                   "listen_fallback = tcp:127.0.0.1:5501\n"
                                   "audit_log = -\n"
                                   "\n"
                                   "[service:echo]\n"
                                   "backend = builtin:echo\n"
                                   "\n"
                                   "[service:discard]\n"
                                   "backend = builtin:discard\n"
                                   "\n"
                                   "[service:daytime]\n"
                                   "backend = builtin:daytime\n"
                                   "\n"
                                   "[service:chargen]\n"
                                   "backend = builtin:chargen\n"
                                   "chargen_rate = 65536\n";

bool
config_balancer(const struct config *cfg, const struct sockaddr *peer)
{
	size_t i;

	for (i = 0; i < cfg->nproxy_from; i++)
		if (token_addr_matches(cfg->proxy_from[i], peer))
			return true;
	return false;
}

static uint64_t
share_of(uint64_t limit, unsigned nworkers)
{
	return limit / nworkers + (limit % nworkers != 0);
}

void
config_share(struct config *cfg, unsigned nworkers)
{
	if (nworkers <= 1)
		return;
	cfg->max_connections = share_of(cfg->max_connections, nworkers);
	cfg->max_detachable = share_of(cfg->max_detachable, nworkers);
	cfg->relay_memory_max = share_of(cfg->relay_memory_max, nworkers);
}
