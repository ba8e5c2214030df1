/* webproxy.c - the GETFILE proxy: serves each file from the cache, an HTTP origin, or both. */
/* SPDX-License-Identifier: MIT */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access_log.h"
#include "cli.h"
#include "gfs_cli.h"
#include "gfserver.h"
#include "cache_chan.h"
#include "handle_with_cache.h"
#include "handle_with_curl.h"
#include "http_front.h"
#include "instance_cli.h"
#include "log.h"
#include "metrics_stats.h"
#include "origin_cli.h"
#include "origin_pool.h"
#include "seg_classes.h"
#include "seg_pool.h"
#include "shm_chan.h"
#include "shm_guard.h"
#include "signals.h"
#include "stats.h"

#define PROG          "webproxy"
#define MAX_THREADS   1024
#define DEFAULT_NSEGS 8
#define DEFAULT_SEGSZ (1u << 20)

/* clang-format off */
static const char usage[] =
    "usage: " PROG " [options]\n"
    "Serves files over GETFILE from the cache (simplecached, through shared memory), from an\n"
    "HTTP origin (BASE_URL + request path, fetched with libcurl), or both:\n"
    "  -s and no -n/-z: origin mode;  -n/-z or nothing: cache mode;  -s with -n/-z: the cache\n"
    "  first, the origin on a miss or when the cache is not running.\n"
    "  -p, --port PORT           port to listen on (default 10823)\n"
    "      --http [ADDR:]PORT    also serve HTTP/1.1 (GET, HEAD) there, ADDR a name or an\n"
    "                            address ([::1] for IPv6; default every address)\n"
    "      --http-map-max BYTES  with --ipc fd: HTTP bodies of --http-map-min bytes or more\n"
    "                            from files up to BYTES are sent from kept mappings,\n"
    "                            others with sendfile; 0: always sendfile (default 67108864)\n"
    "      --http-map-min BYTES  the shortest body sent from a kept mapping, at least 1\n"
    "                            (default 1048576)\n"
    "  -t, --threads THREADS     worker threads, 1..1024 (default 8)\n"
    "  -s, --origin BASE_URL     origin, http:// or https:// with a host,\n"
    "                            e.g. http://127.0.0.1:8080/files\n"
    "  -n, --segments SEGMENTS   shared memory segments, 1..1024 (default 8)\n"
    "  -z, --segment-size BYTES  bytes per segment, 512..1073741824 (default 1048576)\n"
    "      --segments SIZE:COUNT[,SIZE:COUNT...]\n"
    "                            size classes instead of -n/-z (not with them), SIZE with\n"
    "                            K, M or G, e.g. 64K:32,1M:8,16M:2: a transfer takes the\n"
    "                            smallest class that holds the file when its size is known\n"
    "                            (from an earlier transfer), else the largest\n"
    "  --instance NAME           use the simplecached of instance NAME (1 to 32 of A-Z a-z\n"
    "                            0-9 _ -) (default: the instance named default)\n"
    "  --ipc BACKEND             the channel to simplecached, the same as its --ipc: posix\n"
    "                            (message queue and shared memory, default), sysv (System V\n"
    "                            objects), unix (a Unix socket carries the bytes) or fd (the\n"
    "                            cache passes the file, sent with sendfile)\n"
    GFS_CLI_USAGE
    "  --connect-timeout MS      origin connect timeout (default 5000)\n"
    "  --low-speed-time S        an origin transfer below the low-speed limit for S seconds\n"
    "                            fails (default 30)\n"
    "  --low-speed-limit B       the low-speed limit in bytes/s (default 1)\n"
    "  --spool-max BYTES         longest origin body without Content-Length, spooled to a\n"
    "                            temporary file before sending (default 268435456)\n"
    "  --spool-dir DIR           where to spool (default $TMPDIR, else /tmp)\n"
    ORIGIN_RETRY_USAGE
    "  --cache-wait MS           longest wait for a free segment (default 10000)\n"
    "  --cache-stall MS          longest wait for the cache's next chunk (default 30000)\n"
    "  --access-log FILE         one line per request appended to FILE (- for stderr): time,\n"
    "                            client, path, status, bytes, seconds, cache result\n"
    "  --metrics [ADDR:]PORT     serve Prometheus metrics at http://ADDR:PORT/metrics; ADDR\n"
    "                            is numeric, and a PORT alone listens on 127.0.0.1 only\n"
    "  --no-stats                publish no live figures (no stats object: gfmon does not\n"
    "                            see this proxy; not with --metrics)\n"
    "  -h, --help                show this help and exit\n"
    "      --version             show the version and exit\n"
    "Signals: SIGINT/SIGTERM stop (in-flight transfers get the -G grace); SIGUSR1 reopens\n"
    "the --access-log FILE (ignored without one); SIGHUP (nothing to reload), SIGUSR2 and\n"
    "SIGPIPE are ignored.\n"
    CLI_SERVER_EXIT_USAGE;
