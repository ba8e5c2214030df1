/* cache_server.c - simplecached's boss (command queue -> work queue) and its workers. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* AT_EMPTY_PATH */
#include "cache_server.h"
#include "cache_backend.h"
#include "attach_cache.h"
#include "clock.h"
#include "log.h"
#include "peer.h"
#include "shm_chan.h"
#include "workq.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <mqueue.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define RECEIVE_SLICE_MS 100   /* how often the boss looks at the stop flag */
#define DELAY_SLICE_US   20000 /* the -d delay sleeps in slices this long */
#define WARN_PER_SEC     10    /* rate limit of warnings a peer can provoke */
#define SWEEP_EVERY_MS   1000  /* how often the boss drops stale kept attachments */
#define QUEUE_POLL_MS    100   /* how often the boss publishes the command queue's depth */
#define FILLS_WAIT_MS    30000 /* on stop, the longest wait for fetches to notice */
/* An index file up to this long, whose chunks all fit in the proxy's idle ring (so no write
 * waits for the proxy), is served by the boss itself: no boss -> worker handoff. */
#define INLINE_MAX (32u << 10)

/* At most WARN_PER_SEC warnings per second; the rest are counted and summarised. */
struct ratelimit {
    pthread_mutex_t lock;
    int64_t window_ms; /* start of the current one-second window; guarded by lock */
    unsigned count;    /* warnings in the window; guarded by lock */
    unsigned dropped;  /* suppressed in the window; guarded by lock */
};

/* A request from the command queue (the posix backend), in a buffer allocated up front. */
struct posix_job {
    struct cache_job base;
    struct cmdq_request req;
    struct cache_answer pre; /* an index file the boss opened already (pre.fd >= 0), or none */
};

struct cache_server {
    struct cache_server_options opt;         /* set once in new */
    const struct cache_backend_ops *backend; /* opt.backend, or posix */
    struct cache_backend *b;                 /* the backend's state; NULL for posix */
    int retired;                             /* backend->retire was called; the boss's */
    struct simplecache *cache;   /* owned, immutable; replaced by a reload under index_lock */
    pthread_rwlock_t index_lock; /* read: a lookup uses cache; write: the boss replaces it */
    struct cmdq_server *q;       /* borrowed; only the boss receives */
    uid_t uid;
    struct workq wq; /* jobs for the workers (struct cache_job *) */
    /* Every request buffer is allocated up front: queue_depth queued + nthreads in service + 1
     * being decoded by the boss, so no request is ever dropped for lack of memory. */
    struct posix_job *jobs;
    struct posix_job **free_jobs; /* stack; guarded by lock */
    unsigned nfree_jobs;          /* guarded by lock */
    unsigned char *rxbuf;         /* the boss's receive buffer */
    size_t rxcap;
    pthread_t *threads;
    unsigned nstarted;
    pthread_mutex_t lock;    /* guards nrunning, free_jobs */
    pthread_cond_t all_done; /* signalled when nrunning drops to 0 (monotonic clock) */
    unsigned nrunning;       /* workers that have not exited */
    atomic_int stopping;     /* no new transfer may start; set by the boss */
    atomic_int cut;          /* grace is over, transfers stop now */
    struct ratelimit rl;
    struct attach_cache *attach; /* kept segment attachments, shared by the workers */
    struct stats_region *stats;  /* borrowed; NULL: none */
    atomic_uint next_worker;     /* the stats slot the next worker to start takes */
    _Atomic uint32_t *gen;       /* the change generation (cache_server_set_generation) */
    int64_t next_depth_ms;       /* the boss's next queue depth poll */
    uint64_t evictions_seen;     /* store evictions already counted in stats; the boss's */
    struct {
        _Atomic uint64_t served, not_found, errors, aborted, rejected, stale;
    } st;                      /* read out by cache_server_stats */
    unsigned nfilling;         /* fill threads running; guarded by lock */
    pthread_cond_t fills_done; /* signalled when nfilling drops to 0 (monotonic clock) */
    atomic_int fills_cancel;   /* the workers are gone: fetches stop now */
};

static void stat_add(_Atomic uint64_t *field)
{
    atomic_fetch_add_explicit(field, 1, memory_order_relaxed);
}

/* Returns 1 if a warning may be logged now. */
static int ratelimit_allow(struct ratelimit *r)
{
    int64_t now = clock_mono_ms();
    unsigned dropped = 0;
    int ok;

    pthread_mutex_lock(&r->lock);
    if (now - r->window_ms >= 1000) {
        dropped = r->dropped;
        r->window_ms = now;
        r->count = 0;
        r->dropped = 0;
    }
    ok = r->count < WARN_PER_SEC;
    if (ok)
        r->count++;
    else
        r->dropped++;
    pthread_mutex_unlock(&r->lock);
    if (dropped)
        log_warn(0, "%u similar warnings suppressed in the last second", dropped);
    return ok;
}

static int is_stopping(const struct cache_server *s)
{
    return atomic_load_explicit(&s->stopping, memory_order_acquire);
}

static struct posix_job *job_get(struct cache_server *s)
{
    struct posix_job *job = NULL;

    pthread_mutex_lock(&s->lock);
    if (s->nfree_jobs > 0)
        job = s->free_jobs[--s->nfree_jobs];
    pthread_mutex_unlock(&s->lock);
    return job;
}

static void job_put(struct cache_server *s, struct posix_job *job)
{
    pthread_mutex_lock(&s->lock);
    s->free_jobs[s->nfree_jobs++] = job;
    pthread_mutex_unlock(&s->lock);
}

/* Reads exactly want bytes at off unless the file ends first. Returns the count or -errno. */
static ssize_t read_full(int fd, unsigned char *buf, size_t want, uint64_t off)
{
    size_t got = 0;

    while (got < want) {
        ssize_t n = pread(fd, buf + got, want - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* The -d delay, in slices so that a stop or the requester's end ends it early. Returns 0,
 * -ECANCELED (stopping, or the requester cancelled) or -ESRCH (it died). */
static int lookup_delay(const struct cache_server *s, cache_wanted_fn wanted, void *arg)
{
    unsigned left = s->opt.delay_us;

    while (left > 0) {
        unsigned us = left < DELAY_SLICE_US ? left : DELAY_SLICE_US;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)us * 1000};

        if (is_stopping(s))
            return -ECANCELED;
        int rc = wanted(arg);
        if (rc < 0)
            return rc;
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        left -= us;
    }
    return 0;
}

static void start_fill(struct cache_server *s, struct fill *f);

/* A path the index does not name: a kept entry (CACHE_STATUS_OK, a->fd, base, len), or a fill
 * to read as it grows (CACHE_STATUS_FILL, a->fill), started here when none is in progress. */
static int lookup_store(struct cache_server *s, const char *path, size_t path_len,
                        struct cache_answer *a)
{
    struct store_hit hit;
    /* Without an origin the store is only read: a miss is NOT_FOUND. */
    unsigned max_fills = s->opt.origin != NULL ? s->opt.max_fills : 0;
    int rc = store_get(s->opt.store, path, path_len, max_fills, &hit, &a->fill);

    switch (rc) {
    case STORE_HIT:
        a->fd = hit.fd;
        a->base = hit.offset;
        a->len = hit.length;
        if (hit.expires_ms != 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts); /* expiry is wall-clock time (store.h) */
            int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
            a->fresh_ms = (int64_t)hit.expires_ms > now ? (int64_t)hit.expires_ms - now : 0;
        }
        a->crc = hit.verify ? (int64_t)hit.crc : -1;
        log_debug("'%s': hit in the store", path);
        return CACHE_STATUS_OK;
    case STORE_JOIN:
        log_debug("'%s': joined the fill in progress", path);
        return CACHE_STATUS_FILL;
    case STORE_LEAD:
        log_debug("'%s': miss; fetching it from the origin", path);
        start_fill(s, a->fill);
        return CACHE_STATUS_FILL;
    default:
        a->fill = NULL;
        if (s->opt.origin == NULL)
            return CACHE_STATUS_NOT_FOUND;
        if (ratelimit_allow(&s->rl))
            log_warn(rc == -EBUSY ? 0 : -rc, "'%s': cannot start a fill%s", path,
                     rc == -EBUSY ? ": too many in progress" : "");
        return CACHE_STATUS_ERROR;
    }
}

