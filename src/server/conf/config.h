/*
 * fived's configuration: an INI file (parsed with inih) with a [server]
 * section, [service:NAME] sections and [vhost:NAME] sections.  fived.conf(5)
 * documents every key; the defaults below are the ones it lists.
 *
 * A loaded configuration is immutable and reference-counted: a reload
 * installs a new one while sessions keep the one they started with.
 */
#ifndef FIVE_CONFIG_H
#define FIVE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "crypto/record.h"
#include "legacy/legacy.h"
#include "proto/auth.h"
#include "proto/line.h"
#include "proto/proof.h"
#include "proto/token.h"
#include "proto/usp.h"

#define CONFIG_LISTEN_MAX        16
#define CONFIG_ERRORS_MAX        4096 /* bytes of error text kept */
#define CONFIG_FILE_MAX          (1024 * 1024)
#define CONFIG_EXEC_ARGS_MAX     64
#define CONFIG_VHOST_ENTRIES_MAX 256

#define DEFAULT_MAX_CONNECTIONS 4096
#define DEFAULT_MAX_PER_SOURCE  64
#define DEFAULT_REQUEST_TIMEOUT (10 * 1000)
#define TCP_FASTOPEN_QUEUE_MAX  65535 /* connections with data in the SYN awaiting accept */
#define WORKERS_MAX             64 /* worker processes; workers = auto takes the CPUs, up to this */
#define WORKERS_AUTO            0  /* workers = auto */
#define DEFAULT_CONNECT_TIMEOUT (5 * 1000)
#define DEFAULT_IDLE_TIMEOUT    (60 * 60 * 1000)
#define DEFAULT_DRAIN_TIMEOUT   (30 * 1000)
#define DEFAULT_CHARGEN_RATE    (64 * 1024)
#define CHARGEN_RATE_MAX        1000000 /* bytes per second: a demonstration, not a load generator */
#define MAX_TIMEOUT_MS          (7ULL * 24 * 3600 * 1000)
#define DEFAULT_MAX_AUTH_TRIES  3
#define DEFAULT_AUTH_TIMEOUT    (60 * 1000)
#define DEFAULT_PAM_SERVICE     "fived"
#define PRINCIPALS_MAX          64 /* allow or deny entries per service */
#define REGISTER_USERS_MAX      16
#define PRINCIPAL_NAME_MAX      64 /* a user, group or key fingerprint */
#define CONFIG_PATH_MAX         255
#define DEFAULT_CPU_HIGH        50 /* percent of a core spent on handshakes: "loaded" */
#define DEFAULT_CPU_LOW         25 /* ... and back to unloaded below this */
#define DEFAULT_POW_MIN         8  /* leading zero bits demanded when loaded */
#define DEFAULT_POW_MAX         22
#define POW_BITS_MAX            32
#define DEFAULT_HANDSHAKE_RATE  20    /* handshakes per second per source, before a cookie */
#define DEFAULT_TOKEN_TTL       3600  /* seconds a token lives when its issuer is not told */
#define DEFAULT_TOKEN_MAX_TTL   86400 /* the longest lifetime a client may ask for */
#define TOKEN_TTL_LIMIT         (366 * 86400)
#define DEFAULT_EXEC_USER       "nobody"
#define DEFAULT_CHROOT          "/run/fived/chroot"
#define DEFAULT_PAM_HELPERS     16 /* PAM conversations at once, in all */
#define DEFAULT_PAM_PER_SOURCE  2  /* ... and from one client source */
#define PAM_HELPERS_LIMIT       1024
#define DEFAULT_TOKENS_PER_HOUR 100 /* tokens issued to one identity in an hour */
/*
 * The memory all sessions' relay buffers may take together.  Sessions
 * could otherwise hold about 640 KiB each when both their peers stall
 * (two 256 KiB queues and a read each way), 2.6 GB at the default
 * max_connections; 256 MiB is 64 KiB a connection on average, or 400
 * sessions at their full per-session bound, while one bulk transfer
 * needs no more than its own bound to run at full speed.
 */
/* MULTIPLEX (docs/PROTOCOL.md section 11). */
#define DEFAULT_MAX_STREAMS       128
#define DEFAULT_MAX_PENDING_OPENS 16
#define DEFAULT_MUX_WINDOW_MAX    (16ULL << 20)
#define DEFAULT_MUX_IDLE_TIMEOUT  (10 * 60 * 1000)
#define MAX_STREAMS_LIMIT         65536
#define MUX_WINDOW_MAX_LIMIT      (1ULL << 30)

