/* cache_sysv.c - simplecached's sysv backend: requests on a System V queue keyed by our pid
 * (sysv_msgq.h), answers written into the proxy's System V segment with the posix ring
 * (cache_server_serve_ring), so only the transport differs. */
/* SPDX-License-Identifier: MIT */
#include "cache_backend.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "cmdq.h"
#include "log.h"
#include "peer.h"
#include "sysv_keys.h"
#include "sysv_msgq.h"
#include "sysv_seg.h"

#define RX_SLICE_MS     200 /* the receiver checks for retirement this often */
#define SUBMIT_SLICE_MS 200 /* and so does a wait for a free worker */

struct sysv_job {
    struct cache_job base; /* first: the server calls base.run */
    struct cmdq_request req;
};

struct cache_backend {
    struct cache_server *s;
    struct sysv_msgq q;
    pthread_t rx;
    int rx_started;
    volatile sig_atomic_t stop; /* retire: the receiver ends within RX_SLICE_MS */
    uid_t uid;
};

/* One request: attach the proxy's segment by id (owner, mode, creator = the requesting proxy,
 * size, header: sysv_seg_attach), serve it as posix does, detach. */
static void sysv_run(struct cache_server *s, unsigned slot, struct cache_job *job)
{
    struct sysv_job *j = (struct sysv_job *)job;
    const struct cmdq_request *req = &j->req;
    struct cache_answer none = {.fd = -1};
    struct shm_seg seg = {0};
    int64_t t0 = clock_mono_ns();
    int shmid, pidfd, rc;

    pidfd = peer_open((pid_t)req->proxy_pid);
    rc = pidfd < 0 ? pidfd : sysv_seg_id_of(req->seg_name, (pid_t)req->proxy_pid, &shmid);
    if (rc == 0)
        rc = sysv_seg_attach(&seg, shmid, (pid_t)req->proxy_pid, req->seg_size);
    if (rc < 0) {
        /* A segment removed at the proxy's death is gone: the proxy is. */
        int gone = rc == -ESRCH || (pidfd >= 0 && peer_alive(pidfd) == 0);
        cache_server_done(s, gone ? CACHE_RESULT_ABORTED : CACHE_RESULT_REJECTED, &none, 0, t0);
        if (!gone && cache_server_warn_ok(s))
            log_warn(-rc, "request for '%s' rejected: cannot attach System V segment '%s'",
                     req->path, req->seg_name);
        goto out;
    }
    cache_server_serve_ring(s, slot, req, &seg, pidfd, IPC_BACKEND_SYSV, t0);
    sysv_seg_detach(&seg);
out:
    if (pidfd >= 0)
        close(pidfd);
    free(j);
}

static void *rx_main(void *arg)
{
    struct cache_backend *b = arg;
    unsigned char *buf = malloc(SYSV_MSG_MAX);

    if (buf == NULL) {
        log_err(ENOMEM, "sysv: no receive buffer");
        return NULL;
    }
    while (!b->stop) {
        struct sysv_job *j;
        ssize_t n = sysv_msgq_receive(&b->q, buf, SYSV_MSG_MAX, RX_SLICE_MS, &b->stop);
        int rc;

        if (n == -ETIMEDOUT || n == -ECANCELED)
            continue;
        if (n == -EIDRM || n == -EINVAL) {
            /* Removed by hand (ipcrm): make it again under the same key. */
            sysv_msgq_close(&b->q);
            rc = sysv_msgq_create(&b->q, getpid());
            log_warn(-rc, "sysv: the command queue was removed: %s",
                     rc == 0 ? "re-created" : "cannot re-create it");
            if (rc < 0)
                clock_sleep_ms(RX_SLICE_MS);
            continue;
        }
        if (n == -EBADMSG) {
            if (cache_server_warn_ok(b->s))
                log_warn(0, "sysv: rejected an oversized or foreign message");
            continue;
        }
        if (n < 0) {
            log_err((int)-n, "sysv: cannot receive from the command queue");
            clock_sleep_ms(RX_SLICE_MS); /* do not spin on a persistent error */
            continue;
        }
        j = calloc(1, sizeof *j);
        if (j == NULL)
            continue;
        rc = cmdq_request_decode(buf, (size_t)n, b->uid, &j->req);
        if (rc < 0) {
            if (cache_server_warn_ok(b->s))
                log_warn(0, "sysv: rejected a malformed request of %zd bytes", n);
            free(j);
            continue;
        }
        j->base.run = sysv_run;
        do
            rc = cache_server_submit(b->s, &j->base, SUBMIT_SLICE_MS);
        while (rc == -ETIMEDOUT && !b->stop);
        if (rc < 0)
            free(j); /* stopping: the proxy sees the cache die or stop */
    }
    free(buf);
    return NULL;
}

static int sysv_open(struct cache_server *s, struct cache_backend **out)
{
    struct sysv_sweep_stats st;
    struct cache_backend *b = calloc(1, sizeof *b);
    int rc;

    if (b == NULL)
        return -ENOMEM;
    b->s = s;
    b->uid = geteuid();
    /* System V objects outlive every process: dead caches' queues, and segments of proxies
     * that died between shmget and IPC_RMID. */
    rc = sysv_sweep_dead(b->uid, SYSV_SWEEP_CMD | SYSV_SWEEP_SEG, &st);
    if (rc > 0)
        log_info("sysv: removed %u queue(s) and %u segment(s) left by dead processes",
                 st.queues_removed, st.segs_removed);
    rc = sysv_msgq_create(&b->q, getpid());
    if (rc < 0) {
        log_err(-rc, "sysv: cannot create the command queue (key 0x%08x)", (unsigned)b->q.key);
        free(b);
        return rc;
    }
    rc = -pthread_create(&b->rx, NULL, rx_main, b);
    if (rc < 0) {
        sysv_msgq_close(&b->q);
        free(b);
        return rc;
    }
    b->rx_started = 1;
    log_info("sysv: command queue msqid %d (key 0x%08x)", b->q.id, (unsigned)b->q.key);
    *out = b;
    return 0;
}

static void sysv_retire(struct cache_backend *b)
{
    if (b == NULL)
        return;
    b->stop = 1;
    if (b->rx_started)
        pthread_join(b->rx, NULL);
    b->rx_started = 0;
    sysv_msgq_close(&b->q); /* IPC_RMID: a proxy's next send finds no queue */
}

static void sysv_close(struct cache_backend *b)
{
    sysv_retire(b);
    free(b);
}

const struct cache_backend_ops cache_backend_sysv = {"sysv", sysv_open, sysv_retire, sysv_close};
