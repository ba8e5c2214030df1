/* peer.h - is the other process still alive? pidfd-based, no heartbeat. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_PEER_H
#define GF_PEER_H

#include <sys/types.h>

/* Opens a pidfd for pid (CLOEXEC). Returns the fd (>= 0) or -errno (-ESRCH: no such process). */
int peer_open(pid_t pid);

/* 1 while the process behind pidfd runs, 0 once it has exited, -errno on error. Never blocks. */
int peer_alive(int pidfd);

#endif
