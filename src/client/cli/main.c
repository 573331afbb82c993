/*
 * five: reach a service on a host by its name, through fived.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/cli/agent.h"
#include "client/cli/agentuse.h"
#include "client/cli/forward.h"
#include "client/cli/session.h"
#include "client/cli/signals.h"
#include "client/dial/dial.h"
#include "client/dialect/token.h"
#include "client/keys/knownhosts.h"
#include "client/transport/seal.h"
#include "common/keyfile.h"
#include "common/util.h"
#include "five.h"

#define FIVE_VERSION "0.1.0"

/* Exit codes, as five(1) lists them. */
enum {
	EXIT_OK = 0,
	EXIT_LOCAL = 1,
	EXIT_USAGE = 2,
	EXIT_RESOLVE = 3,
	EXIT_CONNECT = 4,
	EXIT_REFUSED = 5,
	EXIT_PROTOCOL = 6,
};

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: five [options] HOST SERVICE          relay standard input and output\n"
	        "       five [options] -L [ADDR:]PORT HOST SERVICE\n"
	        "                                            forward local connections\n"
	        "       five [options] list HOST             list the services HOST shows\n"
	        "       five [options] id HOST               print the key to authorize on HOST\n"
	        "       five agent [--idle SECONDS] [--foreground] | five agent -k\n"
	        "                                            hold sessions for five commands "
	        "(eval its output)\n"
	        "       five [options] token HOST SERVICE [--bind ADDR] [--ttl SECONDS]\n"
	        "                                            authenticate, print a token for "
	        "SERVICE\n"
	        "       five [options] prove HOST --nonce N --consumer NAME\n"
	        "                                            authenticate, print a proof of "
	        "identity\n"
	        "       five verify-proof --key KEY --nonce N --consumer NAME PROOF\n"
	        "                                            check a proof, print its identity\n"
	        "       five run [--] COMMAND [ARG ...]       run COMMAND with libfive-shim.so: "
	        "its\n"
	        "                                            connections to names shim.conf maps "
	        "go\n"
	        "                                            through fived\n"
	        "       five gateway [options] FILE         DNS and redirected connections of "
	        "other\n"
	        "                                            computers through fived "
	        "(five-gateway(8))\n"
	        "\n"
	        "  HOST may be KEY@HOST: the server's key, instead of known_hosts\n"
	        "  --plain     plain TCPMUX, unencrypted (default: the sealed handshake)\n"
	        "  --tls       TLS 1.3, the server's key pinned as HOST:PORT/tls\n"
	        "  --tls-cert FILE  with --tls: a client certificate to present (PEM)\n"
	        "  --tls-key FILE   its key, when not in the certificate's file\n"
	        "  --key KEY   the server's key (base64; with --tls also SHA256:...),\n"
	        "              instead of known_hosts\n"
	        "  -p PORT     fived's port (default 1, then 5501)\n"
	        "  -H VHOST    select a virtual host\n"
	        "  -t SECONDS  connect and reply timeout (default 10)\n"
	        "  -w          send nothing until the service is granted (for TCPMUX\n"
	        "              servers other than fived, which may drop pipelined bytes)\n"
	        "  -a METHODS  authenticate first: pubkey, password, or both\n"
	        "  -i FILE     OpenSSH Ed25519 key for pubkey (default: ssh-agent, then\n"
	        "              ~/.ssh/id_ed25519)\n"
	        "  -l USER     the user to authenticate as (default: the login name)\n"
	        "  --password-in-clear  with --plain: send a password unencrypted\n"
	        "  --token T   use the service with token T instead of authenticating\n"
	        "              (default: $FIVE_TOKEN, unless -a, -i or -l)\n"
	        "  --bind ADDR five token: only a client at ADDR (address or prefix) may use it\n"
	        "  --ttl SECONDS  five token: its lifetime (default: the server's)\n"
	        "  --nonce N, --consumer NAME  five prove, verify-proof: the consumer's\n"
	        "              challenge (N: 16 to 255 bytes, NAME: 1 to 255)\n"
	        "  --key KEY   five verify-proof: the provider's signing key (base64), or a\n"
	        "              file whose first word it is (fived --print-sign-key)\n"
	        "  --usp       ask in the USP dialect (JSON messages) instead of request lines\n"
	        "  --no-multiplex  with -L: a session per connection, not one shared by all\n"
	        "  --no-agent  not through the agent of $FIVE_AGENT_SOCK: a session of its own\n"
	        "  --no-redirect  refuse to follow a redirect to another server; print it\n"
	        "  --detachable  a session that outlives network cuts (a multiplexed one, of\n"
	        "              its own on standard input and output; with -L, the shared one)\n"
	        "  --no-detachable  five agent: sessions that end with their connection\n"
	        "  --idle SECONDS  five agent: close sessions unused this long (default 600)\n"
	        "  --foreground  five agent: run in this process, printing nothing (for a\n"
	        "              service manager; takes a socket systemd hands over)\n"
	        "  -k          five agent: stop the running agent\n"
	        "  -4, -6      IPv4 or IPv6 only\n"
	        "  -V          print the version\n");
}

