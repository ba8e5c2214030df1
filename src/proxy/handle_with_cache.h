/* handle_with_cache.h - the proxy's side of the cache: a pool of shared memory segments and the
 * handler that streams a file from simplecached to a GETFILE client. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_HANDLE_WITH_CACHE_H
#define GF_HANDLE_WITH_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "gfserver.h"
#include "seg_classes.h"
#include "stats.h"

struct cache_client; /* shared by all proxy workers; thread-safe */

struct cache_client_options {
    struct seg_classes classes; /* the pool's size classes (seg_classes_parse or _single) */
    int segment_wait_ms;        /* longest wait for a free segment; 0 = 10000 */
    int stall_ms;               /* longest wait for the cache's next chunk; 0 = 30000 */
    int send_timeout_ms;        /* longest wait for room in the command queue; 0 = 2000 */
    /* Live figures (borrowed; NULL: none), a slot per segment: slot i is segment i with its
     * size, state, the worker, the path and the bytes sent; messages counts requests sent. */
    struct stats_region *stats;
};

/* Creates the segment pool (sweeping segments of dead proxies of this uid first) and the
 * command-queue client. Returns 0 or -errno (-ENOSPC: /dev/shm too small for the pool). */
int cache_client_new(struct cache_client **out, const struct cache_client_options *opt);

/* cache_client_new for the sysv backend (docs/ipc-lab.md): the same ring protocol in System V
 * segments (sysv_seg.h, marked for removal at creation), requests on the cache's System V
 * queue (sysv_msgq.h, found by the pid the registry names: cmdq_client_locate). A start sweeps
 * dead proxies' System V segments instead of /dev/shm. handle_with_cache serves through it
 * unchanged. Same returns. */
int cache_client_new_sysv(struct cache_client **out, const struct cache_client_options *opt);

/* Destroys every segment (unmaps and unlinks) and frees the client. NULL is a no-op. Call after
 * every worker has stopped. */
void cache_client_free(struct cache_client *cc);

/* Serves path from the cache through ctx, in a segment of the smallest class that holds the
 * file when an earlier transfer of path told its size (size_hints.h), else of the largest
 * class; a larger free segment when none of that class is free.
 * Returns 0 when the response is complete (OK with every byte; or FILE_NOT_FOUND if
 * answer_miss is non-zero), and nothing sent yet otherwise:
 *   -ENOENT      the cache does not have the file (and answer_miss was 0)
 *   -ENODATA     the cache fills itself and its origin says the file does not exist (and
 *                answer_miss was 0): answer FILE_NOT_FOUND, do not ask an origin again
 *   -ENOTCONN    no cache is running, or the one running serves another --ipc;
 *   -ESRCH       the cache died before answering;
 *   -ETIMEDOUT   no free segment or no answer in time
 * so the caller can fall back to the origin or answer ERROR. After the header was sent any
 * failure returns -errno and the caller must return it (the client sees a short transfer). */
int handle_with_cache(struct gfs_ctx *ctx, const char *path, size_t path_len,
                      struct cache_client *cc, int answer_miss);

#endif
