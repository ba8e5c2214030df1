/* cache_metrics.h - simplecached's /metrics page: the request service's counters by outcome
 * and the daemon's uptime (a metrics_collect_fn). */
/* SPDX-License-Identifier: MIT */
#ifndef GF_CACHE_METRICS_H
#define GF_CACHE_METRICS_H

#include <stdint.h>

#include "cache_server.h"
#include "prom_text.h"

struct cache_metrics {
    const struct cache_server *srv; /* borrowed: outlives every scrape */
    int64_t start_ns;               /* clock_mono_ns() at start */
    double start_unix;              /* wall-clock start, Unix seconds */
};

/* Sets m up for srv, noting the start time. */
void cache_metrics_init(struct cache_metrics *m, const struct cache_server *srv);

/* Writes the simplecached_* families (a metrics_collect_fn; arg is the struct cache_metrics).
 * Reads the server's counters only (cache_server_stats: atomics). */
int cache_metrics_collect(struct prom_buf *b, void *arg);

#endif
