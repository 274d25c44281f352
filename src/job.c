/* job.c - the job file: mapped once, header parsed, recipient records walked in place. */
#include "job.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"

/* The reasons below spell these numbers out. */
_Static_assert(JOB_MAX_LINE == 8192u, "reason text says 8192");
_Static_assert(JOB_MAX_HEADER_LINES == 64u, "reason text says 64");
_Static_assert(JOB_MAX_FIELDS == 64u, "reason text says 64");

#define JOB_MAGIC "#volley-job 1"       /* line 1, exactly (a trailing CR is allowed) */
#define JOB_MAGIC_PREFIX "#volley-job " /* line 1 of a job of some other version */
#define JOB_MAX_FIELD_NAME 63u          /* octets in a field name (field_names[][64]) */
#define JOB_MAX_SHOWN 64                /* octets of a bad key, name or version quoted back */
#define JOB_MAX_RAW ADDR_MAX_PATH       /* octets of a bad record shown when it has no first field */

_Static_assert(sizeof(((struct job *)0)->field_names[0]) == JOB_MAX_FIELD_NAME + 1, "names");

/* Header keys, as bits of the "seen" set. */
enum job_key { JOB_KEY_FROM = 1u << 0, JOB_KEY_MESSAGE = 1u << 1, JOB_KEY_FIELDS = 1u << 2 };

/* Everything an error message needs while job_open runs. */
struct job_ctx {
	struct job *j;     /* job being opened */
	const char *path;  /* path as given, for messages */
	char *err;         /* caller's message buffer */
	size_t errlen;     /* its size */
};

/* One CSV field of a record, as written. */
struct job_field {
	const char *s;     /* first octet (the opening quote, if quoted) */
	size_t n;          /* octets, quotes included */
	bool quoted;       /* "..." */
	bool escaped;      /* contains "" */
};

/* The per-octet reasons for control characters in a record. */
#define JOB_CTL(x) "control character (0x" #x ") in record"
static const char *const job_ctl_reasons[32] = {
	JOB_CTL(00), JOB_CTL(01), JOB_CTL(02), JOB_CTL(03), JOB_CTL(04), JOB_CTL(05),
	JOB_CTL(06), JOB_CTL(07), JOB_CTL(08), JOB_CTL(09), JOB_CTL(0A), JOB_CTL(0B),
	JOB_CTL(0C), JOB_CTL(0D), JOB_CTL(0E), JOB_CTL(0F), JOB_CTL(10), JOB_CTL(11),
	JOB_CTL(12), JOB_CTL(13), JOB_CTL(14), JOB_CTL(15), JOB_CTL(16), JOB_CTL(17),
	JOB_CTL(18), JOB_CTL(19), JOB_CTL(1A), JOB_CTL(1B), JOB_CTL(1C), JOB_CTL(1D),
	JOB_CTL(1E), JOB_CTL(1F),
};

/* The column-count reason carries numbers, so it is formatted per thread. */
static _Thread_local char job_cols_reason[96];

