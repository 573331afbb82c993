/*
 * libfive-shim.so's interposed functions: name resolution for the names
 * shim.conf maps (answered with the shim's own addresses, never asked of
 * DNS), and connect, getpeername, getsockname and setsockopt for the
 * sockets connected to those addresses.  Everything else goes to the
 * next definition (libc's) as it is.
 *
 * connect takes over a socket synchronously: the session is opened (up
 * to the rule's timeout for each step) in the calling thread, even on a
 * non-blocking socket, whose connect then fails with EINPROGRESS with the
 * socket already writable and SO_ERROR 0, as a TCP connect that completes
 * at once; a refusal fails connect itself with its errno (five(1), SHIM).
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "shim/conf.h"
#include "shim/open.h"
#include "shim/table.h"

/* The functions the shim puts in front of libc's (shim.map lists them). */
#define HOOK __attribute__((visibility("default")))

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static struct shim_conf conf;
static struct shim_table table;
static bool broken;   /* a configuration file is wrong: no name is resolved at all */
static bool any_peer; /* a socket was connected: the socket hooks look it up */
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Our getaddrinfo answers, known to freeaddrinfo by their address. */
struct answer {
	struct answer *next;
	struct addrinfo ai;
	union {
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} sa;
	char canon[SHIM_NAME_MAX + 1];
};

static pthread_mutex_t answers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct answer *answers;

/* The next definition of name (libc's), looked up once. */
static void *
next_fn(void **slot, const char *name)
{
	void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);

	if (p == NULL) {
		if ((p = dlsym(RTLD_NEXT, name)) == NULL) {
			shim_say("no %s to call after the shim's", name);
			abort();
		}
		__atomic_store_n(slot, p, __ATOMIC_RELEASE);
	}
	return p;
}

#define NEXT(fn)                                                                                   \
	({                                                                                         \
		static void *slot_;                                                                \
		(__typeof__(&fn))next_fn(&slot_, #fn);                                             \
	})

static void
after_fork(void)
{
	shim_table_after_fork(&table);
	pthread_mutex_init(&answers_lock, NULL);
}

static void
load(void)
{
	const char *env = secure_getenv(SHIM_CONFIG_ENV), *home = secure_getenv("HOME");
	char path[SHIM_PATH_MAX], why[1024] = "";
	int r = 0;

	shim_table_init(&table);
	shim_conf_init(&conf);
	pthread_atfork(NULL, NULL, after_fork);
	if (env != NULL && env[0] != '\0')
		r = shim_conf_load(&conf, 0, env, true, why, sizeof(why));
	else if (home != NULL && home[0] == '/' &&
	         (size_t)snprintf(path, sizeof(path), "%s/%s", home, SHIM_USER_CONF) < sizeof(path))
		r = shim_conf_load(&conf, 0, path, false, why, sizeof(why));
	if (r == 0)
		r = shim_conf_load(&conf, 1, SHIM_SYSTEM_CONF, false, why, sizeof(why));
	if (r == 0)
		r = shim_conf_check(&conf, why, sizeof(why));
	if (r != 0) {
		shim_say("%s; no host name is resolved until it is fixed", why);
		broken = true;
	}
}

static void
ready(void)
{
	pthread_once(&once, load);
}

/* --- names ------------------------------------------------------------------ */

/*
 * Whether the shim answers for node: 1 (name set), 0 (not ours), -1 (the
 * configuration is broken: no name is resolved).
 */
static int
ours(const char *node, char name[SHIM_NAME_MAX + 1])
{
	if (node == NULL || shim_conf_normalize(node, name) != 0)
		return 0;
	ready();
	if (broken)
		return -1;
	return shim_conf_handles(&conf, name) ? 1 : 0;
}

static int
service_port(const char *service, int socktype, int flags, unsigned *port)
{
	struct servent se, *found = NULL;
	char buf[1024];
	uint64_t v;

	*port = 0;
	if (service == NULL)
		return 0;
	if (parse_uint(service, 65535, &v) == 0) {
		*port = (unsigned)v;
		return 0;
	}
	if ((flags & AI_NUMERICSERV) != 0)
		return EAI_NONAME;
	if (getservbyname_r(service, socktype == SOCK_DGRAM ? "udp" : "tcp", &se, buf, sizeof(buf),
	                    &found) != 0 ||
	    found == NULL)
		return EAI_SERVICE;
	*port = ntohs((uint16_t)found->s_port);
	return 0;
}

HOOK int
getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
            struct addrinfo **res)
{
	char name[SHIM_NAME_MAX + 1];
	int family = hints != NULL ? hints->ai_family : AF_UNSPEC;
	int flags = hints != NULL ? hints->ai_flags : 0;
	int socktype = hints != NULL && hints->ai_socktype != 0 ? hints->ai_socktype : SOCK_STREAM;
	int protocol = hints != NULL ? hints->ai_protocol : 0;
	struct answer *a;
	uint8_t addr[4];
	unsigned port;
	int r;

