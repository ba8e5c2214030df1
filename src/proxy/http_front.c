/* http_front.c - the proxy's handlers over HTTP/1.1, with libmicrohttpd. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* strptime, timegm, accept4 flags */
#include "http_front.h"

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <linux/sockios.h> /* SIOCOUTQ */
#include <linux/tcp.h>     /* tcp_info with tcpi_bytes_acked */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "gf_proto.h"
#include "hexdigit.h"
#include "log.h"
#include "map_keep.h"
#include "workq.h"

#define BODY_BLOCK     (256u << 10) /* libmicrohttpd's body buffer per response */
#define MEMORY_LIMIT   (32u << 10)  /* per connection: request header and reply header */
#define MMAP_ABOVE     (4u << 20)   /* malloc: mmap only blocks above this */
#define TRIM_KEEP      (8u << 20)   /* malloc: free memory kept at an arena's top */
#define WATCH_TICK_MS  50           /* the watcher's header-deadline and stop checks */
#define WAIT_SLICE_MS  100          /* a worker's wait for the client, between checks */
#define VALIDATOR_MAX  128
#define MAX_WORKERS    4096
#define MAX_IO_THREADS 4
#define CONDITION_MAX  1024         /* longest If-None-Match kept */
#define SMALL_MAX      (64u << 10)  /* bodies up to this long are gathered, then answered */
#define MAP_KEEP_BYTES (1ull << 30) /* kept mappings: bytes mapped at most ... */
#define MAP_KEEP_FILES 256u         /* ... and files */

/* One connection, for the header deadline; guarded by http_front.conns_lock. */
struct hconn {
    struct hconn *prev, *next;
    int fd;              /* libmicrohttpd's socket: valid until its CLOSED notification */
    int busy;            /* a request's header is complete and not yet answered in full */
    int cut;             /* shut down for a late header */
    unsigned requests;   /* requests begun on the connection */
    int64_t deadline_ms; /* when not busy: the next request header must be complete by then */
};

struct http_front {
    struct http_front_options opt;
    int lfd;
    uint16_t port;
    struct MHD_Daemon *mhd;
    struct workq q;
    int q_ready;
    pthread_t *workers;
    unsigned nworkers; /* started */
    pthread_t watcher;
    int watching;
    atomic_int stop;       /* http_front_stop asks the watcher to stop */
    atomic_int stopping;   /* gfs_ctx_stopping */
    atomic_int cancelled;  /* gfs_ctx_cancelled: the grace period is over */
    atomic_int active;     /* requests handed to a worker and not yet freed */
    atomic_int fd_said;    /* the first body sent from a file was logged */
    atomic_int map_said;   /* the first body sent from a kept mapping was logged */
    atomic_int quick_said; /* the first request served by quick was logged */
    struct map_keep *maps; /* opt.map_max > 0: files mapped for bodies sent from memory */
    pthread_mutex_t conns_lock;
    struct hconn *conns;        /* every open connection */
    pthread_mutex_t watch_lock; /* taken before a job's lock, never after */
    struct job *watched;        /* bodies from files promised by quick, being sent */
};

/* A range request, as parsed: bytes=first-last, bytes=first-, or bytes=-suffix. */
struct range {
    int set;
    int suffix;           /* bytes=-last: the last `last` bytes */
    uint64_t first, last; /* last = UINT64_MAX for bytes=first- */
};

/* One request. Owned by up to three: the libmicrohttpd request (until its completed
 * callback), the worker (until the handler returned) and the body response (until
 * libmicrohttpd frees it); the last one frees it. */
struct job {
    pthread_mutex_t lock; /* guards the fields marked (L) */
    pthread_cond_t moved; /* (L) the reader took every published byte, or gone/failed */
    struct http_front *h;
    struct MHD_Connection *conn;
    int refs;    /* (L) */
    int started; /* the access handler saw the whole header (libmicrohttpd thread) */
    int fd;      /* the connection's socket (libmicrohttpd's), or -1 */
    struct sockaddr_storage peer; /* the client, for on_done */
    socklen_t peer_len;
    int64_t start_ns; /* the request line arrived */
    int ran;          /* a worker ran the handler: gf_status and note are its */
    int gf_status;    /* what the handler sent (gfs_ctx_status) */
    const char *note; /* gfs_ctx_note */
    unsigned early;   /* the status to answer without a worker (405, 400, ...), or 0 */
    int counted;      /* counted in h->active */
    char *target;     /* the raw request target (URI log callback) */
    char path[GF_PATH_MAX + 1];
    size_t path_len;
    int head;
    int http10; /* an HTTP/1.0 request (libmicrohttpd answers it Connection: close) */
    /* The request's conditions, copied: the worker reads them after the request may end. */
    char *inm;  /* If-None-Match, or NULL */
    time_t ims; /* If-Modified-Since, or -1 */
    struct range range;
    /* The answer, set by the worker (L). */
    int answered;
    unsigned status;   /* HTTP status */
    int body;          /* 200 or 206: the body comes from the handler */
    int discard;       /* the handler's bytes go nowhere (HEAD, 304, 416, errors) */
    uint64_t total;    /* the content's length (OK) */
    uint64_t first;    /* first content byte sent */
    uint64_t body_len; /* bytes of body announced */
    char etag[VALIDATOR_MAX], lastmod[VALIDATOR_MAX];
    /* Handing over body bytes (L). */
    const unsigned char *pub; /* published by the worker, taken by the reader */
    size_t pub_len;
    uint64_t out;      /* body bytes the reader took */
    uint64_t in;       /* content bytes the handler sent (worker only) */
    uint64_t mark_out; /* (L) the rate window began with this many taken ... */
    int64_t waited_ms; /* ... and the worker has waited this long in it */
    /* A body of at most SMALL_MAX bytes is gathered here and answered whole, in one hand-over
     * (and a handler failing midway gets 502, not a short transfer). */
    int small_mode;       /* set with the answer's fields, by the worker */
    unsigned char *small; /* small_mode: the buffer; libmicrohttpd's once answered */
    uint64_t small_len;   /* bytes gathered (worker only) */
    int suspended;        /* (L) we suspended the connection and nobody resumed it */
    int gone;             /* (L) libmicrohttpd finished the request (sent, or the client left) */
    int failed;           /* (L) the body cannot be completed: the reader cuts the connection */
    int finished;         /* (L) the handler returned */
    int completed_ok;     /* (L) libmicrohttpd ended the request as sent in full */
    /* A body libmicrohttpd sends itself from the handler's file (sink_send_fd). */
    int fd_mode;                 /* the content comes from fd_src (worker only) */
    int fd_src;                  /* our dup of the handler's descriptor, for the checks, or -1 */
    uint64_t fd_base;            /* its offset of content byte 0 */
    struct stat fd_st;           /* the file when it was handed to us */
    int fd_body;                 /* (L) the dup libmicrohttpd gets (and closes), or -1 */
    uint64_t fd_hdr;             /* (L) the response header's length as libmicrohttpd sends it */
    struct map_entry *map;       /* (L) or a held mapping of the file: the body is sent from it */
    const unsigned char *map_at; /* its first body byte */
    /* A request served by quick on libmicrohttpd's thread (http_front.h). */
    int quick;                 /* the handler runs there: its sends must not wait */
    unsigned conn_seq;         /* the request's number on its connection, from 1 */
    int watched;               /* in h->watched (watch_lock) until on_completed takes it out */
    struct job *wprev, *wnext; /* (watch_lock) */
    uint64_t w_base;           /* (L) bytes written on the socket before this response */
    uint64_t w_mark;           /* (L) acknowledged bytes when the rate window began ... */
    int64_t w_since_ms;        /* (L) ... at this time */
    int w_rc;                  /* (L) why the body failed after quick returned, or 0 */
};