/* job_fail - write "path:line: reason" into the caller's buffer, unmap, return -1. */
__attribute__((format(printf, 3, 4)))
static int job_fail(struct job_ctx *x, uint64_t line, const char *fmt, ...)
{
	if (x->err != NULL && x->errlen > 0) {
		int n = snprintf(x->err, x->errlen, "%s:%llu: ", x->path, (unsigned long long)line);
		if (n >= 0 && (size_t)n < x->errlen) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	job_close(x->j);
	return -1;
}

/* job_trim - drop ASCII spaces and tabs around s[0..*n). */
static const char *job_trim(const char *s, size_t *n)
{
	while (*n > 0 && (s[0] == ' ' || s[0] == '\t')) {
		s++;
		(*n)--;
	}
	while (*n > 0 && (s[*n - 1] == ' ' || s[*n - 1] == '\t'))
		(*n)--;
	return s;
}

/* job_line - the line at off without its LF or CRLF ending; returns the offset after it. */
static size_t job_line(const struct job *j, size_t off, size_t *len)
{
	const char *s = j->map + off;
	const char *nl = memchr(s, '\n', j->size - off);
	size_t n = nl ? (size_t)(nl - s) : j->size - off;
	size_t next = nl ? off + n + 1 : j->size;

	if (n > 0 && s[n - 1] == '\r')
		n--;
	*len = n;
	return next;
}

/* job_map - open, check and map the file read-only. */
static int job_map(struct job_ctx *x)
{
	struct job *j = x->j;
	struct stat st;
	void *m;
	int fd, e;

	fd = open(x->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return job_fail(x, 0, "cannot open job file: %s", strerror(errno));
	if (fstat(fd, &st) < 0) {
		e = errno;
		close(fd);
		return job_fail(x, 0, "cannot stat job file: %s", strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return job_fail(x, 0, "not a regular file");
	}
	if (st.st_size == 0) {
		close(fd);
		return job_fail(x, 1, "empty file (first line must be '#volley-job 1')");
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	e = errno;
	close(fd);
	if (m == MAP_FAILED)
		return job_fail(x, 0, "cannot map job file: %s", strerror(e));
	(void)madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL); /* advice only */
	j->map = m;
	j->size = (size_t)st.st_size;
	return 0;
}

/* job_magic - check line 1, s[0..n): "#volley-job 1". */
static int job_magic(struct job_ctx *x, const char *s, size_t n)
{
	size_t plen = sizeof JOB_MAGIC_PREFIX - 1, i;

	if (n == sizeof JOB_MAGIC - 1 && memcmp(s, JOB_MAGIC, n) == 0) {
		x->j->version = 1;
		return 0;
	}
	if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
		return job_fail(x, 1, "byte order mark before '#volley-job 1' (save without BOM)");
	if (n > plen && memcmp(s, JOB_MAGIC_PREFIX, plen) == 0) {
		for (i = plen; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == n)
			return job_fail(x, 1, "unsupported job version %.*s",
			                (int)(n - plen > JOB_MAX_SHOWN ? JOB_MAX_SHOWN : n - plen), s + plen);
	}
	return job_fail(x, 1, "not a volley job (first line must be '#volley-job 1')");
}

/* job_set_from - "from:": a mailbox, optionally in angle brackets; "<>" is the null path. */
static int job_set_from(struct job_ctx *x, const char *v, size_t n, uint64_t line)
{
	struct job *j = x->j;
	unsigned flags = 0;
	const char *why;

	if (n == 0)
		return job_fail(x, line, "empty 'from' (write <> for the null sender)");
	if (v[0] == '<') {
		if (n < 2 || v[n - 1] != '>')
			return job_fail(x, line, "'from' has '<' without a closing '>'");
		v++;
		n -= 2;
	}
	if (n > 0) {
		why = addr_check(v, n, &flags);
		if (why != NULL)
			return job_fail(x, line, "invalid 'from' address: %s", why);
	}
	assert(n <= ADDR_MAX_MAILBOX);
	memcpy(j->from, v, n);
	j->from[n] = '\0';
	j->from_flags = flags;
	return 0;
}

/* job_set_message - "message:": resolve the path against the job file's directory. */
static int job_set_message(struct job_ctx *x, const char *v, size_t n, uint64_t line)
{
	struct job *j = x->j;
	const char *slash = strrchr(j->path, '/');
	size_t dir = 0;

	if (n == 0)
		return job_fail(x, line, "empty 'message'");
	if (v[0] != '/' && slash != NULL)
		dir = (size_t)(slash - j->path) + 1; /* keep the '/' */
	if (dir + n >= sizeof j->message_path)
		return job_fail(x, line, "message path longer than %zu octets",
		                sizeof j->message_path - 1);
	memcpy(j->message_path, j->path, dir);
	memcpy(j->message_path + dir, v, n);
	j->message_path[dir + n] = '\0';
	return 0;
}

/* job_add_field - append one field name s[0..n) (already trimmed). */
static int job_add_field(struct job_ctx *x, const char *s, size_t n, uint64_t line)
{
	struct job *j = x->j;
	int shown = (int)(n > JOB_MAX_SHOWN ? JOB_MAX_SHOWN : n);

	if (n == 0)
		return job_fail(x, line, "empty field name in 'fields'");
	if (n > JOB_MAX_FIELD_NAME)
		return job_fail(x, line, "field name longer than 63 octets");
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return job_fail(x, line, "invalid field name '%.*s' (use A-Z a-z 0-9 _ -)",
			                shown, s);
	}
	for (unsigned k = 0; k < j->nfields; k++)
		if (strlen(j->field_names[k]) == n && memcmp(j->field_names[k], s, n) == 0)
			return job_fail(x, line, "duplicate field name '%.*s'", shown, s);
	if (j->nfields == JOB_MAX_FIELDS)
		return job_fail(x, line, "more than 64 fields");
	memcpy(j->field_names[j->nfields], s, n);
	j->field_names[j->nfields][n] = '\0';
	j->nfields++;
	return 0;
}

/* job_set_fields - "fields:": comma-separated names; an empty value names none. */
static int job_set_fields(struct job_ctx *x, const char *v, size_t n, uint64_t line)
{
	size_t i = 0;

	if (n == 0)
		return 0;
	for (;;) {
		const char *comma = memchr(v + i, ',', n - i);
		size_t end = comma ? (size_t)(comma - v) : n;
		size_t len = end - i;
		const char *name = job_trim(v + i, &len);
		if (job_add_field(x, name, len, line) < 0)
			return -1;
		if (comma == NULL)
			return 0;
		i = end + 1;
	}
}

/* job_key_line - check one "key: value" line s[0..n) and apply it. */
static int job_key_line(struct job_ctx *x, const char *s, size_t n, uint64_t line, unsigned *seen)
{
	static const struct { const char *name; unsigned bit; } keys[] = {
		{ "from", JOB_KEY_FROM }, { "message", JOB_KEY_MESSAGE }, { "fields", JOB_KEY_FIELDS },
	};
	const char *colon, *k, *v;
	size_t klen, vlen, i;

	if (n > JOB_MAX_LINE)
		return job_fail(x, line, "header line longer than 8192 octets");
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return job_fail(x, line, "control character (0x%02X) in header line", c);
	}
	klen = n;
	(void)job_trim(s, &klen);
	if (klen == 0)
		return job_fail(x, line, "line of only white space (the header ends at an empty line)");
	colon = memchr(s, ':', n);
	if (colon == NULL)
		return job_fail(x, line, "missing ':' in header line");
	klen = (size_t)(colon - s);
	k = job_trim(s, &klen);
	vlen = n - (size_t)(colon - s) - 1;
	v = job_trim(colon + 1, &vlen);
	for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strlen(keys[i].name) == klen && strncasecmp(keys[i].name, k, klen) == 0)
			break;
	if (i == sizeof keys / sizeof keys[0])
		return job_fail(x, line, "unknown header key '%.*s'",
		                (int)(klen > JOB_MAX_SHOWN ? JOB_MAX_SHOWN : klen), k);
	if (*seen & keys[i].bit)
		return job_fail(x, line, "duplicate header key '%s'", keys[i].name);
	*seen |= keys[i].bit;
	if (keys[i].bit == JOB_KEY_FROM)
		return job_set_from(x, v, vlen, line);
	if (keys[i].bit == JOB_KEY_MESSAGE)
		return job_set_message(x, v, vlen, line);
	return job_set_fields(x, v, vlen, line);
}

