/* simplecached.c - the cache daemon: serves the files of its index into the proxies' segments. */
/* SPDX-License-Identifier: MIT */
#include "cache_server.h"
#include "origin_cli.h"
#include "origin_pool.h"
#include "store.h"
#include "cli.h"
#include "clock.h"
#include "gfs_cli.h"
#include "instance_cli.h"
#include "cmdq.h"
#include "log.h"
#include "metrics_stats.h"
#include "pathmap.h"
#include "shm_guard.h"
#include "signals.h"
#include "simplecache.h"
#include "stats.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROG              "simplecached"
#define WAIT_DEFAULT_MS   10000  /* -w */
#define WAIT_MAX_MS       600000 /* -w, -g */
#define WAIT_SLICE_MS     50     /* a waiting start tries again this often */
#define GRACE_DEFAULT_MS  3000   /* -g */
#define STORE_MAX_DEFAULT (1ull << 30)
#define TTL_MAX_S         315360000u /* --ttl: ten years */

/* clang-format off */
static const char usage[] =
    "usage: " PROG " [options]\n"
    "The cache daemon: serves the files of its index to webproxy through a POSIX message\n"
    "queue and the proxy's shared memory segments. One cache runs per user and instance.\n"
    "  -c, --index INDEX       cache index, one '<request path> <local file>' per line\n"
    "                          (default locals.txt)\n"
    "  -t, --threads THREADS   worker threads, 1..512 (default 4)\n"
    "  -d, --delay DELAY_US    delay added to each lookup in microseconds, 0..2500000\n"
    "                          (default 0)\n"
    "  -l, --log-level LEVEL   log level: err, warn, info, debug (default info)\n"
    "      --ipc BACKEND       the channel to webproxy, the same as its --ipc: posix\n"
    "                          (message queue and shared memory, the default), sysv\n"
    "                          (System V objects), unix (a Unix socket carries the bytes)\n"
    "                          or fd (the proxy gets the file's descriptor and sends it\n"
    "                          with sendfile); control commands (gfctl) always come on\n"
    "                          the POSIX command queue\n"
    "      --instance NAME     be the cache of instance NAME (1 to 32 of A-Z a-z 0-9 _ -),\n"
    "                          served to the webproxy of the same --instance only\n"
    "                          (default: the instance named default)\n"
    "  -w, --wait WAIT_MS      when another simplecached of this user and instance runs,\n"
    "                          wait up to this long for it to stop, 0..600000\n"
    "                          (default 10000); then exit 3\n"
    "  -g, --grace GRACE_MS    on stop, transfers in progress get this long to finish,\n"
    "                          1..600000 (default 3000)\n"
    "  --origin BASE_URL       fill on miss: a path not in the index is fetched from\n"
    "                          BASE_URL + path (http:// or https://) into the store, and\n"
    "                          served while it arrives; needs --store-dir\n"
    "  --store-dir DIR         where fetched entries are kept (created if missing; on tmpfs\n"
    "                          it is a memory cache); found again after a restart\n"
    "  --store-max BYTES       bound of the store, least recently used entries evicted,\n"
    "                          4096..2^62 (default 1073741824); a larger body is served,\n"
    "                          not kept\n"
    "  --ttl SECONDS           how long an entry whose response said nothing about its\n"
    "                          freshness stays fresh, 0..315360000 (default 0: forever);\n"
    "                          Cache-Control s-maxage/max-age and Expires win; no-store,\n"
    "                          private and no-cache are never kept; a stale entry with an\n"
    "                          ETag or Last-Modified is revalidated (If-None-Match,\n"
    "                          If-Modified-Since): a 304 refreshes it without a body\n"
    "  --stale-if-error SECONDS\n"
    "                          while the origin fails (no answer after the retries, or a\n"
    "                          5xx), serve a stale entry at most this long past its\n"
    "                          expiry, logged as stale, 0..315360000 (default 0: never)\n"
    ORIGIN_RETRY_USAGE
    "      --metrics [ADDR:]PORT  serve Prometheus metrics at http://ADDR:PORT/metrics;\n"
    "                          ADDR is numeric, and a PORT alone listens on 127.0.0.1 only\n"
    "      --no-stats          publish no live figures (no stats object: gfmon does not see\n"
    "                          this cache; not with --metrics)\n"
    "  -h, --help              show this help and exit\n"
    "      --version           show the version and exit\n"
    "Signals: SIGINT/SIGTERM stop cleanly: the cache gives its names up at once (a new\n"
    "simplecached may start meanwhile), lets transfers in progress finish, removes the command\n"
    "queue it created. SIGHUP re-reads the index: new requests use the new one, transfers in\n"
    "flight finish from the old one; an index that cannot be read is refused with a log line\n"
    "and the old one kept.\n"
    "SIGUSR1, SIGUSR2 and SIGPIPE are ignored (logs go to stderr: no log file to reopen).\n"
    "Environment: GETFILE_CONN_IDLE_MS (100..3600000, default 30000): with --ipc unix or\n"
    "fd, a proxy's connection idle this long is closed (for tests); GETFILE_KEEP_MS\n"
    "(100..60000, default 1000): with --ipc fd, how long a proxy may keep a descriptor.\n"
    CLI_SERVER_EXIT_USAGE;
