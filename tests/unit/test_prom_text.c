/* test_prom_text.c - the Prometheus text writer: families, escaping, histograms, bounds; and
 * the --metrics endpoint parser. */
/* SPDX-License-Identifier: MIT */
#include "metrics_server.h"
#include "prom_text.h"
#include "test.h"

#include <errno.h>
#include <math.h>

/* Checks that b holds exactly want. */
#define CHECK_TEXT(b, want)                                                                 \
    do {                                                                                    \
        size_t len_;                                                                        \
        const char *got_ = prom_buf_text((b), &len_);                                       \
        if (strcmp(got_, (want)) != 0) {                                                    \
            fprintf(stderr, "%s:%d: text differs:\n--- got\n%s--- want\n%s---\n", __FILE__, \
                    __LINE__, got_, (want));                                                \
            test_failures_++;                                                               \
        }                                                                                   \
        CHECK_EQ(len_, strlen(want));                                                       \
    } while (0)

static void test_counter_family(void)
{
    struct prom_buf b;

    prom_buf_init(&b, 4096);
    CHECK_EQ(prom_counter(&b, "x_requests_total", "Requests served.", 42), 0);
    CHECK_EQ(prom_gauge(&b, "x_uptime_seconds", "Seconds since start.", 1.5), 0);
    CHECK_TEXT(&b, "# HELP x_requests_total Requests served.\n"
                   "# TYPE x_requests_total counter\n"
                   "x_requests_total 42\n"
                   "# HELP x_uptime_seconds Seconds since start.\n"
                   "# TYPE x_uptime_seconds gauge\n"
                   "x_uptime_seconds 1.5\n");
    prom_buf_release(&b);
}

static void test_labels_escaped(void)
{
    struct prom_buf b;
    struct prom_label l[] = {{"outcome", "hit"}, {"path", "a\\b\"c\nd"}};

    prom_buf_init(&b, 4096);
    CHECK_EQ(prom_family(&b, "x_total", PROM_COUNTER, "Back\\slash, \"quotes\"\nand a newline."),
             0);
    CHECK_EQ(prom_sample_u64(&b, "x_total", l, 2, 18446744073709551615ull), 0);
    CHECK_EQ(prom_sample_u64(&b, "x_total", l, 1, 0), 0);
    /* HELP escapes backslash and newline only; label values also escape double quotes. */
    CHECK_TEXT(&b, "# HELP x_total Back\\\\slash, \"quotes\"\\nand a newline.\n"
                   "# TYPE x_total counter\n"
                   "x_total{outcome=\"hit\",path=\"a\\\\b\\\"c\\nd\"} 18446744073709551615\n"
                   "x_total{outcome=\"hit\"} 0\n");
    prom_buf_release(&b);
}

static void test_histogram_cumulative(void)
{
    struct prom_buf b;
    const double bounds[] = {0.001, 0.01, 0.1, 1};
    const uint64_t counts[] = {3, 0, 2, 1, 4}; /* per bucket; the last one above 1 s */
    struct prom_label l[] = {{"outcome", "hit"}};

    prom_buf_init(&b, 4096);
    CHECK_EQ(prom_family(&b, "x_duration_seconds", PROM_HISTOGRAM, "Durations."), 0);
    CHECK_EQ(prom_histogram(&b, "x_duration_seconds", l, 1, bounds, counts, 4, 12.25), 0);
    CHECK_TEXT(&b, "# HELP x_duration_seconds Durations.\n"
                   "# TYPE x_duration_seconds histogram\n"
                   "x_duration_seconds_bucket{outcome=\"hit\",le=\"0.001\"} 3\n"
                   "x_duration_seconds_bucket{outcome=\"hit\",le=\"0.01\"} 3\n"
                   "x_duration_seconds_bucket{outcome=\"hit\",le=\"0.1\"} 5\n"
                   "x_duration_seconds_bucket{outcome=\"hit\",le=\"1\"} 6\n"
                   "x_duration_seconds_bucket{outcome=\"hit\",le=\"+Inf\"} 10\n"
                   "x_duration_seconds_sum{outcome=\"hit\"} 12.25\n"
                   "x_duration_seconds_count{outcome=\"hit\"} 10\n");
    prom_buf_release(&b);
}

static void test_histogram_no_labels_empty(void)
{
    struct prom_buf b;
    const double bounds[] = {1024, 1048576};
    const uint64_t counts[] = {0, 0, 0};

    prom_buf_init(&b, 4096);
    CHECK_EQ(prom_histogram(&b, "x_bytes", NULL, 0, bounds, counts, 2, 0), 0);
    CHECK_TEXT(&b, "x_bytes_bucket{le=\"1024\"} 0\n"
                   "x_bytes_bucket{le=\"1048576\"} 0\n"
                   "x_bytes_bucket{le=\"+Inf\"} 0\n"
                   "x_bytes_sum 0\n"
                   "x_bytes_count 0\n");
    prom_buf_release(&b);
}

static void test_histogram_bad_bounds(void)
{
    struct prom_buf b;
    const double down[] = {1, 0.5};
    const double inf[] = {1, INFINITY};
    const uint64_t counts[] = {0, 0, 0};

    prom_buf_init(&b, 4096);
    CHECK_EQ(prom_histogram(&b, "x", NULL, 0, down, counts, 2, 0), -EINVAL);
    prom_buf_release(&b);
    prom_buf_init(&b, 4096);
    CHECK_EQ(prom_histogram(&b, "x", NULL, 0, inf, counts, 2, 0), -EINVAL);
    prom_buf_release(&b);
}

