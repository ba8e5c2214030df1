/* cache_sock.c - the cache's socket backends (--ipc unix and fd): an acceptor thread takes
 * connections on the Unix socket, checks the peer's uid, and hands each to the workers; a
 * worker reads a request, looks it up (cache_server_lookup) and answers: the bytes on the
 * connection (unix; and fd while an entry is being filled), or the file's read-only descriptor
 * (fd). A connection carries many requests, one at a time, for as long as the proxy keeps it
 * (docs/ipc.md, "The socket backends"). */
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
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define ACCEPT_SLICE_MS 100   /* how often the acceptor looks at its stop flag */
#define REQ_READ_MS     2000  /* longest wait for a connection's request */
#define BACKLOG         128   /* connections waiting for the acceptor */
#define FILL_CHUNK      65536 /* bytes of a fill sent per write */
#define CONN_MAX        256   /* connections open at once, idle or in service */
#define CONN_IDLE_MS    30000 /* an idle connection is closed after this long (default) */
#define LINGER_MS       50    /* a worker's wait on its connection for the next request */
#define KEEP_MS         1000  /* how long a proxy may keep a descriptor (fd; docs/ipc.md) */
#define GEN_SIZE        4096  /* the generation object: one page, the word at its start */
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
    int wake_fd;                     /* eventfd: a connection was handed back to the acceptor */
    pthread_mutex_t lock;            /* guards the fields below */
    struct sock_job *idle[CONN_MAX]; /* connections waiting for their next request */
    unsigned nidle;
    unsigned nconn;        /* connections open: idle ones and those in service */
    int closed;            /* retired: a connection handed back is closed instead */
    int64_t idle_ms;       /* idle connections are closed after this long (env_ms) */
    uint32_t keep_ms;      /* fd: how long a proxy may keep a descriptor (env_ms) */
    int gen_fd;            /* fd: the generation object (sealed memfd), passed on a GEN request */
    _Atomic uint32_t *gen; /* its word, in our writable mapping */
};

/* One accepted connection: a job while a worker serves it, else in the idle set. */
struct sock_job {
    struct cache_job base;
    struct cache_backend *b;
    int fd;
    pid_t pid;          /* the peer's, from SO_PEERCRED */
    int fresh;          /* just accepted: its first request may still be on its way */
    int64_t idle_since; /* clock_mono_ms when it was handed back */
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
                           uint32_t gen, uint32_t keep_ms, int *status)
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
    /* The proxy may keep it for the next requests while the generation stays gen, for at most
     * keep_ms, and never past the entry's freshness. */
    r.gen = gen;
    r.keep_ms = a->fresh_ms < 0 || a->fresh_ms > keep_ms ? keep_ms : (uint32_t)a->fresh_ms;
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

/* Serves the request waiting on j's connection. Returns 0 when the connection is clean for
 * the next request (an answer sent whole, whatever its status), -1 when it must be closed (a
 * bad request, the proxy gone, a transfer cut). */
static int serve_one(struct cache_server *s, unsigned slot, struct sock_job *j)
{
    struct cache_backend *b = j->b;
    struct stats_region *stats = cache_server_stats_region(s);
    struct cache_answer a = {.fd = -1};
    enum cache_result result = CACHE_RESULT_ABORTED;
    int64_t t0 = clock_mono_ns();
    struct sock_req *req = malloc(sizeof *req);
    int status, rc = -1;

    if (req == NULL || read_request(b, j->fd, j->pid, req) < 0) {
        stats_add(stats, STATS_C_REJECTED, 1);
        cache_server_done(s, CACHE_RESULT_REJECTED, &a, 0, t0);
        goto out;
    }
    stats_add(stats, STATS_C_MESSAGES, 1);
    if (req->flags & SOCK_REQ_GEN) {
        /* Not a file: the generation object, on fd only. */
        struct sock_resp g = {.kind = SOCK_RESP_GEN, .status = SOCK_STATUS_OK};
        if (b->gen == NULL || req->backend != b->kind) {
            rc = send_status(s, j->fd, SOCK_STATUS_ERROR);
        } else {
            g.gen = atomic_load_explicit(b->gen, memory_order_acquire);
            rc = send_resp(s, j->fd, &g, b->gen_fd);
        }
        goto out;
    }
    /* Read before the lookup: a change after this read makes the answer's gen old at once. */
    uint32_t gen = b->gen != NULL ? atomic_load_explicit(b->gen, memory_order_acquire) : 0;
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
        rc = send_descriptor(s, j->fd, &a, gen, b->keep_ms, &status);
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
    return rc < 0 ? -1 : 0;
}

