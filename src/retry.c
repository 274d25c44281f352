/* retry.c - deferred recipients between attempts: bounded table, min-heap by due time. */
#include "retry.h"
#include <stdlib.h>
#include <string.h>

/* ensure - allocate the table on first use (most runs never defer anything). */
static bool ensure(struct retry *t)
{
	if (t->e)
		return true;
	t->e = malloc((size_t)RETRY_CAP * sizeof *t->e);
	t->heap = malloc((size_t)RETRY_CAP * sizeof *t->heap);
	if (!t->e || !t->heap) {
		free(t->e);
		free(t->heap);
		t->e = NULL;
		t->heap = NULL;
		return false;
	}
	return true;
}

/* retry_new - take a free entry for r. */
uint32_t retry_new(struct retry *t, const struct rcpt *r, int64_t now_ms)
{
	uint32_t id;
	if (!ensure(t)) {
		t->overflow++;
		return 0;
	}
	if (t->free) {
		id = t->free;
		t->free = t->e[id - 1].next;
	} else if (t->fresh < RETRY_CAP) {
		id = ++t->fresh;
	} else {
		t->overflow++;
		return 0;
	}
	struct retry_entry *e = &t->e[id - 1];
	memset(e, 0, offsetof(struct retry_entry, text));
	e->r = *r;
	e->r.retry = id;
	e->first_ms = now_ms;
	e->ai = -1;
	t->used++;
	return id;
}

/* retry_get - entry of id. */
struct retry_entry *retry_get(struct retry *t, uint32_t id)
{
	return &t->e[id - 1];
}

/* retry_note - keep the last outcome. */
void retry_note(struct retry_entry *e, int code, const char *enh, const char *text, size_t len,
                const void *dest, int ai, uint32_t gen)
{
	e->code = (int16_t)code;
	size_t n = enh ? strnlen(enh, sizeof e->enh - 1) : 0;
	memcpy(e->enh, enh ? enh : "", n);
	e->enh[n] = '\0';
	if (len > RETRY_MAX_TEXT)
		len = RETRY_MAX_TEXT;
	memcpy(e->text, text, len);
	e->text_len = (uint16_t)len;
	e->dest = dest;
	e->ai = ai;
	e->gen = gen;
}

/* due_of - heap key. */
static int64_t due_of(const struct retry *t, uint32_t slot)
{
	return t->e[t->heap[slot] - 1].due_ms;
}

/* swap - exchange two heap slots. */
static void swap(struct retry *t, uint32_t a, uint32_t b)
{
	uint32_t x = t->heap[a];
	t->heap[a] = t->heap[b];
	t->heap[b] = x;
}

/* retry_wait - insert into the heap (sift up). */
void retry_wait(struct retry *t, uint32_t id, int64_t due_ms)
{
	t->e[id - 1].due_ms = due_ms;
	uint32_t i = t->nheap++;
	t->heap[i] = id;
	while (i > 0 && due_of(t, (i - 1) / 2) > due_of(t, i)) {
		swap(t, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

/* retry_due - pop the earliest entry if due (sift down). */
uint32_t retry_due(struct retry *t, int64_t now_ms)
{
	if (t->nheap == 0 || due_of(t, 0) > now_ms)
		return 0;
	uint32_t id = t->heap[0];
	t->heap[0] = t->heap[--t->nheap];
	for (uint32_t i = 0;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < t->nheap && due_of(t, l) < due_of(t, m))
			m = l;
		if (r < t->nheap && due_of(t, r) < due_of(t, m))
			m = r;
		if (m == i)
			break;
		swap(t, i, m);
		i = m;
	}
	return id;
}

/* retry_next_due - earliest due time. */
int64_t retry_next_due(const struct retry *t)
{
	return t->nheap ? due_of(t, 0) : INT64_MAX;
}

/* retry_release - back to the free list. */
void retry_release(struct retry *t, uint32_t id)
{
	t->e[id - 1].next = t->free;
	t->free = id;
	t->used--;
}

/* retry_backoff - exponential backoff with +-25% jitter. */
int64_t retry_backoff(int64_t initial_ms, unsigned attempts, uint32_t rnd)
{
	unsigned shift = attempts > 0 ? attempts - 1 : 0;
	if (shift > RETRY_MAX_SHIFT)
		shift = RETRY_MAX_SHIFT;
	double d = (double)initial_ms * (double)(1u << shift);
	d *= 0.75 + 0.5 * ((double)rnd / 4294967296.0);
	if (d > 86400000.0)
		d = 86400000.0;
	return d < 1 ? 1 : (int64_t)d;
}

/* retry_free - release memory. */
void retry_free(struct retry *t)
{
	free(t->e);
	free(t->heap);
	memset(t, 0, sizeof *t);
}
