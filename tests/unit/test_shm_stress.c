/* test_shm_stress.c - both ends of the chunk ring as threads of one process (so TSan sees the
 * handshake): many random-size transfers through several segment sizes, content checked
 * byte for byte, random misses, random cancels followed by segment replacement. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "ipc/shm_chan.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "clock.h"
#include "ipc/peer.h"
#include "ipc_testutil.h"
#include "test.h"

#define PATTERN_LEN (3u << 20)
#define FILE_MAX    ((1u << 20) + 100)

static unsigned char *pattern;
static int self_pidfd = -1;

static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* One proxy worker (consumer, the pair's thread) and one cache worker (producer). */
struct pair {
    uint64_t seg_size;
    uint32_t serial_base;
    int64_t end_ms;
    /* The mailbox, guarded by lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int have_request, done, quit;
    struct shm_seg req_seg; /* the consumer's mapping: shared, so TSan sees both ends */
    uint64_t req_gen, req_len, req_off;
    int req_not_found;
    int prod_rc;
    /* Results, read after join. */
    unsigned transfers, misses, cancels, failures;
    uint64_t bytes;
    int64_t busy_ns;
};

static void *producer(void *p)
{
    struct pair *pr = p;

    for (;;) {
        struct shm_seg seg;
        uint64_t gen, len, off = 0;
        const unsigned char *data;
        int rc = 0, not_found;

        pthread_mutex_lock(&pr->lock);
        while (!pr->have_request && !pr->quit)
            pthread_cond_wait(&pr->cond, &pr->lock);
        if (pr->quit) {
            pthread_mutex_unlock(&pr->lock);
            return NULL;
        }
        pr->have_request = 0;
        seg = pr->req_seg;
        gen = pr->req_gen;
        len = pr->req_len;
        data = pattern + pr->req_off;
        not_found = pr->req_not_found;
        pthread_mutex_unlock(&pr->lock);

        /* As after shm_seg_attach: own position, never unlinks. */
        seg.seq = 0;
        seg.name[0] = '\0';
        do {
            unsigned char *payload;
            uint32_t n;

            rc = shm_seg_reserve(&seg, self_pidfd, 5000, NULL, &payload);
            if (rc < 0)
                break;
            if (not_found) {
                shm_seg_publish(&seg, gen, SHM_SLOT_RESPONSE, SHM_STATUS_NOT_FOUND, 0, 0);
                break;
            }
            n = len - off < seg.slot_cap ? (uint32_t)(len - off) : seg.slot_cap;
            memcpy(payload, data + off, n);
            shm_seg_publish(&seg, gen, seg.seq == 0 ? SHM_SLOT_RESPONSE : SHM_SLOT_DATA,
                            SHM_STATUS_OK, seg.seq == 0 ? len : 0, n);
            off += n;
        } while (off < len);

        pthread_mutex_lock(&pr->lock);
        pr->prod_rc = rc;
        pr->done = 1;
        pthread_cond_broadcast(&pr->cond);
        pthread_mutex_unlock(&pr->lock);
    }
}

/* Waits for the producer to finish the current request; returns its result. */
static int wait_producer(struct pair *pr)
{
    int rc;

    pthread_mutex_lock(&pr->lock);
    while (!pr->done)
        pthread_cond_wait(&pr->cond, &pr->lock);
    pr->done = 0;
    rc = pr->prod_rc;
    pthread_mutex_unlock(&pr->lock);
    return rc;
}

static uint64_t random_len(uint64_t *x, uint32_t cap, uint32_t k)
{
    switch (rnd(x) % 6) {
    case 0:
        return rnd(x) % 3; /* 0, 1, 2 */
    case 1:
        return (uint64_t)cap + rnd(x) % 3 - 1; /* around one slot */
    case 2:
        return (uint64_t)cap * k + rnd(x) % 3 - 1; /* around the whole ring */
    case 3:
        return rnd(x) % FILE_MAX;
    default:
        return rnd(x) % (4 * (uint64_t)cap * k + 1);
    }
}

/* The proxy worker: one request after another, through one segment that is replaced whenever
 * a transfer is abandoned. */
