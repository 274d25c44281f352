/* test_retry.c - the retry table: ids, the due-time heap, backoff with jitter. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include "retry.h"

/* rc - a recipient with a line number. */
static struct rcpt rc(uint64_t line)
{
	return (struct rcpt){ .raw = "a@b", .raw_len = 3, .line = line };
}

Test(retry, heap_pops_in_due_order_only_when_due)
{
	struct retry t = {0};
	int64_t due[] = { 500, 100, 300, 100, 900, 200 };
	for (unsigned i = 0; i < 6; i++) {
		struct rcpt r = rc(i + 1);
		uint32_t id = retry_new(&t, &r, 0);
		cr_assert_eq(id, i + 1);
		cr_assert_eq(retry_get(&t, id)->r.retry, id);
		retry_wait(&t, id, due[i]);
	}
	cr_assert_eq(retry_next_due(&t), 100);
	cr_assert_eq(retry_due(&t, 99), 0);
	int64_t last = 0;
	unsigned n = 0;
	uint32_t id;
	while ((id = retry_due(&t, 1000)) != 0) {
		cr_assert_geq(retry_get(&t, id)->due_ms, last);
		last = retry_get(&t, id)->due_ms;
		retry_release(&t, id);
		n++;
	}
	cr_assert_eq(n, 6);
	cr_assert_eq(t.used, 0);
	cr_assert_eq(retry_next_due(&t), INT64_MAX);
	retry_free(&t);
}

Test(retry, ids_are_reused_and_the_table_is_bounded)
{
	struct retry t = {0};
	struct rcpt r = rc(1);
	uint32_t a = retry_new(&t, &r, 0), b = retry_new(&t, &r, 0);
	retry_release(&t, a);
	cr_assert_eq(retry_new(&t, &r, 0), a);
	for (uint32_t i = 2; i < RETRY_CAP; i++)
		cr_assert_neq(retry_new(&t, &r, 0), 0);
	cr_assert_eq(retry_new(&t, &r, 0), 0, "full table refuses");
	cr_assert_eq(t.overflow, 1);
	(void)b;
	retry_free(&t);
}

Test(retry, note_keeps_a_cut_copy_of_the_last_reply)
{
	struct retry t = {0};
	struct rcpt r = rc(7);
	struct retry_entry *e = retry_get(&t, retry_new(&t, &r, 5));
	char big[RETRY_MAX_TEXT + 50];
	memset(big, 'x', sizeof big);
	retry_note(e, 451, "4.3.0-too-long-for-the-field", big, sizeof big, NULL, 2, 7);
	cr_assert_eq(e->code, 451);
	cr_assert_eq(e->text_len, RETRY_MAX_TEXT);
	cr_assert_eq(strlen(e->enh), sizeof e->enh - 1);
	cr_assert_eq(e->ai, 2);
	cr_assert_eq(e->gen, 7);
	cr_assert_eq(e->first_ms, 5);
	retry_free(&t);
}

Test(retry, backoff_doubles_with_jitter_within_25_percent)
{
	cr_assert_eq(retry_backoff(1000, 1, 0), 750);
	cr_assert_eq(retry_backoff(1000, 1, 1u << 31), 1000);
	cr_assert_eq(retry_backoff(1000, 3, 1u << 31), 4000);
	cr_assert_leq(retry_backoff(1000, 1, UINT32_MAX), 1250);
	cr_assert_eq(retry_backoff(60000, 100, 1u << 31), 86400000, "capped at a day");
	cr_assert_eq(retry_backoff(1, 1, 0), 1, "never zero");
}
