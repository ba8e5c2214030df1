/* peer.h - is the other process still alive? pidfd-based, no heartbeat. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_PEER_H
#define GF_PEER_H

#include <sys/types.h>

/* Opens a pidfd for pid (CLOEXEC; any process, not only a child). The pidfd names that
 * very process: a later reuse of the pid number does not fool it. Where pidfd_open is missing
 * (Linux < 5.3, valgrind 3.19) it returns peer_open_proc(pid) instead. The caller closes it.
 * Returns the fd (>= 0) or -errno (-ESRCH: no such process, -EINVAL: pid <= 0). */
int peer_open(pid_t pid);

/* The fallback: a /proc/<pid> directory descriptor (CLOEXEC), which also stays bound to that
 * very process. peer_alive accepts either kind. Same returns as peer_open. */
int peer_open_proc(pid_t pid);

/* 1 while the process behind pidfd runs, 0 once it has exited (a zombie counts as exited),
 * -errno on error (-EBADF). Never blocks: an fstat, then a poll with timeout 0 (or a read of
 * /proc/<pid>/stat for a peer_open_proc descriptor). */
int peer_alive(int pidfd);

/* 1 when every uid of process pid (real, effective, saved, filesystem: the Uid line of
 * /proc/<pid>/status) is uid, 0 when one differs, -errno when it cannot be read (-ESRCH: gone).
 * Open a pidfd first and check peer_alive after, so a reused pid number is not taken for it. */
int peer_uids_are(pid_t pid, uid_t uid);

#endif
