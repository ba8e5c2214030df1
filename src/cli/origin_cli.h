/* origin_cli.h - the origin retry options shared by webproxy and simplecached. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_ORIGIN_CLI_H
#define GF_ORIGIN_CLI_H

#include "origin_fetch.h"

#define ORIGIN_CLI_BASE_MAX   60000u  /* --origin-retry-ms */
#define ORIGIN_CLI_BUDGET_MAX 600000u /* --origin-retry-budget */

/* Three long options, with the values first, first + 1 and first + 2. */
#define ORIGIN_RETRY_LONGOPTS(first)                                \
    {"origin-retries", required_argument, NULL, (first)},           \
        {"origin-retry-ms", required_argument, NULL, (first) + 1},  \
    {                                                               \
        "origin-retry-budget", required_argument, NULL, (first) + 2 \
    }

/* clang-format off */
#define ORIGIN_RETRY_USAGE                                                                  \
    "  --origin-retries N        an origin fetch that fails before anything was answered\n" \
    "                            (no connection, timeout, reset, 5xx) is tried again up to\n"\
    "                            N times, 0..10 (default 2); never for 3xx/4xx\n"           \
    "  --origin-retry-ms MS      the first pause before a retry is MS/2..MS, then doubles,\n"\
    "                            1..60000 (default 100)\n"                                   \
    "  --origin-retry-budget MS  no retry starts later than MS after the first attempt,\n"  \
    "                            1..600000 (default 10000)\n"
/* clang-format on */

/* Parses option which (0, 1, 2: the order of ORIGIN_RETRY_LONGOPTS) into r; a bad value exits
 * with a usage error naming it. */
void origin_retry_option(struct origin_retry *r, int which, const char *arg, const char *prog);

#endif
