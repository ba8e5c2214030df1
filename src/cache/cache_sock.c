/* cache_sock.c - the cache's socket backends (--ipc unix and fd): an acceptor thread takes
 * connections on the Unix socket, checks the peer's uid, and hands each to the workers; a
 * worker reads the one request, looks it up (cache_server_lookup) and answers: the bytes on the
 * connection (unix; and fd while an entry is being filled), or the file's read-only descriptor
 * (fd). docs/ipc.md, "The socket backends". */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "cache_backend.h"
#include "clock.h"
#include "gf_proto.h"
#include "log.h"
#include "sock_chan.h"
#include "sock_msg.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ACCEPT_SLICE_MS 100   /* how often the acceptor looks at its stop flag */
#define REQ_READ_MS     2000  /* longest wait for a connection's request */
#define BACKLOG         128   /* connections waiting for the acceptor */
#define FILL_CHUNK      65536 /* bytes of a fill sent per write */
#define NAME_CHECK_MS   1000  /* how often the acceptor checks that its socket's name is there */

struct cache_backend {
    struct cache_server *s;
    unsigned kind; /* IPC_BACKEND_UNIX or _FD */
    uid_t uid;
    struct sock_listener l; /* the acceptor's alone while it runs */
    const char *dir_path;   /* the runtime directory's path, for a new bind */
    pthread_t acceptor;
    int started;
    atomic_int stop;
};

/* One accepted connection, served by a worker. */
struct sock_job {
    struct cache_job base;
    struct cache_backend *b;
    int fd;
    pid_t pid; /* the peer's, from SO_PEERCRED */
};

/* The requester is still there while it has neither closed nor sent anything more. */
static int conn_wanted(void *arg)
{
    return sock_peer_gone(*(const int *)arg) ? -ESRCH : 0;
}

struct conn_stop {
    struct cache_server *s;
    int fd;
};

/* sock_chan's stop function for a worker's writes: the grace period over, or the peer gone. */
static int conn_stop(void *arg)
{
    struct conn_stop *c = arg;

    return cache_server_still_wanted(c->s, conn_wanted, &c->fd);
}

static int send_resp(struct cache_server *s, int fd, const struct sock_resp *r, int pass_fd)
{
    unsigned char buf[SOCK_RESP_SIZE];
    struct conn_stop cs = {s, fd};
    int n = sock_resp_encode(buf, sizeof buf, r);

    if (n < 0)
        return n;
    return sock_send_full(fd, buf, SOCK_RESP_SIZE, pass_fd, cache_server_stall_ms(s), conn_stop,
                          &cs);
}

static int send_status(struct cache_server *s, int fd, int status)
{
    struct sock_resp r = {.kind = SOCK_RESP_STREAM, .status = (uint32_t)status};

    return send_resp(s, fd, &r, -1);
}

/* The fd backend's answer for an open file: its descriptor with where the body is and what the
 * file looked like, so the proxy can tell a change. ERROR when the file is not what we expect. */
static int send_descriptor(struct cache_server *s, int fd, const struct cache_answer *a,
                           int *status)
{
    struct sock_resp r = {.kind = SOCK_RESP_FD, .status = SOCK_STATUS_OK};
    struct stat st;
    int fl = fcntl(a->fd, F_GETFL);

    /* The proxy must never hold a writable descriptor: only O_RDONLY ones are passed. */
    if (fstat(a->fd, &st) < 0 || !S_ISREG(st.st_mode) || fl < 0 || (fl & O_ACCMODE) != O_RDONLY ||
        a->base > (uint64_t)st.st_size || a->len > (uint64_t)st.st_size - a->base) {
        *status = CACHE_STATUS_ERROR;
        return send_status(s, fd, SOCK_STATUS_ERROR);
    }
    r.length = a->len;
    r.offset = a->base;
    r.file_size = (uint64_t)st.st_size;
    r.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    r.ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
    return send_resp(s, fd, &r, a->fd);
}

/* The unix backend's answer for an open file: the header, then the body with sendfile. A file
 * that shrank ends the connection early: the proxy sees a short transfer, never wrong bytes. */
