/* origin_pool.h - the origin fetchers (a CURL handle with its kept-alive connection, and
 * buffers) shared by the proxy's workers, most recently used first.
 *
 * With one fetcher per worker, a proxy with more workers than concurrent clients spreads its
 * requests over connections that then sit idle between uses, and a request on a connection
 * that was idle for a while receives its body in slow steps (docs/performance.md, "The latency
 * tail"). Taking the fetcher given back last keeps the busy few connections warm and leaves the
 * rest unused (they open no connection at all until the load needs them). */
/* SPDX-License-Identifier: MIT */
#ifndef GF_ORIGIN_POOL_H
#define GF_ORIGIN_POOL_H

#include <stdint.h>

#include "origin_fetch.h"

struct origin_pool;

/* Creates n fetchers (n >= 1: one per worker, so a take never has to wait). curl_global_init
 * must have run. Returns 0, -EINVAL or -ENOMEM. */
int origin_pool_new(struct origin_pool **out, unsigned n, const struct origin_options *opt);

/* Frees every fetcher (closing their connections). All must have been given back. NULL is a
 * no-op. */
void origin_pool_free(struct origin_pool *p);

/* The fetcher given back most recently; the caller uses it alone until origin_pool_give. Never
 * NULL while at most n fetchers are taken at once. Thread-safe. */
struct origin_fetcher *origin_pool_take(struct origin_pool *p);

/* Gives f back (it becomes the next one taken). Thread-safe. */
void origin_pool_give(struct origin_pool *p, struct origin_fetcher *f);

/* Requests served, origin connections opened and retries made (retries may be NULL), summed
 * over the fetchers; and how many fetchers were ever used (at most n). Call when no fetcher is
 * taken. */
void origin_pool_stats(const struct origin_pool *p, uint64_t *requests, uint64_t *connects,
                       uint64_t *retries, unsigned *used);

#endif
