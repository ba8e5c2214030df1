/* curlget.c - libcurl-direct baseline: C threads, each fetching files over HTTP with its own
 * reused easy handle, reporting the same key=value line as gfload. */
/* SPDX-License-Identifier: MIT */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "latency.h"
#include "loadgen.h"
#include "log.h"

#define MAX_CONC    256
#define URL_MAX     8192
#define PATH_MAXLEN 4096

static const char usage[] =
    "usage: curlget -u base_url (-w workload | -f path) [-c concurrency] (-d seconds | -r "
    "requests)\n"
    "               [-b bufsize] [-K] [-h]\n"
    "  -u base_url     e.g. http://127.0.0.1:8080; the request URL is base_url + path\n"
    "  -w workload     file of request paths (whitespace separated), used round robin\n"
    "  -f path         or a single request path\n"
    "  -c concurrency  threads, one transfer in flight each (1..256, default 1)\n"
    "  -d seconds      run this long (default 3); transfers in flight then are dropped\n"
    "  -r requests     or run exactly this many requests\n"
    "  -b bufsize      CURLOPT_BUFFERSIZE (1024..524288, default 262144)\n"
    "  -K              a new connection per request (default: libcurl reuses connections)\n"
    "Prints one line: curlget conc= requests= failures= duration_s= rps= bytes= gbps= p50_us=\n"
    "p99_us= max_us=\n";

struct config {
    const char *base;
    struct loadgen_workload wl; /* the -w file */
    char **paths;
    size_t npaths;
    long bufsize;
    int fresh;
    int64_t deadline_ns;
    uint64_t total;
    atomic_uint_fast64_t issued;
    pthread_barrier_t start;
};

struct worker {
    pthread_t tid;
    struct config *cfg;
    unsigned id;
    uint64_t done, fails, bytes, cur;
    int64_t end_ns;
    struct lat_hist lat;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct worker *w = arg;
    size_t n = size * nmemb;

    (void)ptr;
    if (w->cfg->deadline_ns && clock_mono_ns() >= w->cfg->deadline_ns)
        return 0; /* aborts the transfer: the run is over */
    w->cur += n;
    return n;
}

static int may_start(struct config *cfg)
{
    if (cfg->total)
        return atomic_fetch_add(&cfg->issued, 1) < cfg->total;
    return clock_mono_ns() < cfg->deadline_ns;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct config *cfg = w->cfg;
    char url[URL_MAX];
    size_t next = (w->id * 7919u) % cfg->npaths;
    CURL *h = curl_easy_init();

    pthread_barrier_wait(&cfg->start);
    if (!h) {
        w->fails++;
        return NULL;
    }
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, cfg->bufsize);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, cfg->fresh ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
    while (may_start(cfg)) {
        int64_t t0 = clock_mono_ns();
        curl_off_t clen = -1;
        long code = 0;
        CURLcode rc;

        snprintf(url, sizeof(url), "%s%s", cfg->base, cfg->paths[next]);
        next = (next + 1) % cfg->npaths;
        curl_easy_setopt(h, CURLOPT_URL, url);
        w->cur = 0;
        rc = curl_easy_perform(h);
        if (cfg->deadline_ns && clock_mono_ns() >= cfg->deadline_ns) {
            w->bytes += w->cur; /* bytes received before the deadline count */
            break;
        }
        w->bytes += w->cur;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
        if (rc != CURLE_OK || code != 200 || clen < 0 || (uint64_t)clen != w->cur) {
            w->fails++;
            continue;
        }
        w->done++;
        lat_add(&w->lat, (uint64_t)(clock_mono_ns() - t0));
    }
    w->end_ns = cfg->deadline_ns ? cfg->deadline_ns : clock_mono_ns();
    curl_easy_cleanup(h);
    return NULL;
}

/* The request paths: the workload file, read as the GETFILE load clients read it (the reader
 * of tools/loadgen.h), or the single path. */
static int load_workload(const char *file, const char *single, struct config *cfg)
{
    static char *one[1];
    const char *bad = NULL;
    int rc;

    if (single) {
        one[0] = strdup(single);
        cfg->paths = one;
        cfg->npaths = 1;
        return one[0] ? 0 : -ENOMEM;
    }
    rc = loadgen_workload_load(file, &cfg->wl, &bad);
    if (rc == -EINVAL && bad)
        log_err(0, "workload '%s': '%s' is not a valid request path", file, bad);
    if (rc < 0)
        return rc;
    cfg->paths = cfg->wl.paths;
    cfg->npaths = cfg->wl.count;
    return cfg->npaths ? 0 : -ENODATA;
}

