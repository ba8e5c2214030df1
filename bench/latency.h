/* latency.h - a fixed-size log-linear latency histogram for the benchmark clients. */
/* SPDX-License-Identifier: MIT */
#ifndef BENCH_LATENCY_H
#define BENCH_LATENCY_H

#include <stdint.h>

/* Values below 2^LAT_SUB_BITS ns are exact; above, each power of two is split into
 * 2^(LAT_SUB_BITS-1) buckets, so a reported quantile is within 1 % of the true value. */
#define LAT_SUB_BITS 7
#define LAT_BUCKETS \
    ((64 - LAT_SUB_BITS + 1) * (1u << (LAT_SUB_BITS - 1)) + (1u << (LAT_SUB_BITS - 1)))

/* Plain data: one per thread, merged at the end (no locking). */
struct lat_hist {
    uint64_t count;
    uint64_t max_ns;
    uint64_t bucket[LAT_BUCKETS];
};

void lat_init(struct lat_hist *h);
void lat_add(struct lat_hist *h, uint64_t ns);
void lat_merge(struct lat_hist *dst, const struct lat_hist *src);

/* The q-quantile (0 < q <= 1) in nanoseconds (the middle of its bucket), 0 when empty. */
uint64_t lat_quantile(const struct lat_hist *h, double q);

#endif
