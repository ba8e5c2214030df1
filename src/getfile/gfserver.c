/* gfserver.c - GETFILE server library: idle workers accept connections and serve those whose
 * request header came with them; a boss thread reads the other headers in an epoll loop and
 * queues them once complete to the workers. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* accept4, epoll_pwait, pipe2, pthread_setname_np */
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
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
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
#define GFS_WAITING_MAX       65536       /* max_waiting ceiling */
#define GFS_PER_CLIENT_DEF    64
#define GFS_MIN_RATE_DEF      1024 /* bytes/s */
/* With a stop_flag, epoll_pwait also wakes this often: a signal delivered to some other thread of
 * the caller (one that has SIGINT/SIGTERM unblocked) sets the flag without waking us. */
#define GFS_FLAG_TICK_MS 1000

struct gfs_list;

/* A connection from its accept until a worker closes it. The worker that accepted it serves it
 * at once when its header came with it; otherwise the boss owns it while it waits for its
 * header, lingers after an INVALID, or waits for room in the queue; then a worker does. */
struct gfs_conn {
    struct gfs_conn *prev, *next; /* boss only: neighbours on *list; next: on the inbox */
    struct gfs_list *list;        /* boss only: waiting, lingering or ready */
    struct gfs_conn *hnext;       /* boss only: next in its client address's hash bucket */
    int fd;
    int family;                   /* the client's address (for the per-client limit) */
    unsigned char addr[16];       /* IPv4 (first 4 bytes) or IPv6 */
    int64_t since_ms;             /* accept (waiting) or start of the lingering close */
    int64_t accepted_ns;          /* accept, for on_done's duration */
    struct sockaddr_storage peer; /* the client's address as accept saw it, for on_done */
    socklen_t peer_len;
    size_t len;               /* bytes in buf (lingering: bytes discarded) */
    size_t hlen;              /* header length, once complete */
    char buf[GF_REQUEST_MAX]; /* the request header, and maybe bytes after it */
};

/* A list in deadline order (every entry's deadline is since_ms plus the same constant). */
struct gfs_list {
    struct gfs_conn *head, *tail;
    unsigned n;
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
    /* The listener: written under accept_lock only (closed by the boss at the stop), read by
     * the workers under it. -1 once closed. */
    int listen_fd;
    int wake[2]; /* pipe: gfs_stop and workers (new connections, room in the queue) wake the boss */
    int epfd;    /* boss's epoll set: wake[0], waiting and lingering connections */
    /* The idle workers' epoll set, each worker waiting in it for one event at a time: the
     * listener and qfd, both EPOLLONESHOT (one worker takes an event; it re-arms it). */
    int wepfd;
    int qfd;        /* eventfd (semaphore): one count per item pushed to q, and at the stop one
                     * per worker, so that each wakes and exits */
    char wake_mark; /* its address tags wake[0]'s epoll events */
    char qfd_mark;  /* its address tags qfd's events in wepfd (the listener's tag is NULL) */
    /* The accepting worker's state (one at a time: the listener is EPOLLONESHOT). */
    pthread_mutex_t accept_lock;
    int64_t pause_until; /* guarded by accept_lock: accept paused (EMFILE & co) until then */
    int64_t last_report; /* guarded by accept_lock: the last GFS_EV_ACCEPT_PAUSED */
    int armed;           /* guarded by accept_lock: the listener is armed in wepfd */
    /* Connections accepted by a worker without a complete header, for the boss, in accept
     * order. Guarded by accept_lock. */
    struct gfs_conn *inbox_head, *inbox_tail;
    struct gfs_list waiting, lingering, ready; /* boss only */
    struct gfs_conn **buckets; /* boss only: every held connection, by client address */
    size_t nbuckets;           /* a power of two */
    uint16_t port;
    int ran;        /* gfs_run was called (boss only) */
    struct workq q; /* struct gfs_conn * with a complete header, boss -> workers */
    struct gfs_worker *workers;
    void **worker_args;   /* our copy of opt.worker_args */
    atomic_int stop_req;  /* gfs_stop was called */
    atomic_int stopping;  /* the boss has stopped accepting */
    atomic_int cancelled; /* the grace period is over */
    atomic_int want_room; /* the boss holds requests the full queue refused */
    pthread_mutex_t lock; /* guards alive and every worker's fd */
    pthread_cond_t idle;  /* signalled when a worker exits */
    unsigned alive;       /* workers not yet exited */
};

struct gfs_ctx {
    struct gfserver *srv;                /* NULL for a sink ctx */
    const struct gfs_sink_ops *sink_ops; /* a sink ctx's output (gfs_ctx_sink_new), else NULL */
    void *sink;
    int fd;
    int header_sent;
    int broken; /* 0, or the -errno of a failed send: nothing more may be written */
    enum gf_status status;
    uint64_t length; /* announced, for GF_OK */
    uint64_t sent;
    int64_t start_ms;  /* the handler was called (the response deadline counts from here) */
    int64_t waited_ms; /* time spent in writes since the current rate window began ... */
    uint64_t mark_out; /* ... with this many bytes (header included) written */
    uint64_t out;      /* bytes written so far, header included */
    const char *note;  /* gfs_ctx_set_note */
};