/* job_header_end - find the empty line ending the header (at most
 * JOB_MAX_HEADER_LINES key lines after line 1); sets its line and the offset after it. */
static int job_header_end(struct job_ctx *x, size_t off, uint64_t *end_line, size_t *body_off)
{
	const struct job *j = x->j;
	uint64_t line = 2;
	size_t len;

	for (;; line++) {
		if (off >= j->size)
			return job_fail(x, line, "header not ended by an empty line");
		off = job_line(j, off, &len);
		if (len == 0)
			break;
		if (line - 1 > JOB_MAX_HEADER_LINES)
			return job_fail(x, line, "header longer than 64 lines (no empty line after it?)");
	}
	*end_line = line;
	*body_off = off;
	return 0;
}

/* job_header - parse line 1 and the key lines up to the empty line. */
static int job_header(struct job_ctx *x)
{
	struct job *j = x->j;
	unsigned seen = 0;
	uint64_t line, end_line = 0;
	size_t len, off, body_off = 0;

	off = job_line(j, 0, &len);
	if (job_magic(x, j->map, len) < 0)
		return -1;
	if (job_header_end(x, off, &end_line, &body_off) < 0)
		return -1;
	for (line = 2; line < end_line; line++) {
		const char *s = j->map + off;
		off = job_line(j, off, &len);
		if (job_key_line(x, s, len, line, &seen) < 0)
			return -1;
	}
	if (!(seen & JOB_KEY_FROM))
		return job_fail(x, end_line, "missing 'from' in header");
	if (!(seen & JOB_KEY_MESSAGE))
		return job_fail(x, end_line, "missing 'message' in header");
	j->body_off = body_off;
	j->body_line = end_line + 1;
	return 0;
}

/* job_open - map and parse the header of the job file at path. */
int job_open(struct job *j, const char *path, char *err, size_t errlen)
{
	struct job_ctx x = { .j = j, .path = path, .err = err, .errlen = errlen };

	assert(j != NULL && path != NULL);
	memset(j, 0, sizeof *j);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (strlen(path) >= sizeof j->path)
		return job_fail(&x, 0, "path longer than %zu octets", sizeof j->path - 1);
	memcpy(j->path, path, strlen(path) + 1);
	if (job_map(&x) < 0)
		return -1;
	return job_header(&x);
}