static void *consumer(void *p)
{
    struct pair *pr = p;
    uint64_t x = 0x2545f4914f6cdd1du ^ pr->seg_size, gen = 0;
    uint32_t serial = pr->serial_base;
    struct shm_seg seg;
    pthread_t th;

    if (shm_seg_create(&seg, serial, pr->seg_size) != 0 ||
        pthread_create(&th, NULL, producer, pr) != 0) {
        pr->failures++;
        return NULL;
    }
    /* At least the time asked for, and enough requests and cancels however slow the run
     * (valgrind serialises threads), within a hard limit. */
    while (pr->failures == 0 && clock_mono_ms() < pr->end_ms + 60000 &&
           (clock_mono_ms() < pr->end_ms || pr->transfers < 30 || pr->cancels < 3)) {
        uint64_t len = random_len(&x, seg.slot_cap, seg.nslots) % FILE_MAX;
        uint64_t off = rnd(&x) % (PATTERN_LEN - FILE_MAX), got = 0, left = UINT64_MAX;
        int not_found = rnd(&x) % 16 == 0;
        /* Abandon after this many chunks (never, most of the time). */
        uint64_t cancel_at = rnd(&x) % 8 == 0 ? rnd(&x) % 6 : UINT64_MAX, chunks = 0;
        int64_t t0 = clock_mono_ns();
        int rc = 0, cancelled = 0;

        gen++;
        shm_seg_begin(&seg, gen);
        pthread_mutex_lock(&pr->lock);
        pr->req_seg = seg;
        pr->req_gen = gen;
        pr->req_len = len;
        pr->req_off = off;
        pr->req_not_found = not_found;
        pr->have_request = 1;
        pthread_cond_broadcast(&pr->cond);
        pthread_mutex_unlock(&pr->lock);

        while (left > 0) {
            struct shm_chunk ch;

            if (chunks == cancel_at) {
                shm_seg_cancel(&seg);
                cancelled = 1;
                break;
            }
            rc = shm_seg_next(&seg, gen, left, self_pidfd, 5000, NULL, &ch);
            if (rc < 0)
                break;
            if (chunks == 0) {
                if (not_found ? ch.status != SHM_STATUS_NOT_FOUND || ch.file_len != 0
                              : ch.status != SHM_STATUS_OK || ch.file_len != len) {
                    rc = -EPROTO;
                    break;
                }
                left = ch.file_len;
            }
            if (memcmp(ch.data, pattern + off + got, ch.len) != 0) {
                rc = -EILSEQ;
                break;
            }
            got += ch.len;
            left -= ch.len;
            chunks++;
            if (rnd(&x) % 64 == 0)
                sched_yield(); /* let the producer fill the ring and block */
            shm_seg_release(&seg);
        }
        if (rc < 0) {
            fprintf(stderr, "segment %llu: transfer of %llu bytes failed: %d\n",
                    (unsigned long long)pr->seg_size, (unsigned long long)len, rc);
            pr->failures++;
            shm_seg_cancel(&seg);
        }
        /* In this test the producer shares our mapping: wait before unmapping it. */
        rc = wait_producer(pr);
        if (cancelled || pr->failures) {
            /* The real proxy does not wait; it replaces the segment at once. */
            if (rc != -ECANCELED && rc != 0) {
                fprintf(stderr, "producer after cancel: %d\n", rc);
                pr->failures++;
            }
            pr->cancels++;
            shm_seg_destroy(&seg);
            if (shm_seg_create(&seg, ++serial, pr->seg_size) != 0) {
                pr->failures++;
                break;
            }
            continue;
        }
        if (rc != 0 || !shm_seg_is_idle(&seg)) {
            fprintf(stderr, "segment %llu: producer %d, idle %d\n",
                    (unsigned long long)pr->seg_size, rc, shm_seg_is_idle(&seg));
            pr->failures++;
        }
        pr->transfers++;
        pr->misses += (unsigned)not_found;
        pr->bytes += got;
        pr->busy_ns += clock_mono_ns() - t0;
    }
    pthread_mutex_lock(&pr->lock);
    pr->quit = 1;
    pthread_cond_broadcast(&pr->cond);
    pthread_mutex_unlock(&pr->lock);
    pthread_join(th, NULL);
    shm_seg_destroy(&seg);
    return NULL;
}

static void test_stress(void)
{
    static const uint64_t sizes[] = {512, 4096, 65536, 1 << 20};
    enum { NPAIRS = sizeof sizes / sizeof sizes[0] };
    static struct pair pairs[NPAIRS];
    pthread_t th[NPAIRS];
    const char *env = getenv("GF_STRESS_MS");
    int ms = env ? atoi(env) : 3000;
    int64_t end = clock_mono_ms() + (ms > 0 ? ms : 3000);

    for (int i = 0; i < NPAIRS; i++) {
        pairs[i] = (struct pair){
            .seg_size = sizes[i], .serial_base = 1000000u * (unsigned)i, .end_ms = end};
        pthread_mutex_init(&pairs[i].lock, NULL);
        pthread_cond_init(&pairs[i].cond, NULL);
        CHECK_EQ(pthread_create(&th[i], NULL, consumer, &pairs[i]), 0);
    }
    for (int i = 0; i < NPAIRS; i++) {
        struct pair *pr = &pairs[i];

        pthread_join(th[i], NULL);
        CHECK_EQ(pr->failures, 0);
        CHECK(pr->transfers >= 30);
        CHECK(pr->cancels >= 3);
        printf("segment %7llu: %5u transfers (%u misses), %4u cancels, %.1f MB in %.2f s "
               "busy (%.0f MB/s; 4 pairs share 2 cores)\n",
               (unsigned long long)pr->seg_size, pr->transfers, pr->misses, pr->cancels,
               (double)pr->bytes / 1e6, (double)pr->busy_ns / 1e9,
               pr->busy_ns ? (double)pr->bytes / 1e6 / ((double)pr->busy_ns / 1e9) : 0.0);
        pthread_mutex_destroy(&pr->lock);
        pthread_cond_destroy(&pr->cond);
    }
    CHECK_EQ(ipc_test_objects_of(getpid()), 0);
}

int main(void)
{
    static const struct test_case cases[] = {T(test_stress)};
    uint64_t x = 88172645463325252u;
    int rc;

    pattern = malloc(PATTERN_LEN);
    for (size_t i = 0; i < PATTERN_LEN; i++)
        pattern[i] = (unsigned char)rnd(&x);
    self_pidfd = peer_open(getpid());
    rc = test_run_all(cases, sizeof cases / sizeof cases[0]);
    close(self_pidfd);
    free(pattern);
    return rc;
}
