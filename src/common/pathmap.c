/* pathmap.c - the "<request path> <local file path>" index files. */
/* SPDX-License-Identifier: MIT */
#include "pathmap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATHMAP_PATH_MAX 4096 /* GF_PATH_MAX: a longer request path can never be asked for */

struct pm_entry {
    char *req;
    size_t req_len;
    char *local;
    unsigned lineno;
};

struct pathmap {
    struct pm_entry *v; /* sorted by (req_len, bytes) for bsearch */
    size_t n;
};

static int entry_cmp(const void *a, const void *b)
{
    const struct pm_entry *x = a, *y = b;

    if (x->req_len != y->req_len)
        return x->req_len < y->req_len ? -1 : 1;
    return memcmp(x->req, y->req, x->req_len);
}

void pathmap_free(struct pathmap *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].req);
        free(m->v[i].local);
    }
    free(m->v);
    free(m);
}

/* Splits line into two whitespace-separated fields. Returns NULL or a reason. */
static const char *split_line(char *line, char **req, char **local)
{
    const char *ws = " \t\r\n";
    char *save = NULL;

    *req = strtok_r(line, ws, &save);
    if (*req == NULL)
        return "";
    *local = strtok_r(NULL, ws, &save);
    if (*local == NULL)
        return "missing local path";
    if (strtok_r(NULL, ws, &save) != NULL)
        return "more than two fields";
    if ((*req)[0] != '/')
        return "request path does not start with '/'";
    if (strlen(*req) > PATHMAP_PATH_MAX)
        return "request path longer than 4096 bytes";
    return NULL;
}

static int add_entry(struct pathmap *m, size_t *cap, const char *req, const char *local,
                     unsigned lineno)
{
    if (m->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        struct pm_entry *nv = realloc(m->v, ncap * sizeof *nv);
        if (nv == NULL)
            return -ENOMEM;
        m->v = nv;
        *cap = ncap;
    }
    struct pm_entry *e = &m->v[m->n];
    e->req = strdup(req);
    e->local = strdup(local);
    e->req_len = strlen(req);
    e->lineno = lineno;
    if (e->req == NULL || e->local == NULL) {
        free(e->req);
        free(e->local);
        return -ENOMEM;
    }
    m->n++;
    return 0;
}

static int lineno_cmp(const void *a, const void *b)
{
    const struct pm_entry *x = a, *y = b;

    return entry_cmp(a, b) ? entry_cmp(a, b) : (x->lineno > y->lineno) - (x->lineno < y->lineno);
}

/* Sorts the entries; of duplicate request paths the first line wins, later ones are reported. */
static int sort_and_dedup(struct pathmap *m, const char *file, int strict, pathmap_warn_fn warn,
                          void *arg)
{
    size_t w = 0;

    if (m->n == 0)
        return 0;
    qsort(m->v, m->n, sizeof *m->v, lineno_cmp);
    for (size_t r = 0; r < m->n; r++) {
        if (w > 0 && entry_cmp(&m->v[w - 1], &m->v[r]) == 0) {
            if (warn)
                warn(file, m->v[r].lineno, "duplicate request path", arg);
            free(m->v[r].req);
            free(m->v[r].local);
            if (strict) {
                /* Entries r+1.. are still owned by the map; compact so pathmap_free sees them. */
                memmove(&m->v[w], &m->v[r + 1], (m->n - r - 1) * sizeof *m->v);
                m->n = w + (m->n - r - 1);
                return -EINVAL;
            }
            continue;
        }
        m->v[w++] = m->v[r];
    }
    m->n = w;
    return 0;
}

/* Reads one line without its '\n' into buf (PATHMAP_LINE_MAX + 1 bytes) and NUL-terminates it.
 * Returns its length, -1 at end of file, -EOVERFLOW for a longer line (the rest of it is read
 * and dropped), -EFBIG once *total passes PATHMAP_FILE_MAX, or -EIO. */
