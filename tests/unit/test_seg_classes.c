/* test_seg_classes.c - unit tests of segment size classes: the --segments parser, the class a
 * transfer picks, the size hints table, the pool taking by class (smallest free that fits,
 * then larger, a waiter only handed a segment large enough) and each slot's size in stats. */
/* SPDX-License-Identifier: MIT */
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "proxy/seg_classes.h"
#include "proxy/seg_pool.h"
#include "proxy/size_hints.h"
#include "stats/stats.h"

static void test_size_parse(void)
{
    uint64_t v = 0;

#define SZ(s) seg_size_parse((s), strlen(s), &v)
    CHECK_EQ(SZ("512"), 0);
    CHECK_EQ(v, 512);
    CHECK_EQ(SZ("64K"), 0);
    CHECK_EQ(v, 65536);
    CHECK_EQ(SZ("64k"), 0);
    CHECK_EQ(v, 65536);
    CHECK_EQ(SZ("1M"), 0);
    CHECK_EQ(v, 1 << 20);
    CHECK_EQ(SZ("1MiB"), 0);
    CHECK_EQ(v, 1 << 20);
    CHECK_EQ(SZ("4KB"), 0);
    CHECK_EQ(v, 4096);
    CHECK_EQ(SZ("1G"), 0);
    CHECK_EQ(v, 1 << 30);
    CHECK_EQ(SZ(""), -EINVAL);
    CHECK_EQ(SZ("K"), -EINVAL);
    CHECK_EQ(SZ("-1"), -EINVAL);
    CHECK_EQ(SZ(" 1"), -EINVAL);
    CHECK_EQ(SZ("1 "), -EINVAL);
    CHECK_EQ(SZ("1T"), -EINVAL);
    CHECK_EQ(SZ("1KK"), -EINVAL);
    CHECK_EQ(SZ("1Kx"), -EINVAL);
    CHECK_EQ(SZ("99999999999999999999"), -EINVAL);
    CHECK_EQ(SZ("18014398509481984G"), -EINVAL); /* 2^54 G overflows */
#undef SZ
}

static void test_classes_parse(void)
{
    struct seg_classes cl;
    const char *why = NULL;
    char buf[128];

    CHECK_EQ(seg_classes_parse("1M:8,64K:32,16M:2", &cl, &why), 0);
    CHECK_EQ(cl.n, 3);
    CHECK_EQ(cl.c[0].size, 64 << 10); /* sorted ascending */
    CHECK_EQ(cl.c[0].count, 32);
    CHECK_EQ(cl.c[1].size, 1 << 20);
    CHECK_EQ(cl.c[1].count, 8);
    CHECK_EQ(cl.c[2].size, 16 << 20);
    CHECK_EQ(cl.c[2].count, 2);
    CHECK_EQ(seg_classes_count(&cl), 42);
    CHECK_EQ(seg_classes_bytes(&cl), 32ull * 65536 + 8ull * 1048576 + 2ull * 16777216);
    seg_classes_format(&cl, buf, sizeof buf);
    CHECK(strcmp(buf, "64K:32,1M:8,16M:2") == 0);
    CHECK_EQ(seg_classes_parse("4096:1", &cl, &why), 0);
    CHECK_EQ(cl.n, 1);
    CHECK_EQ(seg_classes_parse("512:1024", &cl, &why), 0);

    static const char *bad[] = {"",
                                "64K",
                                "64K:",
                                ":3",
                                "64K:0",
                                "100:4",
                                "2G:1",
                                "64K:1,",
                                ",64K:1",
                                "64K:1,64K:2",
                                "64K:x",
                                "64K:-1",
                                "64K:1:2",
                                "64K :1",
                                "1K:600,2K:600",
                                "1K:1025",
                                "1K:1,2K:1,3K:1,4K:1,5K:1,6K:1,7K:1,8K:1,9K:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        int rc = seg_classes_parse(bad[i], &cl, &why);
        if (rc != -EINVAL)
            fprintf(stderr, "accepted '%s'\n", bad[i]);
        CHECK_EQ(rc, -EINVAL);
        CHECK(why != NULL && why[0] != '\0');
    }
}

