/* signals.h - the daemons' signal set-up: SIGINT/SIGTERM set a stop flag, SIGPIPE is ignored. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SIGNALS_H
#define GF_SIGNALS_H

#include <signal.h>

/* Installs a handler for SIGINT and SIGTERM that only sets *flag to 1 (flag must outlive the
 * process: a static), and ignores SIGPIPE, so a vanished peer is an EPIPE, never a death.
 * Call once from main before any thread starts. Returns 0 or -errno. */
int signals_install_stop(volatile sig_atomic_t *flag);

#endif
