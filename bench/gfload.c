/* gfload.c - GETFILE load generator: threads with epoll keep C requests in flight, one per
 * connection, and report throughput and latency as one key=value line. */
/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "gf_proto.h"
#include "latency.h"
#include "loadgen.h"
#include "log.h"

#define MAX_CONC     1024
#define MAX_THREADS  64
#define RECV_CAP     (256 * 1024)
#define HTTP_HDR_MAX 8192
#define SWEEP_MS     100

static const char usage[] =
    "usage: gfload [-s host] [-p port] [-c concurrency] [-t threads] (-d seconds | -r requests)\n"
    "              (-w workload | -u path) [-P gf|http] [-T] [-i idle_ms] [-h]\n"
    "  -s host         server address (default 127.0.0.1)\n"
    "  -p port         server port (default 10823)\n"
    "  -c concurrency  requests kept in flight, one connection each (1..1024, default 1)\n"
    "  -t threads      client threads sharing them (default: min(concurrency, 2))\n"
    "  -d seconds      run this long (default 3); requests still in flight then are dropped\n"
    "  -r requests     or run exactly this many requests\n"
    "  -w workload     file of request paths (whitespace separated), used round robin\n"
    "  -u path         or a single request path\n"
    "  -P gf|http      protocol: GETFILE (default), or HTTP/1.1 GET with Connection: close\n"
    "  -T              discard bodies in the kernel (recv MSG_TRUNC) instead of copying them\n"
    "  -i idle_ms      a request with no progress for this long fails (default 10000)\n"
    "Prints one line: gfload proto= conc= threads= requests= failures= duration_s= rps= bytes=\n"
    "gbps= p50_us= p99_us= max_us= fail_connect= fail_status= fail_short= fail_proto=\n"
    "fail_timeout= (gbps: content bytes, 1e9 per second).\n";

enum proto { PROTO_GF, PROTO_HTTP };
enum cstate { ST_IDLE, ST_CONNECTING, ST_HEADER, ST_BODY, ST_EOF };
enum fail_kind { F_CONNECT, F_STATUS, F_SHORT, F_PROTO, F_TIMEOUT, F_KINDS };
static const char *const fail_names[F_KINDS] = {"connect", "status", "short", "proto", "timeout"};

struct workreq {
    char *buf; /* the request bytes, formatted once */
    size_t len;
};

struct config {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    enum proto proto;
    struct workreq *reqs;
    size_t nreqs;
    unsigned conc, nthreads;
    int trunc;
    int64_t idle_ns;
    int64_t deadline_ns; /* -d: no new request after this; 0 with -r */
    uint64_t total;      /* -r: requests to issue; 0 with -d */
    atomic_uint_fast64_t issued;
    pthread_barrier_t start;
};

struct conn {
    int fd;
    enum cstate st;
    const struct workreq *req;
    size_t sent;
    size_t hdr_len;
    uint64_t expected, received;
    int64_t start_ns, last_ns;
    char hdr[HTTP_HDR_MAX];
};

struct worker {
    pthread_t tid;
    struct config *cfg;
    unsigned id, nconn, active;
    size_t next_req;
    struct conn *conns;
    int ep;
    unsigned char *rbuf;
    uint64_t done, bytes;
    uint64_t fails[F_KINDS];
    int64_t end_ns;
    struct lat_hist lat;
};

static int64_t now_ns(void)
{
    return clock_mono_ns();
}

/* Parses an HTTP/1.x response header: returns its length, 0 for more, -EBADMSG, or -EPROTO for
 * a status other than 200. Stores Content-Length in *clen. */