static void test_pick(void)
{
    struct seg_classes cl;
    const char *why;

    CHECK_EQ(seg_classes_parse("4K:4,64K:4,1M:2", &cl, &why), 0);
    uint64_t cap0 = seg_class_capacity(4096), cap1 = seg_class_capacity(65536);
    CHECK(cap0 > 0 && cap0 <= 4096 && cap0 >= 2048);
    CHECK(cap1 > cap0 && cap1 <= 65536);
    CHECK_EQ(seg_classes_pick(&cl, 0, 0), 2);    /* unknown: the largest */
    CHECK_EQ(seg_classes_pick(&cl, 0, 100), 2);  /* unknown, whatever the value */
    CHECK_EQ(seg_classes_pick(&cl, 1, 0), 0);    /* an empty file fits anything */
    CHECK_EQ(seg_classes_pick(&cl, 1, 1000), 0); /* known small: the smallest */
    CHECK_EQ(seg_classes_pick(&cl, 1, cap0), 0); /* exactly fits */
    CHECK_EQ(seg_classes_pick(&cl, 1, cap0 + 1), 1);
    CHECK_EQ(seg_classes_pick(&cl, 1, cap1 + 1), 2);
    CHECK_EQ(seg_classes_pick(&cl, 1, 100u << 20), 2); /* larger than every class */
    seg_classes_single(&cl, 8, 1 << 20);
    CHECK_EQ(seg_classes_pick(&cl, 1, 10), 0);
    CHECK_EQ(seg_classes_pick(&cl, 0, 0), 0);
}

static void test_size_hints(void)
{
    struct size_hints *h = NULL;
    uint64_t v = 0;

    CHECK_EQ(size_hints_new(&h, 0), -EINVAL);
    CHECK_EQ(size_hints_new(&h, SIZE_HINTS_MAX + 1), -EINVAL);
    CHECK_EQ(size_hints_new(&h, 16), 0);
    if (h == NULL)
        return;
    CHECK_EQ(size_hints_get(h, "/a", 2, &v), 0);
    size_hints_put(h, "/a", 2, 1234);
    CHECK_EQ(size_hints_get(h, "/a", 2, &v), 1);
    CHECK_EQ(v, 1234);
    CHECK_EQ(size_hints_get(h, "/ab", 3, &v), 0);
    CHECK_EQ(size_hints_get(h, "/a", 1, &v), 0); /* the length counts */
    size_hints_put(h, "/a", 2, 99);              /* a newer size replaces */
    CHECK_EQ(size_hints_get(h, "/a", 2, &v), 1);
    CHECK_EQ(v, 99);
    size_hints_forget(h, "/a", 2);
    CHECK_EQ(size_hints_get(h, "/a", 2, &v), 0);
    /* Bounded: 1000 paths in 16 buckets keep at most 16, and the newest of each bucket. */
    char p[32];
    unsigned kept = 0;
    for (unsigned i = 0; i < 1000; i++) {
        int n = snprintf(p, sizeof p, "/f%u", i);
        size_hints_put(h, p, (size_t)n, i);
    }
    for (unsigned i = 0; i < 1000; i++) {
        int n = snprintf(p, sizeof p, "/f%u", i);
        if (size_hints_get(h, p, (size_t)n, &v)) {
            CHECK_EQ(v, i);
            kept++;
        }
    }
    CHECK(kept >= 1 && kept <= 16);
    int n = snprintf(p, sizeof p, "/f%u", 999u);
    CHECK_EQ(size_hints_get(h, p, (size_t)n, &v), 1); /* the last put is always there */
    size_hints_free(h);
}

/* take_class: the smallest free class that fits, then larger ones; never a smaller one. */
static void test_pool_take_class(void)
{
    struct seg_classes cl;
    struct seg_pool *p = NULL;
    struct seg_pool_item *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL;
    const char *why;

    CHECK_EQ(seg_classes_parse("4K:2,64K:1", &cl, &why), 0);
    CHECK_EQ(seg_pool_new_classes(&p, &cl), 0);
    if (p == NULL)
        return;
    CHECK_EQ(seg_pool_size(p), 3);
    CHECK_EQ(seg_pool_take_class(p, 0, 0, NULL, NULL, &a), 0);
    CHECK_EQ(seg_pool_class(a), 0);
    CHECK_EQ(a->seg.size, 4096);
    CHECK_EQ(seg_pool_index(a), 0);
    CHECK_EQ(seg_pool_take_class(p, 1, 0, NULL, NULL, &b), 0);
    CHECK_EQ(seg_pool_class(b), 1);
    CHECK_EQ(b->seg.size, 65536);
    CHECK_EQ(seg_pool_index(b), 2);
    CHECK_EQ(seg_pool_take_class(p, 0, 0, NULL, NULL, &c), 0);
    CHECK_EQ(seg_pool_class(c), 0);
    /* Class 0 empty: a small transfer takes the next larger free one. */
    seg_pool_give(p, b, 0);
    CHECK_EQ(seg_pool_take_class(p, 0, 0, NULL, NULL, &d), 0);
    CHECK(d == b);
    /* A large transfer never gets a small segment: it waits, and times out. */
    seg_pool_give(p, a, 0);
    CHECK_EQ(seg_pool_take_class(p, 1, 100, NULL, NULL, &e), -ETIMEDOUT);
    CHECK_EQ(seg_pool_take_class(p, 7, 100, NULL, NULL, &e), -ETIMEDOUT); /* clamped to 1 */
    CHECK_EQ(seg_pool_take(p, 0, NULL, NULL, &e), 0);                     /* class 0 or larger: a */
    CHECK(e == a);
    seg_pool_give(p, c, 0);
    seg_pool_give(p, d, 0);
    seg_pool_give(p, e, 0);
    seg_pool_free(p);
}

