/* cache_metrics.c - simplecached's /metrics page. */
/* SPDX-License-Identifier: MIT */
#include "cache_metrics.h"

#include <time.h>

#include "clock.h"

void cache_metrics_init(struct cache_metrics *m, const struct cache_server *srv)
{
    struct timespec ts;

    m->srv = srv;
    m->start_ns = clock_mono_ns();
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_unix = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cache_metrics_collect(struct prom_buf *b, void *arg)
{
    const struct cache_metrics *m = arg;
    struct cache_server_stats st;

    cache_server_stats(m->srv, &st);
    const struct {
        const char *outcome;
        uint64_t n;
    } rows[] = {
        {"hit", st.served},      {"not_found", st.not_found}, {"error", st.errors},
        {"aborted", st.aborted}, {"rejected", st.rejected},   {"stale", st.stale},
    };
    prom_family(b, "simplecached_requests_total", PROM_COUNTER,
                "Requests from the proxies, by outcome: hit (file sent whole), not_found, "
                "error, aborted (transfer ended early), rejected (invalid message or "
                "segment), stale (segment reused before the answer).");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct prom_label l = {"outcome", rows[i].outcome};

        prom_sample_u64(b, "simplecached_requests_total", &l, 1, rows[i].n);
    }
    prom_gauge(b, "simplecached_uptime_seconds", "Seconds since simplecached started.",
               (double)(clock_mono_ns() - m->start_ns) / 1e9);
    prom_gauge(b, "simplecached_start_time_seconds", "When simplecached started, in Unix time.",
               m->start_unix);
    return prom_buf_error(b);
}
