/* wheel.c - hashed timer wheel: intrusive doubly linked slot lists indexed by entry number. */
#include "wheel.h"

/* wheel_init - empty slots, unarmed entries. */
void wheel_init(struct wheel *wh, struct wheel_node *nodes, uint32_t n, int64_t tick_ms,
                int64_t now_ms)
{
	for (uint32_t s = 0; s < WHEEL_SLOTS; s++)
		wh->head[s] = WHEEL_NONE;
	for (uint32_t i = 0; i < n; i++)
		nodes[i] = (struct wheel_node){ WHEEL_NONE, WHEEL_NONE, 0, 0 };
	wh->node = nodes;
	wh->tick = tick_ms;
	wh->done = now_ms / tick_ms;
}

/* tick_of - the first tick at or after at_ms. */
static int64_t tick_of(const struct wheel *wh, int64_t at_ms)
{
	return (at_ms + wh->tick - 1) / wh->tick;
}

/* unlink_node - take entry i out of its slot. */
static void unlink_node(struct wheel *wh, uint32_t i)
{
	struct wheel_node *x = &wh->node[i];
	if (x->prev != WHEEL_NONE)
		wh->node[x->prev].next = x->next;
	else
		wh->head[x->slot] = x->next;
	if (x->next != WHEEL_NONE)
		wh->node[x->next].prev = x->prev;
	x->next = x->prev = WHEEL_NONE;
}

/* slot_of - the slot an entry due at at_ms sits in (past times go to the next slot visited). */
static uint32_t slot_of(const struct wheel *wh, int64_t at_ms)
{
	int64_t t = tick_of(wh, at_ms);
	if (t <= wh->done)
		t = wh->done + 1;
	return (uint32_t)(t % WHEEL_SLOTS);
}

/* wheel_set - (re)arm or disarm entry i. */
void wheel_set(struct wheel *wh, uint32_t i, int64_t at_ms)
{
	struct wheel_node *x = &wh->node[i];
	if (x->at != 0)
		unlink_node(wh, i);
	x->at = at_ms;
	if (at_ms == 0)
		return;
	uint32_t s = slot_of(wh, at_ms);
	x->slot = s;
	x->prev = WHEEL_NONE;
	x->next = wh->head[s];
	if (x->next != WHEEL_NONE)
		wh->node[x->next].prev = i;
	wh->head[s] = i;
}

/* wheel_expire - visit the slots from the last visited tick to now's, collecting due entries. */
uint32_t wheel_expire(struct wheel *wh, int64_t now_ms, uint32_t *out, uint32_t max)
{
	uint32_t k = 0;
	int64_t now_t = now_ms / wh->tick;
	while (wh->done < now_t) {
		uint32_t s = (uint32_t)((wh->done + 1) % WHEEL_SLOTS);
		for (uint32_t i = wh->head[s], nx; i != WHEEL_NONE; i = nx) {
			nx = wh->node[i].next;
			if (wh->node[i].at > now_ms)
				continue; /* a later turn */
			if (k == max)
				return k; /* this slot again on the next call */
			unlink_node(wh, i);
			wh->node[i].at = 0;
			out[k++] = i;
		}
		wh->done++;
	}
	return k;
}
