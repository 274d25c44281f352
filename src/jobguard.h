/* jobguard.h - the job file is memory-mapped: if it is truncated (or replaced in
 * place) during the run, a read past its new end raises SIGBUS. The guard turns
 * that into a clear message and exit status 1, at once, instead of a crash: nothing
 * read from the vanished pages may reach the wire or the results. The results
 * written so far stay valid, and --resume with the restored job finishes the run. */
#ifndef VOLLEY_JOBGUARD_H
#define VOLLEY_JOBGUARD_H
#include <stddef.h>

/* jobguard_arm - watch [base, base + size) of the job at path; results names the
 * results file in the message. Installs the SIGBUS handler; threads must not block
 * SIGBUS (a blocked fault signal kills the process without a handler). */
void jobguard_arm(const char *base, size_t size, const char *path, const char *results);

#endif
