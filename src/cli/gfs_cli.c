/* gfs_cli.c - the command-line options every GETFILE server program shares. */
/* SPDX-License-Identifier: MIT */
#include "gfs_cli.h"

#include "cli.h"
#include "log.h"

#include <errno.h>

static int parse_ms(const char *arg, const char *opt, const char *prog)
{
    unsigned ms;

    if (cli_parse_uint(arg, 1, GFS_CLI_TIMEOUT_MAX_MS, &ms) < 0)
        cli_fail_range(prog, opt, arg, 1, GFS_CLI_TIMEOUT_MAX_MS);
    return (int)ms;
}

void gfs_cli_log_level(const char *arg, const char *prog)
{
    enum log_level lvl;

    if (log_level_parse(arg, &lvl) < 0)
        cli_fail(prog, "-l: '%s' is not one of err, warn, info, debug", arg);
    log_threshold = lvl;
}

int gfs_cli_option(struct gfs_options *o, int opt, const char *arg, const char *prog)
{
    switch (opt) {
    case 'q':
        if (cli_parse_uint(arg, 1, GFS_CLI_QUEUE_MAX, &o->queue_depth) < 0)
            cli_fail_range(prog, "-q", arg, 1, GFS_CLI_QUEUE_MAX);
        return 1;
    case 'C':
        if (cli_parse_uint(arg, 1, GFS_CLI_QUEUE_MAX, &o->max_per_client) < 0)
            cli_fail_range(prog, "-C", arg, 1, GFS_CLI_QUEUE_MAX);
        return 1;
    case 'W':
        if (cli_parse_uint(arg, 16, GFS_CLI_QUEUE_MAX, &o->max_waiting) < 0)
            cli_fail_range(prog, "-W", arg, 16, GFS_CLI_QUEUE_MAX);
        return 1;
    case 'R':
        if (cli_parse_uint(arg, 1, GFS_CLI_RATE_MAX, &o->min_rate) < 0)
            cli_fail_range(prog, "-R", arg, 1, GFS_CLI_RATE_MAX);
        return 1;
    case 'T':
        o->response_timeout_ms = parse_ms(arg, "-T", prog);
        return 1;
    case 'H':
        o->header_timeout_ms = parse_ms(arg, "-H", prog);
        return 1;
    case 'S':
        o->send_timeout_ms = parse_ms(arg, "-S", prog);
        return 1;
    case 'G':
        o->shutdown_grace_ms = parse_ms(arg, "-G", prog);
        return 1;
    case 'l':
        gfs_cli_log_level(arg, prog);
        return 1;
    case GFS_CLI_OPT_FRAMING:
        if (gf_framing_parse(arg, &o->framing) < 0)
            cli_fail(prog, "--framing: '%s' is not one of documented, legacy", arg);
        return 1;
    default:
        return 0;
    }
}

int gfs_cli_is_bind_error(int rc)
{
    switch (-rc) {
    case EADDRINUSE:
    case EADDRNOTAVAIL:
    case EACCES:
    case EPERM:
    case EAFNOSUPPORT:
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
    case GFS_EV_REFUSED:
        log_debug("a connection was refused: too many waiting (per client or in all)");
        break;
    case GFS_EV_STOPPING:
        log_debug("stopping: no new connections");
        break;
    }
}
