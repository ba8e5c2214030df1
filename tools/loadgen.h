/* loadgen.h - what gfclient_download and gfclient_measure share: options, the workload, the
 * fan-out of requests over threads, retries while the server is not up, counters, summary. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_LOADGEN_H
#define GF_LOADGEN_H

#include <stdint.h>
#include <stdio.h>

#include "gfclient.h"

#define LOADGEN_MAX_THREADS 1024
/* A workload file larger than this is refused. */
#define LOADGEN_WORKLOAD_MAX (64u << 20)

struct loadgen_opts {
    const char *server;   /* -s, default "localhost" */
    uint16_t port;        /* -p, default 10823 */
    unsigned threads;     /* -t, default 8 */
    const char *workload; /* -w, default "workload.txt" */
    uint64_t requests;    /* -r; 0 (the default) = one pass over the workload */
    unsigned retry_s;     /* -R, default 30: how long one request retries a refused connect */
    const char *metrics;  /* -m (only with_metrics), default "metrics.txt" */
    int timeout_ms;       /* --timeout: the client's idle timeout, default 10000 */
};

/* The longest --timeout, in ms (an hour). */
#define LOADGEN_TIMEOUT_MAX_MS 3600000

/* The usage lines of the options loadgen_parse_args parses for both programs. */
/* clang-format off */
#define LOADGEN_USAGE_OPTIONS \
    "  -s, --server SERVER      server name or address (default: localhost)\n" \
    "  -p, --port PORT          server port, 1..65535 (default: 10823)\n" \
    "  -t, --threads THREADS    concurrent requests, 1..1024 (default: 8)\n" \
    "  -w, --workload FILE      file of request paths separated by whitespace; '-' for\n" \
    "                           standard input; a pipe or FIFO works (default: workload.txt)\n" \
    "  -r, --requests N         total requests, cycling through the workload (default: one\n" \
    "                           per path)\n" \
    "  -R, --retry SECS         while the server refuses connections, retry once a second\n" \
    "                           this long per request; 0 = no retry (default: 30)\n" \
    "      --timeout MS         give up on a request when the server sends nothing for MS\n" \
    "                           ms, 1..3600000 (default: 10000)\n"
/* clang-format on */

/* Fills o from argv (defaults first), short or long options. -h/--help prints usage on stdout
 * and --version the version, and exit 0; a bad option or value prints one line naming it and
 * "Try 'PROG --help'" on stderr and exits 2. with_metrics accepts -m/--metrics. */
void loadgen_parse_args(struct loadgen_opts *o, int argc, char **argv, const char *prog,
                        const char *usage, int with_metrics);

/* The request paths of a workload file: separated by whitespace, each one valid per
 * gf_path_valid. */
struct loadgen_workload {
    char *text;   /* owned: the file, with a NUL after each path */
    char **paths; /* owned: count pointers into text */
    size_t count;
};

/* Loads file into w: a regular file, a pipe or FIFO, or standard input when file is "-", read
 * to its end. Returns 0, -errno for the file (-EFBIG past LOADGEN_WORKLOAD_MAX), or -EINVAL
 * for an invalid path (then *bad points at it inside w->text, which is kept until
 * loadgen_workload_release so the caller can name it; the file's own errors never set *bad).
 * An empty workload loads as count 0. */
int loadgen_workload_load(const char *file, struct loadgen_workload *w, const char **bad);
void loadgen_workload_release(struct loadgen_workload *w);

/* How a request ended. FILE_NOT_FOUND is an answer, not a failure. */
enum loadgen_outcome { LOADGEN_OK, LOADGEN_NOT_FOUND, LOADGEN_FAILED };

struct loadgen;

/* One thread's view. req is created per thread with the server, port and timeouts already set;
 * the request function sets the path and callbacks, then calls loadgen_perform. */
struct loadgen_worker {
    struct loadgen *lg;
    unsigned index; /* 0..threads-1 */
    struct gfcrequest *req;
    uint64_t seq;       /* requests this worker started, for unique names */
    int64_t latency_ns; /* of the last attempt of this request's loadgen_perform, or -1 */
    uint64_t bytes;     /* content bytes this request received */
};

/* Runs one request for path (the idx-th request of the run). Reports its own failures. */
typedef enum loadgen_outcome (*loadgen_request_fn)(struct loadgen_worker *w, const char *path,
                                                   uint64_t idx, void *arg);

/* Runs opts->requests requests (cycling through the workload's paths: request i uses path
 * i mod count) on min(threads, requests) threads that take the next index from a shared
 * counter. Counts outcomes, bytes (gfc_get_bytesreceived after each call) and latencies.
 * prog prefixes the retry notice. Returns 0 and *out (free with loadgen_free), or -errno when
 * the threads could not be started. */
int loadgen_run(const struct loadgen_opts *opts, const struct loadgen_workload *w, const char *prog,
                loadgen_request_fn fn, void *arg, struct loadgen **out);
void loadgen_free(struct loadgen *lg); /* NULL is a no-op */

/* gfc_perform on w->req, retrying once a second while the connect is refused, for up to
 * retry_s seconds from the first attempt. Records the latency of the last attempt. */
int loadgen_perform(struct loadgen_worker *w);

/* Nanoseconds since the run started (CLOCK_MONOTONIC). */
int64_t loadgen_elapsed_ns(const struct loadgen *lg);

/* Prints "<prog>: GET <path>: <reason>" on stderr with one write(2). */
void loadgen_report(const struct loadgen_worker *w, const char *path, const char *reason);
/* The same, with the reason made from a gfc_perform result (rc, or rc 0 with a status other
 * than OK or FILE_NOT_FOUND) and the request's status and byte counts. */
void loadgen_report_failure(const struct loadgen_worker *w, const char *path, int rc);
/* strerror_r into buf (the XSI one), falling back to "error N". Returns buf. */
const char *loadgen_strerror(int err, char *buf, size_t cap);

/* Prints the run's summary on out, one "key: value" line each: requests, ok, not_found,
 * failed, bytes, elapsed_s, requests_per_s, MB_per_s (10^6 bytes), latency_p50_ms,
 * latency_p99_ms. */
void loadgen_print_summary(const struct loadgen *lg, FILE *out);

/* Requests that failed in the run. */
uint64_t loadgen_failed(const struct loadgen *lg);

#endif