static ssize_t http_parse(const char *b, size_t len, uint64_t *clen)
{
    size_t end = 0, i, line;
    int have_len = 0;

    for (i = 3; i < len; i++) {
        if (b[i - 3] == '\r' && b[i - 2] == '\n' && b[i - 1] == '\r' && b[i] == '\n') {
            end = i + 1;
            break;
        }
    }
    if (end == 0)
        return len >= HTTP_HDR_MAX ? -EBADMSG : 0;
    if (end < 12 || strncmp(b, "HTTP/1.", 7) != 0)
        return -EBADMSG;
    if (strncmp(b + 8, " 200", 4) != 0)
        return -EPROTO;
    for (line = 0; line < end;) {
        const char *l = b + line;
        size_t n = 0;

        while (line + n + 1 < end && !(l[n] == '\r' && l[n + 1] == '\n'))
            n++;
        if (n > 15 && strncasecmp(l, "content-length:", 15) == 0) {
            uint64_t v = 0;
            size_t k = 15;

            while (k < n && l[k] == ' ')
                k++;
            if (k == n)
                return -EBADMSG;
            for (; k < n && l[k] >= '0' && l[k] <= '9'; k++)
                v = v * 10 + (uint64_t)(l[k] - '0');
            *clen = v;
            have_len = 1;
        }
        line += n + 2;
    }
    return have_len ? (ssize_t)end : -EBADMSG;
}

static void conn_close(struct worker *w, struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->st = ST_IDLE;
    w->active--;
}

static void conn_fail(struct worker *w, struct conn *c, enum fail_kind k)
{
    w->fails[k]++;
    conn_close(w, c);
}

static int may_start(struct worker *w, int64_t now)
{
    struct config *cfg = w->cfg;

    if (cfg->total)
        return atomic_fetch_add(&cfg->issued, 1) < cfg->total;
    return now < cfg->deadline_ns;
}

