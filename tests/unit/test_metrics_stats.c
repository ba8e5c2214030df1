/* test_metrics_stats.c - the /metrics page of a stats object: outcomes per role, counters and
 * gauges, the latency histogram made cumulative in seconds, slots by state, in a private IPC
 * namespace. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "metrics_stats.h"

#include "ipc_testutil.h"
#include "test.h"

static int isolate_rc = -1;

/* The page of r, written into b (released by the caller). */
static const char *page(struct prom_buf *b, struct stats_region *r)
{
    size_t len;

    prom_buf_init(b, 1 << 20);
    CHECK_EQ(metrics_stats_collect(b, r), 0);
    return prom_buf_text(b, &len);
}

/* A whole line of text. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = strstr(text, line); p != NULL; p = strstr(p + 1, line))
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

#define CHECK_LINE(text, line)                                                                  \
    do {                                                                                        \
        if (!has_line((text), (line))) {                                                        \
            fprintf(stderr, "%s:%d: no line '%s' in:\n%s", __FILE__, __LINE__, (line), (text)); \
            test_failures_++;                                                                   \
        }                                                                                       \
    } while (0)

static void test_cache_page(void)
{
    struct stats_config cfg = {.threads = 3};
    struct stats_region *r = NULL;
    struct prom_buf b;
    const char *t;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(stats_create(&r, STATS_ROLE_CACHE, 3, &cfg), 0);
    if (r == NULL)
        return;
    stats_request_done(r, STATS_HIT, 1000, 40);      /* <= 50 us */
    stats_request_done(r, STATS_HIT, 2000, 40);      /* <= 50 us */
    stats_request_done(r, STATS_HIT, 500, 3000);     /* <= 5 ms */
    stats_request_done(r, STATS_MISS, 0, 20000000);  /* above 10 s: +Inf only */
    stats_request_done(r, STATS_CANCELLED, 10, 100); /* <= 100 us */
    stats_add(r, STATS_C_MESSAGES, 6);
    stats_add(r, STATS_C_REJECTED, 1);
    stats_set(r, STATS_G_QUEUE_DEPTH, 2);
    stats_set(r, STATS_G_STORE_ENTRIES, 42);
    stats_slot_begin(r, 1, 1234, 0, "/a", 2);

    t = page(&b, r);
    CHECK_LINE(t, "# TYPE simplecached_requests_total counter");
    CHECK_LINE(t, "simplecached_requests_total{outcome=\"hit\"} 3");
    CHECK_LINE(t, "simplecached_requests_total{outcome=\"miss\"} 1");
    CHECK_LINE(t, "simplecached_requests_total{outcome=\"cancelled\"} 1");
    CHECK_LINE(t, "simplecached_requests_total{outcome=\"error\"} 0");
    CHECK(strstr(t, "outcome=\"origin\"") == NULL); /* the proxy's alone */
    CHECK(strstr(t, "origin_fetches") == NULL);
    CHECK_LINE(t, "simplecached_sent_bytes_total 3510");
    CHECK_LINE(t, "simplecached_queue_messages_total 6");
    CHECK_LINE(t, "simplecached_rejected_messages_total 1");
    CHECK_LINE(t, "simplecached_queue_depth 2");
    CHECK_LINE(t, "simplecached_store_entries 42");
    CHECK_LINE(t, "simplecached_active_transfers 1");
    CHECK_LINE(t, "# TYPE simplecached_request_duration_seconds histogram");
    CHECK_LINE(t, "simplecached_request_duration_seconds_bucket{le=\"5e-05\"} 2");
    CHECK_LINE(t, "simplecached_request_duration_seconds_bucket{le=\"0.0001\"} 3");
    CHECK_LINE(t, "simplecached_request_duration_seconds_bucket{le=\"0.0025\"} 3");
    CHECK_LINE(t, "simplecached_request_duration_seconds_bucket{le=\"0.005\"} 4");
    CHECK_LINE(t, "simplecached_request_duration_seconds_bucket{le=\"10\"} 4");
    CHECK_LINE(t, "simplecached_request_duration_seconds_bucket{le=\"+Inf\"} 5");
    CHECK_LINE(t, "simplecached_request_duration_seconds_count 5");
    CHECK_LINE(t, "simplecached_request_duration_seconds_sum 20.00318");
    CHECK_LINE(t, "# TYPE simplecached_response_size_bytes histogram");
    CHECK_LINE(t, "simplecached_response_size_bytes_bucket{le=\"1024\"} 4"); /* 1000 500 0 10 */
    CHECK_LINE(t, "simplecached_response_size_bytes_bucket{le=\"4096\"} 5");
    CHECK_LINE(t, "simplecached_response_size_bytes_bucket{le=\"1073741824\"} 5");
    CHECK_LINE(t, "simplecached_response_size_bytes_bucket{le=\"+Inf\"} 5");
    CHECK_LINE(t, "simplecached_response_size_bytes_sum 3510");
    CHECK_LINE(t, "simplecached_response_size_bytes_count 5");
    CHECK_LINE(t, "simplecached_workers{state=\"in_use\"} 1");
    CHECK_LINE(t, "simplecached_workers{state=\"free\"} 2");
    CHECK_LINE(t, "simplecached_threads 3");
    CHECK(strstr(t, "simplecached_uptime_seconds ") != NULL);
    CHECK(strstr(t, "webproxy_") == NULL);
    prom_buf_release(&b);
    stats_close(r);
}

static void test_proxy_page(void)
{
    struct stats_config cfg = {.threads = 8, .segments = 4, .segment_size = 65536};
    struct stats_region *r = NULL;
    struct prom_buf b;
    const char *t;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(stats_create(&r, STATS_ROLE_PROXY, 4, &cfg), 0);
    if (r == NULL)
        return;
    stats_request_done(r, STATS_ORIGIN, 7, 1);
    stats_request_done(r, STATS_NOT_FOUND, 0, 1);
    stats_add(r, STATS_C_ORIGIN_FETCHES, 2);
    stats_slot_state(r, 3, STATS_SLOT_ABANDONED, 9);

    t = page(&b, r);
    CHECK_LINE(t, "webproxy_requests_total{outcome=\"origin\"} 1");
    CHECK_LINE(t, "webproxy_requests_total{outcome=\"not_found\"} 1");
    CHECK_LINE(t, "webproxy_requests_total{outcome=\"hit\"} 0");
    CHECK_LINE(t, "webproxy_origin_fetches_total 2");
    CHECK_LINE(t, "webproxy_segments{state=\"free\"} 3");
    CHECK_LINE(t, "webproxy_segments{state=\"abandoned\"} 1");
    CHECK_LINE(t, "webproxy_segment_size_bytes 65536");
    CHECK_LINE(t, "webproxy_request_duration_seconds_count 2");
    CHECK(strstr(t, "queue_depth") == NULL); /* the cache's alone */
    CHECK(strstr(t, "simplecached_") == NULL);
    prom_buf_release(&b);
    stats_close(r);
}

int main(void)
{
    static const struct test_case cases[] = {T(test_cache_page), T(test_proxy_page)};

    isolate_rc = ipc_test_isolate_or_skip();
    return test_run_all(cases, sizeof cases / sizeof cases[0]);
}
