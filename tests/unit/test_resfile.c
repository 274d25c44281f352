/* test_resfile.c - the results buffers: order of writes, short writes, errors, and a
 * write whose outcome is lost (the ring failed) written again by the drain. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "resfile.h"

static char path[] = "/tmp/test_resfile.XXXXXX";
static int fd = -1;
static struct resfile rf;

/* setup - a fresh writer on an empty temporary file. */
static void setup(void)
{
	strcpy(path, "/tmp/test_resfile.XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(resfile_init(&rf, fd), 0);
}

/* teardown - free the buffers, remove the file. */
static void teardown(void)
{
	resfile_free(&rf);
	close(fd);
	unlink(path);
}

/* add - one line into the buffers at now_ms. */
static void add(const char *line, int64_t now_ms)
{
	size_t n = strlen(line);
	memcpy(resfile_space(&rf, n), line, n);
	resfile_commit(&rf, n, now_ms);
}

/* contents - the file as a string (static buffer). */
static const char *contents(void)
{
	static char buf[1 << 16];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	cr_assert_geq(n, 0);
	buf[n] = '\0';
	return buf;
}

/* write_next - start the next write and complete it at once, as the ring would. */
static bool write_next(bool partial, size_t cut)
{
	const char *p;
	size_t len;
	if (!resfile_next(&rf, partial, &p, &len))
		return false;
	size_t n = cut && cut < len ? cut : len;
	cr_assert_eq(write(fd, p, n), (ssize_t)n);
	resfile_done(&rf, (long)n);
	return true;
}

TestSuite(resfile, .init = setup, .fini = teardown);

Test(resfile, partial_buffer_is_due_by_size_or_age)
{
	add("a\n", 100);
	cr_assert_not(resfile_due(&rf, 100 + RES_FLUSH_MS - 1));
	cr_assert(resfile_due(&rf, 100 + RES_FLUSH_MS));
	cr_assert(write_next(true, 0));
	cr_assert(resfile_idle(&rf));
	cr_assert_str_eq(contents(), "a\n");
}

Test(resfile, a_short_write_is_finished_synchronously)
{
	add("first line\n", 1);
	add("second line\n", 1);
	cr_assert(write_next(true, 4));
	cr_assert_str_eq(contents(), "first line\nsecond line\n");
	cr_assert_eq(rf.error, 0);
}

Test(resfile, a_write_with_unknown_outcome_is_written_again_first)
{
	add("1\n", 1);
	const char *p;
	size_t len;
	cr_assert(resfile_next(&rf, true, &p, &len)); /* in flight; the ring then fails */
	add("2\n", 2);
	resfile_requeue_inflight(&rf);
	cr_assert_eq(rf.inflight, -1);
	cr_assert_eq(resfile_drain(&rf), 0);
	cr_assert_str_eq(contents(), "1\n2\n", "the lost write first, then the rest, in order");
	resfile_requeue_inflight(&rf); /* nothing in flight: nothing to do */
	cr_assert(resfile_idle(&rf));
}

Test(resfile, a_failed_write_is_remembered)
{
	int full = open("/dev/full", O_WRONLY);
	cr_assert_geq(full, 0);
	struct resfile r2;
	cr_assert_eq(resfile_init(&r2, full), 0);
	memcpy(resfile_space(&r2, 2), "x\n", 2);
	resfile_commit(&r2, 2, 1);
	cr_assert_eq(resfile_drain(&r2), -1);
	cr_assert_neq(r2.error, 0);
	resfile_free(&r2);
	close(full);
}
