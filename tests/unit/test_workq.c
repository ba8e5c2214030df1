/* test_workq.c - unit tests of the bounded boss-worker queue: order, bounds, close, stress. */
/* SPDX-License-Identifier: MIT */
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/workq.h"

#define ITEM(v) ((void *)(uintptr_t)(v))

static void test_fifo_order(void)
{
    struct workq q;
    void *out = NULL;

    CHECK_EQ(workq_init(&q, 0), -EINVAL);
    CHECK_EQ(workq_init(&q, 4), 0);
    CHECK_EQ(workq_trypop(&q, &out), -EAGAIN);
    /* Wrap around the ring a few times. */
    for (uintptr_t round = 0; round < 3; round++) {
        for (uintptr_t i = 1; i <= 4; i++)
            CHECK_EQ(workq_push(&q, ITEM(round * 10 + i), 0), 0);
        CHECK_EQ(workq_push(&q, ITEM(99), 0), -ETIMEDOUT);
        for (uintptr_t i = 1; i <= 3; i++) {
            CHECK_EQ(workq_pop(&q, &out, 0), 0);
            CHECK_EQ((uintptr_t)out, round * 10 + i);
        }
        CHECK_EQ(workq_trypop(&q, &out), 0);
        CHECK_EQ((uintptr_t)out, round * 10 + 4);
    }
    CHECK_EQ(workq_pop(&q, &out, 0), -ETIMEDOUT);
    workq_release(&q);
}

static void test_timeouts(void)
{
    struct workq q;
    void *out;
    int64_t t0;

    CHECK_EQ(workq_init(&q, 1), 0);
    t0 = clock_mono_ms();
    CHECK_EQ(workq_pop(&q, &out, 50), -ETIMEDOUT);
    CHECK(clock_mono_ms() - t0 >= 45); /* waited, did not return at once */
    CHECK_EQ(workq_push(&q, ITEM(1), 0), 0);
    t0 = clock_mono_ms();
    CHECK_EQ(workq_push(&q, ITEM(2), 50), -ETIMEDOUT);
    CHECK(clock_mono_ms() - t0 >= 45);
    CHECK_EQ(workq_pop(&q, &out, 0), 0);
    CHECK_EQ((uintptr_t)out, 1);
    workq_release(&q);
}

struct pusher {
    struct workq *q;
    void *item;
    int timeout_ms;
    atomic_int done;
    int rc;
};

static void *push_thread(void *p)
{
    struct pusher *a = p;

    a->rc = workq_push(a->q, a->item, a->timeout_ms);
    atomic_store(&a->done, 1);
    return NULL;
}

static int is_done(atomic_int *flag, int timeout_ms)
{
    int64_t end = clock_mono_ms() + timeout_ms;

    while (!atomic_load(flag) && clock_mono_ms() < end)
        clock_sleep_ms(1);
    return atomic_load(flag);
}

/* A push into a full queue waits for room, and goes in after what was already there. */
static void test_push_blocks_until_room(void)
{
    struct workq q;
    struct pusher a = {.q = &q, .item = ITEM(2), .timeout_ms = -1};
    pthread_t t;
    void *out;

    CHECK_EQ(workq_init(&q, 1), 0);
    CHECK_EQ(workq_push(&q, ITEM(1), 0), 0);
    CHECK_EQ(pthread_create(&t, NULL, push_thread, &a), 0);
    CHECK(!is_done(&a.done, 50)); /* still waiting: the queue is full */
    CHECK_EQ(workq_pop(&q, &out, 0), 0);
    CHECK_EQ((uintptr_t)out, 1);
    CHECK(is_done(&a.done, 10000));
    pthread_join(t, NULL);
    CHECK_EQ(a.rc, 0);
    CHECK_EQ(workq_pop(&q, &out, 0), 0);
    CHECK_EQ((uintptr_t)out, 2);
    workq_release(&q);
}

struct popper {
    struct workq *q;
    atomic_int done;
    int rc;
    void *out;
};

static void *pop_thread(void *p)
{
    struct popper *a = p;

    a->rc = workq_pop(a->q, &a->out, -1);
    atomic_store(&a->done, 1);
    return NULL;
}

