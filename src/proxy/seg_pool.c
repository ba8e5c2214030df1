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
    unsigned min_class;        /* takes a segment of this class or a larger one */
    struct waiter *next;
};

struct seg_pool {
    pthread_mutex_t lock;
    struct seg_pool_item *items; /* n entries, fixed; a taken item belongs to its taker */
    unsigned n;
    struct seg_classes classes; /* items of class 0 first, then class 1, ... */
    seg_pool_create_fn create;
    seg_pool_destroy_fn destroy;
    struct seg_pool_item **free[SEG_CLASSES_MAX]; /* per class, a stack of nfree[c] free
                                                   * items (capacity: the class's count) */
    unsigned nfree[SEG_CLASSES_MAX];              /* guarded by lock */
    unsigned live_class[SEG_CLASSES_MAX];         /* items of each class that hold a segment */
    struct seg_pool_item **empty; /* stack of items whose replacement failed; guarded by lock */
    unsigned nempty;              /* guarded by lock */
    int64_t next_regrow_ms;       /* no creation attempt before this; guarded by lock */
    unsigned live;                /* items that hold a segment; guarded by lock */
    uint32_t next_serial;         /* guarded by lock */
    struct waiter *head, *tail;   /* FIFO of waiters; guarded by lock */
    unsigned nwaiters;            /* guarded by lock */
    struct stats_region *stats;   /* set before use; NULL: none */
};

static uint64_t item_size(const struct seg_pool *p, const struct seg_pool_item *it)
{
    return p->classes.c[it->class_].size;
}

