/* shm_sem.c - a futex-based counting semaphore whose shared words are only ever values. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* syscall */
#include "shm_sem.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

/* No FUTEX_PRIVATE_FLAG: the word is shared between processes. */
static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *ts, uint32_t val3)
{
    return syscall(SYS_futex, word, op, val, ts, NULL, val3);
}

void shm_sem_init(struct shm_sem *s, uint32_t value)
{
    __atomic_store_n(&s->value, value, __ATOMIC_RELAXED);
    __atomic_store_n(&s->waiters, 0, __ATOMIC_RELAXED);
}

int shm_sem_post(struct shm_sem *s)
{
    uint32_t v = __atomic_load_n(&s->value, __ATOMIC_RELAXED);

    do {
        if (v >= SHM_SEM_MAX)
            return -EOVERFLOW;
    } while (
        !__atomic_compare_exchange_n(&s->value, &v, v + 1, 1, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
    /* Sequentially consistent with the waiter's store of the flag before it sleeps: either we
     * see the flag and wake every sleeper (each sets it again if it sleeps again), or its futex
     * wait sees the new count and does not sleep. Clearing it here is what makes a scribbled
     * flag heal by itself: it costs at most one lost wake, never one per post. */
    if (__atomic_exchange_n(&s->waiters, 0, __ATOMIC_SEQ_CST) != 0 &&
        futex(&s->value, FUTEX_WAKE, INT_MAX, NULL, 0) < 0)
        return -errno;
    return 0;
}

int shm_sem_trywait(struct shm_sem *s)
{
    uint32_t v = __atomic_load_n(&s->value, __ATOMIC_RELAXED);

    while (v > 0) {
        if (v > SHM_SEM_MAX)
            return -EBADMSG;
        if (__atomic_compare_exchange_n(&s->value, &v, v - 1, 1, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return 0;
    }
    return -EAGAIN;
}

int shm_sem_clockwait(struct shm_sem *s, const struct timespec *abs)
{
    for (;;) {
        int rc = shm_sem_trywait(s), err = 0;
        if (rc != -EAGAIN)
            return rc;
        __atomic_store_n(&s->waiters, 1, __ATOMIC_SEQ_CST);
        /* Sleeps only while the count is still 0; FUTEX_WAIT_BITSET takes an absolute
         * CLOCK_MONOTONIC deadline. */
        if (futex(&s->value, FUTEX_WAIT_BITSET, 0, abs, FUTEX_BITSET_MATCH_ANY) < 0)
            err = errno;
        switch (err) {
        case 0:      /* woken */
        case EAGAIN: /* the count changed before we slept */
            continue;
        case ETIMEDOUT:
            rc = shm_sem_trywait(s);
            return rc == -EAGAIN ? -ETIMEDOUT : rc;
        default:
            return -err;
        }
    }
}

uint32_t shm_sem_value(const struct shm_sem *s)
{
    return __atomic_load_n(&s->value, __ATOMIC_RELAXED);
}