static int
exit_code(enum five_step step)
{
	static const int codes[] = {
	        [FIVE_OK] = EXIT_OK,
	        [FIVE_ERR_SYSTEM] = EXIT_LOCAL,
	        [FIVE_ERR_USAGE] = EXIT_USAGE,
	        [FIVE_ERR_RESOLVE] = EXIT_RESOLVE,
	        [FIVE_ERR_CONNECT] = EXIT_CONNECT,
	        [FIVE_ERR_REFUSED] = EXIT_REFUSED,
	        [FIVE_ERR_PROTOCOL] = EXIT_PROTOCOL,
	        [FIVE_ERR_TRUST] = EXIT_REFUSED,
	        [FIVE_ERR_REDIRECT] = EXIT_REFUSED,
	};

	return (size_t)step < ARRAY_LEN(codes) ? codes[step] : EXIT_LOCAL;
}

static int
fail(const char *what, const struct five_error *err)
{
	enum five_step step = cli_shown_step(err->step);

	fprintf(stderr, "five: %s: %s: %s\n", what, five_step_name(step), err->message);
	return exit_code(step);
}

static int
cmd_list(const char *host, const struct five_options *o)
{
	struct five_error err;
	char **names;
	size_t n, i;

	if (five_list(host, o, &names, &n, &err) != 0)
		return fail(host, &err);
	for (i = 0; i < n; i++)
		printf("%s\n", names[i]);
	five_free_names(names);
	return EXIT_OK;
}

static int
cmd_id(const char *host, const struct five_options *o)
{
	struct five_error err;
	char note[FIVE_LINE_MAX], b64[KEYFILE_B64_LEN];
	uint8_t server_pk[32], sk[32], pk[32];

	if (five_server_key(host, o, server_pk, note, sizeof(note), &err) != 0)
		return fail(host, &err);
	if (note[0] != '\0')
		fprintf(stderr, "five: %s\n", note);
	if (identity_static_key(server_pk, sk, pk, NULL, 0, &err) != 0) {
		fprintf(stderr, "five: %s\n", err.message);
		return EXIT_LOCAL;
	}
	sodium_memzero(sk, sizeof(sk));
	keyfile_b64(pk, b64);
	printf("%s\n", b64);
	return EXIT_OK;
}

/* "KEY@HOST" names the server's key along with the host. */
static const char *
split_host(const char *arg, struct five_options *o)
{
	const char *at = strchr(arg, '@');
	static char key[KEYFILE_B64_LEN];

	if (at == NULL || (size_t)(at - arg) >= sizeof(key))
		return arg;
	memcpy(key, arg, (size_t)(at - arg));
	key[at - arg] = '\0';
	o->server_key = key;
	return at + 1;
}

static int
parse_timeout(const char *s, int *ms)
{
	uint64_t v;

	if (parse_duration_ms(s, 24 * 3600 * 1000, &v) != 0 || v == 0)
		return -1;
	*ms = (int)v;
	return 0;
}

/* Read when --token is not given, for a service request without authentication options. */
#define TOKEN_ENV "FIVE_TOKEN"

/* The longest --ttl: fived's own limit on a token's lifetime is a year. */
#define TTL_MAX_MS (366ULL * 24 * 3600 * 1000)