/* Closes a connection and forgets it. */
static void conn_close(struct cache_backend *b, struct sock_job *j)
{
    close(j->fd);
    pthread_mutex_lock(&b->lock);
    b->nconn--;
    pthread_mutex_unlock(&b->lock);
    free(j);
}

/* Gives an idle connection to the acceptor, which submits it again when its next request
 * comes (or closes it after CONN_IDLE_MS); after the retire it is closed instead. */
static void hand_back(struct cache_backend *b, struct sock_job *j)
{
    uint64_t one = 1;

    pthread_mutex_lock(&b->lock);
    if (b->closed || b->nidle >= CONN_MAX) {
        pthread_mutex_unlock(&b->lock);
        conn_close(b, j);
        return;
    }
    j->idle_since = clock_mono_ms();
    b->idle[b->nidle++] = j;
    pthread_mutex_unlock(&b->lock);
    if (write(b->wake_fd, &one, sizeof one) < 0) {
        /* The counter cannot overflow in practice; the acceptor looks every slice anyway. */
    }
}

/* 1 when the connection holds a request's first byte, 0 when nothing is there yet, -1 when
 * the proxy closed it (or it failed). */
static int conn_has_request(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

    if (n == 1)
        return 1;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
}

/* Waits at most ms on the connection for the next request: 1 it came, 0 not yet, -1 close. */
static int next_request(struct cache_backend *b, int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    int n = ms > 0 ? poll(&p, 1, ms) : 1;

    if (n < 0)
        return errno == EINTR ? 0 : -1;
    if (n == 0)
        return 0;
    if (atomic_load_explicit(&b->stop, memory_order_acquire))
        return -1;
    return conn_has_request(fd);
}

/* A connection's job: serves its requests one after the other. While there are no more
 * connections than workers, the worker waits up to LINGER_MS for the next request on it (the
 * proxy's next request then wakes this very thread: no hop through the acceptor); else, or
 * when none comes, the connection goes back to the acceptor. A stop closes it after the
 * request in progress. */
static void sock_run(struct cache_server *s, unsigned slot, struct cache_job *job)
{
    struct sock_job *j = (struct sock_job *)job;
    struct cache_backend *b = j->b;

    if (!j->fresh && conn_has_request(j->fd) < 0)
        goto close; /* the proxy closed it while idle */
    j->fresh = 0;
    for (;;) {
        if (serve_one(s, slot, j) < 0 || cache_server_stopping(s))
            break;
        pthread_mutex_lock(&b->lock);
        int linger = b->nconn <= cache_server_nthreads(s) ? LINGER_MS : 0;
        pthread_mutex_unlock(&b->lock);
        int rc = next_request(b, j->fd, linger);
        if (rc > 0)
            continue;
        if (rc == 0) {
            hand_back(b, j);
            return;
        }
        break;
    }
close:
    conn_close(b, j);
}

/* Hands a connection to the workers, waiting while their queue is full. On failure (stopping)
 * the connection is closed: the proxy sees it end, and moves on. */
static void submit_conn(struct cache_backend *b, struct sock_job *j)
{
    int rc;

    do {
        rc = cache_server_submit(b->s, &j->base, ACCEPT_SLICE_MS);
    } while (rc == -ETIMEDOUT && !atomic_load_explicit(&b->stop, memory_order_acquire));
    if (rc < 0)
        conn_close(b, j);
}

/* Removes j from the idle set; 0 when it was not there. Call with the lock held. */
static int idle_take(struct cache_backend *b, struct sock_job *j)
{
    for (unsigned i = 0; i < b->nidle; i++)
        if (b->idle[i] == j) {
            b->idle[i] = b->idle[--b->nidle];
            return 1;
        }
    return 0;
}

/* The idle connection waiting longest, taken out of the set; NULL when none. Lock held. */
static struct sock_job *idle_oldest(struct cache_backend *b)
{
    struct sock_job *o = NULL;

    for (unsigned i = 0; i < b->nidle; i++)
        if (o == NULL || b->idle[i]->idle_since < o->idle_since)
            o = b->idle[i];
    if (o != NULL)
        idle_take(b, o);
    return o;
}

/* Accepts one connection and submits it. With CONN_MAX open, the longest idle one is closed
 * to make room (its proxy connects again when it needs to). */
