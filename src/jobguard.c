/* jobguard.c - SIGBUS in the job mapping: a message and exit 1 (see jobguard.h). */
#include "jobguard.h"
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uintptr_t g_base, g_end;
static char g_msg[9000];
static size_t g_len;
static char g_path[4096];

/* stop_now - say what happened and exit 1 (async-signal-safe: write and _exit only). */
static void stop_now(void)
{
	ssize_t w = write(2, g_msg, g_len);
	(void)w;
	_exit(1);
}

/* on_sigbus - a fault in the mapping: say so and exit; any other: the default action. */
static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	uintptr_t a = (uintptr_t)si->si_addr;
	if (a >= g_base && a < g_end)
		stop_now();
	signal(sig, SIG_DFL); /* not ours: the fault repeats and takes its default action */
}

/* jobguard_arm - compose the message now (no formatting in the handler) and install it. */
void jobguard_arm(const char *base, size_t size, const char *path, const char *results)
{
	if (!base || size == 0)
		return;
	g_base = (uintptr_t)base;
	g_end = g_base + size;
	snprintf(g_path, sizeof g_path, "%s", path);
	int n = snprintf(g_msg, sizeof g_msg, "volley send: the job file %.4000s was truncated "
	                 "during the run (a read past its new end); stopped at once. Results "
	                 "written so far are in %.4000s: restore the job file and run again with "
	                 "--resume.\n", path, results);
	g_len = n < 0 ? 0 : (size_t)n < sizeof g_msg ? (size_t)n : sizeof g_msg - 1;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

/* jobguard_check - stop as on SIGBUS if the job file is now shorter than its mapping. */
void jobguard_check(void)
{
	struct stat st;
	if (g_end > g_base && stat(g_path, &st) == 0 && (uintptr_t)st.st_size < g_end - g_base)
		stop_now();
}
