/* test_job.c - unit tests for job.c: header parsing, CSV records, slices. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "job.h"

#define EXAMPLE \
	"#volley-job 1\n" \
	"from: news@example.com\n" \
	"message: spring.eml\n" \
	"fields: name,code\n" \
	"\n" \
	"alice@example.org,Alice,A1\n" \
	"\"bob@example.net\",\"Bob, Jr.\",B2\n"

#define HDR "#volley-job 1\nfrom: news@example.com\nmessage: m.eml\nfields: name,code\n\n"

static char tmpdir[64];          /* per-test directory under /tmp */
static struct job J;             /* the job under test (large: keep off the stack) */
static char err[8192];           /* job_open's message */

/* setup - create the per-test temporary directory. */
static void setup(void)
{
	strcpy(tmpdir, "/tmp/volley-test-job-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

/* teardown - close the job and remove the directory and everything in it. */
static void teardown(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[512];

	job_close(&J);
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
		if (rmdir(p) != 0)
			unlink(p);
	}
	if (d != NULL)
		closedir(d);
	rmdir(tmpdir);
}

TestSuite(job, .init = setup, .fini = teardown);

/* write_n - write n octets of s to tmpdir/name; returns the path (static). */
static const char *write_n(const char *name, const char *s, size_t n)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(s, 1, n, f), n);
	cr_assert_eq(fclose(f), 0);
	return path;
}

/* write_job - write the NUL-terminated s to tmpdir/name. */
static const char *write_job(const char *name, const char *s)
{
	return write_n(name, s, strlen(s));
}

/* open_ok - write s as a job and open it; fails the test on error. */
static void open_ok(const char *s)
{
	const char *path = write_job("t.job", s);

	cr_assert_eq(job_open(&J, path, err, sizeof err), 0, "job_open: %s", err);
}

/* open_bad_n - write s[0..n) as a job; assert job_open fails with "path:want". */
static void open_bad_n(const char *s, size_t n, const char *want)
{
	const char *path = write_n("bad.job", s, n);
	char expect[1024];

	snprintf(expect, sizeof expect, "%s:%s", path, want);
	cr_assert_eq(job_open(&J, path, err, sizeof err), -1, "accepted, want %s", want);
	cr_assert_str_eq(err, expect);
	cr_assert_null(J.map, "a failed job_open leaves nothing mapped");
}

/* open_bad - open_bad_n for a NUL-terminated job. */
static void open_bad(const char *s, const char *want)
{
	open_bad_n(s, strlen(s), want);
}

/* all_cursor - a cursor over the whole recipient section. */
static struct job_cursor all_cursor(void)
{
	struct job_cursor c;

	job_slices(&J, 1, &c);
	return c;
}

/* next_ok - assert the next record is good, at line, with decoded address want. */
static void next_ok(struct job_cursor *c, struct rcpt *r, uint64_t line, const char *want)
{
	const char *why = NULL;
	char a[ADDR_MAX_MAILBOX + 1];
	int rc = job_next(&J, c, r, &why);

	cr_assert_eq(rc, 1, "line %llu: rc %d (%s), want %s", (unsigned long long)line, rc,
	             why ? why : "", want);
	cr_assert_eq(r->line, line);
	cr_assert_eq(rcpt_addr(r, a), strlen(want));
	cr_assert_str_eq(a, want);
	cr_assert_eq(r->addr_len, strlen(want));
}

/* next_bad - assert the next record is bad, at line, for reason want. */
static void next_bad(struct job_cursor *c, struct rcpt *r, uint64_t line, const char *want)
{
	const char *why = NULL;
	int rc = job_next(&J, c, r, &why);

	cr_assert_eq(rc, -1, "line %llu: rc %d, want '%s'", (unsigned long long)line, rc, want);
	cr_assert_eq(r->line, line);
	cr_assert_str_eq(why, want);
}

/* next_end - assert the cursor is exhausted (and stays so). */
static void next_end(struct job_cursor *c)
{
	struct rcpt r;
	const char *why = NULL;

	cr_assert_eq(job_next(&J, c, &r, &why), 0);
	cr_assert_eq(job_next(&J, c, &r, &why), 0);
}

/* parse - job_parse_record on the NUL-terminated s with J's fields. */
static int parse(const char *s, struct rcpt *r, const char **why)
{
	*why = NULL;
	return job_parse_record(&J, s, strlen(s), 42, r, why);
}

/* parse_bad_n - assert s[0..n) is a bad record for want, with raw equal to raw_want. */
static void parse_bad_n(const char *s, size_t n, const char *want, const char *raw_want)
{
	struct rcpt r;
	const char *why = NULL;

	cr_assert_eq(job_parse_record(&J, s, n, 42, &r, &why), -1, "accepted, want %s", want);
	cr_assert_str_eq(why, want);
	cr_assert_eq(r.line, 42u);
	cr_assert_eq(r.rec, s);
	cr_assert_eq(r.rec_len, n);
	cr_assert_eq(r.raw_len, strlen(raw_want), "raw '%.*s', want '%s'", (int)r.raw_len, r.raw,
	             raw_want);
	cr_assert_eq(memcmp(r.raw, raw_want, r.raw_len), 0);
}

