/* seg_pool.c - the proxy's pool of shared memory segments, FIFO-fair, replacing failed ones. */
/* SPDX-License-Identifier: MIT */
#include "seg_pool.h"
#include "seg_pool_testing.h"
#include "clock.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TAKE_SLICE_MS 100 /* how often a waiter asks its cancel function */

/* A thread waiting in seg_pool_take; lives on its stack. Segments are handed to the oldest
 * waiter directly (got), so a give wakes exactly one thread and nobody can overtake it. */
struct waiter {
    pthread_cond_t cv;
    struct seg_pool_item *got; /* guarded by the pool lock */
    int empty;                 /* the pool lost its last segment; guarded by the pool lock */
    struct waiter *next;
};

struct seg_pool {
    pthread_mutex_t lock;
    struct seg_pool_item *items; /* n entries, fixed; a taken item belongs to its taker */
    unsigned n;
    uint64_t size;
    seg_pool_create_fn create;
    seg_pool_destroy_fn destroy;
    struct seg_pool_item **free;  /* stack of nfree free items; guarded by lock */
    unsigned nfree;               /* guarded by lock */
    struct seg_pool_item **empty; /* stack of items whose replacement failed; guarded by lock */
    unsigned nempty;              /* guarded by lock */
    int64_t next_regrow_ms;       /* no creation attempt before this; guarded by lock */
    unsigned live;                /* items that hold a segment; guarded by lock */
    uint32_t next_serial;         /* guarded by lock */
    struct waiter *head, *tail;   /* FIFO of waiters; guarded by lock */
    unsigned nwaiters;            /* guarded by lock */
    struct stats_region *stats;   /* set before use; NULL: none */
};

int seg_pool_new_ops(struct seg_pool **out, unsigned n, uint64_t size, seg_pool_create_fn create,
                     seg_pool_destroy_fn destroy)
{
    struct seg_pool *p;
    int rc;

    if (n < 1 || n > SEG_POOL_MAX || size < SHM_SEG_MIN || size > SHM_SEG_MAX)
        return -EINVAL;
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->items = calloc(n, sizeof *p->items);
    p->free = calloc(n, sizeof *p->free);
    p->empty = calloc(n, sizeof *p->empty);
    if (p->items == NULL || p->free == NULL || p->empty == NULL) {
        rc = -ENOMEM;
        goto err_free;
    }
    p->n = n;
    p->size = size;
    p->create = create;
    p->destroy = destroy;
    for (unsigned i = 0; i < n; i++) {
        p->items[i].index_ = i;
        rc = p->create(&p->items[i].seg, i + 1, size);
        if (rc < 0)
            goto err_destroy;
        p->live++;
        p->free[p->nfree++] = &p->items[n - 1 - i]; /* filled in reverse: item 0 is taken first */
    }
    p->next_serial = n + 1;
    pthread_mutex_init(&p->lock, NULL);
    *out = p;
    return 0;

err_destroy:
    for (unsigned i = 0; i < p->live; i++)
        destroy(&p->items[i].seg);
err_free:
    free(p->items);
    free(p->free);
    free(p->empty);
    free(p);
    return rc;
}

int seg_pool_new_with(struct seg_pool **out, unsigned n, uint64_t size, seg_pool_create_fn create)
{
    return seg_pool_new_ops(out, n, size, create, shm_seg_destroy);
}

int seg_pool_new(struct seg_pool **out, unsigned n, uint64_t size)
{
    return seg_pool_new_with(out, n, size, shm_seg_create);
}

void seg_pool_free(struct seg_pool *p)
{
    if (p == NULL)
        return;
    for (unsigned i = 0; i < p->nfree; i++)
        p->destroy(&p->free[i]->seg);
    pthread_mutex_destroy(&p->lock);
    free(p->items);
    free(p->free);
    free(p->empty);
    free(p);
}

static uint32_t next_serial_locked(struct seg_pool *p)
{
    uint32_t serial = p->next_serial++;

    if (p->next_serial == 0)
        p->next_serial = 1; /* after 2^32 creations; serial 0 is never used */
    return serial;
}

static void put_locked(struct seg_pool *p, struct seg_pool_item *it);

/* Called with the lock held; may drop and retake it. When a slot is empty (an earlier
 * replacement failed) and the backoff has passed, tries to create its segment again and, on
 * success, puts it into the pool (to the oldest waiter first). */
static void regrow_locked(struct seg_pool *p)
{
    struct seg_pool_item *it;
    int64_t now = clock_mono_ms();
    uint32_t serial;
    int rc;

    if (p->nempty == 0 || now < p->next_regrow_ms)
        return;
    it = p->empty[--p->nempty];
    p->next_regrow_ms = now + SEG_POOL_REGROW_MS;
    serial = next_serial_locked(p);
    pthread_mutex_unlock(&p->lock);
    rc = p->create(&it->seg, serial, p->size);
    if (rc == 0)
        stats_slot_state(p->stats, it->index_, STATS_SLOT_FREE, serial); /* still ours alone */
    pthread_mutex_lock(&p->lock);
    if (rc < 0) {
        memset(&it->seg, 0, sizeof it->seg);
        p->empty[p->nempty++] = it;
        unsigned live = p->live;
        pthread_mutex_unlock(&p->lock);
        log_warn(-rc,
                 "cannot re-create a segment; the pool has %u of %u segments, next try in "
                 "%d ms",
                 live, p->n, SEG_POOL_REGROW_MS);
        pthread_mutex_lock(&p->lock);
        return;
    }
    p->live++;
    put_locked(p, it);
    unsigned live = p->live;
    pthread_mutex_unlock(&p->lock);
    log_info("segment '%s' re-created; the pool has %u of %u segments", it->seg.name, live, p->n);
    pthread_mutex_lock(&p->lock);
}