static int64_t send_timeout(const struct http_front *h)
{
    return h->opt.send_timeout_ms;
}

/* ---- jobs ---------------------------------------------------------------------------------- */

static struct job *job_new(struct http_front *h, const char *target)
{
    struct job *j = calloc(1, sizeof *j);
    pthread_condattr_t ca;

    if (j == NULL)
        return NULL;
    j->target = strdup(target);
    if (j->target == NULL) {
        free(j);
        return NULL;
    }
    pthread_mutex_init(&j->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->moved, &ca);
    pthread_condattr_destroy(&ca);
    j->h = h;
    j->refs = 1; /* the libmicrohttpd request */
    j->start_ns = clock_mono_ns();
    j->gf_status = -1;
    j->fd = -1;
    j->fd_src = -1;
    j->fd_body = -1;
    j->ims = -1;
    return j;
}

static void job_ref(struct job *j)
{
    pthread_mutex_lock(&j->lock);
    j->refs++;
    pthread_mutex_unlock(&j->lock);
}

static void job_unref(struct job *j)
{
    int last;

    pthread_mutex_lock(&j->lock);
    last = --j->refs == 0;
    pthread_mutex_unlock(&j->lock);
    if (!last)
        return;
    if (j->started && j->h->opt.on_done != NULL) {
        struct gfs_done d = {
            .peer = j->peer_len > 0 ? (const struct sockaddr *)&j->peer : NULL,
            .peer_len = j->peer_len,
            .path = j->ran ? j->path : NULL,
            .status = j->gf_status,
            .sent = j->small_mode && j->answered ? j->body_len : j->out,
            .duration_ns = clock_mono_ns() - j->start_ns,
            .note = j->note,
        };
        j->h->opt.on_done(&d, j->h->opt.done_arg);
    }
    if (j->counted)
        atomic_fetch_sub(&j->h->active, 1);
    pthread_cond_destroy(&j->moved);
    pthread_mutex_destroy(&j->lock);
    if (j->fd_body >= 0)
        close(j->fd_body); /* never handed to libmicrohttpd */
    if (j->fd_src >= 0)
        close(j->fd_src); /* a quick request's, for the checks */
    if (j->map != NULL)
        map_keep_put(j->h->maps, j->map);
    free(j->small);
    free(j->inm);
    free(j->target);
    free(j);
}

/* Lets libmicrohttpd go on with the connection if we suspended it. Caller holds j->lock. */
static void job_wake_locked(struct job *j)
{
    if (j->suspended) {
        j->suspended = 0;
        MHD_resume_connection(j->conn);
    }
}

/* Parks the connection until the worker has something for it. Caller holds j->lock; from the
 * access handler or the body reader only (libmicrohttpd's rule). */
static void job_suspend_locked(struct job *j)
{
    if (!j->suspended) {
        j->suspended = 1;
        MHD_suspend_connection(j->conn);
    }
}

/* ---- conditions and ranges ----------------------------------------------------------------- */

/* An HTTP-date (IMF-fixdate; RFC 850 and asctime forms too) as a time, or -1. */
static time_t parse_http_date(const char *s)
{
    static const char *const forms[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                        "%a %b %e %H:%M:%S %Y"};
    struct tm tm;

    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(s, forms[i], &tm);
        if (end != NULL && *end == '\0')
            return timegm(&tm);
    }
    return -1;
}

/* Skips an entity tag's W/ prefix (weak comparison, RFC 9110 8.8.3.2). */
static const char *opaque_tag(const char *t, size_t *len)
{
    if (*len >= 2 && t[0] == 'W' && t[1] == '/') {
        *len -= 2;
        return t + 2;
    }
    return t;
}

/* Non-zero when the If-None-Match list inm names etag (or is "*"). */
static int etag_matches(const char *inm, const char *etag)
{
    size_t elen = strlen(etag);
    const char *e = opaque_tag(etag, &elen);
    const char *p = inm;

    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p != '\0' && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        size_t n = (size_t)(end - start);
        if (n == 1 && start[0] == '*')
            return 1;
        const char *t = opaque_tag(start, &n);
        if (n > 0 && n == elen && memcmp(t, e, n) == 0)
            return 1;
    }
    return 0;
}

static int parse_u64(const char **pp, uint64_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *pp = p;
    *out = v;
    return 0;
}

/* Parses one byte range. Anything else (several ranges, another unit, bad syntax) leaves
 * r->set 0: the Range header is then ignored and the whole file sent (RFC 9110 14.2). */
static void parse_range(const char *s, struct range *r)
{
    const char *p = s;

    memset(r, 0, sizeof *r);
    if (strncasecmp(p, "bytes=", 6) != 0)
        return;
    p += 6;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '-') {
        p++;
        if (parse_u64(&p, &r->last) < 0)
            return;
        r->suffix = 1;
    } else {
        if (parse_u64(&p, &r->first) < 0 || *p++ != '-')
            return;
        r->last = UINT64_MAX;
        if (*p >= '0' && *p <= '9' && parse_u64(&p, &r->last) < 0)
            return;
        if (r->last < r->first)
            return;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '\0')
        return;
    r->set = 1;
}

/* Chooses the answer to an OK of total bytes: 304 (a condition says the client's copy is
 * current), 206 or 416 (a range), else 200. Caller holds j->lock. */
static void decide_ok(struct job *j, uint64_t total)
{
    j->total = total;
    j->first = 0;
    j->body_len = total;
    j->status = MHD_HTTP_OK;
    if (j->inm != NULL
            ? (j->etag[0] != '\0' && etag_matches(j->inm, j->etag))
            : (j->ims >= 0 && j->lastmod[0] != '\0' && parse_http_date(j->lastmod) >= 0 &&
               parse_http_date(j->lastmod) <= j->ims)) {
        j->status = MHD_HTTP_NOT_MODIFIED;
        j->body_len = 0;
    } else if (j->range.set && !j->head) {
        struct range *r = &j->range;
        if (r->suffix ? r->last == 0 || total == 0 : r->first >= total) {
            j->status = MHD_HTTP_RANGE_NOT_SATISFIABLE;
            j->body_len = 0;
        } else {
            j->status = MHD_HTTP_PARTIAL_CONTENT;
            j->first = r->suffix ? total - (r->last < total ? r->last : total) : r->first;
            uint64_t last = r->suffix || r->last >= total ? total - 1 : r->last;
            j->body_len = last - j->first + 1;
        }
    }
    j->body = j->status == MHD_HTTP_OK || j->status == MHD_HTTP_PARTIAL_CONTENT;
    j->discard = !j->body || j->head;
}

