/* map_keep.h - read-only mappings of whole files kept across requests, so that a body sent
 * from memory costs one copy and no mmap/munmap per request (docs/http.md).
 *
 * An entry is keyed by the file's device, inode, size, mtime and ctime: a file changed since
 * it was mapped is a different key (a new mapping), and the old one is dropped when space is
 * needed and nobody holds it. At most max_bytes mapped and max_entries entries; an entry is
 * held (map_keep_get .. map_keep_put) while a response sends from it and is never dropped
 * then. Thread-safe. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_MAP_KEEP_H
#define GF_MAP_KEEP_H

#include <stdint.h>
#include <sys/stat.h>

struct map_keep;
struct map_entry;

/* Returns 0 and *out, or -EINVAL (a zero bound) / -ENOMEM. */
int map_keep_new(struct map_keep **out, uint64_t max_bytes, unsigned max_entries);

/* A held mapping of the whole file behind fd, whose fstat is st (a regular file), or NULL
 * when it cannot be mapped or does not fit beside the held ones. *base is its first byte.
 * The mapping is made with MAP_POPULATE under the keeper's lock. */
struct map_entry *map_keep_get(struct map_keep *mk, int fd, const struct stat *st,
                               const unsigned char **base);

/* Releases a hold from map_keep_get. */
void map_keep_put(struct map_keep *mk, struct map_entry *e);

/* Unmaps everything. Every hold must have been released. NULL is a no-op. */
void map_keep_free(struct map_keep *mk);

#endif
