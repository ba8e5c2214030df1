/* size_hints.h - what the proxy remembers of file sizes: the length the cache reported for a
 * path on an earlier transfer, so the next transfer of that path can take the smallest segment
 * class that holds it (seg_classes.h). A small fixed table, direct-mapped by a 64-bit hash of
 * the path: a newer path evicts an older one in its bucket. A hint only chooses a segment
 * size; a wrong or stale one costs speed or memory, never bytes (any file streams through any
 * segment). Thread-safe. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SIZE_HINTS_H
#define GF_SIZE_HINTS_H

#include <stddef.h>
#include <stdint.h>

#define SIZE_HINTS_DEFAULT 4096u /* buckets in webproxy's table (64 KiB) */
#define SIZE_HINTS_MAX     (1u << 20)

struct size_hints;

/* Creates a table of capacity buckets (rounded up to a power of two, 1..SIZE_HINTS_MAX).
 * Returns 0 and *out, or -EINVAL / -ENOMEM. */
int size_hints_new(struct size_hints **out, unsigned capacity);

/* Frees the table; NULL is a no-op. */
void size_hints_free(struct size_hints *h);

/* Remembers that path (len bytes) had size bytes; replaces whatever its bucket held. */
void size_hints_put(struct size_hints *h, const char *path, size_t len, uint64_t size);

/* Forgets path (the cache no longer has it). */
void size_hints_forget(struct size_hints *h, const char *path, size_t len);

/* 1 and *size when path has a hint, else 0. */
int size_hints_get(struct size_hints *h, const char *path, size_t len, uint64_t *size);

#endif
