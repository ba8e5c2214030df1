/* latency.c - log-linear latency histogram (see latency.h). */
/* SPDX-License-Identifier: MIT */
#include "latency.h"

#include <string.h>

#define HALF (1u << (LAT_SUB_BITS - 1))

static unsigned lat_index(uint64_t v)
{
    unsigned msb, shift;

    if (v < 2 * HALF)
        return (unsigned)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    shift = msb - (LAT_SUB_BITS - 1);
    /* v >> shift lies in [HALF, 2 * HALF). */
    return shift * HALF + (unsigned)(v >> shift);
}

/* Lowest value of bucket idx, and its width. */
static uint64_t lat_bucket_low(unsigned idx, uint64_t *width)
{
    unsigned shift;

    if (idx < 2 * HALF) {
        *width = 1;
        return idx;
    }
    shift = idx / HALF - 1;
    *width = (uint64_t)1 << shift;
    return (uint64_t)(idx - shift * HALF) << shift;
}

void lat_init(struct lat_hist *h)
{
    memset(h, 0, sizeof(*h));
}

void lat_add(struct lat_hist *h, uint64_t ns)
{
    unsigned idx = lat_index(ns);

    if (idx >= LAT_BUCKETS)
        idx = LAT_BUCKETS - 1;
    h->bucket[idx]++;
    h->count++;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

void lat_merge(struct lat_hist *dst, const struct lat_hist *src)
{
    for (unsigned i = 0; i < LAT_BUCKETS; i++)
        dst->bucket[i] += src->bucket[i];
    dst->count += src->count;
    if (src->max_ns > dst->max_ns)
        dst->max_ns = src->max_ns;
}

uint64_t lat_quantile(const struct lat_hist *h, double q)
{
    uint64_t rank, seen = 0, width, low;

    if (h->count == 0)
        return 0;
    rank = (uint64_t)(q * (double)h->count + 0.5);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    for (unsigned i = 0; i < LAT_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            low = lat_bucket_low(i, &width);
            return low + width / 2;
        }
    }
    return h->max_ns;
}
