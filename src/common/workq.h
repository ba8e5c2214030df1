/* workq.h - a bounded FIFO of pointers between a boss thread and a pool of workers. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_WORKQ_H
#define GF_WORKQ_H

#include <pthread.h>
#include <stddef.h>

/* Fields are private: guarded by lock. */
struct workq {
    pthread_mutex_t lock;
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
    void **items; /* ring of cap entries */
    size_t cap;   /* fixed at init */
    size_t head;  /* next to pop */
    size_t count; /* entries in the ring */
    int closing;  /* set by workq_close; no more pushes */
};

/* Initialises q with room for cap items (cap > 0). Returns 0 or -errno. */
int workq_init(struct workq *q, size_t cap);

/* Frees what workq_init allocated. Items still queued are not freed: drain first. */
void workq_release(struct workq *q);

/* Appends item (ownership passes to the queue, then to the popper). Waits while the queue is
 * full, at most timeout_ms (-1: no limit). Returns 0, -ETIMEDOUT, or -EPIPE once closed. */
int workq_push(struct workq *q, void *item, int timeout_ms);

/* Removes the oldest item into *out. Waits while empty, at most timeout_ms (-1: no limit).
 * Returns 0, -ETIMEDOUT, or -EPIPE when closed and drained (workers exit on it). */
int workq_pop(struct workq *q, void **out, int timeout_ms);

/* Refuses further pushes and wakes every waiter; queued items can still be popped. */
void workq_close(struct workq *q);

/* Removes one queued item without waiting (for draining after close). Returns 0 or -EAGAIN. */
int workq_trypop(struct workq *q, void **out);

#endif
