/* simplecache.c - the cache index: request path -> local file, opened per request. */
/* SPDX-License-Identifier: MIT */
#include "simplecache.h"
#include "pathmap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct simplecache {
    struct pathmap *map; /* immutable after load */
    uint64_t bytes;      /* of the files readable at load time */
};

struct load_ctx {
    simplecache_warn_fn warn;
    void *arg;
};

static void on_bad_line(const char *file, unsigned lineno, const char *what, void *arg)
{
    struct load_ctx *lc = arg;

    if (lc->warn)
        lc->warn(file, lineno, NULL, NULL, what, lc->arg);
}

/* Opens local for reading and checks it is a regular file. Returns the fd or -errno (-EISDIR for
 * anything but a regular file). */
static int open_regular(const char *local, uint64_t *len)
{
    struct stat st;
    /* O_NONBLOCK: a FIFO must not block the open; it has no effect on regular files. */
    int fd = open(local, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -EISDIR; /* directories, fifos, devices: nothing we serve */
    }
    *len = (uint64_t)st.st_size;
    return fd;
}

static const char *open_reason(int rc)
{
    switch (-rc) {
    case ENOENT:
    case ENOTDIR:
        return "local file does not exist";
    case EACCES:
    case EPERM:
        return "local file is not readable";
    case EISDIR:
        return "local path is not a regular file";
    default:
        return "local file cannot be opened";
    }
}

int simplecache_load(const char *index, simplecache_warn_fn warn, void *arg,
                     struct simplecache **out, size_t *nreadable)
{
    struct load_ctx lc = {warn, arg};
    struct simplecache *c;
    size_t readable = 0;
    int rc;

    c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    rc = pathmap_load(index, 0, on_bad_line, &lc, &c->map);
    if (rc < 0) {
        free(c);
        return rc;
    }
    for (size_t i = 0; i < pathmap_count(c->map); i++) {
        const char *req, *local;
        uint64_t len = 0;
        pathmap_entry(c->map, i, &req, &local);
        int fd = open_regular(local, &len);
        if (fd >= 0) {
            close(fd);
            readable++;
            c->bytes += len;
        } else if (warn) {
            warn(index, 0, req, local, open_reason(fd), arg);
        }
    }
    if (nreadable)
        *nreadable = readable;
    *out = c;
    return 0;
}

void simplecache_free(struct simplecache *c)
{
    if (c == NULL)
        return;
    pathmap_free(c->map);
    free(c);
}

size_t simplecache_count(const struct simplecache *c)
{
    return pathmap_count(c->map);
}

int simplecache_contains(const struct simplecache *c, const char *path, size_t path_len)
{
    return pathmap_get(c->map, path, path_len) != NULL;
}

uint64_t simplecache_bytes(const struct simplecache *c)
{
    return c->bytes;
}

int simplecache_open(const struct simplecache *c, const char *path, size_t path_len, int *fd,
                     uint64_t *len)
{
    const char *local = pathmap_get(c->map, path, path_len);
    int rc;

    if (local == NULL)
        return -ENOENT;
    rc = open_regular(local, len);
    if (rc >= 0) {
        *fd = rc;
        return 0;
    }
    switch (-rc) {
    case ENOENT:
    case ENOTDIR:
    case EACCES:
    case EPERM:
    case EISDIR:
    case ELOOP:
    case ENAMETOOLONG:
        return -ENOENT;
    default:
        return rc;
    }
}
