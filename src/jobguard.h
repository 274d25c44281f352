/* jobguard.h - the job file is memory-mapped: if it is truncated during the run, a
 * read past its new end raises SIGBUS (or, within the last page, reads zeros). The
 * guard turns both into a clear message and exit status 1, at once, instead of a
 * crash or a bad line made of zeros: nothing read from the vanished part may reach
 * the wire or the results. The results written so far stay valid, and --resume with
 * the restored job finishes the run. A file rewritten in place at the same or a
 * larger size is not detected: its new lines are read as they are. */
#ifndef VOLLEY_JOBGUARD_H
#define VOLLEY_JOBGUARD_H
#include <stddef.h>

/* jobguard_arm - watch [base, base + size) of the job at path; results names the
 * results file in the message. Installs the SIGBUS handler; threads must not block
 * SIGBUS (a blocked fault signal kills the process without a handler). */
void jobguard_arm(const char *base, size_t size, const char *path, const char *results);

/* jobguard_check - a record held a NUL byte, which is what the zero-filled rest of a
 * page looks like after a truncation: if the file is now shorter than the mapping,
 * stop as on SIGBUS; otherwise return (the record is just bad). */
void jobguard_check(void);

#endif
