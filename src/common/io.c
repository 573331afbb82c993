#include "common/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads into p, or writes from it (then it is only read), until len bytes have passed. */
static int
transfer_all(int fd, char *p, size_t len, bool reading)
{
	ssize_t n;

	while (len > 0) {
		n = reading ? read(fd, p, len) : write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
io_read_all(int fd, void *p, size_t len)
{
	return transfer_all(fd, p, len, true);
}

int
io_write_all(int fd, const void *p, size_t len)
{
	return transfer_all(fd, (char *)p, len, false);
}

int
io_read_file(const char *path, size_t max, char **text, size_t *len)
{
	struct stat st;
	int fd, r = 0;

	*text = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -errno;
	if (fstat(fd, &st) != 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode))
		r = -EINVAL;
	else if ((uint64_t)st.st_size > max)
		r = -EFBIG;
	else if ((*text = malloc((size_t)st.st_size + 1)) == NULL)
		r = -ENOMEM;
	else if (io_read_all(fd, *text, (size_t)st.st_size) != 0)
		r = -EIO;
	close(fd);
	if (r != 0) {
		free(*text);
		*text = NULL;
		return r;
	}
	(*text)[st.st_size] = '\0';
	*len = (size_t)st.st_size;
	return 0;
}

int
io_replace_file(const char *path, const void *data, size_t len, int mode)
{
	char tmp[4096];
	int fd, r = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.new.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)) < 0)
		return -errno;
	if (io_write_all(fd, data, len) != 0 || fsync(fd) != 0)
		r = errno != 0 ? -errno : -EIO;
	if (close(fd) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) != 0)
		r = -errno;
	if (r != 0)
		unlink(tmp);
	return r;
}

ssize_t
io_send_with_fd(int sock, const void *data, size_t len, int fd, int flags)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {(void *)data, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;
	ssize_t n;

	if (fd >= 0) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	while ((n = sendmsg(sock, &mh, flags)) < 0 && errno == EINTR)
		;
	return n;
}
