/* cache_backend.c - the table of the cache's backends. */
/* SPDX-License-Identifier: MIT */
#include "cache_backend.h"

#include <stddef.h>

const struct cache_backend_ops *cache_backend_ops_for(enum ipc_backend b)
{
    switch (b) {
    case IPC_BACKEND_POSIX:
        return &cache_backend_posix;
    case IPC_BACKEND_SYSV:
        return &cache_backend_sysv;
    case IPC_BACKEND_UNIX:
        return &cache_backend_unix;
    case IPC_BACKEND_FD:
        return &cache_backend_fd;
    default:
        return NULL; /* not built yet */
    }
}
