/* job.h - the job file: mapped once, header parsed, recipients walked in place. */
#ifndef VOLLEY_JOB_H
#define VOLLEY_JOB_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "bounds.h"

/* A parsed job. The recipient section stays in the read-only mapping. */
struct job {
	char path[4096];              /* job file path as given */
	const char *map;              /* whole file, mapped read-only (NULL if empty) */
	size_t size;                  /* bytes mapped */
	int version;                  /* format version (1) */
	char from[ADDR_MAX_MAILBOX + 1]; /* envelope sender, "" for the null path <> */
	unsigned from_flags;          /* ADDR_* flags of from */
	char message_path[4096];      /* message file, resolved relative to the job file */
	unsigned nfields;             /* extra columns after the address */
	char field_names[JOB_MAX_FIELDS][64]; /* their names, from "fields:" */
	size_t body_off;              /* offset of the first recipient line */
	uint64_t body_line;           /* 1-based line number at body_off */
};

/* A cursor over one slice of the recipient section. */
struct job_cursor {
	const char *p;                /* next unread byte */
	const char *end;              /* one past the slice */
	uint64_t line;                /* 1-based line number of *p */
};

/* One recipient as found in the mapping: no copies, no allocation. */
struct rcpt {
	const char *raw;              /* address field as written (with its CSV quotes, if any) */
	uint32_t raw_len;             /* octets of raw */
	uint16_t addr_len;            /* octets of the decoded address */
	uint8_t quoted;               /* raw is a CSV quoted field: decode with rcpt_addr() */
	uint8_t flags;                /* ADDR_* flags */
	const char *rec;              /* whole record (line without its line ending) */
	uint32_t rec_len;             /* octets of rec */
	uint32_t retry;               /* engine: its retry entry (index + 1), 0 on the first attempt */
	uint64_t line;                /* 1-based line number in the job file */
};

/* job_open - map and parse the header of the job file at path.
 * On error returns -1 and writes "file:line: reason" into err. */
int job_open(struct job *j, const char *path, char *err, size_t errlen);

/* job_close - unmap. */
void job_close(struct job *j);

/* job_slices - split the recipient section into n slices that start at line
 * boundaries, each with its starting line number (one pass over the body). */
void job_slices(const struct job *j, unsigned n, struct job_cursor *out);

/* job_next - read the next recipient record from c.
 * Returns 1 and fills r for a good record; 0 at the end of the slice;
 * -1 for a bad record: r->raw/raw_len/line/rec describe it and *reason says why
 * (e.g. "unbalanced quotes", "control character in address",
 * "expected 3 columns, found 2"). Blank lines are skipped. */
int job_next(const struct job *j, struct job_cursor *c, struct rcpt *r, const char **reason);

/* rcpt_addr - write the decoded address of r into dst (at least
 * ADDR_MAX_MAILBOX + 1 bytes), NUL-terminated; returns its length. */
size_t rcpt_addr(const struct rcpt *r, char *dst);

/* job_parse_record - parse one record (a line without its ending) for tests
 * and for job_next: same contract as job_next, with line given. */
int job_parse_record(const struct job *j, const char *rec, size_t len, uint64_t line,
                     struct rcpt *r, const char **reason);

#endif
