/* seg_classes.h - segment size classes for the proxy's pool: webproxy --segments
 * SIZE:COUNT[,SIZE:COUNT...], and the rule that picks a class for a transfer. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SEG_CLASSES_H
#define GF_SEG_CLASSES_H

#include <stddef.h>
#include <stdint.h>

#define SEG_CLASSES_MAX 8u /* classes per pool */

struct seg_class {
    uint64_t size;  /* bytes per segment, SHM_SEG_MIN..SHM_SEG_MAX */
    unsigned count; /* segments of this size, >= 1 */
};

/* Classes in strictly ascending size; the counts add up to 1..SEG_POOL_MAX. */
struct seg_classes {
    unsigned n;
    struct seg_class c[SEG_CLASSES_MAX];
};

/* Parses a size: decimal digits, optionally followed by one of K, M, G (binary: 1024, 1024^2,
 * 1024^3; upper or lower case, an optional "iB" or "B" after it). Returns 0 and *out, or -EINVAL
 * (empty, no digits, signs, spaces, unknown suffix, trailing bytes, overflow). */
int seg_size_parse(const char *s, size_t len, uint64_t *out);

/* Parses "SIZE:COUNT[,SIZE:COUNT...]" into out, sorted by size. Every size must be within
 * SHM_SEG_MIN..SHM_SEG_MAX, every count >= 1, no size may appear twice, at most SEG_CLASSES_MAX
 * classes and 1..SEG_POOL_MAX segments in all. Returns 0, or -EINVAL with *why (static text). */
int seg_classes_parse(const char *spec, struct seg_classes *out, const char **why);

/* One class of count segments of size bytes (the old -n/-z). */
void seg_classes_single(struct seg_classes *out, unsigned count, uint64_t size);

/* Segments in all, and their bytes in all. */
unsigned seg_classes_count(const struct seg_classes *cl);
uint64_t seg_classes_bytes(const struct seg_classes *cl);

/* File bytes a segment of size bytes holds at once (its ring: slots x slot payload). A file of
 * at most this many bytes is written by the cache without waiting for the proxy to drain. */
uint64_t seg_class_capacity(uint64_t size);

/* The class for a transfer: with known non-zero, the smallest class whose capacity holds
 * file_size (the largest when none does); with known 0, the largest. */
unsigned seg_classes_pick(const struct seg_classes *cl, int known, uint64_t file_size);

/* "64K:32,1M:8" (sizes in the largest exact binary unit) into buf; returns what snprintf
 * would have written. */
int seg_classes_format(const struct seg_classes *cl, char *buf, size_t cap);

#endif