int main(int argc, char **argv)
{
    static struct config cfg;
    static struct worker workers[MAX_CONC];
    const char *workload = NULL, *single = NULL;
    unsigned conc = 1, secs = 3, bufsize = 262144;
    int opt, rc, have_d = 0;
    uint64_t done = 0, fails = 0, bytes = 0;
    int64_t start, end = 0;
    struct lat_hist all;
    double dur;

    log_set_role("curlget");
    while ((opt = getopt(argc, argv, "u:w:f:c:d:r:b:Kh")) != -1) {
        switch (opt) {
        case 'u':
            cfg.base = optarg;
            break;
        case 'w':
            workload = optarg;
            break;
        case 'f':
            single = optarg;
            break;
        case 'c':
            if (cli_parse_uint(optarg, 1, MAX_CONC, &conc) < 0)
                cli_die_range("curlget", usage, 'c', optarg, 1, MAX_CONC);
            break;
        case 'd':
            if (cli_parse_uint(optarg, 1, 86400, &secs) < 0)
                cli_die_range("curlget", usage, 'd', optarg, 1, 86400);
            have_d = 1;
            break;
        case 'r':
            if (cli_parse_u64(optarg, 1, UINT64_MAX / 2, &cfg.total) < 0)
                cli_die_range("curlget", usage, 'r', optarg, 1, UINT64_MAX / 2);
            break;
        case 'b':
            if (cli_parse_uint(optarg, 1024, 524288, &bufsize) < 0)
                cli_die_range("curlget", usage, 'b', optarg, 1024, 524288);
            break;
        case 'K':
            cfg.fresh = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            cli_die_usage("curlget", usage, "unknown option");
        }
    }
    if (optind < argc)
        cli_die_usage("curlget", usage, "unexpected argument '%s'", argv[optind]);
    if (!cfg.base)
        cli_die_usage("curlget", usage, "-u base_url is required");
    if (!workload == !single)
        cli_die_usage("curlget", usage, "give exactly one of -w and -f");
    if (have_d && cfg.total)
        cli_die_usage("curlget", usage, "give -d or -r, not both");
    rc = load_workload(workload, single, &cfg);
    if (rc < 0) {
        log_err(-rc, "cannot read workload '%s'", workload ? workload : single);
        loadgen_workload_release(&cfg.wl);
        return 1;
    }
    cfg.bufsize = (long)bufsize;
    atomic_init(&cfg.issued, 0);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        log_err(0, "curl_global_init failed");
        return 1;
    }
    pthread_barrier_init(&cfg.start, NULL, conc + 1);
    for (unsigned i = 0; i < conc; i++) {
        workers[i].cfg = &cfg;
        workers[i].id = i;
        lat_init(&workers[i].lat);
        rc = pthread_create(&workers[i].tid, NULL, worker_main, &workers[i]);
        if (rc != 0) {
            log_err(rc, "cannot start thread %u", i);
            return 1;
        }
    }
    start = clock_mono_ns();
    if (!cfg.total)
        cfg.deadline_ns = start + (int64_t)secs * 1000000000;
    pthread_barrier_wait(&cfg.start);
    lat_init(&all);
    for (unsigned i = 0; i < conc; i++) {
        pthread_join(workers[i].tid, NULL);
        done += workers[i].done;
        fails += workers[i].fails;
        bytes += workers[i].bytes;
        if (workers[i].end_ns > end)
            end = workers[i].end_ns;
        lat_merge(&all, &workers[i].lat);
    }
    dur = (double)(end - start) / 1e9;
    if (dur <= 0)
        dur = 1e-9;
    printf("curlget conc=%u requests=%llu failures=%llu duration_s=%.3f rps=%.1f bytes=%llu "
           "gbps=%.4f p50_us=%.1f p99_us=%.1f max_us=%.1f\n",
           conc, (unsigned long long)done, (unsigned long long)fails, dur, (double)done / dur,
           (unsigned long long)bytes, (double)bytes / dur / 1e9,
           (double)lat_quantile(&all, 0.50) / 1e3, (double)lat_quantile(&all, 0.99) / 1e3,
           (double)all.max_ns / 1e3);
    pthread_barrier_destroy(&cfg.start);
    if (single)
        free(cfg.paths[0]);
    loadgen_workload_release(&cfg.wl);
    curl_global_cleanup();
    return fails ? 3 : 0;
}
