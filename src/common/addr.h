/*
 * Endpoint addresses as written in configuration and on command lines:
 * "tcp:HOST:PORT", "tcp:[V6ADDR]:PORT", "unix:PATH".  Also helpers that turn
 * socket addresses into text and into the key used for per-source limits.
 */
#ifndef FIVE_ADDR_H
#define FIVE_ADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define ADDR_HOST_MAX  253 /* a DNS name */
#define ADDR_PATH_MAX  107 /* sun_path less its NUL */
#define ADDR_TEXT_MAX  384 /* any address in its written form, with NUL */
#define ADDR_IP_MAX    46  /* INET6_ADDRSTRLEN */
#define SOURCE_KEY_LEN 16

enum addr_kind {
	ADDR_TCP,
	ADDR_UNIX,
};

struct addr_spec {
	enum addr_kind kind;
	char host[ADDR_HOST_MAX + 1]; /* tcp: a name or a literal, without brackets */
	uint16_t port;                /* tcp */
	char path[ADDR_PATH_MAX + 1]; /* unix */
	bool numeric;                 /* tcp: host is a literal; sa holds it */
	struct sockaddr_storage sa;   /* tcp: the literal with the port, when numeric */
	socklen_t salen;
};

/*
 * Parses text into *out.  Returns 0, or -1 with *why set to a static
 * explanation.  A TCP port must be in [0, 65535]; 0 asks for any free port
 * when listening.
 */
int addr_parse(const char *text, struct addr_spec *out, const char **why);

/* Writes the canonical written form ("tcp:[::1]:22", "unix:/run/x"). */
void addr_format(const struct addr_spec *a, char *out, size_t size);

/*
 * The numeric host and port of an IPv4 or IPv6 socket address.  IPv4-mapped
 * IPv6 addresses are shown as IPv4.  Returns 0, or -1 for other families.
 */
int sockaddr_ip(const struct sockaddr *sa, char ip[ADDR_IP_MAX], uint16_t *port);

/*
 * The key under which a source is counted: the IPv4 address, or the /64
 * prefix of an IPv6 address, since one IPv6 host usually holds a whole /64.
 * Other families all share one key.
 */
void sockaddr_source_key(const struct sockaddr *sa, uint8_t key[SOURCE_KEY_LEN]);

#endif
