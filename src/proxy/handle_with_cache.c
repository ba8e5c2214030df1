/* handle_with_cache.c - streams a file from simplecached to a GETFILE client through a segment. */
/* SPDX-License-Identifier: MIT */
#include "handle_with_cache.h"
#include "clock.h"
#include "cmdq.h"
#include "log.h"
#include "seg_pool.h"
#include "shm_chan.h"
#include "sysv_keys.h"
#include "sysv_msgq.h"
#include "sysv_pub.h"
#include "sysv_seg.h"
#include "size_hints.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NEXT_SLICE_MS 100 /* how often a wait for the cache checks for shutdown */

struct cache_client {
    struct seg_pool *pool;    /* thread-safe */
    struct size_hints *hints; /* thread-safe */
    struct cmdq_client *cmdq; /* thread-safe */
    struct cache_client_options opt;
    pid_t pid;
    int sysv;                 /* the sysv backend: System V segments and queue */
    pthread_mutex_t key_lock; /* guards key_pid, key */
    pid_t key_pid;            /* the cache whose published queue key is key; 0: none read */
    key_t key;
};

static int sysv_pool_create(struct shm_seg *seg, uint32_t serial, uint64_t size)
{
    int shmid;

    (void)serial; /* the shmid names a System V segment */
    return sysv_seg_create(seg, &shmid, size);
}

static int client_new(struct cache_client **out, const struct cache_client_options *opt, int sysv)
{
    struct cache_client *cc;
    char rundir[PATH_MAX];
    int rc;

    if (opt->segment_wait_ms < 0 || opt->stall_ms < 0 || opt->send_timeout_ms < 0)
        return -EINVAL; /* the classes are checked by seg_pool_new_classes */
    cc = calloc(1, sizeof *cc);
    if (cc == NULL)
        return -ENOMEM;
    cc->opt = *opt;
    if (cc->opt.segment_wait_ms == 0)
        cc->opt.segment_wait_ms = 10000;
    if (cc->opt.stall_ms == 0)
        cc->opt.stall_ms = 30000;
    if (cc->opt.send_timeout_ms == 0)
        cc->opt.send_timeout_ms = 2000;
    cc->pid = getpid();
    cc->sysv = sysv;
    pthread_mutex_init(&cc->key_lock, NULL);
    rc = cmdq_client_new(&cc->cmdq, rundir, sizeof rundir);
    if (rc < 0) {
        if (rc != -ENOMEM)
            log_err(-rc,
                    "cannot use the runtime directory '%s' (it must be a directory of uid %ld, "
                    "not a symlink; another user may have created it first): set "
                    "GETFILE_RUNTIME_DIR or XDG_RUNTIME_DIR to a private directory",
                    rundir, (long)geteuid());
        goto err_free;
    }
    log_info("looking for simplecached in the runtime directory '%s'", rundir);
    /* Segments of proxies that died without cleaning up. */
    rc = sysv ? sysv_sweep_dead(geteuid(), SYSV_SWEEP_SEG, NULL)
              : ipc_sweep_dead(geteuid(), 1u << IPC_KIND_SEGMENT);
    if (rc > 0)
        log_info("removed %d segment(s) left by dead proxies", rc);
    rc = size_hints_new(&cc->hints, SIZE_HINTS_DEFAULT);
    if (rc < 0)
        goto err_cmdq;
    rc = sysv ? seg_pool_new_classes_ops(&cc->pool, &opt->classes, sysv_pool_create,
                                         sysv_seg_destroy)
              : seg_pool_new_classes(&cc->pool, &opt->classes);
    if (rc < 0) {
        char desc[128];
        seg_classes_format(&opt->classes, desc, sizeof desc);
        log_err(-rc, "cannot create the segments (SIZE:COUNT %s, %llu bytes in all)", desc,
                (unsigned long long)seg_classes_bytes(&opt->classes));
        goto err_hints;
    }
    seg_pool_set_stats(cc->pool, opt->stats);
    if (opt->classes.n > 1) {
        char desc[128];
        seg_classes_format(&opt->classes, desc, sizeof desc);
        log_info("segments in size classes %s (SIZE:COUNT), %llu bytes in all", desc,
                 (unsigned long long)seg_classes_bytes(&opt->classes));
    }
    *out = cc;
    return 0;

err_hints:
    size_hints_free(cc->hints);
err_cmdq:
    cmdq_client_free(cc->cmdq);
err_free:
    free(cc);
    return rc;
}

int cache_client_new(struct cache_client **out, const struct cache_client_options *opt)
{
    return client_new(out, opt, 0);
}

int cache_client_new_sysv(struct cache_client **out, const struct cache_client_options *opt)
{
    return client_new(out, opt, 1);
}

void cache_client_free(struct cache_client *cc)
{
    if (cc == NULL)
        return;
    cmdq_client_free(cc->cmdq);
    seg_pool_free(cc->pool);
    size_hints_free(cc->hints);
    pthread_mutex_destroy(&cc->key_lock);
    free(cc);
}

