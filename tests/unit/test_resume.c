/* test_resume.c - reading results files for --resume: final lines, cut lines, tags. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include "resume.h"

#define L(rcpt, line, st) "{\"rcpt\":\"" rcpt "\",\"line\":" #line ",\"status\":\"" st \
	"\",\"code\":250,\"reply\":\"ok\",\"attempts\":1,\"ms\":3}\n"

/* scan - scan a string. */
static struct resume scan(const char *text)
{
	struct resume r = {0};
	char err[128];
	cr_assert_eq(resume_scan(&r, text, strlen(text), err, sizeof err), 0);
	return r;
}

Test(resume, final_statuses_are_marked_deferred_is_not)
{
	struct resume r = scan(L("a@x.org", 5, "delivered") L("b@x.org", 6, "bounced")
	                       L("c@x.org", 7, "failed") L("d@x.org", 8, "deferred"));
	cr_assert(resume_final(&r, 5) && resume_final(&r, 6) && resume_final(&r, 7));
	cr_assert(!resume_final(&r, 8));
	cr_assert(!resume_final(&r, 4));
	cr_assert(!resume_final(&r, 1u << 30), "beyond the table");
	cr_assert_eq(r.final, 3);
	cr_assert_eq(r.nonfinal, 1);
	cr_assert(resume_matches(&r, 5, "a@x.org", 7));
	cr_assert(!resume_matches(&r, 5, "b@x.org", 7));
	cr_assert(!r.torn);
	resume_free(&r);
}

Test(resume, a_cut_last_line_is_not_read)
{
	const char *text = L("a@x.org", 5, "delivered") "{\"rcpt\":\"b@x.org\",\"line\":6,\"sta";
	struct resume r = scan(text);
	cr_assert(r.torn);
	cr_assert(resume_final(&r, 5));
	cr_assert(!resume_final(&r, 6));
	resume_free(&r);
}

Test(resume, a_cut_line_in_the_middle_is_counted_as_bad)
{
	struct resume r = scan(L("a@x.org", 5, "delivered") "{\"rcpt\":\"b@x.org\",\"line\":6,\"sta\n"
	                       L("c@x.org", 7, "delivered") "\n" "garbage\n");
	cr_assert_eq(r.bad, 2);
	cr_assert_eq(r.first_bad, 2);
	cr_assert_eq(r.final, 2);
	cr_assert(!resume_final(&r, 6));
	resume_free(&r);
}

Test(resume, escaped_recipients_cannot_be_checked_but_count)
{
	struct resume r = scan(L("q\\\"x@y.org", 9, "delivered"));
	cr_assert(resume_final(&r, 9));
	cr_assert(resume_matches(&r, 9, "anything", 8));
	resume_free(&r);
}

Test(resume, a_second_final_result_is_counted)
{
	struct resume r = scan(L("a@x.org", 5, "deferred") L("a@x.org", 5, "delivered")
	                       L("a@x.org", 5, "delivered"));
	cr_assert_eq(r.twice, 1);
	cr_assert_eq(r.final, 2);
	resume_free(&r);
}

Test(resume, key_names_inside_strings_do_not_confuse)
{
	struct resume r = scan("{\"rcpt\":\"\\\"line\\\":3@x.org\",\"line\":12,\"status\":\"failed\"}\n");
	cr_assert(resume_final(&r, 12));
	cr_assert(!resume_final(&r, 3));
	resume_free(&r);
}

Test(resume, tags_avoid_the_reserved_values)
{
	for (unsigned i = 0; i < 100000; i++) {
		char s[16];
		int n = snprintf(s, sizeof s, "u%u@x", i);
		uint16_t t = resume_tag(s, (size_t)n);
		cr_assert(t != 0 && t != RESUME_TAG_ANY);
	}
}

Test(resume, lines_past_the_job_are_counted_not_stored)
{
	struct resume r = {0};
	char err[128];
	const char *text = L("a@x.org", 5, "delivered") L("b@x.org", 4000000000, "delivered");
	r.max_line = 100;
	cr_assert_eq(resume_scan(&r, text, strlen(text), err, sizeof err), 0);
	cr_assert_eq(r.beyond, 1);
	cr_assert(resume_final(&r, 5));
	cr_assert_lt(r.cap, 1000000, "no table sized by a hostile line number");
	resume_free(&r);
}

Test(resume, status_must_follow_the_line_number)
{
	struct resume r = scan("{\"rcpt\":\"a@x.org\",\"line\":5,\"code\":1,\"status\":\"delivered\"}\n");
	cr_assert(!resume_final(&r, 5));
	cr_assert_eq(r.bad, 1);
	resume_free(&r);
}
