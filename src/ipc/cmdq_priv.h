/* cmdq_priv.h - what the command queue's message, server and client parts share: the registry
 * record and the identity checks of named objects. Not part of the API (see cmdq.h). */
/* SPDX-License-Identifier: MIT */
#ifndef GF_CMDQ_PRIV_H
#define GF_CMDQ_PRIV_H

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "ipc_names.h"

#define REGISTRY_MAGIC       0x47464352u /* "GFCR" */
#define REGISTRY_VERSION     2u          /* 2: the queue's serial in the last word (1: always 0) */
#define CMDQ_CREATE_ATTEMPTS 16          /* queue names tried before creation gives up (-EEXIST) */

/* The registry's contents: written by the cache once it holds the lock and its queue exists. */
struct registry_rec {
    uint32_t magic;
    uint32_t version;
    uint32_t pid;
    uint32_t queue_serial; /* the queue is ipc_name_format(IPC_KIND_CMDQ, uid, pid, this) */
};

/* The registry's file name in the runtime directory: the registry name without its '/'. */
static inline int registry_file(char *buf, uid_t uid)
{
    int rc = ipc_name_format(buf, IPC_KIND_REGISTRY, uid, 0, 0);

    if (rc == 0)
        memmove(buf, buf + 1, strlen(buf));
    return rc;
}

static inline int same_object(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev;
}

/* fstat of a queue descriptor (on Linux an mqd_t is a file descriptor). Through fstatat: TSan
 * does not intercept mq_open and mq_close, so it would take an fstat of a queue descriptor for
 * a use of whatever file last had that number, and report a race with another thread's close
 * of it; fstatat is not tracked per descriptor, so queue descriptors stay out of its view. */
static inline int mq_fstat(mqd_t mq, struct stat *st)
{
    return fstatat((int)mq, "", st, AT_EMPTY_PATH) < 0 ? -errno : 0;
}

#endif