/* The deadline of the next piece of a response: the stall allowance (reset once need bytes
 * went out since the last mark), capped by the response's total deadline. */
static int64_t piece_deadline(struct gfs_ctx *ctx, uint64_t need, int64_t now)
{
    const struct gfs_options *o = &ctx->srv->opt;

    if (ctx->out - ctx->mark_out >= need) {
        ctx->waited_ms = 0;
        ctx->mark_out = ctx->out;
    }
    int64_t deadline = now + o->send_timeout_ms - ctx->waited_ms;
    if (o->response_timeout_ms > 0 && ctx->start_ms + o->response_timeout_ms < deadline)
        deadline = ctx->start_ms + o->response_timeout_ms;
    return deadline;
}

/* Writes part of a response within its limits: no stall longer than send_timeout_ms; at least
 * min_rate bytes/s while we wait on the client: each window of min_rate * send_timeout_ms
 * bytes must go out within send_timeout_ms of time spent in writes (the handler's own time,
 * e.g. waiting for an origin, does not count against the client); and the whole response
 * within response_timeout_ms of the handler's start. Written in pieces of at most one
 * window, so each piece's deadline is its window's. */
static int ctx_write(struct gfs_ctx *ctx, const void *buf, size_t len)
{
    const struct gfs_options *o = &ctx->srv->opt;
    uint64_t need = (uint64_t)o->min_rate * (uint64_t)o->send_timeout_ms / 1000;
    size_t piece = need < 1024 ? 1024 : need > 65536 ? 65536 : (size_t)need;
    const char *p = buf;

    while (len > 0) {
        size_t n = len < piece ? len : piece;
        int64_t now = clock_mono_ms();
        int64_t deadline = piece_deadline(ctx, need, now);
        if (now >= deadline)
            return -ETIMEDOUT;
        int rc = netio_write_all_by(ctx->fd, p, n, o->send_timeout_ms, deadline);
        ctx->waited_ms += clock_mono_ms() - now;
        if (rc < 0)
            return rc;
        p += n;
        len -= n;
        ctx->out += n;
    }
    return 0;
}

/* ctx_write for len bytes of file fd from off, with sendfile: the same limits and pieces. */
static int ctx_sendfile(struct gfs_ctx *ctx, int fd, uint64_t off, uint64_t len)
{
    const struct gfs_options *o = &ctx->srv->opt;
    uint64_t need = (uint64_t)o->min_rate * (uint64_t)o->send_timeout_ms / 1000;
    /* Larger pieces than ctx_write's: each is one system call with no copy. */
    uint64_t piece = need < 65536 ? 65536 : need > (1u << 20) ? (1u << 20) : need;

    while (len > 0) {
        uint64_t n = len < piece ? len : piece, start = off;
        int64_t now = clock_mono_ms();
        int64_t deadline = piece_deadline(ctx, need, now);
        if (now >= deadline)
            return -ETIMEDOUT;
        int rc = netio_sendfile_all_by(ctx->fd, fd, &off, (size_t)n, o->send_timeout_ms, deadline);
        ctx->waited_ms += clock_mono_ms() - now;
        ctx->out += off - start;
        if (rc < 0)
            return rc;
        len -= n;
    }
    return 0;
}

/* How a worker ends a connection. */
enum gfs_close {
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

/* Serves one complete request up to (not including) the close; says how to close it, and fills
 * what on_done reports about the request (all but the peer and the duration). */
static enum gfs_close serve(struct gfs_worker *w, const struct gfs_conn *c, struct gfs_done *d)
{
    struct gfserver *s = w->srv;
    struct gf_request req;
    int fd = c->fd, rc;

    if (gf_parse_request(c->buf, c->hlen, &req) <= 0)
        return GFS_CLOSE_ABORT; /* cannot happen: the boss parsed it */
    /* The handler gets a NUL-terminated copy of the path. */
    memcpy(w->path, req.path, req.path_len);
    w->path[req.path_len] = '\0';
    int extra = c->len > c->hlen;
    struct gfs_ctx ctx = {.srv = s, .fd = fd, .start_ms = clock_mono_ms()};

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

static struct gfs_conn *accept_one(struct gfs_worker *w);

/* Re-arms a EPOLLONESHOT fd of wepfd, tagged with ptr. */
static void rearm(struct gfserver *s, int fd, void *ptr)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = ptr};

    epoll_ctl(s->wepfd, EPOLL_CTL_MOD, fd, &ev);
}

/* Waits for the next connection to serve: one this worker accepts with its header, or one the
 * boss queued. NULL when the worker must exit (the server stopped and the queue is empty). */
static struct gfs_conn *next_conn(struct gfs_worker *w)
{
    struct gfserver *s = w->srv;
    struct epoll_event ev;
    uint64_t one;
    void *item;

