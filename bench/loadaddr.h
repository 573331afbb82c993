/*
 * What the load programs (bench/benchtool.c, tests/soak/soakload.c) share:
 * an IPv4 ADDR:PORT of the command line, and a source address of many on
 * loopback, so that per-source limits see many clients.
 */
#ifndef BENCH_LOADADDR_H
#define BENCH_LOADADDR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Sources BASE.1.1 to BASE.250.250. */
#define LOAD_SOURCES_MAX (250 * 250)

/* spec as IPv4 ADDR:PORT into *sin, its address's text into host[0..host_size): 0 or -1. */
static inline int
load_parse_addr(const char *spec, struct sockaddr_in *sin, char *host, size_t host_size)
{
	const char *colon = strrchr(spec, ':');

	if (colon == NULL || (size_t)(colon - spec) >= host_size)
		return -1;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

/*
 * Binds fd to source k of base ("127.1": 127.1.X.Y), its port left to
 * connect(), where many sources share the ephemeral ports.  0, or -1 when
 * base makes no address or bind fails.
 */
static inline int
load_bind_source(int fd, const char *base, unsigned long k)
{
	struct sockaddr_in src = {.sin_family = AF_INET};
	char ip[64];
	int one = 1;

	k %= LOAD_SOURCES_MAX;
	if (snprintf(ip, sizeof(ip), "%s.%lu.%lu", base, 1 + k / 250, 1 + k % 250) >=
	            (int)sizeof(ip) ||
	    inet_pton(AF_INET, ip, &src.sin_addr) != 1)
		return -1;
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	return bind(fd, (struct sockaddr *)&src, sizeof(src));
}

#endif
