/* Connections by source; the busiest source's oldest waiting connection. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "server/policy/sources.h"
#include "unit.h"

static void
key_of(uint8_t key[SOURCE_KEY_LEN], uint8_t n)
{
	memset(key, 0, SOURCE_KEY_LEN);
	key[0] = 4;
	key[1] = 10;
	key[4] = n;
}

static void
test_counts_up_to_max(void **state)
{
	struct source_table *t = source_table_new();
	bool to_attach;
	uint8_t a[SOURCE_KEY_LEN], b[SOURCE_KEY_LEN];
	struct source *s1, *s2, *s3;

	key_of(a, 1);
	key_of(b, 2);
	assert_non_null(s1 = source_acquire(t, a, 2, &to_attach));
	assert_non_null(s2 = source_acquire(t, a, 2, &to_attach));
	assert_ptr_equal(s1, s2);
	assert_null(source_acquire(t, a, 2, &to_attach));
	assert_non_null(s3 = source_acquire(t, b, 2, &to_attach));
	assert_ptr_not_equal(s1, s3);
	source_release(t, s1);
	assert_non_null(source_acquire(t, a, 2, &to_attach));
	source_release(t, s1);
	source_release(t, s1);
	source_release(t, s3);
	/* Every count is back to zero: a new one starts afresh. */
	assert_non_null(s1 = source_acquire(t, a, 1, &to_attach));
	assert_null(source_acquire(t, a, 1, &to_attach));
	source_release(t, s1);
	source_table_free(t);
	source_table_free(NULL);
}

/* A detached session holds its source's place, and one connection more may come to attach it. */
static void
test_a_connection_more_per_detached_session(void **state)
{
	struct source_table *t = source_table_new();
	bool to_attach;
	uint8_t a[SOURCE_KEY_LEN];
	struct source *s1, *s2;

	key_of(a, 1);
	assert_non_null(s1 = source_acquire(t, a, 2, &to_attach));
	assert_false(to_attach);
	assert_non_null(s2 = source_acquire(t, a, 2, &to_attach));
	assert_false(to_attach);
	assert_null(source_acquire(t, a, 2, &to_attach));
	source_detached(s1, true);
	/* Not for a stream, which no ATTACH comes on. */
	assert_null(source_acquire(t, a, 2, NULL));
	assert_ptr_equal(source_acquire(t, a, 2, &to_attach), s1);
	assert_true(to_attach);
	assert_null(source_acquire(t, a, 2, &to_attach));
	/* Attached: the old session retires, the new connection keeps its place. */
	source_detached(s1, false);
	source_release(t, s1);
	assert_null(source_acquire(t, a, 2, &to_attach));
	source_release(t, s1);
	source_release(t, s2);
	source_table_free(t);
}

static void
test_busiest_source_then_oldest(void **state)
{
	struct source_table *t = source_table_new();
	bool to_attach;
	uint8_t a[SOURCE_KEY_LEN], b[SOURCE_KEY_LEN], c[SOURCE_KEY_LEN];
	struct source_waiter wa[3], wb[2], wc;
	int owners[6];
	struct source *sa, *sb, *sc;
	int i;

	memset(wa, 0, sizeof(wa));
	memset(wb, 0, sizeof(wb));
	memset(&wc, 0, sizeof(wc));
	key_of(a, 1);
	key_of(b, 2);
	key_of(c, 3);
	assert_null(source_busiest_oldest(t));
	/* c first and alone, then b twice, then a three times. */
	sc = source_acquire(t, c, 64, &to_attach);
	assert_int_equal(source_wait(t, sc, &wc, &owners[5]), 0);
	assert_ptr_equal(source_busiest_oldest(t), &owners[5]);
	sb = source_acquire(t, b, 64, &to_attach);
	sa = source_acquire(t, a, 64, &to_attach);
	for (i = 0; i < 2; i++) {
		source_acquire(t, b, 64, &to_attach);
		assert_int_equal(source_wait(t, sb, &wb[i], &owners[3 + i]), 0);
	}
	assert_ptr_equal(source_busiest_oldest(t), &owners[3]);
	for (i = 0; i < 3; i++) {
		source_acquire(t, a, 64, &to_attach);
		assert_int_equal(source_wait(t, sa, &wa[i], &owners[i]), 0);
	}
	assert_int_equal(source_waiting(sa), 3);
	assert_int_equal(source_waiting(sb), 2);
	assert_int_equal(source_waiting(sc), 1);
	/* a has the most: its oldest goes first, however young. */
	assert_ptr_equal(source_busiest_oldest(t), &owners[0]);
	source_unwait(t, &wa[0]);
	source_unwait(t, &wa[0]); /* not waiting any more: nothing */
	/* a and b have two each; b has had two the longest. */
	assert_ptr_equal(source_busiest_oldest(t), &owners[3]);
	source_unwait(t, &wb[0]);
	assert_ptr_equal(source_busiest_oldest(t), &owners[1]);
	/* A connection that made its request leaves from the middle. */
	source_unwait(t, &wa[2]);
	source_unwait(t, &wa[1]);
	/* Now one each: the source at one the longest is c. */
	assert_ptr_equal(source_busiest_oldest(t), &owners[5]);
	source_unwait(t, &wc);
	assert_ptr_equal(source_busiest_oldest(t), &owners[4]);
	source_unwait(t, &wb[1]);
	assert_null(source_busiest_oldest(t));
	source_table_free(t);
}

static void
test_many_waiting_from_one_source(void **state)
{
	enum { N = 1000 };
	static struct source_waiter w[N];
	static int owners[N];
	struct source_table *t = source_table_new();
	bool to_attach;
	uint8_t a[SOURCE_KEY_LEN];
	struct source *s = NULL;
	int i;

	key_of(a, 7);
	for (i = 0; i < N; i++) {
		s = source_acquire(t, a, N, &to_attach);
		assert_int_equal(source_wait(t, s, &w[i], &owners[i]), 0);
	}
	assert_int_equal(source_waiting(s), N);
	for (i = 0; i < N; i++) {
		assert_ptr_equal(source_busiest_oldest(t), &owners[i]);
		source_unwait(t, &w[i]);
		source_release(t, s);
	}
	assert_null(source_busiest_oldest(t));
	source_table_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_counts_up_to_max),
	        cmocka_unit_test(test_a_connection_more_per_detached_session),
	        cmocka_unit_test(test_busiest_source_then_oldest),
	        cmocka_unit_test(test_many_waiting_from_one_source),
	};

	return UNIT_RUN_WITH_SODIUM(tests, NULL, NULL);
}
