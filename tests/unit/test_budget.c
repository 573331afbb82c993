/* The relay memory budget and the chunks charged to it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server/policy/budget.h"
#include "server/policy/chunk.h"

static void
count_low(void *arg)
{
	(*(int *)arg)++;
}

static void
test_low_water(void **state)
{
	struct budget b;
	int lows = 0;

	budget_init(&b, 1000, count_low, &lows);
	assert_int_equal(budget_low(&b), 750);
	budget_charge(&b, 600);
	assert_false(budget_over(&b));
	budget_charge(&b, 400);
	assert_true(budget_over(&b));
	/* Above the low mark: still nobody to wake. */
	budget_release(&b, 200);
	assert_false(budget_over(&b));
	assert_int_equal(lows, 0);
	/* Crossing it once calls once; staying below does not call again. */
	budget_release(&b, 100);
	assert_int_equal(b.used, 700);
	assert_int_equal(lows, 1);
	budget_release(&b, 100);
	assert_int_equal(lows, 1);
	/* A smaller budget takes effect at once; a larger one below usage wakes the held. */
	budget_set_max(&b, 500);
	assert_true(budget_over(&b));
	assert_int_equal(lows, 1);
	budget_set_max(&b, 2000);
	assert_int_equal(lows, 2);
	/* Never below zero. */
	budget_release(&b, 5000);
	assert_int_equal(b.used, 0);
	budget_note_pause(&b);
	assert_int_equal(b.pauses, 1);
}

static void
test_read_size(void **state)
{
	struct budget b;

	budget_init(&b, 1 << 20, NULL, NULL);
	assert_int_equal(budget_read_size(&b, CHUNK_READ_SIZE), CHUNK_READ_SIZE);
	budget_charge(&b, (1 << 20) - 10000);
	assert_int_equal(budget_read_size(&b, CHUNK_READ_SIZE), 10000);
	budget_charge(&b, 9000);
	assert_int_equal(budget_read_size(&b, CHUNK_READ_SIZE), BUDGET_READ_MIN);
	budget_charge(&b, 5000);
	assert_int_equal(budget_read_size(&b, CHUNK_READ_SIZE), BUDGET_READ_MIN);
	assert_int_equal(budget_read_size(&b, 100), 100);
	assert_int_equal(budget_read_size(NULL, CHUNK_READ_SIZE), CHUNK_READ_SIZE);
}

static void
test_chunks_charged_exactly(void **state)
{
	struct budget b;
	struct chunk *c, *d;
	uv_buf_t buf;

	budget_init(&b, 1 << 20, NULL, NULL);
	chunk_alloc_charged(&b, CHUNK_READ_SIZE, &buf);
	assert_non_null(buf.base);
	assert_int_equal(b.used, sizeof(struct chunk) + CHUNK_READ_SIZE);
	/* A short read keeps only what it carries. */
	memcpy(buf.base, "hello", 5);
	c = chunk_fit(&buf, 5);
	assert_memory_equal(c->data, "hello", 5);
	assert_int_equal(c->size, sizeof(struct chunk) + 5);
	assert_int_equal(b.used, sizeof(struct chunk) + 5);
	d = chunk_copy(&b, "world", 5);
	assert_int_equal(b.used, 2 * (sizeof(struct chunk) + 5));
	chunk_free(c);
	chunk_free(d);
	assert_int_equal(b.used, 0);
	/* A long read keeps its buffer, whole, and its charge. */
	chunk_alloc_charged(&b, CHUNK_READ_SIZE, &buf);
	c = chunk_fit(&buf, CHUNK_COPY_MAX + 1);
	assert_ptr_equal(c->data, buf.base);
	assert_int_equal(b.used, sizeof(struct chunk) + CHUNK_READ_SIZE);
	chunk_free(c);
	assert_int_equal(b.used, 0);
	/* Uncharged chunks leave the budget alone. */
	c = chunk_copy(NULL, "x", 1);
	chunk_free(c);
	chunk_free(NULL);
	assert_int_equal(b.used, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_low_water),
	        cmocka_unit_test(test_read_size),
	        cmocka_unit_test(test_chunks_charged_exactly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