/* take_option's answer when parsing goes on; anything else is an exit code. */
#define GO_ON (-1)

/*
 * HOST:PORT and [ADDRESS]:PORT are not host names, and neither is a
 * bracketed address: say how five takes them instead of a resolver's
 * error.  (An IPv6 address has several colons: it is left alone.)
 * Returns GO_ON or EXIT_USAGE.
 */
static int
check_host(const char *host)
{
	const char *close = host[0] == '[' ? strchr(host, ']') : NULL;
	const char *colon = strchr(host, ':');

	if (close != NULL && close[1] == ':' && five_port_valid(close + 2)) {
		colon = close + 1;
	} else if (close != NULL) {
		fprintf(stderr, "five: %s: not a host name; give the address without brackets\n",
		        host);
		return EXIT_USAGE;
	} else if (colon == NULL || colon != strrchr(host, ':') || !five_port_valid(colon + 1)) {
		return GO_ON;
	}
	fprintf(stderr, "five: %s: not a host name; give the port with -p %s%s\n", host, colon + 1,
	        close != NULL ? " and the address without brackets" : "");
	return EXIT_USAGE;
}

enum {
	OPT_PLAIN = 256,
	OPT_KEY,
	OPT_TLS,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TOKEN,
	OPT_BIND,
	OPT_TTL,
	OPT_USP,
	OPT_MULTIPLEX,
	OPT_NO_MULTIPLEX,
	OPT_NO_AGENT,
	OPT_NO_REDIRECT,
	OPT_PASSWORD_IN_CLEAR,
	OPT_IDLE,
	OPT_FOREGROUND,
	OPT_NONCE,
	OPT_CONSUMER,
	OPT_DETACHABLE,
	OPT_NO_DETACHABLE,
};

static const struct option long_options[] = {
        {"plain", no_argument, NULL, OPT_PLAIN},
        {"key", required_argument, NULL, OPT_KEY},
        {"tls", no_argument, NULL, OPT_TLS},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"bind", required_argument, NULL, OPT_BIND},
        {"ttl", required_argument, NULL, OPT_TTL},
        {"usp", no_argument, NULL, OPT_USP},
        {"multiplex", no_argument, NULL, OPT_MULTIPLEX},
        {"no-multiplex", no_argument, NULL, OPT_NO_MULTIPLEX},
        {"no-agent", no_argument, NULL, OPT_NO_AGENT},
        {"no-redirect", no_argument, NULL, OPT_NO_REDIRECT},
        {"password-in-clear", no_argument, NULL, OPT_PASSWORD_IN_CLEAR},
        {"idle", required_argument, NULL, OPT_IDLE},
        {"foreground", no_argument, NULL, OPT_FOREGROUND},
        {"nonce", required_argument, NULL, OPT_NONCE},
        {"consumer", required_argument, NULL, OPT_CONSUMER},
        {"detachable", no_argument, NULL, OPT_DETACHABLE},
        {"no-detachable", no_argument, NULL, OPT_NO_DETACHABLE},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
};

/* Everything the command line says. */
struct cli_args {
	struct cli_request req;
	struct five_auth auth;
	const char *forward;  /* -L */
	const char *bind;     /* five token --bind */
	unsigned long ttl_s;  /* five token --ttl; 0: the server's */
	bool token_only_opts; /* --bind or --ttl given */
	bool no_agent;        /* --no-agent */
	bool no_multiplex;    /* --no-multiplex: -L makes a session per connection */
	bool agent_stop;      /* five agent -k */
	bool foreground;      /* five agent --foreground */
	bool no_detachable;   /* five agent --no-detachable */
	uint64_t idle_ms;     /* five agent --idle; 0: not given */
	const char *nonce;    /* five prove, verify-proof */
	const char *consumer; /* likewise */
};

static int
parse_ttl(const char *s, unsigned long *ttl_s)
{
	uint64_t ms;

	if (parse_duration_ms(s, TTL_MAX_MS, &ms) != 0 || ms == 0 || ms % 1000 != 0)
		return -1;
	*ttl_s = (unsigned long)(ms / 1000);
	return 0;
}

