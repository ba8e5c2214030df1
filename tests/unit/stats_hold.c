/* stats_hold.c - a test helper, not a test: a reader of a daemon's stats object that keeps it
 * mapped. "stats_hold PID" attaches (read-only, as gfmon does), prints "attached HITS" and then
 * takes snapshots without end, so a test can stop it (SIGSTOP) at any point, look at its
 * mapping in /proc/PID/maps, and kill it. Exit status 1 when it cannot attach. */
/* SPDX-License-Identifier: MIT */
#include "stats/stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    struct stats_region *r;
    struct stats_snapshot s;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: stats_hold PID\n");
        return 2;
    }
    rc = stats_attach(&r, (pid_t)atoi(argv[1]));
    if (rc < 0 || stats_snapshot(r, &s) < 0) {
        fprintf(stderr, "stats_hold: cannot attach: %s\n", strerror(-rc));
        return 1;
    }
    printf("attached %llu\n", (unsigned long long)s.w[STATS_HIT]);
    fflush(stdout);
    for (;;)
        (void)stats_snapshot(r, &s);
}
