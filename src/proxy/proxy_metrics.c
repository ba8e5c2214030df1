/* proxy_metrics.c - webproxy's request counters and histograms, and their /metrics page. */
/* SPDX-License-Identifier: MIT */
#include "proxy_metrics.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access_log.h"
#include "clock.h"

/* Upper bounds of the duration buckets, in seconds. */
static const double duration_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
#define NDUR (sizeof duration_bounds / sizeof duration_bounds[0])

/* Upper bounds of the size buckets, in bytes: 1 KiB to 1 GiB by fours. */
static const double size_bounds[] = {1024,    4096,     16384,    65536,     262144,    1048576,
                                     4194304, 16777216, 67108864, 268435456, 1073741824};
#define NSIZE (sizeof size_bounds / sizeof size_bounds[0])

/* Outcomes, in the order of their label values. */
enum outcome { OUT_HIT, OUT_MISS, OUT_ORIGIN, OUT_ERROR, OUT_INVALID, OUT_NO_REQUEST, NOUT };
static const char *const outcome_names[NOUT] = {"hit",   "miss",    "origin",
                                                "error", "invalid", "no_request"};

struct outcome_stats {
    _Atomic uint64_t duration[NDUR + 1]; /* per bucket, not cumulative; the last above all */
    _Atomic uint64_t duration_ns;        /* sum */
    _Atomic uint64_t bytes;              /* content bytes sent, sum */
};

struct proxy_metrics {
    int64_t start_ns;  /* clock_mono_ns() at creation */
    double start_unix; /* wall-clock time of creation, for process_start_time-like gauges */
    struct outcome_stats out[NOUT];
    _Atomic uint64_t size[NSIZE + 1]; /* content bytes per response, per bucket */
    _Atomic uint64_t size_sum;
};

int proxy_metrics_new(struct proxy_metrics **out)
{
    struct proxy_metrics *m = calloc(1, sizeof *m);
    struct timespec ts;

    if (m == NULL)
        return -ENOMEM;
    m->start_ns = clock_mono_ns();
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_unix = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    *out = m;
    return 0;
}

void proxy_metrics_free(struct proxy_metrics *m)
{
    free(m);
}

static enum outcome outcome_of(const struct gfs_done *d)
{
    static const char *const notes[] = {ALOG_HIT, ALOG_MISS, ALOG_ORIGIN, ALOG_ERROR};

    if (d->note != NULL) {
        for (int i = 0; i < (int)(sizeof notes / sizeof notes[0]); i++)
            if (strcmp(d->note, notes[i]) == 0)
                return (enum outcome)i;
        return OUT_ERROR;
    }
    if (d->status == GF_INVALID)
        return OUT_INVALID;
    return d->path == NULL ? OUT_NO_REQUEST : OUT_ERROR;
}

static size_t bucket(const double *bounds, size_t n, double v)
{
    size_t i = 0;

    while (i < n && v > bounds[i])
        i++;
    return i;
}

static void add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static uint64_t get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void proxy_metrics_done(const struct gfs_done *d, void *arg)
{
    struct proxy_metrics *m = arg;
    struct outcome_stats *o = &m->out[outcome_of(d)];
    uint64_t ns = d->duration_ns > 0 ? (uint64_t)d->duration_ns : 0;

    add(&o->duration[bucket(duration_bounds, NDUR, (double)ns / 1e9)], 1);
    add(&o->duration_ns, ns);
    add(&o->bytes, d->sent);
    if (d->path != NULL) {
        add(&m->size[bucket(size_bounds, NSIZE, (double)d->sent)], 1);
        add(&m->size_sum, d->sent);
    }
}

int proxy_metrics_collect(struct prom_buf *b, void *arg)
{
    const struct proxy_metrics *m = arg;
    uint64_t counts[NSIZE + 1 > NDUR + 1 ? NSIZE + 1 : NDUR + 1];

    prom_family(b, "webproxy_requests_total", PROM_COUNTER,
                "Connections served, by outcome: hit (from the cache), miss (not in the cache: "
                "FILE_NOT_FOUND), origin (answered from the origin), error, invalid (malformed "
                "request), no_request (closed before a request).");
    for (int i = 0; i < NOUT; i++) {
        struct prom_label l = {"outcome", outcome_names[i]};
        uint64_t n = 0;

        for (size_t k = 0; k <= NDUR; k++)
            n += get(&m->out[i].duration[k]);
        prom_sample_u64(b, "webproxy_requests_total", &l, 1, n);
    }
    prom_family(b, "webproxy_sent_bytes_total", PROM_COUNTER,
                "Content bytes sent to clients (after the header), by outcome.");
    for (int i = 0; i < NOUT; i++) {
        struct prom_label l = {"outcome", outcome_names[i]};

        prom_sample_u64(b, "webproxy_sent_bytes_total", &l, 1, get(&m->out[i].bytes));
    }
    prom_family(b, "webproxy_request_duration_seconds", PROM_HISTOGRAM,
                "From the accept to the end of the response, by outcome.");
    for (int i = 0; i < NOUT; i++) {
        struct prom_label l = {"outcome", outcome_names[i]};

        for (size_t k = 0; k <= NDUR; k++)
            counts[k] = get(&m->out[i].duration[k]);
        prom_histogram(b, "webproxy_request_duration_seconds", &l, 1, duration_bounds, counts, NDUR,
                       (double)get(&m->out[i].duration_ns) / 1e9);
    }
    prom_family(b, "webproxy_response_size_bytes", PROM_HISTOGRAM,
                "Content bytes sent per request (connections with a request).");
    for (size_t k = 0; k <= NSIZE; k++)
        counts[k] = get(&m->size[k]);
    prom_histogram(b, "webproxy_response_size_bytes", NULL, 0, size_bounds, counts, NSIZE,
                   (double)get(&m->size_sum));
    prom_gauge(b, "webproxy_uptime_seconds", "Seconds since webproxy started.",
               (double)(clock_mono_ns() - m->start_ns) / 1e9);
    prom_gauge(b, "webproxy_start_time_seconds", "When webproxy started, in Unix time.",
               m->start_unix);
    return prom_buf_error(b);
}
