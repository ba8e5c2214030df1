/* test_seg_pool.c - unit tests of the proxy's segment pool: FIFO hand-off, bounded waits,
 * cancellation, replacement of failed segments and a threaded stress run (also under TSan). */
/* SPDX-License-Identifier: MIT */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/clock.h"
#include "proxy/seg_pool.h"
#include "proxy/seg_pool_testing.h"

#define SEGSZ 4096u

/* Is the shm object name there? */
static int shm_exists(const char *name)
{
    int fd = shm_open(name, O_RDONLY, 0);

    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

static int create_calls, create_fail_from; /* set before threads start or under no race */

/* Fails every creation from call number create_fail_from on (0: never). */
static int create_counting(struct shm_seg *seg, uint32_t serial, uint64_t size)
{
    int n = __atomic_add_fetch(&create_calls, 1, __ATOMIC_RELAXED);

    if (create_fail_from && n >= create_fail_from)
        return -ENOSPC;
    return shm_seg_create(seg, serial, size);
}

static void test_take_all_then_timeout(void)
{
    struct seg_pool *p = NULL;
    struct seg_pool_item *it[3], *extra = NULL;

    CHECK_EQ(seg_pool_new(&p, 3, SEGSZ), 0);
    if (p == NULL)
        return;
    CHECK_EQ(seg_pool_size(p), 3);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(seg_pool_take(p, 0, NULL, NULL, &it[i]), 0);
        CHECK(shm_exists(it[i]->seg.name));
        CHECK(it[i]->seg.size >= SEGSZ);
    }
    CHECK(it[0] != it[1] && it[1] != it[2] && it[0] != it[2]);
    int64_t t0 = clock_mono_ms();
    CHECK_EQ(seg_pool_take(p, 200, NULL, NULL, &extra), -ETIMEDOUT);
    int64_t waited = clock_mono_ms() - t0;
    CHECK(waited >= 190 && waited < 2000);
    CHECK_EQ(seg_pool_waiters(p), 0);
    char name0[IPC_NAME_MAX];
    memcpy(name0, it[0]->seg.name, sizeof name0);
    for (int i = 0; i < 3; i++)
        seg_pool_give(p, it[i], 0);
    CHECK_EQ(seg_pool_take(p, 0, NULL, NULL, &extra), 0);
    seg_pool_give(p, extra, 0);
    seg_pool_free(p);
    CHECK(!shm_exists(name0)); /* free unlinks every segment */
}

static void test_bad_arguments(void)
{
    struct seg_pool *p = NULL;

    CHECK_EQ(seg_pool_new(&p, 0, SEGSZ), -EINVAL);
    CHECK_EQ(seg_pool_new(&p, SEG_POOL_MAX + 1, SEGSZ), -EINVAL);
    CHECK_EQ(seg_pool_new(&p, 1, SHM_SEG_MIN - 1), -EINVAL);
    CHECK_EQ(seg_pool_new(&p, 1, (uint64_t)SHM_SEG_MAX + 1), -EINVAL);
}

/* A failure while creating the pool leaves nothing behind. */
static void test_new_fails_cleanly(void)
{
    struct seg_pool *p = NULL;

    create_calls = 0;
    create_fail_from = 3;
    CHECK_EQ(seg_pool_new_with(&p, 4, SEGSZ, create_counting), -ENOSPC);
    create_fail_from = 0;
    CHECK(p == NULL);
    /* The two that were created (serials 1 and 2) are gone. */
    char name[IPC_NAME_MAX];
    for (uint32_t s = 1; s <= 2; s++) {
        CHECK_EQ(ipc_name_format(name, IPC_KIND_SEGMENT, geteuid(), getpid(), s), 0);
        CHECK(!shm_exists(name));
    }
}

struct taker {
    struct seg_pool *p;
    int timeout_ms;
    int rc;
    int order; /* position at which this thread got its segment */
    struct seg_pool_item *it;
    int *counter;
    pthread_mutex_t *lock;
};

