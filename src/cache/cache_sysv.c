/* cache_sysv.c - simplecached's sysv backend: requests on a System V queue keyed by our pid
 * (sysv_msgq.h), answers written into the proxy's System V segment with the posix ring
 * (cache_server_serve_ring), so only the transport differs. */
/* SPDX-License-Identifier: MIT */
#include "cache_backend.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "cmdq.h"
#include "log.h"
#include "peer.h"
#include "sysv_keys.h"
#include "sysv_msgq.h"
#include "sysv_pub.h"
#include "sysv_seg.h"

#define RX_RETRY_MS     200  /* after a receive error, before the next try */
#define SUBMIT_SLICE_MS 200  /* a wait for a free worker checks for retirement this often */
#define KEEP_MAX        64   /* attachments kept between requests */
#define KEEP_SWEEP_MS   1000 /* how often kept attachments the proxy let go are dropped */
#define JOBS_MAX        64   /* requests taken off the queue and not yet served */

/* An attachment kept between requests: mapping a segment afresh costs its page faults on
 * every request (docs/ipc.md, "Measured, once"). Its shmid cannot name another segment while
 * we hold it attached (the kernel frees, and may reuse, an id only after the last detach). */
struct kept {
    int used, busy; /* guarded by the backend's lock */
    int shmid;
    pid_t proxy;
    struct shm_seg seg;
};

struct cache_backend;

struct sysv_job {
    struct cache_job base; /* first: the server calls base.run */
    struct cache_backend *b;
    int busy; /* guarded by the backend's lock */
    struct cmdq_request req;
};

struct cache_backend {
    struct cache_server *s;
    pthread_mutex_t lock; /* guards q.id against the receiver's re-creation */
    struct sysv_msgq q;
    pthread_t rx, sweeper;
    int rx_started, sweeper_started;
    pthread_cond_t wake;        /* the sweeper's sleep; signalled at retire */
    struct kept keep[KEEP_MAX]; /* guarded by lock */
    atomic_int stop;            /* retire: set, then the queue removed to wake the receiver */
    unsigned char *rxbuf;       /* the receiver's, SYSV_MSG_MAX bytes: made before it starts */
    /* Made at open, so that a request taken off the queue never meets a failed allocation and
     * goes unanswered (the proxy would wait for its stall limit: rel_faults_cache_sysv). */
    struct sysv_job *jobs; /* JOBS_MAX */
    uid_t uid;
    int dir; /* the instance's runtime directory (not ours to close): the key is published there */
};

/* A free job, or NULL when JOBS_MAX requests are still being served. */
static struct sysv_job *job_take(struct cache_backend *b)
{
    struct sysv_job *j = NULL;

    pthread_mutex_lock(&b->lock);
    for (unsigned i = 0; i < JOBS_MAX && j == NULL; i++)
        if (!b->jobs[i].busy)
            j = &b->jobs[i];
    if (j != NULL)
        j->busy = 1;
    pthread_mutex_unlock(&b->lock);
    return j;
}

static void job_give(struct cache_backend *b, struct sysv_job *j)
{
    pthread_mutex_lock(&b->lock);
    j->busy = 0;
    pthread_mutex_unlock(&b->lock);
}

/* Publishes key as ours before the queue is made under it (sysv_msgq_create_free's hook). */
static int publish_first(key_t key, void *arg)
{
    struct cache_backend *b = arg;

    return sysv_pub_write(b->dir, getpid(), key);
}

/* Creates the command queue under our pid key, or a random one when another process (another
 * user's squatter) holds it, and publishes its key for the proxies (sysv_pub.h). A random key is
 * published before its queue exists, so a cache killed at any moment leaves a record naming it
 * for the next cache's sweep. Caller holds b->lock or is alone. Returns 0 or -errno; on failure
 * no queue is left. */
