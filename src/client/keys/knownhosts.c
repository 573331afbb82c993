#include "client/keys/knownhosts.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/base/error.h"
#include "common/io.h"
#include "common/keyfile.h"
#include "common/util.h"

#define CONFIG_DIR     "/.config/five"
#define IDENTITY_LABEL "five-identity-v1"
#define STATIC_CONTEXT "five-client-static-v1"

void
knownhosts_name(const char *host, const char *port, char *out, size_t size)
{
	char lower[256];

	str_copy(lower, host, sizeof(lower));
	str_lower(lower);
	if (strchr(lower, ':') != NULL)
		snprintf(out, size, "[%s]:%s", lower, port);
	else
		snprintf(out, size, "%s:%s", lower, port);
}

/* $HOME/.config/five/FILE, or the environment's override. */
static int
config_file(const char *env, const char *file, char *out, size_t size)
{
	const char *set = getenv(env), *home = getenv("HOME");

	if (set != NULL && set[0] != '\0')
		return str_copy(out, set, size) < size ? 0 : -1;
	if (home == NULL || home[0] == '\0')
		return -1;
	return snprintf(out, size, "%s%s/%s", home, CONFIG_DIR, file) < (int)size ? 0 : -1;
}

int
knownhosts_path(char *out, size_t size, struct five_error *err)
{
	if (config_file(KNOWNHOSTS_ENV, "known_hosts", out, size) != 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "no HOME for known_hosts");
	return 0;
}

int
knownhosts_find(const char *path, const char *name, uint8_t key[32], unsigned *line, bool *found,
                struct five_error *err)
{
	char buf[KNOWNHOSTS_LINE_MAX], *space;
	FILE *f = fopen(path, "re");
	unsigned n = 0;

	*found = false;
	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		return five_fail(err, FIVE_ERR_SYSTEM, "%s: %s", path, strerror(errno));
	}
	while (!*found && fgets(buf, sizeof(buf), f) != NULL) {
		n++;
		buf[strcspn(buf, "\r\n")] = '\0';
		if (buf[0] == '#' || (space = strchr(buf, ' ')) == NULL)
			continue;
		*space = '\0';
		if (strcmp(buf, name) == 0 && keyfile_b64_decode(space + 1, key) == 0) {
			*line = n;
			*found = true;
		}
	}
	fclose(f);
	return 0;
}

/*
 * Makes the directory of path and the one above it (~/.config/five and
 * ~/.config), never more: a HOME that is not there is not made.  Returns
 * 0 when the directory is there, or -1 with errno set.
 */
