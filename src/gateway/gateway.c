#include "gateway/gateway.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/base/sock.h"
#include "client/cli/session.h"
#include "common/addr.h"
#include "common/util.h"
#include "shim/open.h"

/* Exit codes, as five(1) has them for a local failure and a usage error. */
#define EXIT_LOCAL 1
#define EXIT_USAGE 2
/* take_option's answer when parsing goes on. */
#define GO_ON (-1)

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	fprintf(stderr, "five gateway: %s\n", text);
}

static void
notice(void *arg, const char *text)
{
	say("%s", text);
}

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: five gateway [--dns ADDR:PORT] [--listen ADDR:PORT] [--pool PREFIX]\n"
	        "                    [--zone NAME ...] [--upstream ADDR[:PORT]] [--ttl SECONDS]\n"
	        "                    [--max-connections N] FILE\n"
	        "  FILE               names and ports to fived hosts and services (shim.conf's "
	        "format)\n"
	        "  --dns ADDR:PORT    answer DNS queries there (default " GW_DNS_DEFAULT ")\n"
	        "  --listen ADDR:PORT take redirected connections there (default " GW_LISTEN_DEFAULT
	        ")\n"
	        "  --pool PREFIX      IPv4 addresses handed out (default " GW_POOL_DEFAULT ")\n"
	        "  --zone NAME        names under NAME that FILE does not map: NXDOMAIN\n"
	        "  --upstream ADDR    other names are asked there (default: refused)\n"
	        "  --ttl SECONDS      answers' TTL (default 60)\n"
	        "  --max-connections N  connections carried at once (default 256)\n");
}

/* "ADDR:PORT", "[V6]:PORT" or, with default_port, "ADDR": a numeric socket address. */
static int
socket_address(const char *text, uint16_t default_port, struct sockaddr_storage *sa, socklen_t *len)
{
	char spec[ADDR_TEXT_MAX];
	struct addr_spec a;
	const char *why;

	if (default_port != 0 && strchr(text, ':') == NULL)
		snprintf(spec, sizeof(spec), "tcp:%s:%u", text, default_port);
	else
		snprintf(spec, sizeof(spec), "tcp:%s", text);
	if (addr_parse(spec, &a, &why) != 0 || !a.numeric || a.port == 0)
		return -1;
	*sa = a.sa;
	*len = a.salen;
	return 0;
}

/* "A.B.C.D/BITS" into the pool. */
static int
pool_setup(struct gateway *g, const char *text, unsigned ttl_s)
{
	char buf[INET_ADDRSTRLEN + 4], *slash;
	uint8_t net[4];
	uint64_t bits;

	if (str_copy(buf, text, sizeof(buf)) >= sizeof(buf) || (slash = strchr(buf, '/')) == NULL)
		return -1;
	*slash = '\0';
	if (inet_pton(AF_INET, buf, net) != 1 || parse_uint(slash + 1, 32, &bits) != 0)
		return -1;
	return gw_pool_init(&g->pool, net, (unsigned)bits, ttl_s);
}

