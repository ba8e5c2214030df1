/* gfs_cli.h - the command-line options every GETFILE server program shares (-q -H -S -G -l),
 * and the log lines for the server library's events. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_GFS_CLI_H
#define GF_GFS_CLI_H

#include "gfserver.h"

#define GFS_CLI_TIMEOUT_MAX_MS 3600000
#define GFS_CLI_QUEUE_MAX      65536

/* getopt letters of the shared options, to append to a program's optstring. */
#define GFS_CLI_OPTSTRING "q:H:S:G:l:"

/* Their lines for a program's usage text. */
#define GFS_CLI_USAGE                                                                            \
    "  -q DEPTH     accepted connections waiting for a worker, 1..65536 (default 4 x threads)\n" \
    "  -H MS        the whole request header must arrive within MS ms (default 10000)\n"         \
    "  -S MS        give up on a client that accepts no byte for MS ms (default 10000)\n"        \
    "  -G MS        on SIGINT/SIGTERM, in-flight transfers get MS ms to finish (default 5000)\n" \
    "  -l LEVEL     log level: err, warn, info, debug (default info)\n"

/* If opt is one of the shared options, applies arg to *o (or to the log threshold for -l) and
 * returns 1; otherwise returns 0. A bad value prints the reason and usage, and exits 2. */
int gfs_cli_option(struct gfs_options *o, int opt, const char *arg, const char *prog,
                   const char *usage);

/* A gfs_options.on_event callback that logs each event as one line. */
void gfs_cli_log_event(enum gfs_event ev, int value, void *arg);

#endif