    for (;;) {
        int n = epoll_wait(s->wepfd, &ev, 1, -1);
        if (n < 0 && errno != EINTR)
            clock_sleep_ms(GFS_ACCEPT_PAUSE_MS); /* ENOMEM: nothing better to do */
        if (n <= 0)
            continue;
        if (ev.data.ptr == NULL) {
            struct gfs_conn *c = accept_one(w);
            if (c != NULL)
                return c;
            continue;
        }
        /* qfd: one count is ours; the event goes on to the next worker if more are left. */
        ssize_t r = read(s->qfd, &one, sizeof one);
        rearm(s, s->qfd, &s->qfd_mark);
        if (r != (ssize_t)sizeof one)
            continue;
        if (workq_trypop(&s->q, &item) == 0) {
            if (atomic_exchange(&s->want_room, 0))
                wake_boss(s);
            return item;
        }
        /* Every item's count is written after its push, so an empty queue means a count of
         * the stop's: the queue is closed and drained. */
        return NULL;
    }
}

static void *worker_main(void *p)
{
    struct gfs_worker *w = p;
    struct gfserver *s = w->srv;
    struct gfs_conn *c;

    while ((c = next_conn(w)) != NULL) {
        if (!claim(w, c->fd)) {
            close_abort(c->fd); /* queued, never started, and the grace period is over */
            free(c);
            continue;
        }
        struct gfs_done d = {
            .status = -1, .peer = (const struct sockaddr *)&c->peer, .peer_len = c->peer_len};
        enum gfs_close how = serve(w, c, &d);
        if (s->opt.on_done) {
            d.duration_ns = clock_mono_ns() - c->accepted_ns;
            s->opt.on_done(&d, s->opt.done_arg);
        }
        if (how == GFS_CLOSE_LINGER || how == GFS_CLOSE_DRAIN)
            linger_input(w, c->fd, how == GFS_CLOSE_DRAIN);
        /* Unclaim before close: the boss may shut down a claimed fd, never a reused one. */
        unclaim(w);
        if (how == GFS_CLOSE_ABORT || atomic_load(&s->cancelled))
            close_abort(c->fd);
        else
            close(c->fd);
        free(c);
    }
    pthread_mutex_lock(&s->lock);
    s->alive--;
    pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- The boss's connections: accepted, not yet handed to a worker. ---- */

static void list_add(struct gfs_list *l, struct gfs_conn *c, int at_head)
{
    c->prev = at_head ? NULL : l->tail;
    c->next = at_head ? l->head : NULL;
    if (c->prev)
        c->prev->next = c;
    else
        l->head = c;
    if (c->next)
        c->next->prev = c;
    else
        l->tail = c;
    c->list = l;
    l->n++;
}

static void list_del(struct gfs_conn *c)
{
    struct gfs_list *l = c->list;

    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
    c->list = NULL;
    l->n--;
}

static unsigned held(const struct gfserver *s)
{
    return s->waiting.n + s->lingering.n + s->ready.n;
}

static int same_addr(const struct gfs_conn *a, const struct gfs_conn *b)
{
    return a->family == b->family && memcmp(a->addr, b->addr, sizeof a->addr) == 0;
}

static struct gfs_conn **bucket_of(const struct gfserver *s, const struct gfs_conn *c)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    for (size_t i = 0; i < sizeof c->addr; i++)
        h = (h ^ c->addr[i]) * 1099511628211ull;
    h = (h ^ (unsigned)c->family) * 1099511628211ull;
    return &s->buckets[h & (s->nbuckets - 1)];
}

static void hash_add(struct gfserver *s, struct gfs_conn *c)
{
    struct gfs_conn **b = bucket_of(s, c);

    c->hnext = *b;
    *b = c;
}

static void hash_del(struct gfserver *s, struct gfs_conn *c)
{
    struct gfs_conn **p = bucket_of(s, c);

    while (*p && *p != c)
        p = &(*p)->hnext;
    if (*p)
        *p = c->hnext;
    c->hnext = NULL;
}

/* Closes a connection the boss holds (close() also drops it from the epoll set). */
/* on_done for a connection the boss ends itself: answered INVALID (status), or closed without
 * a request (-1). */
static void done_by_boss(struct gfserver *s, const struct gfs_conn *c, int status)
{
    struct gfs_done d = {
        .status = status, .peer = (const struct sockaddr *)&c->peer, .peer_len = c->peer_len};

    if (s->opt.on_done == NULL)
        return;
    d.duration_ns = clock_mono_ns() - c->accepted_ns;
    s->opt.on_done(&d, s->opt.done_arg);
}

static void drop(struct gfserver *s, struct gfs_conn *c, int abort)
{
    if (c->list == &s->waiting)
        done_by_boss(s, c, -1); /* no request came (a probe, a late or evicted client) */
    hash_del(s, c);
    list_del(c);
    if (abort)
        close_abort(c->fd);
    else
        close(c->fd);
    free(c);
}

