/* gfserver.c - GETFILE server library: a listener, a boss thread and a fixed pool of workers. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* accept4, ppoll, pipe2, pthread_setname_np */
#include "gfserver.h"
#include "clock.h"
#include "netio.h"
#include "workq.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GFS_MAX_THREADS       4096
#define GFS_MAX_QUEUE         65536
#define GFS_ACCEPT_BURST      64   /* accepts per wake-up, so stop and the queue stay responsive */
#define GFS_ACCEPT_PAUSE_MS   100  /* after EMFILE & co: give fds time to come back */
#define GFS_EVENT_INTERVAL_MS 1000 /* GFS_EV_ACCEPT_PAUSED at most this often */
#define GFS_LINGER_MS         1000 /* lingering close: discard input at most this long ... */
#define GFS_LINGER_BYTES      (64 * 1024) /* ... or this much */
/* With a stop_flag, ppoll also wakes this often: a signal delivered to some other thread of
 * the caller (one that has SIGINT/SIGTERM unblocked) sets the flag without waking us. */
#define GFS_FLAG_TICK_MS 1000

struct gfs_conn {
    int fd;
    int64_t accepted_ms; /* the header deadline counts from here */
    int64_t accepted_ns; /* the same, for on_done's duration */
};

struct gfs_worker {
    struct gfserver *srv;
    pthread_t tid;
    void *arg;
    int fd; /* guarded by srv->lock: the connection being served, or -1 */
    char buf[GF_REQUEST_MAX];
    char path[GF_PATH_MAX + 1];
};

struct gfserver {
    struct gfs_options opt; /* defaults filled in; read-only after gfs_new */
    int listen_fd;          /* boss only; -1 once closed */
    int wake[2];            /* pipe: gfs_stop and workers (room in the queue) wake the boss */
    uint16_t port;
    int ran;        /* gfs_run was called (boss only) */
    struct workq q; /* struct gfs_conn *, boss -> workers */
    struct gfs_worker *workers;
    void **worker_args;   /* our copy of opt.worker_args */
    atomic_int stop_req;  /* gfs_stop was called */
    atomic_int stopping;  /* the boss has stopped accepting */
    atomic_int cancelled; /* the grace period is over */
    atomic_int want_room; /* the boss holds a connection the full queue refused */
    pthread_mutex_t lock; /* guards alive and every worker's fd */
    pthread_cond_t idle;  /* signalled when a worker exits */
    unsigned alive;       /* workers not yet exited */
};

struct gfs_ctx {
    struct gfserver *srv;
    int fd;
    int header_sent;
    int broken; /* 0, or the -errno of a failed send: nothing more may be written */
    enum gf_status status;
    uint64_t length; /* announced, for GF_OK */
    uint64_t sent;
    const char *note; /* gfs_ctx_set_note */
};

/* How a worker ends a connection. */
enum gfs_close {
    GFS_CLOSE_NOW,    /* plain close: nothing unread can be pending */
    GFS_CLOSE_LINGER, /* half-close, discard input for a bounded time, then close */
    GFS_CLOSE_DRAIN,  /* as LINGER, but the peer is known to have sent more than we read */
    GFS_CLOSE_ABORT,  /* reset: the peer is gone, stuck, or we are cancelled */
};

static void emit(struct gfserver *s, enum gfs_event ev, int value)
{
    if (s->opt.on_event)
        s->opt.on_event(ev, value, s->opt.event_arg);
}

static void wake_boss(struct gfserver *s)
{
    ssize_t n;

    /* A full pipe already holds a wake-up; EAGAIN is fine. */
    do {
        n = write(s->wake[1], "w", 1);
    } while (n < 0 && errno == EINTR);
}

static void drain_wake(struct gfserver *s)
{
    char buf[64];
    ssize_t n;

    do {
        n = read(s->wake[0], buf, sizeof buf);
    } while (n > 0 || (n < 0 && errno == EINTR));
}

static int stop_requested(const struct gfserver *s)
{
    return atomic_load(&s->stop_req) || (s->opt.stop_flag && *s->opt.stop_flag);
}

