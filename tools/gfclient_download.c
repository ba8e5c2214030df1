/* gfclient_download.c - fetches the workload's paths from a GETFILE server into the current
 * directory, over several threads. */
/* SPDX-License-Identifier: MIT */
#include "loadgen.h"
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROG "gfclient_download"

/* clang-format off */
static const char usage[] =
    "usage: " PROG " [-s server] [-p port] [-t threads] [-w workload] [-r requests] [-R secs]\n"
    LOADGEN_USAGE_OPTIONS
    "  -h, --help               show this help and exit\n"
    "      --version            show the version and exit\n"
    "Each body is saved under the current directory at the request path without its\n"
    "leading '/', creating directories. A file appears only once its transfer is complete\n"
    "(written to a temporary file in the same directory, then renamed). Paths with empty,\n"
    "'.' or '..' segments are refused, and symbolic links are not followed.\n"
    "Prints a summary on stdout and one line per failed request on stderr. Exit status:\n"
    "0 when no request failed (FILE_NOT_FOUND is an answer, not a failure), 1 otherwise,\n"
    "2 for a bad option or value (an unreadable or empty workload included).\n";
/* clang-format on */

/* One request's file, from the header callback to the rename. */
struct dl_file {
    struct loadgen_worker *w;
    const char *rel; /* the request path without its leading '/' */
    int dirfd;       /* the directory the file goes into, or -1 */
    int fd;          /* the temporary file, or -1 */
    char base[NAME_MAX + 1];
    char tmp[NAME_MAX + 1];
    const char *failed_op; /* set when saving failed locally */
    int err;               /* its errno */
};

/* Non-zero when path (which starts with '/') names a file below the current directory: every
 * segment non-empty and neither "." nor "..". */
static int path_is_safe(const char *path)
{
    const char *seg = path + 1;

    for (;;) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return 0;
        if (end == NULL)
            return 1;
        seg = end + 1;
    }
}

static int dl_fail(struct dl_file *f, const char *op, int err)
{
    f->failed_op = op;
    f->err = err;
    return -err;
}

/* Opens (creating as needed) each directory of f->rel below the current one without following
 * symbolic links, leaving the last in f->dirfd and the file name in f->base. */
static int open_target_dir(struct dl_file *f)
{
    char seg[NAME_MAX + 1];
    const char *p = f->rel;
    int dirfd, nfd;

    dirfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return dl_fail(f, "open .", errno);
    for (;;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > NAME_MAX) {
            close(dirfd);
            return dl_fail(f, "name", ENAMETOOLONG);
        }
        memcpy(seg, p, len);
        seg[len] = '\0';
        if (end == NULL)
            break;
        if (mkdirat(dirfd, seg, 0777) < 0 && errno != EEXIST) {
            int err = errno;
            close(dirfd);
            return dl_fail(f, "mkdir", err);
        }
        nfd = openat(dirfd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0) {
            int err = errno == ELOOP ? ENOTDIR : errno; /* a symlink: refuse to follow it */
            close(dirfd);
            return dl_fail(f, "open directory", err);
        }
        close(dirfd);
        dirfd = nfd;
        p = end + 1;
    }
    memcpy(f->base, seg, sizeof seg);
    f->dirfd = dirfd;
    return 0;
}

static int dl_on_header(const struct gf_response *hdr, void *arg)
{
    struct dl_file *f = arg;
    int rc;

    if (hdr->status != GF_OK)
        return 0;
    rc = open_target_dir(f);
    if (rc < 0)
        return rc;
    /* Unique among this process's requests; the attempt number steps over leftovers of a
     * crashed earlier process that had the same pid. */
    for (unsigned attempt = 0; attempt < 16; attempt++) {
        snprintf(f->tmp, sizeof f->tmp, ".gfdl-%ld-%u-%llu-%u.part", (long)getpid(), f->w->index,
                 (unsigned long long)f->w->seq, attempt);
        f->fd = openat(f->dirfd, f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f->fd >= 0)
            return 0;
        if (errno != EEXIST)
            break;
    }
    return dl_fail(f, "create temporary file", errno);
}

static int dl_on_write(const void *buf, size_t len, void *arg)
{
    struct dl_file *f = arg;
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(f->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return dl_fail(f, "write", errno);
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Renames the complete temporary file into place (keep != 0) or removes it. */
static int dl_finish(struct dl_file *f, int keep)
{
    int rc = 0;

    if (f->fd >= 0) {
        if (close(f->fd) < 0 && keep)
            rc = dl_fail(f, "write", errno);
        f->fd = -1;
        if (keep && rc == 0 && renameat(f->dirfd, f->tmp, f->dirfd, f->base) < 0)
            rc = dl_fail(f, "rename", errno);
        if (!keep || rc < 0)
            unlinkat(f->dirfd, f->tmp, 0);
    }
    if (f->dirfd >= 0)
        close(f->dirfd);
    f->dirfd = -1;
    return rc;
}

static enum loadgen_outcome download_one(struct loadgen_worker *w, const char *path, uint64_t idx,
                                         void *arg)
{
    struct dl_file f = {.w = w, .rel = path + 1, .dirfd = -1, .fd = -1};
    char reason[NAME_MAX + 128], err[96];
    int rc;

    (void)idx;
    (void)arg;
    if (!path_is_safe(path)) {
        loadgen_report(w, path, "refused: the path has an empty, '.' or '..' segment");
        return LOADGEN_FAILED;
    }
    rc = gfc_set_path(w->req, path);
    if (rc < 0) {
        loadgen_report_failure(w, path, rc);
        return LOADGEN_FAILED;
    }
    gfc_set_headerfunc(w->req, dl_on_header, &f);
    gfc_set_writefunc(w->req, dl_on_write, &f);
    rc = loadgen_perform(w);
    enum gf_status st = gfc_get_status(w->req);
    int complete = rc == 0 && st == GF_OK;
    int frc = dl_finish(&f, complete);
    if (f.failed_op) {
        snprintf(reason, sizeof reason, "cannot save '%s': %s: %s", f.rel, f.failed_op,
                 loadgen_strerror(f.err, err, sizeof err));
        loadgen_report(w, path, reason);
        return LOADGEN_FAILED;
    }
    if (complete && frc == 0)
        return LOADGEN_OK;
    if (rc == 0 && st == GF_FILE_NOT_FOUND)
        return LOADGEN_NOT_FOUND;
    loadgen_report_failure(w, path, rc);
    return LOADGEN_FAILED;
}

int main(int argc, char **argv)
{
    struct loadgen_opts o;
    struct loadgen_workload wl;
    struct loadgen *lg;
    const char *bad = NULL;
    char err[96];
    int rc, status;

    loadgen_parse_args(&o, argc, argv, PROG, usage, 0);
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
    rc = loadgen_run(&o, &wl, PROG, download_one, NULL, &lg);
    if (rc < 0) {
        fprintf(stderr, "%s: cannot start: %s\n", PROG, loadgen_strerror(-rc, err, sizeof err));
        loadgen_workload_release(&wl);
        return 1;
    }
    loadgen_print_summary(lg, stdout);
    status = loadgen_failed(lg) ? 1 : 0;
    loadgen_free(lg);
    loadgen_workload_release(&wl);
    if (fflush(stdout) != 0)
        status = 1;
    return status;
}
