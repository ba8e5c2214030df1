/* cli.h - the programs' command-line conventions: strict numeric values, one-line usage errors,
 * --version, and the exit statuses every program documents. Programs only: these exit. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_CLI_H
#define GF_CLI_H

#include <stdint.h>

/* Exit statuses shared by every program (each one's --help lists those it uses). */
#define CLI_EXIT_OK           0 /* stopped by SIGINT/SIGTERM; a client: no request failed */
#define CLI_EXIT_FAILURE      1 /* any other failure (unreadable index, failed requests, ...) */
#define CLI_EXIT_USAGE        2 /* a bad option or value */
#define CLI_EXIT_CANNOT_START 3 /* port in use, another cache running, IPC objects refused */

/* The "Exit status" paragraph of a server's usage text. */
#define CLI_SERVER_EXIT_USAGE                                                                \
    "Exit status: 0 after SIGINT/SIGTERM, 1 for another failure (unreadable index, out of\n" \
    "memory), 2 for a bad option or value, 3 when it cannot start (port in use, another\n"   \
    "cache running, the IPC objects cannot be created).\n"

/* Parses a whole decimal string (no sign, no blanks, no trailing bytes) into *out when it lies in
 * [min, max]. Returns 0, -EINVAL (not a number) or -ERANGE (outside the range). */
int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* As cli_parse_u64 into an unsigned int / a TCP port (1..65535). */
int cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);
int cli_parse_port(const char *s, uint16_t *out);

/* Prints the two lines of a usage error on stderr, then exits CLI_EXIT_USAGE:
 *   PROG: REASON
 *   Try 'PROG --help' for more information. */
_Noreturn void cli_fail(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* cli_fail for a value that failed cli_parse_*: names the option ("-p", "--spool-max"), the
 * value and the range. */
_Noreturn void cli_fail_range(const char *prog, const char *opt, const char *value, uint64_t min,
                              uint64_t max);

/* cli_fail for what getopt_long returned with opterr = 0 and an optstring starting with ':':
 * ':' (an option without its value) or '?' (an unknown option). */
_Noreturn void cli_fail_getopt(const char *prog, int opt, char **argv);

/* The older form, for the bench programs (short options only): "PROG: REASON" and the whole
 * usage text on stderr, exit 2. */
_Noreturn void cli_die_usage(const char *prog, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
_Noreturn void cli_die_range(const char *prog, const char *usage, char opt, const char *value,
                             uint64_t min, uint64_t max);

/* Prints "PROG (getfile) VERSION" on stdout and exits 0: every program's --version. */
_Noreturn void cli_print_version(const char *prog);

/* Prints usage on stdout and exits 0: every program's -h and --help. */
_Noreturn void cli_print_help(const char *usage);

#endif