/* clang-format on */

/* The only mutable globals: set by signal handlers. */
static volatile sig_atomic_t stop_requested;
static atomic_int reopen_requested; /* read and cleared by any worker */

struct config {
    uint16_t port;
    unsigned nthreads, nsegs;
    uint64_t segsize;
    struct seg_classes classes; /* --segments SIZE:COUNT,...; n == 0: one class of -n/-z */
    int cache_wait_ms, cache_stall_ms;
    struct gfs_options server; /* the shared -q -H -S -G values */
    int use_cache, use_origin;
    struct origin_options origin;
    const char *access_log; /* NULL: none */
    int use_http;
    const char *http_spec; /* --http as given */
    char http_host[256];   /* "" = every address */
    uint16_t http_port;
    uint64_t http_map_max; /* --http-map-max */
    uint64_t http_map_min; /* --http-map-min */
    struct metrics_endpoint metrics;
    int use_metrics;
    int no_stats;         /* --no-stats: no stats object */
    enum ipc_backend ipc; /* --ipc */
};

/* Where files come from: one for all server workers. */
struct sources {
    struct origin_pool *origin;     /* NULL without -s; thread-safe */
    const struct cache_chan *cache; /* NULL in origin mode; thread-safe */
    struct stats_region *stats;     /* live figures (gfmon); NULL: none; thread-safe */
};

/* What on_done reports to: the live figures and the access log (each may be NULL). */
struct done_sinks {
    struct stats_region *stats;
    struct access_log *alog;
};

/* handle_with_cache results that leave the request unanswered, so the origin may take it:
 * only before the header went out (after it, the client must see a short transfer). */
static int cache_can_fall_back(const struct gfs_ctx *ctx, int rc)
{
    if (gfs_ctx_header_sent(ctx))
        return 0;
    return rc == -ENOENT || rc == -ENOTCONN || rc == -ESRCH || rc == -ETIMEDOUT;
}

/* Serves one request, and notes the cache result for the access log (access_log.h):
 * cache mode: HIT, MISS (FILE_NOT_FOUND sent) or ERROR; origin mode: ORIGIN (whatever the
 * origin answered) or ERROR; both: HIT, else ORIGIN or ERROR as in origin mode. */
static int handle(struct gfs_ctx *ctx, const char *path, size_t path_len, void *arg)
{
    const struct sources *src = arg;
    int rc;

    if (src->cache != NULL) {
        rc = cache_chan_handle(src->cache, ctx, path, path_len, 0);
        if (rc == 0) {
            gfs_ctx_set_note(ctx, ALOG_HIT);
            return 0;
        }
        /* -ENODATA: the cache asked its origin, which said 404; one fetch per miss, not two. */
        if ((src->origin == NULL && rc == -ENOENT) || rc == -ENODATA) {
            rc = gfs_send_header(ctx, GF_FILE_NOT_FOUND, 0);
            gfs_ctx_set_note(ctx, rc == 0 ? ALOG_MISS : ALOG_ERROR);
            return rc;
        }
        if (src->origin == NULL || !cache_can_fall_back(ctx, rc)) {
            gfs_ctx_set_note(ctx, ALOG_ERROR);
            return rc;
        }
        log_msg(LOGL_DEBUG, -rc, "'%s': not from the cache; asking the origin", path);
    }
    /* As many fetchers as workers, so there is always one; the last one given back comes
     * first, so the connections in use stay warm (origin_pool.h). */
    stats_add(src->stats, STATS_C_ORIGIN_FETCHES, 1);
    struct origin_fetcher *f = origin_pool_take(src->origin);
    uint64_t requests, connects, retries0, retries1;
    origin_fetcher_stats(f, &requests, &connects, &retries0);
    rc = handle_with_curl(ctx, path, path_len, f);
    origin_fetcher_stats(f, &requests, &connects, &retries1);
    stats_add(src->stats, STATS_C_RETRIES, retries1 - retries0);
    origin_pool_give(src->origin, f);
    gfs_ctx_set_note(ctx, rc == 0 ? ALOG_ORIGIN : ALOG_ERROR);
    return rc;
}

