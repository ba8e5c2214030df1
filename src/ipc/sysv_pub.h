/* sysv_pub.h - where a sysv cache publishes its command queue's key: a small file in the
 * runtime directory (ipc_rundir.h), which is 0700 and ours, so no other user can write it,
 * replace it or take its name first.
 *
 *   <runtime dir>/getfile-<uid>-sysv.key   { magic "GFSK", version, the cache's pid, the key }
 *
 * A System V key is 32 bits in one namespace every user shares: another user may create an
 * object under our cache's pid key before the cache starts. The cache then takes a random key
 * (sysv_msgq_create_free) and the proxies find it here rather than by guessing, so a squatter
 * cannot stop the cache from starting, and what the proxy opens is still checked (uid, creator
 * uid, mode 0600: sysv_msgq_open_key). Written to a temporary name and renamed, so a reader
 * sees the old record or the new one, never a mix. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SYSV_PUB_H
#define GF_SYSV_PUB_H

#include <sys/ipc.h>
#include <sys/types.h>

#define SYSV_PUB_MAGIC   0x4746534bu /* "GFSK" */
#define SYSV_PUB_VERSION 1u

/* Publishes key as the command queue of cache pid in the directory dir (mode 0600). Returns 0
 * or -errno. */
int sysv_pub_write(int dir, pid_t pid, key_t key);

/* Reads the record in dir: a regular file (not a symlink) of our uid, mode 0600, of exactly one
 * record with our magic and version, a pid > 0 and a key of ours. Returns 0 with *pid and *key,
 * or -ENOENT (none), -EPERM (owner or mode), -EBADMSG (content) or -errno. */
int sysv_pub_read(int dir, pid_t *pid, key_t *key);

/* Removes the record when it still names pid. Idempotent. */
void sysv_pub_remove(int dir, pid_t pid);

/* At a cache's start, holding the instance lock: when the record names a dead cache whose queue
 * had a random (SYSV_KIND_CMDR) key, removes that queue if it is ours (sysv_sweep_dead cannot
 * tell its owner: the key holds no pid), and the record. A record names its key before the
 * queue exists (sysv_msgq_create_free's hook), so a queue under it that is not ours (another
 * user's) is left alone. Returns 1 when a queue was removed, else 0. */
int sysv_pub_sweep(int dir);

#endif
