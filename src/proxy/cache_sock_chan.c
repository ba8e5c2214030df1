/* cache_sock_chan.c - the proxy's socket backends (--ipc unix and fd): requests go on
 * long-lived connections to the cache's Unix socket, one request at a time on each; the body
 * comes on it (unix, and fills on fd) or as the file's read-only descriptor, sent to the client
 * with sendfile (fd). docs/ipc.md, "The socket backends". */
/* SPDX-License-Identifier: MIT */
#include "cache_chan.h"
#include "clock.h"
#include "fd_keep.h"
#include "ipc_rundir.h"
#include "log.h"
#include "sock_chan.h"
#include "sock_msg.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RX_CHUNK 65536 /* bytes of a streamed body read at once */
#define POOL_MAX 64    /* idle connections kept for the next requests */

/* A connection to the cache, between two requests. */
struct sock_conn {
    int fd;
    pid_t pid; /* the cache's, from SO_PEERCRED at connect */
};

struct sock_client {
    struct cache_client_options opt;
    unsigned kind; /* IPC_BACKEND_UNIX or _FD */
    uid_t uid;
    struct ipc_rundir rd;
    char name[SOCK_NAME_MAX];
    pthread_mutex_t lock;            /* guards the pool */
    struct sock_conn pool[POOL_MAX]; /* idle connections, the last one put back on top */
    unsigned npool;
    struct fd_keep *keep; /* fd: kept descriptors (fd_keep.h); NULL on unix */
};

static int sock_client_open(void **out, const struct cache_client_options *opt, unsigned kind)
{
    struct sock_client *c;
    int rc;

    if (opt->stall_ms < 0 || opt->send_timeout_ms < 0)
        return -EINVAL;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    c->opt = *opt;
    if (c->opt.stall_ms == 0)
        c->opt.stall_ms = 30000;
    if (c->opt.send_timeout_ms == 0)
        c->opt.send_timeout_ms = 2000;
    c->kind = kind;
    c->uid = geteuid();
    pthread_mutex_init(&c->lock, NULL);
    rc = sock_chan_name(c->name, c->uid, kind);
    if (rc == 0 && kind == IPC_BACKEND_FD)
        rc = fd_keep_new(&c->keep, fd_keep_limit());
    if (rc == 0)
        rc = ipc_rundir_open(&c->rd);
    if (rc < 0) {
        log_err(-rc,
                "cannot use the runtime directory '%s' (it must be a directory of uid %ld, not a "
                "symlink; another user may have created it first): set GETFILE_RUNTIME_DIR or "
                "XDG_RUNTIME_DIR to a private directory",
                c->rd.path, (long)c->uid);
        fd_keep_free(c->keep);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return rc;
    }
    log_info("looking for simplecached at '%s/%s' (--ipc %s)", c->rd.path, c->name,
             ipc_backend_name(kind));
    *out = c;
    return 0;
}

static int unix_open(void **out, const struct cache_client_options *opt)
{
    return sock_client_open(out, opt, IPC_BACKEND_UNIX);
}

static int fd_open(void **out, const struct cache_client_options *opt)
{
    return sock_client_open(out, opt, IPC_BACKEND_FD);
}

static void sock_client_close(void *impl)
{
    struct sock_client *c = impl;

    if (c == NULL)
        return;
    if (c->keep != NULL) {
        struct fd_keep_stats ks;
        fd_keep_stats(c->keep, &ks);
        log_info("kept descriptors: %llu hits without a round trip, %llu kept, %llu dropped",
                 (unsigned long long)ks.hits, (unsigned long long)ks.kept,
                 (unsigned long long)ks.dropped);
        fd_keep_free(c->keep);
    }
    for (unsigned i = 0; i < c->npool; i++)
        close(c->pool[i].fd);
    pthread_mutex_destroy(&c->lock);
    ipc_rundir_close(&c->rd);
    free(c);
}

/* A connection for one request: the idle one put back last, or (fresh, or none idle) a new
 * one, whose listener must run as our uid. *reused tells which. Returns 0 or -errno
 * (-ENOTCONN: no cache of ours there). */