/* ---- the sink: what the handler sends ------------------------------------------------------ */

static int sink_header(void *arg, enum gf_status st, uint64_t length)
{
    struct job *j = arg;
    int rc = 0;

    pthread_mutex_lock(&j->lock);
    if (st == GF_OK) {
        decide_ok(j, length);
        if (!j->discard && j->body_len > 0 && j->body_len <= SMALL_MAX &&
            (j->small = malloc(j->body_len)) != NULL) {
            j->small_mode = 1; /* answered once every byte is here */
            pthread_mutex_unlock(&j->lock);
            return 0;
        }
        if (!j->discard && j->body_len > 0) {
            /* Answered with the first bytes (publish): the first read_body call then finds
             * them instead of suspending the connection once more. */
            pthread_mutex_unlock(&j->lock);
            return 0;
        }
    } else {
        j->status = st == GF_FILE_NOT_FOUND ? MHD_HTTP_NOT_FOUND : MHD_HTTP_BAD_GATEWAY;
        j->discard = 1;
    }
    j->answered = 1;
    if (j->gone && !j->discard)
        rc = -EPIPE;
    job_wake_locked(j);
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* Hands n bytes to the body reader and waits until it took them all: the client must take
 * min_rate bytes/s, counted over windows of the send timeout (time the worker spends waiting
 * for its source does not count, as in gfserver). Returns 0 or -errno; on failure the
 * connection is cut. */
static int publish(struct job *j, const unsigned char *p, size_t n)
{
    const struct http_front *h = j->h;
    uint64_t need = (uint64_t)h->opt.min_rate * (uint64_t)h->opt.send_timeout_ms / 1000;
    int rc = 0;

    pthread_mutex_lock(&j->lock);
    j->pub = p;
    j->pub_len = n;
    j->answered = 1;
    job_wake_locked(j);
    while (j->pub_len > 0) {
        if (j->gone) {
            rc = -EPIPE;
            break;
        }
        if (j->failed) {
            rc = -EPIPE;
            break;
        }
        if (atomic_load(&j->h->cancelled)) {
            rc = -ECANCELED;
            break;
        }
        if (j->out - j->mark_out >= need) {
            j->mark_out = j->out;
            j->waited_ms = 0;
        }
        if (j->waited_ms >= send_timeout(h)) {
            rc = -ETIMEDOUT;
            break;
        }
        int64_t left = send_timeout(h) - j->waited_ms, t0 = clock_mono_ms();
        struct timespec until = clock_mono_in(left < WAIT_SLICE_MS ? (int)left : WAIT_SLICE_MS);
        pthread_cond_timedwait(&j->moved, &j->lock, &until);
        j->waited_ms += clock_mono_ms() - t0;
    }
    if (rc < 0) {
        j->pub = NULL;
        j->pub_len = 0;
        j->failed = 1;
        job_wake_locked(j); /* the reader cuts the connection when it is called again */
        /* A client too slow to make libmicrohttpd call the reader soon: cut it now. Safe while
         * not gone: libmicrohttpd's close waits for this lock in on_completed. */
        if (rc == -ETIMEDOUT && !j->gone && j->fd >= 0)
            shutdown(j->fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&j->lock);
    return rc;
}

static int sink_send(void *arg, const void *buf, size_t len)
{
    struct job *j = arg;
    uint64_t in = j->in, lo, hi;

    if (j->fd_mode)
        return -EPROTO; /* the body is already promised from the file */
    j->in += len;
    if (j->discard)
        return 0;
    /* The part of [in, in + len) inside the bytes we announced. */
    lo = in > j->first ? in : j->first;
    hi = j->first + j->body_len;
    if (in + len < hi)
        hi = in + len;
    if (lo >= hi)
        return 0;
    if (j->quick && !j->small_mode)
        return -EWOULDBLOCK; /* publish waits for libmicrohttpd's thread: the caller's */
    if (j->small_mode) {
        memcpy(j->small + (lo - j->first), (const unsigned char *)buf + (lo - in), hi - lo);
        j->small_len += hi - lo;
        if (j->small_len == j->body_len) {
            pthread_mutex_lock(&j->lock);
            j->out = j->body_len;
            j->answered = 1; /* from here j->small is the response's */
            job_wake_locked(j);
            pthread_mutex_unlock(&j->lock);
        }
        return 0;
    }
    return publish(j, (const unsigned char *)buf + (lo - in), (size_t)(hi - lo));
}

/* Bytes of the connection's socket the client acknowledged (0 when unknown). */
static uint64_t tcp_acked(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;

    if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return 0;
    return ti.tcpi_bytes_acked;
}

/* Bytes written to the connection's socket so far: acknowledged, plus those still queued. */
static uint64_t tcp_written(int fd)
{
    int queued = 0;

    if (fd < 0 || ioctl(fd, SIOCOUTQ, &queued) < 0 || queued < 0)
        queued = 0;
    return tcp_acked(fd) + (uint64_t)queued;
}

/* Body bytes of a response sent from a file, from the socket's counts: libmicrohttpd does not
 * say how many it wrote (no connection info, no count at completion; its sendfile takes an
 * explicit offset, so the file position does not move). base bytes were written before the
 * response, upto by when the count was taken; the header (fd_hdr) goes first. */
static uint64_t fd_body_sent(const struct job *j, uint64_t base, uint64_t upto)
{
    uint64_t n = upto > base + j->fd_hdr ? upto - base - j->fd_hdr : 0;

    return n < j->body_len ? n : j->body_len;
}

/* Non-zero when the file behind fd_src no longer has the size, mtime and ctime it had. */
static int fd_changed(const struct job *j)
{
    struct stat st;

    return fstat(j->fd_src, &st) < 0 || st.st_size != j->fd_st.st_size ||
           st.st_mtim.tv_sec != j->fd_st.st_mtim.tv_sec ||
           st.st_mtim.tv_nsec != j->fd_st.st_mtim.tv_nsec ||
           st.st_ctim.tv_sec != j->fd_st.st_ctim.tv_sec ||
           st.st_ctim.tv_nsec != j->fd_st.st_ctim.tv_nsec;
}

/* Watches libmicrohttpd send the body from the file until the request ends: the client must
 * take min_rate bytes/s (counted from TCP_INFO's acknowledged bytes, in windows of the send
 * timeout) and the file must stay unchanged; else the connection is cut. A change in the last
 * slice before libmicrohttpd's last sendfile can reach the client as a complete answer: it is
 * logged, and the request ends -ESTALE. Caller holds j->lock. */
static int fd_watch_locked(struct job *j)
{
    const struct http_front *h = j->h;
    uint64_t need = (uint64_t)h->opt.min_rate * (uint64_t)h->opt.send_timeout_ms / 1000;
    uint64_t base = tcp_written(j->fd), mark = tcp_acked(j->fd), acked = mark;
    int64_t waited = 0;
    int rc = 0;

    while (!j->gone) {
        if (atomic_load(&h->cancelled)) {
            rc = -ECANCELED;
            break;
        }
        if (fd_changed(j)) {
            log_warn(0, "'%s': the file changed while it was sent: transfer cut", j->path);
            rc = -ESTALE;
            break;
        }
        acked = tcp_acked(j->fd);
        if (acked - mark >= need) {
            mark = acked;
            waited = 0;
        }
        if (waited >= send_timeout(h) && j->fd >= 0) { /* no socket: libmicrohttpd's timeout */
            rc = -ETIMEDOUT;
            break;
        }
        int64_t left = send_timeout(h) - waited, t0 = clock_mono_ms();
        if (left <= 0)
            left = WAIT_SLICE_MS;
        struct timespec until = clock_mono_in(left < WAIT_SLICE_MS ? (int)left : WAIT_SLICE_MS);
        pthread_cond_timedwait(&j->moved, &j->lock, &until);
        waited += clock_mono_ms() - t0;
    }
    if (rc < 0) {
        j->failed = 1;
        /* What was written still reaches a client that reads: the kernel sends it before
         * the FIN. Gone already: what it acknowledged at the last look. */
        if (!j->gone && j->fd >= 0) {
            acked = tcp_written(j->fd);
            shutdown(j->fd, SHUT_RDWR); /* libmicrohttpd's close waits for this lock */
        }
        j->out = fd_body_sent(j, base, acked);
        return rc;
    }
    if (!j->completed_ok) {
        j->out = fd_body_sent(j, base, acked); /* the client left: acknowledged at the last look */
        return -EPIPE;
    }
    j->out = j->body_len;
    if (fd_changed(j)) {
        log_warn(0,
                 "'%s': the file changed as its last bytes were sent: the client may have a "
                 "complete answer with mixed bytes",
                 j->path);
        return -ESTALE;
    }
    return 0;
}

/* ---- bodies from files promised by quick, watched by the watcher thread -------------------- */

/* Puts a quick request's body from a file under the watcher's eye (watch_sweep), from now. On
 * libmicrohttpd's thread, before the response is queued. */
static void watch_add(struct job *j)
{
    struct http_front *h = j->h;

    pthread_mutex_lock(&j->lock);
    /* Nothing was written on a connection before its first response. */
    j->w_base = j->conn_seq > 1 ? tcp_written(j->fd) : 0;
    j->w_mark = j->w_base; /* acknowledged <= written */
    j->w_since_ms = clock_mono_ms();
    pthread_mutex_unlock(&j->lock);
    pthread_mutex_lock(&h->watch_lock);
    j->wprev = NULL;
    j->wnext = h->watched;
    if (h->watched != NULL)
        h->watched->wprev = j;
    h->watched = j;
    j->watched = 1;
    pthread_mutex_unlock(&h->watch_lock);
}

/* Takes j out of the watcher's list; before its connection is closed (on_completed). */
static void watch_remove(struct job *j)
{
    struct http_front *h = j->h;

    pthread_mutex_lock(&h->watch_lock);
    if (j->wprev != NULL)
        j->wprev->wnext = j->wnext;
    else
        h->watched = j->wnext;
    if (j->wnext != NULL)
        j->wnext->wprev = j->wprev;
    j->watched = 0;
    pthread_mutex_unlock(&h->watch_lock);
}

/* fd_watch_locked's checks for one watched body, once: cuts the connection when the grace
 * period is over, the file changed, or the client took less than min_rate bytes/s over a
 * window of the send timeout. Caller holds watch_lock (so the socket is open) and j->lock. */
static void watch_check_locked(struct job *j, int64_t now)
{
    const struct http_front *h = j->h;
    uint64_t need = (uint64_t)h->opt.min_rate * (uint64_t)h->opt.send_timeout_ms / 1000;
    uint64_t acked;
    int rc = 0;

    if (j->gone || j->failed)
        return;
    if (atomic_load(&h->cancelled)) {
        rc = -ECANCELED;
    } else if (fd_changed(j)) {
        log_warn(0, "'%s': the file changed while it was sent: transfer cut", j->path);
        rc = -ESTALE;
    } else if (j->fd >= 0) { /* no socket: libmicrohttpd's timeout */
        acked = tcp_acked(j->fd);
        if (acked - j->w_mark >= need) {
            j->w_mark = acked;
            j->w_since_ms = now;
        } else if (now - j->w_since_ms >= send_timeout(h)) {
            rc = -ETIMEDOUT;
        }
    }
    if (rc == 0)
        return;
    j->failed = 1;
    j->w_rc = rc;
    if (j->fd >= 0) {
        j->out = fd_body_sent(j, j->w_base, tcp_written(j->fd));
        shutdown(j->fd, SHUT_RDWR); /* libmicrohttpd ends the request: on_completed */
    }
}

/* The watcher's pass over the bodies quick promised. */
static void watch_sweep(struct http_front *h)
{
    int64_t now = clock_mono_ms();

    pthread_mutex_lock(&h->watch_lock);
    for (struct job *j = h->watched; j != NULL; j = j->wnext) {
        pthread_mutex_lock(&j->lock);
        watch_check_locked(j, now);
        pthread_mutex_unlock(&j->lock);
    }
    pthread_mutex_unlock(&h->watch_lock);
}

/* A watched body ended (libmicrohttpd's thread, before it closes the socket): what was sent,
 * and the last look at the file, as fd_watch_locked's end. Caller holds j->lock. */
static void watch_end_locked(struct job *j)
{
    if (j->failed)
        return; /* the watcher cut it and counted */
    if (!j->completed_ok) {
        j->out = fd_body_sent(j, j->w_base, tcp_acked(j->fd)); /* the client left */
        j->w_rc = -EPIPE;
        return;
    }
    j->out = j->body_len;
    if (fd_changed(j)) {
        log_warn(0,
                 "'%s': the file changed as its last bytes were sent: the client may have a "
                 "complete answer with mixed bytes",
                 j->path);
        j->w_rc = -ESTALE;
    }
}

/* A held mapping of the body's file when the body is at least map_min long and the file at
 * most map_max (*at: the body's first byte), else NULL: sendfile. On loopback a body written
 * from memory costs the receiver half what a sendfile'd one does, and a kept mapping costs no
 * mmap/munmap per request (docs/http.md has the measurements). */
static struct map_entry *map_body(const struct job *j, const unsigned char **at)
{
    const unsigned char *base;
    uint64_t first = j->fd_base + j->first;
    struct map_entry *e;

    if (j->h->maps == NULL || j->body_len < j->h->opt.map_min ||
        (uint64_t)j->fd_st.st_size > j->h->opt.map_max ||
        first + j->body_len > (uint64_t)j->fd_st.st_size)
        return NULL;
    e = map_keep_get(j->h->maps, j->fd_src, &j->fd_st, &base);
    if (e != NULL)
        *at = base + first;
    return e;
}

/* gfs_send_file: the body is answered from a kept mapping of fd (map_body: libmicrohttpd
 * sends it from memory) or from a dup of fd (libmicrohttpd then sends it with sendfile) once
 * the handler's calls cover it, contiguous in one file. A body gathered whole
 * (small_mode) or one begun through sink_send takes the bytes through sink_send instead. */
static int sink_send_fd(void *arg, int fd, uint64_t offset, uint64_t len)
{
    struct job *j = arg;
    uint64_t in = j->in, end = j->first + j->body_len;
    struct stat st;
    struct map_entry *map;
    const unsigned char *map_at = NULL;
    int mfd = -1, rc;

    if (j->discard) {
        j->in += len;
        return 0;
    }
    if (!j->fd_mode) {
        if (j->small_mode || in != 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
            return -ENOTSUP;
        j->fd_src = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (j->fd_src < 0)
            return -ENOTSUP;
        j->fd_mode = 1;
        j->fd_base = offset;
        j->fd_st = st;
    } else if (offset != j->fd_base + in || fstat(fd, &st) < 0 || st.st_dev != j->fd_st.st_dev ||
               st.st_ino != j->fd_st.st_ino) {
        return -EPROTO; /* not the rest of the same file */
    }
    j->in += len;
    if (in >= end || in + len < end)
        return 0; /* past the body (a range), or more of it to come */
    map = map_body(j, &map_at);
    if (map == NULL) {
        mfd = fcntl(j->fd_src, F_DUPFD_CLOEXEC, 0);
        if (mfd < 0)
            return -errno;
        if (!atomic_exchange(&j->h->fd_said, 1))
            log_info("HTTP bodies are sent from the cache's file descriptors (sendfile)");
    } else if (!atomic_exchange(&j->h->map_said, 1)) {
        log_info("HTTP bodies are sent from the cache's file descriptors (kept mappings)");
    }
    pthread_mutex_lock(&j->lock);
    if (j->gone) {
        rc = -EPIPE;
        if (map != NULL)
            map_keep_put(j->h->maps, map);
        else
            close(mfd);
    } else {
        j->fd_body = mfd;
        j->map = map;
        j->map_at = map_at;
        j->answered = 1;
        if (j->quick) {
            rc = 0; /* on libmicrohttpd's thread: the watcher watches it (watch_add) */
        } else {
            job_wake_locked(j);
            rc = fd_watch_locked(j);
        }
    }
    pthread_mutex_unlock(&j->lock);
    if (j->quick && rc == 0)
        watch_add(j);
    return rc;
}

static int sink_stopping(void *arg)
{
    const struct job *j = arg;
    return atomic_load(&j->h->stopping);
}

static int sink_cancelled(void *arg)
{
    const struct job *j = arg;
    return atomic_load(&j->h->cancelled);
}

static void sink_validators(void *arg, const char *etag, const char *last_modified)
{
    struct job *j = arg;

    pthread_mutex_lock(&j->lock);
    snprintf(j->etag, sizeof j->etag, "%s", etag != NULL ? etag : "");
    snprintf(j->lastmod, sizeof j->lastmod, "%s", last_modified != NULL ? last_modified : "");
    pthread_mutex_unlock(&j->lock);
}

static const struct gfs_sink_ops sink_ops = {
    .header = sink_header,
    .send = sink_send,
    .stopping = sink_stopping,
    .cancelled = sink_cancelled,
    .validators = sink_validators,
    .send_fd = sink_send_fd,
};

/* The handler returned rc: answers a request it left unanswered, or cuts a body it left short.
 * Caller holds j->lock. */
static void job_finish_locked(struct job *j, int rc)
{
    j->finished = 1;
    if (!j->answered) {
        j->status = rc == -ETIMEDOUT                    ? MHD_HTTP_GATEWAY_TIMEOUT
                    : rc == -ECANCELED || rc == -EAGAIN ? MHD_HTTP_SERVICE_UNAVAILABLE
                                                        : MHD_HTTP_BAD_GATEWAY;
        j->discard = 1;
        j->answered = 1;
    } else if (!j->discard && j->out < j->body_len && !j->watched) {
        j->failed = 1; /* short; a quick body from a file is still to be sent (watch_end) */
    }
    job_wake_locked(j);
}

static void run_job(struct http_front *h, struct job *j)
{
    struct gfs_ctx *ctx = NULL;
    int rc;

    rc = gfs_ctx_sink_new(&ctx, &sink_ops, j);
    if (rc == 0) {
        rc = h->opt.handler(ctx, j->path, j->path_len, h->opt.handler_arg);
        if (rc == 0 && gfs_ctx_status(ctx) < 0)
            rc = -EIO; /* returned without answering */
        j->ran = 1;    /* read by the last unref, after the lock hand-over below */
        j->gf_status = gfs_ctx_status(ctx);
        j->note = gfs_ctx_note(ctx);
        gfs_ctx_sink_free(ctx);
    }
    if (j->fd_src >= 0) {
        close(j->fd_src);
        j->fd_src = -1;
    }
    pthread_mutex_lock(&j->lock);
    job_finish_locked(j, rc);
    pthread_mutex_unlock(&j->lock);
    job_unref(j);
}

static void *worker_main(void *arg)
{
    struct http_front *h = arg;
    void *item;

    pthread_setname_np(pthread_self(), "http-worker");
    while (workq_pop(&h->q, &item, -1) == 0)
        run_job(h, item);
    return NULL;
}

/* ---- libmicrohttpd's side ------------------------------------------------------------------ */

/* The body: what the worker published, piece by piece. */
static ssize_t read_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct job *j = cls;
    ssize_t n;

    (void)pos;
    pthread_mutex_lock(&j->lock);
    if (j->failed) {
        n = MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (j->pub_len > 0) {
        size_t take = j->pub_len < max ? j->pub_len : max;
        memcpy(buf, j->pub, take);
        j->pub += take;
        j->pub_len -= take;
        j->out += take;
        if (j->pub_len == 0)
            pthread_cond_signal(&j->moved);
        n = (ssize_t)take;
    } else if (j->finished) {
        n = MHD_CONTENT_READER_END_WITH_ERROR; /* the handler stopped short */
    } else {
        job_suspend_locked(j); /* the worker resumes us when it publishes */
        n = 0;
    }
    pthread_mutex_unlock(&j->lock);
    return n;
}

static void free_body(void *cls)
{
    job_unref(cls);
}

/* A response sent from a kept mapping is freed: the mapping's hold ends. */
static void free_mapped(void *cls)
{
    struct job *j = cls;
    struct map_entry *e;

    pthread_mutex_lock(&j->lock);
    e = j->map;
    j->map = NULL;
    pthread_mutex_unlock(&j->lock);
    if (e != NULL)
        map_keep_put(j->h->maps, e);
    job_unref(j);
}

static enum MHD_Result queue_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text,
                                                             MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ok;

    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static const char *status_text(unsigned status)
{
    switch (status) {
    case MHD_HTTP_NOT_FOUND:
        return "Not Found\n";
    case MHD_HTTP_GATEWAY_TIMEOUT:
        return "Gateway Timeout\n";
    case MHD_HTTP_SERVICE_UNAVAILABLE:
        return "Service Unavailable\n";
    default:
        return "Bad Gateway\n";
    }
}

static enum MHD_Result header_line_len(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    uint64_t *n = cls;

    (void)kind;
    *n += strlen(key) + strlen(value) + 4; /* "key: value\r\n" */
    return MHD_YES;
}

/* The length of r's header as libmicrohttpd 0.9.75 sends it (seen with curl): the status line,
 * Date, "Connection: close" when it closes (asked, or HTTP/1.0), our headers, Content-Length
 * and the blank line. */
static uint64_t header_len(const struct job *j, struct MHD_Response *r)
{
    const char *c = MHD_lookup_connection_value(j->conn, MHD_HEADER_KIND, "Connection");
    const char *reason = MHD_get_reason_phrase_for(j->status);
    char cl[48];
    uint64_t n = strlen("HTTP/1.1 200 \r\n") + strlen(reason) + strlen("Date: \r\n") +
                 29 /* IMF-fixdate */ + strlen("\r\n");

    n += (uint64_t)snprintf(cl, sizeof cl, "Content-Length: %llu\r\n",
                            (unsigned long long)j->body_len);
    if (j->http10 || (c != NULL && strcasestr(c, "close") != NULL))
        n += strlen("Connection: close\r\n");
    MHD_get_response_headers(r, header_line_len, &n);
    return n;
}

/* Queues the worker's answer. Runs on libmicrohttpd's thread; the answer fields are final
 * once answered is set. */
static enum MHD_Result queue_answer(struct job *j)
{
    struct MHD_Response *r;
    enum MHD_Result ok;
    char buf[96];
    int from_fd = 0;

    if (j->status == MHD_HTTP_NOT_FOUND || j->status >= 500)
        return queue_text(j->conn, j->status, status_text(j->status));
    if (j->small_mode) {
        r = MHD_create_response_from_buffer(j->body_len, j->small, MHD_RESPMEM_MUST_FREE);
        if (r == NULL)
            return MHD_NO;
        j->small = NULL; /* libmicrohttpd frees it */
    } else if (j->map != NULL && !j->head) {
        r = MHD_create_response_from_buffer_with_free_callback_cls(
            j->body_len, (void *)(uintptr_t)j->map_at, free_mapped, j);
        if (r == NULL)
            return MHD_NO;
        job_ref(j); /* the response's, with the mapping's hold */
    } else if (j->fd_body >= 0 && !j->head) {
        r = MHD_create_response_from_fd_at_offset64(j->body_len, j->fd_body, j->fd_base + j->first);
        if (r == NULL)
            return MHD_NO;
        j->fd_body = -1; /* libmicrohttpd closes it */
        from_fd = 1;
    } else if (j->body) {
        /* For HEAD libmicrohttpd sends the Content-Length and never calls read_body. */
        r = MHD_create_response_from_callback(j->body_len, BODY_BLOCK, read_body, j, free_body);
        if (r == NULL)
            return MHD_NO;
        job_ref(j); /* the response's */
    } else {
        r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT); /* 304, 416 */
        if (r == NULL)
            return MHD_NO;
    }
    if (j->status != MHD_HTTP_RANGE_NOT_SATISFIABLE) {
        if (j->etag[0] != '\0')
            MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, j->etag);
        if (j->lastmod[0] != '\0')
            MHD_add_response_header(r, MHD_HTTP_HEADER_LAST_MODIFIED, j->lastmod);
    }
    if (j->status != MHD_HTTP_NOT_MODIFIED) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    }
    if (j->status == MHD_HTTP_PARTIAL_CONTENT) {
        snprintf(buf, sizeof buf, "bytes %llu-%llu/%llu", (unsigned long long)j->first,
                 (unsigned long long)(j->first + j->body_len - 1), (unsigned long long)j->total);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, buf);
    } else if (j->status == MHD_HTTP_RANGE_NOT_SATISFIABLE) {
        snprintf(buf, sizeof buf, "bytes */%llu", (unsigned long long)j->total);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, buf);
    }
    if (from_fd) {
        uint64_t n = header_len(j, r);
        pthread_mutex_lock(&j->lock);
        j->fd_hdr = n; /* before a byte of it is sent */
        pthread_mutex_unlock(&j->lock);
    }
    ok = MHD_queue_response(j->conn, j->status, r);
    MHD_destroy_response(r);
    return ok;
}

