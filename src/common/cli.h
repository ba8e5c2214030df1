/* cli.h - strict parsing of numeric command-line values. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_CLI_H
#define GF_CLI_H

#include <stdint.h>

/* Parses a whole decimal string (no sign, no blanks, no trailing bytes) into *out when it lies in
 * [min, max]. Returns 0, -EINVAL (not a number) or -ERANGE (outside the range). */
int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* As cli_parse_u64 into an unsigned int / a TCP port (1..65535). */
int cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);
int cli_parse_port(const char *s, uint16_t *out);

/* Prints "PROG: -OPT: REASON" and the usage text to stderr, then exits 2. */
_Noreturn void cli_die_usage(const char *prog, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* For an option value that failed cli_parse_*: names the option, the value and the range. */
_Noreturn void cli_die_range(const char *prog, const char *usage, char opt, const char *value,
                             uint64_t min, uint64_t max);

/* Prints "PROG (getfile) VERSION" on stdout and exits 0: every program's --version. */
_Noreturn void cli_print_version(const char *prog);

#endif