/* The HTTP front end's quick handler (http_front.h), on libmicrohttpd's thread: a hit the
 * cache channel can serve from what the proxy holds (--ipc fd: a kept descriptor), with no
 * round trip and no wait. Anything else returns with no header sent and goes to handle. */
static int handle_quick(struct gfs_ctx *ctx, const char *path, size_t path_len, void *arg)
{
    const struct sources *src = arg;
    int rc;

    if (src->cache == NULL || !cache_chan_try_kept(src->cache, ctx, path, path_len, &rc))
        return 0;
    gfs_ctx_set_note(ctx, rc == 0 ? ALOG_HIT : ALOG_ERROR);
    return rc;
}

/* The outcome of a finished request for the live figures (stats.h), from the cache result the
 * handler noted and the status sent. */
static enum stats_outcome outcome_of(const struct gfs_done *d)
{
    const char *note = d->note != NULL ? d->note : "";

    if (strcmp(note, ALOG_HIT) == 0)
        return STATS_HIT;
    if (strcmp(note, ALOG_MISS) == 0)
        return STATS_MISS;
    if (strcmp(note, ALOG_ORIGIN) == 0)
        return d->status == GF_FILE_NOT_FOUND ? STATS_NOT_FOUND : STATS_ORIGIN;
    return d->status < 0 ? STATS_CANCELLED : STATS_ERROR;
}

/* Every connection's end: a request (one with a path) counts in the live figures, then the
 * access log line. */
static void on_done(const struct gfs_done *d, void *arg)
{
    const struct done_sinks *k = arg;

    if (d->path != NULL)
        stats_request_done(k->stats, outcome_of(d), d->sent,
                           d->duration_ns > 0 ? (uint64_t)d->duration_ns / 1000u : 0);
    if (k->alog != NULL)
        access_log_done(d, k->alog);
}

/* The GETFILE server's events: logged; its stop also stops the HTTP front end (arg points to
 * it, or to NULL), so both ports stop accepting at once and each gets its grace. */
static void on_server_event(enum gfs_event ev, int value, void *arg)
{
    struct http_front *const *http = arg;

    if (ev == GFS_EV_STOPPING && *http != NULL)
        http_front_stop(*http);
    gfs_cli_log_event(ev, value, NULL);
}

static int parse_ms(const char *v, const char *opt)
{
    unsigned ms;

    if (cli_parse_uint(v, 1, GFS_CLI_TIMEOUT_MAX_MS, &ms) < 0)
        cli_fail_range(PROG, opt, v, 1, GFS_CLI_TIMEOUT_MAX_MS);
    return (int)ms;
}

static uint64_t parse_u64(const char *v, const char *opt, uint64_t min, uint64_t max)
{
    uint64_t x;

    if (cli_parse_u64(v, min, max, &x) < 0)
        cli_fail_range(PROG, opt, v, min, max);
    return x;
}

enum long_opt {
    OPT_CONNECT_TIMEOUT = 256,
    OPT_LOW_SPEED_TIME,
    OPT_LOW_SPEED_LIMIT,
    OPT_SPOOL_MAX,
    OPT_SPOOL_DIR,
    OPT_SEGMENTS,
    OPT_CACHE_WAIT,
    OPT_CACHE_STALL,
    OPT_ACCESS_LOG,
    OPT_HTTP,
    OPT_HTTP_MAP_MAX,
    OPT_HTTP_MAP_MIN,
    OPT_METRICS,
    OPT_INSTANCE,
    OPT_IPC,
    OPT_NO_STATS,
    OPT_VERSION,
    OPT_ORIGIN_RETRY_FIRST, /* ORIGIN_RETRY_LONGOPTS: three options from here */
};