/* parse_bad - parse_bad_n for a NUL-terminated record. */
static void parse_bad(const char *s, const char *want, const char *raw_want)
{
	parse_bad_n(s, strlen(s), want, raw_want);
}

/* use_fields - set J up for job_parse_record with n extra columns. */
static void use_fields(unsigned n)
{
	memset(&J, 0, sizeof J);
	J.nfields = n;
}

Test(job, example_parses)
{
	struct job_cursor c;
	struct rcpt r;
	char want[600];

	open_ok(EXAMPLE);
	cr_assert_eq(J.version, 1);
	cr_assert_str_eq(J.from, "news@example.com");
	cr_assert_eq(J.from_flags, 0u);
	snprintf(want, sizeof want, "%s/spring.eml", tmpdir);
	cr_assert_str_eq(J.message_path, want);
	cr_assert_eq(J.nfields, 2u);
	cr_assert_str_eq(J.field_names[0], "name");
	cr_assert_str_eq(J.field_names[1], "code");
	cr_assert_eq(J.body_line, 6u);
	cr_assert_eq(J.body_off, strlen(HDR) - strlen("m.eml") + strlen("spring.eml"));
	cr_assert_eq(J.size, strlen(EXAMPLE));

	c = all_cursor();
	next_ok(&c, &r, 6, "alice@example.org");
	cr_assert_eq(r.quoted, 0);
	cr_assert_eq(r.raw_len, 17u);
	cr_assert_eq(memcmp(r.raw, "alice@example.org", 17), 0);
	cr_assert_eq(r.rec_len, strlen("alice@example.org,Alice,A1"));
	cr_assert_eq(memcmp(r.rec, "alice@example.org,Alice,A1", r.rec_len), 0);
	next_ok(&c, &r, 7, "bob@example.net");
	cr_assert_eq(r.quoted, 1);
	cr_assert_eq(r.raw_len, 17u);
	cr_assert_eq(memcmp(r.raw, "\"bob@example.net\"", 17), 0);
	cr_assert_eq(r.rec_len, strlen("\"bob@example.net\",\"Bob, Jr.\",B2"));
	next_end(&c);
}

Test(job, example_with_crlf_endings)
{
	struct job_cursor c;
	struct rcpt r;

	open_ok("#volley-job 1\r\nfrom: news@example.com\r\nmessage: spring.eml\r\n"
	        "fields: name,code\r\n\r\nalice@example.org,Alice,A1\r\n"
	        "\"bob@example.net\",\"Bob, Jr.\",B2\r\n");
	cr_assert_str_eq(J.from, "news@example.com");
	cr_assert_eq(J.nfields, 2u);
	cr_assert_str_eq(J.field_names[1], "code");
	cr_assert_eq(J.body_line, 6u);
	c = all_cursor();
	next_ok(&c, &r, 6, "alice@example.org");
	cr_assert_eq(r.rec_len, strlen("alice@example.org,Alice,A1"), "CR is not part of the record");
	next_ok(&c, &r, 7, "bob@example.net");
	cr_assert_eq(r.rec[r.rec_len - 1], '2');
	next_end(&c);
}

Test(job, last_line_without_newline)
{
	struct job_cursor c;
	struct rcpt r;

	open_ok(HDR "a@example.com,A,1\nb@example.com,B,2");
	c = all_cursor();
	next_ok(&c, &r, 6, "a@example.com");
	next_ok(&c, &r, 7, "b@example.com");
	cr_assert_eq(r.rec_len, strlen("b@example.com,B,2"));
	next_end(&c);

	job_close(&J);
	open_ok(HDR "a@example.com,A,1\r\nb@example.com,B,2\r");
	c = all_cursor();
	next_ok(&c, &r, 6, "a@example.com");
	next_ok(&c, &r, 7, "b@example.com");
	cr_assert_eq(r.rec_len, strlen("b@example.com,B,2"));
	next_end(&c);
}

Test(job, blank_lines_skipped)
{
	struct job_cursor c;
	struct rcpt r;

	open_ok(HDR "\n\r\na@example.com,A,1\n\n\nb@example.com,B,2\r\n\r\n\n\r");
	c = all_cursor();
	next_ok(&c, &r, 8, "a@example.com");
	next_ok(&c, &r, 11, "b@example.com");
	next_end(&c);
}

Test(job, spaces_only_line_is_not_blank)
{
	struct job_cursor c;
	struct rcpt r;

	open_ok(HDR "   \nb@example.com,B,2\n");
	c = all_cursor();
	next_bad(&c, &r, 6, "expected 3 columns (address + fields), found 1");
	next_ok(&c, &r, 7, "b@example.com");
	next_end(&c);
	job_close(&J);
	open_ok("#volley-job 1\nfrom: a@b.c\nmessage: m\n\n \nb@example.com\n");
	c = all_cursor();
	next_bad(&c, &r, 5, "empty address");
	cr_assert_eq(r.raw_len, 0u);
	next_ok(&c, &r, 6, "b@example.com");
	next_end(&c);
}

