/* gfs_cli.c - the command-line options every GETFILE server program shares. */
/* SPDX-License-Identifier: MIT */
#include "gfs_cli.h"

#include "cli.h"
#include "log.h"

static int parse_ms(const char *arg, char opt, const char *prog, const char *usage)
{
    unsigned ms;

    if (cli_parse_uint(arg, 1, GFS_CLI_TIMEOUT_MAX_MS, &ms) < 0)
        cli_die_range(prog, usage, opt, arg, 1, GFS_CLI_TIMEOUT_MAX_MS);
    return (int)ms;
}

int gfs_cli_option(struct gfs_options *o, int opt, const char *arg, const char *prog,
                   const char *usage)
{
    enum log_level lvl;

    switch (opt) {
    case 'q':
        if (cli_parse_uint(arg, 1, GFS_CLI_QUEUE_MAX, &o->queue_depth) < 0)
            cli_die_range(prog, usage, 'q', arg, 1, GFS_CLI_QUEUE_MAX);
        return 1;
    case 'H':
        o->header_timeout_ms = parse_ms(arg, 'H', prog, usage);
        return 1;
    case 'S':
        o->send_timeout_ms = parse_ms(arg, 'S', prog, usage);
        return 1;
    case 'G':
        o->shutdown_grace_ms = parse_ms(arg, 'G', prog, usage);
        return 1;
    case 'l':
        if (log_level_parse(arg, &lvl) < 0)
            cli_die_usage(prog, usage, "-l: '%s' is not one of err, warn, info, debug", arg);
        log_threshold = lvl;
        return 1;
    default:
        return 0;
    }
}

void gfs_cli_log_event(enum gfs_event ev, int value, void *arg)
{
    (void)arg;
    switch (ev) {
    case GFS_EV_ACCEPT_PAUSED:
        log_warn(value, "cannot accept connections; pausing");
        break;
    case GFS_EV_INCOMPLETE:
        log_debug("a response ended incomplete");
        break;
    case GFS_EV_CUT:
        log_info("grace period over: cut %d transfer(s)", value);
        break;
    }
}