/* job_close - unmap; safe to call twice and after a failed job_open. */
void job_close(struct job *j)
{
	if (j->map != NULL)
		munmap((void *)j->map, j->size);
	j->map = NULL;
	j->size = 0;
}

static void job_drop_pages(const char *p, size_t n);
#define JOB_COUNT_CHUNK (8u << 20) /* octets counted between page drops */

/* job_count_lines - newlines in s[0..n), dropping counted pages from RSS as it goes. */
static uint64_t job_count_lines(const char *s, size_t n)
{
	const char *e = s + n;
	uint64_t k = 0;

	while (s < e) {
		size_t step = (size_t)(e - s) < JOB_COUNT_CHUNK ? (size_t)(e - s) : JOB_COUNT_CHUNK;
		const char *c = s, *ce = s + step;
		while ((c = memchr(c, '\n', (size_t)(ce - c))) != NULL) {
			k++;
			c++;
		}
		job_drop_pages(s, step);
		s = ce;
	}
	return k;
}

/* job_drop_pages - the counting pass is done with these pages: drop them from our
 * resident set (they stay in the page cache), so a long job does not inflate RSS. */
static void job_drop_pages(const char *p, size_t n)
{
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = ((uintptr_t)p + pg - 1) & ~(pg - 1);
	uintptr_t b = ((uintptr_t)p + n) & ~(pg - 1);
	if (b > a)
		madvise((void *)a, b - a, MADV_DONTNEED);
}

/* job_slices - split the recipient section into n slices at line boundaries. */
void job_slices(const struct job *j, unsigned n, struct job_cursor *out)
{
	size_t pos = j->body_off, body = j->size - j->body_off;
	uint64_t line = j->body_line;

	assert(j->body_off <= j->size);
	for (unsigned i = 0; i < n; i++) {
		size_t cut = j->size;
		if (i + 1 < n) {
			/* body * (i + 1) / n without overflow */
			size_t target = j->body_off + body / n * (i + 1) + body % n * (i + 1) / n;
			cut = pos;
			if (target > pos) { /* first line start at or after target */
				const char *nl = memchr(j->map + target - 1, '\n', j->size - target + 1);
				cut = nl ? (size_t)(nl - j->map) + 1 : j->size;
			}
		}
		out[i].p = j->map + pos;
		out[i].end = j->map + cut;
		out[i].line = line;
		line += job_count_lines(j->map + pos, cut - pos);
		pos = cut;
	}
}

/* job_next - read the next recipient record from c, skipping blank lines. */
int job_next(const struct job *j, struct job_cursor *c, struct rcpt *r, const char **reason)
{
	while (c->p < c->end) {
		const char *s = c->p;
		const char *nl = memchr(s, '\n', (size_t)(c->end - s));
		size_t n = nl ? (size_t)(nl - s) : (size_t)(c->end - s);
		uint64_t line = c->line;

		c->p = nl ? nl + 1 : c->end;
		c->line++;
		if (n > 0 && s[n - 1] == '\r')
			n--;
		if (n > 0)
			return job_parse_record(j, s, n, line, r, reason);
	}
	return 0;
}

/* job_unquote - decode the quoted CSV field s[0..n) (s[0] == '"') into dst, at most cap octets. */
static size_t job_unquote(const char *s, size_t n, char *dst, size_t cap)
{
	size_t k = 0;

	for (size_t i = 1; i < n && k < cap; i++) {
		if (s[i] == '"') {
			if (i + 1 >= n || s[i + 1] != '"')
				break; /* the closing quote */
			i++;
		}
		dst[k++] = s[i];
	}
	return k;
}

/* job_read_field - read one CSV field at p (up to ',' or e); NULL and *reason on error. */
static const char *job_read_field(const char *p, const char *e, struct job_field *f,
                                  const char **reason)
{
	f->s = p;
	f->quoted = p < e && *p == '"';
	f->escaped = false;
	if (!f->quoted) {
		for (; p < e && *p != ','; p++)
			if (*p == '"') {
				*reason = "quote inside unquoted field";
				return NULL;
			}
		f->n = (size_t)(p - f->s);
		return p;
	}
	for (p++; p < e; p++) {
		if (*p != '"')
			continue;
		if (p + 1 < e && p[1] == '"') {
			f->escaped = true;
			p++;
			continue;
		}
		p++; /* past the closing quote */
		if (p < e && *p != ',') {
			*reason = "garbage after closing quote";
			return NULL;
		}
		f->n = (size_t)(p - f->s);
		return p;
	}
	*reason = "unbalanced quotes";
	return NULL;
}

