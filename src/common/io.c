#include "common/io.h"

#include <errno.h>
#include <unistd.h>

int
io_read_all(int fd, void *p, size_t len)
{
	char *c = p;
	ssize_t n;

	while (len > 0) {
		if ((n = read(fd, c, len)) < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

int
io_write_all(int fd, const void *p, size_t len)
{
	const char *c = p;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, c, len)) < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}