static void test_bad_names_sticky(void)
{
    struct prom_buf b;
    struct prom_label reserved[] = {{"__name__", "x"}};
    struct prom_label digit[] = {{"1abc", "x"}};
    struct prom_label colon[] = {{"a:b", "x"}};

    prom_buf_init(&b, 4096);
    CHECK_EQ(prom_family(&b, "9lives", PROM_GAUGE, "no"), -EINVAL);
    /* The error sticks: nothing more is written. */
    CHECK_EQ(prom_counter(&b, "fine_total", "yes", 1), -EINVAL);
    CHECK_EQ(prom_buf_error(&b), -EINVAL);
    CHECK_TEXT(&b, "");
    prom_buf_release(&b);

    prom_buf_init(&b, 4096);
    CHECK_EQ(prom_sample_u64(&b, "x", reserved, 1, 1), -EINVAL);
    prom_buf_release(&b);
    prom_buf_init(&b, 4096);
    CHECK_EQ(prom_sample_u64(&b, "x", digit, 1, 1), -EINVAL);
    prom_buf_release(&b);
    prom_buf_init(&b, 4096);
    CHECK_EQ(prom_sample_u64(&b, "x", colon, 1, 1), -EINVAL);
    prom_buf_release(&b);
    /* Colons are allowed in metric names (recording rules' convention). */
    prom_buf_init(&b, 4096);
    CHECK_EQ(prom_sample_u64(&b, "job:x:rate", NULL, 0, 1), 0);
    CHECK_TEXT(&b, "job:x:rate 1\n");
    prom_buf_release(&b);
}

static void test_bound(void)
{
    struct prom_buf b;
    size_t len;
    char *t;

    prom_buf_init(&b, 20);
    CHECK_EQ(prom_sample_u64(&b, "abc", NULL, 0, 1), 0); /* "abc 1\n": 6 bytes */
    CHECK_EQ(prom_sample_u64(&b, "abc", NULL, 0, 2), 0);
    CHECK_EQ(prom_sample_u64(&b, "abc", NULL, 0, 3), 0);
    CHECK_EQ(prom_sample_u64(&b, "abc", NULL, 0, 4), -E2BIG); /* 24 > 20 */
    CHECK_EQ(prom_buf_error(&b), -E2BIG);
    t = prom_buf_take(&b, &len);
    CHECK(t == NULL); /* a page cut short is never handed out */
    CHECK_EQ(len, 0);
    prom_buf_release(&b);

    prom_buf_init(&b, 1 << 20);
    for (int i = 0; i < 10000; i++)
        prom_sample_u64(&b, "a_long_metric_name_total", NULL, 0, (uint64_t)i);
    CHECK_EQ(prom_buf_error(&b), 0);
    t = prom_buf_take(&b, &len);
    CHECK(t != NULL);
    CHECK(len > 200000);
    CHECK(t != NULL && strncmp(t + len - 30, "a_long_metric_name_total 9999\n", 30) == 0);
    free(t);
    prom_buf_release(&b);
}

static void test_format_double(void)
{
    char s[32];

    prom_format_double(s, sizeof s, 0.1);
    CHECK(strcmp(s, "0.1") == 0);
    prom_format_double(s, sizeof s, 1e-9);
    CHECK(strcmp(s, "1e-09") == 0);
    prom_format_double(s, sizeof s, 1048576);
    CHECK(strcmp(s, "1048576") == 0);
    prom_format_double(s, sizeof s, 1.0 / 3);
    CHECK(strtod(s, NULL) == 1.0 / 3);
    prom_format_double(s, sizeof s, NAN);
    CHECK(strcmp(s, "NaN") == 0);
    prom_format_double(s, sizeof s, INFINITY);
    CHECK(strcmp(s, "+Inf") == 0);
    prom_format_double(s, sizeof s, -INFINITY);
    CHECK(strcmp(s, "-Inf") == 0);
}

static void test_endpoint_parse(void)
{
    struct metrics_endpoint ep;
    const char *why = NULL;

    CHECK_EQ(metrics_endpoint_parse("9100", &ep, &why), 0);
    CHECK(strcmp(ep.addr, "127.0.0.1") == 0); /* a port alone: loopback only */
    CHECK_EQ(ep.port, 9100);
    CHECK_EQ(metrics_endpoint_parse("0.0.0.0:65535", &ep, &why), 0);
    CHECK(strcmp(ep.addr, "0.0.0.0") == 0);
    CHECK_EQ(ep.port, 65535);
    CHECK_EQ(metrics_endpoint_parse("[::1]:80", &ep, &why), 0);
    CHECK(strcmp(ep.addr, "::1") == 0);
    CHECK_EQ(ep.port, 80);
    const char *bad[] = {"",         "0",         "65536", "x",        "localhost:9100",
                         "::1:9100", "[::1]9100", "[::1]", "1.2.3:80", "127.0.0.1:",
                         ":9100",    "[]:9100",   "9100 ", "-1",       "[1.2.3.4]:80x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        if (metrics_endpoint_parse(bad[i], &ep, &why) != -EINVAL || why == NULL) {
            fprintf(stderr, "accepted '%s'\n", bad[i]);
            test_failures_++;
        }
    }
}

TEST_MAIN(T(test_counter_family), T(test_labels_escaped), T(test_histogram_cumulative),
          T(test_histogram_no_labels_empty), T(test_histogram_bad_bounds), T(test_bad_names_sticky),
          T(test_bound), T(test_format_double), T(test_endpoint_parse))
