/* test.h - a tiny unit-test harness: CHECK macros that print both values, a closing
 * "N passed, N failed" line, exit status 1 on any failure. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_TEST_H
#define GF_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures_; /* checks failed in the current test */

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            test_failures_++;                                                        \
        }                                                                            \
    } while (0)

#define CHECK_EQ(a, b)                                                                            \
    do {                                                                                          \
        long long a_ = (long long)(a), b_ = (long long)(b);                                       \
        if (a_ != b_) {                                                                           \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, \
                    a_, b_);                                                                      \
            test_failures_++;                                                                     \
        }                                                                                         \
    } while (0)

#define CHECK_MEM(a, b, n)                                                                         \
    do {                                                                                           \
        if (memcmp((a), (b), (n)) != 0) {                                                          \
            fprintf(stderr, "%s:%d: memcmp(%s, %s, %s) failed\n", __FILE__, __LINE__, #a, #b, #n); \
            test_failures_++;                                                                      \
        }                                                                                          \
    } while (0)

struct test_case {
    const char *name;
    void (*fn)(void);
};

/* Runs every case in order and prints one line per case plus the closing line. */
static inline int test_run_all(const struct test_case *cases, size_t n)
{
    int passed = 0, failed = 0;

    for (size_t i = 0; i < n; i++) {
        test_failures_ = 0;
        cases[i].fn();
        printf("%s %s\n", test_failures_ ? "FAIL" : "ok  ", cases[i].name);
        fflush(stdout);
        if (test_failures_)
            failed++;
        else
            passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#define TEST_MAIN(...)                                                 \
    int main(void)                                                     \
    {                                                                  \
        static const struct test_case cases_[] = {__VA_ARGS__};        \
        return test_run_all(cases_, sizeof cases_ / sizeof cases_[0]); \
    }
#define T(fn)   \
    {           \
#fn, fn \
    }

#endif