static int conn_get(struct sock_client *c, int fresh, struct sock_conn *out, int *reused)
{
    int rc;

    *reused = 0;
    if (!fresh) {
        pthread_mutex_lock(&c->lock);
        if (c->npool > 0) {
            *out = c->pool[--c->npool];
            *reused = 1;
        }
        pthread_mutex_unlock(&c->lock);
        if (*reused)
            return 0;
    }
    rc = sock_connect(c->rd.path, c->rd.fd, c->name, c->opt.send_timeout_ms, c->uid, &out->fd,
                      &out->pid);
    if (rc == -EPERM) {
        log_warn(0, "'%s/%s' is not served by uid %ld: not our cache", c->rd.path, c->name,
                 (long)c->uid);
        rc = -ENOTCONN;
    }
    return rc;
}

/* Keeps a connection whose last exchange ended cleanly for the next request. */
static void conn_put(struct sock_client *c, struct sock_conn *cn)
{
    pthread_mutex_lock(&c->lock);
    if (c->npool < POOL_MAX) {
        c->pool[c->npool++] = *cn;
        cn->fd = -1;
    }
    pthread_mutex_unlock(&c->lock);
    if (cn->fd >= 0)
        close(cn->fd);
    cn->fd = -1;
}

static int ctx_stop(void *arg)
{
    return gfs_ctx_cancelled(arg) ? -ECANCELED : 0;
}

/* The cache ended the connection before its answer was complete: it died or was cut. */
static int peer_error(int rc)
{
    return rc == -ECONNRESET || rc == -EPIPE ? -ESRCH : rc;
}

/* The body on the connection: len bytes, each chunk to the client as it comes. */
static int stream_body(struct sock_client *c, struct gfs_ctx *ctx, int fd, uint64_t len)
{
    char *buf = malloc(len < RX_CHUNK ? (size_t)len + 1 : RX_CHUNK);
    uint64_t left = len;
    int rc = 0;

    if (buf == NULL)
        return -ENOMEM;
    while (left > 0) {
        size_t want = left < RX_CHUNK ? (size_t)left : RX_CHUNK;
        ssize_t n = sock_recv_some(fd, buf, want, clock_mono_ms() + c->opt.stall_ms, ctx_stop, ctx);
        if (n < 0) {
            rc = (int)n == -ECONNRESET ? -EIO : (int)n; /* a short body: the cache gave up */
            break;
        }
        rc = gfs_send(ctx, buf, (size_t)n);
        if (rc < 0)
            break;
        left -= (uint64_t)n;
    }
    free(buf);
    return rc;
}

/* 0 when the file behind fd still has the size and times the cache saw; -ESTALE when not. */
static int same_file(int fd, const struct sock_resp *r)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return -errno;
    if ((uint64_t)st.st_size != r->file_size ||
        (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != r->mtime_ns ||
        (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec != r->ctime_ns)
        return -ESTALE;
    return 0;
}

/* Checks the passed descriptor before anything is promised: a regular file, read-only, and
 * unchanged since the cache looked. Returns 0, -EBADMSG (not what the protocol allows) or
 * -ESTALE (it changed). */
static int check_descriptor(int fd, const struct sock_resp *r)
{
    struct stat st;
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || (fl & O_ACCMODE) != O_RDONLY || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return -EBADMSG;
    return same_file(fd, r);
}

/* The body from the passed file, with sendfile. The last byte is held back until the file is
 * seen unchanged (size, mtime, ctime) after the others went: a file changed while it was sent
 * is a short transfer, never a success. */
static int send_descriptor(struct gfs_ctx *ctx, int fd, const struct sock_resp *r)
{
    int rc;

    if (r->length > 1) {
        rc = gfs_send_file(ctx, fd, r->offset, r->length - 1);
        if (rc < 0)
            return rc;
    }
    rc = same_file(fd, r);
    if (rc < 0) {
        log_warn(0, "a cached file changed while it was sent: transfer cut");
        return rc;
    }
    return gfs_send_file(ctx, fd, r->offset + r->length - 1, 1);
}

/* A small body (at most GFS_SMALL_MAX) is read, the file seen unchanged, and the header and
 * the bytes go out in one write: what is sent was read before the check, and a change is
 * found before anything is promised. Returns as send_descriptor; -ESTALE with nothing sent. */
static int send_small(struct gfs_ctx *ctx, int fd, const struct sock_resp *r)
{
    char buf[GFS_SMALL_MAX];
    size_t len = (size_t)r->length, got = 0;

    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)(r->offset + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -ESTALE; /* it shrank */
        got += (size_t)n;
    }
    int rc = same_file(fd, r);
    return rc < 0 ? rc : gfs_send_ok(ctx, buf, len);
}