/* DETACHABLE and ATTACH (docs/PROTOCOL.md section 12). */
#define DEFAULT_DETACH_TIMEOUT   (15 * 60 * 1000)
#define DEFAULT_DETACH_QUEUE_MAX (4ULL << 20)
#define DEFAULT_MAX_DETACHABLE   1024
/* A detach timeout is sent in seconds, in 32 bits; a week is far below. */
#define DETACH_TIMEOUT_MIN 1000

/* Balancers that may send a PROXY header (docs/CLUSTER.md). */
#define CONFIG_PROXY_FROM_MAX 32
#define DEFAULT_PROXY_TIMEOUT (5 * 1000)

/* The store several nodes share (docs/CLUSTER.md). */
#define DEFAULT_STORE_TIMEOUT        250
#define DEFAULT_REVOCATION_STALE_MAX (60 * 1000)
#define DETACH_QUEUE_MIN             (64ULL << 10)
#define DETACH_QUEUE_LIMIT           (1ULL << 30)

/* Where an ATTACH may come from, against the session's own address. */
enum attach_from {
	ATTACH_FROM_ANY,     /* anywhere: roaming */
	ATTACH_FROM_ADDRESS, /* the same address */
	ATTACH_FROM_NETWORK, /* the same /24 (IPv4) or /64 (IPv6) */
};

/* What a detach timeout does to the streams' backends. */
enum detach_end {
	DETACH_END_CLOSE, /* their input ends (FIN), then they are closed */
	DETACH_END_RESET, /* they are reset, as a stream cut short is */
};

#define DEFAULT_RELAY_MEMORY_MAX (256ULL << 20)
#define RELAY_MEMORY_MIN         (1ULL << 20)
#define RELAY_MEMORY_LIMIT       (1ULL << 40)

/* The port the built-in configuration falls back to when it cannot bind port 1. */
#define FALLBACK_PORT 5501

enum backend_kind {
	BACKEND_NONE,
	BACKEND_TCP,
	BACKEND_UNIX,
	BACKEND_EXEC,
	BACKEND_BUILTIN,
	BACKEND_REGISTER, /* an application registered over the control socket */
	BACKEND_REDIRECT, /* none: the client is sent elsewhere (redirect = HOST PORT SERVICE) */
	BACKEND_WORKER,   /* not configured: another worker, an ATTACH for its session passed on */
};

enum builtin_kind {
	BUILTIN_ECHO,
	BUILTIN_DISCARD,
	BUILTIN_DAYTIME,
	BUILTIN_CHARGEN,
};

enum proxy_mode {
	PROXY_NONE,
	PROXY_V1,
	PROXY_V2,
};

enum principal_kind {
	PRINCIPAL_USER,
	PRINCIPAL_GROUP,
	PRINCIPAL_KEY, /* an OpenSSH SHA256 fingerprint */
};

struct principal {
	enum principal_kind kind;
	char name[PRINCIPAL_NAME_MAX + 1];
};

struct service {
	struct service *next;
	char name[NAME_MAX_LEN + 1]; /* lowercase */
	unsigned line;               /* of its section header */
	enum backend_kind backend;
	struct addr_spec addr;     /* BACKEND_TCP, BACKEND_UNIX */
	unsigned worker;           /* BACKEND_WORKER: its index */
	char **argv;               /* BACKEND_EXEC: NULL-terminated, argv[0] absolute */
	struct params_spec params; /* BACKEND_EXEC: the parameters a USP stream may pass */
	struct redirect redirect;  /* BACKEND_REDIRECT */
	enum builtin_kind builtin; /* BACKEND_BUILTIN */
	enum proxy_mode proxy;
	uint64_t idle_timeout_ms; /* 0: none */
	uint64_t connect_timeout_ms;
	uint64_t chargen_rate; /* bytes per second */
	bool auth_required;
	bool encryption_required;
	bool has_encryption;
	bool withhold_identity;
	bool fastopen; /* BACKEND_TCP: connect with TCP Fast Open (its first bytes in the SYN) */
	struct principal allow[PRINCIPALS_MAX], deny[PRINCIPALS_MAX];
	size_t nallow, ndeny;
	char register_users[REGISTER_USERS_MAX][PRINCIPAL_NAME_MAX + 1]; /* BACKEND_REGISTER */
	size_t nregister_users;
	bool has_backend_key, has_idle_timeout, has_connect_timeout, has_chargen_rate;
};

struct vhost_entry {
	char alias[NAME_MAX_LEN + 1];  /* the name clients use in this vhost */
	char target[NAME_MAX_LEN + 1]; /* the [service:NAME] it maps to */
	const struct service *service; /* resolved after parsing */
};

struct vhost {
	struct vhost *next;
	char name[VHOST_MAX_LEN + 1]; /* lowercase */
	unsigned line;
	struct vhost_entry *entries;
	size_t nentries;
};

