/* pathmap.h - the "<request path> <local file path>" index files (content.txt, locals.txt). */
/* SPDX-License-Identifier: MIT */
#ifndef GF_PATHMAP_H
#define GF_PATHMAP_H

#include <stddef.h>

/* Each line holds a request path and a local path separated by spaces or tabs. Blank lines and
 * lines starting with '#' are skipped. Lookup is exact and case sensitive; local paths are
 * relative to the working directory. Immutable once loaded, so lookups need no lock. */
struct pathmap;

/* Limits: a longer line is a malformed line; a larger file fails the load with -EFBIG. */
#define PATHMAP_LINE_MAX     16384
#define PATHMAP_LINE_MAX_STR "16384"
#define PATHMAP_FILE_MAX     ((size_t)256 << 20)
#define PATHMAP_FILE_MAX_STR "268435456"

/* Called for a bad line (lineno counts from 1); what says what is wrong. */
typedef void (*pathmap_warn_fn)(const char *file, unsigned lineno, const char *what, void *arg);

/* Loads file. Malformed lines (one field, a path not starting with '/', a request path over
 * GF_PATH_MAX bytes, a line over PATHMAP_LINE_MAX bytes or holding a NUL byte, a duplicate) are
 * reported through warn (may be NULL) and skipped; when strict is non-zero the first one fails
 * the load with -EINVAL instead. The index is opened without blocking and must be a regular file
 * (-ENODEV for a FIFO, device or directory) of at most PATHMAP_FILE_MAX bytes (-EFBIG). Returns
 * 0 and a new map in *out (free with pathmap_free), or -errno (-ENOENT, -EACCES, -ENOMEM, -EIO);
 * pathmap_strerror words any of them. */
int pathmap_load(const char *file, int strict, pathmap_warn_fn warn, void *arg,
                 struct pathmap **out);

/* The local path for the request path (path_len bytes, need not be NUL-terminated), or NULL.
 * Borrowed: valid until pathmap_free. */
const char *pathmap_get(const struct pathmap *m, const char *path, size_t path_len);

/* Number of entries, and the i-th entry (0 <= i < count) for iteration. */
size_t pathmap_count(const struct pathmap *m);
void pathmap_entry(const struct pathmap *m, size_t i, const char **req, const char **local);

void pathmap_free(struct pathmap *m); /* NULL is a no-op */

/* What a pathmap_load error means, for a log line ("not a regular file", ...). Static. */
const char *pathmap_strerror(int rc);

#endif
