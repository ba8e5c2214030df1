/* fuzz_check.h - shared pieces of the libFuzzer harnesses: FUZZ_CHECK (a failed check aborts,
 * which libFuzzer reports as a crash and saves the input; active in every build type) and the
 * contract checks of incremental parsers. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_FUZZ_CHECK_H
#define GF_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* The entry point libFuzzer calls; declared here for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An incremental parser in this codebase's convention: bytes consumed (> 0) once buf[0..len)
 * starts with a complete message, 0 while it is a valid prefix, < 0 once it cannot become one. */
typedef ssize_t (*fuzz_parse_fn)(const char *buf, size_t len);

/* Prefix lengths 0..n worth checking: all of them for short inputs; for long ones (checking
 * each would cost O(n^2) parsing) the first and last 16, those next to mark and 16 spread out. */
static inline int fuzz_prefix_sampled(size_t k, size_t n, size_t mark)
{
    return n <= 128 || k < 16 || k + 16 >= n || (k + 2 >= mark && k <= mark + 2) ||
           k % (n / 16) == 0;
}

/* Checks that parse answers 0 for every prefix of buf[0..size) until one prefix gets a
 * verdict, and that same verdict for every longer prefix (full: the answer for all of it);
 * a message is accepted exactly at the prefix that completes it. */
static inline void fuzz_check_incremental(fuzz_parse_fn parse, const char *buf, size_t size,
                                          ssize_t full)
{
    size_t lo = 0, hi = size, v; /* v: the shortest prefix with a verdict (size + 1: none) */

    if (full == 0) {
        v = size + 1;
    } else if (full > 0) {
        v = (size_t)full;
    } else {
        while (lo + 1 < hi) { /* parse(lo) == 0, parse(hi) != 0 */
            size_t mid = lo + (hi - lo) / 2;

            if (parse(buf, mid) == 0)
                lo = mid;
            else
                hi = mid;
        }
        v = hi;
    }
    FUZZ_CHECK(parse(buf, 0) == 0);
    for (size_t k = 0; k <= size; k++)
        if (fuzz_prefix_sampled(k, size, v))
            FUZZ_CHECK(parse(buf, k) == (k < v ? 0 : full));
}

/* Checks that every strict prefix of an accepted message msg[0..n) is a valid prefix, with
 * each prefix ending at the end of a heap block so ASan reports any read past its length. */
static inline void fuzz_check_prefixes_exact(fuzz_parse_fn parse, const char *msg, size_t n)
{
    char *block = malloc(n ? n : 1);

    FUZZ_CHECK(block != NULL);
    for (size_t k = 0; k < n; k++) {
        if (!fuzz_prefix_sampled(k, n, n))
            continue;
        memcpy(block + n - k, msg, k);
        FUZZ_CHECK(parse(block + n - k, k) == 0);
    }
    free(block);
}

#endif
