/* workq.c - a bounded FIFO of pointers between a boss thread and a pool of workers. */
/* SPDX-License-Identifier: MIT */
#include "workq.h"
#include "clock.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

int workq_init(struct workq *q, size_t cap)
{
    pthread_condattr_t ca;
    int rc;

    if (cap == 0)
        return -EINVAL;
    q->items = calloc(cap, sizeof *q->items);
    if (q->items == NULL)
        return -ENOMEM;
    q->cap = cap;
    q->head = q->count = 0;
    q->closing = 0;
    pthread_mutex_init(&q->lock, NULL);
    /* Timed waits run on the monotonic clock so wall-clock steps cannot stretch them. */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = pthread_cond_init(&q->not_empty, &ca);
    if (rc == 0)
        rc = pthread_cond_init(&q->not_full, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        free(q->items);
        return -rc;
    }
    return 0;
}

void workq_release(struct workq *q)
{
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    pthread_mutex_destroy(&q->lock);
    free(q->items);
    q->items = NULL;
}

/* Waits on cond; returns 0 or -ETIMEDOUT. Caller holds q->lock. */
static int wait_locked(struct workq *q, pthread_cond_t *cond, const struct timespec *until)
{
    if (until == NULL)
        return -pthread_cond_wait(cond, &q->lock);
    return -pthread_cond_timedwait(cond, &q->lock, until);
}

int workq_push(struct workq *q, void *item, int timeout_ms)
{
    struct timespec until = timeout_ms >= 0 ? clock_mono_in(timeout_ms) : (struct timespec){0};
    int rc = 0;

    pthread_mutex_lock(&q->lock);
    while (!q->closing && q->count == q->cap && rc == 0)
        rc = wait_locked(q, &q->not_full, timeout_ms >= 0 ? &until : NULL);
    if (q->closing) {
        rc = -EPIPE;
    } else if (q->count < q->cap) {
        q->items[(q->head + q->count) % q->cap] = item;
        q->count++;
        pthread_cond_signal(&q->not_empty);
        rc = 0;
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

static void take_locked(struct workq *q, void **out)
{
    *out = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    pthread_cond_signal(&q->not_full);
}

int workq_pop(struct workq *q, void **out, int timeout_ms)
{
    struct timespec until = timeout_ms >= 0 ? clock_mono_in(timeout_ms) : (struct timespec){0};
    int rc = 0;

    pthread_mutex_lock(&q->lock);
    while (!q->closing && q->count == 0 && rc == 0)
        rc = wait_locked(q, &q->not_empty, timeout_ms >= 0 ? &until : NULL);
    if (q->count > 0) {
        take_locked(q, out);
        rc = 0;
    } else if (q->closing) {
        rc = -EPIPE;
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int workq_trypop(struct workq *q, void **out)
{
    int rc = -EAGAIN;

    pthread_mutex_lock(&q->lock);
    if (q->count > 0) {
        take_locked(q, out);
        rc = 0;
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

void workq_close(struct workq *q)
{
    pthread_mutex_lock(&q->lock);
    q->closing = 1;
    pthread_cond_broadcast(&q->not_empty);
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->lock);
}