/* Decodes the path of an origin-form target ("/a%20b?q": the query is ignored) into j->path.
 * Returns 0, or the HTTP status to answer: 400 (not origin-form, a bad or NUL escape), 414
 * (longer than GF_PATH_MAX), 404 (a path GETFILE cannot name: not printable ASCII). */
static unsigned decode_path(struct job *j)
{
    const char *p = j->target;
    size_t o = 0;

    if (p[0] != '/')
        return MHD_HTTP_BAD_REQUEST;
    for (; *p != '\0' && *p != '?' && *p != '#'; p++) {
        int c = (unsigned char)*p;
        if (c == '%') {
            int hi = hex_value((unsigned char)p[1]),
                lo = hi < 0 ? -1 : hex_value((unsigned char)p[2]);
            if (hi < 0 || lo < 0 || hi * 16 + lo == 0)
                return MHD_HTTP_BAD_REQUEST;
            c = hi * 16 + lo;
            p += 2;
        }
        if (o == GF_PATH_MAX)
            return MHD_HTTP_URI_TOO_LONG;
        j->path[o++] = (char)c;
    }
    j->path[o] = '\0';
    j->path_len = o;
    return gf_path_valid(j->path, o) ? 0 : MHD_HTTP_NOT_FOUND;
}

/* Marks the connection busy with a request (returns the request's number on it, from 1; 0
 * when unknown) or idle again (returns 0). */