/* The whole answer from the passed file: header, then body. */
static int send_answer(struct gfs_ctx *ctx, int fd, const struct sock_resp *r)
{
    if (r->length > 0 && r->length <= GFS_SMALL_MAX)
        return send_small(ctx, fd, r);
    int rc = gfs_send_header(ctx, GF_OK, r->length);
    return rc == 0 && r->length > 0 ? send_descriptor(ctx, fd, r) : rc;
}

/* A kept connection that failed before any answer: the cache closed it while it was idle
 * (idle timeout, a stop) or died since; or it held stray bytes, the rest of an earlier answer
 * whose length a peer of our uid understated, read as a malformed header. The request is asked
 * again on a new connection. */
static int stale_conn(int rc)
{
    return rc == -ECONNRESET || rc == -EPIPE || rc == -EBADMSG || rc == -EPROTO;
}

/* Sends the request on a connection, reads the answer's header (and descriptor) and decodes it
 * into *r. A kept connection found closed or out of step is replaced by a new one, once.
 * Returns 0 with *cn open, or -errno with *cn closed (-EBADMSG, -EPROTO: malformed answer). */
static int exchange(struct sock_client *c, struct gfs_ctx *ctx, const void *req, size_t reqlen,
                    struct sock_conn *cn, struct sock_resp *r, int *passed)
{
    unsigned char rbuf[SOCK_RESP_SIZE];
    int rc, reused;

    for (int fresh = 0;; fresh = 1) {
        rc = conn_get(c, fresh, cn, &reused);
        if (rc < 0) {
            cn->fd = -1;
            return rc;
        }
        stats_add(c->opt.stats, STATS_C_MESSAGES, 1);
        rc = sock_send_full(cn->fd, req, reqlen, -1, c->opt.send_timeout_ms, ctx_stop, ctx);
        if (rc == 0)
            rc = sock_recv_full(cn->fd, rbuf, SOCK_RESP_SIZE,
                                c->kind == IPC_BACKEND_FD ? passed : NULL,
                                clock_mono_ms() + c->opt.stall_ms, ctx_stop, ctx);
        if (rc == 0)
            rc = sock_resp_decode(rbuf, sizeof rbuf, r);
        if (rc == 0 && (r->kind == SOCK_RESP_FD) != (*passed >= 0))
            rc = -EBADMSG; /* a descriptor without FD, or FD without one */
        if (rc == 0)
            return 0;
        if (*passed >= 0) {
            close(*passed);
            *passed = -1;
        }
        close(cn->fd);
        cn->fd = -1;
        if (!reused || !stale_conn(rc))
            return peer_error(rc);
    }
}

/* Asks the cache on cn (clean, between requests) for its generation object and maps it.
 * Returns 0, or -errno with cn closed (the request itself is not affected). */
static int fetch_gen(struct sock_client *c, struct gfs_ctx *ctx, struct sock_conn *cn)
{
    unsigned char req[SOCK_REQ_HDR_SIZE + 1], rbuf[SOCK_RESP_SIZE];
    struct sock_resp r;
    int memfd = -1;
    int rc = sock_req_encode_flags(req, sizeof req, c->kind, SOCK_REQ_GEN, "/", 1);

    if (rc > 0)
        rc = sock_send_full(cn->fd, req, (size_t)rc, -1, c->opt.send_timeout_ms, ctx_stop, ctx);
    if (rc == 0)
        rc = sock_recv_full(cn->fd, rbuf, sizeof rbuf, &memfd, clock_mono_ms() + c->opt.stall_ms,
                            ctx_stop, ctx);
    if (rc == 0)
        rc = sock_resp_decode(rbuf, sizeof rbuf, &r);
    if (rc == 0 && (r.kind != SOCK_RESP_GEN || memfd < 0))
        rc = -EBADMSG;
    if (rc == 0) {
        rc = fd_keep_set_gen(c->keep, cn->pid, memfd);
        memfd = -1;
    }
    if (memfd >= 0)
        close(memfd);
    if (rc < 0) {
        log_msg(LOGL_DEBUG, -rc, "no generation object from the cache (pid %ld)", (long)cn->pid);
        close(cn->fd);
        cn->fd = -1;
    }
    return rc;
}

/* A hit from a kept descriptor: no round trip. Returns 1 with *rc when it served (or tried to:
 * the header went out), 0 when nothing valid is kept for path. */
