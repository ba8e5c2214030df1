/* metrics_stats.c - the Prometheus families of a stats object. */
/* SPDX-License-Identifier: MIT */
#include "metrics_stats.h"

#include <errno.h>
#include <stdio.h>

#include "log.h"

#define NAME_MAX_ 96

#define ROLE_CACHE (1u << 0)
#define ROLE_PROXY (1u << 1)
#define ROLES      (ROLE_CACHE | ROLE_PROXY)

/* Outcomes each role can count (stats.h says which). */
static const struct {
    enum stats_outcome o;
    unsigned roles;
} outcomes[] = {
    {STATS_HIT, ROLES},   {STATS_MISS, ROLES},        {STATS_FILL, ROLES},
    {STATS_STALE, ROLES}, {STATS_ORIGIN, ROLE_PROXY}, {STATS_NOT_FOUND, ROLE_PROXY},
    {STATS_ERROR, ROLES}, {STATS_CANCELLED, ROLES},
};

/* Counters and gauges with one sample each: the word, the roles it belongs to, the name after
 * the prefix, its type and its help per role (cache, proxy). */
static const struct {
    unsigned word, roles;
    const char *name;
    enum prom_type type;
    const char *help_cache, *help_proxy;
} singles[] = {
    {STATS_C_BYTES, ROLES, "sent_bytes_total", PROM_COUNTER,
     "Content bytes written into the proxies' segments.", "Content bytes sent to clients."},
    {STATS_C_MESSAGES, ROLES, "queue_messages_total", PROM_COUNTER,
     "Command queue messages received.", "Command queue messages sent to the cache."},
    {STATS_C_REJECTED, ROLE_CACHE, "rejected_messages_total", PROM_COUNTER,
     "Command queue messages that failed validation.", NULL},
    {STATS_C_EVICTIONS, ROLE_CACHE, "evictions_total", PROM_COUNTER,
     "Entries evicted from the store.", NULL},
    {STATS_C_PURGES, ROLE_CACHE, "purges_total", PROM_COUNTER, "Entries purged on request.", NULL},
    {STATS_C_ORIGIN_FETCHES, ROLE_PROXY, "origin_fetches_total", PROM_COUNTER, NULL,
     "Requests sent to the origin."},
    {STATS_C_RETRIES, ROLE_PROXY, "origin_retries_total", PROM_COUNTER, NULL,
     "Origin fetches tried again."},
    {STATS_C_NOT_MODIFIED, ROLE_PROXY, "origin_not_modified_total", PROM_COUNTER, NULL,
     "Origin answers 304 Not Modified (revalidated)."},
    {STATS_G_QUEUE_DEPTH, ROLE_CACHE, "queue_depth", PROM_GAUGE,
     "Messages waiting in the command queue.", NULL},
    {STATS_G_QUEUE_CAP, ROLE_CACHE, "queue_capacity", PROM_GAUGE,
     "Messages the command queue holds at most.", NULL},
    {STATS_G_STORE_ENTRIES, ROLE_CACHE, "store_entries", PROM_GAUGE, "Entries in the index.", NULL},
    {STATS_G_STORE_BYTES, ROLE_CACHE, "store_bytes", PROM_GAUGE,
     "Bytes of the files the index lists.", NULL},
    {STATS_G_ACTIVE, ROLES, "active_transfers", PROM_GAUGE, "Transfers in progress.",
     "Transfers through the cache's segments in progress."},
};

static const char *name_of(char *buf, const char *prefix, const char *rest)
{
    snprintf(buf, NAME_MAX_, "%s_%s", prefix, rest);
    return buf;
}

/* Slots by state: the proxy's segments, the cache's workers. */
static void slots(struct prom_buf *b, const struct stats_region *r, const struct stats_snapshot *s,
                  const char *prefix)
{
    static const char *const states[] = {"free", "in_use", "abandoned"};
    uint64_t n[3] = {0, 0, 0};
    char name[NAME_MAX_];
    struct stats_slot sl;

    if (s->nslots == 0)
        return;
    for (unsigned i = 0; i < s->nslots; i++) {
        /* A slot caught mid-update again and again is left out rather than waited for. */
        if (stats_slot_read(r, i, &sl) == 0 && (unsigned)sl.state < 3)
            n[sl.state]++;
    }
    if (s->role == STATS_ROLE_PROXY)
        prom_family(b, name_of(name, prefix, "segments"), PROM_GAUGE,
                    "Shared memory segments of the pool, by state.");
    else
        prom_family(b, name_of(name, prefix, "workers"), PROM_GAUGE,
                    "Worker threads, by state (in_use: serving a request).");
    for (int i = 0; i < 3; i++) {
        struct prom_label l = {"state", states[i]};

        prom_sample_u64(b, name, &l, 1, n[i]);
    }
}

