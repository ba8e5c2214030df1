/* gfs_cli.h - the command-line options every GETFILE server program shares (-q -H -S -G -l
 * --framing), and the log lines for the server library's events. Programs only: a bad value
 * exits. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_GFS_CLI_H
#define GF_GFS_CLI_H

#include "gfserver.h"

#define GFS_CLI_TIMEOUT_MAX_MS 3600000
#define GFS_CLI_QUEUE_MAX      65536

/* getopt letters of the shared options, to append to a program's optstring. */
#define GFS_CLI_OPTSTRING "q:H:S:G:l:"

/* getopt_long value of --framing, which has no letter; above any program's own long-option
 * values. */
#define GFS_CLI_OPT_FRAMING 0x1000

/* Their long forms, to put in a program's struct option array (before its terminator). */
/* clang-format off */
#define GFS_CLI_LONGOPTS                                                                         \
    {"queue-depth", required_argument, NULL, 'q'},                                               \
    {"header-timeout", required_argument, NULL, 'H'},                                            \
    {"send-timeout", required_argument, NULL, 'S'},                                              \
    {"grace", required_argument, NULL, 'G'},                                                     \
    {"log-level", required_argument, NULL, 'l'},                                                 \
    {"framing", required_argument, NULL, GFS_CLI_OPT_FRAMING}
/* clang-format on */

/* Their lines for a program's usage text. */
#define GFS_CLI_USAGE                                                                           \
    "  -q, --queue-depth DEPTH   accepted connections waiting for a worker, 1..65536\n"         \
    "                            (default 4 x threads)\n"                                       \
    "  -H, --header-timeout MS   the whole request header must arrive within MS ms\n"           \
    "                            (default 10000)\n"                                             \
    "  -S, --send-timeout MS     give up on a client that accepts no byte for MS ms\n"          \
    "                            (default 10000)\n"                                             \
    "  -G, --grace MS            on SIGINT/SIGTERM, in-flight transfers get MS ms to finish\n"  \
    "                            (default 5000)\n"                                              \
    "  -l, --log-level LEVEL     log level: err, warn, info, debug (default info)\n"            \
    "      --framing FORM        response headers: documented (GETFILE OK <len>\\r\\n\\r\\n,\n" \
    "                            the default) or legacy (GETFILE OK <len> , for the\n"          \
    "                            course's prebuilt clients)\n"

/* If opt is one of the shared options, applies arg to *o (or to the log threshold for -l) and
 * returns 1; otherwise returns 0. A bad value is a usage error (cli_fail: exits 2). The
 * programs' help texts say which is which. */
int gfs_cli_option(struct gfs_options *o, int opt, const char *arg, const char *prog);

/* -l LEVEL for any program: sets the log threshold, or is a usage error. */
void gfs_cli_log_level(const char *arg, const char *prog);

/* 1 for gfs_new's errors of binding or listening on the port (the program cannot start:
 * CLI_EXIT_CANNOT_START); its other failures (-ENOMEM, -EMFILE, -EINVAL, ...) come from
 * setting itself up and have nothing to do with the port. */
int gfs_cli_is_bind_error(int rc);

/* A gfs_options.on_event callback that logs each event as one line. */
void gfs_cli_log_event(enum gfs_event ev, int value, void *arg);

#endif
