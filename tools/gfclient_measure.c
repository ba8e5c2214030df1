/* gfclient_measure.c - loads a GETFILE server with the workload's paths over several threads,
 * discards the content, and records progress per received chunk in a metrics file. */
/* SPDX-License-Identifier: MIT */
#include "loadgen.h"
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define PROG "gfclient_measure"

#define METRICS_HEADER \
    "#Elapsed Time (secs),Bytes Received,Requests Serviced, Requests Failed, Comment\n"

/* clang-format off */
static const char usage[] =
    "usage: " PROG " [-s server] [-p port] [-t threads] [-w workload] [-r requests] [-R secs]\n"
    "       [-m metrics]\n"
    LOADGEN_USAGE_OPTIONS
    "  -m, --metrics FILE       metrics file to write (default: metrics.txt)\n"
    "  -h, --help               show this help and exit\n"
    "      --version            show the version and exit\n"
    "Content is discarded. The metrics file starts with the line\n"
    "  " METRICS_HEADER
    "then has one line per received chunk, with an empty comment, and one line per\n"
    "finished request, with the comment 'done OK', 'done FILE_NOT_FOUND' or 'done FAILED'.\n"
    "Requests Serviced counts OK and FILE_NOT_FOUND answers. All columns are totals since the\n"
    "start and never decrease. Prints a summary on stdout (with latency percentiles of the\n"
    "serviced requests) and one line per failed request on stderr. Exit status: 0 when no\n"
    "request failed, 1 otherwise, 2 for a bad option or value (an unreadable or empty\n"
    "workload, a metrics file that cannot be created).\n";
/* clang-format on */

struct measure {
    pthread_mutex_t lock;
    FILE *out;         /* guarded by lock */
    uint64_t bytes;    /* guarded by lock */
    uint64_t serviced; /* guarded by lock */
    uint64_t failed;   /* guarded by lock */
};

/* The arguments of one request's write callback. */
struct measure_req {
    struct measure *m;
    struct loadgen_worker *w;
};

/* Writes a metrics line; the caller holds m->lock, so lines appear in the order of the totals. */
static void metrics_line_locked(struct measure *m, const struct loadgen_worker *w,
                                const char *comment)
{
    fprintf(m->out, "%.6f,%llu,%llu,%llu,%s\n", (double)loadgen_elapsed_ns(w->lg) / 1e9,
            (unsigned long long)m->bytes, (unsigned long long)m->serviced,
            (unsigned long long)m->failed, comment);
}

static int measure_on_write(const void *buf, size_t len, void *arg)
{
    struct measure_req *q = arg;

    (void)buf;
    pthread_mutex_lock(&q->m->lock);
    q->m->bytes += len;
    metrics_line_locked(q->m, q->w, "");
    pthread_mutex_unlock(&q->m->lock);
    return 0;
}

static enum loadgen_outcome measure_one(struct loadgen_worker *w, const char *path, uint64_t idx,
                                        void *arg)
{
    struct measure_req q = {.m = arg, .w = w};
    enum loadgen_outcome oc;
    int rc;

    (void)idx;
    rc = gfc_set_path(w->req, path);
    if (rc == 0) {
        gfc_set_headerfunc(w->req, NULL, NULL);
        gfc_set_writefunc(w->req, measure_on_write, &q);
        rc = loadgen_perform(w);
    }
    if (rc == 0 && gfc_get_status(w->req) == GF_OK)
        oc = LOADGEN_OK;
    else if (rc == 0 && gfc_get_status(w->req) == GF_FILE_NOT_FOUND)
        oc = LOADGEN_NOT_FOUND;
    else
        oc = LOADGEN_FAILED;
    pthread_mutex_lock(&q.m->lock);
    if (oc == LOADGEN_FAILED)
        q.m->failed++;
    else
        q.m->serviced++;
    metrics_line_locked(q.m, w,
                        oc == LOADGEN_OK          ? "done OK"
                        : oc == LOADGEN_NOT_FOUND ? "done FILE_NOT_FOUND"
                                                  : "done FAILED");
    pthread_mutex_unlock(&q.m->lock);
    if (oc == LOADGEN_FAILED)
        loadgen_report_failure(w, path, rc);
    return oc;
}

static FILE *metrics_open(const char *file, int *err)
{
    static char vbuf[1 << 20];
    FILE *f;
    int fd;

    fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        *err = errno;
        return NULL;
    }
    f = fdopen(fd, "w");
    if (f == NULL) {
        *err = errno;
        close(fd);
        return NULL;
    }
    setvbuf(f, vbuf, _IOFBF, sizeof vbuf);
    fputs(METRICS_HEADER, f);
    return f;
}

int main(int argc, char **argv)
{
    struct measure m = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct loadgen_opts o;
    struct loadgen_workload wl;
    struct loadgen *lg;
    const char *bad = NULL;
    char err[96];
    int rc, e = 0, status;

    loadgen_parse_args(&o, argc, argv, PROG, usage, 1);
    rc = loadgen_workload_load(o.workload, &wl, &bad);
    if (rc < 0 || wl.count == 0) {
        char what[160];
        if (rc == -EINVAL && bad != NULL)
            snprintf(what, sizeof what, "'%.100s' is not a valid request path", bad);
        else if (rc < 0)
            loadgen_strerror(-rc, what, sizeof what);
        else
            snprintf(what, sizeof what, "no request paths");
        loadgen_workload_release(&wl);
        cli_fail(PROG, "-w: '%s': %s", o.workload, what);
    }
    if (o.requests == 0)
        o.requests = wl.count;
    m.out = metrics_open(o.metrics, &e);
    if (m.out == NULL) {
        loadgen_workload_release(&wl);
        cli_fail(PROG, "-m: cannot create '%s': %s", o.metrics,
                 loadgen_strerror(e, err, sizeof err));
    }
    rc = loadgen_run(&o, &wl, PROG, measure_one, &m, &lg);
    if (rc < 0) {
        fprintf(stderr, "%s: cannot start: %s\n", PROG, loadgen_strerror(-rc, err, sizeof err));
        fclose(m.out);
        loadgen_workload_release(&wl);
        return 1;
    }
    status = loadgen_failed(lg) ? 1 : 0;
    e = ferror(m.out) ? EIO : 0;
    if (fclose(m.out) != 0 && e == 0)
        e = errno;
    if (e) {
        fprintf(stderr, "%s: cannot write '%s': %s\n", PROG, o.metrics,
                loadgen_strerror(e, err, sizeof err));
        status = 1;
    }
    loadgen_print_summary(lg, stdout);
    loadgen_free(lg);
    loadgen_workload_release(&wl);
    if (fflush(stdout) != 0)
        status = 1;
    return status;
}
