/* ipc_names.h - names of every IPC object of ours, their strict parsing, and the sweep of
 * objects left by dead owners.
 *
 *   getfile-<uid>-cache               registry of the cache: a file in the runtime directory
 *                                     (ipc_rundir.h), never in a shared namespace; formatted
 *                                     with a leading '/' like the others
 *   /getfile-<uid>-<pid>-cmd          command queue of the cache process <pid> (serial 0)
 *   /getfile-<uid>-<pid>-cmd<serial>  the same, when the plain name was taken (serial >= 1)
 *   /getfile-<uid>-<pid>-seg<serial>  data segment <serial> of the proxy process <pid>
 *   /getfile-<uid>-<pid>-stats        live figures of the daemon <pid> (src/stats/stats.h)
 *   /getfile-<uid>-<pid>-stats<serial>  the same, when the plain name was taken (serial >= 1)
 *
 * <uid>, <pid> and <serial> are plain decimal without leading zeros (1..10 digits; a pid is at
 * least 1, a uid or serial may be 0), nothing after them. The owner's
 * uid keeps users apart; the owner's pid makes every run's names unique and lets a later run
 * tell a dead owner's leftovers from a live one's objects. Queues and segments live in
 * namespaces every user may write (/dev/shm, the mqueue file system): another user can create
 * any name first. So a creator never depends on getting one name: on EEXIST it takes a new
 * random serial (ipc_random_serial), and the name actually used reaches the other side through
 * the registry (queue) or the request (segment), or is found by listing (stats, checked by
 * owner); whoever opens an object checks its owner. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_IPC_NAMES_H
#define GF_IPC_NAMES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IPC_NAME_MAX 64 /* bytes of any of our names, NUL included */

enum ipc_kind { IPC_KIND_REGISTRY, IPC_KIND_CMDQ, IPC_KIND_SEGMENT, IPC_KIND_STATS };

/* Formats a name into buf (IPC_NAME_MAX bytes). pid/serial are ignored where the kind has none
 * (a queue's or stats object's serial 0 gives the plain "-cmd" or "-stats" name).
 * Returns 0, -EINVAL (pid <= 0 for a kind with a pid, unknown kind) or -ENAMETOOLONG. */
int ipc_name_format(char *buf, enum ipc_kind kind, uid_t uid, pid_t pid, uint32_t serial);

/* Parses name (reads at most IPC_NAME_MAX bytes; a NUL must come before) against the pattern of
 * kind for exactly this uid. Stores the pid and serial found (when the kind has them). Returns 0,
 * or -EINVAL for anything else (other uid, "//x", "noslash", leading zeros, ...). */
int ipc_name_parse(const char *name, enum ipc_kind kind, uid_t uid, pid_t *pid, uint32_t *serial);

/* A random serial, never 0, from getrandom. Returns 0 or -errno. */
int ipc_random_serial(uint32_t *out);

/* Removes the segments, stats objects and queues of this uid whose owner pid no longer exists
 * (kill(pid, 0) fails with ESRCH), and returns how many were removed, or -errno. kinds is a bit
 * mask of (1 << IPC_KIND_CMDQ) | (1 << IPC_KIND_SEGMENT) | (1 << IPC_KIND_STATS). Only names that
 * parse strictly for uid and objects whose owner (st_uid) is uid are touched; the registry never
 * is. Segments and stats objects are listed in /dev/shm; queues only in /dev/mqueue, so they are
 * skipped (silently, see ipc_mqueue_listable) where the mqueue filesystem is not mounted. A dead
 * owner whose pid was reused by a live process keeps its objects until that pid is free again.
 * Names carry no instance (ipc_rundir.h): a dead owner's objects are removed whatever its
 * instance, a live owner's never, so instances can neither lose live objects to each other's
 * sweep nor keep a crashed one's. Call
 * it only while holding the cache's single-instance lock (for queues) or at proxy start (for
 * segments). */
int ipc_sweep_dead(uid_t uid, unsigned kinds);

/* 1 when /dev/mqueue is a mounted mqueue filesystem (so ipc_sweep_dead can see queues), else 0.
 * mq_open/mq_unlink work either way. */
int ipc_mqueue_listable(void);

#endif