static void close_abort(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    /* RST now, instead of an orphaned socket retrying unsent data to a stuck peer. */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* Lingering close, first half (nginx's): closing a socket with unread input makes the kernel
 * send RST, which can destroy the response still in flight. So half-close and discard what
 * the peer sends until it closes too, within GFS_LINGER_MS / GFS_LINGER_BYTES. When nothing
 * unread is pending and the peer sent no extra bytes, there is nothing to wait for. */
static void linger_input(struct gfs_worker *w, int fd, int known_extra)
{
    struct gfserver *s = w->srv;
    int64_t deadline = clock_mono_ms() + GFS_LINGER_MS;
    size_t total = 0;
    ssize_t n;

    if (shutdown(fd, SHUT_WR) < 0)
        return;
    if (!known_extra) {
        do {
            n = recv(fd, w->buf, sizeof w->buf, MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        if (n <= 0)
            return; /* nothing pending (EAGAIN), end of stream, or an error */
        total = (size_t)n;
    }
    while (total < GFS_LINGER_BYTES && !atomic_load(&s->cancelled)) {
        n = netio_read_some(fd, w->buf, sizeof w->buf, deadline);
        if (n <= 0)
            break;
        total += (size_t)n;
    }
}

/* Sends a header with no content on a connection no handler touched. */
static int send_status(struct gfserver *s, int fd, enum gf_status st)
{
    char hdr[GF_RESPONSE_MAX];
    ssize_t n = gf_format_response(hdr, sizeof hdr, st, 0, s->opt.framing);

    if (n < 0)
        return (int)n;
    return netio_write_all(fd, hdr, (size_t)n, s->opt.send_timeout_ms);
}

/* Reads the request header within the deadline. Returns its length (> 0) with *req filled,
 * -EBADMSG for a malformed or late header (answer INVALID), or another -errno when the peer
 * closed or failed before the terminator (just close). *got is the number of bytes read. */
static ssize_t read_header(struct gfs_worker *w, int fd, int64_t deadline, struct gf_request *req,
                           size_t *got)
{
    size_t len = 0;
    ssize_t rc = 0;

    while (rc == 0) {
        if (len == sizeof w->buf)
            return -EBADMSG; /* the parser should have said so already */
        ssize_t n = netio_read_some(fd, w->buf + len, sizeof w->buf - len, deadline);
        if (n == -ETIMEDOUT)
            return -EBADMSG; /* incomplete when time ran out */
        if (n == 0)
            return -ECONNRESET; /* peer closed before the terminator */
        if (n < 0)
            return n == -ECONNRESET ? -EPIPE : n;
        len += (size_t)n;
        *got = len;
        rc = gf_parse_request(w->buf, len, req);
    }
    return rc < 0 ? -EBADMSG : rc;
}

/* Serves one connection up to (not including) the close; says how to close it, and fills
 * what on_done reports about the request (all but the peer and the duration). */
static enum gfs_close serve(struct gfs_worker *w, int fd, int64_t accepted_ms, struct gfs_done *d)
{
    struct gfserver *s = w->srv;
    struct gf_request req;
    size_t got = 0;
    ssize_t hlen;
    int rc;

    hlen = read_header(w, fd, accepted_ms + s->opt.header_timeout_ms, &req, &got);
    if (hlen == -EBADMSG || (hlen > 0 && !gf_path_valid(req.path, req.path_len))) {
        if (atomic_load(&s->cancelled))
            return GFS_CLOSE_ABORT;
        d->status = GF_INVALID;
        return send_status(s, fd, GF_INVALID) == 0 ? GFS_CLOSE_DRAIN : GFS_CLOSE_ABORT;
    }
    if (hlen == -ECONNRESET)
        return GFS_CLOSE_NOW; /* we read to the end of stream: nothing unread, no reset */
    if (hlen < 0)
        return GFS_CLOSE_ABORT;

    /* The path moves out of the read buffer, which linger_input reuses. */
    memcpy(w->path, req.path, req.path_len);
    w->path[req.path_len] = '\0';
    int extra = got > (size_t)hlen;
    struct gfs_ctx ctx = {.srv = s, .fd = fd};

    rc = s->opt.handler(&ctx, w->path, req.path_len, w->arg);
    d->path = w->path;
    d->note = ctx.note;
    d->sent = ctx.sent;
    d->status = ctx.header_sent ? (int)ctx.status : -1;

    if (ctx.broken || atomic_load(&s->cancelled))
        return GFS_CLOSE_ABORT;
    if (!ctx.header_sent) {
        if (rc == 0)
            emit(s, GFS_EV_INCOMPLETE, 0);
        if (send_status(s, fd, GF_ERROR) < 0)
            return GFS_CLOSE_ABORT;
        d->status = GF_ERROR;
    } else if (rc == 0 && ctx.status == GF_OK && ctx.sent < ctx.length) {
        emit(s, GFS_EV_INCOMPLETE, 0);
    }
    /* After a failure past the header, closing early is the only signal the client gets. */
    return extra ? GFS_CLOSE_DRAIN : GFS_CLOSE_LINGER;
}

/* Publishes fd as this worker's connection, unless the server is already cancelled. */
static int claim(struct gfs_worker *w, int fd)
{
    struct gfserver *s = w->srv;
    int ok;

    pthread_mutex_lock(&s->lock);
    ok = !atomic_load(&s->cancelled);
    if (ok)
        w->fd = fd;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

static void unclaim(struct gfs_worker *w)
{
    pthread_mutex_lock(&w->srv->lock);
    w->fd = -1;
    pthread_mutex_unlock(&w->srv->lock);
}

static void *worker_main(void *p)
{
    struct gfs_worker *w = p;
    struct gfserver *s = w->srv;
    void *item;

    while (workq_pop(&s->q, &item, -1) == 0) {
        struct gfs_conn c = *(struct gfs_conn *)item;

        free(item);
        if (atomic_exchange(&s->want_room, 0))
            wake_boss(s);
        if (!claim(w, c.fd)) {
            close_abort(c.fd); /* queued, never started, and the grace period is over */
            continue;
        }
        struct sockaddr_storage peer;
        struct gfs_done d = {.status = -1};
        if (s->opt.on_done) {
            d.peer_len = sizeof peer;
            if (getpeername(c.fd, (struct sockaddr *)&peer, &d.peer_len) == 0)
                d.peer = (struct sockaddr *)&peer;
        }
        enum gfs_close how = serve(w, c.fd, c.accepted_ms, &d);
        if (s->opt.on_done) {
            d.duration_ns = clock_mono_ns() - c.accepted_ns;
            s->opt.on_done(&d, s->opt.done_arg);
        }
        if (how == GFS_CLOSE_LINGER || how == GFS_CLOSE_DRAIN)
            linger_input(w, c.fd, how == GFS_CLOSE_DRAIN);
        /* Unclaim before close: the boss may shut down a claimed fd, never a reused one. */
        unclaim(w);
        if (how == GFS_CLOSE_ABORT || atomic_load(&s->cancelled))
            close_abort(c.fd);
        else
            close(c.fd);
    }
    pthread_mutex_lock(&s->lock);
    s->alive--;
    pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Queues *pending without waiting. Returns 0 (and clears *pending), -ETIMEDOUT when the queue
 * is full (the boss then stops accepting until a worker makes room), or -EPIPE. */
static int try_queue(struct gfserver *s, struct gfs_conn **pending)
{
    int rc = workq_push(&s->q, *pending, 0);

    if (rc == -ETIMEDOUT) {
        /* Ask for a wake-up, then retry: a pop that came before the flag made room we see
         * now; one that comes after it writes the wake pipe. */
        atomic_store(&s->want_room, 1);
        rc = workq_push(&s->q, *pending, 0);
    }
    if (rc == 0)
        *pending = NULL;
    return rc;
}

/* Accepts what the backlog holds, up to a burst. */
static void accept_some(struct gfserver *s, struct gfs_conn **pending, int64_t *pause_until,
                        int64_t *last_report)
{
    for (int i = 0; i < GFS_ACCEPT_BURST && *pending == NULL; i++) {
        int one = 1, fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            int err = errno;
            switch (err) {
            case EAGAIN:
#if EWOULDBLOCK != EAGAIN
            case EWOULDBLOCK:
#endif
                return;
            case EINTR:
            case ECONNABORTED:
            case EPROTO:
            case EPERM:
            case ENETDOWN:
            case ENOPROTOOPT:
            case EHOSTDOWN:
            case ENONET:
            case EHOSTUNREACH:
            case EOPNOTSUPP:
            case ENETUNREACH:
                continue; /* that connection failed; the next one may be fine */
            default:
                /* EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays in the backlog and
                 * the listener stays readable, so retrying now would spin. Pause. */
                *pause_until = clock_mono_ms() + GFS_ACCEPT_PAUSE_MS;
                if (clock_mono_ms() - *last_report >= GFS_EVENT_INTERVAL_MS) {
                    *last_report = clock_mono_ms();
                    emit(s, GFS_EV_ACCEPT_PAUSED, err);
                }
                return;
            }
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct gfs_conn *c = malloc(sizeof *c);
        if (c == NULL) {
            close_abort(fd);
            *pause_until = clock_mono_ms() + GFS_ACCEPT_PAUSE_MS;
            return;
        }
        c->fd = fd;
        c->accepted_ns = clock_mono_ns();
        c->accepted_ms = c->accepted_ns / 1000000;
        *pending = c;
        if (try_queue(s, pending) != 0)
            return; /* full: the kernel backlog holds the rest */
    }
}

/* The boss loop. Returns when a stop is requested, with the connection the full queue
 * refused (or NULL). */
static struct gfs_conn *boss_loop(struct gfserver *s, const sigset_t *waitmask)
{
    struct gfs_conn *pending = NULL;
    int64_t pause_until = 0, last_report = INT64_MIN / 2;

    /* Signals that stop us are blocked except inside ppoll, so one that arrives after this
     * test stays pending until ppoll unblocks it and returns EINTR: no lost wake-up. */
    while (!stop_requested(s)) {
        struct pollfd pfd[2] = {{.fd = s->wake[0], .events = POLLIN},
                                {.fd = s->listen_fd, .events = POLLIN}};
        nfds_t nfds = 1;
        int timeout = -1;

        if (pending && try_queue(s, &pending) == -EPIPE)
            break;
        if (pending == NULL) {
            int64_t left = pause_until - clock_mono_ms();
            if (left > 0)
                timeout = (int)left;
            else
                nfds = 2;
        }
        if (s->opt.stop_flag && (timeout < 0 || timeout > GFS_FLAG_TICK_MS))
            timeout = GFS_FLAG_TICK_MS;
        struct timespec ts = clock_span(timeout);
        int rc = ppoll(pfd, nfds, timeout < 0 ? NULL : &ts, waitmask);
        if (rc < 0) {
            if (errno != EINTR)
                clock_sleep_ms(GFS_ACCEPT_PAUSE_MS); /* ENOMEM: nothing better to do */
            continue;
        }
        if (pfd[0].revents)
            drain_wake(s);
        if (nfds == 2 && pfd[1].revents)
            accept_some(s, &pending, &pause_until, &last_report);
    }
    return pending;
}

/* Stops accepting, lets in-flight and queued requests finish within the grace period, then
 * cuts what is left, and joins every worker. */
static void shut_down(struct gfserver *s, struct gfs_conn *pending, unsigned nstarted)
{
    int64_t deadline = clock_mono_ms() + s->opt.shutdown_grace_ms;

    if (s->listen_fd >= 0) {
        close(s->listen_fd); /* the backlog is reset */
        s->listen_fd = -1;
    }
    atomic_store(&s->stopping, 1);
    if (pending && workq_push(&s->q, pending, clock_ms_left(deadline)) != 0) {
        close_abort(pending->fd);
        free(pending);
    }
    workq_close(&s->q);

    pthread_mutex_lock(&s->lock);
    while (s->alive > 0) {
        struct timespec until = clock_mono_at(deadline);
        if (pthread_cond_timedwait(&s->idle, &s->lock, &until) == ETIMEDOUT)
            break;
    }
    if (s->alive > 0) {
        int cut = 0;
        /* Set under the lock, so a worker claiming a connection after this sees it. */
        atomic_store(&s->cancelled, 1);
        for (unsigned i = 0; i < nstarted; i++) {
            if (s->workers[i].fd >= 0) {
                /* Wakes a worker blocked on this socket; it closes the fd itself. */
                shutdown(s->workers[i].fd, SHUT_RDWR);
                cut++;
            }
        }
        pthread_mutex_unlock(&s->lock);
        emit(s, GFS_EV_CUT, cut);
    } else {
        pthread_mutex_unlock(&s->lock);
    }
    for (unsigned i = 0; i < nstarted; i++)
        pthread_join(s->workers[i].tid, NULL);
}

int gfs_run(struct gfserver *s)
{
    sigset_t block, old, waitmask;
    unsigned started = 0;
    int rc = 0;

    if (s->ran)
        return -EALREADY;
    s->ran = 1;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGPIPE);
    /* Workers inherit this mask: stop signals go to the boss, SIGPIPE nowhere. */
    pthread_sigmask(SIG_BLOCK, &block, &old);
    waitmask = old;
    if (s->opt.stop_flag) {
        sigdelset(&waitmask, SIGINT);
        sigdelset(&waitmask, SIGTERM);
    }

    for (; started < s->opt.nthreads; started++) {
        struct gfs_worker *w = &s->workers[started];
        pthread_mutex_lock(&s->lock);
        s->alive++;
        pthread_mutex_unlock(&s->lock);
        rc = -pthread_create(&w->tid, NULL, worker_main, w);
        if (rc < 0) {
            pthread_mutex_lock(&s->lock);
            s->alive--;
            pthread_mutex_unlock(&s->lock);
            break;
        }
        pthread_setname_np(w->tid, "gfs-worker");
    }

    struct gfs_conn *pending = NULL;
    if (rc == 0)
        pending = boss_loop(s, &waitmask);
    shut_down(s, pending, started);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void gfs_stop(struct gfserver *s)
{
    atomic_store(&s->stop_req, 1);
    wake_boss(s);
}

int gfs_ctx_stopping(const struct gfs_ctx *ctx)
{
    return atomic_load(&ctx->srv->stopping);
}

int gfs_ctx_cancelled(const struct gfs_ctx *ctx)
{
    return atomic_load(&ctx->srv->cancelled);
}

int gfs_ctx_header_sent(const struct gfs_ctx *ctx)
{
    return ctx->header_sent;
}

uint64_t gfs_ctx_sent(const struct gfs_ctx *ctx)
{
    return ctx->sent;
}

void gfs_ctx_set_note(struct gfs_ctx *ctx, const char *note)
{
    ctx->note = note;
}

int gfs_send_header(struct gfs_ctx *ctx, enum gf_status st, uint64_t length)
{
    char hdr[GF_RESPONSE_MAX];
    ssize_t n;
    int rc;

    if (ctx->header_sent)
        return -EALREADY;
    if (st != GF_OK && st != GF_FILE_NOT_FOUND && st != GF_ERROR)
        return -EINVAL;
    if (atomic_load(&ctx->srv->cancelled))
        return -ECANCELED;
    n = gf_format_response(hdr, sizeof hdr, st, st == GF_OK ? length : 0, ctx->srv->opt.framing);
    if (n < 0)
        return (int)n;
    ctx->header_sent = 1;
    ctx->status = st;
    ctx->length = st == GF_OK ? length : 0;
    rc = netio_write_all(ctx->fd, hdr, (size_t)n, ctx->srv->opt.send_timeout_ms);
    if (rc < 0)
        ctx->broken = rc;
    return rc;
}

int gfs_send(struct gfs_ctx *ctx, const void *buf, size_t len)
{
    int rc;

    if (!ctx->header_sent || ctx->status != GF_OK)
        return -EPROTO;
    if (ctx->broken)
        return ctx->broken;
    if (len > ctx->length - ctx->sent)
        return -EMSGSIZE;
    if (atomic_load(&ctx->srv->cancelled)) {
        ctx->broken = -ECANCELED;
        return -ECANCELED;
    }
    rc = netio_write_all(ctx->fd, buf, len, ctx->srv->opt.send_timeout_ms);
    if (rc < 0) {
        ctx->broken = rc;
        return rc;
    }
    ctx->sent += len;
    return 0;
}

static int check_options(struct gfs_options *o)
{
    if (o->handler == NULL || o->nthreads < 1 || o->nthreads > GFS_MAX_THREADS)
        return -EINVAL;
    if (o->queue_depth > GFS_MAX_QUEUE || o->backlog < 0 || o->header_timeout_ms < 0 ||
        o->send_timeout_ms < 0 || o->shutdown_grace_ms < 0 ||
        (o->framing != GF_FRAMING_DOCUMENTED && o->framing != GF_FRAMING_LEGACY))
        return -EINVAL;
    if (o->queue_depth == 0)
        o->queue_depth = 4 * o->nthreads;
    if (o->backlog == 0)
        o->backlog = 1024;
    if (o->header_timeout_ms == 0)
        o->header_timeout_ms = 10000;
    if (o->send_timeout_ms == 0)
        o->send_timeout_ms = 10000;
    if (o->shutdown_grace_ms == 0)
        o->shutdown_grace_ms = 5000;
    return 0;
}

int gfs_new(struct gfserver **out, const struct gfs_options *opt)
{
    struct gfserver *s;
    pthread_condattr_t ca;
    int rc;

    s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->opt = *opt;
    s->listen_fd = s->wake[0] = s->wake[1] = -1;
    rc = check_options(&s->opt);
    if (rc < 0)
        goto err_free;
    s->workers = calloc(s->opt.nthreads, sizeof *s->workers);
    s->worker_args = calloc(s->opt.nthreads, sizeof *s->worker_args);
    if (s->workers == NULL || s->worker_args == NULL) {
        rc = -ENOMEM;
        goto err_free;
    }
    for (unsigned i = 0; i < s->opt.nthreads; i++) {
        s->worker_args[i] = opt->worker_args ? opt->worker_args[i] : NULL;
        s->workers[i].srv = s;
        s->workers[i].arg = s->worker_args[i];
        s->workers[i].fd = -1;
    }
    s->opt.worker_args = s->worker_args;
    rc = workq_init(&s->q, s->opt.queue_depth);
    if (rc < 0)
        goto err_free;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = -pthread_cond_init(&s->idle, &ca);
    pthread_condattr_destroy(&ca);
    if (rc < 0)
        goto err_queue;
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        rc = -errno;
        goto err_cond;
    }
    rc = netio_listen_tcp(s->opt.host, s->opt.port, s->opt.backlog, &s->listen_fd);
    if (rc < 0)
        goto err_pipe;
    rc = netio_local_port(s->listen_fd);
    if (rc < 0)
        goto err_listen;
    s->port = (uint16_t)rc;
    s->opt.host = NULL; /* borrowed; not needed after the bind */
    *out = s;
    return 0;

err_listen:
    close(s->listen_fd);
err_pipe:
    close(s->wake[0]);
    close(s->wake[1]);
err_cond:
    pthread_cond_destroy(&s->idle);
err_queue:
    pthread_mutex_destroy(&s->lock);
    workq_release(&s->q);
err_free:
    free(s->workers);
    free(s->worker_args);
    free(s);
    return rc;
}

uint16_t gfs_port(const struct gfserver *s)
{
    return s->port;
}

void gfs_free(struct gfserver *s)
{
    void *item;

    if (s == NULL)
        return;
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    while (workq_trypop(&s->q, &item) == 0) {
        close(((struct gfs_conn *)item)->fd);
        free(item);
    }
    workq_release(&s->q);
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->lock);
    free(s->workers);
    free(s->worker_args);
    free(s);
}