int seg_pool_new_classes_ops(struct seg_pool **out, const struct seg_classes *cl,
                             seg_pool_create_fn create, seg_pool_destroy_fn destroy)
{
    struct seg_pool *p;
    unsigned n = 0, i = 0;
    int rc;

    if (cl->n < 1 || cl->n > SEG_CLASSES_MAX)
        return -EINVAL;
    for (unsigned c = 0; c < cl->n; c++) {
        if (cl->c[c].count < 1 || cl->c[c].size < SHM_SEG_MIN || cl->c[c].size > SHM_SEG_MAX ||
            (c > 0 && cl->c[c].size <= cl->c[c - 1].size))
            return -EINVAL;
        n += cl->c[c].count;
        if (n > SEG_POOL_MAX)
            return -EINVAL;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->classes = *cl;
    p->items = calloc(n, sizeof *p->items);
    p->empty = calloc(n, sizeof *p->empty);
    rc = p->items == NULL || p->empty == NULL ? -ENOMEM : 0;
    for (unsigned c = 0; rc == 0 && c < cl->n; c++) {
        p->free[c] = calloc(cl->c[c].count, sizeof *p->free[c]);
        if (p->free[c] == NULL)
            rc = -ENOMEM;
    }
    if (rc < 0)
        goto err_free;
    p->n = n;
    p->create = create;
    p->destroy = destroy;
    for (unsigned c = 0; c < cl->n; c++)
        for (unsigned k = 0; k < cl->c[c].count; k++, i++) {
            p->items[i].index_ = i;
            p->items[i].class_ = c;
        }
    for (i = 0; i < n; i++) {
        rc = p->create(&p->items[i].seg, i + 1, item_size(p, &p->items[i]));
        if (rc < 0)
            goto err_destroy;
        p->live++;
    }
    /* Each class's stack filled in reverse: its lowest item is taken first. */
    for (i = n; i-- > 0;) {
        unsigned c = p->items[i].class_;
        p->free[c][p->nfree[c]++] = &p->items[i];
        p->live_class[c]++;
    }
    p->next_serial = n + 1;
    pthread_mutex_init(&p->lock, NULL);
    *out = p;
    return 0;

err_destroy:
    for (unsigned k = 0; k < i; k++)
        destroy(&p->items[k].seg);
err_free:
    free(p->items);
    for (unsigned c = 0; c < SEG_CLASSES_MAX; c++)
        free(p->free[c]);
    free(p->empty);
    free(p);
    return rc;
}

int seg_pool_new_classes_with(struct seg_pool **out, const struct seg_classes *cl,
                              seg_pool_create_fn create)
{
    return seg_pool_new_classes_ops(out, cl, create, shm_seg_destroy);
}

int seg_pool_new_with(struct seg_pool **out, unsigned n, uint64_t size, seg_pool_create_fn create)
{
    struct seg_classes cl;

    if (n < 1 || n > SEG_POOL_MAX || size < SHM_SEG_MIN || size > SHM_SEG_MAX)
        return -EINVAL;
    seg_classes_single(&cl, n, size);
    return seg_pool_new_classes_with(out, &cl, create);
}

int seg_pool_new(struct seg_pool **out, unsigned n, uint64_t size)
{
    return seg_pool_new_with(out, n, size, shm_seg_create);
}

int seg_pool_new_classes(struct seg_pool **out, const struct seg_classes *cl)
{
    return seg_pool_new_classes_with(out, cl, shm_seg_create);
}

void seg_pool_free(struct seg_pool *p)
{
    if (p == NULL)
        return;
    for (unsigned c = 0; c < p->classes.n; c++)
        for (unsigned i = 0; i < p->nfree[c]; i++)
            p->destroy(&p->free[c][i]->seg);
    pthread_mutex_destroy(&p->lock);
    free(p->items);
    for (unsigned c = 0; c < SEG_CLASSES_MAX; c++)
        free(p->free[c]);
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
    rc = p->create(&it->seg, serial, item_size(p, it));
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
    p->live_class[it->class_]++;
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
    return seg_pool_take_class(p, 0, timeout_ms, cancel, arg, out);
}

/* The smallest free item of class min_class or larger; NULL when none. Lock held. */
static struct seg_pool_item *pop_free_locked(struct seg_pool *p, unsigned min_class)
{
    for (unsigned c = min_class; c < p->classes.n; c++)
        if (p->nfree[c] > 0)
            return p->free[c][--p->nfree[c]];
    return NULL;
}

int seg_pool_take_class(struct seg_pool *p, unsigned min_class, int timeout_ms,
                        seg_pool_cancel_fn cancel, void *arg, struct seg_pool_item **out)
{
    int64_t deadline = clock_mono_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    struct waiter w;
    pthread_condattr_t ca;
    int rc = 0;

    if (min_class >= p->classes.n)
        min_class = p->classes.n - 1;
    pthread_mutex_lock(&p->lock);
    regrow_locked(p);
    if (p->live == 0) {
        pthread_mutex_unlock(&p->lock);
        return -ENOSPC;
    }
    /* No segment of this class or a larger one exists right now (their re-creation failed):
     * any class will do, a smaller one only costs speed. */
    unsigned live_above = 0;
    for (unsigned c = min_class; c < p->classes.n; c++)
        live_above += p->live_class[c];
    if (live_above == 0)
        min_class = 0;
    /* A free segment that fits and a waiter it would fit never coexist: give hands a segment
     * to the oldest waiter it fits. */
    *out = pop_free_locked(p, min_class);
    if (*out != NULL) {
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    memset(&w, 0, sizeof w);
    w.min_class = min_class;
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

    while (w != NULL && w->min_class > it->class_)
        w = w->next; /* the oldest waiter this segment is large enough for */
    if (w == NULL) {
        p->free[it->class_][p->nfree[it->class_]++] = it;
        return;
    }
    waiter_unlink_locked(p, w);
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
    rc = p->create(&it->seg, serial, item_size(p, it));
    if (rc == 0)
        stats_slot_state(p->stats, it->index_, STATS_SLOT_FREE, serial); /* still ours alone */
    pthread_mutex_lock(&p->lock);
    if (rc == 0) {
        put_locked(p, it);
    } else {
        memset(&it->seg, 0, sizeof it->seg);
        p->live--;
        p->live_class[it->class_]--;
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
    for (unsigned i = 0; i < p->n; i++) {
        stats_slot_state(r, i, STATS_SLOT_FREE, i + 1); /* serials 1..n, as made in new */
        stats_slot_size(r, i, item_size(p, &p->items[i]));
    }
}

unsigned seg_pool_index(const struct seg_pool_item *it)
{
    return it->index_;
}

unsigned seg_pool_class(const struct seg_pool_item *it)
{
    return it->class_;
}

const struct seg_classes *seg_pool_classes(const struct seg_pool *p)
{
    return &p->classes;
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