int cache_server_lookup(struct cache_server *s, const char *path, size_t path_len,
                        cache_wanted_fn wanted, void *arg, struct cache_answer *a)
{
    int in_index, rc;

    a->status = CACHE_STATUS_ERROR;
    a->fd = -1;
    a->base = 0;
    a->len = 0;
    a->crc = -1;
    a->fill = NULL;
    a->fresh_ms = -1;
    rc = lookup_delay(s, wanted, arg);
    if (rc == -ESRCH)
        return rc;
    if (rc == -ECANCELED || is_stopping(s))
        return is_stopping(s) ? CACHE_STATUS_ERROR : -ECANCELED;
    pthread_rwlock_rdlock(&s->index_lock);
    rc = simplecache_open(s->cache, path, path_len, &a->fd, &a->len);
    in_index = rc != -ENOENT || simplecache_contains(s->cache, path, path_len);
    pthread_rwlock_unlock(&s->index_lock);
    if (rc < 0)
        a->fd = -1;
    /* Index entries are pinned: never fetched, even when their file is missing. */
    if (rc == -ENOENT && !in_index && s->opt.store != NULL)
        a->status = lookup_store(s, path, path_len, a);
    else if (rc == -ENOENT)
        a->status = CACHE_STATUS_NOT_FOUND;
    else if (rc < 0) {
        if (ratelimit_allow(&s->rl))
            log_warn(-rc, "cannot open the file of '%s'", path);
        a->status = CACHE_STATUS_ERROR;
    } else
        a->status = CACHE_STATUS_OK;
    return a->status;
}

int cache_server_check_entry(struct cache_server *s, const char *path, size_t path_len,
                             const struct cache_answer *a)
{
    unsigned char buf[64 << 10];
    struct stat before;
    uint64_t off = 0;
    uLong sum = 0;

    if (a->crc < 0 || a->fd < 0)
        return 0;
    if (fstat(a->fd, &before) < 0)
        return -errno;
    while (off < a->len) {
        size_t want = a->len - off < sizeof buf ? (size_t)(a->len - off) : sizeof buf;
        if (read_full(a->fd, buf, want, a->base + off) != (ssize_t)want)
            return -EIO; /* shrank under us: not served, found again by the store's checks */
        sum = crc32_z(sum, buf, want);
        off += want;
    }
    if ((uint32_t)sum != (uint32_t)a->crc) {
        store_drop_damaged(s->opt.store, path, path_len, (uint32_t)a->crc);
        return -EBADMSG;
    }
    store_mark_verified(s->opt.store, path, path_len, (uint32_t)a->crc, a->fd, &before);
    return 0;
}

void cache_answer_release(struct cache_server *s, struct cache_answer *a)
{
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    if (a->fill != NULL)
        fill_put(s->opt.store, a->fill);
    a->fill = NULL;
}

/* shm_seg_reserve in slices, so that the end of the grace period (cut, an atomic flag written by
 * another thread) is seen between them. Returns as shm_seg_reserve. */
static int reserve(struct cache_server *s, struct shm_seg *seg, int pidfd, unsigned char **payload)
{
    int64_t deadline = clock_mono_ms() + s->opt.stall_ms;

    for (;;) {
        int ms = clock_ms_left(deadline);
        int rc = shm_seg_reserve(seg, pidfd, ms < SHM_WAIT_SLICE_MS ? ms : SHM_WAIT_SLICE_MS, NULL,
                                 payload);
        if (rc != -ETIMEDOUT)
            return rc;
        if (atomic_load_explicit(&s->cut, memory_order_acquire))
            return -ECANCELED;
        if (clock_ms_left(deadline) == 0)
            return -ETIMEDOUT;
    }
}

/* Writes the RESPONSE and, for OK, every DATA chunk. *status may turn from OK into ERROR when
 * the file cannot be read before anything was promised. crc >= 0: the body's CRC-32 (a store
 * entry), checked before the chunk that completes the body goes out; a mismatch sets *damaged
 * and answers ERROR (a body in one chunk) or abandons (the client never gets a complete body
 * of wrong bytes). Returns 0 when the whole answer was written, or -errno (abandoned). */
static int send_answer(struct cache_server *s, unsigned slot, struct shm_seg *seg, int pidfd,
                       uint64_t gen, int *statusp, int fd, uint64_t base, uint64_t len, int64_t crc,
                       int *damaged)
{
    uint32_t sum = 0;

    int status = *statusp;
    unsigned char *payload;
    uint64_t off = 0;
    uint32_t n = 0;
    int rc;

    rc = reserve(s, seg, pidfd, &payload);
    if (rc < 0)
        return rc;
    if (status == SHM_STATUS_OK) {
        size_t want = len < seg->slot_cap ? (size_t)len : seg->slot_cap;
        ssize_t got = read_full(fd, payload, want, base);
        if (got == (ssize_t)want && crc >= 0)
            sum = (uint32_t)crc32_z(sum, payload, want);
        if (got != (ssize_t)want || (want == len && crc >= 0 && sum != (uint32_t)crc)) {
            /* Nothing promised yet: the file shrank, failed or is damaged: answer ERROR. */
            *damaged = got == (ssize_t)want;
            status = SHM_STATUS_ERROR;
            len = 0;
        } else {
            n = (uint32_t)got;
        }
    }
    if (status != SHM_STATUS_OK)
        len = 0;
    *statusp = status;
    rc = shm_seg_publish(seg, gen, SHM_SLOT_RESPONSE, (enum shm_status)status, len, n);
    if (rc < 0)
        return rc;
    off = n;
    stats_slot_progress(s->stats, slot, off, len);
    while (off < len) {
        rc = reserve(s, seg, pidfd, &payload);
        if (rc < 0)
            return rc;
        size_t want = len - off < seg->slot_cap ? (size_t)(len - off) : seg->slot_cap;
        ssize_t got = read_full(fd, payload, want, base + off);
        if (got == (ssize_t)want && crc >= 0) {
            sum = (uint32_t)crc32_z(sum, payload, want);
            if (off + want == len && sum != (uint32_t)crc) {
                *damaged = 1;
                got = -EBADMSG; /* the last chunk is held back: abandon below */
            }
        }
        if (got != (ssize_t)want) {
            /* The file shrank or a read failed after OK was promised. An empty DATA chunk while
             * bytes are still owed tells the proxy to abandon (handle_with_cache.c). */
            (void)shm_seg_publish(seg, gen, SHM_SLOT_DATA, SHM_STATUS_OK, 0, 0);
            return got < 0 ? (int)got : -EIO;
        }
        rc = shm_seg_publish(seg, gen, SHM_SLOT_DATA, SHM_STATUS_OK, 0, (uint32_t)got);
        if (rc < 0)
            return rc;
        off += (uint64_t)got;
        stats_slot_progress(s->stats, slot, off, len);
    }
    return 0;
}

