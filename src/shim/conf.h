/*
 * The shim's configuration (five(1), SHIM CONFIGURATION): which names,
 * on which ports, libfive-shim.so takes over, and the fived host and
 * service each one reaches.
 *
 *	# comment
 *	NAME[:PORT] = HOST SERVICE [OPTION ...]
 *
 * NAME is a host name (db.corp) or "*." and a suffix (*.five: every name
 * ending in .five); PORT a port number (omitted: every port).  HOST and
 * SERVICE are what five(1) takes; the options are plain, tls, port=N
 * (fived's port), vhost=NAME, key=KEY (the server's key instead of
 * known_hosts), auth=pubkey, identity=FILE (the key for auth=pubkey),
 * user=NAME and timeout=SECONDS.  Parsing is strict: anything else is an
 * error naming the line.
 *
 * Parsing is pure (no I/O, no globals); shim_conf_load reads a file.
 */
#ifndef FIVE_SHIM_CONF_H
#define FIVE_SHIM_CONF_H

#include <stdbool.h>
#include <stddef.h>

#define SHIM_RULES_MAX      256
#define SHIM_NAME_MAX       253
#define SHIM_SERVICE_MAX    64
#define SHIM_KEY_MAX        64
#define SHIM_PATH_MAX       1024
#define SHIM_LINE_MAX       2048
#define SHIM_FILE_MAX       (256 * 1024)
#define SHIM_TIMEOUT_MAX_MS (600 * 1000)

/* Where the shim reads its configuration; SHIM_USER_CONF is under $HOME. */
#define SHIM_CONFIG_ENV "FIVE_SHIM_CONFIG"
#define SHIM_USER_CONF  ".config/five/shim.conf"
#ifndef SHIM_SYSTEM_CONF
#define SHIM_SYSTEM_CONF "/etc/five/shim.conf"
#endif

/* One line of a file. */
struct shim_rule {
	char name[SHIM_NAME_MAX + 1]; /* lowercase; for a suffix, what follows "*." */
	bool suffix;                  /* *.NAME: names ending in .NAME */
	unsigned port;                /* 0: every port */
	char host[SHIM_NAME_MAX + 1];
	char service[SHIM_SERVICE_MAX + 1];
	int transport;      /* FIVE_SEALED, FIVE_PLAIN, FIVE_TLS */
	char fived_port[6]; /* "": five's default ports */
	char vhost[SHIM_NAME_MAX + 1];
	char key[SHIM_KEY_MAX + 1];
	bool auth_pubkey;
	char identity[SHIM_PATH_MAX]; /* "": ssh-agent, then ~/.ssh/id_ed25519 */
	char user[SHIM_SERVICE_MAX + 1];
	int timeout_ms;  /* 0: FIVE_DEFAULT_TIMEOUT_MS */
	unsigned source; /* which file: as given to shim_conf_parse */
	unsigned line;
};

struct shim_conf {
	size_t n;
	struct shim_rule rules[SHIM_RULES_MAX];
};

/* Empties c. */
void shim_conf_init(struct shim_conf *c);

/*
 * Adds the rules of text[0..len) (a file's content) to c, as file number
 * source (0 first; among equally specific rules the lower source wins).
 * Returns 0, or -1 with why[0..size) saying which line is wrong and how
 * ("line 3: unknown option foo"); c is then left with the rules before
 * that line.
 */
int shim_conf_parse(struct shim_conf *c, unsigned source, const char *text, size_t len, char *why,
                    size_t size);

/*
 * Checks c as a whole once every file is in: no rule's HOST may itself be
 * a name c maps, nor an address of the shim's own range (a loop).
 * Returns 0, or -1 with why filled.
 */
int shim_conf_check(const struct shim_conf *c, char *why, size_t size);

/*
 * Reads and parses the file at path into c (see shim_conf_parse).  A
 * missing file is no error unless must_exist; a file that is not a
 * regular file, is larger than SHIM_FILE_MAX, or can be written by
 * anyone but its owner (the user or root) is.  Returns 0, or -1 with
 * why[0..size) naming the file.
 */
int shim_conf_load(struct shim_conf *c, unsigned source, const char *path, bool must_exist,
                   char *why, size_t size);

/*
 * Lowercases name into out[0..SHIM_NAME_MAX], dropping one trailing dot.
 * Returns 0, or -1 when it is not a host name a rule could match.
 */
int shim_conf_normalize(const char *name, char out[SHIM_NAME_MAX + 1]);

/* Whether some rule of c names name (normalized), on any port. */
bool shim_conf_handles(const struct shim_conf *c, const char *name);

/*
 * The rule for name (normalized) and port: the most specific (an exact
 * name before a suffix, a longer suffix before a shorter, a port before
 * every port), the lower source on a tie.  NULL: none.
 */
const struct shim_rule *shim_conf_match(const struct shim_conf *c, const char *name, unsigned port);

#endif