static const struct option long_opts[] = {
    {"port", required_argument, NULL, 'p'},
    {"threads", required_argument, NULL, 't'},
    {"origin", required_argument, NULL, 's'},
    {"segments", required_argument, NULL, OPT_SEGMENTS},
    {"segment-size", required_argument, NULL, 'z'},
    GFS_CLI_LONGOPTS,
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"low-speed-time", required_argument, NULL, OPT_LOW_SPEED_TIME},
    {"low-speed-limit", required_argument, NULL, OPT_LOW_SPEED_LIMIT},
    {"spool-max", required_argument, NULL, OPT_SPOOL_MAX},
    {"spool-dir", required_argument, NULL, OPT_SPOOL_DIR},
    {"cache-wait", required_argument, NULL, OPT_CACHE_WAIT},
    {"cache-stall", required_argument, NULL, OPT_CACHE_STALL},
    {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
    {"http", required_argument, NULL, OPT_HTTP},
    {"http-map-max", required_argument, NULL, OPT_HTTP_MAP_MAX},
    {"http-map-min", required_argument, NULL, OPT_HTTP_MAP_MIN},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"instance", required_argument, NULL, OPT_INSTANCE},
    {"ipc", required_argument, NULL, OPT_IPC},
    {"no-stats", no_argument, NULL, OPT_NO_STATS},
    ORIGIN_RETRY_LONGOPTS(OPT_ORIGIN_RETRY_FIRST),
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* --http [ADDR:]PORT; an IPv6 ADDR goes in brackets. */
static void parse_http(const char *v, struct config *c)
{
    const char *colon = strrchr(v, ':'), *port = v, *host = v;
    size_t hlen = 0;
    int bracketed = 0;

    if (colon != NULL) {
        hlen = (size_t)(colon - v);
        port = colon + 1;
        if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
            host++;
            hlen -= 2;
            bracketed = 1;
        }
        if (hlen == 0 || hlen >= sizeof c->http_host ||
            (!bracketed && memchr(host, ':', hlen) != NULL))
            cli_fail(PROG, "--http: '%s': expected [ADDR:]PORT ([ADDR] for IPv6)", v);
        memcpy(c->http_host, host, hlen);
    }
    c->http_host[hlen] = '\0';
    if (cli_parse_port(port, &c->http_port) < 0)
        cli_fail(PROG, "--http: '%s': the port must be 1..65535", v);
    c->use_http = 1;
    c->http_spec = v;
}

