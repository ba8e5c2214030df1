/* test_attach_cache.c - unit tests of simplecached's kept segment attachments: reuse, and never a
 * stale mapping (replaced segment, re-created name, changed header, dead owner), the LRU bound,
 * leases pinning entries, no descriptor leaks, and a threaded run (also under TSan). */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/attach_cache.h"
#include "ipc_testutil.h"

#define SEGSZ 8192u

static void test_reuse(void)
{
    struct attach_cache *c = NULL;
    struct attach_cache_stats st;
    struct attach_lease l;
    struct shm_seg seg;
    void *first;

    CHECK_EQ(attach_cache_new(&c, 8), 0);
    CHECK_EQ(shm_seg_create(&seg, 1, SEGSZ), 0);
    CHECK_EQ(attach_cache_get(c, seg.name, SEGSZ, getpid(), &l), 0);
    first = l.seg.hdr;
    CHECK(l.pidfd >= 0);
    CHECK_EQ(l.seg.slot_cap, seg.slot_cap);
    attach_cache_put(c, &l, 0);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(attach_cache_get(c, seg.name, SEGSZ, getpid(), &l), 0);
        CHECK(l.seg.hdr == first); /* the same mapping */
        CHECK_EQ(l.seg.seq, 0);
        l.seg.seq = 5; /* a lease's position is its own */
        attach_cache_put(c, &l, 0);
    }
    attach_cache_stats(c, &st);
    CHECK_EQ(st.attaches, 1);
    CHECK_EQ(st.reuses, 10);
    CHECK_EQ(st.evictions, 0);
    CHECK_EQ(attach_cache_sweep(c), 0); /* alive and unchanged: kept */
    CHECK_EQ(attach_cache_size(c), 1);
    /* A claim larger than the object is refused, as by shm_seg_attach. */
    CHECK_EQ(attach_cache_get(c, seg.name, 2 * SEGSZ, getpid(), &l), -EBADMSG);
    shm_seg_destroy(&seg);
    attach_cache_free(c);
}

/* Writes marker into slot 0's payload through the proxy's mapping. */
static void mark(struct shm_seg *seg, unsigned char marker)
{
    ((unsigned char *)seg->hdr)[SHM_HDR_SPACE + SHM_SLOT_HDR_SPACE] = marker;
}

static unsigned char marker_seen(const struct attach_lease *l)
{
    return ((const unsigned char *)l->seg.hdr)[SHM_HDR_SPACE + SHM_SLOT_HDR_SPACE];
}

static void test_recreated_same_name(void)
{
    struct attach_cache *c = NULL;
    struct attach_cache_stats st;
    struct attach_lease l;
    struct shm_seg seg;

    CHECK_EQ(attach_cache_new(&c, 8), 0);
    CHECK_EQ(shm_seg_create(&seg, 7, SEGSZ), 0);
    mark(&seg, 0xA1);
    CHECK_EQ(attach_cache_get(c, seg.name, SEGSZ, getpid(), &l), 0);
    CHECK_EQ(marker_seen(&l), 0xA1);
    attach_cache_put(c, &l, 0);
    /* The owner unlinks it and creates a new object under the very same name (new inode). */
    shm_seg_destroy(&seg);
    CHECK_EQ(shm_seg_create(&seg, 7, SEGSZ), 0);
    mark(&seg, 0xB2);
    CHECK_EQ(attach_cache_get(c, seg.name, SEGSZ, getpid(), &l), 0);
    CHECK_EQ(marker_seen(&l), 0xB2); /* never the old mapping */
    attach_cache_put(c, &l, 0);
    attach_cache_stats(c, &st);
    CHECK_EQ(st.attaches, 2);
    CHECK_EQ(st.reuses, 0);
    CHECK_EQ(st.evictions, 1);
    CHECK_EQ(attach_cache_size(c), 1);
    /* Same size, other size: a re-created object of another size is re-attached too. */
    shm_seg_destroy(&seg);
    CHECK_EQ(shm_seg_create(&seg, 7, 2 * SEGSZ), 0);
    CHECK_EQ(attach_cache_get(c, seg.name, 2 * SEGSZ, getpid(), &l), 0);
    CHECK_EQ(l.seg.size, 2 * SEGSZ);
    attach_cache_put(c, &l, 0);
    shm_seg_destroy(&seg);
    attach_cache_free(c);
}

