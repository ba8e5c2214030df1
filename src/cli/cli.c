/* cli.c - the programs' command-line conventions. */
/* SPDX-License-Identifier: MIT */
#include "cli.h"
#include "gf_version.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (s == NULL || *s == '\0')
        return -EINVAL;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
    uint64_t v;
    int rc = cli_parse_u64(s, min, max, &v);

    if (rc == 0)
        *out = (unsigned)v;
    return rc;
}

int cli_parse_port(const char *s, uint16_t *out)
{
    uint64_t v;
    int rc = cli_parse_u64(s, 1, 65535, &v);

    if (rc == 0)
        *out = (uint16_t)v;
    return rc;
}

void cli_fail(const char *prog, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", prog);
    exit(CLI_EXIT_USAGE);
}

void cli_fail_range(const char *prog, const char *opt, const char *value, uint64_t min,
                    uint64_t max)
{
    cli_fail(prog, "%s: '%s' is not a whole number from %llu to %llu", opt, value,
             (unsigned long long)min, (unsigned long long)max);
}

void cli_fail_getopt(const char *prog, int opt, char **argv)
{
    /* A long option is the word getopt_long stopped at, argv[optind - 1]; a short one is
     * optopt, its letter (that word may hold several letters). */
    const char *word = argv[optind - 1];
    int is_long = word[0] == '-' && word[1] == '-';

    if (opt == ':') {
        if (is_long)
            cli_fail(prog, "%s needs a value", word);
        cli_fail(prog, "-%c needs a value", optopt);
    }
    if (is_long)
        cli_fail(prog, "unknown option %s", word);
    cli_fail(prog, "unknown option -%c", optopt);
}

void cli_die_usage(const char *prog, const char *usage, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage);
    exit(2);
}

void cli_die_range(const char *prog, const char *usage, char opt, const char *value, uint64_t min,
                   uint64_t max)
{
    cli_die_usage(prog, usage, "-%c: '%s' is not a whole number from %llu to %llu", opt, value,
                  (unsigned long long)min, (unsigned long long)max);
}

void cli_print_version(const char *prog)
{
    printf("%s (getfile) %s\n", prog, GF_VERSION);
    exit(0);
}

void cli_print_help(const char *usage)
{
    fputs(usage, stdout);
    exit(0);
}