/* ---- fill on miss ------------------------------------------------------------------------ */

struct fill_job {
    struct cache_server *s;
    struct fill *f;
};

static int job_header(void *arg, enum gf_status st, uint64_t length, const struct origin_meta *meta)
{
    return fill_header(((struct fill_job *)arg)->f, st, length, meta);
}

static int job_data(void *arg, const void *buf, size_t n)
{
    return fill_data(((struct fill_job *)arg)->f, buf, n);
}

/* The fetch goes on when its readers have gone (the next request finds the entry), but not
 * past the end of the grace period. */
static int job_cancelled(void *arg)
{
    const struct cache_server *s = ((struct fill_job *)arg)->s;

    return atomic_load_explicit(&s->cut, memory_order_acquire) ||
           atomic_load_explicit(&s->fills_cancel, memory_order_acquire);
}

static void fill_thread_exit(struct cache_server *s)
{
    pthread_mutex_lock(&s->lock);
    if (--s->nfilling == 0)
        pthread_cond_broadcast(&s->fills_done);
    pthread_mutex_unlock(&s->lock);
}

/* One origin fetch into the store: the store allows at most max_fills at once and the pool
 * holds as many fetchers, so there is always one. */
static void *fill_main(void *arg)
{
    struct fill_job *job = arg;
    struct cache_server *s = job->s;
    const struct origin_sink sink = {job_header, job_data, job_cancelled, job};
    const char *path = fill_path(job->f);
    struct origin_fetcher *fetcher = origin_pool_take(s->opt.origin);
    uint64_t requests, connects, retries0, retries1;
    int rc;

    origin_fetcher_stats(fetcher, &requests, &connects, &retries0);
    stats_add(s->stats, STATS_C_ORIGIN_FETCHES, 1);
    struct origin_cond cond = {NULL, NULL};
    int conditional = fill_validators(job->f, &cond.etag, &cond.last_modified);
    rc = origin_fetch_cond(fetcher, path, strlen(path), conditional ? &cond : NULL, &sink);
    if (rc == -ESTALE && conditional) { /* a 304 that does not match the kept entry */
        fill_forget_old(job->f);
        rc = origin_fetch_cond(fetcher, path, strlen(path), NULL, &sink);
    }
    if (fill_revalidated(job->f)) {
        stats_add(s->stats, STATS_C_NOT_MODIFIED, 1);
        log_info("'%s': revalidated (304 Not Modified)", path);
    }
    origin_fetcher_stats(fetcher, &requests, &connects, &retries1);
    stats_add(s->stats, STATS_C_RETRIES, retries1 - retries0);
    origin_pool_give(s->opt.origin, fetcher);
    if (rc < 0)
        log_msg(LOGL_INFO, -rc, "fill of '%s' failed", path);
    fill_done(s->opt.store, job->f, rc);
    free(job);
    fill_thread_exit(s);
    return NULL;
}

/* Runs the fetch of a new fill in a thread of its own, so that every request for the path,
 * the one that started it included, reads the entry as it grows. */
static void start_fill(struct cache_server *s, struct fill *f)
{
    struct fill_job *job = malloc(sizeof *job);
    pthread_attr_t attr;
    pthread_t t;
    int err = ENOMEM;

    pthread_mutex_lock(&s->lock);
    s->nfilling++;
    pthread_mutex_unlock(&s->lock);
    if (job != NULL) {
        job->s = s;
        job->f = f;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        err = pthread_create(&t, &attr, fill_main, job); /* signals blocked, as in the worker */
        pthread_attr_destroy(&attr);
    }
    if (err != 0) {
        log_warn(err, "cannot start the fetch of '%s'", fill_path(f));
        free(job);
        fill_done(s->opt.store, f, -err);
        fill_thread_exit(s);
    }
}

int cache_server_still_wanted(const struct cache_server *s, cache_wanted_fn wanted, void *arg)
{
    if (atomic_load_explicit(&s->cut, memory_order_acquire))
        return -ECANCELED;
    return wanted(arg);
}

int cache_server_wait_fill(struct cache_server *s, struct fill *f, cache_wanted_fn wanted,
                           void *arg, int have_header, uint64_t have, struct fill_state *fs)
{
    int64_t deadline = clock_mono_ms() + s->opt.stall_ms;

    for (;;) {
        int rc = cache_server_still_wanted(s, wanted, arg);
        if (rc < 0)
            return rc;
        fill_wait(f, have_header, have, SHM_WAIT_SLICE_MS, fs);
        if (fs->done || (fs->header && (!have_header || fs->written > have)))
            return 0;
        if (clock_ms_left(deadline) == 0)
            return -ETIMEDOUT;
    }
}

/* The posix backend's requester: its segment (cancel flag) and its pidfd. */
struct seg_want {
    const struct shm_seg *seg;
    int pidfd;
};

static int seg_wanted(void *arg)
{
    const struct seg_want *w = arg;

    if (__atomic_load_n(&w->seg->hdr->cancel, __ATOMIC_ACQUIRE))
        return -ECANCELED;
    if (peer_alive(w->pidfd) == 0)
        return -ESRCH;
    return 0;
}

/* The origin's "not found" is told apart from our own, so a proxy with an origin of its own
 * does not ask it again (both mode). */
int cache_status_of_gf(int gf_status)
{
    return gf_status == GF_OK               ? CACHE_STATUS_OK
           : gf_status == GF_FILE_NOT_FOUND ? CACHE_STATUS_ORIGIN_NOT_FOUND
                                            : CACHE_STATUS_ERROR;
}

/* send_answer for a fill: the RESPONSE once the origin's answer and the first body bytes (or
 * the end of the fetch) are there, then each chunk as soon as bytes arrive, so the proxy's
 * client does not wait for the end of the fetch. A fetch that fails before the RESPONSE is
 * answered ERROR; after it, with an empty DATA chunk (abandon: the client sees a short
 * transfer), never with wrong bytes (the fetch holds the last byte back until the body is
 * known good). Returns as send_answer. */
