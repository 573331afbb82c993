/* Who may use which service; failure penalties; from= patterns. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "server/conf/keys.h"
#include "server/policy/penalty.h"
#include "server/policy/policy.h"
#include "unit.h"

/* groups: the caller's group names, a line each (not copied), or NULL. */
static struct caller
caller(const char *identity, const char *fp, const char *groups)
{
	struct caller c;

	memset(&c, 0, sizeof(c));
	strcpy(c.identity, identity);
	c.method = fp[0] != '\0' ? AUTH_PUBKEY : AUTH_PASSWORD;
	strcpy(c.key_fingerprint, fp);
	c.groups = (char *)groups;
	return c;
}

static void
test_open_service(void **state)
{
	struct service svc;
	struct caller alice = caller("alice", "", NULL);

	memset(&svc, 0, sizeof(svc));
	assert_int_equal(policy_check(&svc, NULL), POLICY_GRANT);
	assert_int_equal(policy_check(&svc, &alice), POLICY_GRANT);
	assert_true(policy_listed(&svc, NULL, true));
}

static void
test_required_service(void **state)
{
	struct service svc;
	struct caller alice = caller("alice", "SHA256:abc", "staff");
	struct caller bob = caller("bob", "", "staff");
	struct caller carol = caller("carol", "", NULL);

	memset(&svc, 0, sizeof(svc));
	svc.auth_required = true;
	/* Invisible before authentication, listed to nobody by HELP. */
	assert_int_equal(policy_check(&svc, NULL), POLICY_HIDDEN);
	assert_false(policy_listed(&svc, NULL, false));
	assert_false(policy_listed(&svc, &alice, true));
	/* No allow list: any identity. */
	assert_int_equal(policy_check(&svc, &carol), POLICY_GRANT);
	svc.allow[svc.nallow++] = (struct principal){PRINCIPAL_GROUP, "staff"};
	svc.deny[svc.ndeny++] = (struct principal){PRINCIPAL_USER, "bob"};
	assert_int_equal(policy_check(&svc, &alice), POLICY_GRANT);
	assert_int_equal(policy_check(&svc, &bob), POLICY_DENIED); /* deny wins */
	assert_int_equal(policy_check(&svc, &carol), POLICY_DENIED);
	assert_true(policy_listed(&svc, &alice, false));
	assert_false(policy_listed(&svc, &carol, false));
	svc.nallow = 0;
	svc.ndeny = 0;
	svc.allow[svc.nallow++] = (struct principal){PRINCIPAL_KEY, "SHA256:abc"};
	assert_int_equal(policy_check(&svc, &alice), POLICY_GRANT);
	/* A password login has no key fingerprint: it never matches key:. */
	assert_int_equal(policy_check(&svc, &carol), POLICY_DENIED);
}

/*
 * Without a group rule in the configuration no group is asked for (a NULL priv would be
 * used), and the caller is one whose groups are unknown: a group rule never grants it.
 */
static void
test_caller_without_group_rules(void **state)
{
	struct config cfg;
	struct service svc;
	struct caller *c;

	memset(&cfg, 0, sizeof(cfg));
	c = caller_new("eve", AUTH_EXTERNAL, NULL, &cfg);
	assert_non_null(c);
	assert_true(c->groups_unknown);
	assert_null(c->groups);
	memset(&svc, 0, sizeof(svc));
	svc.auth_required = true;
	assert_int_equal(policy_check(&svc, c), POLICY_GRANT);
	svc.allow[svc.nallow++] = (struct principal){PRINCIPAL_GROUP, "staff"};
	assert_int_equal(policy_check(&svc, c), POLICY_DENIED);
	svc.nallow = 0;
	svc.deny[svc.ndeny++] = (struct principal){PRINCIPAL_GROUP, "staff"};
	assert_int_equal(policy_check(&svc, c), POLICY_DENIED);
	caller_free(c);
}

