/*
 * five gateway (five-gateway(8)): services behind fived for computers
 * that run nothing of five.  Its DNS responder answers the names of a
 * mapping file (shim.conf's format, five(1)) with addresses of a pool;
 * the host routes those addresses to it, and its firewall redirects
 * their TCP connections (nftables or iptables REDIRECT) to its
 * listener, which reads the address a connection was meant for
 * (SO_ORIGINAL_DST), finds the name the address was leased to and the
 * rule for that name and port, and carries the connection in a session
 * of its own to fived: a child process per connection, with the
 * gateway's identity.
 */
#ifndef FIVE_GATEWAY_GATEWAY_H
#define FIVE_GATEWAY_GATEWAY_H

#include <stdint.h>
#include <sys/socket.h>

#include "gateway/dns.h"
#include "gateway/pool.h"
#include "shim/conf.h"

/* Connections carried at once (child processes), by default and at most. */
#define GW_CONNECTIONS_DEFAULT 256
#define GW_CONNECTIONS_MAX     4096
/* Queries forwarded to the upstream at once, and how long its answer is waited for. */
#define GW_FORWARDS_MAX        64
#define GW_UPSTREAM_TIMEOUT_MS 3000
/* The longest answer from the upstream passed on (EDNS answers are longer than 512). */
#define GW_UPSTREAM_ANSWER_MAX 4096
/* A connection's client is given up after this long without an answer to keepalives. */
#define GW_KEEPALIVE_IDLE_S  60
#define GW_KEEPALIVE_INTVL_S 10
#define GW_KEEPALIVE_COUNT   6
/* The listener's backlog, and how often children are reaped at least. */
#define GW_BACKLOG 128
#define GW_TICK_MS 1000

/* Lines about refused connections (anyone on the network can cause them) a second, at most. */
#define GW_REFUSALS_LOGGED_PER_S 10

#define GW_DNS_DEFAULT    "0.0.0.0:53"
#define GW_LISTEN_DEFAULT "0.0.0.0:5502"
#define GW_POOL_DEFAULT   "100.95.0.0/16"

struct gw_child {
	pid_t pid;   /* 0: a free entry */
	int forward; /* a forwarded query, not a connection */
};

/* The gateway: made by gateway_main, which owns it. */
struct gateway {
	struct shim_conf conf;
	struct gw_pool pool;
	struct gw_dns dns;
	int dns_fd;
	int tcp_fd;
	struct sockaddr_storage upstream;
	socklen_t upstream_len; /* 0: no upstream */
	unsigned connections_max;
	size_t connections, forwards;
	uint64_t log_second;       /* the second refusals are being counted in */
	unsigned logged, unlogged; /* refusals logged in it, and not logged since the last note */
	struct gw_child child[GW_CONNECTIONS_MAX + GW_FORWARDS_MAX];
};

/* five gateway [options] FILE: runs until killed; returns an exit code on a setup failure. */
int gateway_main(int argc, char **argv);

#endif
