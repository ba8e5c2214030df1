/* signals.c - the daemons' signal set-up: SIGINT/SIGTERM set a stop flag, SIGPIPE is ignored. */
/* SPDX-License-Identifier: MIT */
#include "signals.h"

#include <errno.h>
#include <stddef.h>

/* Set once before the handler is installed; the handler only stores through it. */
static volatile sig_atomic_t *stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    *stop_flag = 1;
}

int signals_install_stop(volatile sig_atomic_t *flag)
{
    struct sigaction sa = {.sa_handler = on_stop};

    stop_flag = flag;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
        return -errno;
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0)
        return -errno;
    return 0;
}