static int send_fill(struct cache_server *s, unsigned slot, struct shm_seg *seg, int pidfd,
                     uint64_t gen, int *statusp, struct fill *f, uint64_t *lenp)
{
    struct seg_want want = {seg, pidfd};
    struct fill_state fs;
    unsigned char *payload;
    uint64_t off = 0;
    uint32_t n = 0;
    int rc, status;

    rc = cache_server_wait_fill(s, f, seg_wanted, &want, 0, 0, &fs);
    if (rc == 0 && fs.header && fs.status == GF_OK && fs.length > 0)
        rc = cache_server_wait_fill(s, f, seg_wanted, &want, 1, 0, &fs); /* the first bytes */
    if (rc == -ESRCH || rc == -ECANCELED)
        return rc;
    if (rc == -ETIMEDOUT)
        log_warn(0, "'%s': no answer from the origin within %d ms", fill_path(f), s->opt.stall_ms);
    status = rc < 0 || (fs.failed && fs.written < fs.length) ? SHM_STATUS_ERROR
                                                             : cache_status_of_gf(fs.status);
    rc = reserve(s, seg, pidfd, &payload);
    if (rc < 0)
        return rc;
    if (status == SHM_STATUS_OK) {
        n = (uint32_t)(fs.written < seg->slot_cap ? fs.written : seg->slot_cap);
        if (n > 0 && fill_read(f, payload, n, 0) < 0) {
            status = SHM_STATUS_ERROR;
            n = 0;
        }
    }
    *statusp = status;
    *lenp = status == SHM_STATUS_OK ? fs.length : 0;
    rc = shm_seg_publish(seg, gen, SHM_SLOT_RESPONSE, (enum shm_status)status, *lenp, n);
    if (rc < 0 || status != SHM_STATUS_OK)
        return rc;
    off = n;
    stats_slot_progress(s->stats, slot, off, fs.length);
    while (off < fs.length) {
        rc = reserve(s, seg, pidfd, &payload);
        if (rc < 0)
            return rc;
        if (fs.written <= off)
            rc = cache_server_wait_fill(s, f, seg_wanted, &want, 1, off, &fs);
        if (rc == 0 && fs.written <= off)
            rc = -EIO; /* the fetch failed after the RESPONSE */
        if (rc == 0) {
            uint64_t avail = fs.written - off;
            n = (uint32_t)(avail < seg->slot_cap ? avail : seg->slot_cap);
            if (fill_read(f, payload, n, off) < 0)
                rc = -EIO;
        }
        if (rc < 0) {
            if (rc != -ESRCH && rc != -ECANCELED)
                (void)shm_seg_publish(seg, gen, SHM_SLOT_DATA, SHM_STATUS_OK, 0, 0);
            return rc;
        }
        rc = shm_seg_publish(seg, gen, SHM_SLOT_DATA, SHM_STATUS_OK, 0, n);
        if (rc < 0)
            return rc;
        off += n;
        stats_slot_progress(s->stats, slot, off, fs.length);
    }
    return 0;
}

/* attach_cache_get, tried again after 10 and 50 ms when it fails for a passing lack of
 * resources: an unattached request cannot be answered, so its proxy would wait for its stall
 * limit. */
static int attach_retrying(struct cache_server *s, const struct cmdq_request *req,
                           struct attach_lease *lease)
{
    static const int backoff_ms[] = {10, 50};
    int rc =
        attach_cache_get(s->attach, req->seg_name, req->seg_size, (pid_t)req->proxy_pid, lease);

    for (unsigned i = 0; i < sizeof backoff_ms / sizeof backoff_ms[0]; i++) {
        if (rc != -EMFILE && rc != -ENFILE && rc != -ENOMEM && rc != -EAGAIN && rc != -EINTR)
            break;
        clock_sleep_ms(backoff_ms[i]);
        rc =
            attach_cache_get(s->attach, req->seg_name, req->seg_size, (pid_t)req->proxy_pid, lease);
    }
    return rc;
}

/* One request's end in the live figures: its outcome, the bytes sent, its latency. */
static void note_done(struct cache_server *s, enum stats_outcome outcome, uint64_t bytes,
                      int64_t t0_ns)
{
    int64_t ns = clock_mono_ns() - t0_ns;

    stats_request_done(s->stats, outcome, bytes, ns > 0 ? (uint64_t)ns / 1000u : 0);
}

static int serve_ring(struct cache_server *s, unsigned slot, const struct cmdq_request *req,
                      struct shm_seg *seg, int pidfd, enum ipc_backend via, int64_t t0,
                      struct cache_answer *pre);

/* Serves one request from start to end: attach (or reuse a kept attachment), check, look up
 * (unless pre holds the boss's lookup: taken over and released here), answer, give the
 * attachment back. slot is the worker's stats slot. */
static void serve(struct cache_server *s, unsigned slot, const struct cmdq_request *req,
                  struct cache_answer *pre)
{
    struct attach_lease lease;
    int64_t t0 = clock_mono_ns();
    int rc, drop;

    rc = attach_retrying(s, req, &lease);
    if (rc < 0 && pre != NULL)
        cache_answer_release(s, pre);
    if (rc == -ESRCH) {
        log_debug("proxy %u is gone; request for '%s' dropped", (unsigned)req->proxy_pid,
                  req->path);
        stat_add(&s->st.aborted);
        note_done(s, STATS_CANCELLED, 0, t0);
        return;
    }
    if (rc < 0) {
        stat_add(&s->st.rejected);
        note_done(s, STATS_CANCELLED, 0, t0);
        if (ratelimit_allow(&s->rl))
            log_warn(-rc, "request for '%s' rejected: cannot attach segment '%s'", req->path,
                     req->seg_name);
        return;
    }
    drop = serve_ring(s, slot, req, &lease.seg, lease.pidfd, IPC_BACKEND_POSIX, t0, pre);
    attach_cache_put(s->attach, &lease, drop);
}

int cache_server_serve_ring(struct cache_server *s, unsigned slot, const struct cmdq_request *req,
                            struct shm_seg *seg, int pidfd, enum ipc_backend via, int64_t t0)
{
    return serve_ring(s, slot, req, seg, pidfd, via, t0, NULL);
}

/* cache_server_serve_ring, with the lookup already done when pre is non-NULL (pre is then taken
 * over: this releases it). */
static int serve_ring(struct cache_server *s, unsigned slot, const struct cmdq_request *req,
                      struct shm_seg *seg, int pidfd, enum ipc_backend via, int64_t t0,
                      struct cache_answer *pre)
{
    struct cache_answer a = {.fd = -1};
    enum cache_result result = CACHE_RESULT_ABORTED;
    uint64_t gen;
    uint32_t serial = 0;
    int status, rc, drop = 0;