static int send_stream(struct cache_server *s, int fd, const struct cache_answer *a)
{
    struct sock_resp r = {.kind = SOCK_RESP_STREAM, .status = SOCK_STATUS_OK, .length = a->len};
    struct conn_stop cs = {s, fd};
    int rc = send_resp(s, fd, &r, -1);

    if (rc < 0)
        return rc;
    return sock_sendfile_full(fd, a->fd, a->base, a->len, cache_server_stall_ms(s), conn_stop, &cs);
}

/* A fill read as it grows: the header once the origin answered and the first bytes are in (or
 * the fetch ended), then each chunk as it arrives. A fetch that fails after the header ends the
 * connection early (a short transfer). *status and *len get what was announced. */
static int send_fill(struct cache_server *s, unsigned slot, int fd, struct fill *f, int *status,
                     uint64_t *len)
{
    struct conn_stop cs = {s, fd};
    struct sock_resp r = {.kind = SOCK_RESP_STREAM};
    struct fill_state fs;
    unsigned char *buf;
    uint64_t off = 0;
    int rc;

    rc = cache_server_wait_fill(s, f, conn_wanted, &fd, 0, 0, &fs);
    if (rc == 0 && fs.header && fs.status == GF_OK && fs.length > 0)
        rc = cache_server_wait_fill(s, f, conn_wanted, &fd, 1, 0, &fs);
    if (rc == -ESRCH || rc == -ECANCELED)
        return rc;
    if (rc == -ETIMEDOUT)
        log_warn(0, "'%s': no answer from the origin within %d ms", fill_path(f),
                 cache_server_stall_ms(s));
    *status = rc < 0 || (fs.failed && fs.written < fs.length) ? CACHE_STATUS_ERROR
                                                              : cache_status_of_gf(fs.status);
    *len = *status == CACHE_STATUS_OK ? fs.length : 0;
    r.status = (uint32_t)*status;
    r.length = *len;
    rc = send_resp(s, fd, &r, -1);
    if (rc < 0 || *status != CACHE_STATUS_OK || *len == 0)
        return rc;
    buf = malloc(FILL_CHUNK);
    if (buf == NULL)
        return -ENOMEM;
    while (off < *len) {
        if (fs.written <= off)
            rc = cache_server_wait_fill(s, f, conn_wanted, &fd, 1, off, &fs);
        if (rc == 0 && fs.written <= off)
            rc = -EIO; /* the fetch failed after the header */
        if (rc < 0)
            break;
        uint64_t avail = fs.written - off;
        size_t n = avail < FILL_CHUNK ? (size_t)avail : FILL_CHUNK;
        if (fill_read(f, buf, n, off) < 0) {
            rc = -EIO;
            break;
        }
        rc = sock_send_full(fd, buf, n, -1, cache_server_stall_ms(s), conn_stop, &cs);
        if (rc < 0)
            break;
        off += n;
        stats_slot_progress(cache_server_stats_region(s), slot, off, *len);
    }
    free(buf);
    return rc;
}

/* Reads and decodes the connection's request. Returns 0 or -errno (logged, rate limited). */
static int read_request(struct cache_backend *b, int fd, pid_t pid, struct sock_req *req)
{
    unsigned char *msg = malloc(SOCK_REQ_MAX);
    int64_t deadline = clock_mono_ms() + REQ_READ_MS;
    struct sock_req_hdr h;
    int rc;

    if (msg == NULL)
        return -ENOMEM;
    rc = sock_recv_full(fd, msg, SOCK_REQ_HDR_SIZE, NULL, deadline, NULL, NULL);
    if (rc == 0)
        rc = sock_req_decode_hdr(msg, SOCK_REQ_HDR_SIZE, &h);
    if (rc == 0)
        rc = sock_recv_full(fd, msg + SOCK_REQ_HDR_SIZE, h.path_len, NULL, deadline, NULL, NULL);
    if (rc == 0)
        rc = sock_req_decode(msg, SOCK_REQ_HDR_SIZE + h.path_len, req);
    free(msg);
    if (rc < 0 && cache_server_warn_ok(b->s))
        log_warn(-rc, "rejected the request of pid %ld on the %s socket%s", (long)pid,
                 ipc_backend_name(b->kind),
                 rc == -EBADMSG  ? ": malformed"
                 : rc == -EPROTO ? ": unknown protocol version"
                                 : "");
    return rc;
}