/* Connections the boss holds from c's client address (c itself not counted). The bucket
 * holds at most max_per_client of any one address, plus the few that collide. */
static unsigned count_addr(const struct gfserver *s, const struct gfs_conn *c)
{
    unsigned n = 0;

    for (const struct gfs_conn *o = *bucket_of(s, c); o; o = o->hnext)
        n += o != c && same_addr(o, c);
    return n;
}

/* Answers INVALID without blocking (an answer this short always fits an empty send buffer),
 * then lingers: half-closed, input discarded until the peer closes (GFS_LINGER_MS,
 * GFS_LINGER_BYTES), so that a reset does not destroy the answer. */
static void answer_invalid(struct gfserver *s, struct gfs_conn *c)
{
    char hdr[GF_RESPONSE_MAX];
    ssize_t n = gf_format_response(hdr, sizeof hdr, GF_INVALID, 0, s->opt.framing), w;

    do {
        w = send(c->fd, hdr, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    if (w != n || shutdown(c->fd, SHUT_WR) < 0) {
        drop(s, c, 1);
        return;
    }
    done_by_boss(s, c, GF_INVALID);
    list_del(c);
    c->since_ms = clock_mono_ms();
    c->len = 0; /* now counts discarded bytes */
    list_add(&s->lingering, c, 0);
}

/* Parses the header bytes a waiting connection has sent so far: complete (to the ready list),
 * malformed (INVALID), or a valid prefix (it waits for more). */
static void parse_waiting(struct gfserver *s, struct gfs_conn *c)
{
    struct gf_request req;
    ssize_t n = gf_parse_request(c->buf, c->len, &req);

    if (n == 0 && c->len < sizeof c->buf)
        return; /* a valid prefix: wait for more */
    if (n <= 0 || !gf_path_valid(req.path, req.path_len)) {
        answer_invalid(s, c);
        return;
    }
    c->hlen = (size_t)n;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    list_del(c);
    list_add(&s->ready, c, 0);
}

/* Reads what a connection waiting for its header has sent, and parses it. */
static void on_waiting_input(struct gfserver *s, struct gfs_conn *c)
{
    ssize_t n;

    do {
        n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        drop(s, c, n < 0); /* closed before the terminator: nothing unread, no reset */
        return;
    }
    c->len += (size_t)n;
    parse_waiting(s, c);
}

static void on_lingering_input(struct gfserver *s, struct gfs_conn *c)
{
    char buf[4096];
    ssize_t n;

    do {
        n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n > 0)
        c->len += (size_t)n;
    if (n <= 0 || c->len >= GFS_LINGER_BYTES)
        drop(s, c, 0);
}

/* Hands complete requests to the workers, oldest first, without waiting. */
static void queue_ready(struct gfserver *s)
{
    while (s->ready.head) {
        struct gfs_conn *c = s->ready.head;
        list_del(c); /* before the push: a worker may free it at once */
        hash_del(s, c);
        int rc = workq_push(&s->q, c, 0);
        if (rc == -ETIMEDOUT) {
            /* Ask for a wake-up, then retry: a pop that came before the flag made room we
             * see now; one that comes after it writes the wake pipe. */
            atomic_store(&s->want_room, 1);
            rc = workq_push(&s->q, c, 0);
        }
        if (rc != 0) {
            list_add(&s->ready, c, 1);
            hash_add(s, c);
            return;
        }
        uint64_t one = 1; /* after the push: a worker that reads the count finds the item */
        ssize_t w;
        do {
            w = write(s->qfd, &one, sizeof one);
        } while (w < 0 && errno == EINTR);
    }
}

/* Makes room for one more connection: the oldest lingering one goes first (it has its
 * answer), then the oldest one still waiting for its header. 0, or -EBUSY when every held
 * connection has a complete request. */
static int evict_one(struct gfserver *s)
{
    struct gfs_conn *c = s->lingering.head ? s->lingering.head : s->waiting.head;

    if (c == NULL)
        return -EBUSY;
    drop(s, c, 1);
    return 0;
}

/* A new connection's record: its address and accept time; TCP_NODELAY set. NULL (the socket
 * reset) when out of memory. */
static struct gfs_conn *conn_new(int fd, const struct sockaddr_storage *ss, socklen_t sl)
{
    struct gfs_conn *c = calloc(1, sizeof *c);
    int one = 1;

    if (c == NULL) {
        close_abort(fd);
        return NULL;
    }
    c->fd = fd;
    c->accepted_ns = clock_mono_ns();
    c->since_ms = c->accepted_ns / 1000000;
    c->family = ss->ss_family;
    c->peer = *ss;
    c->peer_len = sl;
    if (ss->ss_family == AF_INET)
        memcpy(c->addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    else if (ss->ss_family == AF_INET6)
        memcpy(c->addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
}

/* Takes a connection a worker accepted without a complete header into the waiting set, within
 * the limits, and parses what it has sent so far. */
static void admit(struct gfserver *s, struct gfs_conn *c)
{
    if (count_addr(s, c) >= s->opt.max_per_client ||
        (held(s) >= s->opt.max_waiting && evict_one(s) < 0)) {
        emit(s, GFS_EV_REFUSED, 0);
        close_abort(c->fd);
        free(c);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        close_abort(c->fd);
        free(c);
        return;
    }
    list_add(&s->waiting, c, 0);
    hash_add(s, c);
    if (c->len > 0)
        parse_waiting(s, c);
    if (c->list == &s->waiting)
        on_waiting_input(s, c); /* more may have come since */
}

/* Admits, in accept order, the connections the workers handed over. */
static void take_inbox(struct gfserver *s)
{
    struct gfs_conn *c;

    pthread_mutex_lock(&s->accept_lock);
    c = s->inbox_head;
    s->inbox_head = s->inbox_tail = NULL;
    pthread_mutex_unlock(&s->accept_lock);
    while (c != NULL) {
        struct gfs_conn *next = c->next;
        c->next = NULL;
        admit(s, c);
        c = next;
    }
}

/* 1 when a new connection's header came with it (read without waiting): the worker serves it
 * at once. Otherwise what was read stays in c->buf for the boss. */
static int header_came(struct gfs_conn *c)
{
    struct gf_request req;
    ssize_t n;

    do {
        n = recv(c->fd, c->buf, sizeof c->buf, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n <= 0)
        return 0; /* nothing yet, or the end or an error: the boss sees it again */
    c->len = (size_t)n;
    n = gf_parse_request(c->buf, c->len, &req);
    if (n <= 0 || !gf_path_valid(req.path, req.path_len))
        return 0;
    c->hlen = (size_t)n;
    return 1;
}

/* What a failed accept4 means: 0 to go on (nothing pending, or that connection failed), 1 to
 * pause (EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection stays in the backlog and the
 * listener stays readable, so retrying now would spin). Called under accept_lock. */
static int accept_failed(struct gfserver *s, int err)
{
    switch (err) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
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
        return 0;
    default:
        s->pause_until = clock_mono_ms() + GFS_ACCEPT_PAUSE_MS;
        if (clock_mono_ms() - s->last_report >= GFS_EVENT_INTERVAL_MS) {
            s->last_report = clock_mono_ms();
            emit(s, GFS_EV_ACCEPT_PAUSED, err);
        }
        return 1;
    }
}

/* The listener's event in an idle worker: accepts one connection. Returns it when its header
 * came with it (the worker serves it: no handoff); one still sending its header goes to the
 * boss, which reads it without a worker. Then re-arms the listener for the next idle worker
 * (after the handover, so the boss gets connections in accept order), unless accepting must
 * pause: the boss re-arms it then. */
static struct gfs_conn *accept_one(struct gfs_worker *w)
{
    struct gfserver *s = w->srv;
    struct gfs_conn *c = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int pause = 0, handed = 0;

    pthread_mutex_lock(&s->accept_lock);
    s->armed = 0;
    if (s->listen_fd < 0) {
        pthread_mutex_unlock(&s->accept_lock);
        return NULL; /* stopped */
    }
    int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        pause = accept_failed(s, errno);
    else
        c = conn_new(fd, &ss, sl);
    if (c != NULL && !header_came(c)) {
        if (s->inbox_tail)
            s->inbox_tail->next = c;
        else
            s->inbox_head = c;
        s->inbox_tail = c;
        c = NULL;
        handed = 1;
    }
    if (!pause) {
        rearm(s, s->listen_fd, NULL);
        s->armed = 1;
    }
    pthread_mutex_unlock(&s->accept_lock);
    if (handed || pause)
        wake_boss(s); /* the connection to admit, or the pause to end */
    return c;
}

/* After a pause: re-arms the listener once it is over. Returns when to look again, or -1. */
static int64_t accept_resume(struct gfserver *s, int64_t now)
{
    int64_t next = -1;

    pthread_mutex_lock(&s->accept_lock);
    if (!s->armed && s->listen_fd >= 0) {
        if (now >= s->pause_until) {
            rearm(s, s->listen_fd, NULL);
            s->armed = 1;
        } else {
            next = s->pause_until;
        }
    }
    pthread_mutex_unlock(&s->accept_lock);
    return next;
}

/* Closes the listener (the backlog is reset); no worker accepts or hands over after this. */
static void close_listener(struct gfserver *s)
{
    pthread_mutex_lock(&s->accept_lock);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    s->listen_fd = -1;
    pthread_mutex_unlock(&s->accept_lock);
}

/* Ends what is past its deadline: headers not complete in time get INVALID, lingering
 * closes are closed. Both lists are in deadline order. Returns the next deadline, or -1. */
static int64_t expire(struct gfserver *s, int64_t now)
{
    int64_t next = -1;

    while (s->lingering.head && s->lingering.head->since_ms + GFS_LINGER_MS <= now)
        drop(s, s->lingering.head, 0);
    while (s->waiting.head && s->waiting.head->since_ms + s->opt.header_timeout_ms <= now)
        answer_invalid(s, s->waiting.head);
    if (s->lingering.head)
        next = s->lingering.head->since_ms + GFS_LINGER_MS;
    if (s->waiting.head) {
        int64_t w = s->waiting.head->since_ms + s->opt.header_timeout_ms;
        if (next < 0 || w < next)
            next = w;
    }
    return next;
}

/* The boss loop: takes the connections the workers handed over, reads their request headers,
 * queues complete requests, ends accept pauses. Returns when a stop is requested and, after
 * that, when it holds nothing more or the grace period (from *deadline, set at the stop) is
 * over. */
static void boss_loop(struct gfserver *s, const sigset_t *waitmask, int64_t *deadline)
{
    struct epoll_event evs[64];

    /* Signals that stop us are blocked except inside epoll_pwait, so one that arrives after
     * this test stays pending until epoll_pwait unblocks it and returns EINTR. */
    for (;;) {
        int64_t now = clock_mono_ms();
        if (!atomic_load(&s->stopping) && stop_requested(s)) {
            close_listener(s);
            atomic_store(&s->stopping, 1);
            *deadline = now + s->opt.shutdown_grace_ms;
            if (s->opt.on_event)
                s->opt.on_event(GFS_EV_STOPPING, 0, s->opt.event_arg);
        }
        take_inbox(s); /* none comes after the listener's close */
        if (atomic_load(&s->stopping) && (held(s) == 0 || now >= *deadline))
            return;
        queue_ready(s);
        int64_t next = expire(s, now), resume = accept_resume(s, now);
        if (resume >= 0 && (next < 0 || resume < next))
            next = resume;
        if (atomic_load(&s->stopping) && (next < 0 || *deadline < next))
            next = *deadline;
        int timeout = next < 0 ? -1 : clock_ms_left(next);
        if (s->opt.stop_flag && (timeout < 0 || timeout > GFS_FLAG_TICK_MS))
            timeout = GFS_FLAG_TICK_MS;
        int n = epoll_pwait(s->epfd, evs, sizeof evs / sizeof evs[0], timeout, waitmask);
        if (n < 0) {
            if (errno != EINTR)
                clock_sleep_ms(GFS_ACCEPT_PAUSE_MS); /* ENOMEM: nothing better to do */
            continue;
        }
        /* Handling a connection's input drops at most that connection, so every pointer in
         * this batch stays valid; admitting (which may evict others) comes at the next turn. */
        for (int i = 0; i < n; i++) {
            struct gfs_conn *c = evs[i].data.ptr;
            if ((void *)c == (void *)&s->wake_mark)
                drain_wake(s);
            else if (c->list == &s->waiting)
                on_waiting_input(s, c);
            else if (c->list == &s->lingering)
                on_lingering_input(s, c);
        }
    }
}

/* After the boss loop: cuts what the boss still holds, lets the workers finish in-flight and
 * queued requests until the grace deadline, then cuts what is left, and joins every worker. */
static void shut_down(struct gfserver *s, int64_t deadline, unsigned nstarted)
{
    struct gfs_list *lists[] = {&s->waiting, &s->lingering, &s->ready};
    int cut = 0;
    uint64_t exits = nstarted;
    ssize_t w;

    close_listener(s);
    atomic_store(&s->stopping, 1);
    pthread_mutex_lock(&s->accept_lock);
    struct gfs_conn *c = s->inbox_head;
    s->inbox_head = s->inbox_tail = NULL;
    pthread_mutex_unlock(&s->accept_lock);
    while (c != NULL) {
        struct gfs_conn *next = c->next;
        done_by_boss(s, c, -1);
        close_abort(c->fd);
        free(c);
        cut++;
        c = next;
    }
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        while (lists[i]->head) {
            cut += lists[i] != &s->lingering; /* a lingering one has had its answer */
            drop(s, lists[i]->head, 1);
        }
    }
    workq_close(&s->q);
    /* One count per worker more than there are items: each wakes, finds the queue empty once it
     * is drained, and exits. */
    do {
        w = write(s->qfd, &exits, sizeof exits);
    } while (w < 0 && errno == EINTR);

    pthread_mutex_lock(&s->lock);
    while (s->alive > 0) {
        struct timespec until = clock_mono_at(deadline);
        if (pthread_cond_timedwait(&s->idle, &s->lock, &until) == ETIMEDOUT)
            break;
    }
    if (s->alive > 0) {
        /* Set under the lock, so a worker claiming a connection after this sees it. */
        atomic_store(&s->cancelled, 1);
        for (unsigned i = 0; i < nstarted; i++) {
            if (s->workers[i].fd >= 0) {
                /* Wakes a worker blocked on this socket; it closes the fd itself. */
                shutdown(s->workers[i].fd, SHUT_RDWR);
                cut++;
            }
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (cut > 0)
        emit(s, GFS_EV_CUT, cut);
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

    int64_t deadline = clock_mono_ms() + s->opt.shutdown_grace_ms;
    if (rc == 0)
        boss_loop(s, &waitmask, &deadline);
    shut_down(s, deadline, started);
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
    if (ctx->sink_ops != NULL)
        return ctx->sink_ops->stopping(ctx->sink);
    return atomic_load(&ctx->srv->stopping);
}

int gfs_ctx_cancelled(const struct gfs_ctx *ctx)
{
    if (ctx->sink_ops != NULL)
        return ctx->sink_ops->cancelled(ctx->sink);
    return atomic_load(&ctx->srv->cancelled);
}

void gfs_ctx_set_validators(struct gfs_ctx *ctx, const char *etag, const char *last_modified)
{
    if (ctx->sink_ops != NULL && ctx->sink_ops->validators != NULL)
        ctx->sink_ops->validators(ctx->sink, etag, last_modified);
}

int gfs_ctx_sink_new(struct gfs_ctx **out, const struct gfs_sink_ops *ops, void *sink)
{
    struct gfs_ctx *ctx = calloc(1, sizeof *ctx);

    if (ctx == NULL)
        return -ENOMEM;
    ctx->fd = -1;
    ctx->sink_ops = ops;
    ctx->sink = sink;
    *out = ctx;
    return 0;
}

void gfs_ctx_sink_free(struct gfs_ctx *ctx)
{
    free(ctx);
}

int gfs_ctx_status(const struct gfs_ctx *ctx)
{
    return ctx->header_sent ? (int)ctx->status : -1;
}

const char *gfs_ctx_note(const struct gfs_ctx *ctx)
{
    return ctx->note;
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

/* For a socket ctx: formats the header into hdr (GF_RESPONSE_MAX bytes) and marks it promised.
 * Returns its length, or -ECANCELED / the format's error with nothing promised. */
static ssize_t promise_header(struct gfs_ctx *ctx, enum gf_status st, uint64_t length, char *hdr)
{
    ssize_t n;

    if (atomic_load(&ctx->srv->cancelled))
        return -ECANCELED;
    n = gf_format_response(hdr, GF_RESPONSE_MAX, st, st == GF_OK ? length : 0,
                           ctx->srv->opt.framing);
    if (n < 0)
        return n;
    ctx->header_sent = 1;
    ctx->status = st;
    ctx->length = st == GF_OK ? length : 0;
    return n;
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
    if (ctx->sink_ops != NULL) {
        ctx->header_sent = 1;
        ctx->status = st;
        ctx->length = st == GF_OK ? length : 0;
        rc = ctx->sink_ops->header(ctx->sink, st, ctx->length);
        if (rc < 0)
            ctx->broken = rc;
        return rc;
    }
    n = promise_header(ctx, st, length, hdr);
    if (n < 0)
        return (int)n;
    rc = ctx_write(ctx, hdr, (size_t)n);
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
    if (ctx->sink_ops != NULL) {
        rc = ctx->sink_ops->send(ctx->sink, buf, len);
        if (rc < 0) {
            ctx->broken = rc;
            return rc;
        }
        ctx->sent += len;
        return 0;
    }
    if (atomic_load(&ctx->srv->cancelled)) {
        ctx->broken = -ECANCELED;
        return -ECANCELED;
    }
    rc = ctx_write(ctx, buf, len);
    if (rc < 0) {
        ctx->broken = rc;
        return rc;
    }
    ctx->sent += len;
    return 0;
}

int gfs_send_ok(struct gfs_ctx *ctx, const void *buf, size_t len)
{
    char one[GF_RESPONSE_MAX + GFS_SMALL_MAX];
    ssize_t n;
    int rc;

    if (ctx->sink_ops != NULL || len > GFS_SMALL_MAX) {
        rc = gfs_send_header(ctx, GF_OK, len);
        return rc < 0 ? rc : gfs_send(ctx, buf, len);
    }
    if (ctx->header_sent)
        return -EALREADY;
    n = promise_header(ctx, GF_OK, len, one);
    if (n < 0)
        return (int)n;
    if (len > 0)
        memcpy(one + n, buf, len);
    rc = ctx_write(ctx, one, (size_t)n + len);
    if (rc < 0) {
        ctx->broken = rc;
        return rc;
    }
    ctx->sent = len;
    return 0;
}

/* gfs_send_file for a sink: the bytes read into a buffer and handed to the sink. */
static int sink_send_file(struct gfs_ctx *ctx, int fd, uint64_t off, uint64_t len)
{
    size_t cap = len < 65536 ? (size_t)len : 65536;
    char *buf = malloc(cap);
    int rc = 0;

    if (buf == NULL)
        return -ENOMEM;
    while (len > 0 && rc == 0) {
        size_t want = len < cap ? (size_t)len : cap;
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -ENODATA;
            break;
        }
        rc = ctx->sink_ops->send(ctx->sink, buf, (size_t)n);
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    free(buf);
    return rc;
}

int gfs_send_file(struct gfs_ctx *ctx, int fd, uint64_t offset, uint64_t len)
{
    int rc;

    if (!ctx->header_sent || ctx->status != GF_OK)
        return -EPROTO;
    if (ctx->broken)
        return ctx->broken;
    if (len > ctx->length - ctx->sent)
        return -EMSGSIZE;
    if (len == 0)
        return 0;
    if (ctx->sink_ops != NULL) {
        rc = -ENOTSUP;
        if (ctx->sink_ops->send_fd != NULL)
            rc = ctx->sink_ops->send_fd(ctx->sink, fd, offset, len);
        if (rc == -ENOTSUP)
            rc = sink_send_file(ctx, fd, offset, len);
    } else if (atomic_load(&ctx->srv->cancelled))
        rc = -ECANCELED;
    else
        rc = ctx_sendfile(ctx, fd, offset, len);
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
    if (o->queue_depth > GFS_MAX_QUEUE || o->max_waiting > GFS_WAITING_MAX || o->backlog < 0 ||
        o->header_timeout_ms < 0 || o->send_timeout_ms < 0 || o->shutdown_grace_ms < 0 ||
        o->response_timeout_ms < 0 ||
        (o->framing != GF_FRAMING_DOCUMENTED && o->framing != GF_FRAMING_LEGACY))
        return -EINVAL;
    if (o->queue_depth == 0)
        o->queue_depth = 4 * o->nthreads;
    if (o->backlog == 0)
        o->backlog = 1024;
    if (o->header_timeout_ms == 0)
        o->header_timeout_ms = 60000;
    if (o->send_timeout_ms == 0)
        o->send_timeout_ms = 10000;
    if (o->shutdown_grace_ms == 0)
        o->shutdown_grace_ms = 5000;
    if (o->min_rate == 0)
        o->min_rate = GFS_MIN_RATE_DEF;
    if (o->max_per_client == 0)
        o->max_per_client = GFS_PER_CLIENT_DEF;
    if (o->max_waiting == 0) {
        struct rlimit rl;
        rlim_t half = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur / 2 : 512;
        o->max_waiting = half < 16 ? 16 : half > GFS_WAITING_MAX ? GFS_WAITING_MAX : (unsigned)half;
    }
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
    s->listen_fd = s->wake[0] = s->wake[1] = s->epfd = s->wepfd = s->qfd = -1;
    s->last_report = INT64_MIN / 2;
    rc = check_options(&s->opt);
    if (rc < 0)
        goto err_free;
    for (s->nbuckets = 64; s->nbuckets < s->opt.max_waiting; s->nbuckets *= 2)
        ;
    s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
    s->workers = calloc(s->opt.nthreads, sizeof *s->workers);
    s->worker_args = calloc(s->opt.nthreads, sizeof *s->worker_args);
    if (s->workers == NULL || s->worker_args == NULL || s->buckets == NULL) {
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
    pthread_mutex_init(&s->accept_lock, NULL);
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
    /* A connection is accepted once its first bytes came (or after ~1 s without any), so the
     * worker that accepts it finds its header nearly always: measured with 8 clients, half the
     * connections had none yet without it, and each of those costs two thread wake-ups more
     * (boss, then a worker). Best effort: without it, those go through the boss. */
    int defer_s = 1;
    (void)setsockopt(s->listen_fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_s, sizeof defer_s);
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->wepfd = epoll_create1(EPOLL_CLOEXEC);
    s->qfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
    if (s->epfd < 0 || s->wepfd < 0 || s->qfd < 0) {
        rc = -errno;
        goto err_epoll;
    }
    struct epoll_event lev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = NULL};
    struct epoll_event qev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = &s->qfd_mark};
    struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &s->wake_mark};
    if (epoll_ctl(s->wepfd, EPOLL_CTL_ADD, s->listen_fd, &lev) < 0 ||
        epoll_ctl(s->wepfd, EPOLL_CTL_ADD, s->qfd, &qev) < 0 ||
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wake[0], &wev) < 0) {
        rc = -errno;
        goto err_epoll;
    }
    s->armed = 1;
    s->opt.host = NULL; /* borrowed; not needed after the bind */
    *out = s;
    return 0;

err_epoll:
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->wepfd >= 0)
        close(s->wepfd);
    if (s->qfd >= 0)
        close(s->qfd);
err_listen:
    close(s->listen_fd);
err_pipe:
    close(s->wake[0]);
    close(s->wake[1]);
err_cond:
    pthread_cond_destroy(&s->idle);
err_queue:
    pthread_mutex_destroy(&s->accept_lock);
    pthread_mutex_destroy(&s->lock);
    workq_release(&s->q);
err_free:
    free(s->buckets);
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
    while (s->inbox_head != NULL) { /* only when gfs_run never ran */
        struct gfs_conn *c = s->inbox_head;
        s->inbox_head = c->next;
        close(c->fd);
        free(c);
    }
    workq_release(&s->q);
    close(s->epfd);
    close(s->wepfd);
    close(s->qfd);
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->accept_lock);
    pthread_mutex_destroy(&s->lock);
    free(s->buckets);
    free(s->workers);
    free(s->worker_args);
    free(s);
}