Test(job, zero_recipients_is_valid)
{
	struct job_cursor c[3];

	open_ok("#volley-job 1\nfrom: a@example.com\nmessage: m\n\n");
	cr_assert_eq(J.body_off, J.size);
	cr_assert_eq(J.body_line, 5u);
	cr_assert_eq(J.nfields, 0u);
	job_slices(&J, 3, c);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(c[i].p, J.map + J.size);
		cr_assert_eq(c[i].end, J.map + J.size);
		next_end(&c[i]);
	}
	job_close(&J);
	open_ok("#volley-job 1\nfrom: a@example.com\nmessage: m\n\n\n\r\n");
	c[0] = all_cursor();
	next_end(&c[0]);
	job_close(&J);
	open_ok("#volley-job 1\nfrom: a@example.com\nmessage: m\n\r");
	cr_assert_eq(J.body_off, J.size, "a final CR-only line ends the header");
}

Test(job, header_keys_case_and_spaces)
{
	char want[600];

	open_ok("#volley-job 1\nFROM:news@example.com\n  Message :\t x y.eml  \n"
	        "FiElDs:  name , code ,x-1_Z\n\n");
	cr_assert_str_eq(J.from, "news@example.com");
	snprintf(want, sizeof want, "%s/x y.eml", tmpdir);
	cr_assert_str_eq(J.message_path, want);
	cr_assert_eq(J.nfields, 3u);
	cr_assert_str_eq(J.field_names[0], "name");
	cr_assert_str_eq(J.field_names[1], "code");
	cr_assert_str_eq(J.field_names[2], "x-1_Z");
}

Test(job, from_forms)
{
	open_ok("#volley-job 1\nfrom: <news@example.com>\nmessage: m\n\n");
	cr_assert_str_eq(J.from, "news@example.com");
	job_close(&J);
	open_ok("#volley-job 1\nfrom: <>\nmessage: m\n\n");
	cr_assert_str_eq(J.from, "");
	cr_assert_eq(J.from_flags, 0u);
	job_close(&J);
	open_ok("#volley-job 1\nfrom: josé@exämple.com\nmessage: m\n\n");
	cr_assert_str_eq(J.from, "josé@exämple.com");
	cr_assert_eq(J.from_flags, (unsigned)ADDR_UTF8);
	job_close(&J);
	open_ok("#volley-job 1\nfrom: \"a b\"@[192.0.2.1]\nmessage: m\n\n");
	cr_assert_str_eq(J.from, "\"a b\"@[192.0.2.1]");
}

