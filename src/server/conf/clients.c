#include "server/conf/clients.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keyfile.h"
#include "common/util.h"

#define CLIENTS_LINE_MAX 512

static int
by_key(const void *a, const void *b)
{
	return memcmp(((const struct client_key *)a)->pk, ((const struct client_key *)b)->pk, 32);
}

/* One line: 1 with k filled, 0 for a blank or comment line, -1 with *why. */
static int
parse_line(char *line, struct client_key *k, const char **why)
{
	char *key = line + strspn(line, " \t"), *identity, *end;

	memset(k, 0, sizeof(*k));
	if (*key == '\0' || *key == '#')
		return 0;
	identity = key + strcspn(key, " \t");
	if (*identity == '\0') {
		*why = "expected KEY IDENTITY";
		return -1;
	}
	*identity++ = '\0';
	identity += strspn(identity, " \t");
	end = identity + strcspn(identity, " \t#");
	*end = '\0';
	if (keyfile_b64_decode(key, k->pk) != 0) {
		*why = "not a base64 key of 32 bytes";
		return -1;
	}
	if (!auth_identity_valid(identity)) {
		*why = "not a valid identity";
		return -1;
	}
	str_copy(k->identity, identity, sizeof(k->identity));
	return 1;
}

int
clients_parse(const char *name, const char *text, size_t len, struct client_keys *out, char *err,
              size_t err_size)
{
	char line[CLIENTS_LINE_MAX];
	const char *why = "";
	unsigned n = 0;
	size_t cap = 0, pos = 0;
	struct client_key k, *grown;
	int r;

	memset(out, 0, sizeof(*out));
	while ((r = text_line(text, len, &pos, line, sizeof(line))) != 0) {
		n++;
		if (r < 0) {
			why = "line too long, or a NUL byte";
			goto fail;
		}
		if ((r = parse_line(line, &k, &why)) < 0)
			goto fail;
		if (r == 0)
			continue;
		if (out->n == CLIENTS_MAX) {
			why = "too many keys";
			goto fail;
		}
		if (out->n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((grown = realloc(out->keys, cap * sizeof(k))) == NULL) {
				why = "out of memory";
				goto fail;
			}
			out->keys = grown;
		}
		out->keys[out->n++] = k;
	}
	if (out->n > 1)
		qsort(out->keys, out->n, sizeof(k), by_key);
	return 0;
fail:
	snprintf(err, err_size, "%s:%u: %s", name, n, why);
	clients_free(out);
	return -1;
}

void
clients_free(struct client_keys *c)
{
	if (c->keys != NULL)
		sodium_memzero(c->keys, c->n * sizeof(*c->keys));
	free(c->keys);
	memset(c, 0, sizeof(*c));
}

struct client_key *
clients_find(const struct client_keys *c, const uint8_t pk[32])
{
	struct client_key probe = {.ss_known = false};

	if (c->n == 0)
		return NULL;
	memcpy(probe.pk, pk, 32);
	return bsearch(&probe, c->keys, c->n, sizeof(probe), by_key);
}

const char *
clients_identity(const struct client_keys *c, const uint8_t pk[32])
{
	const struct client_key *hit = clients_find(c, pk);

	return hit != NULL ? hit->identity : NULL;
}

void
clients_carry(struct client_keys *to, const struct client_keys *from)
{
	size_t i = 0, j = 0;
	int order;

	/* Both are sorted by key: one pass over each. */
	while (i < to->n && j < from->n) {
		order = memcmp(to->keys[i].pk, from->keys[j].pk, 32);
		if (order == 0 && from->keys[j].ss_known) {
			memcpy(to->keys[i].ss, from->keys[j].ss, 32);
			to->keys[i].ss_known = true;
		}
		i += order <= 0;
		j += order >= 0;
	}
}

int
clients_learn(struct client_key *k, clients_dh_fn dh, void *ctx)
{
	if (!k->ss_known)
		k->ss_known = dh(ctx, k->pk, k->ss) == 0;
	return k->ss_known ? 0 : -1;
}

bool
clients_fill(struct client_keys *c, size_t batch, clients_dh_fn dh, void *ctx)
{
	for (; c->filled < c->n && batch > 0; c->filled++) {
		if (c->keys[c->filled].ss_known)
			continue;
		clients_learn(&c->keys[c->filled], dh, ctx);
		batch--;
	}
	return c->filled < c->n;
}
