/* test_stats.c - the stats object (src/stats): names, create/attach/close, the sweep of a
 * killed daemon's object, read-only readers, and consistent snapshots under concurrent writers
 * (seqlock), in a private IPC namespace. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "stats/stats.h"
#include "ipc/ipc_names.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "ipc_testutil.h"
#include "test.h"

static int isolate_rc = -1;

static int shm_exists(const char *name)
{
    int fd = shm_open(name, O_RDONLY, 0);

    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

static void test_names(void)
{
    char buf[IPC_NAME_MAX];
    pid_t pid = 0;

    CHECK_EQ(ipc_name_format(buf, IPC_KIND_STATS, 1000, 42, 0), 0);
    CHECK(strcmp(buf, "/getfile-1000-42-stats") == 0);
    CHECK_EQ(ipc_name_parse(buf, IPC_KIND_STATS, 1000, &pid, NULL), 0);
    CHECK_EQ(pid, 42);
    CHECK_EQ(ipc_name_format(buf, IPC_KIND_STATS, 1000, 0, 0), -EINVAL);
    CHECK_EQ(ipc_name_parse("/getfile-1000-42-stats", IPC_KIND_SEGMENT, 1000, NULL, NULL), -EINVAL);
    CHECK_EQ(ipc_name_parse("/getfile-1000-42-statsx", IPC_KIND_STATS, 1000, NULL, NULL), -EINVAL);
    CHECK_EQ(ipc_name_parse("/getfile-1000-042-stats", IPC_KIND_STATS, 1000, NULL, NULL), -EINVAL);
    CHECK_EQ(ipc_name_parse("/getfile-1001-42-stats", IPC_KIND_STATS, 1000, NULL, NULL), -EINVAL);
    CHECK_EQ(ipc_name_parse("/getfile-1000-42-seg1", IPC_KIND_STATS, 1000, NULL, NULL), -EINVAL);
}

static void test_create_attach_close(void)
{
    struct stats_config cfg = {.threads = 3, .segments = 2, .port = 1234};
    struct stats_region *w = NULL, *r = NULL;
    struct stats_snapshot s;
    struct stats_slot sl;
    char name[IPC_NAME_MAX];
    struct stat st;
    pid_t pids[4];

    CHECK_EQ(isolate_rc, 0);
    snprintf(cfg.text, sizeof cfg.text, "mode=test");
    CHECK_EQ(stats_create(&w, STATS_ROLE_PROXY, 2, &cfg), 0);
    if (w == NULL)
        return;
    CHECK_EQ(stats_create(&r, STATS_ROLE_PROXY, 2, &cfg), -EEXIST); /* one per pid */
    ipc_name_format(name, IPC_KIND_STATS, geteuid(), getpid(), 0);
    int fd = shm_open(name, O_RDONLY, 0);
    CHECK(fd >= 0 && fstat(fd, &st) == 0 && (st.st_mode & 07777) == 0600);
    /* Opened read-only, as every reader opens it, the object cannot be mapped writable. */
    CHECK(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED);
    CHECK_EQ(errno, EACCES);
    close(fd);
    CHECK_EQ(stats_list(pids, 4), 1);
    CHECK_EQ(pids[0], getpid());

    stats_request_done(w, STATS_HIT, 1000, 30);
    stats_request_done(w, STATS_MISS, 0, 3000000);
    stats_request_done(w, STATS_ORIGIN, 5, 99999999);
    stats_add(w, STATS_C_EVICTIONS, 4);
    stats_add(w, STATS_G_QUEUE_DEPTH, 4); /* a gauge is no counter: ignored */
    stats_set(w, STATS_G_QUEUE_DEPTH, 6);
    stats_set(w, STATS_HIT, 77); /* a counter is no gauge: ignored */
    stats_slot_begin(w, 1, 99, 7, "/some/path", 10);
    stats_slot_progress(w, 1, 10, 40);
    stats_slot_begin(w, 2, 99, 7, "/out/of/range", 13); /* ignored */

    CHECK_EQ(stats_attach(&r, getpid()), 0);
    if (r == NULL)
        goto out;
    CHECK_EQ(stats_snapshot(r, &s), 0);
    CHECK_EQ(s.role, STATS_ROLE_PROXY);
    CHECK_EQ(s.pid, getpid());
    CHECK_EQ(s.nslots, 2);
    CHECK_EQ(s.config.threads, 3);
    CHECK_EQ(s.config.port, 1234);
    CHECK(strcmp(s.config.text, "mode=test") == 0);
    CHECK(strcmp(s.instance, IPC_INSTANCE_DEFAULT) == 0);
    CHECK_EQ(s.w[STATS_HIT], 1);
    CHECK_EQ(s.w[STATS_MISS], 1);
    CHECK_EQ(s.w[STATS_ORIGIN], 1);
    CHECK_EQ(s.w[STATS_C_BYTES], 1005);
    CHECK_EQ(s.w[STATS_C_EVICTIONS], 4);
    CHECK_EQ(s.w[STATS_G_QUEUE_DEPTH], 6);
    CHECK_EQ(s.w[STATS_G_ACTIVE], 1);
    CHECK_EQ(s.w[STATS_W_LAT_COUNT], 3);
    CHECK_EQ(s.w[STATS_W_LAT_SUM_US], 30 + 3000000 + 99999999);
    CHECK_EQ(s.w[STATS_W_LAT_BUCKET + 0], 1);                     /* 30 us <= 50 us */
    CHECK_EQ(s.w[STATS_W_LAT_BUCKET + 15], 1);                    /* 3 s <= 5 s */
    CHECK_EQ(s.w[STATS_W_LAT_BUCKET + STATS_LAT_BUCKETS - 1], 1); /* +Inf */
    CHECK_EQ(stats_slot_read(r, 0, &sl), 0);
    CHECK_EQ(sl.state, STATS_SLOT_FREE);
    CHECK_EQ(stats_slot_read(r, 1, &sl), 0);
    CHECK_EQ(sl.state, STATS_SLOT_IN_USE);
    CHECK_EQ(sl.worker, gettid());
    CHECK_EQ(sl.peer, 99);
    CHECK_EQ(sl.serial, 7);
    CHECK_EQ(sl.done, 10);
    CHECK_EQ(sl.total, 40);
    CHECK(strcmp(sl.path, "/some/path") == 0);
    CHECK_EQ(stats_slot_read(r, 2, &sl), -EINVAL);
    stats_slot_end(w, 1, STATS_SLOT_ABANDONED);
    CHECK_EQ(stats_slot_read(r, 1, &sl), 0);
    CHECK_EQ(sl.state, STATS_SLOT_ABANDONED);
    CHECK_EQ(sl.worker, 0);
    CHECK_EQ(stats_snapshot(w, &s), 0); /* in-process, on the writer's own region */
    CHECK_EQ(s.w[STATS_G_ACTIVE], 0);
    CHECK_EQ(s.w[STATS_HIT], 1);
    stats_close(r);
