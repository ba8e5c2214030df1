/* origin_pool.c - origin fetchers shared by the workers, most recently used first. */
/* SPDX-License-Identifier: MIT */
#include "origin_pool.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct origin_pool {
    pthread_mutex_t lock;
    unsigned n;
    unsigned nfree;                /* guarded by lock */
    struct origin_fetcher **all;   /* n fetchers, for stats and free */
    struct origin_fetcher **stack; /* nfree free fetchers, the last given back on top */
    unsigned max_taken; /* most taken at once; the fetchers below that depth were never taken,
                         * since a stack only ever hands out its top (guarded by lock) */
};

int origin_pool_new(struct origin_pool **out, unsigned n, const struct origin_options *opt)
{
    struct origin_pool *p;
    int rc = -ENOMEM;

    *out = NULL;
    if (n == 0)
        return -EINVAL;
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->all = calloc(n, sizeof *p->all);
    p->stack = calloc(n, sizeof *p->stack);
    if (p->all == NULL || p->stack == NULL)
        goto err;
    rc = -pthread_mutex_init(&p->lock, NULL);
    if (rc < 0)
        goto err;
    for (; p->n < n; p->n++) {
        rc = origin_fetcher_new(&p->all[p->n], opt);
        if (rc < 0) {
            origin_pool_free(p);
            return rc;
        }
    }
    /* Stacked in reverse, so the first take gets fetcher 0, the next concurrent one 1, ... */
    for (unsigned i = 0; i < n; i++)
        p->stack[i] = p->all[n - 1 - i];
    p->nfree = n;
    *out = p;
    return 0;

err:
    free(p->all);
    free(p->stack);
    free(p);
    return rc;
}

void origin_pool_free(struct origin_pool *p)
{
    if (p == NULL)
        return;
    for (unsigned i = 0; i < p->n; i++)
        origin_fetcher_free(p->all[i]);
    pthread_mutex_destroy(&p->lock);
    free(p->all);
    free(p->stack);
    free(p);
}

struct origin_fetcher *origin_pool_take(struct origin_pool *p)
{
    struct origin_fetcher *f = NULL;

    pthread_mutex_lock(&p->lock);
    if (p->nfree > 0) {
        f = p->stack[--p->nfree];
        if (p->n - p->nfree > p->max_taken)
            p->max_taken = p->n - p->nfree;
    }
    pthread_mutex_unlock(&p->lock);
    return f;
}

void origin_pool_give(struct origin_pool *p, struct origin_fetcher *f)
{
    pthread_mutex_lock(&p->lock);
    assert(p->nfree < p->n);
    p->stack[p->nfree++] = f;
    pthread_mutex_unlock(&p->lock);
}

void origin_pool_stats(const struct origin_pool *p, uint64_t *requests, uint64_t *connects,
                       uint64_t *retries, unsigned *used)
{
    *requests = *connects = 0;
    if (retries != NULL)
        *retries = 0;
    for (unsigned i = 0; i < p->n; i++) {
        uint64_t r, c, t;

        origin_fetcher_stats(p->all[i], &r, &c, &t);
        *requests += r;
        *connects += c;
        if (retries != NULL)
            *retries += t;
    }
    *used = p->max_taken;
}
