/* shm_guard.h - surviving a shared memory object shrunk under our mapping.
 *
 * Any process of our uid can ftruncate a segment we have mapped (a confused peer, a stray
 * script). The next touch of a page past the new end raises SIGBUS, which by default kills the
 * process and leaves every IPC object behind. Code that touches a mapping a peer can resize runs
 * inside a guard; a SIGBUS at an address inside the guarded range then returns control to the
 * guard's start, which reports -EFAULT, and the caller fails that one transfer as usual. A SIGBUS
 * anywhere else still kills the process (the handler restores the default action and lets the
 * faulting instruction run again).
 *
 * Kernel copies (read, send, pread into or out of the mapping) need no guard: they fail with
 * EFAULT instead of raising a signal. Under ThreadSanitizer the guard does not work (atomic
 * accesses run inside its runtime, which treats a SIGBUS there as its own crash): TSan builds
 * are for finding races, not for surviving a shrunk segment.
 *
 * Use:
 *     struct shm_guard g;
 *     shm_guard_push(&g, base, size);
 *     if (sigsetjmp(g.jb, 0) == 0)
 *         rc = work_on_the_mapping(...);
 *     else
 *         rc = -EFAULT;
 *     shm_guard_pop(&g);
 * sigsetjmp must be called in the frame that stays live, so this cannot be a function; the
 * signal mask is not saved (SA_NODEFER keeps SIGBUS unblocked), which keeps the guard cheap. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SHM_GUARD_H
#define GF_SHM_GUARD_H

#include <setjmp.h>
#include <stddef.h>

struct shm_guard {
    sigjmp_buf jb;
    const unsigned char *base; /* the guarded range */
    size_t size;
    struct shm_guard *prev; /* guards nest per thread */
};

/* Installs the process-wide SIGBUS handler. Call once from main before any thread maps a
 * segment; idempotent. Returns 0 or -errno. Without it a guard is inert: SIGBUS kills. */
int shm_guard_install(void);

/* Makes g the thread's innermost guard over [base, base + size). */
void shm_guard_push(struct shm_guard *g, const void *base, size_t size);

/* Ends g (which must be the innermost guard), after a normal return or a jump back. */
void shm_guard_pop(struct shm_guard *g);

#endif
