#include "server/conf/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

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

struct key {
	const char *name;
	enum section sec;
	bool repeatable;
	key_setter set;
};

#define KEYS_MAX 64

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
	bool token_ttl_set;
	struct service *svc; /* current [service:] */
	struct vhost *vh;    /* current [vhost:] */
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

/* --- [server] --------------------------------------------------------------- */

static int
server_listen(struct parser *p, const char *value, const char **why)
{
	char copy[INI_LINE_BUFFER];
	char *word, *save = NULL;

	str_copy(copy, value, sizeof(copy));
	for (word = strtok_r(copy, " \t", &save); word != NULL;
	     word = strtok_r(NULL, " \t", &save)) {
		if (p->cfg->nlisten == CONFIG_LISTEN_MAX) {
			*why = "too many listen addresses";
			return -1;
		}
		if (addr_parse(word, &p->cfg->listen[p->cfg->nlisten], why) != 0)
			return -1;
		if (p->cfg->listen[p->cfg->nlisten].kind == ADDR_TCP &&
		    !p->cfg->listen[p->cfg->nlisten].numeric) {
			*why = "a listen address must be an IP address, not a name";
			return -1;
		}
		p->cfg->nlisten++;
	}
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

static int
server_audit_log(struct parser *p, const char *value, const char **why)
{
	if (strcmp(value, "-") != 0 && strcmp(value, "none") != 0 && value[0] != '/') {
		*why = "expected an absolute path, - (standard output) or none";
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
server_max_connections(struct parser *p, const char *value, const char **why)
{
	return set_count(&p->cfg->max_connections, value, 1000000, why);
}

static int
server_max_per_source(struct parser *p, const char *value, const char **why)
{
	return set_count(&p->cfg->max_per_source, value, 1000000, why);
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
server_request_timeout(struct parser *p, const char *value, const char **why)
{
	return set_timeout(&p->cfg->request_timeout_ms, value, false, why);
}

static int
server_connect_timeout(struct parser *p, const char *value, const char **why)
{
	return set_timeout(&p->cfg->connect_timeout_ms, value, false, why);
}

static int
server_idle_timeout(struct parser *p, const char *value, const char **why)
{
	return set_timeout(&p->cfg->idle_timeout_ms, value, true, why);
}

static int
server_drain_timeout(struct parser *p, const char *value, const char **why)
{
	return set_timeout(&p->cfg->drain_timeout_ms, value, true, why);
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
server_user(struct parser *p, const char *value, const char **why)
{
	if (!auth_user_valid(value)) {
		*why = "expected a user name";
		return -1;
	}
	str_copy(p->cfg->user, value, sizeof(p->cfg->user));
	return 0;
}

static int
server_exec_user(struct parser *p, const char *value, const char **why)
{
	if (!auth_user_valid(value)) {
		*why = "expected a user name";
		return -1;
	}
	str_copy(p->cfg->exec_user, value, sizeof(p->cfg->exec_user));
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
server_max_pam_helpers(struct parser *p, const char *value, const char **why)
{
	return set_count(&p->cfg->max_pam_helpers, value, PAM_HELPERS_LIMIT, why);
}

static int
server_max_pam_helpers_per_source(struct parser *p, const char *value, const char **why)
{
	return set_count(&p->cfg->max_pam_helpers_per_source, value, PAM_HELPERS_LIMIT, why);
}

static int
server_max_tokens_per_hour(struct parser *p, const char *value, const char **why)
{
	return set_count(&p->cfg->max_tokens_per_hour, value, UINT32_MAX, why);
}

static int
server_authorized_keys(struct parser *p, const char *value, const char **why)
{
	return set_path(p->cfg->authorized_keys, sizeof(p->cfg->authorized_keys), value, true, why);
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
server_auth_methods(struct parser *p, const char *value, const char **why)
{
	char copy[INI_LINE_BUFFER];
	char *word, *save = NULL;
	enum auth_method m;

	memset(p->cfg->auth_methods, 0, sizeof(p->cfg->auth_methods));
	str_copy(copy, value, sizeof(copy));
	for (word = strtok_r(copy, " \t", &save); word != NULL;
	     word = strtok_r(NULL, " \t", &save)) {
		if (auth_method_from_name(word, &m) != 0 || m == AUTH_NONE) {
			*why = "expected methods among pubkey, password, token, external";
			return -1;
		}
		p->cfg->auth_methods[m] = true;
	}
	return 0;
}

static int
server_max_auth_tries(struct parser *p, const char *value, const char **why)
{
	return set_count(&p->cfg->max_auth_tries, value, 100, why);
}

static int
server_auth_timeout(struct parser *p, const char *value, const char **why)
{
	return set_timeout(&p->cfg->auth_timeout_ms, value, false, why);
}

static int
server_allow_plaintext_password(struct parser *p, const char *value, const char **why)
{
	if (parse_bool(value, &p->cfg->allow_plaintext_password) != 0) {
		*why = "expected yes or no";
		return -1;
	}
	return 0;
}

static int
server_allow_plaintext_pubkey(struct parser *p, const char *value, const char **why)
{
	if (parse_bool(value, &p->cfg->allow_plaintext_pubkey) != 0) {
		*why = "expected yes or no";
		return -1;
	}
	return 0;
}

static int
server_control_socket(struct parser *p, const char *value, const char **why)
{
	return set_path(p->cfg->control_socket, sizeof(p->cfg->control_socket), value, true, why);
}

static int
server_key_file(struct parser *p, const char *value, const char **why)
{
	return set_path(p->cfg->key_file, sizeof(p->cfg->key_file), value, false, why);
}

static int
server_token_format(struct parser *p, const char *value, const char **why)
{
	if (strcmp(value, "public") != 0 && strcmp(value, "local") != 0) {
		*why = "expected public or local";
		return -1;
	}
	p->cfg->token_local = strcmp(value, "local") == 0;
	return 0;
}

static int
server_token_ttl(struct parser *p, const char *value, const char **why)
{
	p->token_ttl_set = true;
	return set_count(&p->cfg->token_ttl_s, value, TOKEN_TTL_LIMIT, why);
}

static int
server_token_max_ttl(struct parser *p, const char *value, const char **why)
{
	return set_count(&p->cfg->token_max_ttl_s, value, TOKEN_TTL_LIMIT, why);
}

static int
server_token_trusted_keys(struct parser *p, const char *value, const char **why)
{
	return set_path(p->cfg->token_trusted_keys, sizeof(p->cfg->token_trusted_keys), value, true,
	                why);
}

static int
server_revocation_file(struct parser *p, const char *value, const char **why)
{
	return set_path(p->cfg->revocation_file, sizeof(p->cfg->revocation_file), value, false,
	                why);
}

static int
server_audit_required(struct parser *p, const char *value, const char **why)
{
	if (parse_bool(value, &p->cfg->audit_required) != 0) {
		*why = "expected yes or no";
		return -1;
	}
	return 0;
}

static int
server_dark(struct parser *p, const char *value, const char **why)
{
	if (parse_bool(value, &p->cfg->dark) != 0) {
		*why = "expected yes or no";
		return -1;
	}
	return 0;
}

static int
server_authorized_clients(struct parser *p, const char *value, const char **why)
{
	return set_path(p->cfg->authorized_clients, sizeof(p->cfg->authorized_clients), value, true,
	                why);
}

static int
server_cookie(struct parser *p, const char *value, const char **why)
{
	if (strcmp(value, "always") == 0)
		p->cfg->cookie_always = true;
	else if (strcmp(value, "auto") == 0)
		p->cfg->cookie_always = false;
	else {
		*why = "expected auto or always";
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
server_handshake_cpu_high(struct parser *p, const char *value, const char **why)
{
	return set_percent(&p->cfg->handshake_cpu_high, value, why);
}

static int
server_handshake_cpu_low(struct parser *p, const char *value, const char **why)
{
	return set_percent(&p->cfg->handshake_cpu_low, value, why);
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
server_pow_min(struct parser *p, const char *value, const char **why)
{
	return set_bits(&p->cfg->pow_min, value, why);
}

static int
server_pow_max(struct parser *p, const char *value, const char **why)
{
	return set_bits(&p->cfg->pow_max, value, why);
}

static int
server_handshake_rate(struct parser *p, const char *value, const char **why)
{
	return set_count(&p->cfg->handshake_rate, value, 1000000, why);
}

static int
server_tls_certificate(struct parser *p, const char *value, const char **why)
{
	return set_path(p->cfg->tls_certificate, sizeof(p->cfg->tls_certificate), value, false,
	                why);
}

static int
server_tls_key(struct parser *p, const char *value, const char **why)
{
	return set_path(p->cfg->tls_key, sizeof(p->cfg->tls_key), value, false, why);
}

static int
server_tls_clients(struct parser *p, const char *value, const char **why)
{
	return set_path(p->cfg->tls_clients, sizeof(p->cfg->tls_clients), value, true, why);
}

static int
server_tls_client_ca(struct parser *p, const char *value, const char **why)
{
	return set_path(p->cfg->tls_client_ca, sizeof(p->cfg->tls_client_ca), value, true, why);
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

	svc->has_backend_key = true;
	if (strcmp(value, "register") == 0) {
		svc->backend = BACKEND_REGISTER;
		return 0;
	}
	if (strncmp(value, "builtin:", 8) == 0)
		return backend_builtin(svc, value + 8, why);
	if (strncmp(value, "exec:", 5) == 0)
		return backend_exec(svc, value + 5, why);
	if (strncmp(value, "tcp:", 4) == 0 || strncmp(value, "unix:", 5) == 0) {
		if (addr_parse(value, &svc->addr, why) != 0)
			return -1;
		if (svc->addr.kind == ADDR_TCP && svc->addr.port == 0) {
			*why = "a backend needs a port other than 0";
			return -1;
		}
		svc->backend = svc->addr.kind == ADDR_TCP ? BACKEND_TCP : BACKEND_UNIX;
		return 0;
	}
	*why = "expected tcp:HOST:PORT, unix:PATH, exec:PROGRAM ARGS, builtin:NAME or register";
	return -1;
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
service_auth(struct parser *p, const char *value, const char **why)
{
	if (strcmp(value, "required") == 0)
		p->svc->auth_required = true;
	else if (strcmp(value, "none") == 0)
		p->svc->auth_required = false;
	else {
		*why = "expected required or none";
		return -1;
	}
	return 0;
}

static int
service_encryption(struct parser *p, const char *value, const char **why)
{
	p->svc->has_encryption = true;
	if (strcmp(value, "required") == 0)
		p->svc->encryption_required = true;
	else if (strcmp(value, "optional") == 0)
		p->svc->encryption_required = false;
	else {
		*why = "expected required or optional";
		return -1;
	}
	return 0;
}

static int
service_identity(struct parser *p, const char *value, const char **why)
{
	if (strcmp(value, "withhold") == 0)
		p->svc->withhold_identity = true;
	else if (strcmp(value, "pass") == 0)
		p->svc->withhold_identity = false;
	else {
		*why = "expected pass or withhold";
		return -1;
	}
	return 0;
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
add_principals(struct principal *list, size_t *n, const char *value, const char **why)
{
	char copy[INI_LINE_BUFFER];
	char *word, *save = NULL;

	str_copy(copy, value, sizeof(copy));
	for (word = strtok_r(copy, " \t", &save); word != NULL;
	     word = strtok_r(NULL, " \t", &save)) {
		if (*n == PRINCIPALS_MAX) {
			*why = "too many entries";
			return -1;
		}
		if (parse_principal(word, &list[*n], why) != 0)
			return -1;
		(*n)++;
	}
	return 0;
}

static int
service_allow(struct parser *p, const char *value, const char **why)
{
	return add_principals(p->svc->allow, &p->svc->nallow, value, why);
}

static int
service_deny(struct parser *p, const char *value, const char **why)
{
	return add_principals(p->svc->deny, &p->svc->ndeny, value, why);
}

static int
service_register_users(struct parser *p, const char *value, const char **why)
{
	char copy[INI_LINE_BUFFER];
	char *word, *save = NULL;
	struct service *svc = p->svc;

	str_copy(copy, value, sizeof(copy));
	for (word = strtok_r(copy, " \t", &save); word != NULL;
	     word = strtok_r(NULL, " \t", &save)) {
		if (svc->nregister_users == REGISTER_USERS_MAX || !auth_user_valid(word)) {
			*why = "expected up to 16 user names";
			return -1;
		}
		str_copy(svc->register_users[svc->nregister_users++], word,
		         sizeof(svc->register_users[0]));
	}
	return 0;
}

/* --- [vhost:NAME] ----------------------------------------------------------- */

static int
vhost_add(struct vhost *vh, const char *item, const char **why)
{
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
	char copy[INI_LINE_BUFFER];
	char *word, *save = NULL;

	str_copy(copy, value, sizeof(copy));
	for (word = strtok_r(copy, " \t", &save); word != NULL; word = strtok_r(NULL, " \t", &save))
		if (vhost_add(p->vh, word, why) != 0)
			return -1;
	return 0;
}

static const struct key keys[] = {
        {"listen", SEC_SERVER, true, server_listen},
        {"listen_fallback", SEC_SERVER, false, server_listen_fallback},
        {"audit_log", SEC_SERVER, false, server_audit_log},
        {"audit_required", SEC_SERVER, false, server_audit_required},
        {"max_connections", SEC_SERVER, false, server_max_connections},
        {"max_per_source", SEC_SERVER, false, server_max_per_source},
        {"relay_memory_max", SEC_SERVER, false, server_relay_memory_max},
        {"request_timeout", SEC_SERVER, false, server_request_timeout},
        {"connect_timeout", SEC_SERVER, false, server_connect_timeout},
        {"idle_timeout", SEC_SERVER, false, server_idle_timeout},
        {"drain_timeout", SEC_SERVER, false, server_drain_timeout},
        {"default_vhost", SEC_SERVER, false, server_default_vhost},
        {"user", SEC_SERVER, false, server_user},
        {"exec_user", SEC_SERVER, false, server_exec_user},
        {"chroot", SEC_SERVER, false, server_chroot},
        {"max_pam_helpers", SEC_SERVER, false, server_max_pam_helpers},
        {"max_pam_helpers_per_source", SEC_SERVER, false, server_max_pam_helpers_per_source},
        {"max_tokens_per_hour", SEC_SERVER, false, server_max_tokens_per_hour},
        {"authorized_keys", SEC_SERVER, false, server_authorized_keys},
        {"user_authorized_keys", SEC_SERVER, false, server_user_authorized_keys},
        {"pam_service", SEC_SERVER, false, server_pam_service},
        {"auth_methods", SEC_SERVER, false, server_auth_methods},
        {"max_auth_tries", SEC_SERVER, false, server_max_auth_tries},
        {"auth_timeout", SEC_SERVER, false, server_auth_timeout},
        {"allow_plaintext_password", SEC_SERVER, false, server_allow_plaintext_password},
        {"allow_plaintext_pubkey", SEC_SERVER, false, server_allow_plaintext_pubkey},
        {"control_socket", SEC_SERVER, false, server_control_socket},
        {"key_file", SEC_SERVER, false, server_key_file},
        {"dark", SEC_SERVER, false, server_dark},
        {"authorized_clients", SEC_SERVER, false, server_authorized_clients},
        {"cookie", SEC_SERVER, false, server_cookie},
        {"handshake_cpu_high", SEC_SERVER, false, server_handshake_cpu_high},
        {"handshake_cpu_low", SEC_SERVER, false, server_handshake_cpu_low},
        {"pow_difficulty_min", SEC_SERVER, false, server_pow_min},
        {"pow_difficulty_max", SEC_SERVER, false, server_pow_max},
        {"handshakes_per_source", SEC_SERVER, false, server_handshake_rate},
        {"tls_certificate", SEC_SERVER, false, server_tls_certificate},
        {"tls_key", SEC_SERVER, false, server_tls_key},
        {"tls_clients", SEC_SERVER, false, server_tls_clients},
        {"tls_client_ca", SEC_SERVER, false, server_tls_client_ca},
        {"token_format", SEC_SERVER, false, server_token_format},
        {"token_ttl", SEC_SERVER, false, server_token_ttl},
        {"token_max_ttl", SEC_SERVER, false, server_token_max_ttl},
        {"token_trusted_keys", SEC_SERVER, false, server_token_trusted_keys},
        {"revocation_file", SEC_SERVER, false, server_revocation_file},
        {"backend", SEC_SERVICE, false, service_backend},
        {"proxy_protocol", SEC_SERVICE, false, service_proxy_protocol},
        {"idle_timeout", SEC_SERVICE, false, service_idle_timeout},
        {"connect_timeout", SEC_SERVICE, false, service_connect_timeout},
        {"chargen_rate", SEC_SERVICE, false, service_chargen_rate},
        {"auth", SEC_SERVICE, false, service_auth},
        {"allow", SEC_SERVICE, true, service_allow},
        {"deny", SEC_SERVICE, true, service_deny},
        {"identity", SEC_SERVICE, false, service_identity},
        {"encryption", SEC_SERVICE, false, service_encryption},
        {"register_users", SEC_SERVICE, true, service_register_users},
        {"services", SEC_VHOST, true, vhost_services},
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
		error_at(p, svc->line, "service %s: no backend", svc->name);
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
	if (svc->has_chargen_rate &&
	    !(svc->backend == BACKEND_BUILTIN && svc->builtin == BUILTIN_CHARGEN))
		error_at(p, svc->line, "service %s: chargen_rate is for builtin:chargen only",
		         svc->name);
}

static void
begin_service(struct parser *p, const char *name)
{
	struct service *svc, *other;

	if (!name_valid(name) || name_reserved(name)) {
		error_at(p, p->line, "invalid or reserved service name \"%s\"", name);
		p->sec = SEC_INVALID;
		return;
	}
	for (other = p->cfg->services; other != NULL; other = other->next) {
		if (strcasecmp(other->name, name) == 0) {
			error_at(p, p->line, "service %s already defined at line %u", name,
			         other->line);
			p->sec = SEC_INVALID;
			return;
		}
	}
	if ((svc = calloc(1, sizeof(*svc))) == NULL) {
		error_at(p, p->line, "out of memory");
		p->sec = SEC_INVALID;
		return;
	}
	str_copy(svc->name, name, sizeof(svc->name));
	str_lower(svc->name);
	svc->line = p->line;
	svc->chargen_rate = DEFAULT_CHARGEN_RATE;
	*p->svc_tail = svc;
	p->svc_tail = &svc->next;
	p->svc = svc;
	p->sec = SEC_SERVICE;
}

static void
begin_vhost(struct parser *p, const char *name)
{
	struct vhost *vh, *other;

	if (!vhost_name_valid(name)) {
		error_at(p, p->line, "invalid vhost name \"%s\"", name);
		p->sec = SEC_INVALID;
		return;
	}
	for (other = p->cfg->vhosts; other != NULL; other = other->next) {
		if (strcasecmp(other->name, name) == 0) {
			error_at(p, p->line, "vhost %s already defined at line %u", name,
			         other->line);
			p->sec = SEC_INVALID;
			return;
		}
	}
	if ((vh = calloc(1, sizeof(*vh))) == NULL) {
		error_at(p, p->line, "out of memory");
		p->sec = SEC_INVALID;
		return;
	}
	str_copy(vh->name, name, sizeof(vh->name));
	str_lower(vh->name);
	vh->line = p->line;
	*p->vh_tail = vh;
	p->vh_tail = &vh->next;
	p->vh = vh;
	p->sec = SEC_VHOST;
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
		if (keys[i].set(p, value, &why) != 0) {
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

static void
resolve(struct parser *p)
{
	struct config *cfg = p->cfg;
	struct service *svc;
	struct vhost *vh;
	unsigned line;
	size_t i;

	/* A shorter token_max_ttl alone shortens the default lifetime too. */
	if (cfg->token_ttl_s > cfg->token_max_ttl_s && !p->token_ttl_set)
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
	cfg->handshake_cpu_high = DEFAULT_CPU_HIGH;
	cfg->handshake_cpu_low = DEFAULT_CPU_LOW;
	cfg->pow_min = DEFAULT_POW_MIN;
	cfg->pow_max = DEFAULT_POW_MAX;
	cfg->handshake_rate = DEFAULT_HANDSHAKE_RATE;
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