static int kept_hit(struct sock_client *c, struct gfs_ctx *ctx, const char *path, size_t path_len,
                    int *rc)
{
    struct fd_kept *e = fd_keep_get(c->keep, path, path_len);

    if (e == NULL)
        return 0;
    *rc = send_answer(ctx, e->fd, &e->r);
    fd_keep_release(c->keep, e, *rc == -ESTALE);
    /* Changed before anything went: ask the cache as if nothing were kept. */
    return *rc != -ESTALE || gfs_ctx_header_sent(ctx);
}

static int sock_handle(void *impl, struct gfs_ctx *ctx, const char *path, size_t path_len,
                       int answer_miss)
{
    struct sock_client *c = impl;
    unsigned char *req = malloc(SOCK_REQ_MAX);
    struct sock_resp r;
    struct sock_conn cn = {.fd = -1};
    int passed = -1, header_sent = 0, rc;

    if (req == NULL)
        return -ENOMEM;
    if (c->keep != NULL && kept_hit(c, ctx, path, path_len, &rc)) {
        free(req);
        return rc;
    }
    rc = sock_req_encode(req, SOCK_REQ_MAX, c->kind, path, path_len);
    if (rc < 0)
        goto out;
    rc = exchange(c, ctx, req, (size_t)rc, &cn, &r, &passed);
    if (rc == -EBADMSG || rc == -EPROTO)
        log_warn(-rc, "'%s': malformed answer from the cache", path);
    if (rc < 0)
        goto out;
    /* A descriptor the proxy may keep needs the generation object of its cache. */
    if (r.kind == SOCK_RESP_FD && r.keep_ms > 0 && c->keep != NULL &&
        !fd_keep_has_gen(c->keep, cn.pid))
        (void)fetch_gen(c, ctx, &cn);
    /* Nothing more of this answer on the connection: it serves the next request. */
    if (cn.fd >= 0 && (r.kind == SOCK_RESP_FD || r.length == 0))
        conn_put(c, &cn);
    if (r.status == SOCK_STATUS_NOT_FOUND) {
        rc = answer_miss ? gfs_send_header(ctx, GF_FILE_NOT_FOUND, 0) : -ENOENT;
        goto out;
    }
    if (r.status == SOCK_STATUS_ORIGIN_NOT_FOUND) {
        /* The cache asked its origin: the proxy's own origin is not asked again. */
        rc = answer_miss ? gfs_send_header(ctx, GF_FILE_NOT_FOUND, 0) : -ENODATA;
        goto out;
    }
    if (r.status != SOCK_STATUS_OK) {
        rc = -EIO;
        goto out;
    }
    if (r.kind == SOCK_RESP_FD) {
        rc = check_descriptor(passed, &r);
        if (rc < 0) {
            log_warn(-rc, "'%s': the cache's descriptor was refused", path);
            goto out;
        }
        rc = send_answer(ctx, passed, &r);
        header_sent = gfs_ctx_header_sent(ctx);
        if (rc == 0 && r.keep_ms > 0 && c->keep != NULL) {
            fd_keep_put(c->keep, path, path_len, passed, &r, cn.pid);
            passed = -1; /* the table's now */
        }
        goto out;
    }
    rc = gfs_send_header(ctx, GF_OK, r.length);
    header_sent = 1;
    if (rc == 0 && r.length > 0) {
        rc = stream_body(c, ctx, cn.fd, r.length);
        if (rc == 0)
            conn_put(c, &cn); /* the whole body was read */
    }
out:
    if (rc < 0 && rc != -ENOENT && rc != -ENODATA && rc != -ENOTCONN)
        log_msg(LOGL_DEBUG, -rc, "cache transfer of '%s' failed%s", path,
                header_sent ? " after the header" : "");
    if (passed >= 0)
        close(passed);
    if (cn.fd >= 0)
        close(cn.fd); /* the exchange did not end cleanly: never reused */
    free(req);
    return rc;
}

/* try_kept of fd: a kept descriptor, checked as for handle (kept_hit). */
static int sock_try_kept(void *impl, struct gfs_ctx *ctx, const char *path, size_t path_len,
                         int *rc)
{
    struct sock_client *c = impl;

    return c->keep != NULL && kept_hit(c, ctx, path, path_len, rc);
}

const struct cache_chan_ops cache_chan_unix_ops = {"unix", unix_open, sock_client_close,
                                                   sock_handle, NULL};
const struct cache_chan_ops cache_chan_fd_ops = {"fd", fd_open, sock_client_close, sock_handle,
                                                 sock_try_kept};
