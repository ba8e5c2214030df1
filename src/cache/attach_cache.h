/* attach_cache.h - simplecached keeps the proxies' segments mapped between requests: a bounded,
 * thread-safe table of attachments keyed by segment name, each re-validated before every use.
 *
 * Mapping a segment afresh for every request costs shm_open, fstat, mmap, a page fault for every
 * page the cache writes, and munmap (which serialises all workers on the mmap lock); the proxy's
 * pidfd cost a pidfd_open. A kept attachment is used again only when, at that moment, its
 * owner's pidfd says it runs, the name still opens the very object that was mapped (st_dev,
 * st_ino, size, uid, mode: shm_seg_revalidate) and the header still holds magic, version and
 * geometry; otherwise it is dropped and the segment attached again with every check of
 * shm_seg_attach. Nothing is taken from the request but the name and the claimed size, which
 * only bounds from below as in shm_seg_attach.
 *
 * Stale entries do not pin memory: a proxy replaces an abandoned segment under a new name and
 * unlinks the old one, and a dead proxy's segments are swept; attach_cache_sweep drops idle
 * entries whose owner has exited or whose name no longer opens their object, and when the table
 * is full the least recently used idle entry makes room. An entry in use is never unmapped. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_ATTACH_CACHE_H
#define GF_ATTACH_CACHE_H

#include <stdint.h>
#include <sys/types.h>

#include "shm_chan.h"

#define ATTACH_CACHE_MAX          4096u       /* largest capacity attach_cache_new accepts */
#define ATTACH_CACHE_POPULATE_MAX (16u << 20) /* first attach pre-faults segments up to this */

struct attach_cache;
struct attach_entry;

/* One request's use of a segment: seg is the caller's own view (seq 0, mapping borrowed),
 * pidfd the owner's (borrowed). Filled by attach_cache_get, ended by attach_cache_put. */
struct attach_lease {
    struct shm_seg seg;
    int pidfd;
    struct attach_entry *e_; /* private; NULL: an attachment not kept (the table was full) */
};

struct attach_cache_stats {
    uint64_t attaches;  /* segments mapped (shm_seg_attach_id calls that succeeded) */
    uint64_t reuses;    /* requests served through a kept mapping */
    uint64_t evictions; /* kept mappings dropped: stale, owner gone, LRU, or on request */
    uint64_t uncached;  /* attachments not kept because every entry was in use */
};

/* Creates an empty table of at most capacity (1..ATTACH_CACHE_MAX) kept attachments. Returns 0
 * and *out, or -EINVAL / -ENOMEM. */
int attach_cache_new(struct attach_cache **out, unsigned capacity);

/* Unmaps every kept segment and closes their pidfds. No lease may be outstanding. NULL is a
 * no-op. */
void attach_cache_free(struct attach_cache *c);

/* A mapped segment named name (an IPC segment name from a validated request) of the proxy pid,
 * claimed_size its claimed size: a kept attachment after re-validation, else a new one (kept
 * when there is room), with the owner's pidfd. Out of descriptors (-EMFILE, -ENFILE), it drops
 * every idle kept attachment and tries once more. Returns 0 and *lease; -ESRCH when pid has
 * exited; or shm_seg_attach's -errno. */
int attach_cache_get(struct attach_cache *c, const char *name, uint64_t claimed_size, pid_t pid,
                     struct attach_lease *lease);

/* Ends a lease. drop non-zero also forgets the attachment (e.g. after an abandoned transfer,
 * whose segment the proxy replaces): it is unmapped once no other lease uses it. */
void attach_cache_put(struct attach_cache *c, struct attach_lease *lease, int drop);

/* Drops every idle kept attachment whose owner has exited or whose name no longer opens its
 * object. Bounded by the capacity; takes the lock only between checks. Returns the number
 * dropped. */
unsigned attach_cache_sweep(struct attach_cache *c);

/* Kept attachments right now (in use or idle). */
unsigned attach_cache_size(struct attach_cache *c);

void attach_cache_stats(struct attach_cache *c, struct attach_cache_stats *out);

#endif
