/* cache_server.h - simplecached's request service: a boss that receives requests from the
 * command queue and a fixed pool of workers, each serving one request from start to end. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_CACHE_SERVER_H
#define GF_CACHE_SERVER_H

#include <signal.h>
#include <stdint.h>

#include "cache_backend.h"
#include "cmdq.h"
#include "origin_pool.h"
#include "simplecache.h"
#include "stats.h"
#include "store.h"

#define CACHE_THREADS_MAX    512u
#define CACHE_DELAY_MAX_US   2500000u
#define CACHE_ATTACH_DEFAULT 128u /* segment attachments kept between requests (attach_cache.h) */

struct cache_server;

/* Loads a new index for a reload. Returns 0 and *out (the server takes it), or -errno to keep
 * the current one; it logs its own reasons. Called by the boss thread. */
typedef int (*cache_server_reload_fn)(void *arg, struct simplecache **out);

struct cache_server_options {
    unsigned nthreads;    /* workers, 1..CACHE_THREADS_MAX */
    unsigned delay_us;    /* added to every lookup, 0..CACHE_DELAY_MAX_US */
    unsigned queue_depth; /* validated requests waiting for a worker; 0 = 2 * nthreads */
    int stall_ms;         /* longest wait for the proxy to free a slot; 0 = 30000 */
    int grace_ms;         /* after stop, in-flight transfers get this long; 0 = 3000 */
    unsigned attach_max;  /* segment attachments kept between requests, at most
                           * ATTACH_CACHE_MAX; 0 = CACHE_ATTACH_DEFAULT */
    /* Reload on request (SIGHUP): when *reload_flag is non-zero the boss clears it, calls
     * reload, and on success makes the new index the one every later lookup uses; lookups in
     * progress finish with the old one, and transfers already started read the files they
     * opened, so nothing in flight is disturbed. NULL: no reload. */
    volatile sig_atomic_t *reload_flag;
    cache_server_reload_fn reload;
    void *reload_arg;
    /* Fill on miss: a path that is not in the index is served from the store, or fetched from
     * the origin into it while every request for it reads the entry as it grows. Both borrowed
     * (they must outlive the server); NULL: a miss is NOT_FOUND. The pool must hold max_fills
     * fetchers. */
    struct store *store;
    struct origin_pool *origin;
    unsigned max_fills; /* origin fetches at once; 0 = nthreads */
    /* Live figures (stats.h; borrowed, NULL: none), at least nthreads slots: slot i is worker
     * i's current transfer. Outcomes: served HIT, not found MISS, errors ERROR, aborted, stale
     * and attach failures CANCELLED; messages, rejected, queue depth (every QUEUE_POLL_MS),
     * store entries and bytes. */
    struct stats_region *stats;
    /* The --ipc backend (cache_backend.h): opened by cache_server_new, retired at stop, closed
     * by cache_server_free. NULL: posix. The command queue is read for every backend (control
     * commands); with another backend its requests are answered ERROR at once. */
    const struct cache_backend_ops *backend;
};

/* Counters for the closing log line; each is read without a lock, so only approximately current
 * while the server runs. */
struct cache_server_stats {
    uint64_t served;    /* files sent completely */
    uint64_t not_found; /* answered NOT_FOUND */
    uint64_t errors;    /* answered ERROR (lookup failure, shutting down) */
    uint64_t aborted;   /* transfers ended early: proxy died or cancelled, stall, read error, cut */
    uint64_t rejected;  /* messages that failed validation, or whose segment failed to attach */
    uint64_t stale;     /* segment generation differed from the request's: dropped unanswered */
};

/* Creates a server over an open command queue (borrowed: it must outlive the server) and a
 * loaded index (taken on success: the server frees it, and every index a reload replaces).
 * Starts no thread. Returns 0 and *out, or -errno (-EINVAL for bad options). */
int cache_server_new(struct cache_server **out, const struct cache_server_options *opt,
                     struct simplecache *cache, struct cmdq_server *q);

/* Starts the workers (with SIGINT, SIGTERM and SIGPIPE blocked) and runs the boss loop in the
 * calling thread until *stop becomes non-zero; it notices a stop or a reload request within ~100 ms
 * (one receive slice; an interrupted receive is resumed). Then it retires the backend (its
 * socket name goes while the instance lock is still held) and gives the queue's and registry's
 * names up at once (cmdq_server_retire: a new cache may start while this one drains), stops
 * receiving, answers ERROR to requests not yet started, lets transfers in progress finish for
 * grace_ms, cuts the rest (each notices within SHM_WAIT_SLICE_MS) and joins every worker. Returns
 * 0, or -errno if the workers could not start. Call at most once. */
int cache_server_run(struct cache_server *s, const volatile sig_atomic_t *stop);

void cache_server_stats(const struct cache_server *s, struct cache_server_stats *out);

void cache_server_free(struct cache_server *s); /* NULL is a no-op; after run returned */

#endif
