/* ipc_backend.h - which channel carries the cache protocol between webproxy and simplecached
 * (--ipc on both daemons; docs/ipc.md, "Backends"). */
/* SPDX-License-Identifier: MIT */
#ifndef GF_IPC_BACKEND_H
#define GF_IPC_BACKEND_H

enum ipc_backend {
    IPC_BACKEND_POSIX = 0, /* message queue + shared memory ring + semaphores (the default) */
    IPC_BACKEND_SYSV,      /* msgget / shmget / semget, the same ring protocol */
    IPC_BACKEND_UNIX,      /* a Unix domain socket carries the commands and the bytes */
    IPC_BACKEND_FD,        /* commands over a Unix socket, the file as a descriptor (sendfile) */
};

#define IPC_BACKEND_COUNT   4
#define IPC_BACKEND_DEFAULT IPC_BACKEND_POSIX
#define IPC_BACKEND_LIST    "posix, sysv, unix, fd"

/* Parses a backend name (exactly one of IPC_BACKEND_LIST). Returns 0 and *out, or -EINVAL. */
int ipc_backend_parse(const char *name, enum ipc_backend *out);

/* The backend's name ("posix", ...), or "?" for a value out of range. */
const char *ipc_backend_name(enum ipc_backend b);

#endif