/* Every group counts, however many; a list that could not be had refuses on any group rule. */
static void
test_groups(void **state)
{
	static char many[200 * 8];
	struct service svc;
	struct caller dave, eve = caller("eve", "", NULL);
	size_t i, n = 0;

	for (i = 0; i < 199; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "g%zu\n", i);
	dave = caller("dave", "", many);
	memset(&svc, 0, sizeof(svc));
	svc.auth_required = true;
	svc.deny[svc.ndeny++] = (struct principal){PRINCIPAL_GROUP, "g198"};
	assert_int_equal(policy_check(&svc, &dave), POLICY_DENIED);
	/* A prefix of a group's name is not the group. */
	svc.deny[0] = (struct principal){PRINCIPAL_GROUP, "g19"};
	assert_int_equal(policy_check(&svc, &dave), POLICY_DENIED);
	svc.deny[0] = (struct principal){PRINCIPAL_GROUP, "g1"};
	assert_int_equal(policy_check(&svc, &dave), POLICY_DENIED);
	svc.deny[0] = (struct principal){PRINCIPAL_GROUP, "g"};
	assert_int_equal(policy_check(&svc, &dave), POLICY_GRANT);
	assert_int_equal(policy_check(&svc, &eve), POLICY_GRANT);
	eve.groups_unknown = true;
	assert_int_equal(policy_check(&svc, &eve), POLICY_DENIED);
	svc.ndeny = 0;
	svc.allow[svc.nallow++] = (struct principal){PRINCIPAL_GROUP, "g"};
	assert_int_equal(policy_check(&svc, &eve), POLICY_DENIED);
	svc.allow[0] = (struct principal){PRINCIPAL_USER, "eve"};
	assert_int_equal(policy_check(&svc, &eve), POLICY_GRANT);
}

static void
test_penalties(void **state)
{
	struct penalty_table *t = penalty_table_new();
	uint64_t now = 1000000;

	assert_int_equal(penalty_delay(t, "k", 1, now), 0);
	penalty_fail(t, "k", 1, now);
	assert_int_equal(penalty_delay(t, "k", 1, now), PENALTY_BASE_MS);
	penalty_fail(t, "k", 1, now);
	penalty_fail(t, "k", 1, now);
	assert_int_equal(penalty_delay(t, "k", 1, now), 4 * PENALTY_BASE_MS);
	for (int i = 0; i < 20; i++)
		penalty_fail(t, "k", 1, now);
	assert_int_equal(penalty_delay(t, "k", 1, now), PENALTY_MAX_MS);
	assert_int_equal(penalty_delay(t, "other", 5, now), 0);
	/* Forgotten after a quiet period, or on success. */
	assert_int_equal(penalty_delay(t, "k", 1, now + PENALTY_FORGET_MS), 0);
	penalty_fail(t, "j", 1, now);
	penalty_clear(t, "j", 1, now);
	assert_int_equal(penalty_delay(t, "j", 1, now), 0);
	penalty_table_free(t);
}

static void
test_from_patterns(void **state)
{
	assert_true(keys_from_matches("127.0.0.1", "127.0.0.1"));
	assert_false(keys_from_matches("127.0.0.1", "127.0.0.2"));
	assert_true(keys_from_matches("10.0.0.0/8,192.168.1.*", "192.168.1.77"));
	assert_true(keys_from_matches("10.0.0.0/8", "10.200.3.4"));
	assert_false(keys_from_matches("10.0.0.0/8", "11.0.0.1"));
	assert_false(keys_from_matches("127.0.0.0/8,!127.0.0.9", "127.0.0.9"));
	assert_true(keys_from_matches("127.0.0.0/8,!127.0.0.9", "127.0.0.8"));
	assert_true(keys_from_matches("2001:db8::/32", "2001:db8:1::5"));
	assert_false(keys_from_matches("2001:db8::/32", "2001:db9::5"));
	assert_true(keys_from_matches("10.1.2.3/31", "10.1.2.2"));
	assert_false(keys_from_matches("10.1.2.3/31", "10.1.2.4"));
	/* Names never match: fived does not look up the client's name. */
	assert_false(keys_from_matches("*.example.org", "127.0.0.1"));
	assert_false(keys_from_matches("10.0.0.0/99", "10.0.0.1"));
	assert_false(keys_from_matches("127.0.0.1", ""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_open_service),
	        cmocka_unit_test(test_required_service),
	        cmocka_unit_test(test_groups),
	        cmocka_unit_test(test_caller_without_group_rules),
	        cmocka_unit_test(test_penalties),
	        cmocka_unit_test(test_from_patterns),
	};

	return UNIT_RUN_WITH_SODIUM(tests, NULL, NULL);
}