static int
bound_socket(const struct sockaddr_storage *sa, socklen_t len, int type)
{
	int fd = socket(sa->ss_family, type | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (const struct sockaddr *)sa, len) != 0 ||
	    (type == SOCK_STREAM && listen(fd, GW_BACKLOG) != 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

enum {
	OPT_DNS = 256,
	OPT_LISTEN,
	OPT_POOL,
	OPT_ZONE,
	OPT_UPSTREAM,
	OPT_TTL,
	OPT_MAX,
};

static const struct option long_options[] = {
        {"dns", required_argument, NULL, OPT_DNS},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"pool", required_argument, NULL, OPT_POOL},
        {"zone", required_argument, NULL, OPT_ZONE},
        {"upstream", required_argument, NULL, OPT_UPSTREAM},
        {"ttl", required_argument, NULL, OPT_TTL},
        {"max-connections", required_argument, NULL, OPT_MAX},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
};

struct gw_args {
	const char *dns, *listen, *pool, *file;
};

/* One option into g or a; returns GO_ON, or an exit code. */
static int
take_option(int c, const char *arg, struct gateway *g, struct gw_args *a)
{
	uint64_t v;

	switch (c) {
	case OPT_DNS:
		a->dns = arg;
		return GO_ON;
	case OPT_LISTEN:
		a->listen = arg;
		return GO_ON;
	case OPT_POOL:
		a->pool = arg;
		return GO_ON;
	case OPT_ZONE:
		if (g->dns.zones == GW_ZONES_MAX ||
		    shim_conf_normalize(arg, g->dns.zone[g->dns.zones]) != 0) {
			say("--zone %s: not a name, or more than %d zones", arg, GW_ZONES_MAX);
			return EXIT_USAGE;
		}
		g->dns.zones++;
		return GO_ON;
	case OPT_UPSTREAM:
		if (socket_address(arg, 53, &g->upstream, &g->upstream_len) != 0) {
			say("--upstream %s: expected ADDR or ADDR:PORT, numeric", arg);
			return EXIT_USAGE;
		}
		return GO_ON;
	case OPT_TTL:
		if (parse_uint(arg, GW_TTL_MAX, &v) != 0) {
			say("--ttl %s: expected seconds, at most %d", arg, GW_TTL_MAX);
			return EXIT_USAGE;
		}
		g->dns.ttl_s = (unsigned)v;
		return GO_ON;
	case OPT_MAX:
		if (parse_uint(arg, GW_CONNECTIONS_MAX, &v) != 0 || v == 0) {
			say("--max-connections %s: expected 1 to %d", arg, GW_CONNECTIONS_MAX);
			return EXIT_USAGE;
		}
		g->connections_max = (unsigned)v;
		return GO_ON;
	case 'h':
		usage(stdout);
		return 0;
	default:
		usage(stderr);
		return EXIT_USAGE;
	}
}

/* Remembers a child; the table has room, as the callers checked the counts. */
static void
child_add(struct gateway *g, pid_t pid, int forward)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(g->child); i++)
		if (g->child[i].pid == 0) {
			g->child[i].pid = pid;
			g->child[i].forward = forward;
			break;
		}
	if (forward)
		g->forwards++;
	else
		g->connections++;
}

/* Children that ended, counted out. */
static void
reap(struct gateway *g)
{
	pid_t pid;
	size_t i;

	while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
		for (i = 0; i < ARRAY_LEN(g->child); i++)
			if (g->child[i].pid == pid) {
				g->child[i].pid = 0;
				if (g->child[i].forward)
					g->forwards--;
				else
					g->connections--;
				break;
			}
}

/* Ends conn with a reset, so that its client sees a refusal rather than an empty stream. */
static void
reset(int conn)
{
	five_sock_reset_on_close(conn);
	close(conn);
}

/*
 * Resets conn, and says why (client, then the reason), within
 * GW_REFUSALS_LOGGED_PER_S lines a second; how many went unsaid is told
 * with the next line said.
 */
