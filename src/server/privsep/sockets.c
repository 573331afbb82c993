#include "server/privsep/sockets.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"

/* Where a packet's source address starts in its network header. */
#define IPV4_SOURCE_AT 12
#define IPV6_SOURCE_AT 8  /* its first 64 bits: two words */
#define HASH_MIX_AT    11 /* the first multiply by a secret; the second 4 after */
#define HASH_BITS      16 /* of the mixed address, the top ones */

static int
fail(int fd)
{
	int e = errno;

	if (fd >= 0)
		close(fd);
	return -e;
}

static int
listen_tcp(const struct addr_spec *a, bool sessions, bool shared)
{
	int fd, one = 1;

	if (!a->numeric) {
		errno = EINVAL;
		return -EINVAL;
	}
	fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (shared && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0))
		return fail(fd);
	/* [::] means IPv6 only: IPv4 is listed separately, as it is written. */
	if (a->sa.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
		return fail(fd);
	/* Before listen(2): no connection is accepted without them. */
	if (sessions && sockets_relayed(fd) != 0)
		return fail(fd);
	if (bind(fd, (const struct sockaddr *)&a->sa, a->salen) != 0 ||
	    listen(fd, SOCKETS_BACKLOG) != 0)
		return fail(fd);
	return fd;
}

/*
 * A socket file nobody answers on is left from a previous run and may be
 * removed; anything else at the path (a regular file, a link, a directory)
 * is never touched, whoever asks.
 */
static bool
stale(const struct sockaddr_un *sun, int type)
{
	struct stat st;
	int fd;
	bool gone;

	if (lstat(sun->sun_path, &st) != 0 || !S_ISSOCK(st.st_mode))
		return false;
	if ((fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0)) < 0)
		return false;
	gone = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) != 0 &&
	       errno == ECONNREFUSED;
	close(fd);
	return gone;
}

/*
 * bind(2) makes the socket file with the process's umask: set so, the file
 * is made with SOCKETS_UNIX_MODE at once.  A chmod(2) by path afterwards
 * would follow whatever another user of the directory renamed into its
 * place meanwhile, a symbolic link to any file among them.
 */
static int
bind_with_mode(int fd, const struct sockaddr_un *sun)
{
	mode_t old = umask(0777 & ~SOCKETS_UNIX_MODE);
	int r = bind(fd, (const struct sockaddr *)sun, sizeof(*sun));
	int e = errno;

	umask(old);
	errno = e;
	return r;
}

static int
listen_unix(const struct addr_spec *a, int type)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int e;

	if (fd < 0)
		return fail(fd);
	str_copy(sun.sun_path, a->path, sizeof(sun.sun_path));
	if (bind_with_mode(fd, &sun) != 0) {
		if (errno != EADDRINUSE || !stale(&sun, type))
			return fail(fd);
		unlink(a->path);
		if (bind_with_mode(fd, &sun) != 0)
			return fail(fd);
	}
	if (listen(fd, SOCKETS_BACKLOG) != 0) {
		e = errno;
		unlink(a->path);
		close(fd);
		return -e;
	}
	return fd;
}

int
sockets_listen(const struct addr_spec *a, bool seqpacket, bool sessions)
{
	if (a->kind == ADDR_TCP)
		return listen_tcp(a, sessions, false);
	return listen_unix(a, seqpacket ? SOCK_SEQPACKET : SOCK_STREAM);
}

int
sockets_listen_abstract(const struct sockaddr_un *sun, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0 || bind(fd, (const struct sockaddr *)sun, len) != 0 ||
	    listen(fd, SOCKETS_BACKLOG) != 0)
		return fail(fd);
	return fd;
}

/* h ^= h >> shift, in classic BPF: two instructions after the TAX. */
#define XOR_SHIFT(shift)                                                                           \
	BPF_STMT(BPF_MISC | BPF_TAX, 0), BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, shift),               \
	        BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0)

/*
 * The socket of a group that takes a connection, by its source: the
 * whole IPv4 address, or an IPv6 address's /64 (the keys of the source
 * tables, addr.h), mixed with two secret odd multipliers (MurmurHash3's
 * finalizer, whose every output bit every input bit reaches), the top
 * HASH_BITS bits of the mix scaled to the group's size.  Run by the
 * kernel on each SYN, with the packet's network header at SKF_NET_OFF.
 * Secret, so that no one can choose addresses that all meet one worker.
 */