static unsigned conn_mark(struct MHD_Connection *conn, struct http_front *h, int busy)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct hconn *c = ci != NULL ? ci->socket_context : NULL;
    unsigned seq = 0;

    if (c == NULL)
        return 0;
    pthread_mutex_lock(&h->conns_lock);
    c->busy = busy;
    if (busy)
        seq = ++c->requests;
    else
        c->deadline_ms = clock_mono_ms() + h->opt.header_timeout_ms;
    pthread_mutex_unlock(&h->conns_lock);
    return seq;
}

/* Runs the quick handler on libmicrohttpd's thread (http_front.h). Returns 1 when it served
 * the request (answered, or failed after its header: job_finish_locked decided), 0 when it
 * sent no header (the request goes to a worker, as if quick had not run). */
static int quick_run(struct http_front *h, struct job *j)
{
    struct gfs_ctx *ctx = NULL;
    int rc;

    if (gfs_ctx_sink_new(&ctx, &sink_ops, j) < 0)
        return 0;
    j->quick = 1;
    rc = h->opt.quick(ctx, j->path, j->path_len, h->opt.handler_arg);
    if (!gfs_ctx_header_sent(ctx)) {
        j->quick = 0;
        gfs_ctx_sink_free(ctx);
        return 0;
    }
    j->ran = 1;
    j->gf_status = gfs_ctx_status(ctx);
    j->note = gfs_ctx_note(ctx);
    gfs_ctx_sink_free(ctx);
    if (!atomic_exchange(&h->quick_said, 1))
        log_info("HTTP requests are served on libmicrohttpd's threads when the handler can "
                 "(kept descriptors), without a worker");
    if (!j->watched && j->fd_src >= 0) {
        close(j->fd_src); /* a watched body keeps it for the checks until on_completed */
        j->fd_src = -1;
    }
    pthread_mutex_lock(&j->lock);
    job_finish_locked(j, rc);
    pthread_mutex_unlock(&j->lock);
    return 1;
}