static void sock_run(struct cache_server *s, unsigned slot, struct cache_job *job)
{
    struct sock_job *j = (struct sock_job *)job;
    struct cache_backend *b = j->b;
    struct stats_region *stats = cache_server_stats_region(s);
    struct cache_answer a = {.fd = -1};
    enum cache_result result = CACHE_RESULT_ABORTED;
    int64_t t0 = clock_mono_ns();
    struct sock_req *req = malloc(sizeof *req);
    int status, rc;

    if (req == NULL || read_request(b, j->fd, j->pid, req) < 0) {
        stats_add(stats, STATS_C_REJECTED, 1);
        cache_server_done(s, CACHE_RESULT_REJECTED, &a, 0, t0);
        goto out;
    }
    stats_add(stats, STATS_C_MESSAGES, 1);
    stats_slot_begin(stats, slot, j->pid, 0, req->path, req->path_len);
    if (req->backend != b->kind) {
        /* Cannot happen through the socket's name, but answer quickly if it does. */
        status = CACHE_STATUS_ERROR;
    } else {
        status = cache_server_lookup(s, req->path, req->path_len, conn_wanted, &j->fd, &a);
        /* The ring checks an unchecked store entry as it copies it; a socket sends the file
         * itself, so it is checked whole first. */
        if (status == CACHE_STATUS_OK &&
            cache_server_check_entry(s, req->path, req->path_len, &a) < 0)
            status = CACHE_STATUS_ERROR;
    }
    if (status < 0)
        goto out_done; /* the proxy went away: nobody to answer */
    if (status == CACHE_STATUS_FILL)
        rc = send_fill(s, slot, j->fd, a.fill, &status, &a.len);
    else if (status != CACHE_STATUS_OK)
        rc = send_status(s, j->fd, status);
    else if (b->kind == IPC_BACKEND_FD)
        rc = send_descriptor(s, j->fd, &a, &status);
    else
        rc = send_stream(s, j->fd, &a);
    if (rc < 0) {
        result = CACHE_RESULT_ABORTED;
        log_msg(LOGL_DEBUG, -rc, "transfer of '%s' to pid %ld abandoned", req->path, (long)j->pid);
    } else if (status == CACHE_STATUS_OK) {
        result = CACHE_RESULT_SERVED;
        if (a.fill != NULL && fill_stale(a.fill))
            log_info("'%s': served stale (the origin fails; --stale-if-error)", req->path);
    } else {
        result = status == CACHE_STATUS_NOT_FOUND || status == CACHE_STATUS_ORIGIN_NOT_FOUND
                     ? CACHE_RESULT_NOT_FOUND
                     : CACHE_RESULT_ERROR;
    }
out_done:
    stats_slot_end(stats, slot, STATS_SLOT_FREE);
    cache_server_done(s, result, &a, a.len, t0);
out:
    cache_answer_release(s, &a);
    free(req);
    close(j->fd);
    free(j);
}

/* The socket's name was removed from under us (rm, a cleaning script): proxies can no longer
 * find us, so bind it again. Only when the name is absent: a name some other live socket holds
 * is left alone. The old listener's backlog is reset by its close (nobody could connect to it
 * since the name went). */
