#include "server/privsep/activation.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/log.h"
#include "common/util.h"

#ifdef FIVE_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

int
activation_count(void)
{
	int n = sd_listen_fds(0);

	if (n < 0) {
		log_error("socket activation: cannot read LISTEN_FDS: error %d", -n);
		return -1;
	}
	return n;
}

/* The address fd listens on, written as a listen entry is ("tcp:IP:PORT", "unix:PATH"). */
static int
describe(int fd, char *out, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct addr_spec a = {.kind = ADDR_TCP};
	char ip[ADDR_IP_MAX];

	if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	if (ss.ss_family == AF_UNIX) {
		const struct sockaddr_un *sun = (const struct sockaddr_un *)&ss;
		/* An abstract or unnamed socket has no path a listen entry could name. */
		if (len <= offsetof(struct sockaddr_un, sun_path) || sun->sun_path[0] == '\0')
			return -1;
		a.kind = ADDR_UNIX;
		str_copy(a.path, sun->sun_path, sizeof(a.path));
	} else if (sockaddr_ip((const struct sockaddr *)&ss, ip, &a.port) == 0) {
		str_copy(a.host, ip, sizeof(a.host));
	} else {
		return -1;
	}
	addr_format(&a, out, size);
	return 0;
}

/* The same address in the canonical form, since a listen entry may write it otherwise. */
static void
entry_text(const struct addr_spec *e, char *out, size_t size)
{
	struct addr_spec a = *e;
	char ip[ADDR_IP_MAX];
	uint16_t port;

	if (a.kind == ADDR_TCP && a.numeric &&
	    sockaddr_ip((const struct sockaddr *)&a.sa, ip, &port) == 0)
		str_copy(a.host, ip, sizeof(a.host));
	addr_format(&a, out, size);
}

/* The listen entry (as the worker names it) whose address is text; -1 when none. */
static int
find_entry(const struct config *cfg, const char *text, char *name, size_t size)
{
	char canon[ADDR_TEXT_MAX];
	size_t i;

	for (i = 0; i < cfg->nlisten; i++) {
		entry_text(&cfg->listen[i], canon, sizeof(canon));
		if (strcmp(canon, text) == 0) {
			addr_format(&cfg->listen[i], name, size);
			return 0;
		}
	}
	return -1;
}

static int
adopt_one(struct priv_state *st, const struct config *cfg, int fd, const char *fdname)
{
	struct privops_listening *l;
	char text[ADDR_TEXT_MAX], name[ADDR_TEXT_MAX];
	size_t i;

	if (describe(fd, text, sizeof(text)) != 0) {
		log_error("socket activation: descriptor %d (%s) is not a listening TCP or Unix "
		          "stream socket",
		          fd, fdname);
		return -1;
	}
	if (find_entry(cfg, text, name, sizeof(name)) != 0) {
		log_error(
		        "socket activation: systemd handed over %s (descriptor %d, %s), which no "
		        "listen entry names: add \"listen = %s\" or remove it from the socket unit",
		        text, fd, fdname, text);
		return -1;
	}
	for (i = 0; i < st->nlistening; i++)
		if (strcmp(st->listening[i].address, name) == 0) {
			log_error("socket activation: systemd handed over %s twice", text);
			return -1;
		}
	if (st->nlistening == PRIVOPS_LISTEN_MAX) {
		log_error("socket activation: more sockets than listen entries");
		return -1;
	}
	/* Programs and helpers started later must not inherit it. */
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	l = &st->listening[st->nlistening++];
	str_copy(l->address, name, sizeof(l->address));
	l->fds[0] = fd;
	l->nfds = 1;
	l->unlink_path[0] = '\0'; /* systemd made the file, and removes it */
	log_info("socket activation: %s from systemd (%s)", name, fdname);
	return 0;
}

int
activation_adopt(struct priv_state *st, const struct config *cfg, int n)
{
	char **names = NULL;
	int i, r = 0;

	if (n == 0)
		return 0;
	/* Unsets LISTEN_*, so that no child takes the sockets for its own. */
	if (sd_listen_fds_with_names(1, &names) != n) {
		log_error("socket activation: the descriptors changed while fived started");
		r = -1;
	}
	for (i = 0; r == 0 && i < n; i++)
		r = adopt_one(st, cfg, SD_LISTEN_FDS_START + i,
		              names != NULL && names[i] != NULL ? names[i] : "unnamed");
	for (i = 0; names != NULL && names[i] != NULL; i++)
		free(names[i]);
	free(names);
	return r;
}

#else

int
activation_count(void)
{
	const char *pid = getenv("LISTEN_PID");

	if (getenv("LISTEN_FDS") == NULL || pid == NULL || strtol(pid, NULL, 10) != getpid())
		return 0;
	log_error("socket activation: systemd handed over sockets (LISTEN_FDS), but this fived "
	          "was built without libsystemd: build with libsystemd-dev, or let fived bind");
	return -1;
}

int
activation_adopt(struct priv_state *st, const struct config *cfg, int n)
{
	return 0;
}

#endif
