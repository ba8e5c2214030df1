/* cache_chan.h - the proxy's channel to simplecached, one ops table per --ipc backend
 * (ipc_backend.h). Every backend gives handle the same contract as handle_with_cache. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_CACHE_CHAN_H
#define GF_CACHE_CHAN_H

#include <stddef.h>

#include "gfserver.h"
#include "handle_with_cache.h"
#include "ipc_backend.h"

struct cache_chan_ops {
    const char *name;
    /* Sets the channel up (segments, sockets, ...); the options are the posix ones, each
     * backend uses what applies (timeouts, stats). Returns 0 and *out, or -errno. */
    int (*open)(void **out, const struct cache_client_options *opt);
    /* Frees everything open made; after every worker stopped. NULL is a no-op. */
    void (*close)(void *impl);
    /* Serves path through ctx; returns exactly as handle_with_cache (handle_with_cache.h), so
     * the caller falls back to the origin or answers ERROR the same way for every backend.
     * Thread-safe. */
    int (*handle)(void *impl, struct gfs_ctx *ctx, const char *path, size_t path_len,
                  int answer_miss);
    /* Optional (NULL: never): serves path through ctx from what the proxy itself holds (fd:
     * a kept descriptor), with no round trip to the cache and no wait on anything. Returns 1
     * with *rc as handle would return it when it served (or began to: the header went out),
     * 0 with ctx untouched when nothing valid is held for path. Thread-safe. */
    int (*try_kept)(void *impl, struct gfs_ctx *ctx, const char *path, size_t path_len, int *rc);
};

/* The socket backends (cache_sock_chan.c). */
extern const struct cache_chan_ops cache_chan_unix_ops;
extern const struct cache_chan_ops cache_chan_fd_ops;

/* The ops of backend b, or NULL when this build does not have it yet. */
const struct cache_chan_ops *cache_chan_ops_for(enum ipc_backend b);

struct cache_chan {
    const struct cache_chan_ops *ops;
    void *impl;
};

/* Opens the channel of backend b. Returns 0, -ENOSYS (not built), or what open returned. */
int cache_chan_open(struct cache_chan *ch, enum ipc_backend b,
                    const struct cache_client_options *opt);

static inline int cache_chan_handle(const struct cache_chan *ch, struct gfs_ctx *ctx,
                                    const char *path, size_t path_len, int answer_miss)
{
    return ch->ops->handle(ch->impl, ctx, path, path_len, answer_miss);
}

/* The channel's try_kept, or 0 (nothing held) for a backend without one. */
static inline int cache_chan_try_kept(const struct cache_chan *ch, struct gfs_ctx *ctx,
                                      const char *path, size_t path_len, int *rc)
{
    return ch->ops->try_kept != NULL ? ch->ops->try_kept(ch->impl, ctx, path, path_len, rc) : 0;
}

/* Closes an opened channel; a zeroed one is a no-op. */
void cache_chan_close(struct cache_chan *ch);

#endif