/* Opens the System V queue of cache: under the key it published (sysv_pub.h; read again when
 * the cache changed or the queue under the remembered key is not its own any more), checked as
 * ours (sysv_msgq_open_key). Returns 0 or -errno (-ENOTCONN: no queue published by cache). */
static int sysv_queue_of(struct cache_client *cc, pid_t cache, struct sysv_msgq *q)
{
    pid_t pub_pid;
    key_t key = -1;
    int rc = -ENOENT;

    pthread_mutex_lock(&cc->key_lock);
    if (cc->key_pid == cache)
        key = cc->key;
    pthread_mutex_unlock(&cc->key_lock);
    if (key != (key_t)-1)
        rc = sysv_msgq_open_key(q, key);
    if (rc == 0)
        return 0;
    rc = sysv_pub_read(cmdq_client_dir(cc->cmdq), &pub_pid, &key);
    if (rc == 0 && pub_pid != cache)
        rc = -ENOENT; /* a dead cache's record, or the new cache has not published yet */
    if (rc == 0)
        rc = sysv_msgq_open_key(q, key);
    pthread_mutex_lock(&cc->key_lock);
    cc->key_pid = rc == 0 ? cache : 0;
    cc->key = key;
    pthread_mutex_unlock(&cc->key_lock);
    return rc == -ENOENT ? -ENOTCONN : rc;
}

/* The sysv backend's send: the cache the registry names, its System V queue (the key it
 * published), a bounded send. A cache without one (another backend) is -ENOTCONN at once. */
static int sysv_send(struct cache_client *cc, const struct cmdq_request *req, int *pidfd)
{
    struct sysv_msgq q;
    pid_t cache = 0;
    int rc = cmdq_client_locate(cc->cmdq, &cache, pidfd);

    if (rc < 0)
        return rc;
    rc = sysv_queue_of(cc, cache, &q);
    if (rc == 0)
        rc = sysv_msgq_send(&q, req, sizeof *req, *pidfd, cc->opt.send_timeout_ms);
    else if (rc == -ENOENT)
        rc = -ENOTCONN;
    sysv_msgq_close(&q);
    if (rc < 0) {
        close(*pidfd);
        *pidfd = -1;
    }
    return rc;
}

static int ctx_cancelled(void *arg)
{
    return gfs_ctx_cancelled(arg);
}

/* Waits for the next chunk, in slices so that a server shutdown is noticed; stall_ms bounds the
 * whole wait. Returns shm_seg_next's codes, or -ECANCELED. */
static int next_chunk(struct cache_client *cc, struct gfs_ctx *ctx, struct shm_seg *seg,
                      uint64_t gen, uint64_t left, int pidfd, struct shm_chunk *ch)
{
    int64_t deadline = clock_mono_ms() + cc->opt.stall_ms;

    for (;;) {
        int ms = clock_ms_left(deadline);
        int rc =
            shm_seg_next(seg, gen, left, pidfd, ms < NEXT_SLICE_MS ? ms : NEXT_SLICE_MS, NULL, ch);
        if (rc != -ETIMEDOUT)
            return rc;
        if (gfs_ctx_cancelled(ctx))
            return -ECANCELED;
        if (clock_ms_left(deadline) == 0)
            return -ETIMEDOUT;
    }
}

/* Sends the file whose RESPONSE (OK) is in *ch: the header, then every byte straight from the
 * segment. Returns 0 when complete or -errno (after the header: the caller closes early). */
static int stream_ok(struct cache_client *cc, struct gfs_ctx *ctx, struct shm_seg *seg,
                     unsigned slot, uint64_t gen, int pidfd, struct shm_chunk *ch, int *header_sent)
{
    uint64_t total = ch->file_len, left = ch->file_len;
    int rc;

    if (ch->len > left) /* shm_seg_next checks it too; this keeps the arithmetic below safe */
        return -EBADMSG;
    rc = gfs_send_header(ctx, GF_OK, left);
    if (rc < 0)
        return rc;
    *header_sent = 1;
    for (;;) {
        if (ch->len > 0) {
            rc = gfs_send(ctx, ch->data, ch->len);
            if (rc < 0)
                return rc;
        } else if (ch->kind == SHM_SLOT_DATA) {
            /* An empty DATA chunk while bytes are owed: the cache could not read the file.
             * (shm_seg_next already refuses it as -EBADMSG; this keeps the meaning explicit.) */
            return -EIO;
        }
        left -= ch->len;
        stats_slot_progress(cc->opt.stats, slot, total - left, total);
        rc = shm_seg_release(seg);
        if (rc < 0)
            return rc;
        if (left == 0)
            return 0;
        rc = next_chunk(cc, ctx, seg, gen, left, pidfd, ch);
        if (rc < 0)
            return rc;
        if (ch->kind != SHM_SLOT_DATA || ch->len > left)
            return -EBADMSG;
    }
}

