#include "server/policy/penalty.h"

#include <stdlib.h>

#include "common/keytable.h"

/* Failures counted per key in a keytable; the count is the value. */
struct penalty_table {
	struct keytable *counts;
};

struct penalty_table *
penalty_table_new(void)
{
	struct penalty_table *t = calloc(1, sizeof(*t));

	if (t != NULL &&
	    (t->counts = keytable_new(PENALTY_FORGET_MS, PENALTY_ENTRIES_MAX)) == NULL) {
		free(t);
		t = NULL;
	}
	return t;
}

void
penalty_table_free(struct penalty_table *t)
{
	if (t != NULL) {
		keytable_free(t->counts);
		free(t);
	}
}

uint64_t
penalty_delay(struct penalty_table *t, const void *key, size_t len, uint64_t now_ms)
{
	struct keytable_value *v = keytable_get(t->counts, key, len, now_ms, 0);
	uint64_t delay = PENALTY_BASE_MS, i;

	if (v == NULL || v->count == 0)
		return 0;
	for (i = 1; i < v->count && delay < PENALTY_MAX_MS; i++)
		delay *= 2;
	return delay < PENALTY_MAX_MS ? delay : PENALTY_MAX_MS;
}

void
penalty_fail(struct penalty_table *t, const void *key, size_t len, uint64_t now_ms)
{
	struct keytable_value *v = keytable_get(t->counts, key, len, now_ms, 1);

	if (v != NULL) {
		v->count++;
		v->stamp_ms = now_ms;
	}
}

void
penalty_clear(struct penalty_table *t, const void *key, size_t len, uint64_t now_ms)
{
	keytable_remove(t->counts, key, len, now_ms);
}
