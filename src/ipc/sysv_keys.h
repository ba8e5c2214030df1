/* sysv_keys.h - System V IPC keys of ours, and the sweep of a dead owner's objects.
 *
 * System V queues, segments and semaphore sets are not files: they outlive every process
 * (nothing removes them at exit, unlike a descriptor) until IPC_RMID or a reboot, and they are
 * found by a 32-bit key, not a name. So the key carries what a later start needs to tell our
 * leftovers from anything else:
 *
 *   bits 31..24  SYSV_KEY_MAGIC (0x67, 'g')
 *   bits 23..22  enum sysv_kind
 *   bits 21..0   SYSV_KIND_CMD: the owner's pid (pid_max is at most 2^22 = 4194304)
 *                SYSV_KIND_SEG: a random serial; the owner is the segment's creator pid
 *                (shm_cpid, which the kernel records and /proc/sysvipc/shm lists)
 *                SYSV_KIND_CMDR: a random serial, for a command queue whose pid key another
 *                user took first; its owner is named where only our uid can write it
 *                (sysv_pub.h, in the runtime directory), which is also how proxies find it
 *
 * Queues have no creator pid in the kernel (only the last sender's and receiver's), which is
 * why a command queue's key holds its owner's pid. A key is not a defence against other users:
 * anybody may create an object under any key first; the creator then gets EEXIST and the
 * opener checks owner (uid and cuid), mode 0600 and, for segments, the creator pid. A taken key
 * never stops us: a segment, or a queue whose pid key is taken, takes another random key. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SYSV_KEYS_H
#define GF_SYSV_KEYS_H

#include <stdint.h>
#include <sys/ipc.h>
#include <sys/types.h>

#define SYSV_KEY_MAGIC    0x67u
#define SYSV_KEY_LOW_BITS 22
#define SYSV_KEY_LOW_MAX  ((1u << SYSV_KEY_LOW_BITS) - 1u)

enum sysv_kind {
    SYSV_KIND_CMD = 0,  /* a cache's command queue; low bits: the cache's pid */
    SYSV_KIND_SEG = 1,  /* a proxy's data segment; low bits: a random serial */
    SYSV_KIND_CMDR = 2, /* a cache's command queue whose pid key was taken; a random serial */
};

/* Sweep selectors for sysv_sweep_dead. */
enum sysv_sweep_kinds { SYSV_SWEEP_CMD = 1 << 0, SYSV_SWEEP_SEG = 1 << 1 };

/* The key of kind with low bits low. Returns the key (never IPC_PRIVATE), or -1 (which is
 * not a key of ours) when low is 0 or above SYSV_KEY_LOW_MAX, or kind is unknown. */
key_t sysv_key_make(enum sysv_kind kind, uint32_t low);

/* Splits key into kind and low bits. Returns 0, or -EINVAL when key is not one of ours
 * (another magic, an unknown kind, low bits 0). */
int sysv_key_parse(key_t key, enum sysv_kind *kind, uint32_t *low);

/* A random serial in [1, SYSV_KEY_LOW_MAX] for a segment key (getrandom). */
uint32_t sysv_random_serial(void);

/* What one sweep saw and did. */
struct sysv_sweep_stats {
    unsigned queues_removed, segs_removed;
    unsigned live_kept; /* ours by key and uid, owner alive: left alone */
};

/* Removes the System V objects of uid whose key is ours (sysv_key_parse) and whose owner
 * (the pid in a SYSV_KIND_CMD queue's key, a segment's creator pid) no longer exists (kill(pid, 0)
 * fails with ESRCH), reading /proc/sysvipc/msg and /proc/sysvipc/shm. An object another uid owns or
 * created, a key that is not ours and a live owner's object are never touched. A segment still
 * attached somewhere is only marked: the kernel frees it at the last detach. kinds is a mask
 * of enum sysv_sweep_kinds; st may be NULL. SYSV_KIND_CMDR queues carry no pid: they are
 * removed by sysv_pub_sweep. Returns the number of objects removed or -errno
 * (-ENOENT: /proc/sysvipc is missing). */
int sysv_sweep_dead(uid_t uid, unsigned kinds, struct sysv_sweep_stats *st);

/* Counts the objects of uid with one of our keys (kinds as above), dead owner or not; also
 * counts segments already marked for removal (key 0) that pid created when pid > 0. For
 * tests and for checks that nothing is left. Returns the count or -errno. */
int sysv_count_ours(uid_t uid, unsigned kinds, pid_t pid);

#endif