	if ((flags & AI_NUMERICHOST) != 0 || (r = ours(node, name)) == 0)
		return NEXT(getaddrinfo)(node, service, hints, res);
	if (r < 0)
		return EAI_FAIL;
	if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
		return EAI_FAMILY;
	if ((r = service_port(service, socktype, flags, &port)) != 0)
		return r;
	if (shim_table_address(&table, name, addr) != 0) {
		shim_say("%s: more than %d names in one process", node, SHIM_NAMES_MAX);
		return EAI_AGAIN;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return EAI_MEMORY;
	a->ai.ai_flags = flags;
	a->ai.ai_socktype = socktype;
	a->ai.ai_protocol = protocol != 0             ? protocol
	                    : socktype == SOCK_STREAM ? IPPROTO_TCP
	                    : socktype == SOCK_DGRAM  ? IPPROTO_UDP
	                                              : 0;
	if (family == AF_INET6) {
		/* The IPv4-mapped form of the same address: a socket of either family reaches it.
		 */
		a->sa.in6.sin6_family = AF_INET6;
		a->sa.in6.sin6_port = htons((uint16_t)port);
		memcpy(a->sa.in6.sin6_addr.s6_addr, v4mapped, sizeof(v4mapped));
		memcpy(a->sa.in6.sin6_addr.s6_addr + 12, addr, 4);
		a->ai.ai_addrlen = sizeof(a->sa.in6);
	} else {
		a->sa.in.sin_family = AF_INET;
		a->sa.in.sin_port = htons((uint16_t)port);
		memcpy(&a->sa.in.sin_addr, addr, 4);
		a->ai.ai_addrlen = sizeof(a->sa.in);
	}
	a->ai.ai_family = a->sa.in.sin_family;
	a->ai.ai_addr = (struct sockaddr *)&a->sa;
	if ((flags & AI_CANONNAME) != 0) {
		str_copy(a->canon, name, sizeof(a->canon));
		a->ai.ai_canonname = a->canon;
	}
	pthread_mutex_lock(&answers_lock);
	a->next = answers;
	answers = a;
	pthread_mutex_unlock(&answers_lock);
	*res = &a->ai;
	return 0;
}

HOOK void
freeaddrinfo(struct addrinfo *ai)
{
	struct answer **p, *found = NULL;

	pthread_mutex_lock(&answers_lock);
	for (p = &answers; *p != NULL; p = &(*p)->next) {
		if (&(*p)->ai == ai) {
			found = *p;
			*p = found->next;
			break;
		}
	}
	pthread_mutex_unlock(&answers_lock);
	if (found != NULL)
		free(found);
	else
		NEXT(freeaddrinfo)(ai);
}

/* Where a hostent's parts go within the caller's buffer. */
struct host_storage {
	char *aliases[1];
	char *addrs[2];
	uint8_t addr[16];
	char name[SHIM_NAME_MAX + 1];
};

/* Fills h for name at the shim's address, in family af; returns 0, or an errno. */
static int
fill_host(const char *name, int af, struct hostent *h, char *buf, size_t len)
{
	struct host_storage *s;
	uintptr_t align = (uintptr_t)buf % _Alignof(struct host_storage);
	uint8_t addr[4];

	if (align != 0) {
		align = _Alignof(struct host_storage) - align;
		if (len < align)
			return ERANGE;
		buf += align;
		len -= align;
	}
	if (len < sizeof(*s))
		return ERANGE;
	if (shim_table_address(&table, name, addr) != 0)
		return EAGAIN;
	s = (struct host_storage *)(void *)buf;
	memset(s, 0, sizeof(*s));
	str_copy(s->name, name, sizeof(s->name));
	if (af == AF_INET6) {
		memcpy(s->addr, v4mapped, sizeof(v4mapped));
		memcpy(s->addr + 12, addr, 4);
	} else {
		memcpy(s->addr, addr, 4);
	}
	s->addrs[0] = (char *)s->addr;
	h->h_name = s->name;
	h->h_aliases = s->aliases;
	h->h_addrtype = af;
	h->h_length = af == AF_INET6 ? 16 : 4;
	h->h_addr_list = s->addrs;
	return 0;
}

HOOK int
gethostbyname2_r(const char *node, int af, struct hostent *ret, char *buf, size_t len,
                 struct hostent **result, int *h_errnop)
{
	char name[SHIM_NAME_MAX + 1];
	int r = ours(node, name);