/* job_ctl_scan - the reason for the first control octet in s[0..n), or NULL. */
static const char *job_ctl_scan(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < n; i++) {
		if (u[i] < 0x20)
			return job_ctl_reasons[u[i]];
		if (u[i] == 0x7f)
			return "control character (0x7F) in record";
	}
	return NULL;
}

/* job_bad - report a bad record for why (r is already filled as far as it goes). */
static int job_bad(const char *why, const char **reason)
{
	*reason = why;
	return -1;
}

/* job_set_raw - point r->raw at the address field f (trimmed if unquoted). */
static void job_set_raw(struct rcpt *r, const struct job_field *f)
{
	size_t n = f->n;
	const char *s = f->quoted ? f->s : job_trim(f->s, &n);

	r->raw = s;
	r->raw_len = (uint32_t)n;
	r->quoted = f->quoted;
}

/* job_check_addr - validate the address field f; sets r->addr_len and r->flags. */
static const char *job_check_addr(const struct job_field *f, struct rcpt *r)
{
	char buf[JOB_MAX_LINE];
	const char *a = r->raw;
	size_t n = r->raw_len;
	unsigned flags = 0;
	const char *why;

	if (f->escaped) {
		n = job_unquote(f->s, f->n, buf, sizeof buf);
		a = buf;
	} else if (f->quoted) {
		a = f->s + 1;
		n = f->n - 2;
	}
	why = addr_check(a, n, &flags);
	if (why != NULL)
		return why;
	r->addr_len = (uint16_t)n;
	r->flags = (uint8_t)flags;
	return NULL;
}

/* job_cols - the column-count reason (thread-local: valid until this thread's next call). */
static const char *job_cols(const struct job *j, size_t found)
{
	if (j->nfields == 0)
		snprintf(job_cols_reason, sizeof job_cols_reason,
		         "expected 1 column (address only), found %zu", found);
	else
		snprintf(job_cols_reason, sizeof job_cols_reason,
		         "expected %u columns (address + fields), found %zu", j->nfields + 1u, found);
	return job_cols_reason;
}

/* job_parse_record - parse one record (a line without its ending). */
int job_parse_record(const struct job *j, const char *rec, size_t len, uint64_t line,
                     struct rcpt *r, const char **reason)
{
	const char *e = rec + (len > JOB_MAX_LINE ? JOB_MAX_LINE : len);
	const char *p, *why = NULL, *fwhy = NULL;
	struct job_field f;
	size_t cols = 1;

	/* Until a first field is found, raw is the start of the record. */
	*r = (struct rcpt){ .raw = rec, .raw_len = (uint32_t)(len > JOB_MAX_RAW ? JOB_MAX_RAW : len),
	                    .rec = rec, .rec_len = (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len),
	                    .line = line };
	if (len > JOB_MAX_LINE)
		why = "line longer than 8192 octets";
	else
		why = job_ctl_scan(rec, len);
	p = job_read_field(rec, e, &f, &fwhy);
	if (p != NULL)
		job_set_raw(r, &f);
	if (why != NULL)
		return job_bad(why, reason);
	if (p == NULL)
		return job_bad(fwhy, reason);
	while (p < e) { /* *p == ',' */
		struct job_field g;
		p = job_read_field(p + 1, e, &g, &fwhy);
		if (p == NULL)
			return job_bad(fwhy, reason);
		cols++;
	}
	if (cols != 1u + j->nfields)
		return job_bad(job_cols(j, cols), reason);
	why = job_check_addr(&f, r);
	if (why != NULL)
		return job_bad(why, reason);
	return 1;
}

/* rcpt_addr - write the decoded address of r into dst, NUL-terminated. */
size_t rcpt_addr(const struct rcpt *r, char *dst)
{
	size_t n = r->raw_len;
	const char *s;

	if (r->quoted) {
		n = job_unquote(r->raw, r->raw_len, dst, ADDR_MAX_MAILBOX);
	} else {
		s = job_trim(r->raw, &n);
		if (n > ADDR_MAX_MAILBOX)
			n = ADDR_MAX_MAILBOX;
		memcpy(dst, s, n);
	}
	dst[n] = '\0';
	return n;
}
