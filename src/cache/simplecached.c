/* simplecached.c - the cache daemon: serves the files of its index into the proxies' segments. */
/* SPDX-License-Identifier: MIT */
#include "cache_server.h"
#include "cli.h"
#include "cmdq.h"
#include "log.h"
#include "pathmap.h"
#include "shm_guard.h"
#include "signals.h"
#include "simplecache.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: simplecached [-c INDEX] [-t THREADS] [-d DELAY_US] [-h]\n"
    "  -c INDEX     cache index, one '<request path> <local file>' per line (default locals.txt)\n"
    "  -t THREADS   worker threads, 1..512 (default 4)\n"
    "  -d DELAY_US  delay added to each lookup in microseconds, 0..2500000 (default 0)\n"
    "  -h           print this help and exit\n"
    "Stops cleanly on SIGINT or SIGTERM, removing the command queue it created.\n";

static volatile sig_atomic_t stop_requested; /* the only mutable global */

struct config {
    const char *index;
    unsigned nthreads;
    unsigned delay_us;
};

static void parse_args(int argc, char **argv, struct config *cfg)
{
    int c;

    opterr = 0;
    while ((c = getopt(argc, argv, ":c:t:d:h")) != -1) {
        switch (c) {
        case 'c':
            cfg->index = optarg;
            break;
        case 't':
            if (cli_parse_uint(optarg, 1, CACHE_THREADS_MAX, &cfg->nthreads) < 0)
                cli_die_range("simplecached", usage, 't', optarg, 1, CACHE_THREADS_MAX);
            break;
        case 'd':
            if (cli_parse_uint(optarg, 0, CACHE_DELAY_MAX_US, &cfg->delay_us) < 0)
                cli_die_range("simplecached", usage, 'd', optarg, 0, CACHE_DELAY_MAX_US);
            break;
        case 'h':
            fputs(usage, stdout);
            exit(0);
        case ':':
            cli_die_usage("simplecached", usage, "-%c: missing value", optopt);
        default:
            cli_die_usage("simplecached", usage, "-%c: unknown option", optopt);
        }
    }
    if (optind < argc)
        cli_die_usage("simplecached", usage, "unexpected argument '%s'", argv[optind]);
}

static void on_index_problem(const char *index, unsigned lineno, const char *req, const char *local,
                             const char *what, void *arg)
{
    (void)arg;
    if (req == NULL)
        log_warn(0, "%s:%u: %s; line skipped", index, lineno, what);
    else
        log_warn(0, "%s: '%s' -> '%s': %s; answered NOT_FOUND until it can be read", index, req,
                 local, what);
}

static void log_open_failure(int rc, pid_t holder)
{
    switch (-rc) {
    case EBUSY:
        log_err(0, "another simplecached (pid %ld) is already running for uid %ld; not starting",
                (long)holder, (long)geteuid());
        break;
    case EPERM:
        log_err(0,
                "the cache's names for uid %ld (registry /dev/shm/getfile-%ld-cache, or its "
                "instance lock) are held by another user; not starting",
                (long)geteuid(), (long)geteuid());
        break;
    case EMFILE:
        log_err(-rc, "cannot create the command queue: RLIMIT_MSGQUEUE reached");
        break;
    case ENOSPC:
        log_err(-rc, "cannot create the command queue: fs.mqueue.queues_max reached");
        break;
    case EINVAL:
        log_err(-rc, "cannot create the command queue: fs.mqueue.msg_max or msgsize_max too "
                     "small");
        break;
    default:
        log_err(-rc, "cannot create the command queue");
    }
}

int main(int argc, char **argv)
{
    struct config cfg = {.index = "locals.txt", .nthreads = 4, .delay_us = 0};
    struct cache_server_options opt;
    struct cache_server_stats st;
    struct simplecache *cache = NULL;
    struct cache_server *srv = NULL;
    struct cmdq_server q;
    pid_t holder = 0;
    size_t readable = 0;
    int rc, status = 1;

    parse_args(argc, argv, &cfg);
    log_set_role("simplecached");
    rc = signals_install_stop(&stop_requested);
    if (rc == 0)
        rc = shm_guard_install(); /* a segment shrunk under a transfer fails only that one */
    if (rc < 0) {
        log_err(-rc, "cannot install signal handlers");
        return 1;
    }

    rc = simplecache_load(cfg.index, on_index_problem, NULL, &cache, &readable);
    if (rc < 0) {
        log_err(0, "cannot read the cache index '%s': %s", cfg.index, pathmap_strerror(rc));
        return 1;
    }
    if (simplecache_count(cache) == 0)
        log_warn(0, "the cache index '%s' has no entries: every request is a miss", cfg.index);

    memset(&q, 0, sizeof q);
    rc = cmdq_server_open(&q, &holder);
    if (rc < 0) {
        log_open_failure(rc, holder);
        goto out_cache;
    }
    memset(&opt, 0, sizeof opt);
    opt.nthreads = cfg.nthreads;
    opt.delay_us = cfg.delay_us;
    rc = cache_server_new(&srv, &opt, cache, &q);
    if (rc < 0) {
        log_err(-rc, "cannot set up the workers");
        goto out_queue;
    }
    log_info("serving %zu of %zu entries of '%s' on queue '%s' with %u threads, delay %u us",
             readable, simplecache_count(cache), cfg.index, q.mq_name, cfg.nthreads, cfg.delay_us);
    rc = cache_server_run(srv, &stop_requested);
    cache_server_stats(srv, &st);
    log_info("stopped: %llu served, %llu not found, %llu errors, %llu aborted, %llu rejected, "
             "%llu stale",
             (unsigned long long)st.served, (unsigned long long)st.not_found,
             (unsigned long long)st.errors, (unsigned long long)st.aborted,
             (unsigned long long)st.rejected, (unsigned long long)st.stale);
    cache_server_free(srv);
    if (rc == 0)
        status = 0;
out_queue:
    cmdq_server_close(&q);
out_cache:
    simplecache_free(cache);
    return status;
}
