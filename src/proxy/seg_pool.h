/* seg_pool.h - the proxy's pool of shared memory segments: a fixed set created at start in one
 * or more size classes (seg_classes.h), taken by one request at a time in FIFO order, and
 * replaced (never reused) after a failed transfer. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SEG_POOL_H
#define GF_SEG_POOL_H

#include <stdint.h>

#include "seg_classes.h"
#include "shm_chan.h"
#include "stats.h"

#define SEG_POOL_MAX       1024u
#define SEG_POOL_REGROW_MS 1000 /* after a failed re-creation, the next try waits this long */

/* One segment of the pool. Between seg_pool_take and seg_pool_give it belongs to the taker
 * alone, which may use seg and generation freely. */
struct seg_pool_item {
    struct shm_seg seg;  /* mapped, named /getfile-<uid>-<pid>-seg<serial> */
    uint64_t generation; /* last generation used on this slot; survives replacement */
    unsigned index_;     /* private: position in the pool */
    unsigned class_;     /* private: its size class (index into the pool's classes) */
};

struct seg_pool;

/* Creates n segments of size bytes each (serials 1..n) with shm_seg_create. Returns 0 and *out, or
 * -errno (-EINVAL for n outside 1..SEG_POOL_MAX or a size outside SHM_SEG_MIN..SHM_SEG_MAX; -ENOSPC
 * when /dev/shm is too small); on failure nothing is left. */
int seg_pool_new(struct seg_pool **out, unsigned n, uint64_t size);

/* Creates the segments of every class of cl (ascending sizes, as seg_classes_parse makes them):
 * class 0's first, serials 1..n in that order, so item i is stats slot i. Returns as
 * seg_pool_new (-EINVAL for classes that are not ascending or counts outside 1..SEG_POOL_MAX). */
int seg_pool_new_classes(struct seg_pool **out, const struct seg_classes *cl);

/* Makes or unmakes one segment of the pool (serial: the pool's next serial, for names). */
typedef int (*seg_pool_create_fn)(struct shm_seg *seg, uint32_t serial, uint64_t size);
typedef void (*seg_pool_destroy_fn)(struct shm_seg *seg);

/* seg_pool_new_classes with another kind of segment (the sysv backend: sysv_seg.h): every
 * segment, the first ones and every replacement, is made by create and unmade by destroy.
 * Same returns. */
int seg_pool_new_classes_ops(struct seg_pool **out, const struct seg_classes *cl,
                             seg_pool_create_fn create, seg_pool_destroy_fn destroy);

/* Destroys (unmaps and unlinks) every segment and frees the pool. Every item must have been given
 * back. NULL is a no-op. */
void seg_pool_free(struct seg_pool *p);

/* Called about every 100 ms while seg_pool_take waits; non-zero ends the wait. */
typedef int (*seg_pool_cancel_fn)(void *arg);

/* Takes a free segment. When none is free, waits in FIFO order (each waiter is woken alone,
 * when a segment is handed to it) for at most timeout_ms, asking cancel (may be NULL) between
 * slices. First re-creates a missing segment if one is due (see below). Returns 0 and
 * *out; -ETIMEDOUT; -ECANCELED (cancel said so); or -ENOSPC when the pool has no segment at all
 * right now (every replacement failed, and re-creating one failed or is not due yet). */
int seg_pool_take(struct seg_pool *p, int timeout_ms, seg_pool_cancel_fn cancel, void *arg,
                  struct seg_pool_item **out);

/* seg_pool_take for a segment of class min_class or larger (clamped to the largest class): the
 * smallest free one, else the wait above, in which a given segment goes to the oldest waiter it
 * is large enough for. When no segment of min_class or larger exists right now (re-creations
 * failed), any class is taken. seg_pool_take is min_class 0. */
int seg_pool_take_class(struct seg_pool *p, unsigned min_class, int timeout_ms,
                        seg_pool_cancel_fn cancel, void *arg, struct seg_pool_item **out);

/* Gives a taken segment back. With replace non-zero (its transfer was abandoned or failed
 * mid-way) the segment is destroyed and a new one with a new serial takes its place before
 * anyone can take it, so no late write of the old transfer can reach a later request. If the
 * new one cannot be created (logged), the pool is one smaller until a later seg_pool_take or
 * seg_pool_give re-creates it, in the calling thread: the next call tries at once, and after a
 * failed try the next one waits SEG_POOL_REGROW_MS. */
void seg_pool_give(struct seg_pool *p, struct seg_pool_item *it, int replace);

/* Publishes the pool's segments in r (stats.h; NULL: none), slot i being item i: all FREE
 * now, each with its size (stats_slot_size). Afterwards the pool marks a slot FREE under its new
 * serial when it re-creates its segment; the taker marks it IN_USE (stats_slot_begin) and, before
 * giving it back, FREE or ABANDONED (when it is replaced: it stays so while its re-creation fails).
 * Call before the first take. */
void seg_pool_set_stats(struct seg_pool *p, struct stats_region *r);

/* The item's position in the pool, 0..n-1 (its stats slot). */
unsigned seg_pool_index(const struct seg_pool_item *it);

/* The item's class (index into seg_pool_classes), and the pool's classes. */
unsigned seg_pool_class(const struct seg_pool_item *it);
const struct seg_classes *seg_pool_classes(const struct seg_pool *p);

/* Segments currently in the pool (taken or free), and threads waiting in seg_pool_take. */
unsigned seg_pool_size(struct seg_pool *p);
unsigned seg_pool_waiters(struct seg_pool *p);

#endif