int handle_with_cache(struct gfs_ctx *ctx, const char *path, size_t path_len,
                      struct cache_client *cc, int answer_miss)
{
    struct seg_pool_item *it;
    struct cmdq_request *req;
    struct shm_chunk ch;
    int pidfd = -1, header_sent = 0, replace = 1, rc;
    uint32_t serial = 0;
    uint64_t gen, hint = 0;
    unsigned cls;
    int known;

    req = malloc(sizeof *req); /* 4 KiB+: kept off the worker's stack */
    if (req == NULL)
        return -ENOMEM;
    /* The smallest class that holds the file when its size is known, else the largest. */
    known = size_hints_get(cc->hints, path, path_len, &hint);
    cls = seg_classes_pick(seg_pool_classes(cc->pool), known, hint);
    rc = seg_pool_take_class(cc->pool, cls, cc->opt.segment_wait_ms, ctx_cancelled, ctx, &it);
    if (rc < 0)
        goto out_free;
    if (!shm_seg_is_idle(&it->seg)) {
        /* Written over while idle (a confused process of our uid): the cache would refuse it. */
        log_warn(0, "segment '%s' was damaged while idle: replaced", it->seg.name);
        seg_pool_give(cc->pool, it, 1);
        rc = seg_pool_take_class(cc->pool, cls, cc->opt.segment_wait_ms, ctx_cancelled, ctx, &it);
        if (rc < 0)
            goto out_free;
    }
    gen = ++it->generation;
    (void)ipc_name_parse(it->seg.name, IPC_KIND_SEGMENT, geteuid(), NULL, &serial);
    stats_slot_begin(cc->opt.stats, seg_pool_index(it), 0, serial, path, path_len);
    shm_seg_begin(&it->seg, gen);
    rc = cmdq_request_init(req, cc->pid, it->seg.name, it->seg.size, gen, path, path_len);
    if (rc < 0) {
        replace = 0;
        goto out_give;
    }
    rc = cc->sysv ? sysv_send(cc, req, &pidfd)
                  : cmdq_client_send(cc->cmdq, req, cc->opt.send_timeout_ms, &pidfd);
    if (rc < 0) {
        replace = 0; /* not sent: nobody will write into the segment */
        goto out_give;
    }
    stats_add(cc->opt.stats, STATS_C_MESSAGES, 1);
    rc = next_chunk(cc, ctx, &it->seg, gen, UINT64_MAX, pidfd, &ch);
    if (rc < 0)
        goto out_give;
    if (ch.kind != SHM_SLOT_RESPONSE) {
        rc = -EBADMSG;
        goto out_give;
    }
    switch (ch.status) {
    case SHM_STATUS_OK:
        size_hints_put(cc->hints, path, path_len, ch.file_len); /* for the next transfer */
        rc = stream_ok(cc, ctx, &it->seg, seg_pool_index(it), gen, pidfd, &ch, &header_sent);
        if (rc == 0)
            replace = 0;
        break;
    case SHM_STATUS_NOT_FOUND:
        rc = shm_seg_release(&it->seg);
        if (rc < 0)
            break;
        replace = 0;
        size_hints_forget(cc->hints, path, path_len);
        rc = answer_miss ? gfs_send_header(ctx, GF_FILE_NOT_FOUND, 0) : -ENOENT;
        break;
    case SHM_STATUS_ORIGIN_NOT_FOUND:
        rc = shm_seg_release(&it->seg);
        if (rc < 0)
            break;
        replace = 0;
        size_hints_forget(cc->hints, path, path_len);
        rc = answer_miss ? gfs_send_header(ctx, GF_FILE_NOT_FOUND, 0) : -ENODATA;
        break;
    case SHM_STATUS_OTHER_BACKEND:
        /* The cache serves another --ipc: as if there were none (the origin may answer). */
        rc = shm_seg_release(&it->seg);
        if (rc < 0)
            break;
        replace = 0;
        rc = -ENOTCONN;
        break;
    default:
        replace = shm_seg_release(&it->seg) < 0;
        rc = -EIO;
        break;
    }

out_give:
    if (!replace && !shm_seg_is_idle(&it->seg))
        replace = 1; /* a peer that wrote more than it should have: never reuse */
    if (replace)
        shm_seg_cancel(&it->seg);
    stats_slot_end(cc->opt.stats, seg_pool_index(it),
                   replace ? STATS_SLOT_ABANDONED : STATS_SLOT_FREE);
    seg_pool_give(cc->pool, it, replace);
    if (rc < 0 && rc != -ENOENT && rc != -ENODATA)
        log_msg(LOGL_DEBUG, -rc, "cache transfer of '%s' failed%s", path,
                header_sent ? " after the header" : "");
out_free:
    if (pidfd >= 0)
        close(pidfd);
    free(req);
    return rc;
}
