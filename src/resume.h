/* resume.h - reading an earlier results file for --resume: which job lines already
 * have a final result (delivered, bounced, failed). Pure: the caller maps the file. */
#ifndef VOLLEY_RESUME_H
#define VOLLEY_RESUME_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RESUME_MAX_LINE  (1ull << 32)  /* job line numbers accepted in a results file */
#define RESUME_TAG_ANY   1u            /* final, recipient not checkable (escaped or cut) */

/* What a results file says, by job line. */
struct resume {
	uint16_t *mark;              /* per job line: 0 none, else a tag of the final result's rcpt */
	uint64_t cap;                /* entries in mark */
	uint64_t final;              /* final result lines */
	uint64_t nonfinal;           /* deferred lines (sent again) */
	uint64_t twice;              /* job lines with more than one final result */
	uint64_t bad;                /* lines that are not results (reported, skipped) */
	uint64_t first_bad;          /* file line of the first of those, 0 if none */
	uint64_t beyond;             /* final results naming a line past max_line */
	uint64_t max_line;           /* the job's last line (set before resume_scan) */
	bool torn;                   /* the file does not end with a newline: the last line is cut */
};

/* resume_scan - read every complete line of a results file (r->max_line set: the
 * job's last line; lines naming a later one are counted in beyond). Returns 0, or -1
 * when memory runs out (err set). A cut last line is not read (r->torn). */
int resume_scan(struct resume *r, const char *buf, size_t len, char *err, size_t errlen);

/* resume_final - job line has a final result. */
bool resume_final(const struct resume *r, uint64_t line);

/* resume_matches - the final result of job line was for the recipient s (decoded
 * address, or the raw field of a bad line), as far as the file lets us check. */
bool resume_matches(const struct resume *r, uint64_t line, const char *s, size_t len);

/* resume_tag - the tag of a recipient string (never 0 or RESUME_TAG_ANY). */
uint16_t resume_tag(const char *s, size_t len);

/* resume_free - release. */
void resume_free(struct resume *r);

#endif
