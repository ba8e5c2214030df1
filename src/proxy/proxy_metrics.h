/* proxy_metrics.h - webproxy's figures for GET /metrics: requests by outcome, their durations
 * and sizes, counted when each connection ends (a gfs_done_fn), and the page that shows them
 * (a metrics_collect_fn). Counting is a few relaxed atomic additions: no lock, no wait. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_PROXY_METRICS_H
#define GF_PROXY_METRICS_H

#include "gfserver.h"
#include "prom_text.h"

struct proxy_metrics;

/* Creates the counters, all zero, and notes the start time. Returns 0 and *out, or -ENOMEM. */
int proxy_metrics_new(struct proxy_metrics **out);

void proxy_metrics_free(struct proxy_metrics *m); /* NULL is a no-op */

/* Counts one connection (a gfs_done_fn; arg is the struct proxy_metrics). The outcome comes
 * from the handler's note (access_log.h: HIT, MISS, ORIGIN, ERROR), else from the status the
 * library sent (INVALID) or none (a client that sent no request). Thread-safe. */
void proxy_metrics_done(const struct gfs_done *d, void *arg);

/* Writes the webproxy_* families (a metrics_collect_fn; arg is the struct proxy_metrics). */
int proxy_metrics_collect(struct prom_buf *b, void *arg);

#endif