static int queue_create(struct cache_backend *b)
{
    key_t pid_key = sysv_key_make(SYSV_KIND_CMD, (uint32_t)getpid());
    int rc = sysv_msgq_create_free(&b->q, getpid(), publish_first, b);

    if (rc == 0 && b->q.key == pid_key)
        rc = sysv_pub_write(b->dir, getpid(), b->q.key);
    if (rc < 0) {
        sysv_msgq_close(&b->q);
        sysv_pub_remove(b->dir, getpid());
        return rc;
    }
    if (b->q.key != pid_key)
        log_warn(0,
                 "sysv: the command queue's key 0x%08x is taken by another process: using key "
                 "0x%08x instead (published in the runtime directory)",
                 (unsigned)pid_key, (unsigned)b->q.key);
    return 0;
}

/* Drops kept attachments the proxy has let go (only we are attached: it destroyed or
 * replaced the segment, or died); all of them when all is set. Caller holds b->lock. */
static void keep_sweep_locked(struct cache_backend *b, int all)
{
    for (unsigned i = 0; i < KEEP_MAX; i++) {
        struct kept *k = &b->keep[i];
        struct shmid_ds ds;

        if (!k->used || k->busy)
            continue;
        if (!all && shmctl(k->shmid, IPC_STAT, &ds) == 0 && ds.shm_nattch > 1 &&
            !(kill(k->proxy, 0) < 0 && errno == ESRCH))
            continue;
        sysv_seg_detach(&k->seg);
        k->used = 0;
    }
}

static void sysv_keep_drop_all(struct cache_backend *b)
{
    pthread_mutex_lock(&b->lock);
    keep_sweep_locked(b, 1);
    pthread_mutex_unlock(&b->lock);
}

/* A kept attachment of shmid for proxy, taken (busy), or a new attachment, kept when there
 * is room. Returns the entry, or NULL with *local attached (not kept), or NULL and *rc < 0. */
static struct kept *keep_take(struct cache_backend *b, int shmid, pid_t proxy, uint64_t size,
                              struct shm_seg *local, int *rc)
{
    struct kept *free_k = NULL;

    *rc = 0;
    pthread_mutex_lock(&b->lock);
    for (unsigned i = 0; i < KEEP_MAX; i++) {
        struct kept *k = &b->keep[i];

        if (k->used && !k->busy && k->shmid == shmid && k->proxy == proxy && k->seg.size >= size) {
            k->busy = 1;
            k->seg.seq = 0; /* the producer's position starts again with each request */
            pthread_mutex_unlock(&b->lock);
            return k;
        }
        if (!k->used && free_k == NULL)
            free_k = k;
    }
    if (free_k != NULL)
        free_k->used = free_k->busy = 1; /* reserved while we attach unlocked */
    pthread_mutex_unlock(&b->lock);
    *rc = sysv_seg_attach(free_k ? &free_k->seg : local, shmid, proxy, size);
    if (free_k == NULL)
        return NULL;
    if (*rc < 0) {
        pthread_mutex_lock(&b->lock);
        free_k->used = free_k->busy = 0;
        pthread_mutex_unlock(&b->lock);
        return NULL;
    }
    free_k->shmid = shmid;
    free_k->proxy = proxy;
    return free_k;
}

static void keep_give(struct cache_backend *b, struct kept *k, int drop)
{
    pthread_mutex_lock(&b->lock);
    if (drop) {
        sysv_seg_detach(&k->seg);
        k->used = 0;
    }
    k->busy = 0;
    pthread_mutex_unlock(&b->lock);
}

/* Drops attachments the proxies let go every KEEP_SWEEP_MS, so a dead or replaced segment's
 * memory is not pinned by us for long. */
