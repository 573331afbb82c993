#include "server/daemon/peers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "server/daemon/acceptor.h"
#include "server/daemon/server.h"
#include "server/session/session.h"

/* How log lines name the peer socket: the monitor names it, with a secret of its own in it. */
#define PEER_SOCKET_NAME "@fived-peer-*-%u"

/* A connection from anyone but the monitor is closed unread: only it connects workers. */
static void
take(void *arg, int fd)
{
	struct server *srv = arg;
	struct accepted_conn c = {.fd = fd, .kind = ACCEPTED_PEER};

	if (!priv_from_monitor(srv->site.priv, fd)) {
		log_warn("a connection to this worker's peer socket not made by the monitor: "
		         "closed");
		close(fd);
		return;
	}
	session_accept(&srv->site, &c, NULL);
}

/* Each worker as a backend: what an ATTACH for its sessions is passed on to. */
static struct service *
worker_backends(unsigned nworkers, uint64_t connect_timeout_ms)
{
	struct service *svcs = calloc(nworkers, sizeof(*svcs));
	unsigned i;

	if (svcs == NULL)
		return NULL;
	for (i = 0; i < nworkers; i++) {
		snprintf(svcs[i].name, sizeof(svcs[i].name), "worker-%u", i);
		svcs[i].backend = BACKEND_WORKER;
		svcs[i].worker = i;
		svcs[i].proxy = PROXY_V2; /* the client's addresses, transport and identity */
		svcs[i].connect_timeout_ms = connect_timeout_ms;
	}
	return svcs;
}

int
peers_open(struct server *srv)
{
	struct priv *priv = srv->site.priv;
	struct addr_spec a = {.kind = ADDR_UNIX};

	if (!priv_shared(priv))
		return 0;
	if ((srv->site.workers =
	             worker_backends(priv->nworkers, srv->site.cfg->connect_timeout_ms)) == NULL) {
		log_error("out of memory");
		return -1;
	}
	snprintf(a.path, sizeof(a.path), PEER_SOCKET_NAME, priv->index);
	srv->peers = acceptor_open(srv->site.loop, priv, &a, PRIV_SOCKET_PEER,
	                           "ATTACHes from the other workers", take, srv);
	return srv->peers != NULL ? 0 : -1;
}

void
peers_close(struct server *srv)
{
	acceptor_close(srv->peers);
	srv->peers = NULL;
}

void
peers_free(struct server *srv)
{
	free(srv->site.workers);
	srv->site.workers = NULL;
}
