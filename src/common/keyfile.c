#include "common/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/b64.h"
#include "common/io.h"
#include "common/util.h"

/* getpwuid_r's room for the entry's strings: glibc asks for 1024 at most. */
#define PASSWD_BUF_SIZE 4096

#define KEYFILE_TEXT_MAX 256

void
keyfile_b64(const uint8_t key[32], char out[KEYFILE_B64_LEN])
{
	sodium_bin2base64(out, KEYFILE_B64_LEN, key, 32, sodium_base64_VARIANT_ORIGINAL);
}

int
keyfile_b64_decode(const char *text, uint8_t key[32])
{
	size_t len;

	if (strlen(text) != KEYFILE_B64_LEN - 1 ||
	    b64_decode(text, KEYFILE_B64_LEN - 1, NULL, sodium_base64_VARIANT_ORIGINAL, key, 32,
	               &len) != 0)
		return -1;
	return len == 32 ? 0 : -1;
}

/* The directory part of path ("/" for "/x", "." for "x"), into dir[0..size).  0 or -1. */
static int
parent_of(const char *path, char *dir, size_t size)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);

	if (n >= size)
		return -1;
	memcpy(dir, slash == NULL ? "." : path, n);
	dir[n] = '\0';
	return 0;
}

/* Makes the directories above path that are missing, mode 0700.  0, or -1 with err. */
static int
make_parents(const char *path, char *err, size_t err_size)
{
	char dir[PATH_MAX];
	char *p;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
		snprintf(err, err_size, "%s: %s", path, strerror(ENAMETOOLONG));
		return -1;
	}
	for (p = strchr(dir + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			snprintf(err, err_size, "%s: cannot create directory %s: %s", path, dir,
			         strerror(errno));
			return -1;
		}
		*p = '/';
	}
	return 0;
}

/* Says why path cannot be made, after errno from making it or from its directory. */
static void
cannot_create(const char *path, char *err, size_t err_size)
{
	char dir[PATH_MAX];
	int e = errno;

	if (e == ENOENT && parent_of(path, dir, sizeof(dir)) == 0)
		snprintf(err, err_size, "%s: cannot create: directory %s does not exist", path,
		         dir);
	else
		snprintf(err, err_size, "%s: cannot create: %s", path, strerror(e));
}

/*
 * Writes a new key beside path, then links it into place: whoever reads
 * path sees a whole key, and of two processes creating it at once, one
 * wins and the other reads the winner's (returns 1).  Returns 0 or -1.
 */
static int
create(const char *path, const char *label, int flags, uint8_t secret[32], char *err,
       size_t err_size)
{
	char text[KEYFILE_TEXT_MAX], b64[KEYFILE_B64_LEN], tmp[PATH_MAX + 32];
	int fd = -1, n, r = -1;

	if ((flags & KEYFILE_MKDIR) != 0 && make_parents(path, err, err_size) != 0)
		return -1;
	randombytes_buf(secret, 32);
	keyfile_b64(secret, b64);
	n = snprintf(text, sizeof(text), "%s %s\n", label, b64);
	/* Not the process id alone: two threads of one process may create it at once. */
	if (snprintf(tmp, sizeof(tmp), "%s.new.%ld.%08x", path, (long)getpid(),
	             (unsigned)randombytes_random()) >= (int)sizeof(tmp))
		errno = ENAMETOOLONG;
	else if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) >=
	                 0 &&
	         io_write_all(fd, text, (size_t)n) == 0 && fsync(fd) == 0)
		r = link(tmp, path) == 0 ? 0 : errno == EEXIST ? 1 : -1;
	if (r < 0)
		cannot_create(path, err, err_size);
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	sodium_memzero(text, sizeof(text));
	sodium_memzero(b64, sizeof(b64));
	return r;
}

/* "readable and writable": what the three bits rwx allow, bits != 0. */
static const char *
rights(unsigned bits)
{
	static const char *const names[8] = {
	        "",
	        "executable",
	        "writable",
	        "writable and executable",
	        "readable",
	        "readable and executable",
	        "readable and writable",
	        "readable, writable and executable",
	};

	return names[bits & 7];
}