Test(job, message_path_resolution)
{
	char cwd[512];

	open_ok("#volley-job 1\nfrom: a@example.com\nmessage: /srv/mail/x.eml\n\n");
	cr_assert_str_eq(J.message_path, "/srv/mail/x.eml");
	job_close(&J);
	open_ok("#volley-job 1\nfrom: a@example.com\nmessage: sub/x.eml\n\n");
	snprintf(cwd, sizeof cwd, "%s/sub/x.eml", tmpdir);
	cr_assert_str_eq(J.message_path, cwd);
	job_close(&J);

	/* A job path without a directory keeps the message path relative, as written. */
	cr_assert_not_null(getcwd(cwd, sizeof cwd));
	cr_assert_eq(chdir(tmpdir), 0);
	cr_assert_eq(job_open(&J, "t.job", err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(J.message_path, "sub/x.eml");
	cr_assert_str_eq(J.path, "t.job");
	cr_assert_eq(chdir(cwd), 0);
}

Test(job, file_level_errors)
{
	char path[600], expect[700];

	snprintf(path, sizeof path, "%s/missing.job", tmpdir);
	cr_assert_eq(job_open(&J, path, err, sizeof err), -1);
	snprintf(expect, sizeof expect, "%s:0: cannot open job file: No such file or directory",
	         path);
	cr_assert_str_eq(err, expect);

	snprintf(path, sizeof path, "%s/dir.job", tmpdir);
	cr_assert_eq(mkdir(path, 0700), 0);
	cr_assert_eq(job_open(&J, path, err, sizeof err), -1);
	snprintf(expect, sizeof expect, "%s:0: not a regular file", path);
	cr_assert_str_eq(err, expect);

	open_bad("", "1: empty file (first line must be '#volley-job 1')");
}

Test(job, first_line_errors)
{
	open_bad("#volley-job 2\nfrom: a@b.c\nmessage: m\n\n", "1: unsupported job version 2");
	open_bad("#volley-job 10\n", "1: unsupported job version 10");
	open_bad("#volley-job 0\r\n", "1: unsupported job version 0");
	open_bad("hello\n", "1: not a volley job (first line must be '#volley-job 1')");
	open_bad("#volley-job 1 \n\n", "1: not a volley job (first line must be '#volley-job 1')");
	open_bad("#volley-job  1\n\n", "1: not a volley job (first line must be '#volley-job 1')");
	open_bad("#Volley-job 1\n\n", "1: not a volley job (first line must be '#volley-job 1')");
	open_bad("#volley-job\n\n", "1: not a volley job (first line must be '#volley-job 1')");
	open_bad("#volley-job 1x\n\n", "1: not a volley job (first line must be '#volley-job 1')");
	open_bad("a@example.com,A,1\n", "1: not a volley job (first line must be '#volley-job 1')");
	open_bad("\xEF\xBB\xBF#volley-job 1\n\n",
	         "1: byte order mark before '#volley-job 1' (save without BOM)");
	open_bad_n("\0\0\0\0", 4, "1: not a volley job (first line must be '#volley-job 1')");
}

Test(job, key_errors_name_their_line)
{
	open_bad("#volley-job 1\nfrom: a@b.c\nfoo: bar\nmessage: m\n\n",
	         "3: unknown header key 'foo'");
	open_bad("#volley-job 1\nfrom: a@b.c\nmessage: m\nFrom: c@d.e\n\n",
	         "4: duplicate header key 'from'");
	open_bad("#volley-job 1\nfrom: a@b.c\nmessage: m\nfields: a\nfields: b\n\n",
	         "5: duplicate header key 'fields'");
	open_bad("#volley-job 1\nfrom a@b.c\nmessage: m\n\n", "2: missing ':' in header line");
	open_bad("#volley-job 1\n: a@b.c\nmessage: m\n\n", "2: unknown header key ''");
	open_bad("#volley-job 1\nfrom: a@b.c\n   \nmessage: m\n\n",
	         "3: line of only white space (the header ends at an empty line)");
}

Test(job, missing_keys_reported_at_the_empty_line)
{
	open_bad("#volley-job 1\nmessage: m\n\na@b.c\n", "3: missing 'from' in header");
	open_bad("#volley-job 1\nfrom: a@b.c\nfields: x\n\r\n", "4: missing 'message' in header");
	open_bad("#volley-job 1\n\n", "2: missing 'from' in header");
}

Test(job, header_must_end_with_empty_line)
{
	open_bad("#volley-job 1\nfrom: a@b.c\nmessage: m\n", "4: header not ended by an empty line");
	open_bad("#volley-job 1\nfrom: a@b.c\nmessage: m", "4: header not ended by an empty line");
	open_bad("#volley-job 1\n", "2: header not ended by an empty line");
	open_bad("#volley-job 1", "2: header not ended by an empty line");
}

Test(job, header_line_count_limit)
{
	char s[4096], *p = s;

	/* 64 key lines (only the first three are ever valid): the limit is not hit. */
	p += sprintf(p, "#volley-job 1\n");
	for (unsigned i = 0; i < JOB_MAX_HEADER_LINES; i++)
		p += sprintf(p, "x%u: y\n", i);
	strcpy(p, "\n");
	open_bad(s, "2: unknown header key 'x0'");
	/* 65 lines without an empty line: reported at the 65th key line. */
	p += sprintf(p, "x: y\n\n");
	open_bad(s, "66: header longer than 64 lines (no empty line after it?)");
}

Test(job, header_control_and_length)
{
	char s[9000];

	open_bad("#volley-job 1\nfrom: a@b.c\x01\nmessage: m\n\n",
	         "2: control character (0x01) in header line");
	open_bad("#volley-job 1\nfrom: a@b.c\nmess\x7f" "age: m\n\n",
	         "3: control character (0x7F) in header line");
	open_bad("#volley-job 1\nfrom: a@b.c\rx\nmessage: m\n\n",
	         "2: control character (0x0D) in header line");
	open_bad_n("#volley-job 1\nfrom: a@b.c\nmessage: m\0\n\n", 40,
	           "3: control character (0x00) in header line");

	/* Exactly JOB_MAX_LINE octets is fine, one more is not (the value is trimmed). */
	strcpy(s, "#volley-job 1\nfrom:");
	memset(s + 19, ' ', JOB_MAX_LINE - 5 - 5);
	strcpy(s + 14 + JOB_MAX_LINE - 5, "a@b.c\nmessage: m\n\n");
	open_ok(s);
	cr_assert_str_eq(J.from, "a@b.c");
	job_close(&J);
	memset(s + 19, ' ', JOB_MAX_LINE - 5 - 4);
	strcpy(s + 14 + JOB_MAX_LINE - 4, "a@b.c\nmessage: m\n\n");
	open_bad(s, "2: header line longer than 8192 octets");
}

Test(job, from_errors)
{
	open_bad("#volley-job 1\nfrom: news\nmessage: m\n\n",
	         "2: invalid 'from' address: missing '@'");
	open_bad("#volley-job 1\nfrom:\nmessage: m\n\n",
	         "2: empty 'from' (write <> for the null sender)");
	open_bad("#volley-job 1\nfrom: <a@b.c\nmessage: m\n\n",
	         "2: 'from' has '<' without a closing '>'");
	open_bad("#volley-job 1\nfrom: <\nmessage: m\n\n", "2: 'from' has '<' without a closing '>'");
	open_bad("#volley-job 1\nfrom: a\tb@c.d\nmessage: m\n\n",
	         "2: invalid 'from' address: control character in address");
	open_bad("#volley-job 1\nfrom: a@b.c>\nmessage: m\n\n",
	         "2: invalid 'from' address: invalid character in domain");
	open_bad("#volley-job 1\nfrom: < a@b.c>\nmessage: m\n\n",
	         "2: invalid 'from' address: invalid character in local part");
	open_bad("#volley-job 1\nfrom: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@b.c\n"
	         "message: m\n\n",
	         "2: invalid 'from' address: local part longer than 64 octets");
}

Test(job, message_errors)
{
	char s[9000];
	size_t n;

	open_bad("#volley-job 1\nfrom: a@b.c\nmessage:   \n\n", "3: empty 'message'");
	/* The resolved path must fit message_path (4095 octets). */
	n = (size_t)sprintf(s, "#volley-job 1\nfrom: a@b.c\nmessage: ");
	memset(s + n, 'm', 4096 - strlen(tmpdir) - 1);
	strcpy(s + n + 4096 - strlen(tmpdir) - 1, "\n\n");
	open_bad(s, "3: message path longer than 4095 octets");
	memset(s + n, 'm', 4095);
	s[n] = '/';
	strcpy(s + n + 4095, "\n\n");
	open_ok(s);
	cr_assert_eq(strlen(J.message_path), 4095u);
}

Test(job, fields_errors)
{
	char s[8000], *p;

	open_bad("#volley-job 1\nfrom: a@b.c\nmessage: m\nfields: a,b,a\n\n",
	         "4: duplicate field name 'a'");
	open_bad("#volley-job 1\nfrom: a@b.c\nmessage: m\nfields: a,,b\n\n",
	         "4: empty field name in 'fields'");
	open_bad("#volley-job 1\nfrom: a@b.c\nmessage: m\nfields: a,b,\n\n",
	         "4: empty field name in 'fields'");
	open_bad("#volley-job 1\nfrom: a@b.c\nmessage: m\nfields: first name\n\n",
	         "4: invalid field name 'first name' (use A-Z a-z 0-9 _ -)");
	open_bad("#volley-job 1\nfrom: a@b.c\nmessage: m\nfields: a.b\n\n",
	         "4: invalid field name 'a.b' (use A-Z a-z 0-9 _ -)");

	/* Names of 63 octets are fine, 64 are not. */
	p = s + sprintf(s, "#volley-job 1\nfrom: a@b.c\nmessage: m\nfields: x,");
	memset(p, 'n', 63);
	strcpy(p + 63, "\n\n");
	open_ok(s);
	cr_assert_eq(J.nfields, 2u);
	cr_assert_eq(strlen(J.field_names[1]), 63u);
	job_close(&J);
	memset(p, 'n', 64);
	strcpy(p + 64, "\n\n");
	open_bad(s, "4: field name longer than 63 octets");

	/* JOB_MAX_FIELDS names are fine, one more is not. */
	p = s + sprintf(s, "#volley-job 1\nfrom: a@b.c\nmessage: m\nfields: ");
	for (unsigned i = 0; i < JOB_MAX_FIELDS; i++)
		p += sprintf(p, "%sf%u", i ? "," : "", i);
	strcpy(p, "\n\n");
	open_ok(s);
	cr_assert_eq(J.nfields, JOB_MAX_FIELDS);
	cr_assert_str_eq(J.field_names[63], "f63");
	job_close(&J);
	strcpy(p, ",f64\n\n");
	open_bad(s, "4: more than 64 fields");
}

Test(job, empty_fields_value_names_none)
{
	struct job_cursor c;
	struct rcpt r;

	open_ok("#volley-job 1\nfrom: a@b.c\nmessage: m\nfields:\n\nx@example.com\n");
	cr_assert_eq(J.nfields, 0u);
	c = all_cursor();
	next_ok(&c, &r, 6, "x@example.com");
	next_end(&c);
}

Test(job, error_buffer_is_bounded)
{
	char small[16];
	const char *path = write_job("bad.job", "nope\n");

	memset(small, 'Z', sizeof small);
	cr_assert_eq(job_open(&J, path, small, sizeof small), -1);
	cr_assert_eq(strlen(small), sizeof small - 1);
	cr_assert_eq(strncmp(small, path, sizeof small - 1), 0);
	cr_assert_eq(job_open(&J, path, NULL, 0), -1, "a NULL err buffer is allowed");
}

Test(job, record_good_forms)
{
	struct rcpt r;
	const char *why;
	char a[ADDR_MAX_MAILBOX + 1];

	use_fields(2);
	cr_assert_eq(parse("  a@example.com  ,N,C", &r, &why), 1, "%s", why);
	cr_assert_eq(r.raw_len, 13u, "unquoted raw is trimmed");
	cr_assert_eq(memcmp(r.raw, "a@example.com", 13), 0);
	cr_assert_eq(r.addr_len, 13u);
	cr_assert_eq(r.line, 42u);

	cr_assert_eq(parse("\"\"\"john\"\"@example.com\",N,C", &r, &why), 1, "%s", why);
	cr_assert_eq(r.quoted, 1);
	cr_assert_eq(rcpt_addr(&r, a), 18u);
	cr_assert_str_eq(a, "\"john\"@example.com");
	cr_assert_eq(r.addr_len, 18u);

	cr_assert_eq(parse("a@example.com,\"x,y\",\"z\"\"w\"", &r, &why), 1, "%s", why);
	cr_assert_eq(parse("a@example.com,,", &r, &why), 1, "%s", why);
	cr_assert_eq(parse("a@example.com, Bob , spaced", &r, &why), 1, "%s", why);
	cr_assert_eq(parse("\"a@example.com\",\"\",\"\"", &r, &why), 1, "%s", why);
	cr_assert_eq(r.raw_len, 15u);

	cr_assert_eq(parse("josé@exämple.com,N,C", &r, &why), 1, "%s", why);
	cr_assert_eq(r.flags, ADDR_UTF8);
	cr_assert_eq(parse("jose@example.com,N,Ç", &r, &why), 1, "%s", why);
	cr_assert_eq(r.flags, 0, "non-ASCII in other fields does not flag the address");
}

Test(job, record_control_characters)
{
	use_fields(2);
	parse_bad("a@example.com\rx,N,C", "control character (0x0D) in record", "a@example.com\rx");
	parse_bad("a@example.com,N\r,C", "control character (0x0D) in record", "a@example.com");
	parse_bad_n("a@example.com,N\0,C", 18, "control character (0x00) in record",
	            "a@example.com");
	{
		struct rcpt r;
		const char *why;
		cr_assert_eq(job_parse_record(&J, "a@ex\0ample.com,N,C", 18, 7, &r, &why), -1);
		cr_assert_str_eq(why, "control character (0x00) in record");
		cr_assert_eq(r.raw_len, 14u, "raw is the first field, NUL included");
		cr_assert_eq(memcmp(r.raw, "a@ex\0ample.com", 14), 0);
	}
	parse_bad("a@example.com,\tN,C", "control character (0x09) in record", "a@example.com");
	parse_bad("a@example.com,N,C\x7f", "control character (0x7F) in record", "a@example.com");
	parse_bad("a@example.com,N,C\x1b[0m", "control character (0x1B) in record",
	          "a@example.com");
	parse_bad("\"a@example.com\x01\",N,C", "control character (0x01) in record",
	          "\"a@example.com\x01\"");
	/* A control octet wins over any other defect of the record. */
	parse_bad("\"a@ex\nample.com,N", "control character (0x0A) in record", "\"a@ex\nample.com,N");
}

Test(job, record_quote_errors)
{
	use_fields(2);
	parse_bad("\"a@example.com,N,C", "unbalanced quotes", "\"a@example.com,N,C");
	parse_bad("a@example.com,\"N,C", "unbalanced quotes", "a@example.com");
	parse_bad("a@example.com,N,\"C\"\"", "unbalanced quotes", "a@example.com");
	parse_bad("a\"b@example.com,N,C", "quote inside unquoted field", "a\"b@example.com,N,C");
	parse_bad(" \"a@example.com\",N,C", "quote inside unquoted field",
	          " \"a@example.com\",N,C");
	parse_bad("a@example.com,N x\"y,C", "quote inside unquoted field", "a@example.com");
	parse_bad("\"a@example.com\"x,N,C", "garbage after closing quote",
	          "\"a@example.com\"x,N,C");
	parse_bad("\"a@example.com\" ,N,C", "garbage after closing quote",
	          "\"a@example.com\" ,N,C");
	parse_bad("a@example.com,\"N\"C,C", "garbage after closing quote", "a@example.com");
}

Test(job, record_column_count)
{
	use_fields(2);
	parse_bad("a@example.com,N,C,D", "expected 3 columns (address + fields), found 4",
	          "a@example.com");
	parse_bad("a@example.com,N", "expected 3 columns (address + fields), found 2",
	          "a@example.com");
	parse_bad("a@example.com", "expected 3 columns (address + fields), found 1",
	          "a@example.com");
	parse_bad("a@example.com,N,C,", "expected 3 columns (address + fields), found 4",
	          "a@example.com");
	parse_bad("\"a@example.com\",\"N,C\"", "expected 3 columns (address + fields), found 2",
	          "\"a@example.com\"");
	use_fields(0);
	parse_bad("a@example.com,x", "expected 1 column (address only), found 2", "a@example.com");
	parse_bad("a@example.com,", "expected 1 column (address only), found 2", "a@example.com");
}

Test(job, record_bad_addresses)
{
	char s[400];

	use_fields(2);
	parse_bad(",N,C", "empty address", "");
	parse_bad("   ,N,C", "empty address", "");
	parse_bad("\"\",N,C", "empty address", "\"\"");
	parse_bad("alice,N,C", "missing '@'", "alice");
	parse_bad("<a@example.com>,N,C", "invalid character in local part", "<a@example.com>");
	parse_bad("\"a b@example.com\",N,C", "invalid character in local part",
	          "\"a b@example.com\"");
	parse_bad("\"a@example.com \",N,C", "invalid character in domain", "\"a@example.com \"");
	parse_bad("a@b..com,N,C", "empty label in domain", "a@b..com");

	/* Local part of 64 octets passes, 65 does not. */
	memset(s, 'l', 64);
	strcpy(s + 64, "@example.com,N,C");
	use_fields(2);
	{
		struct rcpt r;
		const char *why;
		cr_assert_eq(parse(s, &r, &why), 1, "%s", why);
		cr_assert_eq(r.addr_len, 76u);
	}
	memset(s, 'l', 65);
	strcpy(s + 65, "@example.com,N,C");
	parse_bad(s, "local part longer than 64 octets",
	          "lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll@example.com");
}

Test(job, record_raw_is_first_field_or_bounded_start)
{
	char s[1024];

	use_fields(2);
	/* A first field is shown whole, however long. */
	memset(s, 'x', 600);
	strcpy(s + 600, "@example.com,N,C");
	{
		struct rcpt r;
		const char *why;
		cr_assert_eq(parse(s, &r, &why), -1);
		cr_assert_str_eq(why, "local part longer than 64 octets");
		cr_assert_eq(r.raw, s);
		cr_assert_eq(r.raw_len, 612u);
		cr_assert_eq(r.rec_len, strlen(s));
	}
	/* No first field: the start of the record, cut to 256 octets. */
	s[0] = '"';
	memset(s + 1, 'x', 599);
	s[600] = '\0';
	{
		struct rcpt r;
		const char *why;
		cr_assert_eq(parse(s, &r, &why), -1);
		cr_assert_str_eq(why, "unbalanced quotes");
		cr_assert_eq(r.raw, s);
		cr_assert_eq(r.raw_len, 256u);
		cr_assert_eq(r.quoted, 0);
	}
}

Test(job, record_length_limit)
{
	static char s[JOB_MAX_LINE + 64];
	struct rcpt r;
	const char *why;
	size_t n;

	use_fields(2);
	n = (size_t)sprintf(s, "a@example.com,N,");
	memset(s + n, 'c', JOB_MAX_LINE - n);
	s[JOB_MAX_LINE] = '\0';
	cr_assert_eq(parse(s, &r, &why), 1, "exactly %u octets: %s", JOB_MAX_LINE, why);
	strcat(s, "c");
	parse_bad(s, "line longer than 8192 octets", "a@example.com");

	/* The first field itself too long: raw stops at the limit. */
	memset(s, 'x', JOB_MAX_LINE + 10);
	s[JOB_MAX_LINE + 10] = '\0';
	cr_assert_eq(parse(s, &r, &why), -1);
	cr_assert_str_eq(why, "line longer than 8192 octets");
	cr_assert_eq(r.raw_len, JOB_MAX_LINE);
	cr_assert_eq(r.rec_len, JOB_MAX_LINE + 10);

	/* An unclosed quote over the limit: no first field, raw cut to 256. */
	s[0] = '"';
	cr_assert_eq(parse(s, &r, &why), -1);
	cr_assert_str_eq(why, "line longer than 8192 octets");
	cr_assert_eq(r.raw_len, 256u);
}

Test(job, hostile_file_walk)
{
	static char s[JOB_MAX_LINE * 2 + 1024];
	struct job_cursor c;
	struct rcpt r;
	char *p = s;

	p += sprintf(p, HDR);                                    /* lines 1-5 */
	p += sprintf(p, "ok1@example.com,A,1\n");                /* 6 */
	p += sprintf(p, "cr@exa\rmple.com,A,1\r\n");             /* 7 */
	memcpy(p, "nul@example.com,A\0,1\n", 21);                /* 8 */
	p += 21;
	p += sprintf(p, "\"unbalanced@example.com,A,1\n");      /* 9 */
	p += sprintf(p, "many@example.com,A,1,extra\n");         /* 10 */
	p += sprintf(p, "few@example.com\n");                    /* 11 */
	p += sprintf(p, "long@example.com,A,");                  /* 12 */
	memset(p, 'z', JOB_MAX_LINE);
	p += JOB_MAX_LINE;
	*p++ = '\n';
	memset(p, 'l', 65);                                      /* 13 */
	p += 65;
	p += sprintf(p, "@example.com,A,1\n");
	p += sprintf(p, "\n");                                   /* 14 */
	p += sprintf(p, "double@example.com,A,1\r\r\n");         /* 15 */
	p += sprintf(p, "ok2@example.com,\"A\"\"\",\"1,2\"");    /* 16, no newline */
	cr_assert_eq(job_open(&J, write_n("t.job", s, (size_t)(p - s)), err, sizeof err), 0, "%s",
	             err);

	c = all_cursor();
	next_ok(&c, &r, 6, "ok1@example.com");
	next_bad(&c, &r, 7, "control character (0x0D) in record");
	cr_assert_eq(r.rec_len, strlen("cr@exa\rmple.com,A,1"));
	next_bad(&c, &r, 8, "control character (0x00) in record");
	cr_assert_eq(r.raw_len, 15u);
	next_bad(&c, &r, 9, "unbalanced quotes");
	next_bad(&c, &r, 10, "expected 3 columns (address + fields), found 4");
	next_bad(&c, &r, 11, "expected 3 columns (address + fields), found 1");
	next_bad(&c, &r, 12, "line longer than 8192 octets");
	cr_assert_eq(r.raw_len, strlen("long@example.com"));
	cr_assert_eq(r.rec_len, strlen("long@example.com,A,") + JOB_MAX_LINE);
	next_bad(&c, &r, 13, "local part longer than 64 octets");
	cr_assert_eq(r.raw_len, 65u + 12u);
	next_bad(&c, &r, 15, "control character (0x0D) in record");
	next_ok(&c, &r, 16, "ok2@example.com");
	next_end(&c);
}

/* slice_job - write a job of n recipients with blank and bad lines mixed in;
 * want_line[i] gets the line of recipient i (or 0 for a bad one). */
static void slice_job(unsigned n, uint64_t *want_line)
{
	size_t cap = 64u * n + 256u;
	char *s = malloc(cap), *p = s;
	uint64_t line = 6;

	cr_assert_not_null(s);
	p += sprintf(p, HDR);
	for (unsigned i = 0; i < n; i++) {
		if (i % 7 == 3) { /* a blank line before */
			p += sprintf(p, i % 2 ? "\n" : "\r\n");
			line++;
		}
		if (i % 11 == 5) {
			p += sprintf(p, "u%u@example.com,only-one-field\n", i);
			want_line[i] = 0;
		} else {
			p += sprintf(p, "%su%u@example.com%s,N%u,%.*s\n", i % 3 ? "" : "\"", i,
			             i % 3 ? "" : "\"", i, (int)(i % 13), "cccccccccccccccccc");
			want_line[i] = line;
		}
		line++;
	}
	cr_assert_lt((size_t)(p - s), cap);
	cr_assert_eq(job_open(&J, write_n("s.job", s, (size_t)(p - s)), err, sizeof err), 0, "%s",
	             err);
	free(s);
}

/* check_slices - walk n slices; every recipient must be seen exactly once, on its line. */
static void check_slices(unsigned nrcpt, const uint64_t *want_line, unsigned n)
{
	struct job_cursor c[8];
	unsigned char *seen = calloc(nrcpt, 1);
	unsigned good = 0, bad = 0, want_good = 0;

	cr_assert_not_null(seen);
	job_slices(&J, n, c);
	cr_assert_eq(c[0].p, J.map + J.body_off);
	cr_assert_eq(c[0].line, J.body_line);
	cr_assert_eq(c[n - 1].end, J.map + J.size);
	for (unsigned i = 0; i < n; i++) {
		struct rcpt r;
		const char *why;
		int rc;
		cr_assert_leq(c[i].p, c[i].end);
		if (i + 1 < n)
			cr_assert_eq(c[i].end, c[i + 1].p, "slices are contiguous");
		cr_assert(c[i].p == J.map + J.body_off || c[i].p[-1] == '\n', "slice at a line start");
		while ((rc = job_next(&J, &c[i], &r, &why)) != 0) {
			unsigned k = 0;
			cr_assert_eq(sscanf(r.raw + (r.raw[0] == '"'), "u%u@", &k), 1);
			cr_assert_lt(k, nrcpt);
			cr_assert_eq(seen[k], 0, "recipient %u seen twice (n=%u)", k, n);
			seen[k] = 1;
			if (rc == 1) {
				cr_assert_eq(r.line, want_line[k], "recipient %u (n=%u)", k, n);
				good++;
			} else {
				cr_assert_eq(want_line[k], 0u, "recipient %u: %s", k, why);
				bad++;
			}
		}
	}
	for (unsigned k = 0; k < nrcpt; k++) {
		cr_assert_eq(seen[k], 1, "recipient %u missing (n=%u)", k, n);
		want_good += want_line[k] != 0;
	}
	cr_assert_eq(good, want_good);
	cr_assert_eq(good + bad, nrcpt);
	free(seen);
}

Test(job, slices_cover_every_recipient_once)
{
	enum { N = 1000 };
	static uint64_t want_line[N];

	slice_job(N, want_line);
	for (unsigned n = 1; n <= 7; n++)
		check_slices(N, want_line, n);
}

Test(job, slices_more_than_lines)
{
	static uint64_t want_line[3];

	slice_job(3, want_line);
	for (unsigned n = 1; n <= 7; n++)
		check_slices(3, want_line, n);
}

Test(job, slices_without_final_newline)
{
	struct job_cursor c[7];
	struct rcpt r;

	open_ok(HDR "a@example.com,A,1\nb@example.com,B,2\nc@example.com,C,3");
	for (unsigned n = 1; n <= 7; n++) {
		unsigned count = 0;
		uint64_t lines = 0;
		job_slices(&J, n, c);
		for (unsigned i = 0; i < n; i++) {
			const char *why;
			while (job_next(&J, &c[i], &r, &why) == 1) {
				count++;
				lines += r.line;
			}
		}
		cr_assert_eq(count, 3u, "n=%u", n);
		cr_assert_eq(lines, 6u + 7u + 8u, "n=%u", n);
	}
}

Test(job, large_job_in_slices)
{
	enum { N = 200000 };
	char *s = malloc((size_t)N * 40 + 256), *p = s;
	struct job_cursor c[4];
	uint64_t count = 0, last_line = 0;

	cr_assert_not_null(s);
	p += sprintf(p, HDR);
	for (unsigned i = 0; i < N; i++)
		p += sprintf(p, "user%u@example.com,N,%u\n", i, i);
	cr_assert_eq(job_open(&J, write_n("big.job", s, (size_t)(p - s)), err, sizeof err), 0);
	free(s);
	job_slices(&J, 4, c);
	for (unsigned i = 0; i < 4; i++) {
		struct rcpt r;
		const char *why;
		int rc;
		while ((rc = job_next(&J, &c[i], &r, &why)) != 0) {
			cr_assert_eq(rc, 1, "line %llu: %s", (unsigned long long)r.line, why);
			cr_assert_eq(r.line, last_line ? last_line + 1 : 6u);
			last_line = r.line;
			count++;
		}
	}
	cr_assert_eq(count, (uint64_t)N);
	cr_assert_eq(last_line, 5u + N);
}

Test(job, close_is_idempotent)
{
	open_ok(EXAMPLE);
	cr_assert_not_null(J.map);
	job_close(&J);
	cr_assert_null(J.map);
	job_close(&J);
	cr_assert_null(J.map);
}
