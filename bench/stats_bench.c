/* stats_bench.c - what the live figures cost a request: the stats calls a webproxy makes for one
 * cache-mode request (a slot begin, 16 progress updates, a message, the slot's end and the
 * request's end), timed per request with 1..T threads writing at once. */
/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "clock.h"
#include "stats.h"

#define REQUESTS 200000u

static const char usage[] =
    "usage: stats_bench [-t max_threads] [-h]\n"
    "  -t max_threads  1, 2, 4, ... up to this many writer threads (default 8)\n"
    "Prints one line per thread count: stats_bench threads= ns_per_request=\n"
    "(each thread owns one slot and makes "
    "200000 requests' worth of stats calls).\n";

static struct stats_region *region;

static void *writer(void *arg)
{
    unsigned slot = (unsigned)(uintptr_t)arg;
    static const char path[] = "/courses/ud923/filecorpus/yellowstone.jpg";

    for (unsigned i = 0; i < REQUESTS; i++) {
        stats_slot_begin(region, slot, 0, slot + 1, path, sizeof path - 1);
        stats_add(region, STATS_C_MESSAGES, 1);
        for (unsigned c = 1; c <= 16; c++)
            stats_slot_progress(region, slot, c * 65536u, 16u * 65536u);
        stats_slot_end(region, slot, STATS_SLOT_FREE);
        stats_request_done(region, STATS_HIT, 16u * 65536u, 120);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned max = 8;

    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
        cli_print_help(usage);
    if (argc == 3 && strcmp(argv[1], "-t") == 0) {
        if (cli_parse_uint(argv[2], 1, 64, &max) < 0)
            cli_die_range("stats_bench", usage, 't', argv[2], 1, 64);
    } else if (argc != 1) {
        cli_die_usage("stats_bench", usage, "bad arguments");
    }
    int rc = stats_create(&region, STATS_ROLE_PROXY, max, NULL);
    if (rc < 0) {
        fprintf(stderr, "stats_bench: cannot create the stats object: %s\n", strerror(-rc));
        return 1;
    }
    for (unsigned n = 1; n <= max; n *= 2) {
        pthread_t th[64];
        int64_t t0 = clock_mono_ns();
        for (unsigned i = 0; i < n; i++)
            pthread_create(&th[i], NULL, writer, (void *)(uintptr_t)i);
        for (unsigned i = 0; i < n; i++)
            pthread_join(th[i], NULL);
        double ns = (double)(clock_mono_ns() - t0) / ((double)REQUESTS * n);
        /* Wall time per request over all threads: what the stats calls take out of a
         * daemon's throughput when that many workers finish requests at once. */
        printf("stats_bench threads=%u ns_per_request=%.0f\n", n, ns);
    }
    stats_close(region);
    return 0;
}