int
keyfile_permissions(const char *path, const struct stat *st, mode_t forbidden, char *err,
                    size_t err_size)
{
	char owner[128] = "", mode[128] = "", strings[PASSWD_BUF_SIZE];
	unsigned group = (unsigned)(st->st_mode & forbidden) >> 3 & 7;
	unsigned others = (unsigned)(st->st_mode & forbidden) & 7;
	struct passwd entry, *pw = NULL;
	uid_t me = geteuid();

	if (st->st_uid != me && st->st_uid != 0) {
		/* getpwuid_r: libfive's callers may load keys from several threads at once. */
		if (getpwuid_r(me, &entry, strings, sizeof(strings), &pw) != 0)
			pw = NULL;
		snprintf(owner, sizeof(owner),
		         "owned by uid %u, not by uid %u%s%s%s that reads it: chown it",
		         (unsigned)st->st_uid, (unsigned)me, pw != NULL ? " (" : "",
		         pw != NULL ? pw->pw_name : "", pw != NULL ? ")" : "");
	}
	if (group != 0 && group == others)
		snprintf(mode, sizeof(mode), "%s by group and others", rights(group));
	else if (group != 0 && others != 0)
		snprintf(mode, sizeof(mode), "%s by group, %s by others", rights(group),
		         rights(others));
	else if (group != 0 || others != 0)
		snprintf(mode, sizeof(mode), "%s by %s", rights(group | others),
		         group != 0 ? "group" : "others");
	if (owner[0] == '\0' && mode[0] == '\0')
		return 0;
	snprintf(err, err_size, "%s: %s%s", path, owner,
	         owner[0] != '\0' && mode[0] != '\0' ? "; " : "");
	if (mode[0] != '\0')
		snprintf(err + strlen(err), err_size - strlen(err), "%s (mode %03o): chmod 600 it",
		         mode, (unsigned)(st->st_mode & 0777));
	return -1;
}

/* Reads the secret from fd, opened from path.  KEYFILE_READ or -1 with err. */
static int
read_secret(int fd, const char *path, const char *label, uint8_t secret[KEYFILE_SECRET_LEN],
            char *err, size_t err_size)
{
	char text[KEYFILE_TEXT_MAX];
	size_t lablen = strlen(label);
	struct stat st;
	ssize_t n;
	int r = -1;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, err_size, "%s: not a regular file", path);
	} else if (keyfile_permissions(path, &st, 077, err, err_size) != 0) {
		/* err says why */
	} else if ((n = read(fd, text, sizeof(text) - 1)) <= 0) {
		snprintf(err, err_size, "%s: %s", path, n == 0 ? "empty" : strerror(errno));
	} else {
		text[n] = '\0';
		text[strcspn(text, "\n")] = '\0';
		if (strncmp(text, label, lablen) != 0 || text[lablen] != ' ' ||
		    keyfile_b64_decode(text + lablen + 1, secret) != 0)
			snprintf(err, err_size, "%s: not a %s file", path, label);
		else
			r = KEYFILE_READ;
	}
	sodium_memzero(text, sizeof(text));
	return r;
}

int
keyfile_load(const char *path, const char *label, int flags, uint8_t secret[KEYFILE_SECRET_LEN],
             char *err, size_t err_size)
{
	/* Not blocking: a FIFO at the path opens at once, to be refused as no regular file. */
	const int how = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
	int fd, r;

	if ((fd = open(path, how)) < 0 && errno == ENOENT && (flags & KEYFILE_CREATE) != 0) {
		if ((r = create(path, label, flags, secret, err, err_size)) < 0)
			return -1;
		if (r == 0)
			return KEYFILE_CREATED;
		fd = open(path, how);
	}
	if (fd < 0) {
		snprintf(err, err_size, "%s: %s", path, strerror(errno));
		return -1;
	}
	r = read_secret(fd, path, label, secret, err, err_size);
	close(fd);
	return r;
}

int
keyfile_creatable(const char *path, int flags, char *err, size_t err_size)
{
	char dir[PATH_MAX], above[PATH_MAX];
	struct stat st;

	if (parent_of(path, dir, sizeof(dir)) != 0) {
		snprintf(err, err_size, "%s: %s", path, strerror(ENAMETOOLONG));
		return -1;
	}
	while (stat(dir, &st) != 0) {
		if (errno != ENOENT || (flags & KEYFILE_MKDIR) == 0) {
			cannot_create(path, err, err_size);
			return -1;
		}
		str_copy(above, dir, sizeof(above));
		(void)parent_of(above, dir, sizeof(dir)); /* shorter than what fitted */
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, err_size, "%s: cannot create: %s is not a directory", path, dir);
		return -1;
	}
	if (access(dir, W_OK | X_OK) != 0) {
		snprintf(err, err_size, "%s: cannot create in %s: %s", path, dir, strerror(errno));
		return -1;
	}
	return 0;
}

int
keyfile_check(const char *path, const char *label, int flags, char *err, size_t err_size)
{
	uint8_t secret[KEYFILE_SECRET_LEN];
	struct stat st;
	int r;

	if (lstat(path, &st) != 0 && errno == ENOENT && (flags & KEYFILE_CREATE) != 0)
		return keyfile_creatable(path, flags, err, err_size) == 0 ? KEYFILE_CREATED : -1;
	r = keyfile_load(path, label, 0, secret, err, err_size);
	sodium_memzero(secret, sizeof(secret));
	return r;
}

void
keyfile_fingerprint(const uint8_t key[32], char out[KEYFILE_FP_MAX])
{
	uint8_t h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, key, 32);
	memcpy(out, "SHA256:", 7);
	sodium_bin2base64(out + 7, KEYFILE_FP_MAX - 7, h, sizeof(h),
	                  sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
}
