/* fuzz_job.c - libFuzzer target: the job file parser: header, CSV records, slices. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "addr.h"
#include "bounds.h"
#include "job.h"

/*
 * The whole input is a job file. Each input is:
 *   1. written to a memfd and opened with job_open("/proc/self/fd/N");
 *   2. when the header is good, walked with job_next over one slice of the real
 *      mapping, and over one and over several slices (1 + size % 8) of a copy
 *      that ends exactly at an inaccessible page (an over-read faults); the
 *      three walks must agree record by record;
 *   3. split into lines, each given to job_parse_record as an exact-size heap
 *      copy (ASan catches an over-read), with the header's field count or, if
 *      the header is bad, one taken from the first octet.
 */

#define MAX_SLICES 8u

/* check - abort (a crash for libFuzzer) when an invariant does not hold. */
#define check(cond) do { if (!(cond)) fail_at(__LINE__, #cond); } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One record as a walk saw it, positions relative to the mapping. */
struct seen {
	int rc;
	uint64_t line;
	size_t raw_off, rec_off;
	uint32_t raw_len, rec_len;
	uint16_t addr_len;
	uint8_t quoted, flags;
	uint64_t why;                 /* hash of the reason */
};

static int memfd = -1;
static char path[64];
static struct job J, G;           /* the opened job; the same over the guarded copy */
static char err[8192];
static struct seen *walk1;        /* records of the first walk */
static size_t walk1_cap;
static size_t walk1_len;          /* records the first walk saw */

/* fail_at - report a broken invariant and abort. */
static void fail_at(int line, const char *what)
{
	fprintf(stderr, "fuzz_job.c:%d: invariant failed: %s\n", line, what);
	abort();
}

/* hash - FNV-1a of a NUL-terminated string (0 for NULL). */
static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	if (s == NULL)
		return 0;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* check_record - what every job_parse_record answer must satisfy. */
static void check_record(const char *rec, size_t len, uint64_t line, int rc,
                         const struct rcpt *r, const char *why)
{
	char addr[ADDR_MAX_MAILBOX + 1];
	unsigned flags = 0;
	size_t n;

	check(rc == 1 || rc == -1);
	check(r->rec == rec && r->rec_len == len && r->line == line);
	check(r->raw >= rec && r->raw_len <= len && r->raw + r->raw_len <= rec + len);
	if (rc == -1) {
		check(why != NULL && why[0] != '\0' && strlen(why) < 200);
		return;
	}
	check(r->addr_len >= 3 && r->addr_len <= ADDR_MAX_MAILBOX);
	check(len <= JOB_MAX_LINE);
	for (size_t i = 0; i < len; i++)
		check((unsigned char)rec[i] >= 0x20 && rec[i] != 0x7f);
	n = rcpt_addr(r, addr);
	check(n == r->addr_len && addr[n] == '\0');
	check(addr_check(addr, n, &flags) == NULL);
	check(flags == r->flags);
	check(addr_domain(addr, n) != NULL);
}

/* same_seen - two walks saw the same record. */
static bool same_seen(const struct seen *a, const struct seen *b)
{
	return a->rc == b->rc && a->line == b->line && a->raw_off == b->raw_off &&
	       a->rec_off == b->rec_off && a->raw_len == b->raw_len && a->rec_len == b->rec_len &&
	       a->addr_len == b->addr_len && a->quoted == b->quoted && a->flags == b->flags &&
	       a->why == b->why;
}

/* walk - job_next over nslices slices of j; records go to walk1 (first walk) or are compared. */
static size_t walk(const struct job *j, unsigned nslices, bool first)
{
	struct job_cursor cur[MAX_SLICES];
	size_t k = 0;
	uint64_t last_line = 0;

	job_slices(j, nslices, cur);
	check(cur[0].p == j->map + j->body_off && cur[0].line == j->body_line);
	check(cur[nslices - 1].end == j->map + j->size);
	for (unsigned i = 0; i < nslices; i++) {
		uint64_t nl = 0;
		check(cur[i].p <= cur[i].end);
		/* slices start at line boundaries (or are empty at the end of the file) */
		check(cur[i].p == j->map + j->body_off || cur[i].p[-1] == '\n' ||
		      cur[i].p == j->map + j->size);
		if (i + 1 < nslices)
			check(cur[i].end == cur[i + 1].p);
		for (const char *p = cur[i].p; p < cur[i].end; p++)
			nl += *p == '\n';
		if (i + 1 < nslices)
			check(cur[i + 1].line == cur[i].line + nl);
	}
	for (unsigned i = 0; i < nslices; i++) {
		struct job_cursor c = cur[i];
		const char *start = c.p, *end = c.end;
		struct rcpt r;
		const char *why;
		int rc;
		while ((why = NULL, rc = job_next(j, &c, &r, &why)) != 0) {
			struct seen s;
			check(r.rec >= start && r.rec + r.rec_len <= end);
			check(r.line > last_line && r.line >= j->body_line);
			last_line = r.line;
			check_record(r.rec, r.rec_len, r.line, rc, &r, why);
			s = (struct seen){ .rc = rc, .line = r.line, .raw_off = (size_t)(r.raw - j->map),
			                   .rec_off = (size_t)(r.rec - j->map), .raw_len = r.raw_len,
			                   .rec_len = r.rec_len, .addr_len = rc == 1 ? r.addr_len : 0,
			                   .quoted = r.quoted, .flags = rc == 1 ? r.flags : 0,
			                   .why = rc == 1 ? 0 : hash(why) };
			if (first) {
				if (k == walk1_cap) {
					walk1_cap = walk1_cap ? 2 * walk1_cap : 256;
					walk1 = realloc(walk1, walk1_cap * sizeof *walk1);
					check(walk1 != NULL);
				}
				walk1[k] = s;
			} else {
				check(k < walk1_len && same_seen(&walk1[k], &s));
			}
			k++;
		}
		check(c.p == c.end);
	}
	if (first)
		walk1_len = k;
	return k;
}

