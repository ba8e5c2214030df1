/* shm_guard.c - a SIGBUS in a guarded range of a shared mapping becomes -EFAULT. */
/* SPDX-License-Identifier: MIT */
#include "shm_guard.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* Static TLS (no dlopen), so reading it in the handler allocates nothing. */
static _Thread_local struct shm_guard *innermost;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    struct shm_guard *g = innermost;
    uintptr_t a = (uintptr_t)si->si_addr;

    (void)uc;
    if (g != NULL && a >= (uintptr_t)g->base && a - (uintptr_t)g->base < g->size)
        siglongjmp(g->jb, 1);
    /* Not ours: die of it as if no handler existed (the instruction faults again). */
    signal(sig, SIG_DFL);
}

int shm_guard_install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGBUS, &sa, NULL) < 0 ? -errno : 0;
}

void shm_guard_push(struct shm_guard *g, const void *base, size_t size)
{
    g->base = base;
    g->size = size;
    g->prev = innermost;
    innermost = g;
    atomic_signal_fence(memory_order_seq_cst); /* published before the guarded accesses */
}

void shm_guard_pop(struct shm_guard *g)
{
    atomic_signal_fence(memory_order_seq_cst);
    innermost = g->prev;
}