static void refuse(struct gateway *g, int conn, const char *client, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void
refuse(struct gateway *g, int conn, const char *client, const char *fmt, ...)
{
	uint64_t second = monotonic_ms() / 1000;
	char why[512];
	va_list ap;

	reset(conn);
	if (second != g->log_second) {
		g->log_second = second;
		g->logged = 0;
	}
	if (g->logged >= GW_REFUSALS_LOGGED_PER_S) {
		g->unlogged++;
		return;
	}
	g->logged++;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (g->unlogged > 0)
		say("%s: refused: %s (and %u refusals not logged before it)", client, why,
		    g->unlogged);
	else
		say("%s: refused: %s", client, why);
	g->unlogged = 0;
}

/* In a child: the query to the upstream, and its answer, when it answers in time, to the client. */
static void __attribute__((noreturn))
forward(struct gateway *g, const uint8_t *query, size_t len, const struct sockaddr_storage *from,
        socklen_t from_len)
{
	uint64_t deadline = monotonic_ms() + GW_UPSTREAM_TIMEOUT_MS, now;
	uint8_t answer[GW_UPSTREAM_ANSWER_MAX];
	int fd = socket(g->upstream.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	ssize_t n;

	close(g->tcp_fd);
	if (fd < 0 || connect(fd, (struct sockaddr *)&g->upstream, g->upstream_len) != 0 ||
	    send(fd, query, len, 0) != (ssize_t)len)
		_exit(1);
	/* Only an answer to this query is passed on: anyone may send datagrams to fd. */
	while ((now = monotonic_ms()) < deadline && poll(&pfd, 1, (int)(deadline - now)) > 0) {
		n = recv(fd, answer, sizeof(answer), 0);
		if (n > 0 && gw_dns_answers(query, len, answer, (size_t)n)) {
			sendto(g->dns_fd, answer, (size_t)n, 0, (const struct sockaddr *)from,
			       from_len);
			_exit(0);
		}
	}
	_exit(1);
}

static void
on_query(struct gateway *g)
{
	uint8_t query[GW_DNS_QUERY_MAX + 1], answer[GW_DNS_ANSWER_MAX];
	char name[SHIM_NAME_MAX + 1];
	struct sockaddr_storage from;
	socklen_t from_len = sizeof(from);
	size_t answer_len;
	ssize_t n;
	pid_t pid;

	n = recvfrom(g->dns_fd, query, sizeof(query), MSG_TRUNC | MSG_DONTWAIT,
	             (struct sockaddr *)&from, &from_len);
	if (n <= 0 || (size_t)n > GW_DNS_QUERY_MAX)
		return;
	switch (gw_dns_query(&g->dns, query, (size_t)n, monotonic_ms(), answer, sizeof(answer),
	                     &answer_len, name)) {
	case GW_DNS_ANSWER:
		sendto(g->dns_fd, answer, answer_len, 0, (struct sockaddr *)&from, from_len);
		return;
	case GW_DNS_FORWARD:
		/* Beyond the bound the query is dropped: its client asks again. */
		if (g->forwards >= GW_FORWARDS_MAX)
			return;
		if ((pid = fork()) == 0)
			forward(g, query, (size_t)n, &from, from_len);
		if (pid > 0)
			child_add(g, pid, 1);
		return;
	case GW_DNS_DROP:
		return;
	}
}

/* In a child: conn carried in a session to the rule's host and service. */
static void __attribute__((noreturn))
carry(struct gateway *g, int conn, const struct shim_rule *rule, const char *client,
      const char *name, unsigned port)
{
	struct five_error err = {.step = FIVE_OK};
	struct cli_request req;
	struct five_auth auth;

	close(g->dns_fd);
	close(g->tcp_fd);
	shim_request(rule, &req, &auth);
	req.opts.notice = notice;
	if (cli_session_forwarded(&req, conn, &err) != 0) {
		say("%s to %s:%u: %s %s: %s: %s", client, name, port, rule->host, rule->service,
		    five_step_name(cli_shown_step(err.step)), err.message);
		close(conn);
		_exit(1);
	}
	close(conn);
	_exit(0);
}

static void
keepalive(int conn)
{
	int one = 1, idle = GW_KEEPALIVE_IDLE_S, intvl = GW_KEEPALIVE_INTVL_S,
	    count = GW_KEEPALIVE_COUNT;

	setsockopt(conn, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(conn, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(conn, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(conn, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
}

static void
on_connection(struct gateway *g)
{
	struct sockaddr_storage peer;
	struct sockaddr_in dst;
	socklen_t peer_len = sizeof(peer), dst_len = sizeof(dst);
	char client[ADDR_IP_MAX], name[SHIM_NAME_MAX + 1];
	const struct shim_rule *rule;
	uint16_t client_port;
	unsigned port;
	pid_t pid;
	int conn;

	conn = accept4(g->tcp_fd, (struct sockaddr *)&peer, &peer_len, SOCK_CLOEXEC);
	if (conn < 0) {
		/* Out of descriptors: let connections end rather than spin. */
		if (errno == EMFILE || errno == ENFILE)
			poll(NULL, 0, 100);
		return;
	}
	if (sockaddr_ip((struct sockaddr *)&peer, client, &client_port) != 0)
		str_copy(client, "?", sizeof(client));
	if (g->connections >= g->connections_max) {
		refuse(g, conn, client, "%u connections already", g->connections_max);
		return;
	}
	if (getsockopt(conn, SOL_IP, SO_ORIGINAL_DST, &dst, &dst_len) != 0 ||
	    dst.sin_family != AF_INET ||
	    !gw_pool_name(&g->pool, (const uint8_t *)&dst.sin_addr, monotonic_ms(), name)) {
		refuse(g, conn, client, "not to an address the gateway gave out");
		return;
	}
	port = ntohs(dst.sin_port);
	if ((rule = shim_conf_match(&g->conf, name, port)) == NULL) {
		refuse(g, conn, client, "%s:%u is not mapped", name, port);
		return;
	}
	keepalive(conn);
	/* fived sees the gateway: this line is where the computer behind a session is told. */
	say("%s to %s:%u: %s %s", client, name, port, rule->host, rule->service);
	if ((pid = fork()) == 0)
		carry(g, conn, rule, client, name, port);
	if (pid < 0)
		say("fork: %s", strerror(errno));
	else
		child_add(g, pid, 0);
	close(conn);
}

static int
serve(struct gateway *g)
{
	struct pollfd pfd[2] = {{.fd = g->dns_fd, .events = POLLIN},
	                        {.fd = g->tcp_fd, .events = POLLIN}};

	for (;;) {
		reap(g);
		if (poll(pfd, 2, GW_TICK_MS) < 0) {
			if (errno == EINTR)
				continue;
			say("poll: %s", strerror(errno));
			return EXIT_LOCAL;
		}
		if (pfd[0].revents & POLLIN)
			on_query(g);
		if (pfd[1].revents & POLLIN)
			on_connection(g);
	}
}

/* The mapping, the pool and the sockets as a's options say.  Returns GO_ON, or an exit code. */
static int
setup(struct gateway *g, const struct gw_args *a)
{
	struct sockaddr_storage sa;
	socklen_t len;
	char why[512];

	if (shim_conf_load(&g->conf, 0, a->file, true, why, sizeof(why)) != 0 ||
	    shim_conf_check(&g->conf, why, sizeof(why)) != 0) {
		say("%s", why);
		return EXIT_USAGE;
	}
	if (pool_setup(g, a->pool, g->dns.ttl_s) != 0) {
		say("--pool %s: expected an IPv4 prefix, A.B.C.D/8 to /30", a->pool);
		return EXIT_USAGE;
	}
	if (socket_address(a->dns, 0, &sa, &len) != 0) {
		say("--dns %s: expected ADDR:PORT, numeric", a->dns);
		return EXIT_USAGE;
	}
	if ((g->dns_fd = bound_socket(&sa, len, SOCK_DGRAM)) < 0) {
		say("--dns %s: %s", a->dns, strerror(errno));
		return EXIT_LOCAL;
	}
	/* SO_ORIGINAL_DST answers for IPv4 connections only. */
	if (socket_address(a->listen, 0, &sa, &len) != 0 || sa.ss_family != AF_INET) {
		say("--listen %s: expected ADDR:PORT, IPv4, numeric", a->listen);
		return EXIT_USAGE;
	}
	if ((g->tcp_fd = bound_socket(&sa, len, SOCK_STREAM)) < 0) {
		say("--listen %s: %s", a->listen, strerror(errno));
		return EXIT_LOCAL;
	}
	g->dns.conf = &g->conf;
	g->dns.pool = &g->pool;
	g->dns.forward = g->upstream_len != 0;
	return GO_ON;
}

int
gateway_main(int argc, char **argv)
{
	struct gw_args a = {
	        .dns = GW_DNS_DEFAULT, .listen = GW_LISTEN_DEFAULT, .pool = GW_POOL_DEFAULT};
	/* The gateway's one allocation, for as long as it runs (the pool and rules are large). */
	struct gateway *g = calloc(1, sizeof(*g));
	int c, r = EXIT_LOCAL;

	if (g == NULL) {
		say("out of memory");
		return EXIT_LOCAL;
	}
	g->dns_fd = g->tcp_fd = -1;
	g->dns.ttl_s = GW_TTL_DEFAULT;
	g->connections_max = GW_CONNECTIONS_DEFAULT;
	shim_conf_init(&g->conf);
	while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1)
		if ((r = take_option(c, optarg, g, &a)) != GO_ON)
			goto out;
	if (optind != argc - 1) {
		usage(stderr);
		r = EXIT_USAGE;
		goto out;
	}
	a.file = argv[optind];
	if (sodium_init() < 0) {
		say("libsodium cannot start");
		r = EXIT_LOCAL;
		goto out;
	}
	if ((r = setup(g, &a)) != GO_ON)
		goto out;
	/* A client gone mid-write must not end the gateway, nor one of its children. */
	signal(SIGPIPE, SIG_IGN);
	say("ready: dns %s, listening on %s, pool %s, %zu rules", a.dns, a.listen, a.pool,
	    g->conf.n);
	r = serve(g);
out:
	if (g->dns_fd >= 0)
		close(g->dns_fd);
	if (g->tcp_fd >= 0)
		close(g->tcp_fd);
	free(g);
	return r;
}