static void relisten_if_gone(struct cache_backend *b)
{
    struct sock_listener nl, old;
    struct stat st;
    char name[SOCK_NAME_MAX];
    int rc;

    if (fstatat(b->l.dir_fd, b->l.name, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
        return;
    memcpy(name, b->l.name, sizeof name);
    rc = sock_listen(&nl, b->dir_path, b->l.dir_fd, name, BACKLOG);
    if (rc < 0) {
        if (cache_server_warn_ok(b->s))
            log_warn(-rc, "the socket '%s' was removed, and cannot be bound again", name);
        return;
    }
    old = b->l;
    b->l = nl;
    sock_listener_close(&old); /* the name is the new socket's now: not removed */
    log_warn(0, "the socket '%s/%s' was removed: listening on it again", b->dir_path, name);
}

static void *acceptor_main(void *arg)
{
    struct cache_backend *b = arg;
    int64_t next_check = clock_mono_ms() + NAME_CHECK_MS;

    while (!atomic_load_explicit(&b->stop, memory_order_acquire)) {
        pid_t pid = 0;
        if (clock_mono_ms() >= next_check) {
            relisten_if_gone(b);
            next_check = clock_mono_ms() + NAME_CHECK_MS;
        }
        int fd = sock_accept(&b->l, ACCEPT_SLICE_MS, b->uid, &pid);
        if (fd == -ETIMEDOUT)
            continue;
        if (fd < 0) {
            if (cache_server_warn_ok(b->s))
                log_warn(-fd, "%s socket: %s", ipc_backend_name(b->kind),
                         fd == -EPERM ? "refused a connection of another uid" : "accept failed");
            stats_add(cache_server_stats_region(b->s), STATS_C_REJECTED, fd == -EPERM);
            if (fd != -EPERM)
                clock_sleep_ms(ACCEPT_SLICE_MS); /* EMFILE and the like: do not spin */
            continue;
        }
        struct sock_job *j = malloc(sizeof *j);
        if (j == NULL) {
            close(fd);
            continue;
        }
        j->base.run = sock_run;
        j->b = b;
        j->fd = fd;
        j->pid = pid;
        int rc;
        do {
            rc = cache_server_submit(b->s, &j->base, ACCEPT_SLICE_MS);
        } while (rc == -ETIMEDOUT && !atomic_load_explicit(&b->stop, memory_order_acquire));
        if (rc < 0) {
            close(fd); /* stopping: the proxy sees the connection end, and moves on */
            free(j);
        }
    }
    return NULL;
}

static int sock_open(struct cache_server *s, unsigned kind, struct cache_backend **out)
{
    struct cache_backend *b = calloc(1, sizeof *b);
    const char *dir_path;
    int dir_fd = cache_server_rundir(s, &dir_path);
    char name[SOCK_NAME_MAX];
    sigset_t block, old;
    int rc, err;

    if (b == NULL)
        return -ENOMEM;
    b->s = s;
    b->kind = kind;
    b->uid = geteuid();
    b->dir_path = dir_path;
    rc = sock_chan_name(name, b->uid, kind);
    if (rc == 0)
        rc = sock_listen(&b->l, dir_path, dir_fd, name, BACKLOG);
    if (rc < 0) {
        log_err(-rc, "cannot listen on '%s/%s'", dir_path, name);
        free(b);
        return rc;
    }
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    err = pthread_create(&b->acceptor, NULL, acceptor_main, b);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        sock_listener_close(&b->l);
        free(b);
        return -err;
    }
    b->started = 1;
    log_info("listening on '%s/%s' (--ipc %s)", dir_path, name, ipc_backend_name(kind));
    *out = b;
    return 0;
}

static int unix_open(struct cache_server *s, struct cache_backend **out)
{
    return sock_open(s, IPC_BACKEND_UNIX, out);
}

static int fd_open(struct cache_server *s, struct cache_backend **out)
{
    return sock_open(s, IPC_BACKEND_FD, out);
}

static void sock_retire(struct cache_backend *b)
{
    if (b == NULL)
        return;
    atomic_store_explicit(&b->stop, 1, memory_order_release);
    if (b->started)
        pthread_join(b->acceptor, NULL);
    b->started = 0;
    sock_listener_close(&b->l); /* connections still in the backlog are reset */
}

static void sock_close(struct cache_backend *b)
{
    if (b == NULL)
        return;
    sock_retire(b);
    free(b);
}

const struct cache_backend_ops cache_backend_unix = {"unix", unix_open, sock_retire, sock_close};
const struct cache_backend_ops cache_backend_fd = {"fd", fd_open, sock_retire, sock_close};
