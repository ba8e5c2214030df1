/* ipc_backend.c - backend names. */
/* SPDX-License-Identifier: MIT */
#include "ipc_backend.h"

#include <errno.h>
#include <string.h>

static const char *const names[IPC_BACKEND_COUNT] = {"posix", "sysv", "unix", "fd"};

int ipc_backend_parse(const char *name, enum ipc_backend *out)
{
    if (name == NULL)
        return -EINVAL;
    for (int i = 0; i < IPC_BACKEND_COUNT; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum ipc_backend)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *ipc_backend_name(enum ipc_backend b)
{
    return (unsigned)b < IPC_BACKEND_COUNT ? names[b] : "?";
}
