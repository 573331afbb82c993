#include "common/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

static int
parse_port(const char *s, uint16_t *port)
{
	uint64_t v;

	if (parse_uint(s, 65535, &v) != 0)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* Fills a->sa when a->host is an IP literal. */
static void
resolve_literal(struct addr_spec *a)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->sa;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->sa;

	memset(&a->sa, 0, sizeof(a->sa));
	if (inet_pton(AF_INET, a->host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(a->port);
		a->salen = sizeof(*sin);
		a->numeric = true;
	} else if (inet_pton(AF_INET6, a->host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(a->port);
		a->salen = sizeof(*sin6);
		a->numeric = true;
	}
}

static int
parse_tcp(const char *rest, struct addr_spec *out, const char **why)
{
	const char *colon;
	size_t hostlen;

	if (rest[0] == '[') {
		const char *close = strchr(rest, ']');
		if (close == NULL || close[1] != ':') {
			*why = "expected tcp:[IPV6]:PORT";
			return -1;
		}
		hostlen = (size_t)(close - rest - 1);
		rest++;
		colon = close + 1;
		if (memchr(rest, ':', hostlen) == NULL) {
			*why = "brackets are for IPv6 addresses";
			return -1;
		}
	} else {
		colon = strrchr(rest, ':');
		if (colon == NULL) {
			*why = "expected tcp:HOST:PORT";
			return -1;
		}
		hostlen = (size_t)(colon - rest);
		if (memchr(rest, ':', hostlen) != NULL) {
			*why = "an IPv6 address must be written in brackets";
			return -1;
		}
	}
	if (hostlen == 0 || hostlen > ADDR_HOST_MAX) {
		*why = "missing or overlong host";
		return -1;
	}
	memcpy(out->host, rest, hostlen);
	out->host[hostlen] = '\0';
	if (parse_port(colon + 1, &out->port) != 0) {
		*why = "port must be a number from 0 to 65535";
		return -1;
	}
	resolve_literal(out);
	if (!out->numeric && out->host[strcspn(out->host, " \t/[]")] != '\0') {
		*why = "host is neither an IP address nor a name";
		return -1;
	}
	return 0;
}

int
addr_parse(const char *text, struct addr_spec *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	if (strncmp(text, "tcp:", 4) == 0) {
		out->kind = ADDR_TCP;
		return parse_tcp(text + 4, out, why);
	}
	if (strncmp(text, "unix:", 5) == 0) {
		out->kind = ADDR_UNIX;
		if (text[5] != '/') {
			*why = "a unix socket path must be absolute";
			return -1;
		}
		if (str_copy(out->path, text + 5, sizeof(out->path)) >= sizeof(out->path)) {
			*why = "unix socket path too long";
			return -1;
		}
		return 0;
	}
	*why = "expected tcp:HOST:PORT or unix:PATH";
	return -1;
}

void
addr_format(const struct addr_spec *a, char *out, size_t size)
{
	if (a->kind == ADDR_UNIX)
		snprintf(out, size, "unix:%s", a->path);
	else if (strchr(a->host, ':') != NULL)
		snprintf(out, size, "tcp:[%s]:%u", a->host, a->port);
	else
		snprintf(out, size, "tcp:%s:%u", a->host, a->port);
}

int
sockaddr_ip(const struct sockaddr *sa, char ip[ADDR_IP_MAX], uint16_t *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, ip, ADDR_IP_MAX);
		*port = ntohs(sin->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], ip, ADDR_IP_MAX);
		else
			inet_ntop(AF_INET6, &sin6->sin6_addr, ip, ADDR_IP_MAX);
		*port = ntohs(sin6->sin6_port);
		return 0;
	}
	return -1;
}

void
sockaddr_source_key(const struct sockaddr *sa, uint8_t key[SOURCE_KEY_LEN])
{
	memset(key, 0, SOURCE_KEY_LEN);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		key[0] = 4;
		memcpy(key + 1, &sin->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			key[0] = 4;
			memcpy(key + 1, &sin6->sin6_addr.s6_addr[12], 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, &sin6->sin6_addr, 8);
		}
	}
}