/* Where fived's diagnostics go (the audit log is apart). */
enum config_log {
	CONFIG_LOG_STDERR,
	CONFIG_LOG_SYSLOG,
	CONFIG_LOG_JOURNAL,
};

/* audit_log's value for the systemd journal. */
#define CONFIG_AUDIT_JOURNAL "journal"

struct config {
	unsigned refs;
	enum config_log log; /* read at start only */
	struct addr_spec listen[CONFIG_LISTEN_MAX];
	size_t nlisten;
	struct addr_spec listen_fallback;
	bool has_listen_fallback;
	char *audit_log;     /* a path, "-" standard output, CONFIG_AUDIT_JOURNAL, "" none */
	bool audit_required; /* refuse sessions while the audit log cannot be written */
	uint64_t max_connections;
	uint64_t max_per_source;
	uint64_t relay_memory_max; /* bytes, for every session's relay buffers together */
	bool splice;               /* plain relays move bytes with splice(2), in the kernel */
	bool names_groups; /* a service's allow or deny names a group: callers' groups are needed */
	uint64_t defer_accept_ms; /* TCP listeners: TCP_DEFER_ACCEPT for this long; 0 for none */
	uint64_t tcp_fastopen;    /* TCP listeners: TCP_FASTOPEN's queue; 0 for none */
	uint64_t workers;         /* worker processes, or WORKERS_AUTO; read at start only */
	uint64_t request_timeout_ms;
	uint64_t connect_timeout_ms;
	uint64_t idle_timeout_ms;
	uint64_t drain_timeout_ms;
	char default_vhost[VHOST_MAX_LEN + 1]; /* "" when every service is visible without HOST */
	char user[PRINCIPAL_NAME_MAX + 1]; /* privilege separation; "" chooses fived or nobody */
	char exec_user[PRINCIPAL_NAME_MAX + 1]; /* runs exec services' programs */
	char chroot[CONFIG_PATH_MAX + 1];       /* the worker's root; "none" for none */
	uint64_t max_pam_helpers, max_pam_helpers_per_source;
	uint64_t max_tokens_per_hour;                   /* per identity asking */
	char authorized_keys[CONFIG_PATH_MAX + 1];      /* global file, "" for none */
	char user_authorized_keys[CONFIG_PATH_MAX + 1]; /* template with %h %u, "" for none */
	char pam_service[PRINCIPAL_NAME_MAX + 1];
	bool auth_methods[AUTH_METHOD_COUNT]; /* enabled, by enum auth_method */
	uint64_t max_auth_tries;
	uint64_t auth_timeout_ms;
	bool allow_plaintext_password;
	bool allow_plaintext_pubkey;
	char control_socket[ADDR_PATH_MAX + 1]; /* "" for none */
	char key_file[CONFIG_PATH_MAX + 1];     /* the sealed handshake's static key; "" default */
	bool dark;                              /* answer nothing but valid sealed initiations */
	char authorized_clients[CONFIG_PATH_MAX + 1]; /* "" for none */
	bool cookie_always; /* demand a cookie and work from every client */
	/* Record suites, most preferred first; none given: the default (transport/seal.c). */
	enum record_suite seal_suites[RECORD_SUITE_LAST];
	size_t seal_suites_len;
	uint64_t handshake_cpu_high, handshake_cpu_low; /* percent of a core */
	uint64_t pow_min, pow_max;                      /* leading zero bits */
	uint64_t handshake_rate;                        /* per source per second, before a cookie */
	char tls_certificate[CONFIG_PATH_MAX + 1];      /* "" default */
	char tls_key[CONFIG_PATH_MAX + 1];
	char tls_clients[CONFIG_PATH_MAX + 1];   /* client certificates to identities; "" none */
	char tls_client_ca[CONFIG_PATH_MAX + 1]; /* verifies chains for subject lines; "" none */
	bool token_local;                        /* issue v4.local tokens, not v4.public */
	uint64_t token_ttl_s, token_max_ttl_s;   /* a token's default and longest lifetime */
	char token_trusted_keys[CONFIG_PATH_MAX + 1]; /* other nodes' token keys; "" none */
	char revocation_file[CONFIG_PATH_MAX + 1];    /* revoked tokens; "" beside key_file */
	char provider_name[PROOF_PROVIDER_MAX + 1];   /* a proof's iss; "" the host's name */
	uint64_t proof_ttl_s;                         /* a proof's lifetime */
	char sign_key_file[CONFIG_PATH_MAX + 1];      /* signs proofs; "" beside key_file */
	char admin_socket[ADDR_PATH_MAX + 1];         /* fivectl's socket; "" for none */
	char admin_group[PRINCIPAL_NAME_MAX + 1];     /* may use it beside root; "" none */
	bool multiplex;                               /* MULTIPLEX is offered */
	uint64_t max_streams;                         /* open at once in one session */
	uint64_t max_pending_opens;                   /* OPENs not answered yet, in one session */
	uint64_t mux_window_max;                      /* bytes a window may grow to */
	uint64_t mux_idle_timeout_ms;                 /* a multiplexed session with no stream */
	bool detachable;                              /* DETACHABLE is granted, ATTACH served */
	uint64_t detach_timeout_ms;                   /* a detached session waits this long */
	uint64_t detach_queue_max;                    /* copies kept per session, in bytes */
	uint64_t max_detachable;                      /* detachable sessions at once */
	bool detach_plaintext;                        /* plaintext sessions may detach too */
	enum attach_from attach_from;                 /* who may attach, by address */
	enum detach_end detach_end;                   /* backends at the detach timeout */
	char proxy_from[CONFIG_PROXY_FROM_MAX][TOKEN_ADDR_SIZE]; /* canonical prefixes */
	size_t nproxy_from;
	uint64_t proxy_timeout_ms; /* a balancer's PROXY header must be whole by then */
	char cluster_key_file[CONFIG_PATH_MAX + 1]; /* cookie secrets shared by nodes; "" none */
	struct addr_spec store; /* the shared store (Redis protocol), when has_store */
	bool has_store;
	uint64_t store_timeout_ms;               /* an answer later than this counts as none */
	char store_user[PRINCIPAL_NAME_MAX + 1]; /* AUTH's user; "" the store's default */
	char store_password_file[CONFIG_PATH_MAX + 1]; /* AUTH's password; "" no AUTH */
	uint64_t revocation_stale_max_ms; /* tokens refused once the list is older; 0 never */
	/* Transition on the same port: each protocol's backend, BACKEND_NONE when it is off. */
	struct service legacy[LEGACY_PROTO_COUNT];
	char tls_names[LEGACY_NAMES_MAX]
	              [TLSHELLO_NAME_MAX + 1]; /* lowercase: SNI that is fived's */
	size_t ntls_names;
	struct addr_spec metrics_listen; /* the metrics endpoint, when has_metrics_listen */
	bool has_metrics_listen;
	struct service *services; /* in file order */
	struct vhost *vhosts;
};