/* The first call for a request: checks it and hands it to a worker. Returns 0, or the status
 * to answer at once. (Answered only from the next call: libmicrohttpd 0.9.75 closes a
 * connection whose response was queued in the first one.) */
static unsigned start_request(struct http_front *h, struct job *j, const char *method)
{
    const char *v;
    unsigned st;
    int rc;

    j->conn_seq = conn_mark(j->conn, h, 1);
    j->head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!j->head && strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return MHD_HTTP_METHOD_NOT_ALLOWED;
    st = decode_path(j);
    if (st != 0)
        return st;
    v = MHD_lookup_connection_value(j->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (v != NULL && strlen(v) <= CONDITION_MAX && (j->inm = strdup(v)) == NULL)
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    v = MHD_lookup_connection_value(j->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_MODIFIED_SINCE);
    if (v != NULL)
        j->ims = parse_http_date(v);
    v = MHD_lookup_connection_value(j->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
    /* If-Range would need the validators before the range is chosen: with it, the whole
     * file is sent (always allowed, RFC 9110 13.1.5). */
    if (v != NULL &&
        MHD_lookup_connection_value(j->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_RANGE) == NULL)
        parse_range(v, &j->range);

    j->counted = 1;
    atomic_fetch_add(&h->active, 1);
    if (h->opt.quick != NULL && !atomic_load(&h->stopping) && quick_run(h, j))
        return 0; /* answered from the next call, as a worker's answer */
    job_ref(j);   /* the worker's */
    rc = workq_push(&h->q, j, 0);
    if (rc < 0) {
        job_unref(j);
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    return 0;
}

static const char *early_text(unsigned status)
{
    switch (status) {
    case MHD_HTTP_METHOD_NOT_ALLOWED:
        return "Method Not Allowed\n";
    case MHD_HTTP_URI_TOO_LONG:
        return "URI Too Long\n";
    case MHD_HTTP_BAD_REQUEST:
        return "Bad Request\n";
    default:
        return status_text(status);
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct http_front *h = cls;
    struct job *j = *req_cls;
    int answered;

    (void)url, (void)version, (void)upload_data;
    if (j == NULL)
        return MHD_NO; /* out of memory in on_uri */
    if (!j->started) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ai =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ai != NULL && ai->client_addr != NULL) {
            j->peer_len = ai->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                                 : sizeof(struct sockaddr_in);
            memcpy(&j->peer, ai->client_addr, j->peer_len);
        }
        j->started = 1;
        j->conn = conn;
        j->fd = ci != NULL ? ci->connect_fd : -1;
        j->http10 = strcmp(version, MHD_HTTP_VERSION_1_0) == 0;
        j->early = start_request(h, j, method);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0; /* a request body is read and ignored */
        return MHD_YES;
    }
    if (j->early != 0)
        return queue_text(conn, j->early, early_text(j->early));
    pthread_mutex_lock(&j->lock);
    answered = j->answered;
    if (!answered)
        job_suspend_locked(j); /* under the lock: the worker's answer resumes it */
    pthread_mutex_unlock(&j->lock);
    return answered ? queue_answer(j) : MHD_YES;
}

/* The request line arrived: the request's context starts here, with the raw target. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)conn;
    return job_new(cls, uri);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_front *h = cls;
    struct job *j = *req_cls;

    conn_mark(conn, h, 0);
    if (j == NULL)
        return;
    *req_cls = NULL;
    if (j->watched)
        watch_remove(j); /* first: the watcher holds watch_lock while it uses the socket */
    pthread_mutex_lock(&j->lock);
    j->gone = 1;
    j->completed_ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
    j->suspended = 0; /* libmicrohttpd only ends a suspended request when it stops */
    if (j->quick && j->fd_src >= 0) {
        watch_end_locked(j);
        if (j->w_rc < 0 && h->opt.quick_error_note != NULL)
            j->note = h->opt.quick_error_note;
        close(j->fd_src);
        j->fd_src = -1;
    }
    pthread_cond_broadcast(&j->moved);
    pthread_mutex_unlock(&j->lock);
    job_unref(j);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_front *h = cls;
    struct hconn *c;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c = calloc(1, sizeof *c);
        if (c == NULL || ci == NULL) {
            free(c);
            return; /* no header deadline for it; the idle timeout still holds */
        }
        c->fd = ci->connect_fd;
        c->deadline_ms = clock_mono_ms() + h->opt.header_timeout_ms;
        pthread_mutex_lock(&h->conns_lock);
        c->next = h->conns;
        if (h->conns != NULL)
            h->conns->prev = c;
        h->conns = c;
        pthread_mutex_unlock(&h->conns_lock);
        *socket_context = c;
        return;
    }
    c = *socket_context;
    if (c == NULL)
        return;
    /* Before libmicrohttpd closes the fd: the watcher never shuts down a reused number. */
    pthread_mutex_lock(&h->conns_lock);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&h->conns_lock);
    free(c);
    *socket_context = NULL;
}