static int send_request(struct worker *w, struct conn *c)
{
    while (c->sent < c->req->len) {
        ssize_t n = send(c->fd, c->req->buf + c->sent, c->req->len - c->sent, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            return -errno;
        }
        c->sent += (size_t)n;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        return -errno;
    c->st = ST_HEADER;
    return 0;
}

/* Starts the next request on slot c, or leaves it idle when the run is over. */
static void conn_start(struct worker *w, struct conn *c, int64_t now)
{
    struct config *cfg = w->cfg;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    int one = 1, fd, rc;

    if (!may_start(w, now))
        return;
    c->req = &cfg->reqs[w->next_req];
    w->next_req = (w->next_req + 1) % cfg->nreqs;
    c->sent = 0;
    c->hdr_len = 0;
    c->expected = 0;
    c->received = 0;
    c->start_ns = now;
    c->last_ns = now;
    w->active++;
    c->st = ST_CONNECTING;
    fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    c->fd = fd;
    if (fd < 0) {
        conn_fail(w, c, F_CONNECT);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    rc = connect(fd, (const struct sockaddr *)&cfg->addr, cfg->addrlen);
    if ((rc < 0 && errno != EINPROGRESS) || epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        conn_fail(w, c, F_CONNECT);
}

static void conn_done(struct worker *w, struct conn *c, int64_t now)
{
    w->done++;
    lat_add(&w->lat, (uint64_t)(now - c->start_ns));
    conn_close(w, c);
    conn_start(w, c, now);
}

/* Feeds header bytes; returns 1 when the header is complete (*body_off: where content starts
 * in data), 0 for more, or a failure kind + 1 negated. */
static int take_header(struct worker *w, struct conn *c, const unsigned char *data, size_t n,
                       size_t *body_off)
{
    size_t cap = w->cfg->proto == PROTO_GF ? GF_RESPONSE_MAX : HTTP_HDR_MAX;
    size_t room = cap - c->hdr_len, take = n < room ? n : room, old = c->hdr_len;
    ssize_t hl;

    memcpy(c->hdr + c->hdr_len, data, take);
    c->hdr_len += take;
    if (w->cfg->proto == PROTO_GF) {
        struct gf_response rsp;

        hl = gf_parse_response(c->hdr, c->hdr_len, &rsp, NULL);
        if (hl > 0 && rsp.status != GF_OK)
            return -(F_STATUS + 1);
        c->expected = rsp.length;
    } else {
        hl = http_parse(c->hdr, c->hdr_len, &c->expected);
        if (hl == -EPROTO)
            return -(F_STATUS + 1);
    }
    if (hl < 0)
        return -(F_PROTO + 1);
    if (hl == 0)
        return 0;
    *body_off = (size_t)hl - old;
    return 1;
}

static void on_readable(struct worker *w, struct conn *c, int64_t now)
{
    for (int round = 0; round < 4; round++) {
        size_t want = RECV_CAP;
        int trunc = w->cfg->trunc && c->st == ST_BODY;
        ssize_t n;

        if (c->st == ST_BODY && c->expected - c->received < want)
            want = (size_t)(c->expected - c->received) + 1; /* +1: notice extra bytes */
        n = recv(c->fd, trunc ? NULL : w->rbuf, want, trunc ? MSG_TRUNC : 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return;
            /* A reset after the whole response still counts, as in gfclient. */
            if (c->st == ST_EOF)
                conn_done(w, c, now);
            else
                conn_fail(w, c, F_SHORT);
            return;
        }
        if (n == 0) {
            if (c->st == ST_EOF)
                conn_done(w, c, now);
            else
                conn_fail(w, c, F_SHORT);
            return;
        }
        c->last_ns = now;
        size_t body = (size_t)n;
        if (c->st == ST_HEADER) {
            size_t off = 0;
            int rc = take_header(w, c, w->rbuf, (size_t)n, &off);

            if (rc < 0) {
                conn_fail(w, c, (enum fail_kind)(-rc - 1));
                return;
            }
            if (rc == 0)
                continue;
            body = (size_t)n - off;
            c->st = ST_BODY;
        } else if (c->st == ST_EOF) {
            conn_fail(w, c, F_PROTO); /* bytes beyond the announced length */
            return;
        }
        if (body > c->expected - c->received) {
            conn_fail(w, c, F_PROTO);
            return;
        }
        c->received += body;
        w->bytes += body;
        if (c->received == c->expected)
            c->st = ST_EOF; /* the server closes next: one more read usually sees it */
    }
}

static void on_event(struct worker *w, struct conn *c, uint32_t events, int64_t now)
{
    if (c->st == ST_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);

        if ((events & (EPOLLERR | EPOLLHUP)) ||
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
            conn_fail(w, c, F_CONNECT);
            return;
        }
        if (send_request(w, c) < 0)
            conn_fail(w, c, F_CONNECT);
        return;
    }
    on_readable(w, c, now);
}

static void sweep_idle(struct worker *w, int64_t now)
{
    for (unsigned i = 0; i < w->nconn; i++) {
        struct conn *c = &w->conns[i];

        if (c->st != ST_IDLE && now - c->last_ns > w->cfg->idle_ns) {
            conn_fail(w, c, F_TIMEOUT);
            conn_start(w, c, now);
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct config *cfg = w->cfg;
    struct epoll_event evs[64];
    int64_t now, last_sweep;

    pthread_barrier_wait(&cfg->start);
    now = now_ns();
    last_sweep = now;
    for (unsigned i = 0; i < w->nconn; i++)
        conn_start(w, &w->conns[i], now);
    while (w->active > 0) {
        int n = epoll_wait(w->ep, evs, 64, SWEEP_MS);

        now = now_ns();
        if (cfg->deadline_ns && now >= cfg->deadline_ns)
            break;
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;

            if (c->st == ST_IDLE)
                continue;
            on_event(w, c, evs[i].events, now);
            /* A failed request leaves its slot idle: start the next one. */
            if (c->st == ST_IDLE)
                conn_start(w, c, now);
        }
        if (now - last_sweep > (int64_t)SWEEP_MS * 1000000) {
            sweep_idle(w, now);
            last_sweep = now;
        }
    }
    /* Requests still in flight at the deadline are dropped, not counted. */
    for (unsigned i = 0; i < w->nconn; i++)
        if (w->conns[i].st != ST_IDLE)
            conn_close(w, &w->conns[i]);
    w->end_ns = cfg->deadline_ns ? cfg->deadline_ns : now;
    return NULL;
}

/* The request paths: the workload file, read as the GETFILE load clients read it (the reader
 * of tools/loadgen.h), or the single path. */
static int load_workload(const char *file, const char *single, struct loadgen_workload *wl,
                         char ***out, size_t *count)
{
    static char *one[1];
    const char *bad = NULL;
    int rc;

    if (single) {
        one[0] = strdup(single);
        *out = one;
        *count = 1;
        return one[0] ? 0 : -ENOMEM;
    }
    rc = loadgen_workload_load(file, wl, &bad);
    if (rc == -EINVAL && bad)
        log_err(0, "workload '%s': '%s' is not a valid request path", file, bad);
    if (rc < 0)
        return rc;
    *out = wl->paths;
    *count = wl->count;
    return wl->count ? 0 : -ENODATA;
}

static int format_requests(struct config *cfg, char **paths, size_t n, const char *host)
{
    cfg->reqs = calloc(n, sizeof(*cfg->reqs));
    if (!cfg->reqs)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t cap = GF_REQUEST_MAX + strlen(host) + 64;
        char *buf = malloc(cap);
        ssize_t len;

        if (!buf)
            return -ENOMEM;
        if (cfg->proto == PROTO_GF) {
            len = gf_format_request(buf, cap, paths[i], strlen(paths[i]));
        } else {
            int k = snprintf(buf, cap, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                             paths[i], host);
            len = k > 0 && (size_t)k < cap ? k : -ENOSPC;
        }
        if (len < 0) {
            free(buf);
            return (int)len;
        }
        cfg->reqs[i].buf = buf;
        cfg->reqs[i].len = (size_t)len;
    }
    cfg->nreqs = n;
    return 0;
}

static int resolve(struct config *cfg, const char *host, uint16_t port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    char serv[8];
    int rc;

    snprintf(serv, sizeof(serv), "%u", port);
    rc = getaddrinfo(host, serv, &hints, &res);
    if (rc != 0)
        return -ENOENT;
    memcpy(&cfg->addr, res->ai_addr, res->ai_addrlen);
    cfg->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int main(int argc, char **argv)
{
    static struct config cfg;
    static struct worker workers[MAX_THREADS];
    const char *host = "127.0.0.1", *workload = NULL, *single = NULL;
    uint16_t port = 10823;
    unsigned conc = 1, nthreads = 0, secs = 3, idle_ms = 10000;
    uint64_t total = 0;
    struct loadgen_workload wl = {0};
    char **paths;
    size_t npaths = 0;
    int opt, rc, have_d = 0;
    struct lat_hist all;
    uint64_t done = 0, bytes = 0, fails[F_KINDS] = {0}, nfail = 0;
    int64_t start, end = 0;
    double dur;

    log_set_role("gfload");
    while ((opt = getopt(argc, argv, "s:p:c:t:d:r:w:u:P:Ti:h")) != -1) {
        switch (opt) {
        case 's':
            host = optarg;
            break;
        case 'p':
            if (cli_parse_port(optarg, &port) < 0)
                cli_die_range("gfload", usage, 'p', optarg, 1, 65535);
            break;
        case 'c':
            if (cli_parse_uint(optarg, 1, MAX_CONC, &conc) < 0)
                cli_die_range("gfload", usage, 'c', optarg, 1, MAX_CONC);
            break;
        case 't':
            if (cli_parse_uint(optarg, 1, MAX_THREADS, &nthreads) < 0)
                cli_die_range("gfload", usage, 't', optarg, 1, MAX_THREADS);
            break;
        case 'd':
            if (cli_parse_uint(optarg, 1, 86400, &secs) < 0)
                cli_die_range("gfload", usage, 'd', optarg, 1, 86400);
            have_d = 1;
            break;
        case 'r':
            if (cli_parse_u64(optarg, 1, UINT64_MAX / 2, &total) < 0)
                cli_die_range("gfload", usage, 'r', optarg, 1, UINT64_MAX / 2);
            break;
        case 'w':
            workload = optarg;
            break;
        case 'u':
            single = optarg;
            break;
        case 'P':
            if (strcmp(optarg, "gf") == 0)
                cfg.proto = PROTO_GF;
            else if (strcmp(optarg, "http") == 0)
                cfg.proto = PROTO_HTTP;
            else
                cli_die_usage("gfload", usage, "-P: '%s' is neither gf nor http", optarg);
            break;
        case 'T':
            cfg.trunc = 1;
            break;
        case 'i':
            if (cli_parse_uint(optarg, 1, 3600000, &idle_ms) < 0)
                cli_die_range("gfload", usage, 'i', optarg, 1, 3600000);
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            cli_die_usage("gfload", usage, "unknown option");
        }
    }
    if (optind < argc)
        cli_die_usage("gfload", usage, "unexpected argument '%s'", argv[optind]);
    if (!workload == !single)
        cli_die_usage("gfload", usage, "give exactly one of -w and -u");
    if (have_d && total)
        cli_die_usage("gfload", usage, "give -d or -r, not both");
    if (nthreads == 0)
        nthreads = conc < 2 ? conc : 2;
    if (nthreads > conc)
        nthreads = conc;

    rc = load_workload(workload, single, &wl, &paths, &npaths);
    if (rc < 0) {
        log_err(-rc, "cannot read workload '%s'", workload ? workload : single);
        loadgen_workload_release(&wl);
        return 1;
    }
    rc = resolve(&cfg, host, port);
    if (rc == 0)
        rc = format_requests(&cfg, paths, npaths, host);
    if (rc < 0) {
        log_err(-rc, "cannot prepare requests for %s:%u", host, port);
        return 1;
    }
    cfg.conc = conc;
    cfg.nthreads = nthreads;
    cfg.idle_ns = (int64_t)idle_ms * 1000000;
    cfg.total = total;
    atomic_init(&cfg.issued, 0);
    pthread_barrier_init(&cfg.start, NULL, nthreads + 1);

    for (unsigned i = 0; i < nthreads; i++) {
        struct worker *w = &workers[i];

        w->cfg = &cfg;
        w->id = i;
        w->nconn = conc / nthreads + (i < conc % nthreads);
        w->next_req = (i * 7919u) % cfg.nreqs;
        w->conns = calloc(w->nconn, sizeof(*w->conns));
        w->rbuf = malloc(RECV_CAP);
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        if (!w->conns || !w->rbuf || w->ep < 0) {
            log_err(ENOMEM, "cannot set up thread %u", i);
            return 1;
        }
        for (unsigned k = 0; k < w->nconn; k++)
            w->conns[k].fd = -1;
        lat_init(&w->lat);
        rc = pthread_create(&w->tid, NULL, worker_main, w);
        if (rc != 0) {
            log_err(rc, "cannot start thread %u", i);
            return 1;
        }
    }
    start = now_ns();
    if (!total)
        cfg.deadline_ns = start + (int64_t)secs * 1000000000;
    pthread_barrier_wait(&cfg.start);

    lat_init(&all);
    for (unsigned i = 0; i < nthreads; i++) {
        struct worker *w = &workers[i];

        pthread_join(w->tid, NULL);
        done += w->done;
        bytes += w->bytes;
        for (int k = 0; k < F_KINDS; k++) {
            fails[k] += w->fails[k];
            nfail += w->fails[k];
        }
        if (w->end_ns > end)
            end = w->end_ns;
        lat_merge(&all, &w->lat);
        close(w->ep);
        free(w->conns);
        free(w->rbuf);
    }
    dur = (double)(end - start) / 1e9;
    if (dur <= 0)
        dur = 1e-9;
    printf("gfload proto=%s conc=%u threads=%u requests=%llu failures=%llu duration_s=%.3f "
           "rps=%.1f bytes=%llu gbps=%.4f p50_us=%.1f p99_us=%.1f max_us=%.1f",
           cfg.proto == PROTO_GF ? "gf" : "http", conc, nthreads, (unsigned long long)done,
           (unsigned long long)nfail, dur, (double)done / dur, (unsigned long long)bytes,
           (double)bytes / dur / 1e9, (double)lat_quantile(&all, 0.50) / 1e3,
           (double)lat_quantile(&all, 0.99) / 1e3, (double)all.max_ns / 1e3);
    for (int k = 0; k < F_KINDS; k++)
        printf(" fail_%s=%llu", fail_names[k], (unsigned long long)fails[k]);
    printf("\n");
    for (size_t i = 0; i < cfg.nreqs; i++)
        free(cfg.reqs[i].buf);
    free(cfg.reqs);
    if (single)
        free(paths[0]);
    loadgen_workload_release(&wl);
    pthread_barrier_destroy(&cfg.start);
    return nfail ? 3 : 0;
}
