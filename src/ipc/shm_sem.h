/* shm_sem.h - a counting semaphore in shared memory whose every failure is a value.
 *
 * glibc's process-shared sem_t keeps, next to its count, a word that selects the futex
 * operation; a peer that scribbles over it makes glibc abort the process ("The futex facility
 * returned an unexpected error code"). Here both shared words are only ever counts: each is
 * read into a local and checked against SHM_SEM_MAX, and a futex error is returned, never
 * fatal. A peer that writes them can only make us see a wrong count (a spurious wake, a lost
 * post (one: the waiter flag heals at the next post), -EBADMSG), which the segment protocol
 * survives anyway: every chunk is validated, every
 * wait is sliced and checks the cancel word and the peer's life.
 *
 * Post and wait pair as release and acquire, so what the poster wrote before posting is
 * visible to the thread whose wait took that unit (also to TSan, which sees the atomics). */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SHM_SEM_H
#define GF_SHM_SEM_H

#include <stdint.h>
#include <time.h>

/* Lives in shared memory: plain words, no pointers; all zero is a valid empty semaphore. */
struct shm_sem {
    uint32_t value;   /* units available; the futex word */
    uint32_t waiters; /* non-zero: someone may sleep; a post clears it and wakes them all */
};

#define SHM_SEM_MAX 1024u /* a count above this is corruption, not a count */

/* Sets the count (not atomic with respect to other users: call before sharing). */
void shm_sem_init(struct shm_sem *s, uint32_t value);

/* Adds a unit and wakes one waiter. Returns 0, -EOVERFLOW (the count is at SHM_SEM_MAX or
 * above: corrupt; nothing was added) or -errno from the wake (the unit was added). */
int shm_sem_post(struct shm_sem *s);

/* Takes a unit if one is there. Returns 0, -EAGAIN (none) or -EBADMSG (corrupt count). */
int shm_sem_trywait(struct shm_sem *s);

/* Takes a unit, waiting until abs (CLOCK_MONOTONIC, absolute) at most. Returns 0,
 * -ETIMEDOUT, -EINTR (a signal handler ran), -EBADMSG (corrupt count) or another -errno. */
int shm_sem_clockwait(struct shm_sem *s, const struct timespec *abs);

/* The count as it is now (a snapshot), for idle checks and tests. */
uint32_t shm_sem_value(const struct shm_sem *s);

#endif