	if (r == 0)
		return NEXT(gethostbyname2_r)(node, af, ret, buf, len, result, h_errnop);
	*result = NULL;
	if (r < 0 || (af != AF_INET && af != AF_INET6)) {
		*h_errnop = r < 0 ? NO_RECOVERY : HOST_NOT_FOUND;
		return r < 0 ? EIO : EAFNOSUPPORT;
	}
	if ((r = fill_host(name, af, ret, buf, len)) != 0) {
		*h_errnop = r == ERANGE ? NETDB_INTERNAL : TRY_AGAIN;
		return r;
	}
	*result = ret;
	*h_errnop = 0;
	return 0;
}

HOOK int
gethostbyname_r(const char *node, struct hostent *ret, char *buf, size_t len,
                struct hostent **result, int *h_errnop)
{
	char name[SHIM_NAME_MAX + 1];

	if (ours(node, name) == 0)
		return NEXT(gethostbyname_r)(node, ret, buf, len, result, h_errnop);
	return gethostbyname2_r(node, AF_INET, ret, buf, len, result, h_errnop);
}

HOOK struct hostent *
gethostbyname2(const char *node, int af)
{
	static __thread struct hostent h;
	static __thread char buf[sizeof(struct host_storage) + 16];
	char name[SHIM_NAME_MAX + 1];
	struct hostent *result;
	int herr;

	if (ours(node, name) == 0)
		return NEXT(gethostbyname2)(node, af);
	if (gethostbyname2_r(node, af, &h, buf, sizeof(buf), &result, &herr) != 0)
		result = NULL;
	h_errno = herr;
	return result;
}

HOOK struct hostent *
gethostbyname(const char *node)
{
	char name[SHIM_NAME_MAX + 1];

	if (ours(node, name) == 0)
		return NEXT(gethostbyname)(node);
	return gethostbyname2(node, AF_INET);
}

/* --- sockets ---------------------------------------------------------------- */

/* The shim's IPv4 address in sa (either family) into a[4], and its port; false if none. */
static bool
synthetic(const struct sockaddr *sa, socklen_t len, uint8_t a[4], unsigned *port)
{
	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		memcpy(a, &in->sin_addr, 4);
		*port = ntohs(in->sin_port);
		return shim_table_in_range(a);
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

		if (memcmp(in6->sin6_addr.s6_addr, v4mapped, sizeof(v4mapped)) != 0)
			return false;
		memcpy(a, in6->sin6_addr.s6_addr + 12, 4);
		*port = ntohs(in6->sin6_port);
		return shim_table_in_range(a);
	}
	return false;
}

/* Whether fd is a socket the shim connected; *st set when it is. */
static bool
connected_by_us(int fd, struct stat *st, struct sockaddr_storage *addr, socklen_t *len)
{
	if (!__atomic_load_n(&any_peer, __ATOMIC_ACQUIRE) || fstat(fd, st) != 0 ||
	    !S_ISSOCK(st->st_mode))
		return false;
	return shim_table_peer(&table, st->st_dev, st->st_ino, addr, len);
}

