#include "shim/table.h"

#include <string.h>

#include "common/util.h"

void
shim_table_init(struct shim_table *t)
{
	pthread_mutex_init(&t->lock, NULL);
	t->names = 0;
	t->next_peer = 0;
	memset(t->peer, 0, sizeof(t->peer));
}

void
shim_table_after_fork(struct shim_table *t)
{
	pthread_mutex_init(&t->lock, NULL);
}

bool
shim_table_in_range(const uint8_t a[4])
{
	return a[0] == SHIM_NET_A && a[1] == SHIM_NET_B;
}

/* Address i + 1 for name[i]: 127.95.0.1 is the first. */
static void
address_of(size_t i, uint8_t a[4])
{
	a[0] = SHIM_NET_A;
	a[1] = SHIM_NET_B;
	a[2] = (uint8_t)((i + 1) >> 8);
	a[3] = (uint8_t)((i + 1) & 0xff);
}

int
shim_table_address(struct shim_table *t, const char *name, uint8_t a[4])
{
	size_t i;
	int r = -1;

	pthread_mutex_lock(&t->lock);
	for (i = 0; i < t->names; i++)
		if (strcmp(t->name[i], name) == 0)
			break;
	if (i == t->names && t->names < SHIM_NAMES_MAX)
		str_copy(t->name[t->names++], name, sizeof(t->name[0]));
	if (i < t->names) {
		address_of(i, a);
		r = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

bool
shim_table_name(struct shim_table *t, const uint8_t a[4], char name[SHIM_NAME_MAX + 1])
{
	size_t i = ((size_t)a[2] << 8 | a[3]);
	bool found = false;

	if (!shim_table_in_range(a) || i == 0)
		return false;
	pthread_mutex_lock(&t->lock);
	if (i <= t->names) {
		str_copy(name, t->name[i - 1], SHIM_NAME_MAX + 1);
		found = true;
	}
	pthread_mutex_unlock(&t->lock);
	return found;
}

void
shim_table_peer_add(struct shim_table *t, dev_t dev, ino_t ino, const struct sockaddr *addr,
                    socklen_t len)
{
	struct shim_peer *p;
	size_t i;

	if (ino == 0 || len > sizeof(p->addr))
		return;
	pthread_mutex_lock(&t->lock);
	/* A socket connected again (its inode reused) replaces its old entry. */
	for (i = 0; i < SHIM_PEERS_MAX; i++)
		if (t->peer[i].ino == ino && t->peer[i].dev == dev)
			break;
	if (i == SHIM_PEERS_MAX) {
		i = t->next_peer;
		t->next_peer = (t->next_peer + 1) % SHIM_PEERS_MAX;
	}
	p = &t->peer[i];
	p->dev = dev;
	p->ino = ino;
	memset(&p->addr, 0, sizeof(p->addr));
	memcpy(&p->addr, addr, len);
	p->len = len;
	pthread_mutex_unlock(&t->lock);
}

bool
shim_table_peer(struct shim_table *t, dev_t dev, ino_t ino, struct sockaddr_storage *addr,
                socklen_t *len)
{
	bool found = false;
	size_t i;

	if (ino == 0)
		return false;
	pthread_mutex_lock(&t->lock);
	for (i = 0; i < SHIM_PEERS_MAX && !found; i++) {
		if (t->peer[i].ino == ino && t->peer[i].dev == dev) {
			*addr = t->peer[i].addr;
			*len = t->peer[i].len;
			found = true;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return found;
}
