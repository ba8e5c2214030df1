/* cache_chan.c - the backend table and the posix channel (handle_with_cache.c). */
/* SPDX-License-Identifier: MIT */
#include "cache_chan.h"

#include <errno.h>

static int posix_open(void **out, const struct cache_client_options *opt)
{
    struct cache_client *cc = NULL;
    int rc = cache_client_new(&cc, opt);

    if (rc == 0)
        *out = cc;
    return rc;
}

static void posix_close(void *impl)
{
    cache_client_free(impl);
}

static int posix_handle(void *impl, struct gfs_ctx *ctx, const char *path, size_t path_len,
                        int answer_miss)
{
    return handle_with_cache(ctx, path, path_len, impl, answer_miss);
}

static const struct cache_chan_ops posix_ops = {"posix", posix_open, posix_close, posix_handle,
                                                NULL};

/* sysv: the same client and ring, in System V segments and queue (cache_client_new_sysv). */
static int sysv_open(void **out, const struct cache_client_options *opt)
{
    struct cache_client *cc = NULL;
    int rc = cache_client_new_sysv(&cc, opt);

    if (rc == 0)
        *out = cc;
    return rc;
}

static const struct cache_chan_ops sysv_ops = {"sysv", sysv_open, posix_close, posix_handle, NULL};

const struct cache_chan_ops *cache_chan_ops_for(enum ipc_backend b)
{
    switch (b) {
    case IPC_BACKEND_POSIX:
        return &posix_ops;
    case IPC_BACKEND_SYSV:
        return &sysv_ops;
    case IPC_BACKEND_UNIX:
        return &cache_chan_unix_ops;
    case IPC_BACKEND_FD:
        return &cache_chan_fd_ops;
    default:
        return NULL;
    }
}

int cache_chan_open(struct cache_chan *ch, enum ipc_backend b,
                    const struct cache_client_options *opt)
{
    const struct cache_chan_ops *ops = cache_chan_ops_for(b);
    int rc;

    ch->ops = NULL;
    ch->impl = NULL;
    if (ops == NULL)
        return -ENOSYS;
    rc = ops->open(&ch->impl, opt);
    if (rc == 0)
        ch->ops = ops;
    return rc;
}

void cache_chan_close(struct cache_chan *ch)
{
    if (ch->ops != NULL)
        ch->ops->close(ch->impl);
    ch->ops = NULL;
    ch->impl = NULL;
}