/* One option.  Returns GO_ON, or the exit code when five has nothing more to do. */
static int
take_option(int c, const char *arg, struct cli_args *a)
{
	struct five_options *o = &a->req.opts;

	switch (c) {
	case OPT_PLAIN:
		o->transport = FIVE_PLAIN;
		break;
	case OPT_KEY:
		o->server_key = arg;
		break;
	case OPT_TLS:
		o->transport = FIVE_TLS;
		break;
	case OPT_TLS_CERT:
		o->tls_certificate = arg;
		break;
	case OPT_TLS_KEY:
		o->tls_key = arg;
		break;
	case OPT_TOKEN:
		o->token = arg;
		break;
	case OPT_USP:
		a->req.usp = true;
		break;
	case OPT_MULTIPLEX:
		a->req.multiplex = true;
		break;
	case OPT_NO_MULTIPLEX:
		a->no_multiplex = true;
		break;
	case OPT_NO_AGENT:
		a->no_agent = true;
		break;
	case OPT_NO_REDIRECT:
		o->no_redirect = 1;
		break;
	case OPT_PASSWORD_IN_CLEAR:
		o->password_in_clear = 1;
		break;
	case OPT_DETACHABLE:
		o->detachable = 1;
		break;
	case OPT_NO_DETACHABLE:
		a->no_detachable = true;
		break;
	case OPT_IDLE:
		if (parse_duration_ms(arg, 366ULL * 24 * 3600 * 1000, &a->idle_ms) != 0 ||
		    a->idle_ms == 0) {
			fprintf(stderr, "five: --idle: expected seconds (or 30m, 12h)\n");
			return EXIT_USAGE;
		}
		break;
	case 'k':
		a->agent_stop = true;
		break;
	case OPT_FOREGROUND:
		a->foreground = true;
		break;
	case OPT_NONCE:
		a->nonce = arg;
		break;
	case OPT_CONSUMER:
		a->consumer = arg;
		break;
	case OPT_BIND:
		a->bind = arg;
		a->token_only_opts = true;
		break;
	case OPT_TTL:
		if (parse_ttl(arg, &a->ttl_s) != 0) {
			fprintf(stderr, "five: --ttl: expected seconds (or 30m, 12h)\n");
			return EXIT_USAGE;
		}
		a->token_only_opts = true;
		break;
	case 'p':
		if (!five_port_valid(arg)) {
			fprintf(stderr, "five: -p: expected a port number, 1 to 65535\n");
			return EXIT_USAGE;
		}
		o->port = arg;
		break;
	case 'H':
		o->vhost = arg;
		break;
	case 'L':
		a->forward = arg;
		break;
	case 't':
		if (parse_timeout(arg, &o->timeout_ms) != 0) {
			fprintf(stderr, "five: -t: expected seconds (or 500ms, 2m)\n");
			return EXIT_USAGE;
		}
		break;
	case 'w':
		a->req.wait_for_grant = true;
		break;
	case 'a':
		a->auth.methods = arg;
		o->auth = &a->auth;
		break;
	case 'i':
		a->auth.key_file = arg;
		o->auth = &a->auth;
		break;
	case 'l':
		a->auth.user = arg;
		o->auth = &a->auth;
		break;
	case '4':
		o->family = AF_INET;
		break;
	case '6':
		o->family = AF_INET6;
		break;
	case 'V':
		printf("five %s\n", FIVE_VERSION);
		return EXIT_OK;
	case 'h':
		usage(stdout);
		return EXIT_OK;
	default:
		usage(stderr);
		return EXIT_USAGE;
	}
	return GO_ON;
}

static int
usage_error(const char *message)
{
	fprintf(stderr, "five: %s\n", message);
	return EXIT_USAGE;
}

/*
 * Which options go with the command given, and the defaults it implies.  A token from the
 * environment serves a service request that asks for no authentication:
 * options on the command line say more than a variable set for a shell.
 */