out:
    stats_close(w);
    CHECK(!shm_exists(name));
    CHECK_EQ(stats_attach(&r, getpid()), -ENOENT);
    stats_request_done(NULL, STATS_HIT, 1, 1); /* stats off: no-ops */
    stats_slot_begin(NULL, 0, 1, 1, "/x", 2);
    stats_close(NULL);
}

/* The object records the creator's instance (ipc_instance), which gfmon filters on. */
static void test_instance(void)
{
    struct stats_region *w = NULL, *r = NULL;
    struct stats_snapshot s;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(ipc_instance_set("blue-2_B"), 0);
    CHECK_EQ(stats_create(&w, STATS_ROLE_CACHE, 0, NULL), 0);
    CHECK_EQ(ipc_instance_set(IPC_INSTANCE_DEFAULT), 0); /* published once, at creation */
    if (w == NULL)
        return;
    CHECK_EQ(stats_attach(&r, getpid()), 0);
    if (r != NULL) {
        CHECK_EQ(stats_snapshot(r, &s), 0);
        CHECK(strcmp(s.instance, "blue-2_B") == 0);
        stats_close(r);
    }
    CHECK_EQ(stats_snapshot(w, &s), 0);
    CHECK(strcmp(s.instance, "blue-2_B") == 0);
    stats_close(w);
}

/* A killed daemon's object is swept by the next stats_create of the uid; a foreign or
 * half-made object is refused by readers. */
