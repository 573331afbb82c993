#include "common/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/b64.h"
#include "common/io.h"

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

/* Makes the directories above path that are missing, mode 0700. */
static void
make_parent(const char *path)
{
	char dir[4096];
	char *p;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return;
	for (p = strchr(dir + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
		*p = '\0';
		mkdir(dir, 0700);
		*p = '/';
	}
}

/*
 * Writes a new key beside path, then links it into place: whoever reads
 * path sees a whole key, and of two processes creating it at once, one
 * wins and the other reads the winner's (returns 1).  Returns 0 or -1.
 */
static int
create(const char *path, const char *label, uint8_t secret[32], char *err, size_t err_size)
{
	char text[KEYFILE_TEXT_MAX], b64[KEYFILE_B64_LEN], tmp[4096 + 32];
	int fd = -1, n, r = -1;

	make_parent(path);
	randombytes_buf(secret, 32);
	keyfile_b64(secret, b64);
	n = snprintf(text, sizeof(text), "%s %s\n", label, b64);
	if (snprintf(tmp, sizeof(tmp), "%s.new.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		errno = ENAMETOOLONG;
	else if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) >=
	                 0 &&
	         io_write_all(fd, text, (size_t)n) == 0 && fsync(fd) == 0)
		r = link(tmp, path) == 0 ? 0 : errno == EEXIST ? 1 : -1;
	if (r < 0)
		snprintf(err, err_size, "%s: cannot create: %s", path, strerror(errno));
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	sodium_memzero(text, sizeof(text));
	sodium_memzero(b64, sizeof(b64));
	return r;
}

int
keyfile_load(const char *path, const char *label, int want_create,
             uint8_t secret[KEYFILE_SECRET_LEN], char *err, size_t err_size)
{
	char text[KEYFILE_TEXT_MAX];
	size_t lablen = strlen(label);
	struct stat st;
	ssize_t n;
	int fd, r = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 && errno == ENOENT &&
	    want_create) {
		if ((r = create(path, label, secret, err, err_size)) <= 0)
			return r;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		r = -1;
	}
	if (fd < 0) {
		snprintf(err, err_size, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, err_size, "%s: not a regular file", path);
	} else if ((st.st_mode & 077) != 0 || (st.st_uid != geteuid() && st.st_uid != 0)) {
		snprintf(err, err_size,
		         "%s: others may read it (mode %03o) or it is not ours; "
		         "chmod 600 it, or make a new key",
		         path, (unsigned)(st.st_mode & 0777));
	} else if ((n = read(fd, text, sizeof(text) - 1)) <= 0) {
		snprintf(err, err_size, "%s: cannot read", path);
	} else {
		text[n] = '\0';
		text[strcspn(text, "\n")] = '\0';
		if (strncmp(text, label, lablen) != 0 || text[lablen] != ' ' ||
		    keyfile_b64_decode(text + lablen + 1, secret) != 0)
			snprintf(err, err_size, "%s: not a %s file", path, label);
		else
			r = 0;
	}
	sodium_memzero(text, sizeof(text));
	close(fd);
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
