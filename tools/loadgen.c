/* loadgen.c - options, workload and thread fan-out shared by the GETFILE load clients. */
/* SPDX-License-Identifier: MIT */
#include "loadgen.h"
#include "cli.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Latencies go to a log-linear histogram: exact below 2048 ns, then 1024 buckets per power of
 * two (relative error under 0.1 %), so memory stays fixed however many requests run. */
#define LAT_SUB_BITS 10
#define LAT_BUCKETS  ((64 - LAT_SUB_BITS + 1) * (1u << LAT_SUB_BITS))

struct loadgen {
    const struct loadgen_opts *opts;
    const struct loadgen_workload *wl;
    const char *prog;
    loadgen_request_fn fn;
    void *arg;
    int64_t start_ns, end_ns;
    atomic_uint_fast64_t next; /* the next request index to take */
    atomic_uint_fast64_t ok, not_found, failed, bytes;
    atomic_int refused_noticed;
    _Atomic uint64_t *lat; /* LAT_BUCKETS counters */
};

enum long_opt { OPT_VERSION = 256, OPT_TIMEOUT };

#define LONG_OPTS                                                                              \
    {"server", required_argument, NULL, 's'}, {"port", required_argument, NULL, 'p'},          \
        {"threads", required_argument, NULL, 't'}, {"workload", required_argument, NULL, 'w'}, \
        {"requests", required_argument, NULL, 'r'}, {"retry", required_argument, NULL, 'R'},   \
        {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, OPT_VERSION},         \
    {                                                                                          \
        "timeout", required_argument, NULL, OPT_TIMEOUT                                        \
    }

static const struct option long_opts[] = {LONG_OPTS, {NULL, 0, NULL, 0}};
static const struct option long_opts_metrics[] = {
    LONG_OPTS, {"metrics", required_argument, NULL, 'm'}, {NULL, 0, NULL, 0}};