static void waiter_unlink_locked(struct seg_pool *p, struct waiter *w)
{
    struct waiter **pp = &p->head, *prev = NULL;

    while (*pp && *pp != w) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp == NULL)
        return;
    *pp = w->next;
    if (p->tail == w)
        p->tail = prev;
    p->nwaiters--;
}

int seg_pool_take(struct seg_pool *p, int timeout_ms, seg_pool_cancel_fn cancel, void *arg,
                  struct seg_pool_item **out)
{
    int64_t deadline = clock_mono_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    struct waiter w;
    pthread_condattr_t ca;
    int rc = 0;

    pthread_mutex_lock(&p->lock);
    regrow_locked(p);
    /* Free segments and waiters never coexist: give hands a segment to the oldest waiter. */
    if (p->nfree > 0) {
        *out = p->free[--p->nfree];
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    if (p->live == 0) {
        pthread_mutex_unlock(&p->lock);
        return -ENOSPC;
    }
    memset(&w, 0, sizeof w);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w.cv, &ca);
    pthread_condattr_destroy(&ca);
    if (p->tail)
        p->tail->next = &w;
    else
        p->head = &w;
    p->tail = &w;
    p->nwaiters++;
    while (w.got == NULL && !w.empty) {
        int left = clock_ms_left(deadline);
        if (left == 0) {
            rc = -ETIMEDOUT;
            break;
        }
        struct timespec ts = clock_mono_in(left < TAKE_SLICE_MS ? left : TAKE_SLICE_MS);
        int timed_out = pthread_cond_timedwait(&w.cv, &p->lock, &ts) == ETIMEDOUT;
        if (timed_out && w.got == NULL && !w.empty)
            regrow_locked(p); /* may hand the new segment to us (or an older waiter) */
        if (timed_out && w.got == NULL && !w.empty && cancel != NULL) {
            pthread_mutex_unlock(&p->lock);
            int stop = cancel(arg);
            pthread_mutex_lock(&p->lock);
            if (stop && w.got == NULL) {
                rc = -ECANCELED;
                break;
            }
        }
    }
    if (w.got) {
        /* Handed over (possibly just as the wait ended): ours. give already unlinked us. */
        *out = w.got;
        rc = 0;
    } else {
        if (w.empty)
            rc = -ENOSPC; /* give unlinked us */
        else
            waiter_unlink_locked(p, &w);
    }
    pthread_mutex_unlock(&p->lock);
    pthread_cond_destroy(&w.cv);
    return rc;
}

static void put_locked(struct seg_pool *p, struct seg_pool_item *it)
{
    struct waiter *w = p->head;

    if (w == NULL) {
        p->free[p->nfree++] = it;
        return;
    }
    p->head = w->next;
    if (p->head == NULL)
        p->tail = NULL;
    p->nwaiters--;
    w->got = it;
    pthread_cond_signal(&w->cv);
}

void seg_pool_give(struct seg_pool *p, struct seg_pool_item *it, int replace)
{
    uint32_t serial;
    char old[IPC_NAME_MAX];
    int rc;

    if (!replace) {
        pthread_mutex_lock(&p->lock);
        put_locked(p, it);
        regrow_locked(p);
        pthread_mutex_unlock(&p->lock);
        return;
    }
    /* The item is ours alone until it is put back, so the slow part runs unlocked. */
    memcpy(old, it->seg.name, sizeof old);
    p->destroy(&it->seg);
    pthread_mutex_lock(&p->lock);
    serial = next_serial_locked(p);
    pthread_mutex_unlock(&p->lock);
    rc = p->create(&it->seg, serial, p->size);
    if (rc == 0)
        stats_slot_state(p->stats, it->index_, STATS_SLOT_FREE, serial); /* still ours alone */
    pthread_mutex_lock(&p->lock);
    if (rc == 0) {
        put_locked(p, it);
    } else {
        memset(&it->seg, 0, sizeof it->seg);
        p->live--;
        p->empty[p->nempty++] = it; /* the next take or give tries again; then the backoff */
        if (p->live == 0) {
            /* Nothing to wait for until a re-creation succeeds: fail the waiters now. */
            for (struct waiter *w = p->head; w; w = w->next) {
                w->empty = 1;
                pthread_cond_signal(&w->cv);
            }
            p->head = p->tail = NULL;
            p->nwaiters = 0;
        }
    }
    unsigned live = p->live;
    pthread_mutex_unlock(&p->lock);
    if (rc < 0)
        log_warn(-rc,
                 "cannot replace segment '%s'; the pool has %u of %u segments until it can "
                 "be re-created",
                 old, live, p->n);
}

void seg_pool_set_stats(struct seg_pool *p, struct stats_region *r)
{
    p->stats = r;
    for (unsigned i = 0; i < p->n; i++)
        stats_slot_state(r, i, STATS_SLOT_FREE, i + 1); /* serials 1..n, as made in new */
}

unsigned seg_pool_index(const struct seg_pool_item *it)
{
    return it->index_;
}

unsigned seg_pool_size(struct seg_pool *p)
{
    pthread_mutex_lock(&p->lock);
    unsigned n = p->live;
    pthread_mutex_unlock(&p->lock);
    return n;
}

unsigned seg_pool_waiters(struct seg_pool *p)
{
    pthread_mutex_lock(&p->lock);
    unsigned n = p->nwaiters;
    pthread_mutex_unlock(&p->lock);
    return n;
}