    if (pre != NULL) {
        a = *pre;
        pre->fd = -1;
        pre->fill = NULL;
    }
    /* The proxy sets the generation before it sends the request and changes it only for the
     * next request, which it cannot send before this one is answered or abandoned. */
    gen = __atomic_load_n(&seg->hdr->generation, __ATOMIC_ACQUIRE);
    if (gen != req->generation) {
        stat_add(&s->st.stale);
        note_done(s, STATS_CANCELLED, 0, t0);
        log_debug("stale request for '%s': generation %llu, segment '%s' is at %llu", req->path,
                  (unsigned long long)req->generation, req->seg_name, (unsigned long long)gen);
        goto out;
    }
    (void)ipc_name_parse(req->seg_name, IPC_KIND_SEGMENT, s->uid, NULL, &serial);
    stats_slot_begin(s->stats, slot, (pid_t)req->proxy_pid, serial, req->path, req->path_len);
    if (s->backend != cache_backend_ops_for(via)) {
        /* A proxy on another --ipc found us: a quick "no cache here" (its origin may answer). */
        if (ratelimit_allow(&s->rl))
            log_warn(0,
                     "'%s': request of proxy %u over --ipc %s, but this cache serves "
                     "--ipc %s: answered OTHER_BACKEND",
                     req->path, (unsigned)req->proxy_pid, ipc_backend_name(via), s->backend->name);
        status = CACHE_STATUS_OTHER_BACKEND;
    } else if (pre != NULL) {
        status = is_stopping(s) ? CACHE_STATUS_ERROR : a.status; /* as a lookup answers */
    } else {
        struct seg_want want = {seg, pidfd};
        status = cache_server_lookup(s, req->path, req->path_len, seg_wanted, &want, &a);
    }
    if (status < 0) {
        result = CACHE_RESULT_ABORTED;
        drop = 1; /* the proxy died or cancelled: it replaces (or never reuses) the segment */
        goto out_done;
    }
    struct stat before; /* an unchecked entry's file before the read (store_mark_verified) */
    int damaged = 0, can_mark = a.crc >= 0 && fstat(a.fd, &before) == 0;
    if (status == CACHE_STATUS_FILL)
        rc = send_fill(s, slot, seg, pidfd, gen, &status, a.fill, &a.len);
    else
        rc = send_answer(s, slot, seg, pidfd, gen, &status, a.fd, a.base, a.len, a.crc, &damaged);
    if (damaged)
        store_drop_damaged(s->opt.store, req->path, req->path_len, (uint32_t)a.crc);
    else if (rc == 0 && status == CACHE_STATUS_OK && can_mark)
        store_mark_verified(s->opt.store, req->path, req->path_len, (uint32_t)a.crc, a.fd, &before);
    if (rc == 0 && status == CACHE_STATUS_OK) {
        result = CACHE_RESULT_SERVED;
        if (a.fill != NULL && fill_stale(a.fill))
            log_info("'%s': served stale (the origin fails; --stale-if-error)", req->path);
    } else if (rc == 0 &&
               (status == CACHE_STATUS_NOT_FOUND || status == CACHE_STATUS_ORIGIN_NOT_FOUND)) {
        result = CACHE_RESULT_NOT_FOUND;
    } else if (rc == 0) {
        result = CACHE_RESULT_ERROR;
    } else {
        result = CACHE_RESULT_ABORTED;
        drop = 1;
        /* Unless the proxy died or cancelled, it still waits for the next chunk: tell it now
         * rather than let it wait for its stall limit. */
        if (rc != -ESRCH)
            shm_seg_abandon(seg);
        log_msg(LOGL_DEBUG, -rc, "transfer of '%s' abandoned", req->path);
    }
out_done:
    stats_slot_end(s->stats, slot, STATS_SLOT_FREE);
    cache_server_done(s, result, &a, a.len, t0);
out:
    cache_answer_release(s, &a);
    return drop;
}

void cache_server_done(struct cache_server *s, enum cache_result r, const struct cache_answer *a,
                       uint64_t bytes, int64_t t0_ns)
{
    enum stats_outcome outcome = STATS_CANCELLED;

    switch (r) {
    case CACHE_RESULT_SERVED:
        stat_add(&s->st.served);
        outcome = a->fill == NULL ? STATS_HIT : fill_stale(a->fill) ? STATS_STALE : STATS_FILL;
        break;
    case CACHE_RESULT_NOT_FOUND:
        stat_add(&s->st.not_found);
        outcome = STATS_MISS;
        break;
    case CACHE_RESULT_ERROR:
        stat_add(&s->st.errors);
        outcome = STATS_ERROR;
        break;
    case CACHE_RESULT_ABORTED:
        stat_add(&s->st.aborted);
        break;
    case CACHE_RESULT_REJECTED:
        stat_add(&s->st.rejected);
        break;
    }
    note_done(s, outcome,
              outcome == STATS_HIT || outcome == STATS_FILL || outcome == STATS_STALE ? bytes : 0,
              t0_ns);
}

/* The posix backend's job: one request from the command queue. */
static void posix_run(struct cache_server *s, unsigned slot, struct cache_job *job)
{
    struct posix_job *pj = (struct posix_job *)job;

    serve(s, slot, &pj->req, pj->pre.fd >= 0 ? &pj->pre : NULL);
    job_put(s, pj);
}

const struct cache_backend_ops cache_backend_posix = {"posix", NULL, NULL, NULL};

int cache_server_submit(struct cache_server *s, struct cache_job *job, int timeout_ms)
{
    return workq_push(&s->wq, job, timeout_ms);
}

int cache_server_rundir(const struct cache_server *s, const char **path)
{
    *path = s->q->rundir;
    return s->q->instance_fd;
}

int cache_server_stopping(const struct cache_server *s)
{
    return is_stopping(s);
}

void cache_server_set_generation(struct cache_server *s, _Atomic uint32_t *word)
{
    s->gen = word;
}

void cache_server_bump_generation(struct cache_server *s)
{
    if (s->gen != NULL)
        atomic_fetch_add_explicit(s->gen, 1, memory_order_release);
}

unsigned cache_server_nthreads(const struct cache_server *s)
{
    return s->opt.nthreads;
}

int cache_server_stall_ms(const struct cache_server *s)
{
    return s->opt.stall_ms;
}

struct stats_region *cache_server_stats_region(const struct cache_server *s)
{
    return s->stats;
}

int cache_server_warn_ok(struct cache_server *s)
{
    return ratelimit_allow(&s->rl);
}