void loadgen_parse_args(struct loadgen_opts *o, int argc, char **argv, const char *prog,
                        const char *usage, int with_metrics)
{
    int c;

    *o = (struct loadgen_opts){.server = "localhost",
                               .port = 10823,
                               .threads = 8,
                               .workload = "workload.txt",
                               .requests = 0,
                               .retry_s = 30,
                               .metrics = "metrics.txt",
                               .timeout_ms = GFC_DEFAULT_TIMEOUT_MS};
    opterr = 0;
    while ((c = getopt_long(argc, argv, with_metrics ? ":s:p:t:w:r:R:m:h" : ":s:p:t:w:r:R:h",
                            with_metrics ? long_opts_metrics : long_opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (*optarg == '\0')
                cli_fail(prog, "-s: the server name is empty");
            o->server = optarg;
            break;
        case 'p':
            if (cli_parse_port(optarg, &o->port) < 0)
                cli_fail_range(prog, "-p", optarg, 1, 65535);
            break;
        case 't':
            if (cli_parse_uint(optarg, 1, LOADGEN_MAX_THREADS, &o->threads) < 0)
                cli_fail_range(prog, "-t", optarg, 1, LOADGEN_MAX_THREADS);
            break;
        case 'w':
            o->workload = optarg;
            break;
        case 'r':
            if (cli_parse_u64(optarg, 1, UINT64_MAX / 2, &o->requests) < 0)
                cli_fail_range(prog, "-r", optarg, 1, UINT64_MAX / 2);
            break;
        case 'R':
            if (cli_parse_uint(optarg, 0, 86400, &o->retry_s) < 0)
                cli_fail_range(prog, "-R", optarg, 0, 86400);
            break;
        case 'm':
            o->metrics = optarg;
            break;
        case OPT_TIMEOUT: {
            unsigned ms;
            if (cli_parse_uint(optarg, 1, LOADGEN_TIMEOUT_MAX_MS, &ms) < 0)
                cli_fail_range(prog, "--timeout", optarg, 1, LOADGEN_TIMEOUT_MAX_MS);
            o->timeout_ms = (int)ms;
            break;
        }
        case 'h':
            cli_print_help(usage);
        case OPT_VERSION:
            cli_print_version(prog);
        default:
            cli_fail_getopt(prog, c, argv);
        }
    }
    if (optind < argc)
        cli_fail(prog, "unexpected argument '%s'", argv[optind]);
}

/* Reads fd to its end: a regular file, a pipe, a FIFO or a terminal alike. */
static int read_fd(int fd, char **out, size_t *out_len)
{
    size_t len = 0, cap = 0;
    char *buf = NULL;
    struct stat st;

    if (fstat(fd, &st) < 0)
        return -errno;
    if (S_ISDIR(st.st_mode))
        return -EISDIR;
    if (S_ISREG(st.st_mode) && st.st_size > (off_t)LOADGEN_WORKLOAD_MAX)
        return -EFBIG;
    for (;;) {
        if (cap - len < 2) { /* room for one byte more than the limit, and the terminator */
            size_t ncap = cap ? 2 * cap : 4096;
            if (ncap > (size_t)LOADGEN_WORKLOAD_MAX + 2)
                ncap = (size_t)LOADGEN_WORKLOAD_MAX + 2;
            char *nb = realloc(buf, ncap);
            if (nb == NULL) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;
            free(buf);
            return -err;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > (size_t)LOADGEN_WORKLOAD_MAX) {
            free(buf);
            return -EFBIG;
        }
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

/* The whole workload: file, or standard input for "-". */
static int read_whole(const char *file, char **out, size_t *out_len)
{
    int fd, rc;

    if (strcmp(file, "-") == 0)
        return read_fd(STDIN_FILENO, out, out_len);
    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    rc = read_fd(fd, out, out_len);
    close(fd);
    return rc;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int loadgen_workload_load(const char *file, struct loadgen_workload *w, const char **bad)
{
    size_t len = 0, n = 0, cap = 0;
    char *p, *end;
    int rc;

    *w = (struct loadgen_workload){0};
    rc = read_whole(file, &w->text, &len);
    if (rc < 0)
        return rc;
    end = w->text + len;
    for (p = w->text; p < end;) {
        while (p < end && is_blank(*p))
            p++;
        if (p == end)
            break;
        char *tok = p;
        while (p < end && !is_blank(*p))
            p++;
        *p = '\0'; /* a blank, or the terminator read_whole added */
        if (!gf_path_valid(tok, (size_t)(p - tok))) {
            *bad = tok;
            return -EINVAL;
        }
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 64;
            char **np = realloc(w->paths, ncap * sizeof *np);
            if (np == NULL)
                return -ENOMEM;
            w->paths = np;
            cap = ncap;
        }
        w->paths[n++] = tok;
        w->count = n;
        p++;
    }
    return 0;
}

void loadgen_workload_release(struct loadgen_workload *w)
{
    free(w->paths);
    free(w->text);
    *w = (struct loadgen_workload){0};
}

static size_t lat_bucket(uint64_t v)
{
    if (v < (2u << LAT_SUB_BITS))
        return (size_t)v;
    unsigned shift = (unsigned)(63 - __builtin_clzll(v)) - LAT_SUB_BITS;
    return ((size_t)shift << LAT_SUB_BITS) + (size_t)(v >> shift);
}

/* The middle of bucket i's range. */
static uint64_t lat_value(size_t i)
{
    if (i < (2u << LAT_SUB_BITS))
        return i;
    unsigned shift = (unsigned)(i >> LAT_SUB_BITS) - 1;
    uint64_t m = i - ((uint64_t)shift << LAT_SUB_BITS);
    return (m << shift) + (((uint64_t)1 << shift) >> 1);
}

/* One write(2), so lines from different threads never interleave. n is snprintf's result. */
static void write_line(const char *line, int n, size_t cap)
{
    if (n <= 0)
        return;
    if (write(STDERR_FILENO, line, (size_t)n < cap ? (size_t)n : cap - 1) < 0) {
        /* stderr is gone: nothing left to tell anyone */
    }
}

int64_t loadgen_elapsed_ns(const struct loadgen *lg)
{
    return clock_mono_ns() - lg->start_ns;
}

uint64_t loadgen_failed(const struct loadgen *lg)
{
    return atomic_load(&lg->failed);
}

int loadgen_perform(struct loadgen_worker *w)
{
    const struct loadgen_opts *o = w->lg->opts;
    int64_t first = clock_mono_ms();
    int64_t t0;
    int rc;

    for (;;) {
        t0 = clock_mono_ns();
        rc = gfc_perform(w->req);
        w->latency_ns = clock_mono_ns() - t0;
        w->bytes = gfc_get_bytesreceived(w->req);
        if (rc != -ECONNREFUSED || clock_mono_ms() - first + 1000 > (int64_t)o->retry_s * 1000)
            return rc;
        if (atomic_exchange(&w->lg->refused_noticed, 1) == 0) {
            char line[512];
            int n = snprintf(line, sizeof line,
                             "%s: %s:%u refused the connection; retrying once a second for up "
                             "to %u s\n",
                             w->lg->prog, o->server, (unsigned)o->port, o->retry_s);
            write_line(line, n, sizeof line);
        }
        clock_sleep_ms(1000);
    }
}

void loadgen_report(const struct loadgen_worker *w, const char *path, const char *reason)
{
    char line[GF_PATH_MAX + 512];

    write_line(line, snprintf(line, sizeof line, "%s: GET %s: %s\n", w->lg->prog, path, reason),
               sizeof line);
}

const char *loadgen_strerror(int err, char *buf, size_t cap)
{
    if (strerror_r(err, buf, cap) != 0)
        snprintf(buf, cap, "error %d", err);
    return buf;
}

void loadgen_report_failure(const struct loadgen_worker *w, const char *path, int rc)
{
    const struct gfcrequest *r = w->req;
    char reason[160];

    if (rc == 0)
        snprintf(reason, sizeof reason, "server answered %s", gf_status_name(gfc_get_status(r)));
    else if (rc == -ECONNRESET && gfc_get_status(r) == GF_OK)
        snprintf(
            reason, sizeof reason, "short transfer: %llu of %llu bytes, then the connection ended",
            (unsigned long long)gfc_get_bytesreceived(r), (unsigned long long)gfc_get_filelen(r));
    else if (rc == -EPROTO && gfc_get_error(r) != NULL)
        snprintf(reason, sizeof reason, "malformed response: %s", gfc_get_error(r));
    else
        loadgen_strerror(-rc, reason, sizeof reason);
    loadgen_report(w, path, reason);
}

static void *worker_main(void *p)
{
    struct loadgen_worker *w = p;
    struct loadgen *lg = w->lg;
    uint64_t total = lg->opts->requests;

    for (;;) {
        uint64_t i = atomic_fetch_add(&lg->next, 1);
        if (i >= total)
            break;
        const char *path = lg->wl->paths[i % lg->wl->count];
        w->latency_ns = -1;
        w->bytes = 0;
        w->seq++;
        enum loadgen_outcome oc = lg->fn(w, path, i, lg->arg);
        switch (oc) {
        case LOADGEN_OK:
            atomic_fetch_add(&lg->ok, 1);
            break;
        case LOADGEN_NOT_FOUND:
            atomic_fetch_add(&lg->not_found, 1);
            break;
        default:
            atomic_fetch_add(&lg->failed, 1);
            break;
        }
        atomic_fetch_add(&lg->bytes, w->bytes);
        if (oc != LOADGEN_FAILED && w->latency_ns >= 0)
            atomic_fetch_add_explicit(&lg->lat[lat_bucket((uint64_t)w->latency_ns)], 1,
                                      memory_order_relaxed);
    }
    return NULL;
}

static int worker_init(struct loadgen_worker *w, struct loadgen *lg, unsigned index)
{
    *w = (struct loadgen_worker){.lg = lg, .index = index};
    w->req = gfc_create();
    if (w->req == NULL)
        return -ENOMEM;
    gfc_set_timeouts(w->req, GFC_DEFAULT_TIMEOUT_MS, lg->opts->timeout_ms);
    int rc = gfc_set_server(w->req, lg->opts->server);
    if (rc == 0)
        rc = gfc_set_port(w->req, lg->opts->port);
    return rc;
}

int loadgen_run(const struct loadgen_opts *opts, const struct loadgen_workload *wl,
                const char *prog, loadgen_request_fn fn, void *arg, struct loadgen **out)
{
    struct loadgen_worker *ws = NULL;
    pthread_t *tids = NULL;
    struct loadgen *lg;
    unsigned n, started = 0;
    int rc = 0;

    if (wl->count == 0 || opts->requests == 0)
        return -EINVAL;
    lg = calloc(1, sizeof *lg);
    if (lg == NULL)
        return -ENOMEM;
    lg->opts = opts;
    lg->wl = wl;
    lg->prog = prog;
    lg->fn = fn;
    lg->arg = arg;
    atomic_init(&lg->next, 0);
    atomic_init(&lg->ok, 0);
    atomic_init(&lg->not_found, 0);
    atomic_init(&lg->failed, 0);
    atomic_init(&lg->bytes, 0);
    atomic_init(&lg->refused_noticed, 0);
    lg->lat = calloc(LAT_BUCKETS, sizeof *lg->lat);
    n = opts->requests < opts->threads ? (unsigned)opts->requests : opts->threads;
    ws = calloc(n, sizeof *ws);
    tids = calloc(n, sizeof *tids);
    if (lg->lat == NULL || ws == NULL || tids == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    for (unsigned i = 0; i < n; i++) {
        rc = worker_init(&ws[i], lg, i);
        if (rc < 0)
            goto out;
    }
    lg->start_ns = clock_mono_ns();
    for (; started < n; started++) {
        rc = -pthread_create(&tids[started], NULL, worker_main, &ws[started]);
        if (rc < 0) {
            atomic_store(&lg->next, opts->requests); /* the started ones stop early */
            break;
        }
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    lg->end_ns = clock_mono_ns();
out:
    if (ws)
        for (unsigned i = 0; i < n; i++)
            gfc_cleanup(ws[i].req);
    free(ws);
    free(tids);
    if (rc < 0) {
        loadgen_free(lg);
        return rc;
    }
    *out = lg;
    return 0;
}

void loadgen_free(struct loadgen *lg)
{
    if (lg == NULL)
        return;
    free(lg->lat);
    free(lg);
}

/* The latency below which a fraction p of the recorded requests fall, in ns; -1 if none. */
static int64_t lat_percentile(const struct loadgen *lg, double p)
{
    uint64_t total = 0, seen = 0, rank;

    for (size_t i = 0; i < LAT_BUCKETS; i++)
        total += atomic_load_explicit(&lg->lat[i], memory_order_relaxed);
    if (total == 0)
        return -1;
    rank = (uint64_t)(p * (double)total + 0.999999);
    if (rank < 1)
        rank = 1;
    for (size_t i = 0; i < LAT_BUCKETS; i++) {
        seen += atomic_load_explicit(&lg->lat[i], memory_order_relaxed);
        if (seen >= rank)
            return (int64_t)lat_value(i);
    }
    return -1;
}

static void print_ms(FILE *out, const char *key, int64_t ns)
{
    if (ns < 0)
        fprintf(out, "%s: n/a\n", key);
    else
        fprintf(out, "%s: %.3f\n", key, (double)ns / 1e6);
}

void loadgen_print_summary(const struct loadgen *lg, FILE *out)
{
    uint64_t ok = atomic_load(&lg->ok), nf = atomic_load(&lg->not_found);
    uint64_t failed = atomic_load(&lg->failed), bytes = atomic_load(&lg->bytes);
    double secs = (double)(lg->end_ns - lg->start_ns) / 1e9;

    if (secs <= 0)
        secs = 1e-9;
    fprintf(out, "requests: %llu\n", (unsigned long long)(ok + nf + failed));
    fprintf(out, "ok: %llu\n", (unsigned long long)ok);
    fprintf(out, "not_found: %llu\n", (unsigned long long)nf);
    fprintf(out, "failed: %llu\n", (unsigned long long)failed);
    fprintf(out, "bytes: %llu\n", (unsigned long long)bytes);
    fprintf(out, "elapsed_s: %.6f\n", secs);
    fprintf(out, "requests_per_s: %.1f\n", (double)(ok + nf + failed) / secs);
    fprintf(out, "MB_per_s: %.3f\n", (double)bytes / secs / 1e6);
    print_ms(out, "latency_p50_ms", lat_percentile(lg, 0.50));
    print_ms(out, "latency_p99_ms", lat_percentile(lg, 0.99));
}