static void test_replaced_segment_swept(void)
{
    struct attach_cache *c = NULL;
    struct attach_cache_stats st;
    struct attach_lease l;
    struct shm_seg a, b;

    CHECK_EQ(attach_cache_new(&c, 8), 0);
    CHECK_EQ(shm_seg_create(&a, 1, SEGSZ), 0);
    CHECK_EQ(attach_cache_get(c, a.name, SEGSZ, getpid(), &l), 0);
    attach_cache_put(c, &l, 0);
    /* The proxy replaces it (new serial, new name); the old name is never asked for again. */
    shm_seg_destroy(&a);
    CHECK_EQ(shm_seg_create(&b, 2, SEGSZ), 0);
    CHECK_EQ(attach_cache_get(c, b.name, SEGSZ, getpid(), &l), 0);
    attach_cache_put(c, &l, 0);
    CHECK_EQ(attach_cache_size(c), 2);
    CHECK_EQ(attach_cache_sweep(c), 1); /* the unlinked one goes, and its memory with it */
    CHECK_EQ(attach_cache_size(c), 1);
    attach_cache_stats(c, &st);
    CHECK_EQ(st.attaches, 2);
    CHECK_EQ(st.evictions, 1);
    /* drop on put forgets an attachment at once (an abandoned transfer). */
    CHECK_EQ(attach_cache_get(c, b.name, SEGSZ, getpid(), &l), 0);
    attach_cache_put(c, &l, 1);
    CHECK_EQ(attach_cache_size(c), 0);
    shm_seg_destroy(&b);
    attach_cache_free(c);
}

static void test_header_changed(void)
{
    struct attach_cache *c = NULL;
    struct attach_lease l;
    struct shm_seg seg;

    CHECK_EQ(attach_cache_new(&c, 8), 0);
    CHECK_EQ(shm_seg_create(&seg, 3, SEGSZ), 0);
    CHECK_EQ(attach_cache_get(c, seg.name, SEGSZ, getpid(), &l), 0);
    attach_cache_put(c, &l, 0);
    seg.hdr->magic = 0; /* same object, broken header: re-checked on every use */
    CHECK_EQ(attach_cache_get(c, seg.name, SEGSZ, getpid(), &l), -EBADMSG);
    CHECK_EQ(attach_cache_size(c), 0);
    shm_seg_destroy(&seg);
    attach_cache_free(c);
}

/* A child creates a segment, reports its name on a pipe and waits for a byte before exiting
 * (leaving the segment behind, as a crashed proxy would). */