/* workq_close wakes every waiter, refuses pushes, and still hands out queued items. */
static void test_close_wakes_waiters(void)
{
    struct workq empty, full;
    struct popper pops[3];
    struct pusher push = {.q = &full, .item = ITEM(7), .timeout_ms = -1};
    pthread_t tp[3], tpush;
    void *out;

    CHECK_EQ(workq_init(&empty, 2), 0);
    CHECK_EQ(workq_init(&full, 1), 0);
    CHECK_EQ(workq_push(&full, ITEM(5), 0), 0);
    for (int i = 0; i < 3; i++) {
        pops[i] = (struct popper){.q = &empty};
        CHECK_EQ(pthread_create(&tp[i], NULL, pop_thread, &pops[i]), 0);
    }
    CHECK_EQ(pthread_create(&tpush, NULL, push_thread, &push), 0);
    CHECK(!is_done(&push.done, 50));
    workq_close(&empty);
    workq_close(&full);
    for (int i = 0; i < 3; i++) {
        CHECK(is_done(&pops[i].done, 10000));
        pthread_join(tp[i], NULL);
        CHECK_EQ(pops[i].rc, -EPIPE);
    }
    CHECK(is_done(&push.done, 10000));
    pthread_join(tpush, NULL);
    CHECK_EQ(push.rc, -EPIPE);
    /* The item queued before the close is still there; then the queue reports closed. */
    CHECK_EQ(workq_push(&full, ITEM(8), 0), -EPIPE);
    CHECK_EQ(workq_pop(&full, &out, -1), 0);
    CHECK_EQ((uintptr_t)out, 5);
    CHECK_EQ(workq_pop(&full, &out, -1), -EPIPE);
    CHECK_EQ(workq_trypop(&full, &out), -EAGAIN);
    workq_release(&empty);
    workq_release(&full);
}

#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PROD  40000

struct stress {
    struct workq q;
    atomic_uint_fast64_t sum;
    atomic_uint_fast64_t count;
    atomic_int order_errors;
};

struct prod_arg {
    struct stress *st;
    unsigned id;
};

static void *producer(void *p)
{
    struct prod_arg *a = p;

    for (uint64_t seq = 1; seq <= PER_PROD; seq++) {
        uintptr_t v = ((uintptr_t)a->id << 24) | (uintptr_t)seq;
        if (workq_push(&a->st->q, ITEM(v), -1) != 0)
            atomic_fetch_add(&a->st->order_errors, 1);
    }
    return NULL;
}

static void *consumer(void *p)
{
    struct stress *st = p;
    uint64_t last[PRODUCERS] = {0};
    void *item;

    while (workq_pop(&st->q, &item, -1) == 0) {
        uintptr_t v = (uintptr_t)item;
        unsigned id = (unsigned)(v >> 24);
        uint64_t seq = v & 0xffffff;
        /* FIFO: what one consumer sees of one producer comes in increasing order. */
        if (id >= PRODUCERS || seq <= last[id])
            atomic_fetch_add(&st->order_errors, 1);
        else
            last[id] = seq;
        atomic_fetch_add(&st->sum, (uint64_t)v);
        atomic_fetch_add(&st->count, 1);
    }
    return NULL;
}

static void test_stress_checksums(void)
{
    static struct stress st;
    struct prod_arg pa[PRODUCERS];
    pthread_t tp[PRODUCERS], tc[CONSUMERS];
    uint64_t want = 0;

    CHECK_EQ(workq_init(&st.q, 8), 0);
    for (int i = 0; i < CONSUMERS; i++)
        CHECK_EQ(pthread_create(&tc[i], NULL, consumer, &st), 0);
    for (unsigned i = 0; i < PRODUCERS; i++) {
        pa[i] = (struct prod_arg){.st = &st, .id = i};
        CHECK_EQ(pthread_create(&tp[i], NULL, producer, &pa[i]), 0);
        for (uint64_t seq = 1; seq <= PER_PROD; seq++)
            want += ((uint64_t)i << 24) | seq;
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(tp[i], NULL);
    workq_close(&st.q); /* consumers drain what is left, then see -EPIPE */
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(tc[i], NULL);
    CHECK_EQ(atomic_load(&st.count), PRODUCERS * PER_PROD);
    CHECK(atomic_load(&st.sum) == want);
    CHECK_EQ(atomic_load(&st.order_errors), 0);
    workq_release(&st.q);
}

TEST_MAIN(T(test_fifo_order), T(test_timeouts), T(test_push_blocks_until_room),
          T(test_close_wakes_waiters), T(test_stress_checksums))