static void *worker_main(void *arg)
{
    struct cache_server *s = arg;
    unsigned slot = atomic_fetch_add_explicit(&s->next_worker, 1, memory_order_relaxed);
    void *item;

    while (workq_pop(&s->wq, &item, -1) == 0) {
        struct cache_job *job = item;
        job->run(s, slot, job);
    }
    pthread_mutex_lock(&s->lock);
    if (--s->nrunning == 0)
        pthread_cond_broadcast(&s->all_done);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int cache_server_new(struct cache_server **out, const struct cache_server_options *opt,
                     struct simplecache *cache, struct cmdq_server *q)
{
    struct cache_server *s;
    pthread_condattr_t ca;
    int rc;

    if (opt->nthreads < 1 || opt->nthreads > CACHE_THREADS_MAX ||
        opt->delay_us > CACHE_DELAY_MAX_US || opt->stall_ms < 0 || opt->grace_ms < 0 ||
        opt->attach_max > ATTACH_CACHE_MAX)
        return -EINVAL;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->opt = *opt;
    if (s->opt.queue_depth == 0)
        s->opt.queue_depth = 2 * opt->nthreads;
    if (s->opt.stall_ms == 0)
        s->opt.stall_ms = 30000;
    if (s->opt.grace_ms == 0)
        s->opt.grace_ms = 3000;
    if (s->opt.attach_max == 0)
        s->opt.attach_max = CACHE_ATTACH_DEFAULT;
    if (s->opt.max_fills == 0)
        s->opt.max_fills = opt->nthreads;
    s->q = q;
    s->stats = opt->stats;
    s->uid = geteuid(); /* the uid our IPC names carry (as in src/ipc) */
    unsigned njobs = s->opt.queue_depth + opt->nthreads + 1;
    s->threads = calloc(opt->nthreads, sizeof *s->threads);
    s->jobs = calloc(njobs, sizeof *s->jobs);
    s->free_jobs = calloc(njobs, sizeof *s->free_jobs);
    s->rxcap = sizeof(struct cmdq_request) + 1; /* one more: an oversized message shows */
    s->rxbuf = malloc(s->rxcap);
    if (s->threads == NULL || s->jobs == NULL || s->free_jobs == NULL || s->rxbuf == NULL) {
        rc = -ENOMEM;
        goto err_free;
    }
    for (unsigned i = 0; i < njobs; i++) {
        s->jobs[i].base.run = posix_run;
        s->free_jobs[s->nfree_jobs++] = &s->jobs[i];
    }
    rc = attach_cache_new(&s->attach, s->opt.attach_max);
    if (rc < 0)
        goto err_free;
    rc = workq_init(&s->wq, s->opt.queue_depth);
    if (rc < 0)
        goto err_free;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->rl.lock, NULL);
    pthread_rwlock_init(&s->index_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->all_done, &ca);
    pthread_cond_init(&s->fills_done, &ca);
    pthread_condattr_destroy(&ca);
    s->cache = cache;
    stats_set(s->stats, STATS_G_QUEUE_CAP, CMDQ_MAXMSG);
    stats_set(s->stats, STATS_G_STORE_ENTRIES, simplecache_count(cache));
    stats_set(s->stats, STATS_G_STORE_BYTES, simplecache_bytes(cache));
    s->backend = opt->backend != NULL ? opt->backend : &cache_backend_posix;
    if (s->backend->open != NULL) {
        rc = s->backend->open(s, &s->b);
        if (rc < 0) {
            s->cache = NULL; /* not taken: the caller still owns it */
            s->backend = &cache_backend_posix;
            cache_server_free(s);
            return rc;
        }
    }
    *out = s;
    return 0;

err_free:
    attach_cache_free(s->attach);
    free(s->threads);
    free(s->jobs);
    free(s->free_jobs);
    free(s->rxbuf);
    free(s);
    return rc;
}

static const char *reject_reason(int rc)
{
    switch (-rc) {
    case EBADMSG:
        return "malformed";
    case EPROTO:
        return "unknown protocol version";
    case EPERM:
        return "foreign segment name";
    default:
        return "invalid";
    }
}

/* Publishes the messages waiting in the command queue (and in replaced ones still read), at
 * most every QUEUE_POLL_MS. */
static void poll_depth(struct cache_server *s)
{
    struct mq_attr a;
    uint64_t depth = 0;

    if (s->stats == NULL || clock_mono_ms() < s->next_depth_ms)
        return;
    s->next_depth_ms = clock_mono_ms() + QUEUE_POLL_MS;
    if (mq_getattr(s->q->mq, &a) == 0 && a.mq_curmsgs > 0)
        depth += (uint64_t)a.mq_curmsgs;
    for (unsigned i = 0; i < s->q->nold; i++)
        if (mq_getattr(s->q->old_mq[i], &a) == 0 && a.mq_curmsgs > 0)
            depth += (uint64_t)a.mq_curmsgs;
    stats_set(s->stats, STATS_G_QUEUE_DEPTH, depth);
    if (s->opt.store != NULL) {
        /* The index (only the boss replaces it) and the store's entries together. */
        struct store_stats ss;
        store_stats(s->opt.store, &ss);
        stats_set(s->stats, STATS_G_STORE_ENTRIES, simplecache_count(s->cache) + ss.entries);
        stats_set(s->stats, STATS_G_STORE_BYTES, simplecache_bytes(s->cache) + ss.bytes);
        stats_add(s->stats, STATS_C_EVICTIONS, ss.evictions - s->evictions_seen);
        s->evictions_seen = ss.evictions;
    }
}

/* Hands a validated request to the workers, waiting while the queue is full. Returns 0, or -1
 * when stopping first (the request goes back to the free buffers). */
static int dispatch(struct cache_server *s, struct posix_job *job,
                    const volatile sig_atomic_t *stop)
{
    for (;;) {
        int rc = workq_push(&s->wq, &job->base, RECEIVE_SLICE_MS);
        poll_depth(s); /* the workers are all busy: the command queue fills up meanwhile */
        if (rc == 0)
            return 0;
        if (rc != -ETIMEDOUT || *stop) {
            cache_answer_release(s, &job->pre);
            job_put(s, job);
            return -1;
        }
    }
}

/* Opens the request's index file into job->pre when it is one (no -d delay, posix: a lookup
 * then needs no wait), so the worker need not look it up again. Returns 1 when the boss
 * should serve it itself: a file of at most INLINE_MAX bytes whose chunks all fit in the idle
 * ring of the request's segment size, so every write finds a free slot without waiting for
 * the proxy (a slow client cannot hold the boss). */
static int peek_index(struct cache_server *s, struct posix_job *job)
{
    const struct cmdq_request *req = &job->req;
    struct cache_answer *a = &job->pre;
    uint32_t k, cap;
    int rc;

    *a = (struct cache_answer){.status = CACHE_STATUS_ERROR, .fd = -1, .crc = -1};
    if (s->opt.delay_us != 0 || s->backend != &cache_backend_posix || is_stopping(s))
        return 0;
    pthread_rwlock_rdlock(&s->index_lock);
    rc = simplecache_open(s->cache, req->path, req->path_len, &a->fd, &a->len);
    pthread_rwlock_unlock(&s->index_lock);
    if (rc < 0) {
        a->fd = -1; /* the worker's lookup decides (store, fill, NOT_FOUND, ERROR) */
        return 0;
    }
    a->status = CACHE_STATUS_OK;
    if (a->len > INLINE_MAX || shm_geometry(req->seg_size, &k, &cap) < 0)
        return 0;
    return a->len <= (uint64_t)k * cap;
}

/* The queue's and the registry's names may be removed or replaced from under us (by hand, or by
 * a tmp cleaner); then new proxies could not find us. cmdq_server_check repairs them. A failure
 * is logged when it first appears (it is retried every CMDQ_CHECK_MS). */
