/* gfserver_main.c - the GETFILE file server: serves the files named in a content index. */
/* SPDX-License-Identifier: MIT */
#include "cli.h"
#include "clock.h"
#include "gfs_cli.h"
#include "gfserver.h"
#include "log.h"
#include "pathmap.h"
#include "signals.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PROG         "gfserver_main"
#define READ_CHUNK   (256 * 1024) /* per-worker file buffer */
#define MAX_THREADS  1024
#define MAX_DELAY_US 2500000

/* clang-format off */
static const char usage[] =
    "usage: " PROG " [options]\n"
    "Serves files over GETFILE. The content index has one '<request path> <local path>' entry\n"
    "per line (local paths relative to the working directory). Bad index lines are reported and\n"
    "skipped; the server refuses to start only when the index cannot be read or has no valid\n"
    "entry. A listed file that does not exist or cannot be opened is FILE_NOT_FOUND; a server\n"
    "fault (out of descriptors, a read error before the header) is ERROR; a read error during\n"
    "the transfer ends it early, so the client sees a short transfer.\n"
    "  -p, --port PORT           port to listen on (default 10823)\n"
    "  -t, --threads THREADS     worker threads, 1..1024 (default 8)\n"
    "  -m, --content FILE        content index file (default content.txt)\n"
    "  -d, --delay DELAY         microseconds added to each request, 0..2500000 (default 0)\n"
    GFS_CLI_USAGE
    "  -h, --help                show this help and exit\n"
    "      --version             show the version and exit\n"
    "Signals: SIGINT/SIGTERM stop (in-flight transfers get the -G grace); SIGHUP, SIGUSR1,\n"
    "SIGUSR2 and SIGPIPE are ignored (logs go to stderr: no log file to reopen).\n"
    CLI_SERVER_EXIT_USAGE;
/* clang-format on */

static volatile sig_atomic_t stop_requested; /* the only mutable global */

struct worker {
    const struct pathmap *map;
    unsigned delay_us;
    char *buf; /* READ_CHUNK bytes */
};

/* Waits delay_us, in slices, giving up once the server is cancelled. */
static int delay(struct gfs_ctx *ctx, unsigned delay_us)
{
    int64_t end = clock_mono_ns() + (int64_t)delay_us * 1000;

    for (;;) {
        int64_t left = end - clock_mono_ns();
        if (left <= 0)
            return 0;
        if (gfs_ctx_cancelled(ctx))
            return -ECANCELED;
        if (left > 50000000)
            left = 50000000;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)left};
        nanosleep(&ts, NULL);
    }
}

/* An open error that means "nothing to serve under this name" rather than a server fault. */
static int is_not_found(int err)
{
    return err == ENOENT || err == ENOTDIR || err == EACCES || err == ELOOP ||
           err == ENAMETOOLONG || err == EPERM;
}

static int send_file(struct gfs_ctx *ctx, int fd, uint64_t size, char *buf)
{
    uint64_t off = 0;
    int rc = gfs_send_header(ctx, GF_OK, size);

    while (rc == 0 && off < size) {
        size_t want = size - off < READ_CHUNK ? (size_t)(size - off) : READ_CHUNK;
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO; /* the file shrank: the client sees a short transfer */
        rc = gfs_send(ctx, buf, (size_t)n);
        off += (uint64_t)n;
    }
    return rc;
}

static int handle(struct gfs_ctx *ctx, const char *path, size_t path_len, void *arg)
{
    struct worker *w = arg;
    const char *local;
    struct stat st;
    int fd, rc;

    if (w->delay_us > 0 && delay(ctx, w->delay_us) < 0)
        return -ECANCELED;
    local = pathmap_get(w->map, path, path_len);
    if (local == NULL) {
        log_debug("'%s': not in the index", path);
        return gfs_send_header(ctx, GF_FILE_NOT_FOUND, 0);
    }
    /* O_NONBLOCK: a FIFO listed in the index must not pin this worker in open(). */
    fd = open(local, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        log_warn(err, "cannot open '%s' for '%s'", local, path);
        return is_not_found(err) ? gfs_send_header(ctx, GF_FILE_NOT_FOUND, 0) : -err;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        log_warn(0, "'%s' for '%s' is not a regular file", local, path);
        rc = gfs_send_header(ctx, GF_FILE_NOT_FOUND, 0);
        goto out;
    }
    rc = send_file(ctx, fd, (uint64_t)st.st_size, w->buf);
    if (rc < 0)
        log_msg(LOGL_DEBUG, -rc, "'%s': transfer failed after %llu bytes", path,
                (unsigned long long)gfs_ctx_sent(ctx));
out:
    close(fd);
    return rc;
}

