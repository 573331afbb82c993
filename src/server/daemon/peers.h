/*
 * With several workers: this worker's end of the ATTACHes the others pass
 * on (attach.c), and the others as backends for the ones it passes on.
 * Each worker accepts on a socket of its own the monitor made, and only
 * connections the monitor made: another worker asked for them.
 */
#ifndef FIVE_SERVER_PEERS_H
#define FIVE_SERVER_PEERS_H

struct server;

/* Opens this worker's peer socket and makes the others' backends.  0, or -1 after logging why. */
int peers_open(struct server *srv);

/* Stops accepting from the other workers.  Safe when peers_open did nothing. */
void peers_close(struct server *srv);

/* Frees the other workers' backends, once no session uses them. */
void peers_free(struct server *srv);

#endif
