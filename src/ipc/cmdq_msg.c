/* cmdq_msg.c - the command queue's request message: building one, and checking one received. */
/* SPDX-License-Identifier: MIT */
#include "cmdq.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ipc_names.h"
#include "shm_chan.h"

int cmdq_request_init(struct cmdq_request *req, pid_t proxy_pid, const char *seg_name,
                      uint64_t seg_size, uint64_t generation, const char *path, size_t path_len)
{
    size_t name_len;
    pid_t seg_pid;

    memset(req, 0, sizeof *req);
    if (proxy_pid <= 0)
        return -EINVAL;
    if (path_len > CMDQ_PATH_MAX)
        return -ENAMETOOLONG;
    if (path_len == 0 || path[0] != '/' || memchr(path, '\0', path_len))
        return -EINVAL;
    name_len = strnlen(seg_name, IPC_NAME_MAX);
    if (name_len == IPC_NAME_MAX)
        return -ENAMETOOLONG;
    if (ipc_name_parse(seg_name, IPC_KIND_SEGMENT, geteuid(), &seg_pid, NULL) < 0 ||
        seg_pid != proxy_pid)
        return -EINVAL;
    req->magic = CMDQ_MAGIC;
    req->version = CMDQ_VERSION;
    req->size = sizeof *req;
    req->proxy_pid = (uint32_t)proxy_pid;
    req->path_len = (uint32_t)path_len;
    req->generation = generation;
    req->seg_size = seg_size;
    memcpy(req->seg_name, seg_name, name_len + 1);
    memcpy(req->path, path, path_len);
    return 0;
}

/* The envelope every message of the queue shares: magic and version first (another version may
 * have another size), then exactly size bytes. Returns 0, -EBADMSG or -EPROTO. */
static int check_envelope(const void *buf, size_t len, uint32_t want_magic, size_t size)
{
    uint32_t magic;
    uint16_t version;

    if (len < sizeof magic + sizeof version)
        return -EBADMSG;
    memcpy(&magic, buf, sizeof magic);
    memcpy(&version, (const char *)buf + sizeof magic, sizeof version);
    if (magic != want_magic)
        return -EBADMSG;
    if (version != CMDQ_VERSION)
        return -EPROTO;
    return len == size ? 0 : -EBADMSG;
}

int cmdq_request_decode(const void *buf, size_t len, uid_t uid, struct cmdq_request *out)
{
    static const char zero_pad[sizeof out->pad_];
    struct cmdq_request r;
    pid_t seg_pid;
    int rc;

    if ((rc = check_envelope(buf, len, CMDQ_MAGIC, sizeof r)) < 0)
        return rc;
    memcpy(&r, buf, sizeof r);
    if (r.size != sizeof r || r.proxy_pid == 0 || r.proxy_pid > INT_MAX)
        return -EBADMSG;
    if (r.path_len == 0 || r.path_len > CMDQ_PATH_MAX)
        return -EBADMSG;
    if (!memchr(r.seg_name, '\0', sizeof r.seg_name))
        return -EBADMSG;
    /* Also catches a path without a NUL: strnlen is then sizeof r.path > CMDQ_PATH_MAX. */
    if (strnlen(r.path, sizeof r.path) != r.path_len || r.path[0] != '/')
        return -EBADMSG;
    if (memcmp(r.pad_, zero_pad, sizeof zero_pad) != 0)
        return -EBADMSG;
    if (r.seg_size < SHM_SEG_MIN || r.seg_size > SHM_SEG_MAX)
        return -EBADMSG;
    if (ipc_name_parse(r.seg_name, IPC_KIND_SEGMENT, uid, &seg_pid, NULL) < 0 ||
        seg_pid != (pid_t)r.proxy_pid)
        return -EPERM;
    *out = r;
    return 0;
}

int cmdq_reply_name(char *buf, uid_t uid, pid_t pid, uint32_t serial)
{
    return ipc_name_format(buf, IPC_KIND_REPLY, uid, pid, serial);
}

static int ctl_path_ok(uint32_t op, const char *path, size_t path_len)
{
    if (op == CMDQ_CTL_RELOAD)
        return path_len == 0;
    if (op != CMDQ_CTL_PURGE && op != CMDQ_CTL_BAN)
        return 0;
    return path_len > 0 && path_len <= CMDQ_PATH_MAX && path[0] == '/';
}

int cmdq_ctl_init(struct cmdq_ctl *ctl, enum cmdq_ctl_op op, pid_t sender_pid, const char *path,
                  size_t path_len)
{
    memset(ctl, 0, sizeof *ctl);
    if (sender_pid <= 0)
        return -EINVAL;
    if (path_len > CMDQ_PATH_MAX)
        return -ENAMETOOLONG;
    if (!ctl_path_ok((uint32_t)op, path, path_len) || (path_len && memchr(path, '\0', path_len)))
        return -EINVAL;
    ctl->magic = CMDQ_CTL_MAGIC;
    ctl->version = CMDQ_VERSION;
    ctl->size = sizeof *ctl;
    ctl->op = (uint32_t)op;
    ctl->sender_pid = (uint32_t)sender_pid;
    ctl->path_len = (uint32_t)path_len;
    if (path_len)
        memcpy(ctl->path, path, path_len);
    return 0;
}

int cmdq_is_ctl(const void *buf, size_t len)
{
    uint32_t magic;

    if (len < sizeof magic)
        return 0;
    memcpy(&magic, buf, sizeof magic);
    return magic == CMDQ_CTL_MAGIC;
}

int cmdq_ctl_decode(const void *buf, size_t len, struct cmdq_ctl *out)
{
    struct cmdq_ctl r;
    size_t tail;
    int rc;

    if ((rc = check_envelope(buf, len, CMDQ_CTL_MAGIC, sizeof r)) < 0)
        return rc;
    memcpy(&r, buf, sizeof r);
    if (r.size != sizeof r || r.sender_pid == 0 || r.sender_pid > INT_MAX)
        return -EBADMSG;
    if (r.path_len > CMDQ_PATH_MAX || !ctl_path_ok(r.op, r.path, r.path_len))
        return -EBADMSG;
    /* The path, then nothing but zero bytes: no NUL inside it, nothing hidden after it. */
    if (strnlen(r.path, r.path_len) != r.path_len)
        return -EBADMSG;
    tail = sizeof r.path - r.path_len;
    for (size_t i = 0; i < tail; i++)
        if (r.path[r.path_len + i] != '\0')
            return -EBADMSG;
    for (size_t i = 0; i < sizeof r.pad_; i++)
        if (r.pad_[i] != '\0')
            return -EBADMSG;
    *out = r;
    return 0;
}