static void parse_args(int argc, char **argv, struct config *c)
{
    char base[ORIGIN_BASE_MAX];
    const char *why;
    struct stat st;
    const char *why_cl;
    int opt, seen_nz = 0;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":p:t:s:n:z:h" GFS_CLI_OPTSTRING, long_opts, NULL)) !=
           -1) {
        switch (opt) {
        case 'p':
            if (cli_parse_port(optarg, &c->port) < 0)
                cli_fail_range(PROG, "-p", optarg, 1, 65535);
            break;
        case 't':
            if (cli_parse_uint(optarg, 1, MAX_THREADS, &c->nthreads) < 0)
                cli_fail_range(PROG, "-t", optarg, 1, MAX_THREADS);
            break;
        case 's':
            if (origin_base_parse(optarg, base, sizeof base, &why) < 0)
                cli_fail(PROG, "-s: '%s': %s", optarg, why);
            c->origin.base_url = optarg;
            c->use_origin = 1;
            break;
        case 'n':
            if (cli_parse_uint(optarg, 1, SEG_POOL_MAX, &c->nsegs) < 0)
                cli_fail_range(PROG, "-n", optarg, 1, SEG_POOL_MAX);
            seen_nz = 1;
            break;
        case 'z':
            if (cli_parse_u64(optarg, SHM_SEG_MIN, SHM_SEG_MAX, &c->segsize) < 0)
                cli_fail_range(PROG, "-z", optarg, SHM_SEG_MIN, SHM_SEG_MAX);
            seen_nz = 1;
            break;
        case OPT_SEGMENTS:
            if (strchr(optarg, ':') == NULL) { /* --segments N: the old spelling of -n */
                if (cli_parse_uint(optarg, 1, SEG_POOL_MAX, &c->nsegs) < 0)
                    cli_fail_range(PROG, "-n", optarg, 1, SEG_POOL_MAX);
                seen_nz = 1;
                break;
            }
            if (seg_classes_parse(optarg, &c->classes, &why_cl) < 0)
                cli_fail(PROG, "--segments: '%s': %s", optarg, why_cl);
            break;
        case OPT_CONNECT_TIMEOUT:
            c->origin.connect_timeout_ms = parse_ms(optarg, "--connect-timeout");
            break;
        case OPT_LOW_SPEED_TIME:
            c->origin.low_speed_time_s = (long)parse_u64(optarg, "--low-speed-time", 1, 3600);
            break;
        case OPT_LOW_SPEED_LIMIT:
            c->origin.low_speed_limit = (long)parse_u64(optarg, "--low-speed-limit", 1, 1000000000);
            break;
        case OPT_SPOOL_MAX:
            c->origin.spool_max = parse_u64(optarg, "--spool-max", 1, UINT64_MAX >> 1);
            break;
        case OPT_SPOOL_DIR:
            if (stat(optarg, &st) < 0 || !S_ISDIR(st.st_mode) || access(optarg, W_OK | X_OK) < 0)
                cli_fail(PROG, "--spool-dir: '%s' is not a writable directory", optarg);
            c->origin.spool_dir = optarg;
            break;
        case OPT_CACHE_WAIT:
            c->cache_wait_ms = parse_ms(optarg, "--cache-wait");
            break;
        case OPT_CACHE_STALL:
            c->cache_stall_ms = parse_ms(optarg, "--cache-stall");
            break;
        case OPT_ACCESS_LOG:
            if (optarg[0] == '\0')
                cli_fail(PROG, "--access-log: empty file name (- for stderr)");
            c->access_log = optarg;
            break;
        case OPT_HTTP:
            parse_http(optarg, c);
            break;
        case OPT_HTTP_MAP_MAX:
            c->http_map_max = parse_u64(optarg, "--http-map-max", 0, UINT64_MAX >> 1);
            break;
        case OPT_HTTP_MAP_MIN:
            c->http_map_min = parse_u64(optarg, "--http-map-min", 1, UINT64_MAX >> 2);
            break;
        case OPT_METRICS:
            if (metrics_endpoint_parse(optarg, &c->metrics, &why) < 0)
                cli_fail(PROG, "--metrics: '%s': %s", optarg, why);
            c->use_metrics = 1;
            break;
        case OPT_INSTANCE:
            instance_cli_option(PROG, optarg);
            break;
        case OPT_IPC:
            if (ipc_backend_parse(optarg, &c->ipc) < 0)
                cli_fail(PROG, "--ipc: '%s': not a backend (" IPC_BACKEND_LIST ")", optarg);
            break;
        case OPT_NO_STATS:
            c->no_stats = 1;
            break;
        case 'h':
            cli_print_help(usage);
        case OPT_VERSION:
            cli_print_version(PROG);
        case ':':
        case '?':
            cli_fail_getopt(PROG, opt, argv);
        case OPT_ORIGIN_RETRY_FIRST:
        case OPT_ORIGIN_RETRY_FIRST + 1:
        case OPT_ORIGIN_RETRY_FIRST + 2:
            origin_retry_option(&c->origin.retry, opt - OPT_ORIGIN_RETRY_FIRST, optarg, PROG);
            break;
        default:
            if (!gfs_cli_option(&c->server, opt, optarg, PROG))
                cli_fail_getopt(PROG, '?', argv);
        }
    }
    if (optind < argc)
        cli_fail(PROG, "unexpected argument '%s'", argv[optind]);
    if (c->no_stats && c->use_metrics)
        cli_fail(PROG, "--metrics shows the stats object: not with --no-stats");
    int seen_classes = c->classes.n > 0;
    if (seen_classes && seen_nz)
        cli_fail(PROG, "--segments SIZE:COUNT sets the segments: not with -n or -z");
    if (!seen_classes)
        seg_classes_single(&c->classes, c->nsegs, c->segsize);
    c->use_cache = seen_nz || seen_classes || !c->use_origin;
    if (c->use_cache && cache_chan_ops_for(c->ipc) == NULL)
        cli_fail(PROG, "--ipc %s: not built yet in this version", ipc_backend_name(c->ipc));
}

static const char *mode_name(const struct config *c)
{
    if (c->use_cache && c->use_origin)
        return "cache, then origin";
    return c->use_cache ? "cache" : "origin";
}