static void *sweeper_main(void *arg)
{
    struct cache_backend *b = arg;

    pthread_mutex_lock(&b->lock);
    while (!b->stop) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += KEEP_SWEEP_MS / 1000;
        pthread_cond_timedwait(&b->wake, &b->lock, &ts);
        keep_sweep_locked(b, 0);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

/* One request: the proxy's segment by id, kept attached or attached now (owner, mode, creator
 * = the requesting proxy, size, header: sysv_seg_attach), served as posix does. */
static void sysv_run(struct cache_server *s, unsigned slot, struct cache_job *job)
{
    struct sysv_job *j = (struct sysv_job *)job;
    struct cache_backend *b = j->b;
    const struct cmdq_request *req = &j->req;
    struct cache_answer none = {.fd = -1};
    struct shm_seg local = {0};
    struct kept *k = NULL;
    int64_t t0 = clock_mono_ns();
    int shmid, pidfd, rc, drop;

    pidfd = peer_open((pid_t)req->proxy_pid);
    rc = pidfd < 0 ? pidfd : sysv_seg_id_of(req->seg_name, (pid_t)req->proxy_pid, &shmid);
    if (rc == 0)
        k = keep_take(b, shmid, (pid_t)req->proxy_pid, req->seg_size, &local, &rc);
    if (rc < 0) {
        /* A segment removed at the proxy's death is gone: the proxy is. */
        int gone = rc == -ESRCH || (pidfd >= 0 && peer_alive(pidfd) == 0);
        cache_server_done(s, gone ? CACHE_RESULT_ABORTED : CACHE_RESULT_REJECTED, &none, 0, t0);
        if (!gone && cache_server_warn_ok(s))
            log_warn(-rc, "request for '%s' rejected: cannot attach System V segment '%s'",
                     req->path, req->seg_name);
        goto out;
    }
    drop = cache_server_serve_ring(s, slot, req, k ? &k->seg : &local, pidfd, IPC_BACKEND_SYSV, t0);
    if (k != NULL)
        keep_give(b, k, drop);
    else
        sysv_seg_detach(&local);
out:
    if (pidfd >= 0)
        close(pidfd);
    job_give(b, j);
}

/* The receiver blocks in msgrcv: no polling, so no idle cost and no added latency. Its wait
 * ends with a message, or when retire removes the queue (EIDRM). */
static void *rx_main(void *arg)
{
    struct cache_backend *b = arg;
    unsigned char *buf = b->rxbuf;

    while (!b->stop) {
        struct sysv_job *j;
        struct sysv_msgq q;
        ssize_t n;
        int rc;

        pthread_mutex_lock(&b->lock);
        q = b->q; /* retire may close it meanwhile: then EIDRM or EINVAL, and stop is set */
        pthread_mutex_unlock(&b->lock);
        q.owner = 0;
        n = sysv_msgq_receive(&q, buf, SYSV_MSG_MAX, -1, NULL);

        if (b->stop)
            break;
        if (n == -EINTR)
            continue;
        if (n == -EIDRM || n == -EINVAL) {
            /* Removed by hand (ipcrm): make it again under the same key. */
            pthread_mutex_lock(&b->lock);
            sysv_msgq_close(&b->q);
            rc = b->stop ? -ECANCELED : queue_create(b);
            pthread_mutex_unlock(&b->lock);
            if (rc == -ECANCELED)
                break;
            log_warn(-rc, "sysv: the command queue was removed: %s",
                     rc == 0 ? "re-created" : "cannot re-create it");
            if (rc < 0)
                clock_sleep_ms(RX_RETRY_MS);
            continue;
        }
        if (n == -EBADMSG) {
            if (cache_server_warn_ok(b->s))
                log_warn(0, "sysv: rejected an oversized or foreign message");
            continue;
        }
        if (n < 0) {
            log_err((int)-n, "sysv: cannot receive from the command queue");
            clock_sleep_ms(RX_RETRY_MS); /* do not spin on a persistent error */
            continue;
        }
        /* Every job in use: wait for one, as for a free worker below. */
        while ((j = job_take(b)) == NULL && !b->stop)
            clock_sleep_ms(1);
        if (j == NULL)
            break;
        rc = cmdq_request_decode(buf, (size_t)n, b->uid, &j->req);
        if (rc < 0) {
            if (cache_server_warn_ok(b->s))
                log_warn(0, "sysv: rejected a malformed request of %zd bytes", n);
            job_give(b, j);
            continue;
        }
        j->base.run = sysv_run;
        j->b = b;
        do
            rc = cache_server_submit(b->s, &j->base, SUBMIT_SLICE_MS);
        while (rc == -ETIMEDOUT && !b->stop);
        if (rc < 0)
            job_give(b, j); /* stopping: the proxy sees the cache die or stop */
    }
    return NULL;
}

static void sysv_close(struct cache_backend *b);

static int sysv_open(struct cache_server *s, struct cache_backend **out)
{
    struct sysv_sweep_stats st;
    struct cache_backend *b = calloc(1, sizeof *b);
    const char *dir_path;
    int rc;

    if (b == NULL)
        return -ENOMEM;
    b->s = s;
    b->uid = geteuid();
    /* Made here, not in the receiver: without it the cache must not start (a receiver that
     * gave up alone would leave a live cache that never answers). */
    b->rxbuf = malloc(SYSV_MSG_MAX);
    b->jobs = calloc(JOBS_MAX, sizeof *b->jobs);
    if (b->rxbuf == NULL || b->jobs == NULL) {
        log_err(ENOMEM, "sysv: no receive buffer or jobs");
        free(b->rxbuf);
        free(b->jobs);
        free(b);
        return -ENOMEM;
    }
    b->dir = cache_server_rundir(s, &dir_path);
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->wake, NULL);
    /* System V objects outlive every process: dead caches' queues, and segments of proxies
     * that died between shmget and IPC_RMID. */
    rc = sysv_sweep_dead(b->uid, SYSV_SWEEP_CMD | SYSV_SWEEP_SEG, &st);
    if (rc > 0)
        log_info("sysv: removed %u queue(s) and %u segment(s) left by dead processes",
                 st.queues_removed, st.segs_removed);
    if (sysv_pub_sweep(b->dir) > 0)
        log_info("sysv: removed the queue of a dead cache (a published random key)");
    rc = queue_create(b);
    if (rc < 0) {
        log_err(-rc, "sysv: cannot create the command queue in '%s'%s", dir_path,
                rc == -ENOSPC ? " (kernel.msgmni reached)" : "");
        pthread_cond_destroy(&b->wake);
        pthread_mutex_destroy(&b->lock);
        free(b->rxbuf);
        free(b->jobs);
        free(b);
        return rc;
    }
    rc = -pthread_create(&b->rx, NULL, rx_main, b);
    if (rc == 0) {
        b->rx_started = 1;
        rc = -pthread_create(&b->sweeper, NULL, sweeper_main, b);
        b->sweeper_started = rc == 0;
    }
    if (rc < 0) {
        sysv_close(b);
        return rc;
    }
    log_info("sysv: command queue msqid %d (key 0x%08x)", b->q.id, (unsigned)b->q.key);
    *out = b;
    return 0;
}

static void sysv_retire(struct cache_backend *b)
{
    if (b == NULL)
        return;
    b->stop = 1;
    /* IPC_RMID wakes the receiver (EIDRM); a proxy's next send finds no queue. */
    pthread_mutex_lock(&b->lock);
    sysv_pub_remove(b->dir, getpid());
    sysv_msgq_close(&b->q);
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
    if (b->rx_started)
        pthread_join(b->rx, NULL);
    if (b->sweeper_started)
        pthread_join(b->sweeper, NULL);
    b->rx_started = b->sweeper_started = 0;
}

static void sysv_close(struct cache_backend *b)
{
    if (b == NULL)
        return;
    sysv_retire(b);
    sysv_keep_drop_all(b);
    pthread_cond_destroy(&b->wake);
    pthread_mutex_destroy(&b->lock);
    free(b->rxbuf);
    free(b->jobs);
    free(b);
}

const struct cache_backend_ops cache_backend_sysv = {"sysv", sysv_open, sysv_retire, sysv_close};
