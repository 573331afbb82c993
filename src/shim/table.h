/*
 * The shim's synthetic addresses: a name the shim handles resolves to an
 * address of 127.95.0.0/16 (IPv4 loopback: a program that gets past the
 * shim reaches no network with it), remembered here so that a connect to
 * it finds the name again; and the sockets the shim connected, by inode,
 * with the address their program connected to (getpeername).
 *
 * Every function is thread-safe (one mutex per table); the mutex is made
 * anew in a child after fork (shim_table_after_fork).
 */
#ifndef FIVE_SHIM_TABLE_H
#define FIVE_SHIM_TABLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "shim/conf.h"

/* 127.95.0.0/16, of which the first SHIM_NAMES_MAX addresses after .0.0 are handed out. */
#define SHIM_NET_A     127
#define SHIM_NET_B     95
#define SHIM_NAMES_MAX 4096
/* Connected sockets remembered for getpeername; the oldest is forgotten first. */
#define SHIM_PEERS_MAX 1024

struct shim_peer {
	dev_t dev;
	ino_t ino; /* 0: a free entry */
	struct sockaddr_storage addr;
	socklen_t len;
};

struct shim_table {
	pthread_mutex_t lock;
	size_t names; /* entries used in name[]: address i + 1 is name[i] */
	char name[SHIM_NAMES_MAX][SHIM_NAME_MAX + 1];
	size_t next_peer;
	struct shim_peer peer[SHIM_PEERS_MAX];
};

/* Sets t up, empty. */
void shim_table_init(struct shim_table *t);

/* In a child after fork: the mutex, which another thread may have held, made anew. */
void shim_table_after_fork(struct shim_table *t);

/* Whether the 4 bytes of an IPv4 address (network order) are in the shim's range. */
bool shim_table_in_range(const uint8_t a[4]);

/*
 * The address for name (normalized) into a[4], network order: the one it
 * has, or the next free one.  Returns 0, or -1 when SHIM_NAMES_MAX names
 * are taken.
 */
int shim_table_address(struct shim_table *t, const char *name, uint8_t a[4]);

/*
 * The name whose address a[4] is into name[0..SHIM_NAME_MAX].  Returns
 * true, or false when no name has it.
 */
bool shim_table_name(struct shim_table *t, const uint8_t a[4], char name[SHIM_NAME_MAX + 1]);

/* Remembers that the socket dev/ino is connected to addr (len bytes, at most its size). */
void shim_table_peer_add(struct shim_table *t, dev_t dev, ino_t ino, const struct sockaddr *addr,
                         socklen_t len);

/* The address the socket dev/ino connected to into *addr and *len; false when not ours. */
bool shim_table_peer(struct shim_table *t, dev_t dev, ino_t ino, struct sockaddr_storage *addr,
                     socklen_t *len);

#endif