static int
check_options(struct cli_args *a, bool token_cmd, bool service_request)
{
	struct five_options *o = &a->req.opts;
	const char *env;

	if ((o->tls_certificate != NULL || o->tls_key != NULL) &&
	    (o->transport != FIVE_TLS || o->tls_certificate == NULL))
		return usage_error("--tls-cert and --tls-key go with --tls (and the key with a "
		                   "certificate)");
	if (a->token_only_opts && !token_cmd)
		return usage_error("--bind and --ttl go with five token");
	if (o->token != NULL && !service_request)
		return usage_error("--token goes with a service request, not with list, id or "
		                   "token");
	if (a->req.usp && !service_request)
		return usage_error("--usp goes with a service request, not with list, id or token");
	if (o->token != NULL && o->auth != NULL)
		return usage_error("--token replaces authentication: not with -a, -i or -l");
	if ((a->req.multiplex || a->no_multiplex) &&
	    (a->forward == NULL || a->req.usp || a->req.wait_for_grant))
		return usage_error("--multiplex and --no-multiplex go with -L, and not with --usp "
		                   "or -w");
	if (a->req.multiplex && a->no_multiplex)
		return usage_error("--multiplex or --no-multiplex, not both");
	/* Only a multiplexed session can be resumed (docs/PROTOCOL.md section 12). */
	if (o->detachable &&
	    (!service_request || a->req.usp || a->req.wait_for_grant || a->no_multiplex))
		return usage_error("--detachable goes with a service request or -L, and not with "
		                   "--usp, -w or --no-multiplex");
	/* -L shares one session among its connections unless told not to, or it cannot. */
	if (a->forward != NULL && !a->no_multiplex && !a->req.usp && !a->req.wait_for_grant)
		a->req.multiplex = true;
	env = getenv(TOKEN_ENV);
	if (service_request && o->token == NULL && o->auth == NULL && env != NULL && env[0] != '\0')
		o->token = env;
	/* A token is issued to an identity: five token always authenticates. */
	if (token_cmd && o->auth == NULL)
		o->auth = &a->auth;
	if (o->auth != NULL && a->auth.methods == NULL)
		a->auth.methods = a->auth.key_file != NULL ? "pubkey" : "pubkey,password";
	return GO_ON;
}

/* --nonce and --consumer go with prove and verify-proof, which need both; verify-proof --key. */
static int
check_proof_options(const struct cli_args *a, bool prove, bool verify)
{
	if ((a->nonce != NULL || a->consumer != NULL) && !prove && !verify)
		return usage_error("--nonce and --consumer go with five prove and verify-proof");
	if ((prove || verify) && (a->nonce == NULL || a->consumer == NULL))
		return usage_error("five prove and verify-proof need --nonce and --consumer");
	if (prove && a->token_only_opts)
		return usage_error("--bind and --ttl go with five token");
	if (verify && a->req.opts.server_key == NULL)
		return usage_error("five verify-proof needs --key, the provider's signing key");
	return GO_ON;
}

static int
cmd_token(const char *host, const char *service, const struct cli_args *a)
{
	struct five_error err;
	char token[FIVE_TOKEN_SIZE], note[FIVE_LINE_MAX] = "", what[600];
	int r;

	r = five_token_fetch(host, service, a->bind, a->ttl_s, &a->req.opts, token, sizeof(token),
	                     note, sizeof(note), &err);
	if (note[0] != '\0')
		fprintf(stderr, "five: %s\n", note);
	if (r != 0) {
		snprintf(what, sizeof(what), "%s %s", host, service);
		return fail(what, &err);
	}
	printf("%s\n", token);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_LOCAL;
}

/* What five tells the user although nothing failed: a key pinned on first contact. */
static void
tell_user(void *arg, const char *text)
{
	fprintf(stderr, "five: %s\n", text);
}

static int
cmd_prove(const char *host, struct cli_args *a)
{
	struct five_options *o = &a->req.opts;
	struct five_error err;
	char proof[FIVE_PROOF_SIZE];

	o->notice = tell_user;
	if (five_prove(host, a->nonce, strlen(a->nonce), a->consumer, o, proof, sizeof(proof), NULL,
	               &err) != 0)
		return fail(host, &err);
	printf("%s\n", proof);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_LOCAL;
}