static pid_t spawn_owner(int *to_child, char *name)
{
    int up[2], down[2];
    pid_t pid;

    if (pipe(up) < 0 || pipe(down) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        struct shm_seg seg;
        char b;
        close(up[0]);
        close(down[1]);
        if (shm_seg_create(&seg, 1, SEGSZ) < 0)
            _exit(1);
        if (write(up[1], seg.name, IPC_NAME_MAX) != IPC_NAME_MAX)
            _exit(1);
        (void)!read(down[0], &b, 1);
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    if (pid < 0 || read(up[0], name, IPC_NAME_MAX) != IPC_NAME_MAX) {
        close(up[0]);
        close(down[1]);
        return -1;
    }
    close(up[0]);
    *to_child = down[1];
    return pid;
}

static void test_dead_owner(void)
{
    struct attach_cache *c = NULL;
    struct attach_cache_stats st;
    struct attach_lease l;
    char name[IPC_NAME_MAX];
    int to_child = -1;
    pid_t pid;

    CHECK_EQ(attach_cache_new(&c, 8), 0);
    pid = spawn_owner(&to_child, name);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    CHECK_EQ(attach_cache_get(c, name, SEGSZ, pid, &l), 0);
    attach_cache_put(c, &l, 0);
    CHECK_EQ(attach_cache_get(c, name, SEGSZ, pid, &l), 0); /* alive: reused */
    attach_cache_put(c, &l, 0);
    CHECK_EQ(attach_cache_sweep(c), 0);
    close(to_child);
    waitpid(pid, NULL, 0);
    /* Its segment is still there, but its owner is gone: dropped, and not attached again. */
    CHECK_EQ(attach_cache_sweep(c), 1);
    CHECK_EQ(attach_cache_size(c), 0);
    CHECK_EQ(attach_cache_get(c, name, SEGSZ, pid, &l), -ESRCH);
    attach_cache_stats(c, &st);
    CHECK_EQ(st.attaches, 1);
    CHECK_EQ(st.reuses, 1);
    shm_unlink(name);
    attach_cache_free(c);
}

static void test_dead_owner_on_get(void)
{
    struct attach_cache *c = NULL;
    struct attach_lease l;
    char name[IPC_NAME_MAX];
    int to_child = -1;
    pid_t pid;

    CHECK_EQ(attach_cache_new(&c, 8), 0);
    pid = spawn_owner(&to_child, name);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    CHECK_EQ(attach_cache_get(c, name, SEGSZ, pid, &l), 0);
    attach_cache_put(c, &l, 0);
    close(to_child);
    waitpid(pid, NULL, 0);
    /* No sweep in between: the get itself sees the owner is gone. */
    CHECK_EQ(attach_cache_get(c, name, SEGSZ, pid, &l), -ESRCH);
    CHECK_EQ(attach_cache_size(c), 0);
    shm_unlink(name);
    attach_cache_free(c);
}

static void test_lru_bound_and_leases(void)
{
    struct attach_cache *c = NULL;
    struct attach_cache_stats st;
    struct attach_lease l[3], x;
    struct shm_seg seg[3];

    CHECK_EQ(attach_cache_new(&c, 2), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(shm_seg_create(&seg[i], (uint32_t)(10 + i), SEGSZ), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(attach_cache_get(c, seg[i].name, SEGSZ, getpid(), &x), 0);
        attach_cache_put(c, &x, 0);
    }
    CHECK_EQ(attach_cache_size(c), 2); /* bounded: seg[0], the least recently used, went */
    attach_cache_stats(c, &st);
    CHECK_EQ(st.evictions, 1);
    CHECK_EQ(attach_cache_get(c, seg[2].name, SEGSZ, getpid(), &x), 0); /* still kept */
    attach_cache_put(c, &x, 0);
    attach_cache_stats(c, &st);
    CHECK_EQ(st.reuses, 1);
    /* Every entry leased: a third segment is attached but not kept, and nothing in use goes. */
    CHECK_EQ(attach_cache_get(c, seg[1].name, SEGSZ, getpid(), &l[1]), 0);
    CHECK_EQ(attach_cache_get(c, seg[2].name, SEGSZ, getpid(), &l[2]), 0);
    CHECK_EQ(attach_cache_get(c, seg[0].name, SEGSZ, getpid(), &l[0]), 0);
    attach_cache_stats(c, &st);
    CHECK_EQ(st.uncached, 1);
    mark(&seg[1], 0x11);
    CHECK_EQ(marker_seen(&l[1]), 0x11); /* still mapped */
    for (int i = 0; i < 3; i++)
        attach_cache_put(c, &l[i], 0);
    CHECK_EQ(attach_cache_size(c), 2);
    /* A dropped entry in use by another lease stays mapped until that lease ends. */
    CHECK_EQ(attach_cache_get(c, seg[1].name, SEGSZ, getpid(), &l[0]), 0);
    CHECK_EQ(attach_cache_get(c, seg[1].name, SEGSZ, getpid(), &l[1]), 0);
    attach_cache_put(c, &l[0], 1);
    mark(&seg[1], 0x22);
    CHECK_EQ(marker_seen(&l[1]), 0x22);
    attach_cache_put(c, &l[1], 0);
    CHECK_EQ(attach_cache_size(c), 1);
    for (int i = 0; i < 3; i++)
        shm_seg_destroy(&seg[i]);
    attach_cache_free(c);
}

struct stress {
    struct attach_cache *c;
    struct shm_seg *segs;
    int nsegs;
    int failures;
};

static void *stress_main(void *arg)
{
    struct stress *s = arg;
    unsigned r = (unsigned)(uintptr_t)pthread_self();

    for (int i = 0; i < 2000; i++) {
        struct attach_lease l;
        r = r * 1103515245u + 12345u;
        int k = (int)((r >> 16) % (unsigned)s->nsegs);
        if (attach_cache_get(s->c, s->segs[k].name, SEGSZ, getpid(), &l) != 0) {
            __atomic_fetch_add(&s->failures, 1, __ATOMIC_RELAXED);
            continue;
        }
        if (l.seg.slot_cap != s->segs[k].slot_cap)
            __atomic_fetch_add(&s->failures, 1, __ATOMIC_RELAXED);
        attach_cache_put(s->c, &l, ((r >> 8) & 31) == 0);
        if (((r >> 4) & 127) == 0)
            attach_cache_sweep(s->c);
    }
    return NULL;
}

static void test_threads(void)
{
    struct stress s = {.nsegs = 6};
    struct shm_seg segs[6];
    struct attach_cache_stats st;
    pthread_t t[4];

    s.segs = segs;
    CHECK_EQ(attach_cache_new(&s.c, 4), 0);
    for (int i = 0; i < s.nsegs; i++)
        CHECK_EQ(shm_seg_create(&segs[i], (uint32_t)(20 + i), SEGSZ), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, stress_main, &s), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ(s.failures, 0);
    attach_cache_stats(s.c, &st);
    CHECK_EQ(st.attaches + st.reuses, 8000);
    CHECK(st.reuses > 0);
    CHECK(attach_cache_size(s.c) <= 4);
    for (int i = 0; i < s.nsegs; i++)
        shm_seg_destroy(&segs[i]);
    attach_cache_free(s.c);
}

/* Out of descriptors, the kept pidfds are given up to make room. */
static void test_out_of_fds(void)
{
    struct attach_cache *c = NULL;
    struct attach_cache_stats st;
    struct attach_lease l;
    struct shm_seg segs[6], extra;
    struct rlimit old, low;
    int top;

    CHECK_EQ(attach_cache_new(&c, 16), 0);
    for (int i = 0; i < 6; i++) {
        CHECK_EQ(shm_seg_create(&segs[i], (uint32_t)(40 + i), SEGSZ), 0);
        CHECK_EQ(attach_cache_get(c, segs[i].name, SEGSZ, getpid(), &l), 0);
        attach_cache_put(c, &l, 0);
    }
    CHECK_EQ(shm_seg_create(&extra, 50, SEGSZ), 0);
    CHECK_EQ(attach_cache_size(c), 6);
    /* Every descriptor below top is in use: a limit of top leaves no room at all. */
    top = dup(0);
    CHECK(top >= 0);
    close(top);
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)top;
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    CHECK_EQ(dup(0), -1);
    CHECK_EQ(attach_cache_get(c, extra.name, SEGSZ, getpid(), &l), 0);
    attach_cache_put(c, &l, 0);
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
    CHECK_EQ(attach_cache_size(c), 1); /* the idle ones made room */
    attach_cache_stats(c, &st);
    CHECK_EQ(st.evictions, 6);
    for (int i = 0; i < 6; i++)
        shm_seg_destroy(&segs[i]);
    shm_seg_destroy(&extra);
    attach_cache_free(c);
}

static void test_bad_arguments(void)
{
    struct attach_cache *c = NULL;
    struct attach_lease l;

    CHECK_EQ(attach_cache_new(&c, 0), -EINVAL);
    CHECK_EQ(attach_cache_new(&c, ATTACH_CACHE_MAX + 1), -EINVAL);
    CHECK_EQ(attach_cache_new(&c, 1), 0);
    CHECK_EQ(attach_cache_get(c, "/getfile-x", SEGSZ, getpid(), &l), -EPERM);
    CHECK_EQ(attach_cache_get(c, "/getfile-0-1-seg1", SEGSZ, 0, &l), -EINVAL);
    CHECK_EQ(attach_cache_size(c), 0);
    attach_cache_free(c);
    attach_cache_free(NULL);
}

static int fds_before;

static void test_no_leaks(void)
{
    CHECK_EQ(ipc_test_open_fds(), fds_before);
    CHECK_EQ(ipc_test_objects_of(getpid()), 0);
}

static void setup(void)
{
    int rc = ipc_test_isolate_or_skip();

    if (rc < 0) {
        fprintf(stderr, "cannot isolate (need root): %s\n", strerror(-rc));
        exit(1);
    }
    fds_before = ipc_test_open_fds();
}

static void test_setup(void)
{
    setup();
    CHECK(fds_before >= 0);
}

TEST_MAIN(T(test_setup), T(test_reuse), T(test_recreated_same_name), T(test_replaced_segment_swept),
          T(test_header_changed), T(test_dead_owner), T(test_dead_owner_on_get),
          T(test_lru_bound_and_leases), T(test_threads), T(test_out_of_fds), T(test_bad_arguments),
          T(test_no_leaks))
