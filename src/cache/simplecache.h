/* simplecache.h - the cache index: request path -> local file, opened per request. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SIMPLECACHE_H
#define GF_SIMPLECACHE_H

#include <stddef.h>
#include <stdint.h>

/* Loaded once from a locals.txt-style index (see pathmap.h); immutable afterwards, so any number
 * of threads may look up and open files at the same time without a lock. */
struct simplecache;

/* Called once per problem found while loading, with the index file name. A malformed line has
 * its line number (from 1) and req = local = NULL; an entry whose local file is unusable has
 * lineno 0 and its request and local paths. what is a short reason. */
typedef void (*simplecache_warn_fn)(const char *index, unsigned lineno, const char *req,
                                    const char *local, const char *what, void *arg);

/* Loads the index. A malformed line is reported through warn and skipped; an entry whose local
 * file cannot be opened for reading (or is not a regular file) right now is reported and kept,
 * so it is served once it becomes readable. *nreadable (may be NULL) gets the number of entries
 * readable at load time. Returns 0 and a new cache in *out (free with simplecache_free), or
 * -errno when the index itself cannot be read (-ENOENT, -EACCES, -ENOMEM, ...). */
int simplecache_load(const char *index, simplecache_warn_fn warn, void *arg,
                     struct simplecache **out, size_t *nreadable);

void simplecache_free(struct simplecache *c); /* NULL is a no-op */

/* Non-zero when the request path (path_len bytes) is in the index, readable or not. */
int simplecache_contains(const struct simplecache *c, const char *path, size_t path_len);

/* Number of entries in the index. */
size_t simplecache_count(const struct simplecache *c);

/* Bytes of the entries' files that were readable at load time (the store's size). */
uint64_t simplecache_bytes(const struct simplecache *c);

/* Opens the local file of the request path (path_len bytes), O_RDONLY | O_CLOEXEC, for this
 * request alone: read it with pread, there is no shared offset. Stores the fd (the caller
 * closes it) and the file's length at open time. Returns 0; -ENOENT when the path is not in the
 * index or its local file is missing, not readable by us, or not a regular file (the cache does
 * not have it); or another -errno for a failure of ours (-EMFILE, -EIO, ...). */
int simplecache_open(const struct simplecache *c, const char *path, size_t path_len, int *fd,
                     uint64_t *len);

#endif