/* --key: a file whose first word is the key, or else the key itself (base64 may hold a '/'). */
static int
sign_key_of(const char *arg, char key[FIVE_SIGN_KEY_SIZE])
{
	char line[FIVE_LINE_MAX];
	FILE *f = fopen(arg, "re");

	if (f == NULL)
		return str_copy(key, arg, FIVE_SIGN_KEY_SIZE) < FIVE_SIGN_KEY_SIZE ? 0 : -1;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, " \t\r\n")] = '\0';
	return str_copy(key, line, FIVE_SIGN_KEY_SIZE) < FIVE_SIGN_KEY_SIZE ? 0 : -1;
}

static int
cmd_verify_proof(const char *proof, const struct cli_args *a)
{
	char key[FIVE_SIGN_KEY_SIZE] = "";
	struct five_proof out;
	struct five_error err;

	if (sign_key_of(a->req.opts.server_key, key) != 0) {
		fprintf(stderr, "five: --key %.64s: neither a key nor a file starting with one\n",
		        a->req.opts.server_key);
		return EXIT_USAGE;
	}
	if (five_verify_proof(key, a->nonce, strlen(a->nonce), a->consumer, proof, &out, &err) != 0)
		return fail("the proof", &err);
	printf("%s\n", out.identity);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_LOCAL;
}

/* The request itself: HOST SERVICE, relayed or forwarded. */
static int
cmd_request(struct cli_args *a)
{
	struct five_error err = {.step = FIVE_OK};
	char what[600], taken[CLI_EARLY_MAX];
	size_t taken_len = 0;

	snprintf(what, sizeof(what), "%s %s", a->req.host, a->req.service);
	cli_signals_end_at_once();
	if (a->forward != NULL) {
		cli_forward(a->forward, &a->req, &err);
		return fail(what, &err);
	}
	if (a->req.opts.detachable) {
		if (cli_session_detachable(&a->req, STDIN_FILENO, STDOUT_FILENO, &err) != 0)
			return fail(what, &err);
		return EXIT_OK;
	}
	if (!a->no_agent) {
		bool direct;
		int r = cli_agent_session(&a->req, STDIN_FILENO, STDOUT_FILENO, taken, &taken_len,
		                          &direct, &err);

		if (!direct)
			return r != 0 ? fail(what, &err) : EXIT_OK;
	}
	if (cli_session(&a->req, STDIN_FILENO, STDOUT_FILENO, false, taken, taken_len, &err) != 0)
		return fail(what, &err);
	return EXIT_OK;
}

static int
cmd_agent(const struct cli_args *a)
{
	uint64_t idle_ms = a->idle_ms > 0 ? a->idle_ms : AGENT_IDLE_MS;
	struct five_error err;

	if (a->foreground && a->agent_stop)
		return usage_error("-k and --foreground go apart");
	if (a->foreground ? cli_agent_foreground(idle_ms, !a->no_detachable, &err) != 0
	                  : cli_agent(a->agent_stop, idle_ms, !a->no_detachable, &err) != 0)
		return fail("agent", &err);
	return fflush(stdout) == 0 ? EXIT_OK : EXIT_LOCAL;
}

/* Where make install puts libfive-shim.so and five-gateway (the Makefile says). */
#ifndef FIVE_SHIM_DIR
#define FIVE_SHIM_DIR "/usr/local/lib/five"
#endif
#define SHIM_NAME    "libfive-shim.so"
#define GATEWAY_NAME "five-gateway"

/* The file name beside this five (a build tree), else where it is installed, into path. */
static int
companion_path(const char *what, const char *name, char *path, size_t size)
{
	char self[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL &&
		    (size_t)snprintf(path, size, "%.*s/%s", (int)(slash - self), self, name) <
		            size &&
		    access(path, R_OK) == 0)
			return 0;
	}
	if ((size_t)snprintf(path, size, "%s/%s", FIVE_SHIM_DIR, name) < size &&
	    access(path, R_OK) == 0)
		return 0;
	fprintf(stderr, "five: %s: %s is neither beside five nor in %s\n", what, name,
	        FIVE_SHIM_DIR);
	return -1;
}

