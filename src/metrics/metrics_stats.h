/* metrics_stats.h - a daemon's /metrics page from its stats object (stats.h), the one source of
 * its figures: requests by outcome, bytes, queue and store figures, the latency histogram,
 * segments or workers by state, uptime and configuration. Names start with the daemon's name
 * (webproxy_, simplecached_); docs/observability.md lists them. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_METRICS_STATS_H
#define GF_METRICS_STATS_H

#include "metrics_server.h"
#include "prom_text.h"
#include "stats.h"

/* Writes the page for the stats region r (a metrics_collect_fn; arg is the struct
 * stats_region, the daemon's own or a reader's). Takes one snapshot (stats_snapshot) and reads
 * each slot record once: never locks, never waits for a writer. Returns 0, or -errno: -EAGAIN
 * when no consistent snapshot could be had, the page's own errors (prom_text.h). */
int metrics_stats_collect(struct prom_buf *b, void *arg);

/* A daemon's --metrics: serves the page of stats (borrowed: it must outlive the server) on ep,
 * logging the URL, or why it cannot (no stats object: -ENODATA; the bind's -errno). The
 * daemon then exits CLI_EXIT_CANNOT_START. Stop with metrics_server_stop. */
int metrics_stats_serve(struct metrics_server **out, const struct metrics_endpoint *ep,
                        struct stats_region *stats);

#endif