static void test_sweep_and_refusals(void)
{
    struct stats_region *w = NULL, *r = NULL;
    char name[IPC_NAME_MAX];
    int status, pipefd[2];
    pid_t child;
    char c;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(pipe(pipefd), 0);
    child = fork();
    if (child == 0) {
        struct stats_region *cw;
        if (stats_create(&cw, STATS_ROLE_CACHE, 1, NULL) == 0)
            (void)!write(pipefd[1], "x", 1);
        pause(); /* killed */
        _exit(0);
    }
    CHECK_EQ(read(pipefd[0], &c, 1), 1);
    ipc_name_format(name, IPC_KIND_STATS, geteuid(), child, 0);
    CHECK(shm_exists(name));
    CHECK_EQ(stats_attach(&r, child), 0);
    stats_close(r);
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    CHECK(shm_exists(name)); /* nobody removed it */
    CHECK_EQ(stats_create(&w, STATS_ROLE_PROXY, 0, NULL), 0);
    CHECK(!shm_exists(name)); /* swept */
    stats_close(w);
    close(pipefd[0]);
    close(pipefd[1]);

    /* Refusals: mode other than 0600; a header without magic (being created). */
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(fchmod(fd, 0644), 0);
    CHECK_EQ(ftruncate(fd, 8192), 0);
    r = NULL;
    CHECK_EQ(stats_attach(&r, child), -EPERM);
    CHECK_EQ(fchmod(fd, 0600), 0);
    CHECK_EQ(stats_attach(&r, child), -EAGAIN); /* zeros: no magic yet */
    CHECK(r == NULL);
    close(fd);
    shm_unlink(name);
}

/* Another user takes our plain stats name first: the daemon's object gets a random serial,
 * readers find it by owner, and the squatter's object is neither listed nor attached. */
static void test_name_squatted(void)
{
    char name[IPC_NAME_MAX];
    struct stats_region *w = NULL, *r = NULL;
    struct stats_snapshot snap;
    pid_t pids[4], child;
    int status;

    CHECK_EQ(isolate_rc, 0);
    if (geteuid() != 0) {
        fprintf(stderr, "    (skipped: needs root to act as another user)\n");
        return;
    }
    ipc_name_format(name, IPC_KIND_STATS, geteuid(), getpid(), 0);
    child = fork();
    if (child == 0) {
        int fd = setgid(65534) == 0 && setuid(65534) == 0
                     ? shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0666)
                     : -1;
        _exit(fd >= 0 && ftruncate(fd, 8192) == 0 ? 0 : 1);
    }
    CHECK(child > 0);
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(stats_create(&w, STATS_ROLE_CACHE, 1, NULL), 0);
    CHECK_EQ(stats_create(&r, STATS_ROLE_CACHE, 1, NULL), -EEXIST); /* still one per pid */
    stats_request_done(w, STATS_HIT, 10, 5);
    CHECK_EQ(stats_list(pids, 4), 1);
    CHECK_EQ(pids[0], getpid());
    CHECK_EQ(stats_attach(&r, getpid()), 0);
    if (r != NULL) {
        CHECK_EQ(stats_snapshot(r, &snap), 0);
        CHECK_EQ(snap.w[STATS_HIT], 1);
        stats_close(r);
    }
    stats_close(w);
    CHECK(shm_exists(name)); /* the squatter's, untouched */
    shm_unlink(name);
    CHECK_EQ(ipc_test_count("/dev/shm", "getfile-"), 0);
}

/* --- concurrency ---------------------------------------------------------------------------- */

#define WRITERS 3
#define ROUNDS  60000

static struct stats_region *cw;
static atomic_int writers_left;

static void *global_writer(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;

    for (unsigned i = 0; i < ROUNDS; i++) {
        if ((i + id) % 3 == 0)
            stats_request_done(cw, STATS_MISS, 0, 60); /* bucket 1 */
        else
            stats_request_done(cw, STATS_HIT, 3, 2000); /* bucket 5 */
    }
    atomic_fetch_sub(&writers_left, 1);
    return NULL;
}

/* Slot 0's one writer: every record it publishes has peer == serial == the number in the path,
 * and done == total. */
static void *slot_writer(void *arg)
{
    char path[64];

    (void)arg;
    for (unsigned i = 1; atomic_load(&writers_left) > 0 || i < 1000; i++) {
        int n = snprintf(path, sizeof path, "/file/%u/%u/%u", i, i, i);
        stats_slot_begin(cw, 0, (pid_t)i, i, path, (size_t)n);
        stats_slot_progress(cw, 0, (uint64_t)i * 7, (uint64_t)i * 7);
        stats_slot_end(cw, 0, STATS_SLOT_FREE);
    }
    return NULL;
}

