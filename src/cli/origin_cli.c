/* origin_cli.c - the origin retry options shared by webproxy and simplecached. */
/* SPDX-License-Identifier: MIT */
#include "origin_cli.h"
#include "cli.h"

void origin_retry_option(struct origin_retry *r, int which, const char *arg, const char *prog)
{
    switch (which) {
    case 0:
        if (cli_parse_uint(arg, 0, ORIGIN_RETRIES_MAX, &r->max) < 0)
            cli_fail_range(prog, "--origin-retries", arg, 0, ORIGIN_RETRIES_MAX);
        break;
    case 1:
        if (cli_parse_uint(arg, 1, ORIGIN_CLI_BASE_MAX, &r->base_ms) < 0)
            cli_fail_range(prog, "--origin-retry-ms", arg, 1, ORIGIN_CLI_BASE_MAX);
        break;
    default:
        if (cli_parse_uint(arg, 1, ORIGIN_CLI_BUDGET_MAX, &r->budget_ms) < 0)
            cli_fail_range(prog, "--origin-retry-budget", arg, 1, ORIGIN_CLI_BUDGET_MAX);
        break;
    }
}