int main(int argc, char **argv)
{
    struct config c = {.port = 10823,
                       .nthreads = 8,
                       .nsegs = DEFAULT_NSEGS,
                       .segsize = DEFAULT_SEGSZ,
                       .http_map_max = HTTP_FRONT_MAP_MAX,
                       .http_map_min = HTTP_FRONT_MAP_MIN,
                       .origin = {.retry = {.max = ORIGIN_RETRY_DEFAULT}}};
    struct cache_chan cache = {0};
    struct gfserver *srv = NULL;
    struct http_front *http = NULL;
    struct access_log *alog = NULL;
    struct metrics_server *msrv = NULL;
    struct origin_pool *origin = NULL;
    struct sources src = {0};
    struct stats_region *stats = NULL;
    struct done_sinks sinks = {0};
    void **args = NULL;
    uint64_t requests = 0, connects = 0, retries = 0;
    unsigned used = 0;
    int rc, status = CLI_EXIT_FAILURE, curl_ready = 0;

    log_set_role(PROG);
    parse_args(argc, argv, &c);
    rc = signals_install_stop(&stop_requested);
    if (rc == 0 && c.access_log != NULL && strcmp(c.access_log, "-") != 0)
        rc = signals_install_reopen(&reopen_requested);
    if (rc == 0)
        rc = shm_guard_install(); /* a segment shrunk under a transfer fails only that one */
    if (rc < 0) {
        log_err(-rc, "cannot install signal handlers");
        return 1;
    }
    /* Before any thread: curl_global_init is not thread-safe. */
    if (c.use_origin) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            log_err(0, "cannot initialise libcurl");
            return 1;
        }
        curl_ready = 1;
    }
    if (c.access_log != NULL) {
        rc = access_log_open(&alog, c.access_log, &reopen_requested);
        if (rc < 0) {
            log_err(-rc, "cannot open the access log '%s'", c.access_log);
            status = CLI_EXIT_CANNOT_START;
            goto out;
        }
    }
    args = calloc(c.nthreads, sizeof *args);
    if (args == NULL) {
        log_err(ENOMEM, "cannot allocate workers");
        goto out;
    }
    /* Live figures for gfmon (stats.h); the proxy runs without them if they cannot be made. */
    struct stats_config sc = {.threads = c.nthreads, .port = c.port};
    /* The socket backends have no segments (docs/ipc.md, "Backends"). */
    int segs = c.use_cache && c.ipc != IPC_BACKEND_UNIX && c.ipc != IPC_BACKEND_FD;
    unsigned nsegs = segs ? seg_classes_count(&c.classes) : 0;
    if (segs) {
        sc.segments = nsegs;
        sc.segment_size = c.classes.c[c.classes.n - 1].size; /* the largest; slots tell each */
    }
    snprintf(sc.text, sizeof sc.text, "mode=%s%s%s%s%s", c.use_cache ? "cache" : "",
             c.use_cache && c.use_origin ? "+" : "", c.use_origin ? "origin" : "",
             c.use_cache && c.ipc != IPC_BACKEND_POSIX ? " ipc=" : "",
             c.use_cache && c.ipc != IPC_BACKEND_POSIX ? ipc_backend_name(c.ipc) : "");
    rc = c.no_stats ? 0 : stats_create(&stats, STATS_ROLE_PROXY, nsegs, &sc);
    if (rc < 0)
        log_warn(-rc, "cannot create the stats object; running without live figures");
    if (c.use_cache) {
        struct cache_client_options co = {
            .stats = stats,
            .classes = c.classes,
            .segment_wait_ms = c.cache_wait_ms,
            .stall_ms = c.cache_stall_ms,
        };
        rc = cache_chan_open(&cache, c.ipc, &co);
        if (rc < 0) {
            char desc[128];
            seg_classes_format(&c.classes, desc, sizeof desc);
            log_err(-rc, "cannot set up the cache client (--ipc %s, segments SIZE:COUNT %s)",
                    ipc_backend_name(c.ipc), desc);
            status = CLI_EXIT_CANNOT_START;
            goto out;
        }
    }
    if (c.use_origin) {
        /* One fetcher per worker of each front end: a take never waits. */
        unsigned nfetchers = c.use_http ? 2 * c.nthreads : c.nthreads;
        rc = origin_pool_new(&origin, nfetchers, &c.origin);
        if (rc < 0) {
            log_err(-rc, "cannot set up %u libcurl handles", nfetchers);
            goto out;
        }
    }
    src.cache = c.use_cache ? &cache : NULL;
    src.origin = origin;
    src.stats = stats;
    for (unsigned i = 0; i < c.nthreads; i++)
        args[i] = &src;

    struct gfs_options opt = c.server;
    opt.port = c.port;
    opt.nthreads = c.nthreads;
    opt.handler = handle;
    opt.worker_args = args;
    opt.stop_flag = &stop_requested;
    opt.on_event = on_server_event;
    opt.event_arg = &http; /* set below, before gfs_run (same thread) */
    sinks.stats = stats;
    sinks.alog = alog;
    if (stats != NULL || alog != NULL) {
        opt.on_done = on_done;
        opt.done_arg = &sinks;
    }
    rc = gfs_new(&srv, &opt);
    if (rc < 0) {
        /* gfs_new also fails before it binds (-ENOMEM, -EMFILE, -EINVAL options, ...). */
        if (gfs_cli_is_bind_error(rc)) {
            log_err(-rc, "cannot listen on port %u", (unsigned)c.port);
            status = CLI_EXIT_CANNOT_START;
        } else {
            log_err(-rc, "cannot set up the server (port %u)", (unsigned)c.port);
        }
        goto out;
    }
    if (c.use_http) {
        struct http_front_options ho = {
            .host = c.http_host[0] != '\0' ? c.http_host : NULL,
            .port = c.http_port,
            .nthreads = c.nthreads,
            .queue_depth = c.server.queue_depth,
            .header_timeout_ms = c.server.header_timeout_ms,
            .send_timeout_ms = c.server.send_timeout_ms,
            .min_rate = c.server.min_rate,
            .shutdown_grace_ms = c.server.shutdown_grace_ms,
            .max_per_client = c.server.max_per_client,
            .max_conns = c.server.max_waiting,
            .map_max = c.http_map_max,
            .map_min = c.http_map_min,
            .handler = handle,
            .quick = handle_quick,
            .quick_error_note = ALOG_ERROR,
            .handler_arg = &src,
            .on_done = on_done,
            .done_arg = &sinks,
        };
        rc = http_front_new(&http, &ho);
        if (rc < 0) {
            log_err(-rc, "cannot listen for HTTP on '%s'", c.http_spec);
            status = rc == -EINVAL || rc == -ENOMEM ? CLI_EXIT_FAILURE : CLI_EXIT_CANNOT_START;
            goto out;
        }
        rc = http_front_start(http);
        if (rc < 0) {
            log_err(-rc, "cannot start the HTTP front end");
            goto out;
        }
        log_info("serving HTTP on %s port %u", c.http_host[0] ? c.http_host : "every address",
                 (unsigned)http_front_port(http));
    }
    if (c.use_metrics && metrics_stats_serve(&msrv, &c.metrics, stats) < 0) {
        status = CLI_EXIT_CANNOT_START;
        goto out;
    }
    log_info("serving on port %u with %u threads: %s%s%s", (unsigned)gfs_port(srv), c.nthreads,
             mode_name(&c), c.use_origin ? " " : "", c.use_origin ? c.origin.base_url : "");
    rc = gfs_run(srv);
    if (rc < 0) {
        log_err(-rc, "cannot start the workers");
        goto out;
    }
    status = CLI_EXIT_OK;
out:
    http_front_free(http);     /* stopped with the GETFILE port; waits for the end of its grace */
    metrics_server_stop(msrv); /* before the stats object its page reads */
    gfs_free(srv);
    if (origin != NULL && status == 0) {
        origin_pool_stats(origin, &requests, &connects, &retries, &used);
        log_info("origin: %llu requests over %llu connections, by %u of %u handles, %llu retries",
                 (unsigned long long)requests, (unsigned long long)connects, used, c.nthreads,
                 (unsigned long long)retries);
    }
    origin_pool_free(origin);
    cache_chan_close(&cache);
    stats_close(stats);
    access_log_close(alog);
    free(args);
    if (curl_ready)
        curl_global_cleanup();
    if (status == 0)
        log_info("stopped");
    return status;
}