/* libmicrohttpd's log callback: fmt is its own printf format. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;

    (void)cls;
    if (LOGL_DEBUG > log_threshold)
        return;
    vsnprintf(line, sizeof line, fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_debug("http: %s", line);
}

/* Shuts down connections whose request header is late; libmicrohttpd then closes them. */
static void sweep_headers(struct http_front *h)
{
    int64_t now = clock_mono_ms();

    pthread_mutex_lock(&h->conns_lock);
    for (struct hconn *c = h->conns; c != NULL; c = c->next) {
        if (!c->busy && !c->cut && now >= c->deadline_ms) {
            c->cut = 1;
            shutdown(c->fd, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&h->conns_lock);
}

static int stop_asked(const struct http_front *h)
{
    return atomic_load(&h->stop);
}

void http_front_stop(struct http_front *h)
{
    atomic_store(&h->stop, 1);
}

static void *watch_main(void *arg)
{
    struct http_front *h = arg;
    int64_t deadline;
    void *item;

    pthread_setname_np(pthread_self(), "http-watch");
    while (!stop_asked(h)) {
        sweep_headers(h);
        watch_sweep(h);
        clock_sleep_ms(WATCH_TICK_MS);
    }
    atomic_store(&h->stopping, 1);
    MHD_quiesce_daemon(h->mhd); /* no new connections; the listener is ours to close */
    deadline = clock_mono_ms() + h->opt.shutdown_grace_ms;
    while (atomic_load(&h->active) > 0 && clock_ms_left(deadline) > 0) {
        sweep_headers(h);
        watch_sweep(h);
        clock_sleep_ms(WATCH_TICK_MS);
    }
    atomic_store(&h->cancelled, 1);
    watch_sweep(h); /* cuts the bodies quick promised that are still being sent */
    workq_close(&h->q);
    for (unsigned i = 0; i < h->nworkers; i++)
        pthread_join(h->workers[i], NULL);
    h->nworkers = 0;
    while (workq_trypop(&h->q, &item) == 0) { /* queued, never served */
        struct job *j = item;
        pthread_mutex_lock(&j->lock);
        job_finish_locked(j, -ECANCELED);
        pthread_mutex_unlock(&j->lock);
        job_unref(j);
    }
    /* Every handler has returned and resumed its connection: none is left suspended. */
    MHD_stop_daemon(h->mhd);
    h->mhd = NULL;
    return NULL;
}

/* ---- setup --------------------------------------------------------------------------------- */

static int listen_on(const char *host, uint16_t port, int *fd_out, uint16_t *port_out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL, *ai;
    char serv[8];
    int fd = -1, rc, one = 1;

    snprintf(serv, sizeof serv, "%u", (unsigned)port);
    rc = getaddrinfo(host, serv, &hints, &res);
    if (rc != 0)
        return rc == EAI_SYSTEM ? -errno : rc == EAI_MEMORY ? -ENOMEM : -EHOSTUNREACH;
    rc = -EADDRNOTAVAIL;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
            break;
        rc = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return rc;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    *fd_out = fd;
    return 0;
}

int http_front_new(struct http_front **out, const struct http_front_options *opt)
{
    struct http_front *h;
    int rc;

    if (opt->handler == NULL || opt->nthreads < 1 || opt->nthreads > MAX_WORKERS ||
        opt->io_threads > MAX_IO_THREADS || opt->header_timeout_ms < 0 ||
        opt->send_timeout_ms < 0 || opt->shutdown_grace_ms < 0)
        return -EINVAL;
    h = calloc(1, sizeof *h);
    if (h == NULL)
        return -ENOMEM;
    h->opt = *opt;
    h->lfd = -1;
    if (h->opt.header_timeout_ms == 0)
        h->opt.header_timeout_ms = 60000;
    if (h->opt.send_timeout_ms == 0)
        h->opt.send_timeout_ms = 10000;
    if (h->opt.min_rate == 0)
        h->opt.min_rate = 1024;
    if (h->opt.shutdown_grace_ms == 0)
        h->opt.shutdown_grace_ms = 5000;
    if (h->opt.map_min == 0)
        h->opt.map_min = HTTP_FRONT_MAP_MIN;
    if (h->opt.max_per_client == 0)
        h->opt.max_per_client = 64;
    if (h->opt.max_conns == 0)
        h->opt.max_conns = 1000;
    if (h->opt.queue_depth == 0)
        h->opt.queue_depth = 4 * h->opt.nthreads;
    if (h->opt.io_threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        h->opt.io_threads = n < 1 ? 1 : n > MAX_IO_THREADS ? MAX_IO_THREADS : (unsigned)n;
    }
    h->opt.host = NULL; /* borrowed: used only here */
    pthread_mutex_init(&h->conns_lock, NULL);
    pthread_mutex_init(&h->watch_lock, NULL);
    if (h->opt.map_max > 0) {
        rc = map_keep_new(&h->maps, MAP_KEEP_BYTES, MAP_KEEP_FILES);
        if (rc < 0)
            goto err;
    }
    rc = listen_on(opt->host, opt->port, &h->lfd, &h->port);
    if (rc < 0)
        goto err;
    rc = workq_init(&h->q, h->opt.queue_depth);
    if (rc < 0)
        goto err;
    h->q_ready = 1;
    h->workers = calloc(h->opt.nthreads, sizeof *h->workers);
    if (h->workers == NULL) {
        rc = -ENOMEM;
        goto err;
    }
    *out = h;
    return 0;

err:
    http_front_free(h);
    return rc;
}

uint16_t http_front_port(const struct http_front *h)
{
    return h->port;
}

int http_front_start(struct http_front *h)
{
    sigset_t block, old;
    unsigned secs = (unsigned)((h->opt.send_timeout_ms + 999) / 1000);
    int rc = 0;

    /* Every response has a BODY_BLOCK buffer from malloc. glibc's default moves its mmap
     * threshold and trims the heap top at 128 KiB, so each 256 KiB block came back as fresh
     * pages: a page fault per 4 KiB of every response (docs/http.md). Fixed thresholds keep
     * freed blocks for the next response, at the price of up to TRIM_KEEP unused bytes per
     * malloc arena. Process-wide, so set only when an HTTP front end starts. */
    mallopt(M_MMAP_THRESHOLD, (int)MMAP_ABOVE);
    mallopt(M_TRIM_THRESHOLD, (int)TRIM_KEEP);
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old); /* every thread started here inherits it */
    h->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                                  MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
                              0, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET,
                              (MHD_socket)h->lfd, MHD_OPTION_THREAD_POOL_SIZE,
                              (unsigned)h->opt.io_threads, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                              (size_t)MEMORY_LIMIT, MHD_OPTION_CONNECTION_LIMIT,
                              (unsigned)h->opt.max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                              (unsigned)h->opt.max_per_client, MHD_OPTION_CONNECTION_TIMEOUT, secs,
                              MHD_OPTION_URI_LOG_CALLBACK, on_uri, h, MHD_OPTION_NOTIFY_COMPLETED,
                              on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                              MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h, MHD_OPTION_END);
    if (h->mhd == NULL) {
        rc = -EIO;
        goto out;
    }
    for (; h->nworkers < h->opt.nthreads; h->nworkers++) {
        rc = -pthread_create(&h->workers[h->nworkers], NULL, worker_main, h);
        if (rc < 0)
            break;
    }
    if (rc == 0)
        rc = -pthread_create(&h->watcher, NULL, watch_main, h);
    if (rc == 0) {
        h->watching = 1;
    } else {
        /* Nothing was served yet: stop what started. */
        workq_close(&h->q);
        for (unsigned i = 0; i < h->nworkers; i++)
            pthread_join(h->workers[i], NULL);
        h->nworkers = 0;
        MHD_quiesce_daemon(h->mhd); /* so that the listener stays ours to close */
        MHD_stop_daemon(h->mhd);
        h->mhd = NULL;
    }
out:
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void http_front_free(struct http_front *h)
{
    if (h == NULL)
        return;
    if (h->watching) {
        atomic_store(&h->stop, 1);
        pthread_join(h->watcher, NULL);
    }
    if (h->lfd >= 0)
        close(h->lfd); /* after MHD_stop_daemon: libmicrohttpd's threads used it */
    if (h->q_ready)
        workq_release(&h->q);
    pthread_mutex_destroy(&h->conns_lock);
    pthread_mutex_destroy(&h->watch_lock);
    map_keep_free(h->maps); /* libmicrohttpd stopped: every response, and its hold, is gone */
    free(h->workers);
    free(h);
}