static int
make_config_dir(const char *path)
{
	char dir[4096], *slash;
	struct stat st;

	if (str_copy(dir, path, sizeof(dir)) >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return 0; /* the current directory, or the root */
	*slash = '\0';
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		mkdir(dir, 0700); /* ~/.config */
		*slash = '/';
	}
	mkdir(dir, 0700);
	if (stat(dir, &st) != 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

/* Opens path to append a pin, making its directory if need be.  Returns a descriptor or -1. */
static int
open_to_append(const char *path)
{
	if (make_config_dir(path) != 0)
		return -1;
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

static int
cannot_save(const char *path, const char *name, struct five_error *err)
{
	return five_fail(err, FIVE_ERR_SYSTEM, "cannot save the pin for %s in %s: %s", name, path,
	                 strerror(errno));
}

int
knownhosts_can_add(const char *path, const char *name, struct five_error *err)
{
	int fd = open_to_append(path);

	if (fd < 0)
		return cannot_save(path, name, err);
	close(fd);
	return 0;
}

int
knownhosts_add(const char *path, const char *name, const uint8_t key[32], struct five_error *err)
{
	char line[KNOWNHOSTS_LINE_MAX], b64[KEYFILE_B64_LEN];
	int fd = -1, n, r = -1;

	keyfile_b64(key, b64);
	n = snprintf(line, sizeof(line), "%s %s\n", name, b64);
	if (n < 0 || (size_t)n >= sizeof(line))
		errno = ENAMETOOLONG;
	else if ((fd = open_to_append(path)) >= 0 && io_write_all(fd, line, (size_t)n) == 0)
		r = 0;
	if (r != 0)
		cannot_save(path, name, err);
	if (fd >= 0)
		close(fd);
	return r;
}

/*
 * The process's last servers' keys (identity_session_keys): each is good
 * while the identity file is the same file, unchanged.  Sessions on many
 * threads share them; a thread that finds them locked goes without, so
 * that a fork while another thread holds the lock leaves the child no
 * lock to wait for.
 */
#define IDENTITY_KEPT 4

/* What tells a file changed: the same file, unchanged, has the same mark. */
struct file_mark {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct kept_keys {
	struct file_mark file;
	uint8_t server_pk[32];
	struct identity_keys keys;
};

static struct kept_keys kept[IDENTITY_KEPT];
static size_t kept_next; /* entries [0, kept_next) have been filled, modulo IDENTITY_KEPT */
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;

static struct file_mark
mark_of(const struct stat *st)
{
	return (struct file_mark){.dev = st->st_dev,
	                          .ino = st->st_ino,
	                          .size = st->st_size,
	                          .mtime = st->st_mtim,
	                          .ctime = st->st_ctim};
}

static bool
same_mark(const struct file_mark *a, const struct file_mark *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Copies the keys kept for server_pk and the file into out: true, or false when none are. */
static bool
kept_find(const uint8_t server_pk[32], const struct file_mark *file, struct identity_keys *out)
{
	bool found = false;
	size_t i;

	if (pthread_mutex_trylock(&kept_lock) != 0)
		return false;
	for (i = 0; i < IDENTITY_KEPT && i < kept_next && !found; i++)
		if (same_mark(&kept[i].file, file) &&
		    memcmp(kept[i].server_pk, server_pk, 32) == 0) {
			*out = kept[i].keys;
			found = true;
		}
	pthread_mutex_unlock(&kept_lock);
	return found;
}

static void
kept_add(const uint8_t server_pk[32], const struct file_mark *file,
         const struct identity_keys *keys)
{
	struct kept_keys *k;

	if (pthread_mutex_trylock(&kept_lock) != 0)
		return;
	k = &kept[kept_next++ % IDENTITY_KEPT];
	*k = (struct kept_keys){.file = *file, .keys = *keys};
	memcpy(k->server_pk, server_pk, 32);
	pthread_mutex_unlock(&kept_lock);
}

int
identity_session_keys(const uint8_t server_pk[32], struct identity_keys *out, char *note,
                      size_t note_size, struct five_error *err)
{
	struct file_mark before, after;
	struct stat st;
	char path[4096];
	bool stable;

	stable = config_file(IDENTITY_ENV, "identity", path, sizeof(path)) == 0 &&
	         stat(path, &st) == 0;
	if (stable) {
		before = mark_of(&st);
		if (kept_find(server_pk, &before, out))
			return 0;
	}
	if (identity_static_key(server_pk, out->sk, out->pk, note, note_size, err) != 0)
		return -1;
	if (crypto_scalarmult(out->ss, out->sk, server_pk) != 0) {
		sodium_memzero(out, sizeof(*out));
		return five_fail(err, FIVE_ERR_PROTOCOL, "the server's key is not a usable key");
	}
	/* Kept only when the file read is the file seen before and after. */
	if (stable && stat(path, &st) == 0) {
		after = mark_of(&st);
		if (same_mark(&before, &after))
			kept_add(server_pk, &after, out);
	}
	return 0;
}

int
identity_static_key(const uint8_t server_pk[32], uint8_t sk[32], uint8_t pk[32], char *note,
                    size_t note_size, struct five_error *err)
{
	uint8_t master[KEYFILE_SECRET_LEN];
	crypto_generichash_blake2b_state st;
	char path[4096], why[sizeof(err->message)];
	int found;

	if (config_file(IDENTITY_ENV, "identity", path, sizeof(path)) != 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "no HOME for five's identity");
	if (make_config_dir(path) != 0)
		return five_fail(err, FIVE_ERR_SYSTEM, "cannot keep five's identity in %s: %s",
		                 path, strerror(errno));
	/* keyfile_load, of common/, says why into a buffer of the caller's. */
	if ((found = keyfile_load(path, IDENTITY_LABEL, KEYFILE_CREATE, master, why, sizeof(why))) <
	    0)
		return five_fail(err, FIVE_ERR_SYSTEM, "%s", why);
	if (found == KEYFILE_CREATED && note != NULL)
		snprintf(note, note_size, "five's identity made in %s", path);
	crypto_generichash_blake2b_init(&st, master, sizeof(master), 32);
	crypto_generichash_blake2b_update(&st, (const uint8_t *)STATIC_CONTEXT,
	                                  strlen(STATIC_CONTEXT));
	crypto_generichash_blake2b_update(&st, server_pk, 32);
	crypto_generichash_blake2b_final(&st, sk, 32);
	crypto_scalarmult_base(pk, sk);
	sodium_memzero(master, sizeof(master));
	sodium_memzero(&st, sizeof(st));
	return 0;
}

int
knownhosts_lookup(const char *known_hosts, const char *name, char *path, size_t size,
                  uint8_t key[32], unsigned *line, bool *found, struct five_error *err)
{
	if (known_hosts != NULL)
		str_copy(path, known_hosts, size);
	else if (knownhosts_path(path, size, err) != 0)
		return -1;
	return knownhosts_find(path, name, key, line, found, err);
}
