/* wheel.h - a hashed timer wheel over numbered entries (sessions): O(1) to arm,
 * re-arm or disarm, and each tick visits only the entries of the slots it passes. */
#ifndef VOLLEY_WHEEL_H
#define VOLLEY_WHEEL_H
#include <stdint.h>

#define WHEEL_SLOTS 1024u          /* slots; with 100 ms ticks one turn is 102.4 s */
#define WHEEL_NONE  UINT32_MAX     /* no entry */

/* One timer: an entry is armed while at != 0. */
struct wheel_node {
	uint32_t next, prev;           /* slot list links */
	uint32_t slot;                 /* the slot it is in, while armed */
	int64_t at;                    /* when it fires (ms), 0 = not armed */
};

/* The wheel. Entries far in the future sit in their slot and are passed over
 * until the turn in which they are due. */
struct wheel {
	uint32_t head[WHEEL_SLOTS];    /* first entry of each slot */
	struct wheel_node *node;       /* one per entry, owned by the caller */
	int64_t tick;                  /* slot width, ms */
	int64_t done;                  /* every slot up to this tick number has been visited */
};

/* wheel_init - n entries, none armed; ticks of tick_ms starting at now_ms. */
void wheel_init(struct wheel *wh, struct wheel_node *nodes, uint32_t n, int64_t tick_ms,
                int64_t now_ms);

/* wheel_set - arm entry i to fire at at_ms (0: disarm); replaces any earlier time. */
void wheel_set(struct wheel *wh, uint32_t i, int64_t at_ms);

/* wheel_expire - disarm and return up to max entries due at now_ms into out (an entry
 * never fires before its time, and at most one tick after it); call again until it
 * returns less than max. */
uint32_t wheel_expire(struct wheel *wh, int64_t now_ms, uint32_t *out, uint32_t max);

#endif