/* check_header - what a successfully opened job must look like. */
static void check_header(const struct job *j, const uint8_t *data, size_t size)
{
	uint64_t nl = 0;
	unsigned flags = 0;
	size_t fl;

	check(j->map != NULL && j->size == size && memcmp(j->map, data, size) == 0);
	check(j->version == 1);
	check(memchr(j->from, '\0', sizeof j->from) != NULL);
	fl = strlen(j->from);
	check(fl <= ADDR_MAX_MAILBOX);
	if (fl > 0) {
		check(addr_check(j->from, fl, &flags) == NULL);
		check(flags == j->from_flags);
	}
	check(memchr(j->message_path, '\0', sizeof j->message_path) != NULL);
	check(j->message_path[0] != '\0');
	check(j->nfields <= JOB_MAX_FIELDS);
	for (unsigned i = 0; i < j->nfields; i++) {
		size_t n = strlen(j->field_names[i]);
		check(n >= 1 && n <= 63);
		for (unsigned k = 0; k < i; k++)
			check(strcmp(j->field_names[i], j->field_names[k]) != 0);
	}
	/* the body starts after the empty line's LF, or at the end of the file when
	 * that line is the last one and has no LF ("\r" alone counts as empty) */
	check(j->body_off >= 2 && j->body_off <= size);
	check(data[j->body_off - 1] == '\n' || j->body_off == size);
	for (size_t i = 0; i < j->body_off; i++)
		nl += data[i] == '\n';
	check(j->body_line == nl + (data[j->body_off - 1] == '\n' ? 1 : 2));
	check(j->body_line >= 3);
}

/* guarded_copy - data in shared anonymous pages, ending right before a PROT_NONE page. */
static char *guarded_copy(const uint8_t *data, size_t size, char **base, size_t *maplen)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t np = (size + pg - 1) / pg;
	char *b;

	*maplen = (np + 1) * pg;
	b = mmap(NULL, *maplen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	check(b != MAP_FAILED);
	memcpy(b + np * pg - size, data, size);
	check(mprotect(b, np * pg, PROT_READ) == 0);
	check(mprotect(b + np * pg, pg, PROT_NONE) == 0);
	*base = b;
	return b + np * pg - size;
}

/* parse_lines - every line of the input through job_parse_record, each an exact-size copy. */
static void parse_lines(const uint8_t *data, size_t size, unsigned nfields)
{
	static struct job fj;
	size_t off = 0;
	uint64_t line = 1;

	fj.nfields = nfields;
	while (off < size) {
		const uint8_t *nlp = memchr(data + off, '\n', size - off);
		size_t n = nlp ? (size_t)(nlp - (data + off)) : size - off;
		size_t len = n > 0 && data[off + n - 1] == '\r' ? n - 1 : n;
		char *copy = malloc(len ? len : 1);
		struct rcpt r;
		const char *why = NULL;
		int rc;

		check(copy != NULL);
		memcpy(copy, data + off, len);
		rc = job_parse_record(&fj, copy, len, line, &r, &why);
		check_record(copy, len, line, rc, &r, why);
		free(copy);
		off += n + (nlp ? 1 : 0);
		line++;
	}
}

/* LLVMFuzzerInitialize - the memfd every input is written to. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	memfd = memfd_create("fuzz-job", MFD_CLOEXEC);
	if (memfd < 0) {
		perror("fuzz_job: memfd_create");
		abort();
	}
	snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
	return 0;
}

/* LLVMFuzzerTestOneInput - open, walk and re-parse one job file. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned nfields = size ? data[0] % 4u : 0;
	size_t plen = strlen(path);

	check(ftruncate(memfd, 0) == 0);
	check(pwrite(memfd, data, size, 0) == (ssize_t)size);
	err[0] = 'x';
	if (job_open(&J, path, err, sizeof err) != 0) {
		check(J.map == NULL);
		check(strncmp(err, path, plen) == 0 && err[plen] == ':');
		check(err[plen + 1] >= '0' && err[plen + 1] <= '9');
		check(strstr(err + plen, ": ") != NULL && strlen(err) > plen + 4);
	} else {
		char *base;
		size_t maplen;
		unsigned ns = 1u + (unsigned)(size % MAX_SLICES);
		size_t n1, n2, n3;

		check_header(&J, data, size);
		nfields = J.nfields;
		G = J;
		G.map = guarded_copy(data, size, &base, &maplen);
		n1 = walk(&G, 1, true);
		n2 = walk(&G, ns, false);
		n3 = walk(&J, 1, false);
		check(n1 == n2 && n1 == n3);
		check(munmap(base, maplen) == 0);
		job_close(&J);
		check(J.map == NULL);
	}
	parse_lines(data, size, nfields);
	return 0;
}
