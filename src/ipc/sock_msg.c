/* sock_msg.c - encoding and validation of the socket backends' messages. */
/* SPDX-License-Identifier: MIT */
#include "sock_msg.h"

#include <errno.h>
#include <string.h>

_Static_assert(sizeof(struct sock_req_hdr) == SOCK_REQ_HDR_SIZE, "request header layout");
_Static_assert(sizeof(struct sock_resp) == SOCK_RESP_SIZE, "response layout");

static int path_ok(const char *path, size_t len)
{
    return len >= 1 && len <= SOCK_PATH_MAX && path[0] == '/' && memchr(path, '\0', len) == NULL;
}

int sock_req_encode(void *buf, size_t cap, unsigned backend, const char *path, size_t path_len)
{
    return sock_req_encode_flags(buf, cap, backend, 0, path, path_len);
}

int sock_req_encode_flags(void *buf, size_t cap, unsigned backend, unsigned flags, const char *path,
                          size_t path_len)
{
    struct sock_req_hdr h = {.magic = SOCK_REQ_MAGIC,
                             .version = SOCK_MSG_VERSION,
                             .backend = (uint16_t)backend,
                             .path_len = (uint32_t)path_len,
                             .flags = flags};

    if (path == NULL || !path_ok(path, path_len) || backend > UINT16_MAX ||
        (flags & ~SOCK_REQ_GEN) != 0)
        return -EINVAL;
    if (cap < SOCK_REQ_HDR_SIZE + path_len)
        return -ENOSPC;
    memcpy(buf, &h, sizeof h);
    memcpy((char *)buf + sizeof h, path, path_len);
    return (int)(sizeof h + path_len);
}

int sock_req_decode_hdr(const void *buf, size_t len, struct sock_req_hdr *out)
{
    struct sock_req_hdr h;

    if (len < sizeof h)
        return -EBADMSG;
    memcpy(&h, buf, sizeof h);
    if (h.magic != SOCK_REQ_MAGIC)
        return -EBADMSG;
    if (h.version != SOCK_MSG_VERSION)
        return -EPROTO;
    if (h.path_len == 0 || h.path_len > SOCK_PATH_MAX || (h.flags & ~SOCK_REQ_GEN) != 0)
        return -EBADMSG;
    *out = h;
    return 0;
}

int sock_req_decode(const void *buf, size_t len, struct sock_req *out)
{
    struct sock_req_hdr h;
    const char *path = (const char *)buf + SOCK_REQ_HDR_SIZE;
    int rc = sock_req_decode_hdr(buf, len, &h);

    if (rc < 0)
        return rc;
    if (len != SOCK_REQ_HDR_SIZE + h.path_len || !path_ok(path, h.path_len))
        return -EBADMSG;
    out->backend = h.backend;
    out->flags = h.flags;
    out->path_len = h.path_len;
    memcpy(out->path, path, h.path_len);
    out->path[h.path_len] = '\0';
    return 0;
}

/* The rules of sock_resp_decode, on a response whose magic and version are right. */
static int resp_ok(const struct sock_resp *r)
{
    if (r->reserved != 0 || r->status > SOCK_STATUS_ORIGIN_NOT_FOUND)
        return 0;
    if (r->kind == SOCK_RESP_STREAM)
        return r->offset == 0 && r->file_size == 0 && r->mtime_ns == 0 && r->ctime_ns == 0 &&
               r->keep_ms == 0 && r->gen == 0 && (r->status == SOCK_STATUS_OK || r->length == 0);
    if (r->kind == SOCK_RESP_FD)
        return r->status == SOCK_STATUS_OK && r->offset <= r->file_size &&
               r->length <= r->file_size - r->offset && r->keep_ms <= SOCK_KEEP_MAX_MS;
    if (r->kind == SOCK_RESP_GEN)
        return r->status == SOCK_STATUS_OK && r->length == 0 && r->offset == 0 &&
               r->file_size == 0 && r->mtime_ns == 0 && r->ctime_ns == 0 && r->keep_ms == 0;
    return 0;
}

int sock_resp_encode(void *buf, size_t cap, const struct sock_resp *r)
{
    struct sock_resp w = *r;

    if (cap < SOCK_RESP_SIZE)
        return -ENOSPC;
    w.magic = SOCK_RESP_MAGIC;
    w.version = SOCK_MSG_VERSION;
    if (!resp_ok(&w))
        return -EINVAL;
    memcpy(buf, &w, sizeof w);
    return (int)SOCK_RESP_SIZE;
}

int sock_resp_decode(const void *buf, size_t len, struct sock_resp *out)
{
    struct sock_resp r;

    if (len != sizeof r)
        return -EBADMSG;
    memcpy(&r, buf, sizeof r);
    if (r.magic != SOCK_RESP_MAGIC)
        return -EBADMSG;
    if (r.version != SOCK_MSG_VERSION)
        return -EPROTO;
    if (!resp_ok(&r))
        return -EBADMSG;
    *out = r;
    return 0;
}