static int
attach_source_hash(int fd, unsigned n)
{
	uint32_t mix[2];
	struct sock_filter code[] = {
	        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_PROTOCOL)),
	        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6, 2, 0),
	        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_NET_OFF + IPV4_SOURCE_AT)),
	        BPF_JUMP(BPF_JMP | BPF_JA, 4, 0, 0),
	        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_NET_OFF + IPV6_SOURCE_AT)),
	        BPF_STMT(BPF_MISC | BPF_TAX, 0),
	        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_NET_OFF + IPV6_SOURCE_AT + 4)),
	        BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
	        XOR_SHIFT(16),
	        BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0), /* HASH_MIX_AT */
	        XOR_SHIFT(13),
	        BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 0), /* HASH_MIX_AT + 4 */
	        XOR_SHIFT(16),
	        BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, HASH_BITS),
	        BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, n),
	        BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, HASH_BITS),
	        BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_fprog prog = {.len = ARRAY_LEN(code), .filter = code};

	randombytes_buf(mix, sizeof(mix));
	code[HASH_MIX_AT].k = mix[0] | 1;
	code[HASH_MIX_AT + 4].k = mix[1] | 1;
	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog));
}

int
sockets_listen_group(const struct addr_spec *a, unsigned n, int *fds)
{
	struct addr_spec bound = *a;
	socklen_t len = sizeof(bound.sa);
	unsigned i;
	int e;

	if (a->kind != ADDR_TCP)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if ((fds[i] = listen_tcp(&bound, true, true)) < 0) {
			e = fds[i];
			goto fail;
		}
		/* Port 0 chose a port: the others join the first on it. */
		if (i == 0 && getsockname(fds[0], (struct sockaddr *)&bound.sa, &len) != 0) {
			e = -errno;
			i++;
			goto fail;
		}
	}
	if (attach_source_hash(fds[0], n) != 0) {
		e = -errno;
		goto fail;
	}
	return 0;
fail:
	while (i > 0)
		close(fds[--i]);
	return e;
}

int
sockets_reset_on_close(int fd, bool reset)
{
	struct linger l = {.l_onoff = reset ? 1 : 0, .l_linger = 0};

	return setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) == 0 ? 0 : -1;
}

int
sockets_relayed(int fd)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		return -1;
	return sockets_reset_on_close(fd, true);
}

bool
sockets_are_relayed(int fd)
{
	struct linger l;
	int nodelay;
	socklen_t nlen = sizeof(nodelay), llen = sizeof(l);

	return getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &nlen) == 0 && nodelay != 0 &&
	       getsockopt(fd, SOL_SOCKET, SO_LINGER, &l, &llen) == 0 && l.l_onoff != 0 &&
	       l.l_linger == 0;
}

bool
sockets_end_was_reset(const uv_handle_t *h, bool ours_ended)
{
	struct tcp_info info;
	socklen_t info_len = sizeof(info);
	int error = 0;
	socklen_t len = sizeof(error);
	uv_os_fd_t fd;

	/*
	 * An end in order leaves the connection open for our side (CLOSE_WAIT)
	 * until we end it too; a reset closes it, also when a failed write
	 * took the reset's error first.  Once we ended our side, the pending
	 * error tells a reset from an end in order.
	 */
	if (h->type != UV_TCP || uv_fileno(h, &fd) != 0 ||
	    getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &info_len) != 0 ||
	    info.tcpi_state != TCP_CLOSE)
		return false;
	return !ours_ended ||
	       (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error != 0);
}

bool
sockets_all_acked(const uv_handle_t *h)
{
	uv_os_fd_t fd;
	int held = 0;

	return h->type != UV_TCP || uv_fileno(h, &fd) != 0 || ioctl(fd, SIOCOUTQ, &held) != 0 ||
	       held == 0;
}

bool
sockets_shut_now(uv_stream_t *h)
{
	uv_os_fd_t fd;

	return uv_stream_get_write_queue_size(h) == 0 && uv_fileno((uv_handle_t *)h, &fd) == 0 &&
	       (shutdown(fd, SHUT_WR) == 0 || errno == ENOTCONN);
}