/* clang-format on */

/* Set by the signal handlers only. */
static volatile sig_atomic_t stop_requested, reload_requested;

struct config {
    const char *index;
    const char *store_dir;
    uint64_t store_max;
    unsigned ttl_s;
    unsigned stale_s;             /* --stale-if-error */
    struct origin_options origin; /* base_url NULL: no fill */
    unsigned nthreads;
    unsigned delay_us;
    unsigned wait_ms;
    unsigned grace_ms;
    struct metrics_endpoint metrics;
    int use_metrics;
    int no_stats;         /* --no-stats: no stats object */
    enum ipc_backend ipc; /* --ipc */
};

enum long_opt {
    OPT_VERSION = 256,
    OPT_METRICS,
    OPT_NO_STATS,
    OPT_ORIGIN,
    OPT_STORE_DIR,
    OPT_STORE_MAX,
    OPT_TTL,
    OPT_STALE_IF_ERROR,
    OPT_INSTANCE,
    OPT_IPC,
    OPT_ORIGIN_RETRY_FIRST, /* ORIGIN_RETRY_LONGOPTS: three options from here */
};

static const struct option long_opts[] = {
    {"index", required_argument, NULL, 'c'},
    {"threads", required_argument, NULL, 't'},
    {"delay", required_argument, NULL, 'd'},
    {"log-level", required_argument, NULL, 'l'},
    {"wait", required_argument, NULL, 'w'},
    {"grace", required_argument, NULL, 'g'},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"instance", required_argument, NULL, OPT_INSTANCE},
    {"ipc", required_argument, NULL, OPT_IPC},
    {"no-stats", no_argument, NULL, OPT_NO_STATS},
    {"origin", required_argument, NULL, OPT_ORIGIN},
    {"store-dir", required_argument, NULL, OPT_STORE_DIR},
    {"store-max", required_argument, NULL, OPT_STORE_MAX},
    {"ttl", required_argument, NULL, OPT_TTL},
    {"stale-if-error", required_argument, NULL, OPT_STALE_IF_ERROR},
    ORIGIN_RETRY_LONGOPTS(OPT_ORIGIN_RETRY_FIRST),
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static void parse_args(int argc, char **argv, struct config *cfg)
{
    char base[ORIGIN_BASE_MAX];
    const char *why;
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:t:d:l:w:g:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cfg->index = optarg;
            break;
        case 't':
            if (cli_parse_uint(optarg, 1, CACHE_THREADS_MAX, &cfg->nthreads) < 0)
                cli_fail_range(PROG, "-t", optarg, 1, CACHE_THREADS_MAX);
            break;
        case 'd':
            if (cli_parse_uint(optarg, 0, CACHE_DELAY_MAX_US, &cfg->delay_us) < 0)
                cli_fail_range(PROG, "-d", optarg, 0, CACHE_DELAY_MAX_US);
            break;
        case 'l':
            gfs_cli_log_level(optarg, PROG);
            break;
        case 'w':
            if (cli_parse_uint(optarg, 0, WAIT_MAX_MS, &cfg->wait_ms) < 0)
                cli_fail_range(PROG, "-w", optarg, 0, WAIT_MAX_MS);
            break;
        case 'g':
            if (cli_parse_uint(optarg, 1, WAIT_MAX_MS, &cfg->grace_ms) < 0)
                cli_fail_range(PROG, "-g", optarg, 1, WAIT_MAX_MS);
            break;
        case OPT_ORIGIN:
            if (origin_base_parse(optarg, base, sizeof base, &why) < 0)
                cli_fail(PROG, "--origin: '%s': %s", optarg, why);
            cfg->origin.base_url = optarg;
            break;
        case OPT_STORE_DIR:
            if (optarg[0] == '\0')
                cli_fail(PROG, "--store-dir: empty directory name");
            cfg->store_dir = optarg;
            break;
        case OPT_STORE_MAX:
            if (cli_parse_u64(optarg, 4096, UINT64_MAX >> 2, &cfg->store_max) < 0)
                cli_fail_range(PROG, "--store-max", optarg, 4096, UINT64_MAX >> 2);
            break;
        case OPT_STALE_IF_ERROR:
            if (cli_parse_uint(optarg, 0, TTL_MAX_S, &cfg->stale_s) < 0)
                cli_fail_range(PROG, "--stale-if-error", optarg, 0, TTL_MAX_S);
            break;
        case OPT_TTL:
            if (cli_parse_uint(optarg, 0, TTL_MAX_S, &cfg->ttl_s) < 0)
                cli_fail_range(PROG, "--ttl", optarg, 0, TTL_MAX_S);
            break;
        case OPT_ORIGIN_RETRY_FIRST:
        case OPT_ORIGIN_RETRY_FIRST + 1:
        case OPT_ORIGIN_RETRY_FIRST + 2:
            origin_retry_option(&cfg->origin.retry, c - OPT_ORIGIN_RETRY_FIRST, optarg, PROG);
            break;
        case OPT_METRICS:
            if (metrics_endpoint_parse(optarg, &cfg->metrics, &why) < 0)
                cli_fail(PROG, "--metrics: '%s': %s", optarg, why);
            cfg->use_metrics = 1;
            break;
        case OPT_INSTANCE:
            instance_cli_option(PROG, optarg);
            break;
        case OPT_IPC:
            if (ipc_backend_parse(optarg, &cfg->ipc) < 0)
                cli_fail(PROG, "--ipc: '%s': not a backend (" IPC_BACKEND_LIST ")", optarg);
            break;
        case OPT_NO_STATS:
            cfg->no_stats = 1;
            break;
        case 'h':
            cli_print_help(usage);
        case OPT_VERSION:
            cli_print_version(PROG);
        default:
            cli_fail_getopt(PROG, c, argv);
        }
    }
    if (optind < argc)
        cli_fail(PROG, "unexpected argument '%s'", argv[optind]);
    if (cfg->no_stats && cfg->use_metrics)
        cli_fail(PROG, "--metrics shows the stats object: not with --no-stats");
    if (cfg->origin.base_url != NULL && cfg->store_dir == NULL)
        cli_fail(PROG, "--origin needs --store-dir (fetched entries are kept there)");
    cfg->origin.spool_dir = cfg->store_dir; /* bodies without Content-Length */
    if (cache_backend_ops_for(cfg->ipc) == NULL)
        cli_fail(PROG, "--ipc %s: not built yet in this version", ipc_backend_name(cfg->ipc));
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