static void accept_one(struct cache_backend *b)
{
    struct sock_job *victim = NULL;
    pid_t pid = 0;
    int fd = sock_accept(&b->l, 0, b->uid, &pid);

    if (fd == -ETIMEDOUT)
        return;
    if (fd < 0) {
        if (cache_server_warn_ok(b->s))
            log_warn(-fd, "%s socket: %s", ipc_backend_name(b->kind),
                     fd == -EPERM ? "refused a connection of another uid" : "accept failed");
        stats_add(cache_server_stats_region(b->s), STATS_C_REJECTED, fd == -EPERM);
        if (fd != -EPERM)
            clock_sleep_ms(ACCEPT_SLICE_MS); /* EMFILE and the like: do not spin */
        return;
    }
    struct sock_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        close(fd);
        return;
    }
    j->base.run = sock_run;
    j->b = b;
    j->fd = fd;
    j->pid = pid;
    j->fresh = 1;
    pthread_mutex_lock(&b->lock);
    if (++b->nconn > CONN_MAX)
        victim = idle_oldest(b);
    pthread_mutex_unlock(&b->lock);
    if (victim != NULL)
        conn_close(b, victim);
    submit_conn(b, j);
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

/* The acceptor: new connections, and idle ones whose next request came, go to the workers;
 * idle ones are closed after b->idle_ms (CONN_IDLE_MS by default). */
static void *acceptor_main(void *arg)
{
    struct cache_backend *b = arg;
    int64_t next_check = clock_mono_ms() + NAME_CHECK_MS;
    struct pollfd *pf = calloc(CONN_MAX + 2, sizeof *pf);
    struct sock_job **pj = calloc(CONN_MAX, sizeof *pj);

    if (pf == NULL || pj == NULL) {
        log_err(ENOMEM, "%s socket: acceptor", ipc_backend_name(b->kind));
        free(pf);
        free(pj);
        return NULL;
    }
    while (!atomic_load_explicit(&b->stop, memory_order_acquire)) {
        int64_t now = clock_mono_ms();
        unsigned n = 0, nexp = 0, nidle;
        int full;

        if (now >= next_check) {
            relisten_if_gone(b);
            next_check = now + NAME_CHECK_MS;
        }

        pthread_mutex_lock(&b->lock);
        for (unsigned i = 0; i < b->nidle;) {
            struct sock_job *j = b->idle[i];
            if (now - j->idle_since >= b->idle_ms) {
                b->idle[i] = b->idle[--b->nidle];
                pj[CONN_MAX - 1 - nexp++] = j; /* expired ones fill the array from its end */
                continue;
            }
            pj[n] = j;
            pf[2 + n].fd = j->fd;
            pf[2 + n].events = POLLIN | POLLRDHUP;
            pf[2 + n].revents = 0;
            n++;
            i++;
        }
        nidle = b->nidle;
        full = b->nconn - nexp >= CONN_MAX && nidle == 0;
        pthread_mutex_unlock(&b->lock);
        for (unsigned i = 0; i < nexp; i++)
            conn_close(b, pj[CONN_MAX - 1 - i]);
        pf[0].fd = full ? -1 : b->l.fd; /* all in service: new ones wait in the backlog */
        pf[0].events = POLLIN;
        pf[0].revents = 0;
        pf[1].fd = b->wake_fd;
        pf[1].events = POLLIN;
        pf[1].revents = 0;
        int rc = poll(pf, 2 + n, ACCEPT_SLICE_MS);
        if (rc <= 0)
            continue;
        if (pf[1].revents & POLLIN) {
            uint64_t v;
            if (read(b->wake_fd, &v, sizeof v) < 0) {
                /* Nothing to read after all: fine. */
            }
        }
        for (unsigned i = 0; i < n; i++) {
            if (pf[2 + i].revents == 0)
                continue;
            pthread_mutex_lock(&b->lock);
            int mine = idle_take(b, pj[i]);
            pthread_mutex_unlock(&b->lock);
            if (mine)
                submit_conn(b, pj[i]);
        }
        if (pf[0].revents & POLLIN)
            accept_one(b);
    }
    free(pf);
    free(pj);
    return NULL;
}

/* fd: the generation object, a one-page memfd whose first word the server bumps on every
 * change (cache_server_bump_generation). Sealed against writes other than through our own
 * mapping and against resizing, so a proxy can map it read-only and trust its size. Starts
 * at a random value. Returns 0 or -errno. */
static int gen_open(struct cache_backend *b)
{
    uint32_t start = 0;
    void *map;
    int fd = memfd_create("getfile-gen", MFD_CLOEXEC | MFD_ALLOW_SEALING), rc;

    if (fd < 0)
        return -errno;
    if (ftruncate(fd, GEN_SIZE) < 0)
        goto fail;
    map = mmap(NULL, GEN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        goto fail;
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) <
        0) {
        rc = -errno;
        munmap(map, GEN_SIZE);
        close(fd);
        return rc;
    }
    if (getrandom(&start, sizeof start, 0) < 0)
        start = (uint32_t)clock_mono_ns();
    b->gen = map;
    atomic_store_explicit(b->gen, start, memory_order_release);
    b->gen_fd = fd;
    return 0;