static void check_names(struct cache_server *s, int *last_rc)
{
    unsigned fixed = 0;
    int rc = cmdq_server_check(s->q, &fixed);

    if (fixed & CMDQ_FIXED_QUEUE)
        log_warn(0,
                 "the command queue '%s' was removed or replaced: created it again (the old "
                 "one is still read for the proxies that hold it)",
                 s->q->mq_name);
    if (fixed & CMDQ_FIXED_REGISTRY)
        log_warn(0,
                 "the registry '%s' was removed or replaced: created, locked and published it "
                 "again",
                 s->q->registry_name);
    if (rc < 0 && rc != *last_rc)
        log_err(-rc,
                "cannot check or repair the command queue '%s' or the registry '%s' (retrying)",
                s->q->mq_name, s->q->registry_name);
    *last_rc = rc;
}

/* A reload request: a new index replaces the current one for every later lookup. */
static int reload_index(struct cache_server *s)
{
    struct simplecache *fresh = NULL, *old;
    int rc;

    if (s->opt.reload_flag != NULL)
        s->opt.reload_flag[0] = 0;
    rc = s->opt.reload(s->opt.reload_arg, &fresh);
    if (rc < 0)
        return rc;
    pthread_rwlock_wrlock(&s->index_lock);
    old = s->cache;
    s->cache = fresh;
    pthread_rwlock_unlock(&s->index_lock);
    stats_set(s->stats, STATS_G_STORE_ENTRIES, simplecache_count(fresh));
    stats_set(s->stats, STATS_G_STORE_BYTES, simplecache_bytes(fresh));
    simplecache_free(old); /* no lookup holds it: each held the read lock while using it */
    cache_server_bump_generation(s);
    return 0;
}

/* Obeys a control command only from a process whose every uid is ours: a pidfd first, then its
 * credentials in /proc, then it must still be that process. Returns 1 when it is. */
static int ctl_sender_ok(const struct cache_server *s, pid_t pid)
{
    int pidfd = peer_open(pid), ok;

    if (pidfd < 0)
        return 0;
    ok = peer_uids_are(pid, s->uid) == 1 && peer_alive(pidfd) == 1;
    close(pidfd);
    return ok;
}

/* Sends the reply to the sender's reply queue, only when that queue is ours (uid, mode 0600).
 * Never waits: the sender made room for one message. */
static void ctl_reply(const struct cache_server *s, const struct cmdq_ctl *ctl, int status,
                      uint64_t count)
{
    struct cmdq_reply r = {.magic = CMDQ_REPLY_MAGIC,
                           .version = CMDQ_VERSION,
                           .size = sizeof r,
                           .status = status,
                           .op = ctl->op,
                           .count = count};
    char name[IPC_NAME_MAX];
    struct stat st;
    mqd_t q;

    if (cmdq_reply_name(name, s->uid, (pid_t)ctl->sender_pid, ctl->reply_serial) < 0)
        return;
    q = mq_open(name, O_WRONLY | O_NONBLOCK);
    if (q == (mqd_t)-1) {
        log_warn(errno, "control command of pid %u: cannot open its reply queue '%s'",
                 ctl->sender_pid, name);
        return;
    }
    if (fstatat((int)q, "", &st, AT_EMPTY_PATH) < 0 || st.st_uid != s->uid ||
        (st.st_mode & 0777) != 0600)
        log_warn(0, "control command of pid %u: reply queue '%s' is not ours; no reply",
                 ctl->sender_pid, name);
    else if (mq_send(q, (const char *)&r, sizeof r, 0) < 0)
        log_warn(errno, "control command of pid %u: cannot reply", ctl->sender_pid);
    mq_close(q);
}

/* A control command (gfctl): purge, ban or reload, answered on the sender's reply queue. */
static void handle_ctl(struct cache_server *s, const void *buf, size_t len)
{
    struct cmdq_ctl ctl;
    uint64_t count = 0;
    int rc = cmdq_ctl_decode(buf, len, &ctl);

    if (rc < 0) {
        stat_add(&s->st.rejected);
        stats_add(s->stats, STATS_C_REJECTED, 1);
        if (ratelimit_allow(&s->rl))
            log_warn(0, "rejected a %s control command of %zu bytes", reject_reason(rc), len);
        return;
    }
    if (!ctl_sender_ok(s, (pid_t)ctl.sender_pid)) {
        stat_add(&s->st.rejected);
        stats_add(s->stats, STATS_C_REJECTED, 1);
        if (ratelimit_allow(&s->rl))
            log_warn(0, "ignored a control command of pid %u: not a live process of uid %u",
                     ctl.sender_pid, (unsigned)s->uid);
        return;
    }
    if (ctl.op == CMDQ_CTL_RELOAD) {
        rc = s->opt.reload == NULL ? -ENOTSUP : reload_index(s);
        count = rc == 0 ? simplecache_count(s->cache) : 0;
        log_info("control: reload requested by pid %u: %s", ctl.sender_pid,
                 rc == 0 ? "done" : "failed, the index stays as it was");
    } else {
        pthread_rwlock_rdlock(&s->index_lock);
        int pinned =
            ctl.op == CMDQ_CTL_PURGE && simplecache_contains(s->cache, ctl.path, ctl.path_len);
        pthread_rwlock_unlock(&s->index_lock);
        if (pinned)
            rc = -EPERM;
        else if (s->opt.store == NULL)
            rc = -ENOTSUP;
        else
            count = store_purge(s->opt.store, ctl.path, ctl.path_len, ctl.op == CMDQ_CTL_BAN);
        cache_server_bump_generation(s);
        stats_add(s->stats, STATS_C_PURGES, count);
        log_info("control: %s '%s' by pid %u: %llu entr%s dropped%s",
                 ctl.op == CMDQ_CTL_BAN ? "ban" : "purge", ctl.path, ctl.sender_pid,
                 (unsigned long long)count, count == 1 ? "y" : "ies",
                 pinned ? " (an index entry: pinned)" : "");
    }
    ctl_reply(s, &ctl, rc, count);
}

