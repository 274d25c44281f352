/* batch.h - how many replies an engine thread waits for before it wakes up.
 * When a server answers fast, handling its replies a few at a time saves a
 * sleep and a wake-up per reply, and the server the cost of waking us. The
 * thread measures the reply rate and waits for about as many replies as arrive
 * in one window, never for more than half of the sessions waiting, and never
 * longer than the window. Pure: the engine feeds it counts and times. */
#ifndef VOLLEY_BATCH_H
#define VOLLEY_BATCH_H
#include <stdint.h>

#define BATCH_EST_US 4000u        /* the rate is measured over at least this many µs */
#define BATCH_MAX_WINDOW_MS 100u  /* the longest window the option accepts */
#define BATCH_MIN 16u             /* smaller batches do not pay for the wait's timer */

/* The estimator. */
struct batch {
	uint32_t window_us;           /* the longest a reply may wait to be handled; 0 = off */
	int64_t t0;                   /* start of the measuring window, µs */
	uint32_t seen;                /* replies since t0 */
	uint32_t per_window;          /* replies per window_us in the last measurement */
};

/* batch_init - window_us 0 turns batching off; times are monotonic µs. */
void batch_init(struct batch *b, uint32_t window_us, int64_t now_us);

/* batch_note - replies handled since the last call, at now_us. */
void batch_note(struct batch *b, uint32_t replies, int64_t now_us);

/* batch_want - how many replies to wait for with `waiting` sessions awaiting
 * one: 1 means no batching (wake up for the first, no timer). */
uint32_t batch_want(const struct batch *b, uint32_t waiting);

#endif