static void test_seqlock_concurrent(void)
{
    struct stats_region *r = NULL;
    struct stats_snapshot s, prev;
    struct stats_slot sl;
    pthread_t th[WRITERS + 1];
    unsigned snaps = 0, slots_seen = 0, bad = 0, again = 0;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(stats_create(&cw, STATS_ROLE_CACHE, 1, NULL), 0);
    if (cw == NULL)
        return;
    CHECK_EQ(stats_attach(&r, getpid()), 0);
    if (r == NULL) {
        stats_close(cw);
        return;
    }
    memset(&prev, 0, sizeof prev);
    atomic_store(&writers_left, WRITERS);
    for (unsigned i = 0; i < WRITERS; i++)
        pthread_create(&th[i], NULL, global_writer, (void *)(uintptr_t)i);
    pthread_create(&th[WRITERS], NULL, slot_writer, NULL);
    /* The reader: every snapshot must satisfy the invariants every update keeps. */
    for (;;) {
        int done = atomic_load(&writers_left) == 0;
        int rc = stats_snapshot(r, &s);
        if (rc == -EAGAIN) {
            again++;
            continue;
        }
        snaps++;
        uint64_t hit = s.w[STATS_HIT], miss = s.w[STATS_MISS];
        if (s.w[STATS_C_BYTES] != 3 * hit || s.w[STATS_W_LAT_COUNT] != hit + miss ||
            s.w[STATS_W_LAT_BUCKET + 5] != hit || s.w[STATS_W_LAT_BUCKET + 1] != miss ||
            s.w[STATS_W_LAT_SUM_US] != 2000 * hit + 60 * miss || hit < prev.w[STATS_HIT] ||
            miss < prev.w[STATS_MISS] || s.w[STATS_G_ACTIVE] > 1)
            bad++;
        prev = s;
        if (stats_slot_read(r, 0, &sl) == 0 && sl.serial != 0) {
            char want[64];
            slots_seen++;
            snprintf(want, sizeof want, "/file/%u/%u/%u", sl.serial, sl.serial, sl.serial);
            if ((uint32_t)sl.peer != sl.serial || strcmp(sl.path, want) != 0 ||
                (sl.done != 0 && sl.done != (uint64_t)sl.serial * 7) || sl.done != sl.total)
                bad++;
        }
        if (done)
            break;
    }
    for (unsigned i = 0; i <= WRITERS; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ(bad, 0);
    CHECK(snaps > 0 && slots_seen > 0);
    CHECK_EQ(stats_snapshot(r, &s), 0);
    CHECK_EQ(s.w[STATS_HIT] + s.w[STATS_MISS], (uint64_t)WRITERS * ROUNDS);
    CHECK_EQ(s.w[STATS_G_ACTIVE], 0);
    printf("  %u snapshots, %u slot reads, %u retries exhausted\n", snaps, slots_seen, again);
    stats_close(r);
    stats_close(cw);
}

/* A reader in another process that stops (SIGSTOP) while it holds the mapping stops no writer:
 * a bounded number of updates completes while it is stopped. */
static void test_stopped_reader(void)
{
    struct stats_region *w = NULL;
    struct stats_snapshot s;
    int pipefd[2], status;
    pid_t child;
    char c;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(stats_create(&w, STATS_ROLE_PROXY, 1, NULL), 0);
    if (w == NULL)
        return;
    CHECK_EQ(pipe(pipefd), 0);
    pid_t parent = getpid();
    child = fork();
    if (child == 0) {
        struct stats_region *r;
        struct stats_snapshot cs;
        if (stats_attach(&r, parent) != 0)
            _exit(1);
        (void)!write(pipefd[1], "x", 1);
        for (;;) /* reads until stopped and killed */
            (void)stats_snapshot(r, &cs);
    }
    CHECK_EQ(read(pipefd[0], &c, 1), 1);
    kill(child, SIGSTOP);
    waitpid(child, &status, WUNTRACED);
    CHECK(WIFSTOPPED(status));
    for (unsigned i = 0; i < 100000; i++)
        stats_request_done(w, STATS_HIT, 1, 1);
    CHECK_EQ(stats_snapshot(w, &s), 0);
    CHECK_EQ(s.w[STATS_HIT], 100000);
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    close(pipefd[0]);
    close(pipefd[1]);
    stats_close(w);
}

/* A reader that tries to write through its mapping of the object faults (SIGSEGV in the
 * reader), and the writer's figures are untouched. */
static void test_reader_cannot_write(void)
{
    struct stats_region *w = NULL;
    struct stats_snapshot s;
    char name[IPC_NAME_MAX];
    int status;
    pid_t child;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(stats_create(&w, STATS_ROLE_CACHE, 1, NULL), 0);
    if (w == NULL)
        return;
    stats_request_done(w, STATS_HIT, 10, 10);
    ipc_name_format(name, IPC_KIND_STATS, geteuid(), getpid(), 0);
    pid_t parent = getpid();
    child = fork();
    if (child == 0) {
        struct stats_region *r;
        char line[512];
        unsigned long start = 0;
        FILE *maps;
        signal(SIGSEGV, SIG_DFL); /* die of it, whatever a sanitizer installed */
        if (stats_attach(&r, parent) != 0)
            _exit(2);
        /* The reader's own mapping (the writer's, inherited by fork, is the rw-s one). */
        maps = fopen("/proc/self/maps", "r");
        while (maps != NULL && fgets(line, sizeof line, maps) != NULL)
            if (strstr(line, name + 1) != NULL && strstr(line, " r--s ") != NULL)
                start = strtoul(line, NULL, 16);
        if (start == 0)
            _exit(3);
        *(volatile uint64_t *)(uintptr_t)(start + 512) = 0xdeadbeef; /* must fault */
        _exit(0);
    }
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
    CHECK_EQ(stats_snapshot(w, &s), 0);
    CHECK_EQ(s.w[STATS_HIT], 1);
    CHECK_EQ(s.w[STATS_C_BYTES], 10);
    stats_close(w);
}

static void *layout_writer(void *arg)
{
    stats_request_done(arg, STATS_HIT, 10, 10);
    return NULL;
}

/* Every block starts on a cache line and no two share one (no false sharing between workers);
 * two threads count in two different shards, which the reader sums. */
static void test_layout_lines(void)
{
    struct stats_region *w = NULL;
    struct stats_shm_hdr h;
    struct stats_snapshot s;
    char name[IPC_NAME_MAX];
    struct stat st;
    pthread_t th[2];

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(stats_create(&w, STATS_ROLE_PROXY, 3, NULL), 0);
    if (w == NULL)
        return;
    for (unsigned i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, layout_writer, w);
    for (unsigned i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    stats_slot_begin(w, 0, 1, 1, "/a", 2);
    stats_slot_begin(w, 2, 1, 1, "/b", 2);
    ipc_name_format(name, IPC_KIND_STATS, geteuid(), getpid(), 0);
    int fd = shm_open(name, O_RDONLY, 0);
    CHECK(fd >= 0 && fstat(fd, &st) == 0);
    unsigned char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    CHECK(m != MAP_FAILED);
    if (m == MAP_FAILED)
        goto out;
    memcpy(&h, m, sizeof h);
    CHECK_EQ(h.global_off % 64, 0);
    CHECK_EQ(h.shards_off % 64, 0);
    CHECK_EQ(h.shard_stride % 64, 0);
    CHECK_EQ(h.slots_off % 64, 0);
    CHECK_EQ(h.slot_stride % 64, 0);
    CHECK_EQ(h.nshards, STATS_SHARDS);
    CHECK(h.global_off >= sizeof h);
    CHECK(h.shards_off >= h.global_off + (1 + STATS_GAUGE_WORDS) * 8);
    CHECK(h.shard_stride >= (1 + STATS_GLOBAL_WORDS) * 8);
    CHECK(h.slots_off >= h.shards_off + (uint64_t)h.nshards * h.shard_stride);
    CHECK(h.slot_stride >= (1 + STATS_SLOT_WORDS) * 8);
    CHECK_EQ(h.size, h.slots_off + 3 * h.slot_stride);
    /* The two threads' updates: two shards with a closed update each (seq 2). */
    unsigned used = 0;
    for (unsigned i = 0; i < h.nshards; i++) {
        uint64_t seq;
        memcpy(&seq, m + h.shards_off + i * h.shard_stride, sizeof seq);
        used += seq != 0;
        if (seq != 0)
            CHECK_EQ(seq, 2);
    }
    CHECK_EQ(used, 2);
    munmap(m, (size_t)st.st_size);
    CHECK_EQ(stats_snapshot(w, &s), 0);
    CHECK_EQ(s.w[STATS_HIT], 2);
    CHECK_EQ(s.w[STATS_C_BYTES], 20);
    CHECK_EQ(s.w[STATS_W_LAT_COUNT], 2);
    CHECK_EQ(s.w[STATS_G_ACTIVE], 2); /* counted from the slots */
out:
    stats_close(w);
}

int main(void)
{
    static const struct test_case cases[] = {
        T(test_names),          T(test_create_attach_close),
        T(test_instance),       T(test_sweep_and_refusals),
        T(test_name_squatted),  T(test_seqlock_concurrent),
        T(test_stopped_reader), T(test_reader_cannot_write),
        T(test_layout_lines),
    };

    isolate_rc = ipc_test_isolate_or_skip();
    return test_run_all(cases, sizeof cases / sizeof cases[0]);
}
