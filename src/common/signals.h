/* signals.h - the daemons' signal set-up: SIGINT/SIGTERM set a stop flag, SIGHUP sets a reload
 * flag or is ignored, SIGUSR1 sets a reopen flag or is ignored, SIGUSR2/SIGPIPE are ignored.
 * No daemon dies of any of them. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SIGNALS_H
#define GF_SIGNALS_H

#include <signal.h>
#include <stdatomic.h>

/* Installs a handler for SIGINT and SIGTERM that only sets *stop to 1, and, when hup is not
 * NULL, one for SIGHUP that only sets *hup to 1 (flags must outlive the process: statics).
 * Ignores SIGPIPE (a vanished peer is an EPIPE, never a death), SIGHUP when hup is NULL
 * (nothing to reload), and SIGUSR1 and SIGUSR2 (logs go to stderr: no log file to reopen)
 * unless a handler was installed for them before (the fault-injection builds count them).
 * Handlers are installed without SA_RESTART: a blocking call in the thread that takes the
 * signal returns EINTR, so the flag is seen at once. Call once from main before any thread
 * starts. Returns 0 or -errno. */
int signals_install(volatile sig_atomic_t *stop, volatile sig_atomic_t *hup);

/* signals_install(flag, NULL). */
int signals_install_stop(volatile sig_atomic_t *flag);

/* For a daemon with a log file: installs a handler for SIGUSR1 that only sets *flag to 1 (the
 * logrotate convention: reopen the log files), replacing any earlier one. An atomic, not a
 * sig_atomic_t: any thread may take the signal while others read and clear the flag. With
 * SA_RESTART, so a call that restarts is not disturbed (ppoll and timed waits still see EINTR).
 * Call after signals_install, before any thread starts. Returns 0 or -errno. */
int signals_install_reopen(atomic_int *flag);

#endif