/* Counts the malformed lines of an index being reloaded, reporting each as at start. */
static void on_reload_problem(const char *index, unsigned lineno, const char *req,
                              const char *local, const char *what, void *arg)
{
    unsigned *malformed = arg;

    if (req == NULL)
        (*malformed)++;
    on_index_problem(index, lineno, req, local, what, NULL);
}

/* SIGHUP: the index again. One that cannot be read, or has a malformed line (a file caught
 * half-written, a typo), is refused whole: the old one stays. */
static int reload(void *arg, struct simplecache **out)
{
    const struct config *cfg = arg;
    struct simplecache *fresh = NULL;
    unsigned malformed = 0;
    size_t readable = 0;
    int rc;

    log_info("SIGHUP: re-reading the cache index '%s'", cfg->index);
    rc = simplecache_load(cfg->index, on_reload_problem, &malformed, &fresh, &readable);
    if (rc < 0) {
        log_err(0, "reload refused: cannot read the cache index '%s': %s; keeping the old one",
                cfg->index, pathmap_strerror(rc));
        return rc;
    }
    if (malformed > 0) {
        log_err(0,
                "reload refused: the cache index '%s' has %u malformed line(s); keeping the "
                "old one",
                cfg->index, malformed);
        simplecache_free(fresh);
        return -EINVAL;
    }
    log_info("reloaded: serving %zu of %zu entries of '%s'", readable, simplecache_count(fresh),
             cfg->index);
    *out = fresh;
    return 0;
}

