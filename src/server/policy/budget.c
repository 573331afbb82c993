#include "server/policy/budget.h"

void
budget_init(struct budget *b, uint64_t max, void (*on_low)(void *arg), void *arg)
{
	b->used = 0;
	b->max = max;
	b->pauses = 0;
	b->on_low = on_low;
	b->arg = arg;
}

uint64_t
budget_low(const struct budget *b)
{
	return b->max - b->max / 4;
}

void
budget_set_max(struct budget *b, uint64_t max)
{
	b->max = max;
	if (b->used < budget_low(b) && b->on_low != NULL)
		b->on_low(b->arg);
}

void
budget_charge(struct budget *b, size_t n)
{
	if (b != NULL)
		b->used += n;
}

void
budget_release(struct budget *b, size_t n)
{
	uint64_t low;

	if (b == NULL)
		return;
	low = budget_low(b);
	/* Releasing more than was charged is a bug; never let the count wrap. */
	b->used = n <= b->used ? b->used - n : 0;
	if (b->used < low && b->used + n >= low && b->on_low != NULL)
		b->on_low(b->arg);
}

bool
budget_over(const struct budget *b)
{
	return b != NULL && b->used >= b->max;
}

size_t
budget_read_size(const struct budget *b, size_t full)
{
	size_t floor = full < BUDGET_READ_MIN ? full : BUDGET_READ_MIN;
	uint64_t room;

	if (b == NULL)
		return full;
	room = b->used < b->max ? b->max - b->used : 0;
	if (room >= full)
		return full;
	return room > floor ? (size_t)room : floor;
}

void
budget_note_pause(struct budget *b)
{
	if (b != NULL)
		b->pauses++;
}
