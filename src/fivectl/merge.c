#include "fivectl/merge.h"

#include <stdbool.h>
#include <string.h>

/* Values that are the highest of the workers', not their sum. */
static const char *const highest[] = {"difficulty"};

static int merge_object(json_t *into, const json_t *from);

static bool
is_highest(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(highest) / sizeof(highest[0]); i++)
		if (strcmp(key, highest[i]) == 0)
			return true;
	return false;
}

static int
merge_value(json_t *into, const char *key, json_t *to, const json_t *from)
{
	json_int_t a, b;

	if (json_is_object(to) && json_is_object(from))
		return merge_object(to, from);
	if (json_is_boolean(to) && json_is_boolean(from))
		return json_object_set_new(into, key,
		                           json_boolean(json_is_true(to) || json_is_true(from)));
	if (!json_is_integer(to) || !json_is_integer(from))
		return json_equal(to, from) ? 0 : -1;
	a = json_integer_value(to);
	b = json_integer_value(from);
	return json_integer_set(to, is_highest(key) ? (a > b ? a : b) : a + b);
}

static int
merge_object(json_t *into, const json_t *from)
{
	const char *key;
	json_t *v;

	if (json_object_size(into) != json_object_size(from))
		return -1;
	json_object_foreach(into, key, v)
	{
		const json_t *w = json_object_get(from, key);

		if (w == NULL || merge_value(into, key, v, w) != 0)
			return -1;
	}
	return 0;
}

static int
merge_sessions(json_t *into, const json_t *from)
{
	json_t *list = json_object_get(into, "sessions");
	const json_t *more = json_object_get(from, "sessions");
	json_t *total = json_object_get(into, "total"), *shown = json_object_get(into, "shown");

	if (!json_is_array(list) || !json_is_array(more) || !json_is_integer(total) ||
	    !json_is_integer(shown) || json_array_extend(list, (json_t *)more) != 0)
		return -1;
	json_integer_set(total, json_integer_value(total) +
	                                json_integer_value(json_object_get(from, "total")));
	json_integer_set(shown, json_integer_value(shown) +
	                                json_integer_value(json_object_get(from, "shown")));
	return 0;
}

int
merge_reply(enum admin_command command, json_t *into, const json_t *worker)
{
	if (!json_is_object(into) || !json_is_object(worker))
		return -1;
	if (command == ADMIN_SESSIONS)
		return merge_sessions(into, worker);
	if (command == ADMIN_STATS || command == ADMIN_GOVERNOR)
		return merge_object(into, worker);
	return -1;
}
