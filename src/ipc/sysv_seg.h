/* sysv_seg.h - the data channel's segment as System V shared memory (shmget/shmat), with the
 * very ring of shm_chan.h inside: the same header, slots, futex semaphores, generation and
 * cancel word, so shm_seg_next/release/cancel/reserve/publish/abandon work on it unchanged.
 *
 * The proxy creates a segment (key: a random SYSV_KIND_SEG serial, IPC_EXCL, mode exactly
 * 0600), attaches it and at once marks it for removal (IPC_RMID): on Linux a segment marked so
 * can still be attached by id until its last detach, and then the kernel frees it. So a
 * segment is never left behind, whichever side is killed, except in the window between
 * shmget and IPC_RMID (microseconds), which sysv_sweep_dead covers (key and creator pid).
 * The cache attaches by shmid (which travels in the request) and checks owner and creator
 * (our uid), mode 0600, that the creator pid is the requesting proxy, the real size
 * (shm_segsz) and the header.
 *
 * Semaphores: the ring keeps its futex semaphores (shm_sem.h) inside the segment rather than a
 * semget set with SEM_UNDO. SEM_UNDO undoes a dead process's adjustments: a cache that posted
 * its last chunks and exited would have those posts taken back (the proxy loses data it was
 * owed: test_sysv's test_sem_undo_loses_posts), and a producer's semadj saturates after 32767
 * posts not matched by its own waits (semop fails with ERANGE: test_sem_undo_erange), which a
 * one-way producer/consumer count always reaches on a long file. SEM_UNDO fits a lock held by
 * one process; these counts move between two. The equivalent that keeps a dead peer from
 * wedging the ring is the one shm_chan already has: sliced waits that check the peer's pidfd
 * and the cancel word. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SYSV_SEG_H
#define GF_SYSV_SEG_H

#include <stdint.h>
#include <sys/types.h>

#include "shm_chan.h"

#define SYSV_SEG_CREATE_ATTEMPTS 16 /* random keys tried before -EEXIST */

/* Creates, attaches and marks for removal a segment of size bytes (SHM_SEG_MIN..SHM_SEG_MAX)
 * laid out by shm_seg_layout_init; *shmid is its id, and seg->name the segment name
 * /getfile-<uid>-<pid>-seg<shmid> (ipc_names.h: never a /dev/shm object here), which is what
 * the request carries, so cmdq_request_decode checks it as for posix. Returns 0 or -errno (-EINVAL
 * size, -ENOSPC/-ENOMEM shmmax/shmall/memory, -EEXIST when every key tried was taken); on failure
 * nothing is left. */
int sysv_seg_create(struct shm_seg *seg, int *shmid, uint64_t size);

/* Detaches a segment created by sysv_seg_create (already marked for removal: the kernel frees
 * it at the last detach) and zeroes *seg. Idempotent on a zeroed struct. */
void sysv_seg_destroy(struct shm_seg *seg);

/* Attaches segment shmid for the cache: of our uid (owner and creator), mode exactly 0600,
 * created by process creator, real size within limits and at least claimed_size, header of
 * shm_geometry(real size). Returns 0 or -errno (-EINVAL/-EIDRM: no such segment, -EPERM owner,
 * mode or creator, -EBADMSG size or header). */
int sysv_seg_attach(struct shm_seg *seg, int shmid, pid_t creator, uint64_t claimed_size);

/* The shmid in a request's segment name (as sysv_seg_create made it) whose pid must be creator.
 * Returns 0 and *shmid, or -EPERM (not such a name of our uid, another pid, an id too large). */
int sysv_seg_id_of(const char *name, pid_t creator, int *shmid);

/* Detaches an attached segment. Idempotent on a zeroed struct. */
void sysv_seg_detach(struct shm_seg *seg);

#endif