static void log_open_failure(const struct cmdq_server *q, int rc, pid_t holder)
{
    if (q->rundir_failed) {
        log_err(-rc,
                "cannot use the runtime directory '%s' (it must be a directory of uid %ld, not "
                "a symlink; another user may have created it first): set GETFILE_RUNTIME_DIR or "
                "XDG_RUNTIME_DIR to a private directory; not starting",
                q->rundir, (long)geteuid());
        return;
    }
    switch (-rc) {
    case EBUSY:
        log_err(0,
                "another simplecached (pid %ld) is already running for uid %ld and did not "
                "stop; not starting",
                (long)holder, (long)geteuid());
        break;
    case EEXIST:
        log_err(-rc, "cannot create the command queue: every name tried was taken");
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

/* cmdq_server_open, tried again every WAIT_SLICE_MS for up to wait_ms while another cache
 * holds the names: a stopping cache gives them up as soon as it sees its signal. A stop signal
 * ends the wait. Returns what the last try returned (-EBUSY with *holder when it never ended). */
static int open_waiting(struct cmdq_server *q, unsigned wait_ms, pid_t *holder)
{
    int64_t deadline = clock_mono_ms() + wait_ms;
    int rc = cmdq_server_open(q, holder);

    if (rc == -EBUSY && wait_ms > 0)
        log_info("another simplecached (pid %ld) is running for uid %ld; waiting up to %u ms "
                 "for it to stop",
                 (long)*holder, (long)geteuid(), wait_ms);
    while (rc == -EBUSY && clock_ms_left(deadline) > 0 && !stop_requested) {
        int left = clock_ms_left(deadline);

        clock_sleep_ms(left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS);
        rc = cmdq_server_open(q, holder);
        if (rc == 0)
            log_info("the other simplecached gave its names up; starting");
    }
    return rc;
}

int main(int argc, char **argv)
{
    struct config cfg = {.index = "locals.txt",
                         .nthreads = 4,
                         .delay_us = 0,
                         .wait_ms = WAIT_DEFAULT_MS,
                         .grace_ms = GRACE_DEFAULT_MS,
                         .store_max = STORE_MAX_DEFAULT,
                         .origin = {.retry = {.max = ORIGIN_RETRY_DEFAULT}}};
    struct store *store = NULL;
    struct origin_pool *origin = NULL;
    int curl_ready = 0;
    struct cache_server_options opt;
    struct cache_server_stats st;
    struct simplecache *cache = NULL;
    struct cache_server *srv = NULL;
    struct metrics_server *msrv = NULL;
    struct cmdq_server q;
    struct stats_region *stats = NULL;
    struct stats_config sc;
    pid_t holder = 0;
    size_t readable = 0;
    int rc, status = CLI_EXIT_FAILURE;

    parse_args(argc, argv, &cfg);
    log_set_role(PROG);
    rc = signals_install(&stop_requested, &reload_requested);
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

    if (cfg.store_dir != NULL) {
        rc = store_open(&store, cfg.store_dir, cfg.store_max, cfg.ttl_s);
        if (rc == 0)
            store_set_stale_if_error(store, cfg.stale_s);
        if (rc < 0) {
            log_err(-rc, "cannot use the store directory '%s'", cfg.store_dir);
            goto out_cache;
        }
        struct store_stats ss;
        store_stats(store, &ss);
        log_info("store '%s': %llu entries, %llu of %llu bytes; %llu partial or damaged "
                 "file(s) removed",
                 cfg.store_dir, (unsigned long long)ss.entries, (unsigned long long)ss.bytes,
                 (unsigned long long)cfg.store_max, (unsigned long long)ss.discarded);
    }
    if (cfg.origin.base_url != NULL) {
        /* Before any thread: curl_global_init is not thread-safe. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            log_err(0, "cannot initialise libcurl");
            goto out_cache;
        }
        curl_ready = 1;
        rc = origin_pool_new(&origin, cfg.nthreads, &cfg.origin);
        if (rc < 0) {
            log_err(-rc, "cannot set up the origin fetchers");
            goto out_cache;
        }
    }

    memset(&q, 0, sizeof q);
    rc = open_waiting(&q, cfg.wait_ms, &holder);
    if (rc < 0) {
        log_open_failure(&q, rc, holder);
        status = CLI_EXIT_CANNOT_START;
        goto out_cache;
    }
    /* Live figures for gfmon (stats.h); the cache runs without them if they cannot be made. */
    memset(&sc, 0, sizeof sc);
    sc.threads = cfg.nthreads;
    sc.delay_us = cfg.delay_us;
    snprintf(sc.text, sizeof sc.text, "index=%s grace_ms=%u queue=%s ipc=%s", cfg.index,
             cfg.grace_ms, q.mq_name, ipc_backend_name(cfg.ipc));
    rc = cfg.no_stats ? 0 : stats_create(&stats, STATS_ROLE_CACHE, cfg.nthreads, &sc);
    if (rc < 0)
        log_warn(-rc, "cannot create the stats object; running without live figures");
    memset(&opt, 0, sizeof opt);
    opt.stats = stats;
    opt.nthreads = cfg.nthreads;
    opt.delay_us = cfg.delay_us;
    opt.grace_ms = (int)cfg.grace_ms;
    opt.reload_flag = &reload_requested;
    opt.reload = reload;
    opt.reload_arg = &cfg;
    opt.backend = cache_backend_ops_for(cfg.ipc);
    if (origin != NULL) {
        opt.store = store;
        opt.origin = origin;
        opt.max_fills = cfg.nthreads;
    } else if (store != NULL) {
        log_info("no --origin: the store is served, nothing is fetched");
        opt.store = store;
    }
    size_t count = simplecache_count(cache);
    rc = cache_server_new(&srv, &opt, cache, &q);
    if (rc < 0) {
        log_err(-rc, "cannot set up the workers");
        status = CLI_EXIT_CANNOT_START; /* as every other start failure (a backend's endpoint) */
        goto out_queue;
    }
    cache = NULL; /* the server's now */
    if (cfg.use_metrics && metrics_stats_serve(&msrv, &cfg.metrics, stats) < 0) {
        status = CLI_EXIT_CANNOT_START;
        goto out_server;
    }
    log_info("serving %zu of %zu entries of '%s' on queue '%s' (--ipc %s) with %u threads, "
             "delay %u us; instance %s, registry in '%s'",
             readable, count, cfg.index, q.mq_name, ipc_backend_name(cfg.ipc), cfg.nthreads,
             cfg.delay_us, ipc_instance(), q.rundir);
    rc = cache_server_run(srv, &stop_requested);
    metrics_server_stop(msrv);
    cache_server_stats(srv, &st);
    log_info("stopped: %llu served, %llu not found, %llu errors, %llu aborted, %llu rejected, "
             "%llu stale",
             (unsigned long long)st.served, (unsigned long long)st.not_found,
             (unsigned long long)st.errors, (unsigned long long)st.aborted,
             (unsigned long long)st.rejected, (unsigned long long)st.stale);
    if (store != NULL) {
        struct store_stats ss;
        store_stats(store, &ss);
        log_info("store: %llu entries, %llu bytes; %llu hits, %llu fills (%llu kept, %llu too "
                 "big, %llu not to be kept, %llu refused by the disk, %llu failed), %llu joined a "
                 "fill, %llu evicted, %llu expired, %llu damaged",
                 (unsigned long long)ss.entries, (unsigned long long)ss.bytes,
                 (unsigned long long)ss.hits, (unsigned long long)ss.fills,
                 (unsigned long long)ss.stored, (unsigned long long)ss.too_big,
                 (unsigned long long)ss.uncacheable, (unsigned long long)ss.refused,
                 (unsigned long long)ss.failed, (unsigned long long)ss.coalesced,
                 (unsigned long long)ss.evictions, (unsigned long long)ss.expired,
                 (unsigned long long)ss.discarded);
    }
    if (origin != NULL) {
        uint64_t requests, connects, retries;
        unsigned used;
        origin_pool_stats(origin, &requests, &connects, &retries, &used);
        log_info("origin: %llu fetches over %llu connections, %llu retries",
                 (unsigned long long)requests, (unsigned long long)connects,
                 (unsigned long long)retries);
    }
    if (rc == 0)
        status = 0;
out_server:
    cache_server_free(srv);
out_queue:
    cmdq_server_close(&q);
    stats_close(stats);
out_cache:
    origin_pool_free(origin);
    store_close(store);
    if (curl_ready)
        curl_global_cleanup();
    simplecache_free(cache);
    return status;
}