struct taker {
    struct seg_pool *p;
    unsigned cls;
    int rc;
    struct seg_pool_item *it;
};

static void *take_thread(void *arg)
{
    struct taker *t = arg;

    t->rc = seg_pool_take_class(t->p, t->cls, 10000, NULL, NULL, &t->it);
    return NULL;
}

static int wait_waiters(struct seg_pool *p, unsigned n)
{
    for (int i = 0; i < 400; i++) {
        if (seg_pool_waiters(p) == n)
            return 1;
        clock_sleep_ms(5);
    }
    return 0;
}

/* A given-back small segment skips an older waiter that needs a large one. */
static void test_pool_waiter_by_class(void)
{
    struct seg_classes cl;
    struct seg_pool *p = NULL;
    struct seg_pool_item *small = NULL, *large = NULL;
    const char *why;
    struct taker big, little;
    pthread_t tb, tl;

    CHECK_EQ(seg_classes_parse("4K:1,64K:1", &cl, &why), 0);
    CHECK_EQ(seg_pool_new_classes(&p, &cl), 0);
    if (p == NULL)
        return;
    CHECK_EQ(seg_pool_take_class(p, 0, 0, NULL, NULL, &small), 0);
    CHECK_EQ(seg_pool_take_class(p, 0, 0, NULL, NULL, &large), 0);
    CHECK_EQ(seg_pool_class(large), 1);
    big = (struct taker){p, 1, -1, NULL};
    little = (struct taker){p, 0, -1, NULL};
    pthread_create(&tb, NULL, take_thread, &big);
    CHECK(wait_waiters(p, 1));
    pthread_create(&tl, NULL, take_thread, &little);
    CHECK(wait_waiters(p, 2));
    seg_pool_give(p, small, 0); /* too small for the older waiter: the younger gets it */
    pthread_join(tl, NULL);
    CHECK_EQ(little.rc, 0);
    CHECK(little.it == small);
    CHECK_EQ(seg_pool_waiters(p), 1);
    seg_pool_give(p, large, 0);
    pthread_join(tb, NULL);
    CHECK_EQ(big.rc, 0);
    CHECK(big.it == large);
    seg_pool_give(p, little.it, 0);
    seg_pool_give(p, big.it, 1); /* replaced at its class's size */
    CHECK_EQ(seg_pool_take_class(p, 1, 0, NULL, NULL, &large), 0);
    CHECK_EQ(large->seg.size, 65536);
    seg_pool_give(p, large, 0);
    seg_pool_free(p);
}

/* Every slot of the stats object shows its segment's size; the reader sees it. */
static void test_stats_slot_sizes(void)
{
    struct seg_classes cl;
    struct seg_pool *p = NULL;
    struct stats_region *r = NULL, *rd = NULL;
    struct stats_slot sl;
    const char *why;

    CHECK_EQ(seg_classes_parse("4K:2,64K:1", &cl, &why), 0);
    CHECK_EQ(stats_create(&r, STATS_ROLE_PROXY, 3, NULL), 0);
    CHECK_EQ(seg_pool_new_classes(&p, &cl), 0);
    if (p == NULL || r == NULL)
        goto out;
    seg_pool_set_stats(p, r);
    CHECK_EQ(stats_attach(&rd, getpid()), 0);
    if (rd == NULL)
        goto out;
    static const uint64_t want[3] = {4096, 4096, 65536};
    for (unsigned i = 0; i < 3; i++) {
        CHECK_EQ(stats_slot_read(rd, i, &sl), 0);
        CHECK_EQ(sl.seg_size, want[i]);
    }
    stats_slot_begin(r, 2, 0, 3, "/x", 2); /* a transfer keeps the size */
    stats_slot_end(r, 2, STATS_SLOT_FREE);
    CHECK_EQ(stats_slot_read(rd, 2, &sl), 0);
    CHECK_EQ(sl.seg_size, 65536);
out:
    stats_close(rd);
    seg_pool_free(p);
    stats_close(r);
}

TEST_MAIN(T(test_size_parse), T(test_classes_parse), T(test_pick), T(test_size_hints),
          T(test_pool_take_class), T(test_pool_waiter_by_class), T(test_stats_slot_sizes))