/* Puts the stream sfd in fd's place, with fd's flags.  Returns 0 or -1 (errno set). */
static int
take_place(int fd, int sfd)
{
	int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD), cur, e;

	if (fl < 0 || fdfl < 0 || dup3(sfd, fd, (fdfl & FD_CLOEXEC) != 0 ? O_CLOEXEC : 0) < 0) {
		e = errno;
		close(sfd);
		errno = e;
		return -1;
	}
	close(sfd);
	if ((cur = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, (cur & ~O_NONBLOCK) | (fl & O_NONBLOCK)) < 0)
		return -1;
	return 0;
}

HOOK int
connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	char name[SHIM_NAME_MAX + 1];
	const struct shim_rule *rule;
	struct sockaddr_storage peer;
	socklen_t peer_len, tlen = sizeof(int);
	struct stat st;
	uint8_t a[4];
	unsigned port;
	int type, fl, sfd;

	if (!synthetic(sa, len, a, &port))
		return NEXT(connect)(fd, sa, len);
	ready();
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM ||
	    !shim_table_name(&table, a, name))
		return NEXT(connect)(fd, sa, len);
	if (connected_by_us(fd, &st, &peer, &peer_len)) {
		errno = EISCONN;
		return -1;
	}
	if ((rule = shim_conf_match(&conf, name, port)) == NULL) {
		shim_say("%s:%u: no rule in shim.conf for this port", name, port);
		errno = ECONNREFUSED;
		return -1;
	}
	if ((fl = fcntl(fd, F_GETFL)) < 0)
		return -1;
	if ((sfd = shim_open(rule, name, port)) < 0) {
		errno = -sfd;
		return -1;
	}
	if (take_place(fd, sfd) != 0)
		return -1;
	if (fstat(fd, &st) == 0) {
		shim_table_peer_add(&table, st.st_dev, st.st_ino, sa,
		                    len < sizeof(peer) ? len : (socklen_t)sizeof(peer));
		__atomic_store_n(&any_peer, true, __ATOMIC_RELEASE);
	}
	if ((fl & O_NONBLOCK) != 0) {
		errno = EINPROGRESS;
		return -1;
	}
	return 0;
}

HOOK int
getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct sockaddr_storage peer;
	socklen_t peer_len;
	struct stat st;

	if (sa == NULL || len == NULL || !connected_by_us(fd, &st, &peer, &peer_len))
		return NEXT(getpeername)(fd, sa, len);
	memcpy(sa, &peer, *len < peer_len ? *len : peer_len);
	*len = peer_len;
	return 0;
}

HOOK int
getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct sockaddr_storage peer, local = {0};
	socklen_t peer_len, local_len, room = len != NULL ? *len : 0;
	struct stat st;
	int r = NEXT(getsockname)(fd, sa, len);

	/*
	 * A sealed stream is a loopback connection (IPv4), or the agent's Unix
	 * socket: its own end shows as loopback in the family of the peer the
	 * program connected to.
	 */
	if (r != 0 || sa == NULL || !connected_by_us(fd, &st, &peer, &peer_len) ||
	    sa->sa_family == peer.ss_family)
		return r;
	if (peer.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&local;

		in6->sin6_family = AF_INET6;
		memcpy(in6->sin6_addr.s6_addr, v4mapped, sizeof(v4mapped));
		memcpy(in6->sin6_addr.s6_addr + 12, "\x7f\0\0\x01", 4);
		local_len = sizeof(*in6);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&local;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		local_len = sizeof(*in);
	}
	memcpy(sa, &local, room < local_len ? room : local_len);
	*len = local_len;
	return 0;
}

HOOK int
setsockopt(int fd, int level, int opt, const void *value, socklen_t len)
{
	struct sockaddr_storage peer;
	socklen_t peer_len;
	struct stat st;
	int r = NEXT(setsockopt)(fd, level, opt, value, len), e = errno;

	/* What the stream's socket lacks (a Unix one's TCP, IPv4's IPv6): taken as done. */
	if (r != 0 && (level == IPPROTO_TCP || level == IPPROTO_IP || level == IPPROTO_IPV6) &&
	    connected_by_us(fd, &st, &peer, &peer_len))
		return 0;
	errno = e;
	return r;
}
