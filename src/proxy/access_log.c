/* access_log.c - webproxy's access log: one line per request, one write(2) each. */
/* SPDX-License-Identifier: MIT */
#include "access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Time, address, the longest path (every byte escaped), the numbers and the result. */
#define ALOG_LINE_MAX (3 * GF_PATH_MAX + 256)

struct access_log {
    char *path; /* NULL for stderr */
    atomic_int *reopen;
    pthread_rwlock_t lock; /* writers of lines share it; a reopen swaps fd under it alone */
    int fd;
};

static int open_append(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);

    return fd < 0 ? -errno : fd;
}

int access_log_open(struct access_log **out, const char *path, atomic_int *reopen)
{
    struct access_log *l = calloc(1, sizeof *l);
    int rc;

    if (l == NULL)
        return -ENOMEM;
    l->reopen = reopen;
    l->fd = STDERR_FILENO;
    if (strcmp(path, "-") != 0) {
        l->path = strdup(path);
        if (l->path == NULL) {
            rc = -ENOMEM;
            goto err;
        }
        rc = open_append(path);
        if (rc < 0)
            goto err;
        l->fd = rc;
    }
    rc = -pthread_rwlock_init(&l->lock, NULL);
    if (rc < 0)
        goto err;
    *out = l;
    return 0;
err:
    if (l->path != NULL && l->fd != STDERR_FILENO)
        close(l->fd);
    free(l->path);
    free(l);
    return rc;
}

/* Reopens the file, while no line is written; the first worker to see the flag does it. */
static void reopen(struct access_log *l)
{
    int fd;

    pthread_rwlock_wrlock(&l->lock);
    if (atomic_exchange(l->reopen, 0)) {
        fd = open_append(l->path);
        if (fd >= 0) {
            close(l->fd);
            l->fd = fd;
        } else {
            log_err(-fd, "cannot reopen the access log '%s'; still writing the old one", l->path);
        }
    }
    pthread_rwlock_unlock(&l->lock);
}

/* The status sent, or "-" when none was (-1). */
static const char *status_name(int st)
{
    return st < 0 ? "-" : gf_status_name((enum gf_status)st);
}

/* "addr:port", "[v6addr]:port", or "-". */
static void format_peer(const struct gfs_done *d, char *buf, size_t cap)
{
    char host[64], serv[8]; /* numeric: an IPv6 address with a scope, a port */

    if (d->peer == NULL || getnameinfo(d->peer, d->peer_len, host, sizeof host, serv, sizeof serv,
                                       NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(buf, cap, "-");
        return;
    }
    snprintf(buf, cap, d->peer->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

/* The path with ' ' and '%' as %20 and %25, so fields split on spaces ("-" for none). Paths
 * hold only printable bytes (gf_path_valid). */
static void format_path(const char *path, char *buf, size_t cap)
{
    size_t n = 0;

    if (path == NULL)
        path = "-";
    for (; *path != '\0' && n + 4 <= cap; path++) {
        if (*path == ' ' || *path == '%')
            n += (size_t)snprintf(buf + n, cap - n, "%%%02X", (unsigned char)*path);
        else
            buf[n++] = *path;
    }
    buf[n] = '\0';
}

void access_log_done(const struct gfs_done *d, void *arg)
{
    struct access_log *l = arg;
    char line[ALOG_LINE_MAX], path[3 * GF_PATH_MAX + 1], peer[80];
    char when[32];
    struct timespec now;
    struct tm tm;
    int n;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    format_peer(d, peer, sizeof peer);
    format_path(d->path, path, sizeof path);
    n = snprintf(line, sizeof line, "%s.%03ldZ %s %s %s %llu %lld.%06lld %s\n", when,
                 now.tv_nsec / 1000000, peer, path, status_name(d->status),
                 (unsigned long long)d->sent, (long long)(d->duration_ns / 1000000000),
                 (long long)(d->duration_ns % 1000000000 / 1000), d->note != NULL ? d->note : "-");
    if (n < 0 || (size_t)n >= sizeof line)
        return; /* cannot happen: a path is at most GF_PATH_MAX bytes */
    if (l->path != NULL && atomic_load(l->reopen))
        reopen(l);
    pthread_rwlock_rdlock(&l->lock);
    /* O_APPEND: each write lands whole at the end, whoever else writes. */
    ssize_t w;
    do {
        w = write(l->fd, line, (size_t)n);
    } while (w < 0 && errno == EINTR);
    pthread_rwlock_unlock(&l->lock);
}

void access_log_close(struct access_log *l)
{
    if (l == NULL)
        return;
    if (l->path != NULL)
        close(l->fd);
    pthread_rwlock_destroy(&l->lock);
    free(l->path);
    free(l);
}