static void *take_thread(void *arg)
{
    struct taker *t = arg;

    t->rc = seg_pool_take(t->p, t->timeout_ms, NULL, NULL, &t->it);
    pthread_mutex_lock(t->lock);
    t->order = (*t->counter)++;
    pthread_mutex_unlock(t->lock);
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

/* Waiters are served in arrival order, each by its own hand-off. */
static void test_fifo_order(void)
{
    enum { N = 4 };
    struct seg_pool *p = NULL;
    struct seg_pool_item *held;
    struct taker t[N];
    pthread_t th[N];
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    int counter = 0;

    CHECK_EQ(seg_pool_new(&p, 1, SEGSZ), 0);
    if (p == NULL)
        return;
    CHECK_EQ(seg_pool_take(p, 0, NULL, NULL, &held), 0);
    for (int i = 0; i < N; i++) {
        t[i] = (struct taker){p, 10000, -1, -1, NULL, &counter, &lock};
        pthread_create(&th[i], NULL, take_thread, &t[i]);
        CHECK(wait_waiters(p, (unsigned)i + 1)); /* arrival order is i */
    }
    for (int i = 0; i < N; i++) {
        seg_pool_give(p, held, 0);
        pthread_join(th[i], NULL); /* waiter i, and only it, gets the segment */
        CHECK_EQ(t[i].rc, 0);
        CHECK_EQ(t[i].order, i);
        CHECK(t[i].it == held);
        held = t[i].it;
    }
    CHECK_EQ(seg_pool_waiters(p), 0);
    seg_pool_give(p, held, 0);
    seg_pool_free(p);
}

/* A waiter that timed out leaves the queue: the next give goes to the one behind it. */
static void test_timed_out_waiter_skipped(void)
{
    struct seg_pool *p = NULL;
    struct seg_pool_item *held;
    struct taker a, b;
    pthread_t ta, tb;
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    int counter = 0;

    CHECK_EQ(seg_pool_new(&p, 1, SEGSZ), 0);
    if (p == NULL)
        return;
    CHECK_EQ(seg_pool_take(p, 0, NULL, NULL, &held), 0);
    a = (struct taker){p, 150, -1, -1, NULL, &counter, &lock};
    b = (struct taker){p, 10000, -1, -1, NULL, &counter, &lock};
    pthread_create(&ta, NULL, take_thread, &a);
    CHECK(wait_waiters(p, 1));
    pthread_create(&tb, NULL, take_thread, &b);
    CHECK(wait_waiters(p, 2));
    pthread_join(ta, NULL);
    CHECK_EQ(a.rc, -ETIMEDOUT);
    CHECK_EQ(seg_pool_waiters(p), 1);
    seg_pool_give(p, held, 0);
    pthread_join(tb, NULL);
    CHECK_EQ(b.rc, 0);
    CHECK(b.it == held);
    seg_pool_give(p, b.it, 0);
    seg_pool_free(p);
}

static int cancel_after(void *arg)
{
    return clock_mono_ms() >= *(int64_t *)arg;
}

/* The cancel function ends a long wait within about a slice. */
static void test_cancel(void)
{
    struct seg_pool *p = NULL;
    struct seg_pool_item *held, *other = NULL;

    CHECK_EQ(seg_pool_new(&p, 1, SEGSZ), 0);
    if (p == NULL)
        return;
    CHECK_EQ(seg_pool_take(p, 0, NULL, NULL, &held), 0);
    int64_t t0 = clock_mono_ms(), at = t0 + 150;
    CHECK_EQ(seg_pool_take(p, 20000, cancel_after, &at, &other), -ECANCELED);
    int64_t waited = clock_mono_ms() - t0;
    CHECK(waited >= 140 && waited < 2000);
    CHECK_EQ(seg_pool_waiters(p), 0);
    seg_pool_give(p, held, 0);
    seg_pool_free(p);
}

/* A replaced segment gets a new name, the old object is gone, the generation carries on. */
static void test_replace(void)
{
    struct seg_pool *p = NULL;
    struct seg_pool_item *it, *again;
    char old[IPC_NAME_MAX];

    CHECK_EQ(seg_pool_new(&p, 2, SEGSZ), 0);
    if (p == NULL)
        return;
    CHECK_EQ(seg_pool_take(p, 0, NULL, NULL, &it), 0);
    it->generation = 41;
    memcpy(old, it->seg.name, sizeof old);
    seg_pool_give(p, it, 1);
    CHECK(!shm_exists(old));
    CHECK(strcmp(it->seg.name, old) != 0);
    CHECK(shm_exists(it->seg.name));
    CHECK_EQ(it->generation, 41);
    CHECK_EQ(seg_pool_size(p), 2);
    /* The new name carries the next serial after the initial ones (1, 2). */
    char want[IPC_NAME_MAX];
    CHECK_EQ(ipc_name_format(want, IPC_KIND_SEGMENT, geteuid(), getpid(), 3), 0);
    CHECK(strcmp(it->seg.name, want) == 0);
    CHECK_EQ(seg_pool_take(p, 0, NULL, NULL, &again), 0);
    CHECK(again == it);
    seg_pool_give(p, again, 0);
    seg_pool_free(p);
}

/* A failed replacement shrinks the pool; losing the last segment releases waiters; the pool
 * regrows once segments can be created again. */
static void test_replace_failure_regrows(void)
{
    struct seg_pool *p = NULL;
    struct seg_pool_item *a, *b;
    struct taker w;
    pthread_t tw;
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    int counter = 0;
    char name[IPC_NAME_MAX];

    create_calls = 0;
    create_fail_from = 0;
    CHECK_EQ(seg_pool_new_with(&p, 2, SEGSZ, create_counting), 0);
    if (p == NULL)
        return;
    create_fail_from = 3; /* every replacement fails */
    CHECK_EQ(seg_pool_take(p, 0, NULL, NULL, &a), 0);
    CHECK_EQ(seg_pool_take(p, 0, NULL, NULL, &b), 0);
    memcpy(name, a->seg.name, sizeof name);
    seg_pool_give(p, a, 1);
    CHECK(!shm_exists(name));
    CHECK_EQ(seg_pool_size(p), 1);
    w = (struct taker){p, 20000, -1, -1, NULL, &counter, &lock};
    pthread_create(&tw, NULL, take_thread, &w);
    CHECK(wait_waiters(p, 1));
    int64_t t0 = clock_mono_ms();
    seg_pool_give(p, b, 1); /* the last one: the waiter must not sit out its 20 s */
    pthread_join(tw, NULL);
    CHECK_EQ(w.rc, -ENOSPC);
    CHECK(clock_mono_ms() - t0 < 2000);
    CHECK_EQ(seg_pool_size(p), 0);
    CHECK_EQ(seg_pool_take(p, 1000, NULL, NULL, &a), -ENOSPC);

    /* Once creation works again, takes re-create the missing segments, one per backoff. */
    create_fail_from = 0;
    int rc = -1;
    t0 = clock_mono_ms();
    while (rc != 0 && clock_mono_ms() - t0 < 5000) {
        rc = seg_pool_take(p, 100, NULL, NULL, &a);
        if (rc != 0)
            clock_sleep_ms(20);
    }
    CHECK_EQ(rc, 0);
    CHECK_EQ(seg_pool_size(p), 1);
    if (rc == 0) {
        CHECK(shm_exists(a->seg.name));
        /* A waiter for the second segment gets it when it is re-created after the backoff. */
        CHECK_EQ(seg_pool_take(p, 5000, NULL, NULL, &b), 0);
        CHECK_EQ(seg_pool_size(p), 2);
        seg_pool_give(p, a, 0);
        seg_pool_give(p, b, 0);
    }
    seg_pool_free(p);
}

struct stress {
    struct seg_pool *p;
    int holders[8]; /* per item index: threads holding it now (must stay <= 1) */
    int violations;
    int takes;
    unsigned seed;
};

static void *stress_thread(void *arg)
{
    struct stress *s = arg;
    unsigned seed = __atomic_add_fetch(&s->seed, 7919, __ATOMIC_RELAXED);

    for (int i = 0; i < 300; i++) {
        struct seg_pool_item *it;
        int rc = seg_pool_take(s->p, 10000, NULL, NULL, &it);
        if (rc != 0) {
            __atomic_add_fetch(&s->violations, 1, __ATOMIC_RELAXED);
            continue;
        }
        __atomic_add_fetch(&s->takes, 1, __ATOMIC_RELAXED);
        if (__atomic_add_fetch(&s->holders[it->index_], 1, __ATOMIC_ACQ_REL) != 1)
            __atomic_add_fetch(&s->violations, 1, __ATOMIC_RELAXED);
        it->generation++; /* plain access: TSan flags it if two threads hold the item */
        seed = seed * 1103515245u + 12345u;
        __atomic_sub_fetch(&s->holders[it->index_], 1, __ATOMIC_ACQ_REL);
        seg_pool_give(s->p, it, (seed >> 16) % 5 == 0);
    }
    return NULL;
}

/* Many threads over few segments, with random replacements: nobody shares a segment, nothing
 * is lost, every wait ends. */
static void test_stress(void)
{
    enum { THREADS = 8 };
    struct stress s;
    pthread_t th[THREADS];

    memset(&s, 0, sizeof s);
    CHECK_EQ(seg_pool_new(&s.p, 3, SEGSZ), 0);
    if (s.p == NULL)
        return;
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, stress_thread, &s);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ(s.violations, 0);
    CHECK_EQ(s.takes, THREADS * 300);
    CHECK_EQ(seg_pool_size(s.p), 3);
    CHECK_EQ(seg_pool_waiters(s.p), 0);
    seg_pool_free(s.p);
}

TEST_MAIN(T(test_bad_arguments), T(test_take_all_then_timeout), T(test_new_fails_cleanly),
          T(test_fifo_order), T(test_timed_out_waiter_skipped), T(test_cancel), T(test_replace),
          T(test_replace_failure_regrows), T(test_stress))
