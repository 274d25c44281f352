/* retry.h - a thread's deferred recipients waiting for their next attempt: a bounded
 * table of entries and a min-heap on the due time. Pure: no clock, no I/O. */
#ifndef VOLLEY_RETRY_H
#define VOLLEY_RETRY_H
#include <stdbool.h>
#include <stdint.h>
#include "job.h"

#define RETRY_CAP      131072u  /* recipients a thread keeps for retrying at once */
#define RETRY_MAX_TEXT 200u     /* octets of the last reply kept per recipient */
#define RETRY_MAX_SHIFT 16u     /* backoff doubles at most this many times */

/* One recipient between attempts (and while being re-attempted). */
struct retry_entry {
	struct rcpt r;               /* the recipient (its fields point into the job mapping) */
	int64_t first_ms;            /* when its first attempt ended */
	int64_t due_ms;              /* when the next attempt may start */
	const void *dest;            /* destination of the last attempt, or NULL */
	int32_t ai;                  /* address index of the last attempt, -1 if none */
	uint32_t gen;                /* the destination's address generation then (ai is valid in it) */
	uint16_t attempts;           /* attempts made so far */
	int16_t code;                /* last reply code, 0 if local */
	char enh[12];                /* last enhanced code, "" if none */
	uint16_t text_len;           /* octets in text */
	char text[RETRY_MAX_TEXT];   /* last reply or local reason (cut) */
	uint32_t next;               /* free list link */
};

/* The table: entries are named by index + 1 (0 means none, as in rcpt.retry). */
struct retry {
	struct retry_entry *e;       /* RETRY_CAP entries, allocated on first use */
	uint32_t *heap;              /* indexes + 1 waiting, ordered by due_ms */
	uint32_t nheap;              /* entries in heap */
	uint32_t free;               /* head of the free list (index + 1), 0 when none */
	uint32_t fresh;              /* entries never used yet start here */
	uint32_t used;               /* entries taken (waiting or being re-attempted) */
	uint64_t overflow;           /* recipients that found the table full */
};

/* retry_new - take an entry for r; returns its id (index + 1), or 0 when full or out of memory. */
uint32_t retry_new(struct retry *t, const struct rcpt *r, int64_t now_ms);

/* retry_get - the entry of id. */
struct retry_entry *retry_get(struct retry *t, uint32_t id);

/* retry_note - remember the last outcome of an entry (text is cut to RETRY_MAX_TEXT). */
void retry_note(struct retry_entry *e, int code, const char *enh, const char *text, size_t len,
                const void *dest, int ai, uint32_t gen);

/* retry_wait - put id in the heap, due at due_ms. */
void retry_wait(struct retry *t, uint32_t id, int64_t due_ms);

/* retry_due - pop the id of an entry due at now_ms, or 0 if none is due. */
uint32_t retry_due(struct retry *t, int64_t now_ms);

/* retry_next_due - the earliest due time waiting, or INT64_MAX. */
int64_t retry_next_due(const struct retry *t);

/* retry_release - the entry's recipient has its final result: free it. */
void retry_release(struct retry *t, uint32_t id);

/* retry_backoff - delay before attempt n+1 after n attempts: initial * 2^(n-1),
 * times a jitter factor from 0.75 to 1.25 given as rnd in [0, 2^32). */
int64_t retry_backoff(int64_t initial_ms, unsigned attempts, uint32_t rnd);

/* retry_free - release the table. */
void retry_free(struct retry *t);

#endif