struct config_errors {
	char text[CONFIG_ERRORS_MAX]; /* "FILE:LINE: message\n" lines */
	unsigned count;
};

/*
 * Parses a whole configuration held in memory; name is used in messages.
 * Returns a configuration with one reference, or NULL with errs filled.
 */
struct config *config_parse(const char *name, const char *text, size_t len,
                            struct config_errors *errs);

/*
 * Reads a whole file of at most CONFIG_FILE_MAX bytes into *text (malloc'd,
 * the caller frees).  Returns 0, or -1 with errs filled.
 */
int config_read_file(const char *path, char **text, size_t *len, struct config_errors *errs);

/* Logs each error of errs as an error line of its own. */
void config_errors_log(const struct config_errors *errs);

/* Reads and parses a file (at most CONFIG_FILE_MAX bytes). */
struct config *config_load(const char *path, struct config_errors *errs);

/* The built-in configuration, used when fived is started without -c. */
extern const char config_builtin_text[];
struct config *config_builtin(void);

struct config *config_ref(struct config *cfg);

/* Drops a reference; frees at zero.  NULL is a no-op. */
void config_unref(struct config *cfg);

/* The service a name designates in a vhost (NULL: the default view), or NULL. */
const struct service *config_lookup(const struct config *cfg, const struct vhost *vh,
                                    const char *name);

/* Whether any legacy_* backend is set: connections are looked at before a dialect takes them. */
bool config_legacy_on(const struct config *cfg);

/* A vhost by name (case-insensitive), or NULL. */
const struct vhost *config_vhost(const struct config *cfg, const char *name);

/* Calls fn for every name visible in a vhost's view (or the default view), in order. */
void config_each_name(const struct config *cfg, const struct vhost *vh,
                      void (*fn)(void *arg, const char *name, const struct service *svc),
                      void *arg);

/*
 * Whether the audit log is opened by the privileged side and handed over
 * (priv_audit): a file, or a socket to the journal.
 */
bool config_audit_opened(const struct config *cfg);

/* Whether a connection from peer is a balancer's, named in proxy_from. */
bool config_balancer(const struct config *cfg, const struct sockaddr *peer);

/*
 * One worker's share of the limits that count the whole server
 * (max_connections, max_detachable, relay_memory_max), when nworkers
 * share them: each limit divided, rounded up.
 */
void config_share(struct config *cfg, unsigned nworkers);

#endif