static long read_line(FILE *f, char *buf, size_t *total)
{
    size_t n = 0;
    int c, over = 0;

    while ((c = getc_unlocked(f)) != EOF) {
        if (++*total > PATHMAP_FILE_MAX)
            return -EFBIG; /* the file grew while we read it */
        if (c == '\n')
            break;
        if (n < PATHMAP_LINE_MAX)
            buf[n++] = (char)c;
        else
            over = 1;
    }
    if (c == EOF) {
        if (ferror(f))
            return -EIO;
        if (n == 0 && !over)
            return -1;
    }
    buf[n] = '\0';
    return over ? -EOVERFLOW : (long)n;
}

/* Opens file without blocking (a FIFO would block a plain open until a writer came) and checks
 * that it is a regular file of bounded size: "-c /dev/zero" must fail at once, not eat memory. */
static FILE *open_index(const char *file, int *rc)
{
    struct stat st;
    FILE *f;
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

    if (fd < 0) {
        *rc = -errno;
        return NULL;
    }
    if (fstat(fd, &st) < 0)
        *rc = -errno;
    else if (!S_ISREG(st.st_mode))
        *rc = -ENODEV;
    else if ((uintmax_t)st.st_size > PATHMAP_FILE_MAX)
        *rc = -EFBIG;
    else if ((f = fdopen(fd, "r")) != NULL)
        return f;
    else
        *rc = -errno;
    close(fd);
    return NULL;
}

int pathmap_load(const char *file, int strict, pathmap_warn_fn warn, void *arg,
                 struct pathmap **out)
{
    struct pathmap *m;
    size_t cap = 0, total = 0;
    char *line;
    unsigned lineno = 0;
    long len;
    int rc = 0;
    FILE *f = open_index(file, &rc);

    if (f == NULL)
        return rc;
    m = calloc(1, sizeof *m);
    line = malloc(PATHMAP_LINE_MAX + 1);
    if (m == NULL || line == NULL) {
        rc = -ENOMEM;
        goto out_free;
    }
    while ((len = read_line(f, line, &total)) != -1) {
        const char *why;
        char *req, *local;

        lineno++;
        if (len == -EOVERFLOW)
            why = "line longer than " PATHMAP_LINE_MAX_STR " bytes";
        else if (len < 0) {
            rc = (int)len;
            goto out_free;
        } else if (memchr(line, '\0', (size_t)len) != NULL)
            why = "line holds a NUL byte";
        else if (line[strspn(line, " \t\r")] == '#')
            continue;
        else if ((why = split_line(line, &req, &local)) != NULL && *why == '\0')
            continue; /* blank line */
        if (why) {
            if (warn)
                warn(file, lineno, why, arg);
            if (strict) {
                rc = -EINVAL;
                goto out_free;
            }
            continue;
        }
        rc = add_entry(m, &cap, req, local, lineno);
        if (rc < 0)
            goto out_free;
    }
    rc = sort_and_dedup(m, file, strict, warn, arg);
    if (rc < 0)
        goto out_free;
    *out = m;
    m = NULL;
out_free:
    pathmap_free(m);
    free(line);
    fclose(f);
    return rc;
}

const char *pathmap_strerror(int rc)
{
    switch (rc) {
    case -ENODEV:
        return "not a regular file";
    case -EFBIG:
        return "larger than " PATHMAP_FILE_MAX_STR " bytes";
    case -EINVAL:
        return "malformed line";
    default:
        return strerror(-rc);
    }
}

const char *pathmap_get(const struct pathmap *m, const char *path, size_t path_len)
{
    struct pm_entry key = {.req = (char *)(uintptr_t)path, .req_len = path_len};
    const struct pm_entry *e;

    if (m->n == 0)
        return NULL; /* bsearch may not be given a null array */
    e = bsearch(&key, m->v, m->n, sizeof *m->v, entry_cmp);

    return e ? e->local : NULL;
}

size_t pathmap_count(const struct pathmap *m)
{
    return m->n;
}

void pathmap_entry(const struct pathmap *m, size_t i, const char **req, const char **local)
{
    *req = m->v[i].req;
    *local = m->v[i].local;
}