/* five gateway ...: five-gateway(8), with the same arguments. */
static int
cmd_gateway(int argc, char **argv)
{
	char path[PATH_MAX];

	if (companion_path("gateway", GATEWAY_NAME, path, sizeof(path)) != 0)
		return EXIT_LOCAL;
	argv[0] = path;
	execv(path, argv);
	fprintf(stderr, "five: gateway: %s: %s\n", path, strerror(errno));
	return EXIT_LOCAL;
}

/* five run [--] COMMAND ...: COMMAND with the shim preloaded, after what LD_PRELOAD had. */
static int
cmd_run(int argc, char **argv)
{
	const char *old = getenv("LD_PRELOAD");
	char shim[PATH_MAX], preload[2 * PATH_MAX];

	if (argc > 0 && strcmp(argv[0], "--") == 0) {
		argc--;
		argv++;
	}
	if (argc == 0)
		return usage_error("run: no command given");
	if (companion_path("run", SHIM_NAME, shim, sizeof(shim)) != 0)
		return EXIT_LOCAL;
	/* The dynamic loader splits LD_PRELOAD at blanks and colons. */
	if (strpbrk(shim, " \t:") != NULL) {
		fprintf(stderr, "five: run: %s: a blank or colon in its path\n", shim);
		return EXIT_LOCAL;
	}
	if ((size_t)snprintf(preload, sizeof(preload), "%s%s%s", old != NULL ? old : "",
	                     old != NULL && old[0] != '\0' ? ":" : "", shim) >= sizeof(preload) ||
	    setenv("LD_PRELOAD", preload, 1) != 0) {
		fprintf(stderr, "five: run: LD_PRELOAD too long\n");
		return EXIT_LOCAL;
	}
	execvp(argv[0], argv);
	fprintf(stderr, "five: run: %s: %s\n", argv[0], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}

int
main(int argc, char **argv)
{
	struct cli_args a = {0};
	struct five_options *o = &a.req.opts;
	bool list, id, token_cmd, prove, verify;
	const char *host;
	int c, r;

	if (argc > 1 && strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 2, argv + 2);
	if (argc > 1 && strcmp(argv[1], "gateway") == 0)
		return cmd_gateway(argc - 1, argv + 1);
	five_options_init(o);
	o->trust_on_first_use = 1;
	while ((c = getopt_long(argc, argv, "p:H:L:t:wa:i:l:k46Vh", long_options, NULL)) != -1)
		if ((r = take_option(c, optarg, &a)) != GO_ON)
			return r;
	argc -= optind;
	argv += optind;
	if (argc == 1 && strcmp(argv[0], "agent") == 0)
		return cmd_agent(&a);
	if (a.agent_stop || a.idle_ms > 0 || a.foreground || a.no_detachable)
		return usage_error(
		        "-k, --idle, --foreground and --no-detachable go with five agent");
	list = argc == 2 && a.forward == NULL && strcmp(argv[0], "list") == 0;
	id = argc == 2 && a.forward == NULL && strcmp(argv[0], "id") == 0;
	token_cmd = argc == 3 && a.forward == NULL && strcmp(argv[0], "token") == 0;
	prove = argc == 2 && a.forward == NULL && strcmp(argv[0], "prove") == 0;
	verify = argc == 2 && a.forward == NULL && strcmp(argv[0], "verify-proof") == 0;
	if (!list && !id && !token_cmd && argc != 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((r = check_proof_options(&a, prove, verify)) != GO_ON)
		return r;
	if (sodium_init() < 0) {
		fprintf(stderr, "five: libsodium cannot start\n");
		return EXIT_LOCAL;
	}
	if (verify)
		return cmd_verify_proof(argv[1], &a);
	if ((r = check_options(&a, token_cmd || prove, !list && !id && !token_cmd && !prove)) !=
	    GO_ON)
		return r;
	host = split_host(list || id || token_cmd || prove ? argv[1] : argv[0], o);
	if ((r = check_host(host)) != GO_ON)
		return r;
	if (list)
		return cmd_list(host, o);
	if (id)
		return cmd_id(host, o);
	if (token_cmd)
		return cmd_token(host, argv[2], &a);
	if (prove)
		return cmd_prove(host, &a);
	a.req.host = host;
	a.req.service = argv[1];
	return cmd_request(&a);
}