static void boss_loop(struct cache_server *s, const volatile sig_atomic_t *stop)
{
    struct posix_job *job = NULL;
    int64_t next_sweep = clock_mono_ms() + SWEEP_EVERY_MS;
    int64_t next_check = clock_mono_ms() + CMDQ_CHECK_MS;
    int check_rc = 0;

    while (!*stop) {
        if (s->opt.reload_flag != NULL && *s->opt.reload_flag && s->opt.reload != NULL)
            (void)reload_index(s);
        if (clock_mono_ms() >= next_sweep) {
            /* Kept attachments of replaced segments and dead proxies would pin their memory. */
            unsigned n = attach_cache_sweep(s->attach);
            if (n > 0)
                log_debug("dropped %u stale segment attachment(s)", n);
            next_sweep = clock_mono_ms() + SWEEP_EVERY_MS;
        }
        if (clock_mono_ms() >= next_check) {
            check_names(s, &check_rc);
            next_check = clock_mono_ms() + CMDQ_CHECK_MS;
        }
        ssize_t n = cmdq_server_receive(s->q, s->rxbuf, s->rxcap, RECEIVE_SLICE_MS);
        poll_depth(s);
        if (n == -ETIMEDOUT || n == -EINTR)
            continue;
        if (n < 0) {
            log_err((int)-n, "cannot receive from the command queue");
            clock_sleep_ms(RECEIVE_SLICE_MS); /* do not spin on a persistent error */
            continue;
        }
        if (cmdq_is_ctl(s->rxbuf, (size_t)n)) {
            stats_add(s->stats, STATS_C_MESSAGES, 1);
            handle_ctl(s, s->rxbuf, (size_t)n);
            continue;
        }
        if (job == NULL)
            job = job_get(s);
        if (job == NULL) {
            /* Cannot happen: the boss holds at most one buffer, the queue and the workers the
             * others, and there is one buffer more than they can hold. */
            log_err(0, "no free request buffer; request dropped");
            continue;
        }
        stats_add(s->stats, STATS_C_MESSAGES, 1);
        int rc = cmdq_request_decode(s->rxbuf, (size_t)n, s->uid, &job->req);
        if (rc < 0) {
            stat_add(&s->st.rejected);
            stats_add(s->stats, STATS_C_REJECTED, 1);
            if (ratelimit_allow(&s->rl))
                log_warn(0, "rejected a %s request of %zd bytes", reject_reason(rc), n);
            continue; /* job is reused for the next message */
        }
        if (peek_index(s, job)) {
            /* The boss's stats slot is nthreads: past the live figures' slots, so not shown. */
            serve(s, s->opt.nthreads, &job->req, &job->pre);
            job_put(s, job);
            job = NULL;
            continue;
        }
        /* dispatch gives the job back (job_put) when it fails: read it before. */
        unsigned proxy_pid = job->req.proxy_pid;
        if (dispatch(s, job, stop) < 0)
            log_info("stopping: request for a segment of proxy %u dropped", proxy_pid);
        job = NULL;
    }
    if (job != NULL)
        job_put(s, job);
}

/* Waits until every worker has exited or deadline_ms passes. Returns the workers still
 * running. */
static unsigned wait_workers(struct cache_server *s, int64_t deadline_ms)
{
    unsigned left;

    pthread_mutex_lock(&s->lock);
    while (s->nrunning > 0) {
        int ms = clock_ms_left(deadline_ms);
        if (ms == 0)
            break;
        struct timespec ts = clock_mono_in(ms);
        pthread_cond_timedwait(&s->all_done, &s->lock, &ts);
    }
    left = s->nrunning;
    pthread_mutex_unlock(&s->lock);
    return left;
}

/* After the workers: fetches nobody reads any more stop (their fills fail, nothing partial is
 * kept); each notices within a second (libcurl's progress callback). */
static void wait_fills(struct cache_server *s)
{
    int64_t deadline = clock_mono_ms() + FILLS_WAIT_MS;

    atomic_store_explicit(&s->fills_cancel, 1, memory_order_release);
    pthread_mutex_lock(&s->lock);
    while (s->nfilling > 0) {
        int ms = clock_ms_left(deadline);
        if (ms == 0) {
            /* They use the server and the store: never free them under a running fetch. */
            log_warn(0, "%u origin fetch(es) still running; waiting", s->nfilling);
            deadline = clock_mono_ms() + FILLS_WAIT_MS;
            continue;
        }
        struct timespec ts = clock_mono_in(ms);
        pthread_cond_timedwait(&s->fills_done, &s->lock, &ts);
    }
    pthread_mutex_unlock(&s->lock);
}

/* The backend stops taking requests and gives its names up; once. */
static void backend_retire(struct cache_server *s)
{
    if (!s->retired && s->backend->retire != NULL)
        s->backend->retire(s->b);
    s->retired = 1;
}

int cache_server_run(struct cache_server *s, const volatile sig_atomic_t *stop)
{
    sigset_t block, old;
    int rc = 0;

    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    s->nrunning = s->opt.nthreads; /* before any worker can exit */
    for (; s->nstarted < s->opt.nthreads; s->nstarted++) {
        int err = pthread_create(&s->threads[s->nstarted], NULL, worker_main, s);
        if (err != 0) {
            rc = -err;
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0) {
        /* Workers that never started will never decrement nrunning. */
        pthread_mutex_lock(&s->lock);
        s->nrunning -= s->opt.nthreads - s->nstarted;
        pthread_mutex_unlock(&s->lock);
        log_err(-rc, "cannot start worker %u of %u", s->nstarted + 1, s->opt.nthreads);
    } else {
        boss_loop(s, stop);
    }

    /* Stop: the names go at once, so a new cache can start and proxies move to it while this
     * one drains; nothing new starts; queued requests are answered ERROR; transfers get the
     * grace. */
    atomic_store_explicit(&s->stopping, 1, memory_order_release);
    backend_retire(s); /* first: its names go while we still hold the instance lock */
    cmdq_server_retire(s->q);
    log_info("stopping: gave up the command queue and registry names; transfers in progress "
             "get up to %d ms",
             s->opt.grace_ms);
    workq_close(&s->wq);
    unsigned left = wait_workers(s, clock_mono_ms() + s->opt.grace_ms);
    if (left > 0) {
        log_warn(0, "grace period over: cutting %u transfer(s)", left);
        atomic_store_explicit(&s->cut, 1, memory_order_release);
    }
    for (unsigned i = 0; i < s->nstarted; i++)
        pthread_join(s->threads[i], NULL);
    wait_fills(s);
    struct attach_cache_stats as;
    attach_cache_stats(s->attach, &as);
    log_info("segment attachments: %llu mapped, %llu reused, %llu dropped, %llu not kept",
             (unsigned long long)as.attaches, (unsigned long long)as.reuses,
             (unsigned long long)as.evictions, (unsigned long long)as.uncached);
    return rc;
}

void cache_server_stats(const struct cache_server *s, struct cache_server_stats *out)
{
    out->served = atomic_load_explicit(&s->st.served, memory_order_relaxed);
    out->not_found = atomic_load_explicit(&s->st.not_found, memory_order_relaxed);
    out->errors = atomic_load_explicit(&s->st.errors, memory_order_relaxed);
    out->aborted = atomic_load_explicit(&s->st.aborted, memory_order_relaxed);
    out->rejected = atomic_load_explicit(&s->st.rejected, memory_order_relaxed);
    out->stale = atomic_load_explicit(&s->st.stale, memory_order_relaxed);
}

void cache_server_free(struct cache_server *s)
{
    void *item;

    if (s == NULL)
        return;
    /* Jobs nobody ran (run was never called, or its workers did not start): each is answered
     * ERROR (stopping) and released by its own run. */
    atomic_store_explicit(&s->stopping, 1, memory_order_release);
    backend_retire(s);
    workq_close(&s->wq);
    while (workq_trypop(&s->wq, &item) == 0) {
        struct cache_job *job = item;
        job->run(s, 0, job);
    }
    if (s->backend->close != NULL)
        s->backend->close(s->b);
    workq_release(&s->wq);
    attach_cache_free(s->attach);
    pthread_cond_destroy(&s->all_done);
    pthread_cond_destroy(&s->fills_done);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->rl.lock);
    pthread_rwlock_destroy(&s->index_lock);
    simplecache_free(s->cache);
    free(s->threads);
    free(s->jobs);
    free(s->free_jobs);
    free(s->rxbuf);
    free(s);
}