static void on_bad_line(const char *file, unsigned lineno, const char *what, void *arg)
{
    (void)arg;
    log_warn(0, "%s:%u: %s; line skipped", file, lineno, what);
}

struct config {
    uint16_t port;
    unsigned nthreads, delay_us;
    struct gfs_options server; /* the shared -q -H -S -G values */
    const char *index;
};

enum long_opt { OPT_VERSION = 256 };

static const struct option long_opts[] = {
    {"port", required_argument, NULL, 'p'},
    {"threads", required_argument, NULL, 't'},
    {"content", required_argument, NULL, 'm'},
    {"delay", required_argument, NULL, 'd'},
    GFS_CLI_LONGOPTS,
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static void parse_args(int argc, char **argv, struct config *c)
{
    int opt;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":p:t:m:d:h" GFS_CLI_OPTSTRING, long_opts, NULL)) != -1) {
        switch (opt) {
        case 'p':
            if (cli_parse_port(optarg, &c->port) < 0)
                cli_fail_range(PROG, "-p", optarg, 1, 65535);
            break;
        case 't':
            if (cli_parse_uint(optarg, 1, MAX_THREADS, &c->nthreads) < 0)
                cli_fail_range(PROG, "-t", optarg, 1, MAX_THREADS);
            break;
        case 'm':
            c->index = optarg;
            break;
        case 'd':
            if (cli_parse_uint(optarg, 0, MAX_DELAY_US, &c->delay_us) < 0)
                cli_fail_range(PROG, "-d", optarg, 0, MAX_DELAY_US);
            break;
        case 'h':
            cli_print_help(usage);
        case OPT_VERSION:
            cli_print_version(PROG);
        case ':':
        case '?':
            cli_fail_getopt(PROG, opt, argv);
        default:
            if (!gfs_cli_option(&c->server, opt, optarg, PROG))
                cli_fail_getopt(PROG, '?', argv);
        }
    }
    if (optind < argc)
        cli_fail(PROG, "unexpected argument '%s'", argv[optind]);
}

int main(int argc, char **argv)
{
    struct config c = {.port = 10823, .nthreads = 8, .index = "content.txt"};
    struct pathmap *map = NULL;
    struct gfserver *srv = NULL;
    struct worker *workers = NULL;
    void **args = NULL;
    int rc, status = CLI_EXIT_FAILURE;

    log_set_role(PROG);
    parse_args(argc, argv, &c);
    rc = signals_install_stop(&stop_requested);
    if (rc < 0) {
        log_err(-rc, "cannot install signal handlers");
        return 1;
    }
    rc = pathmap_load(c.index, 0, on_bad_line, NULL, &map);
    if (rc < 0) {
        log_err(0, "cannot load content index '%s': %s", c.index, pathmap_strerror(rc));
        return 1;
    }
    if (pathmap_count(map) == 0) {
        log_err(0, "content index '%s' has no valid entry", c.index);
        goto out;
    }
    workers = calloc(c.nthreads, sizeof *workers);
    args = calloc(c.nthreads, sizeof *args);
    if (workers == NULL || args == NULL) {
        log_err(ENOMEM, "cannot allocate workers");
        goto out;
    }
    for (unsigned i = 0; i < c.nthreads; i++) {
        workers[i] = (struct worker){.map = map, .delay_us = c.delay_us};
        workers[i].buf = malloc(READ_CHUNK);
        if (workers[i].buf == NULL) {
            log_err(ENOMEM, "cannot allocate worker buffers");
            goto out;
        }
        args[i] = &workers[i];
    }

    struct gfs_options opt = c.server;
    opt.port = c.port;
    opt.nthreads = c.nthreads;
    opt.handler = handle;
    opt.worker_args = args;
    opt.stop_flag = &stop_requested;
    opt.on_event = gfs_cli_log_event;
    rc = gfs_new(&srv, &opt);
    if (rc < 0) {
        if (gfs_cli_is_bind_error(rc)) {
            log_err(-rc, "cannot listen on port %u", (unsigned)c.port);
            status = CLI_EXIT_CANNOT_START;
        } else {
            log_err(-rc, "cannot set up the server (port %u)", (unsigned)c.port);
        }
        goto out;
    }
    log_info("serving %zu entries from '%s' on port %u with %u threads", pathmap_count(map),
             c.index, (unsigned)gfs_port(srv), c.nthreads);
    rc = gfs_run(srv);
    if (rc < 0) {
        log_err(-rc, "cannot start the workers");
        goto out;
    }
    log_info("stopped");
    status = 0;
out:
    gfs_free(srv);
    if (workers) {
        for (unsigned i = 0; i < c.nthreads; i++)
            free(workers[i].buf);
    }
    free(workers);
    free(args);
    pathmap_free(map);
    return status;
}
