/*
 * authorized_clients: keys found by their bytes, and the static-static
 * X25519 kept per key (clients.h): asked for once per key, carried over
 * a reload for the keys that stay, wiped with the table.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "common/keyfile.h"
#include "server/conf/clients.h"
#include "unit.h"

#define ERR_MAX 256
#define KEYS    5

/* A stand-in for the monitor: the X25519 of a fixed key with pk, each call counted. */
struct monitor {
	uint8_t priv[32];
	unsigned calls;
	bool refuse; /* answer -1, as a monitor that cannot */
};

static int
monitor_dh(void *ctx, const uint8_t pk[32], uint8_t ss[32])
{
	struct monitor *m = ctx;

	m->calls++;
	return m->refuse ? -1 : crypto_scalarmult_curve25519(ss, m->priv, pk);
}

/* KEYS clients' public keys, and the authorized_clients text of keys first to last - 1. */
static void
make_keys(uint8_t pks[KEYS][32], char *text, size_t size, unsigned first, unsigned last)
{
	char b64[KEYFILE_B64_LEN];
	uint8_t priv[32];
	size_t used = 0;
	unsigned i;

	for (i = 0; i < KEYS; i++) {
		memset(priv, (int)i + 1, sizeof(priv));
		crypto_scalarmult_base(pks[i], priv);
		if (i < first || i >= last)
			continue;
		keyfile_b64(pks[i], b64);
		used += (size_t)snprintf(text + used, size - used, "%s client%u\n", b64, i);
	}
}

static void
parse(const char *text, struct client_keys *c)
{
	char err[ERR_MAX];

	assert_int_equal(
	        clients_parse("authorized_clients", text, strlen(text), c, err, sizeof(err)), 0);
}

static void
test_fill_once_each(void **state)
{
	struct monitor m = {.calls = 0};
	uint8_t pks[KEYS][32], ss[32];
	struct client_keys c;
	struct client_key *k;
	char text[1024];
	unsigned i;

	memset(m.priv, 0x42, sizeof(m.priv));
	make_keys(pks, text, sizeof(text), 0, KEYS);
	parse(text, &c);
	for (i = 0; i < KEYS; i++) {
		assert_non_null(k = clients_find(&c, pks[i]));
		assert_false(k->ss_known);
	}
	assert_true(clients_fill(&c, 2, monitor_dh, &m));
	assert_int_equal(m.calls, 2);
	assert_false(clients_fill(&c, KEYS, monitor_dh, &m));
	assert_int_equal(m.calls, KEYS);
	assert_false(clients_fill(&c, KEYS, monitor_dh, &m));
	assert_int_equal(m.calls, KEYS);
	for (i = 0; i < KEYS; i++) {
		k = clients_find(&c, pks[i]);
		assert_true(k->ss_known);
		assert_int_equal(crypto_scalarmult_curve25519(ss, m.priv, pks[i]), 0);
		assert_memory_equal(k->ss, ss, sizeof(ss));
	}
	clients_free(&c);
	assert_null(c.keys);
	assert_int_equal(c.n, 0);
}

/* A key known before the fill reaches it is not asked for again; a refusal is not retried. */
static void
test_fill_skips_known_and_refused(void **state)
{
	struct monitor m = {.refuse = true};
	uint8_t pks[KEYS][32];
	struct client_keys c;
	struct client_key *k;
	char text[1024];

	make_keys(pks, text, sizeof(text), 0, KEYS);
	parse(text, &c);
	k = clients_find(&c, pks[3]);
	k->ss_known = true;
	assert_false(clients_fill(&c, KEYS, monitor_dh, &m));
	assert_int_equal(m.calls, KEYS - 1);
	assert_false(clients_find(&c, pks[0])->ss_known);
	assert_true(clients_find(&c, pks[3])->ss_known);
	clients_free(&c);
}

/* A reload keeps the results of the keys it keeps; a key new to it is yet to be asked for. */
static void
test_carry(void **state)
{
	struct monitor m = {.calls = 0};
	uint8_t pks[KEYS][32], ss[32];
	struct client_keys old, next;
	char text[1024];

	memset(m.priv, 0x17, sizeof(m.priv));
	make_keys(pks, text, sizeof(text), 0, KEYS - 1);
	parse(text, &old);
	assert_false(clients_fill(&old, KEYS, monitor_dh, &m));
	make_keys(pks, text, sizeof(text), 2, KEYS);
	parse(text, &next);
	clients_carry(&next, &old);
	assert_null(clients_find(&next, pks[0]));
	assert_null(clients_find(&next, pks[1]));
	assert_true(clients_find(&next, pks[2])->ss_known);
	assert_true(clients_find(&next, pks[3])->ss_known);
	assert_false(clients_find(&next, pks[4])->ss_known);
	assert_int_equal(crypto_scalarmult_curve25519(ss, m.priv, pks[3]), 0);
	assert_memory_equal(clients_find(&next, pks[3])->ss, ss, sizeof(ss));
	m.calls = 0;
	assert_false(clients_fill(&next, KEYS, monitor_dh, &m));
	assert_int_equal(m.calls, 1);
	clients_free(&old);
	clients_free(&next);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_fill_once_each),
	        cmocka_unit_test(test_fill_skips_known_and_refused),
	        cmocka_unit_test(test_carry),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