fail:
    rc = -errno;
    close(fd);
    return rc;
}

static void gen_close(struct cache_backend *b)
{
    if (b->gen != NULL)
        munmap((void *)(uintptr_t)b->gen, GEN_SIZE);
    if (b->gen_fd >= 0)
        close(b->gen_fd);
    b->gen = NULL;
    b->gen_fd = -1;
}

/* $name in milliseconds (lo..hi), else def. For tests: GETFILE_CONN_IDLE_MS sees the idle
 * limit without waiting 30 s (docs/ipc.md, "Connections"); GETFILE_KEEP_MS keeps descriptors
 * long enough that a loaded machine's slow clients still find them kept. */
static int64_t env_ms(const char *name, int64_t def, int64_t lo, int64_t hi)
{
    const char *v = getenv(name);
    char *end;
    long long ms;

    if (v == NULL || *v == '\0')
        return def;
    errno = 0;
    ms = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || ms < lo || ms > hi) {
        log_warn(EINVAL, "%s='%s' is not %lld..%lld: using %lld", name, v, (long long)lo,
                 (long long)hi, (long long)def);
        return def;
    }
    return ms;
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
    b->gen_fd = -1;
    b->idle_ms = env_ms("GETFILE_CONN_IDLE_MS", CONN_IDLE_MS, 100, 3600000);
    b->keep_ms = (uint32_t)env_ms("GETFILE_KEEP_MS", KEEP_MS, 100, SOCK_KEEP_MAX_MS);
    b->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->wake_fd < 0) {
        rc = -errno;
        free(b);
        return rc;
    }
    if (kind == IPC_BACKEND_FD) {
        rc = gen_open(b);
        if (rc < 0) {
            log_err(-rc, "cannot create the generation object");
            close(b->wake_fd);
            free(b);
            return rc;
        }
        cache_server_set_generation(s, b->gen);
    }
    pthread_mutex_init(&b->lock, NULL);
    rc = sock_chan_name(name, b->uid, kind);
    if (rc == 0)
        rc = sock_listen(&b->l, dir_path, dir_fd, name, BACKLOG);
    if (rc < 0) {
        log_err(-rc, "cannot listen on '%s/%s'", dir_path, name);
        goto fail;
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
        rc = -err;
        goto fail;
    }
    b->started = 1;
    log_info("listening on '%s/%s' (--ipc %s)", dir_path, name, ipc_backend_name(kind));
    *out = b;
    return 0;

fail:
    cache_server_set_generation(s, NULL);
    gen_close(b);
    pthread_mutex_destroy(&b->lock);
    close(b->wake_fd);
    free(b);
    return rc;
}

static int unix_open(struct cache_server *s, struct cache_backend **out)
{
    return sock_open(s, IPC_BACKEND_UNIX, out);
}

static int fd_open(struct cache_server *s, struct cache_backend **out)
{
    return sock_open(s, IPC_BACKEND_FD, out);
}

/* Stops the acceptor, gives the name up and closes the idle connections (their proxies see
 * them end and connect again, to the next cache); connections in service close after their
 * request. */
static void sock_retire(struct cache_backend *b)
{
    struct sock_job *j;

    if (b == NULL)
        return;
    atomic_store_explicit(&b->stop, 1, memory_order_release);
    if (b->started)
        pthread_join(b->acceptor, NULL);
    b->started = 0;
    sock_listener_close(&b->l); /* connections still in the backlog are reset */
    pthread_mutex_lock(&b->lock);
    b->closed = 1;
    pthread_mutex_unlock(&b->lock);
    /* Descriptors proxies keep of ours are not to be used past our stop: the next cache may
     * answer otherwise. */
    if (b->gen != NULL)
        atomic_fetch_add_explicit(b->gen, 1, memory_order_release);
    for (;;) {
        pthread_mutex_lock(&b->lock);
        j = b->nidle > 0 ? b->idle[--b->nidle] : NULL;
        pthread_mutex_unlock(&b->lock);
        if (j == NULL)
            break;
        conn_close(b, j);
    }
}

static void sock_close(struct cache_backend *b)
{
    if (b == NULL)
        return;
    sock_retire(b);
    cache_server_set_generation(b->s, NULL);
    gen_close(b);
    pthread_mutex_destroy(&b->lock);
    close(b->wake_fd);
    free(b);
}

const struct cache_backend_ops cache_backend_unix = {"unix", unix_open, sock_retire, sock_close};
const struct cache_backend_ops cache_backend_fd = {"fd", fd_open, sock_retire, sock_close};