static void histograms(struct prom_buf *b, const struct stats_snapshot *s, const char *prefix)
{
    double bounds[STATS_LAT_BUCKETS - 1], sizes[STATS_SIZE_BUCKETS - 1];
    char name[NAME_MAX_];

    for (unsigned i = 0; i < STATS_LAT_BUCKETS - 1; i++)
        bounds[i] = (double)stats_latency_bounds_us[i] / 1e6;
    prom_family(b, name_of(name, prefix, "request_duration_seconds"), PROM_HISTOGRAM,
                s->role == STATS_ROLE_PROXY
                    ? "From the accept to the end of the response, per request."
                    : "From the request's arrival to the end of its transfer.");
    prom_histogram(b, name, NULL, 0, bounds, &s->w[STATS_W_LAT_BUCKET], STATS_LAT_BUCKETS - 1,
                   (double)s->w[STATS_W_LAT_SUM_US] / 1e6);
    for (unsigned i = 0; i < STATS_SIZE_BUCKETS - 1; i++)
        sizes[i] = (double)stats_size_bounds[i];
    prom_family(b, name_of(name, prefix, "response_size_bytes"), PROM_HISTOGRAM,
                s->role == STATS_ROLE_PROXY ? "Content bytes sent per request."
                                            : "Content bytes written per request.");
    prom_histogram(b, name, NULL, 0, sizes, &s->w[STATS_W_SIZE_BUCKET], STATS_SIZE_BUCKETS - 1,
                   (double)s->w[STATS_C_BYTES]);
}

int metrics_stats_serve(struct metrics_server **out, const struct metrics_endpoint *ep,
                        struct stats_region *stats)
{
    char url[METRICS_ADDR_MAX + 32];
    int rc;

    /* The page shows the stats object: no figures, no page. */
    if (stats == NULL) {
        log_err(0, "cannot serve metrics without the stats object");
        return -ENODATA;
    }
    rc = metrics_server_start(out, ep, metrics_stats_collect, stats);
    if (rc < 0) {
        log_err(-rc, "cannot serve metrics on %s port %u", ep->addr, (unsigned)ep->port);
        return rc;
    }
    metrics_server_url(*out, url, sizeof url);
    log_info("metrics at %s", url);
    return 0;
}

int metrics_stats_collect(struct prom_buf *b, void *arg)
{
    const struct stats_region *r = arg;
    struct stats_snapshot s;
    const char *prefix;
    char name[NAME_MAX_];
    unsigned role;
    int rc;

    rc = stats_snapshot(r, &s);
    if (rc < 0)
        return rc;
    role = s.role == STATS_ROLE_PROXY ? ROLE_PROXY : ROLE_CACHE;
    prefix = role == ROLE_PROXY ? "webproxy" : "simplecached";

    prom_family(b, name_of(name, prefix, "requests_total"), PROM_COUNTER,
                role == ROLE_PROXY
                    ? "Requests finished, by outcome: hit (from the cache), miss (not in the "
                      "cache: FILE_NOT_FOUND), fill, stale, origin (OK from the origin), "
                      "not_found (from the origin), error, cancelled (client left first)."
                    : "Requests finished, by outcome: hit (sent whole), miss (not in the index: "
                      "NOT_FOUND), fill, stale, error, cancelled (transfer abandoned or dropped).");
    for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++) {
        struct prom_label l = {"outcome", stats_word_name(outcomes[i].o)};

        if (outcomes[i].roles & role)
            prom_sample_u64(b, name, &l, 1, s.w[outcomes[i].o]);
    }
    for (size_t i = 0; i < sizeof singles / sizeof singles[0]; i++) {
        if (!(singles[i].roles & role))
            continue;
        prom_family(b, name_of(name, prefix, singles[i].name), singles[i].type,
                    role == ROLE_PROXY ? singles[i].help_proxy : singles[i].help_cache);
        prom_sample_u64(b, name, NULL, 0, s.w[singles[i].word]);
    }
    histograms(b, &s, prefix);
    slots(b, r, &s, prefix);
    prom_gauge(b, name_of(name, prefix, "threads"), "Worker threads configured.",
               (double)s.config.threads);
    if (role == ROLE_PROXY && s.config.segment_size > 0)
        prom_gauge(b, name_of(name, prefix, "segment_size_bytes"),
                   "Bytes per shared memory segment.", (double)s.config.segment_size);
    prom_gauge(b, name_of(name, prefix, "uptime_seconds"), "Seconds since the daemon started.",
               (double)s.uptime_ms / 1e3);
    prom_gauge(b, name_of(name, prefix, "start_time_seconds"),
               "When the daemon started, in Unix time.", (double)s.start_unix_ms / 1e3);
    return prom_buf_error(b);
}
