/* signals.c - the daemons' signal set-up: handlers only set flags; the rest is ignored. */
/* SPDX-License-Identifier: MIT */
#include "signals.h"

#include <errno.h>
#include <stddef.h>

/* Set once before the handlers are installed; the handlers only store through them. */
static volatile sig_atomic_t *stop_flag, *hup_flag;
static atomic_int *reopen_flag;

static void on_stop(int sig)
{
    (void)sig;
    *stop_flag = 1;
}

static void on_hup(int sig)
{
    (void)sig;
    *hup_flag = 1;
}

static void on_reopen(int sig)
{
    int saved = errno; /* it may run inside any call of any thread */

    (void)sig;
    atomic_store(reopen_flag, 1); /* lock-free: async-signal-safe */
    errno = saved;
}

static int set_flags(int sig, void (*fn)(int), int flags)
{
    struct sigaction sa = {.sa_handler = fn, .sa_flags = flags};

    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL) < 0 ? -errno : 0;
}

static int set(int sig, void (*fn)(int))
{
    return set_flags(sig, fn, 0);
}

/* SIG_IGN for sig, unless somebody installed a handler for it before us. */
static int ignore_unless_handled(int sig)
{
    struct sigaction cur;

    if (sigaction(sig, NULL, &cur) < 0)
        return -errno;
    if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL)
        return set(sig, SIG_IGN);
    return 0;
}

int signals_install(volatile sig_atomic_t *stop, volatile sig_atomic_t *hup)
{
    int rc;

    stop_flag = stop;
    hup_flag = hup;
    if ((rc = set(SIGINT, on_stop)) < 0 || (rc = set(SIGTERM, on_stop)) < 0 ||
        (rc = set(SIGHUP, hup != NULL ? on_hup : SIG_IGN)) < 0 ||
        (rc = ignore_unless_handled(SIGUSR1)) < 0 || (rc = ignore_unless_handled(SIGUSR2)) < 0 ||
        (rc = set(SIGPIPE, SIG_IGN)) < 0)
        return rc;
    return 0;
}

int signals_install_stop(volatile sig_atomic_t *flag)
{
    return signals_install(flag, NULL);
}

int signals_install_reopen(atomic_int *flag)
{
    reopen_flag = flag;
    return set_flags(SIGUSR1, on_reopen, SA_RESTART);
}
