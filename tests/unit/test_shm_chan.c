/* test_shm_chan.c - data segments: geometry, creation and the attacher's checks, transfers of
 * edge-case sizes through every kind of segment, chunk validation, peer death, cancel,
 * timeouts and a full /dev/shm. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "ipc/shm_chan.h"

#include <fcntl.h>
#include <sched.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "clock.h"
#include "ipc/peer.h"
#include "ipc/shm_guard.h"
#include "ipc_testutil.h"
#include "test.h"

#define DATA_MAX ((1u << 20) + 4096)

static int isolate_rc = -1;
static unsigned char *pattern; /* DATA_MAX deterministic bytes */
static int self_pidfd = -1;    /* "the peer" when both ends are in this process: always alive */
static int fd_baseline = -1;   /* open descriptors before the first test */

static void make_pattern(void)
{
    uint64_t x = 0x9e3779b97f4a7c15u;

    pattern = malloc(DATA_MAX);
    for (size_t i = 0; i < DATA_MAX; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        pattern[i] = (unsigned char)x;
    }
}

static char *seg_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "/dev/shm%s", name);
    return buf;
}

static int shm_exists(const char *name)
{
    char path[128];

    return access(seg_path(path, sizeof path, name), F_OK) == 0;
}

static struct shm_slot_hdr *slot_at(struct shm_seg *seg, uint32_t i)
{
    return (struct shm_slot_hdr *)((unsigned char *)seg->hdr + SHM_HDR_SPACE +
                                   (size_t)i * (seg->slot_cap + SHM_SLOT_HDR_SPACE));
}

/* Writes a whole file as RESPONSE + DATA chunks. Returns 0 or the first error. */
static int produce(struct shm_seg *seg, uint64_t gen, const unsigned char *data, uint64_t len,
                   int peer, int timeout_ms)
{
    uint64_t off = 0;

    do {
        unsigned char *p;
        uint32_t n;
        int rc = shm_seg_reserve(seg, peer, timeout_ms, NULL, &p);

        if (rc < 0)
            return rc;
        n = len - off < seg->slot_cap ? (uint32_t)(len - off) : seg->slot_cap;
        memcpy(p, data + off, n);
        shm_seg_publish(seg, gen, seg->seq == 0 ? SHM_SLOT_RESPONSE : SHM_SLOT_DATA, SHM_STATUS_OK,
                        seg->seq == 0 ? len : 0, n);
        off += n;
    } while (off < len);
    return 0;
}

/* Reads a whole response into out (cap bytes). Returns 0 or the first error; *status and
 * *len tell what came. */
static int consume(struct shm_seg *seg, uint64_t gen, unsigned char *out, uint64_t cap, int peer,
                   int timeout_ms, enum shm_status *status, uint64_t *len)
{
    struct shm_chunk ch;
    uint64_t left, got;
    int rc;

    rc = shm_seg_next(seg, gen, UINT64_MAX, peer, timeout_ms, NULL, &ch);
    if (rc < 0)
        return rc;
    if (ch.kind != SHM_SLOT_RESPONSE || ch.file_len > cap)
        return -EPROTO;
    *status = ch.status;
    *len = ch.file_len;
    memcpy(out, ch.data, ch.len);
    got = ch.len;
    left = ch.file_len - ch.len;
    shm_seg_release(seg);
    while (left > 0) {
        rc = shm_seg_next(seg, gen, left, peer, timeout_ms, NULL, &ch);
        if (rc < 0)
            return rc;
        if (ch.kind != SHM_SLOT_DATA)
            return -EPROTO;
        memcpy(out + got, ch.data, ch.len);
        got += ch.len;
        left -= ch.len;
        shm_seg_release(seg);
    }
    return 0;
}

struct producer_arg {
    const char *name;
    uint64_t claimed;
    uint64_t gen;
    uint64_t len;
    int not_found; /* answer NOT_FOUND instead of the data */
    int rc;
};

/* The cache's side in a thread: its own mapping, as in the real cache. */
static void *producer_thread(void *p)
{
    struct producer_arg *a = p;
    struct shm_seg seg;

    a->rc = shm_seg_attach(&seg, a->name, a->claimed);
    if (a->rc < 0)
        return NULL;
    if (a->not_found) {
        unsigned char *payload;

        a->rc = shm_seg_reserve(&seg, self_pidfd, 5000, NULL, &payload);
        if (a->rc == 0)
            shm_seg_publish(&seg, a->gen, SHM_SLOT_RESPONSE, SHM_STATUS_NOT_FOUND, 0, 0);
    } else {
        a->rc = produce(&seg, a->gen, pattern, a->len, self_pidfd, 5000);
    }
    shm_seg_detach(&seg);
    return NULL;
}

/* --- geometry, creation, attach ------------------------------------------------------------ */

static void check_geometry(uint64_t size)
{
    uint32_t k = 0, cap = 0;
    uint64_t want_k = size / SHM_SLOT_TARGET_MIN, used;

    want_k = want_k < 1 ? 1 : want_k > SHM_SLOTS_MAX ? SHM_SLOTS_MAX : want_k;
    CHECK_EQ(shm_geometry(size, &k, &cap), 0);
    CHECK_EQ(k, want_k);
    CHECK(cap >= 192 && cap % 64 == 0);
    used = SHM_HDR_SPACE + (uint64_t)k * (cap + SHM_SLOT_HDR_SPACE);
    CHECK(used <= size);
    CHECK(size - used < 64 * (uint64_t)k); /* nothing wasted beyond alignment */
}

static void test_geometry(void)
{
    uint32_t k = 0, cap = 0;
    uint64_t x = 12345;

    CHECK_EQ(shm_geometry(SHM_SEG_MIN - 1, &k, &cap), -EINVAL);
    CHECK_EQ(shm_geometry((uint64_t)SHM_SEG_MAX + 1, &k, &cap), -EINVAL);
    CHECK_EQ(shm_geometry(0, &k, &cap), -EINVAL);
    CHECK_EQ(shm_geometry(512, &k, &cap), 0);
    CHECK(k == 1 && cap == 192);
    CHECK_EQ(shm_geometry(8192, &k, &cap), 0);
    CHECK(k == 4 && cap == 1920);
    CHECK_EQ(shm_geometry(1 << 20, &k, &cap), 0);
    CHECK(k == 4 && cap == 262016);
    CHECK_EQ(shm_geometry(SHM_SEG_MAX, &k, &cap), 0);
    CHECK(k == 4 && cap == SHM_SEG_MAX / 4 - 128);
    for (uint64_t s = 512; s <= 16384; s++)
        check_geometry(s);
    for (int i = 0; i < 20000; i++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        check_geometry(SHM_SEG_MIN + (x >> 20) % (SHM_SEG_MAX - SHM_SEG_MIN + 1));
    }
    check_geometry(SHM_SEG_MAX);
}

static void test_create_attach(void)
{
    struct shm_seg seg, att, zero;
    char name[IPC_NAME_MAX], path[128];
    struct stat st;
    mode_t old;

    CHECK_EQ(shm_seg_create(&seg, 1, 4096), 0);
    ipc_name_format(name, IPC_KIND_SEGMENT, geteuid(), getpid(), 1);
    CHECK(strcmp(seg.name, name) == 0);
    CHECK(stat(seg_path(path, sizeof path, name), &st) == 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_EQ(st.st_size, 4096);
    CHECK_EQ(seg.size, 4096);
    CHECK_EQ(seg.nslots, 2);
    CHECK_EQ(shm_seg_is_idle(&seg), 1);
    /* A name that exists (taken first by anybody) is never opened: another serial is used. */
    {
        struct shm_seg other;
        uint32_t serial = 0;
        pid_t pid = 0;

        CHECK_EQ(shm_seg_create(&other, 1, 4096), 0);
        CHECK(strcmp(other.name, name) != 0);
        CHECK_EQ(ipc_name_parse(other.name, IPC_KIND_SEGMENT, geteuid(), &pid, &serial), 0);
        CHECK(pid == getpid() && serial != 0 && serial != 1);
        CHECK(other.hdr != seg.hdr);
        shm_seg_destroy(&other);
        CHECK_EQ(shm_seg_is_idle(&seg), 1);
    }

    CHECK_EQ(shm_seg_attach(&att, name, 4096), 0);
    CHECK(att.hdr != NULL && att.hdr != seg.hdr);
    CHECK_EQ(att.nslots, seg.nslots);
    CHECK_EQ(att.slot_cap, seg.slot_cap);
    CHECK_EQ(att.size, 4096);
    shm_seg_detach(&att);
    CHECK(att.hdr == NULL);
    shm_seg_detach(&att);
    /* Detaching twice is a no-op. A smaller claim is fine: fstat rules. */
    CHECK_EQ(shm_seg_attach(&att, name, 600), 0);
    shm_seg_detach(&att);
    CHECK_EQ(shm_seg_attach(&att, name, 4097), -EBADMSG);
    CHECK(att.hdr == NULL);

    shm_seg_destroy(&seg);
    CHECK(!shm_exists(name));
    shm_seg_destroy(&seg);
    memset(&zero, 0, sizeof zero);
    shm_seg_destroy(&zero);

    CHECK_EQ(shm_seg_create(&seg, 2, 511), -EINVAL);
    CHECK_EQ(shm_seg_create(&seg, 2, (uint64_t)SHM_SEG_MAX + 1), -EINVAL);
    /* Exactly 0600 whatever the umask. */
    old = umask(0377);
    CHECK_EQ(shm_seg_create(&seg, 3, 512), 0);
    umask(old);
    CHECK(stat(seg_path(path, sizeof path, seg.name), &st) == 0 && (st.st_mode & 0777) == 0600);
    shm_seg_destroy(&seg);
    CHECK_EQ(ipc_test_objects_of(getpid()), 0);
    CHECK_EQ(ipc_test_open_fds(), fd_baseline);
}

/* Creates a raw object of real_size bytes whose first bytes are a copy of a valid header of
 * a hdr_size segment. */
static void make_fake(const char *name, uint64_t real_size, uint64_t hdr_size)
{
    static unsigned char mem[8192] __attribute__((aligned(64)));
    struct shm_seg tmp;
    int fd;

    memset(mem, 0, sizeof mem);
    CHECK_EQ(shm_seg_layout_init(&tmp, mem, hdr_size), 0);
    fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, (off_t)real_size) == 0);
    CHECK(pwrite(fd, mem, real_size < SHM_HDR_SPACE ? real_size : SHM_HDR_SPACE, 0) >= 0);
    close(fd);
}

/* Changes one header word of an existing segment object. */
static void poke32(const char *name, size_t off, uint32_t v)
{
    int fd = shm_open(name, O_RDWR, 0);

    CHECK(fd >= 0 && pwrite(fd, &v, sizeof v, (off_t)off) == (ssize_t)sizeof v);
    close(fd);
}

static void test_attach_rejects(void)
{
    struct shm_seg seg, att;
    char name[IPC_NAME_MAX], other[IPC_NAME_MAX];
    int fd;

    ipc_name_format(name, IPC_KIND_SEGMENT, geteuid(), getpid(), 10);
    CHECK_EQ(shm_seg_attach(&att, name, 512), -ENOENT);
    CHECK_EQ(shm_seg_attach(&att, "//x", 512), -EPERM);
    CHECK_EQ(shm_seg_attach(&att, "noslash", 512), -EPERM);
    ipc_name_format(other, IPC_KIND_SEGMENT, geteuid() + 1, getpid(), 10);
    CHECK_EQ(shm_seg_attach(&att, other, 512), -EPERM);

    /* Wrong mode. */
    CHECK_EQ(shm_seg_create(&seg, 10, 4096), 0);
    fd = shm_open(name, O_RDWR, 0);
    CHECK(fd >= 0 && fchmod(fd, 0644) == 0);
    CHECK_EQ(shm_seg_attach(&att, name, 4096), -EPERM);
    CHECK(fd >= 0 && fchmod(fd, 0600) == 0);
    CHECK_EQ(shm_seg_attach(&att, name, 4096), 0);
    shm_seg_detach(&att);
    /* Another owner. */
    CHECK(fd >= 0 && fchown(fd, 4242, 4242) == 0);
    CHECK_EQ(shm_seg_attach(&att, name, 4096), -EPERM);
    close(fd);
    shm_seg_destroy(&seg);

    /* Bad magic, bad version, header geometry that does not match the real size. */
    CHECK_EQ(shm_seg_create(&seg, 10, 4096), 0);
    poke32(name, offsetof(struct shm_seg_hdr, magic), 0x12345678);
    CHECK_EQ(shm_seg_attach(&att, name, 4096), -EBADMSG);
    poke32(name, offsetof(struct shm_seg_hdr, magic), SHM_MAGIC);
    CHECK_EQ(shm_seg_attach(&att, name, 4096), 0);
    shm_seg_detach(&att);
    poke32(name, offsetof(struct shm_seg_hdr, version), SHM_VERSION + 1);
    CHECK_EQ(shm_seg_attach(&att, name, 4096), -EBADMSG);
    poke32(name, offsetof(struct shm_seg_hdr, version), SHM_VERSION);
    poke32(name, offsetof(struct shm_seg_hdr, nslots), 1);
    CHECK_EQ(shm_seg_attach(&att, name, 4096), -EBADMSG);
    poke32(name, offsetof(struct shm_seg_hdr, nslots), 2);
    poke32(name, offsetof(struct shm_seg_hdr, slot_cap), seg.slot_cap + 64);
    CHECK_EQ(shm_seg_attach(&att, name, 4096), -EBADMSG);
    shm_seg_destroy(&seg);

    /* Real size smaller than the claim, and than its own header says: mapping the claim would
     * raise SIGBUS on touch. */
    make_fake(name, 1024, 4096);
    CHECK_EQ(shm_seg_attach(&att, name, 4096), -EBADMSG);
    CHECK_EQ(shm_seg_attach(&att, name, 1024), -EBADMSG); /* header says 4096: no match */
    shm_unlink(name);
    make_fake(name, 100, 4096); /* below SHM_SEG_MIN */
    CHECK_EQ(shm_seg_attach(&att, name, 0), -EBADMSG);
    shm_unlink(name);
    make_fake(name, 0, 4096);
    CHECK_EQ(shm_seg_attach(&att, name, 0), -EBADMSG);
    shm_unlink(name);
    CHECK_EQ(ipc_test_objects_of(getpid()), 0);
    CHECK_EQ(ipc_test_open_fds(), fd_baseline);
}

/* --- transfers ----------------------------------------------------------------------------- */

static void test_transfer_matrix(void)
{
    static const uint64_t seg_sizes[] = {512, 4096, 65536, 1 << 20};
    unsigned char *out = malloc(DATA_MAX);
    uint64_t gen = 100;

    for (size_t s = 0; s < sizeof seg_sizes / sizeof seg_sizes[0]; s++) {
        struct shm_seg seg;
        uint64_t file_sizes[8];
        size_t nf = 0;

        CHECK_EQ(shm_seg_create(&seg, 20 + (uint32_t)s, seg_sizes[s]), 0);
        file_sizes[nf++] = 0;
        file_sizes[nf++] = 1;
        file_sizes[nf++] = seg.slot_cap - 1;
        file_sizes[nf++] = seg.slot_cap;
        file_sizes[nf++] = seg.slot_cap + 1;
        file_sizes[nf++] = (uint64_t)seg.nslots * seg.slot_cap + 7;
        file_sizes[nf++] = (1u << 20) + 3;
        for (size_t f = 0; f <= nf; f++) {
            struct producer_arg a = {seg.name, seg_sizes[s], ++gen, 0, f == nf, 0};
            enum shm_status status = SHM_STATUS_ERROR;
            uint64_t len = UINT64_MAX;
            pthread_t th;
            int rc;

            a.len = f < nf ? file_sizes[f] : 0;
            shm_seg_begin(&seg, gen);
            memset(out, 0, a.len + 1);
            CHECK_EQ(pthread_create(&th, NULL, producer_thread, &a), 0);
            rc = consume(&seg, gen, out, DATA_MAX, self_pidfd, 5000, &status, &len);
            pthread_join(th, NULL);
            CHECK_EQ(rc, 0);
            CHECK_EQ(a.rc, 0);
            if (f < nf) {
                CHECK_EQ(status, SHM_STATUS_OK);
                CHECK_EQ(len, a.len);
                CHECK_MEM(out, pattern, a.len);
            } else {
                CHECK_EQ(status, SHM_STATUS_NOT_FOUND);
                CHECK_EQ(len, 0);
            }
            /* After a complete response (a miss included) the segment is idle: reusable. */
            CHECK_EQ(shm_seg_is_idle(&seg), 1);
            if (rc || a.rc || !shm_seg_is_idle(&seg))
                fprintf(stderr, "segment %llu, file %llu\n", (unsigned long long)seg_sizes[s],
                        (unsigned long long)a.len);
        }
        shm_seg_destroy(&seg);
    }
    free(out);
    CHECK_EQ(ipc_test_objects_of(getpid()), 0);
    CHECK_EQ(ipc_test_open_fds(), fd_baseline);
}

/* --- validation ---------------------------------------------------------------------------- */

static void test_chunk_validate(void)
{
    const struct shm_slot_hdr ok_resp = {7, 0, 100, SHM_SLOT_RESPONSE, SHM_STATUS_OK, 64, 0};
    const struct shm_slot_hdr ok_data = {7, 3, 0, SHM_SLOT_DATA, SHM_STATUS_OK, 64, 0};
    struct shm_slot_hdr h;

    CHECK_EQ(shm_chunk_validate(&ok_resp, 7, 0, 64, UINT64_MAX), 0);
    CHECK_EQ(shm_chunk_validate(&ok_data, 7, 3, 64, 64), 0);
    CHECK_EQ(shm_chunk_validate(&ok_resp, 8, 0, 64, UINT64_MAX), -EBADMSG); /* generation */
    CHECK_EQ(shm_chunk_validate(&ok_resp, 7, 1, 64, UINT64_MAX), -EBADMSG); /* seq */
    CHECK_EQ(shm_chunk_validate(&ok_data, 7, 4, 64, 64), -EBADMSG);
    CHECK_EQ(shm_chunk_validate(&ok_data, 7, 3, 63, 64), -EBADMSG); /* len > slot_cap */
    CHECK_EQ(shm_chunk_validate(&ok_data, 7, 3, 64, 63), -EBADMSG); /* past the end */
    h = ok_resp;
    h.kind = SHM_SLOT_DATA;
    CHECK_EQ(shm_chunk_validate(&h, 7, 0, 64, UINT64_MAX), -EBADMSG);
    h = ok_resp;
    h.file_len = 63; /* carries more than the file */
    CHECK_EQ(shm_chunk_validate(&h, 7, 0, 64, UINT64_MAX), -EBADMSG);
    h = ok_resp;
    h.status = 5;
    CHECK_EQ(shm_chunk_validate(&h, 7, 0, 64, UINT64_MAX), -EBADMSG);
    h.status = SHM_STATUS_OTHER_BACKEND; /* carries nothing, like a miss */
    CHECK_EQ(shm_chunk_validate(&h, 7, 0, 64, UINT64_MAX), -EBADMSG);
    h.len = 0;
    h.file_len = 0;
    CHECK_EQ(shm_chunk_validate(&h, 7, 0, 64, UINT64_MAX), 0);
    h = ok_resp;
    h.status = SHM_STATUS_NOT_FOUND; /* a miss carries nothing */
    CHECK_EQ(shm_chunk_validate(&h, 7, 0, 64, UINT64_MAX), -EBADMSG);
    h.len = 0;
    CHECK_EQ(shm_chunk_validate(&h, 7, 0, 64, UINT64_MAX), -EBADMSG);
    h.file_len = 0;
    CHECK_EQ(shm_chunk_validate(&h, 7, 0, 64, UINT64_MAX), 0);
    h.status = SHM_STATUS_ERROR;
    CHECK_EQ(shm_chunk_validate(&h, 7, 0, 64, UINT64_MAX), 0);
    h.status = SHM_STATUS_ORIGIN_NOT_FOUND; /* the origin's 404, through a filling cache */
    CHECK_EQ(shm_chunk_validate(&h, 7, 0, 64, UINT64_MAX), 0);
    h.len = 1;
    CHECK_EQ(shm_chunk_validate(&h, 7, 0, 64, UINT64_MAX), -EBADMSG);
    h = ok_data;
    h.kind = SHM_SLOT_RESPONSE;
    CHECK_EQ(shm_chunk_validate(&h, 7, 3, 64, 64), -EBADMSG);
    h = ok_data;
    h.len = 0; /* no progress */
    CHECK_EQ(shm_chunk_validate(&h, 7, 3, 64, 64), -EBADMSG);
    h = ok_data;
    h.file_len = 5;
    CHECK_EQ(shm_chunk_validate(&h, 7, 3, 64, 64), -EBADMSG);
    h = ok_data;
    h.status = SHM_STATUS_ERROR;
    CHECK_EQ(shm_chunk_validate(&h, 7, 3, 64, 64), -EBADMSG);
}

/* Bad chunks through the real consumer path; each abandoned segment is replaced. */
static void test_bad_chunks(void)
{
    struct shm_seg seg, prod;
    struct shm_chunk ch;
    struct shm_slot_hdr *sh;
    unsigned char *p;

    /* A chunk of another request (a late write into a reused segment). */
    CHECK_EQ(shm_seg_create(&seg, 30, 4096), 0);
    CHECK_EQ(shm_seg_attach(&prod, seg.name, 4096), 0);
    shm_seg_begin(&seg, 5);
    CHECK_EQ(shm_seg_reserve(&prod, self_pidfd, 100, NULL, &p), 0);
    shm_seg_publish(&prod, 4, SHM_SLOT_RESPONSE, SHM_STATUS_OK, 10, 10);
    CHECK_EQ(shm_seg_next(&seg, 5, UINT64_MAX, self_pidfd, 1000, NULL, &ch), -EBADMSG);
    shm_seg_cancel(&seg);
    CHECK_EQ(shm_seg_is_idle(&seg), 0);
    shm_seg_detach(&prod);
    shm_seg_destroy(&seg);

    /* len > slot_cap, written by hand (publish asserts against it). */
    CHECK_EQ(shm_seg_create(&seg, 31, 4096), 0);
    shm_seg_begin(&seg, 6);
    sh = slot_at(&seg, 0);
    *sh = (struct shm_slot_hdr){
        6, 0, (uint64_t)seg.slot_cap + 1, SHM_SLOT_RESPONSE, SHM_STATUS_OK, seg.slot_cap + 1, 0};
    shm_sem_post(&seg.hdr->filled);
    CHECK_EQ(shm_seg_next(&seg, 6, UINT64_MAX, self_pidfd, 1000, NULL, &ch), -EBADMSG);
    CHECK_EQ(seg.seq, 0); /* nothing consumed */
    shm_seg_cancel(&seg);
    shm_seg_destroy(&seg);

    /* A DATA chunk that runs past the file's end. */
    CHECK_EQ(shm_seg_create(&seg, 32, 4096), 0);
    CHECK_EQ(shm_seg_attach(&prod, seg.name, 4096), 0);
    shm_seg_begin(&seg, 7);
    CHECK_EQ(shm_seg_reserve(&prod, self_pidfd, 100, NULL, &p), 0);
    shm_seg_publish(&prod, 7, SHM_SLOT_RESPONSE, SHM_STATUS_OK, 20, 10);
    CHECK_EQ(shm_seg_reserve(&prod, self_pidfd, 100, NULL, &p), 0);
    shm_seg_publish(&prod, 7, SHM_SLOT_DATA, SHM_STATUS_OK, 0, 11);
    CHECK_EQ(shm_seg_next(&seg, 7, UINT64_MAX, self_pidfd, 1000, NULL, &ch), 0);
    CHECK_EQ(ch.file_len, 20);
    CHECK_EQ(ch.len, 10);
    shm_seg_release(&seg);
    CHECK_EQ(shm_seg_next(&seg, 7, 10, self_pidfd, 1000, NULL, &ch), -EBADMSG);
    shm_seg_cancel(&seg);
    shm_seg_detach(&prod);
    shm_seg_destroy(&seg);
    CHECK_EQ(ipc_test_objects_of(getpid()), 0);
    CHECK_EQ(ipc_test_open_fds(), fd_baseline);
}

/* --- failures of the peer, cancel, timeouts ----------------------------------------------- */

static void test_producer_dies(void)
{
    struct shm_seg seg;
    struct shm_chunk ch;
    int64_t t0, elapsed;
    pid_t child;
    int pidfd, status = 0, rc;

    CHECK_EQ(shm_seg_create(&seg, 40, 65536), 0);
    shm_seg_begin(&seg, 9);
    child = fork();
    if (child == 0) {
        struct shm_seg att;
        int ppid = peer_open(getppid());

        if (shm_seg_attach(&att, seg.name, 65536) != 0 ||
            produce(&att, 9, pattern, 2 * (uint64_t)att.slot_cap - 5, ppid, 5000) != 0)
            _exit(1);
        /* The first chunks are out; then it "crashes" in the middle of the file. */
        clock_sleep_ms(300);
        raise(SIGKILL);
    }
    pidfd = peer_open(child);
    CHECK(pidfd >= 0);
    CHECK_EQ(shm_seg_next(&seg, 9, UINT64_MAX, pidfd, 5000, NULL, &ch), 0);
    CHECK_EQ(ch.kind, SHM_SLOT_RESPONSE);
    shm_seg_release(&seg);
    CHECK_EQ(shm_seg_next(&seg, 9, ch.file_len - ch.len, pidfd, 5000, NULL, &ch), 0);
    shm_seg_release(&seg);
    /* The file was 2 slots minus 5: one DATA chunk; pretend more were owed. */
    t0 = clock_mono_ms();
    rc = shm_seg_next(&seg, 9, 100, pidfd, 20000, NULL, &ch);
    elapsed = clock_mono_ms() - t0;
    CHECK_EQ(rc, -ESRCH);
    CHECK(elapsed < 2000); /* the crash is at ~300 ms, the slice 100 ms, the timeout 20 s */
    waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    shm_seg_cancel(&seg);
    shm_seg_destroy(&seg);

    /* A producer that wrote everything and exited: its chunks are still delivered. */
    CHECK_EQ(shm_seg_create(&seg, 41, 65536), 0);
    shm_seg_begin(&seg, 10);
    child = fork();
    if (child == 0) {
        struct shm_seg att;
        int ppid = peer_open(getppid());

        _exit(shm_seg_attach(&att, seg.name, 65536) != 0 ||
              produce(&att, 10, pattern, (uint64_t)seg.nslots * seg.slot_cap, ppid, 5000) != 0);
    }
    close(pidfd);
    pidfd = peer_open(child);
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(peer_alive(pidfd), 0);
    {
        unsigned char *out = malloc(DATA_MAX);
        enum shm_status st;
        uint64_t len = 0;

        CHECK_EQ(consume(&seg, 10, out, DATA_MAX, pidfd, 1000, &st, &len), 0);
        CHECK_EQ(len, (uint64_t)seg.nslots * seg.slot_cap);
        CHECK_MEM(out, pattern, len);
        CHECK_EQ(shm_seg_is_idle(&seg), 1);
        /* Nothing more will come: the next wait reports the death, not a timeout. */
        CHECK_EQ(shm_seg_next(&seg, 10, 1, pidfd, 5000, NULL, &ch), -ESRCH);
        free(out);
    }
    close(pidfd);
    shm_seg_destroy(&seg);
    CHECK_EQ(ipc_test_objects_of(getpid()), 0);
    CHECK_EQ(ipc_test_open_fds(), fd_baseline);
}

struct blocked_producer {
    const char *name;
    int rc;
    int64_t returned_ms;
};

/* Writes chunks of an endless file until an error. */
static void *endless_producer(void *p)
{
    struct blocked_producer *b = p;
    struct shm_seg seg;
    int rc;

    b->rc = shm_seg_attach(&seg, b->name, 0);
    if (b->rc < 0)
        return NULL;
    do {
        unsigned char *payload;

        rc = shm_seg_reserve(&seg, self_pidfd, 10000, NULL, &payload);
        if (rc == 0)
            shm_seg_publish(&seg, 11, seg.seq ? SHM_SLOT_DATA : SHM_SLOT_RESPONSE, SHM_STATUS_OK,
                            seg.seq ? 0 : UINT64_MAX, seg.slot_cap);
    } while (rc == 0);
    b->rc = rc;
    b->returned_ms = clock_mono_ms();
    shm_seg_detach(&seg);
    return NULL;
}

static void test_cancel(void)
{
    static volatile sig_atomic_t stop_flag = 1;
    struct blocked_producer b = {0};
    struct shm_seg seg, prod;
    struct shm_chunk ch;
    pthread_t th;
    int64_t t0, cancel_ms;
    unsigned char *p;
    int filled = 0;

    /* The consumer gives up while the producer waits for room. */
    CHECK_EQ(shm_seg_create(&seg, 50, 8192), 0);
    shm_seg_begin(&seg, 11);
    b.name = seg.name;
    CHECK_EQ(pthread_create(&th, NULL, endless_producer, &b), 0);
    t0 = clock_mono_ms();
    while (filled < (int)seg.nslots && clock_mono_ms() - t0 < 5000) {
        filled = (int)shm_sem_value(&seg.hdr->filled);
        clock_sleep_ms(1);
    }
    CHECK_EQ(filled, seg.nslots);
    clock_sleep_ms(20); /* let it block in the wait */
    cancel_ms = clock_mono_ms();
    shm_seg_cancel(&seg);
    pthread_join(th, NULL);
    CHECK_EQ(b.rc, -ECANCELED);
    CHECK(b.returned_ms - cancel_ms < SHM_WAIT_SLICE_MS * 3);
    CHECK_EQ(shm_seg_is_idle(&seg), 0); /* abandoned: to be replaced, not reused */
    shm_seg_destroy(&seg);

    /* Cancelled before the producer even starts: no write at all, free slots or not. */
    CHECK_EQ(shm_seg_create(&seg, 51, 8192), 0);
    CHECK_EQ(shm_seg_attach(&prod, seg.name, 8192), 0);
    shm_seg_begin(&seg, 12);
    shm_seg_cancel(&seg);
    CHECK_EQ(shm_seg_reserve(&prod, self_pidfd, 1000, NULL, &p), -ECANCELED);
    shm_seg_detach(&prod);
    shm_seg_destroy(&seg);

    /* *stop ends either side's wait, even with a free slot. */
    CHECK_EQ(shm_seg_create(&seg, 52, 8192), 0);
    CHECK_EQ(shm_seg_attach(&prod, seg.name, 8192), 0);
    shm_seg_begin(&seg, 13);
    CHECK_EQ(shm_seg_next(&seg, 13, UINT64_MAX, self_pidfd, 1000, &stop_flag, &ch), -ECANCELED);
    CHECK_EQ(shm_seg_reserve(&prod, self_pidfd, 1000, &stop_flag, &p), -ECANCELED);
    shm_seg_detach(&prod);
    shm_seg_destroy(&seg);
    CHECK_EQ(ipc_test_objects_of(getpid()), 0);
    CHECK_EQ(ipc_test_open_fds(), fd_baseline);
}

static void test_timeouts(void)
{
    struct shm_seg seg, prod;
    struct shm_chunk ch;
    unsigned char *p;
    int64_t t0, elapsed;
    pid_t dead;
    int dead_fd;

    CHECK_EQ(shm_seg_create(&seg, 60, 512), 0);
    shm_seg_begin(&seg, 1);
    t0 = clock_mono_ms();
    CHECK_EQ(shm_seg_next(&seg, 1, UINT64_MAX, self_pidfd, 250, NULL, &ch), -ETIMEDOUT);
    elapsed = clock_mono_ms() - t0;
    CHECK(elapsed >= 240 && elapsed < 2500);
    t0 = clock_mono_ms();
    CHECK_EQ(shm_seg_next(&seg, 1, UINT64_MAX, self_pidfd, 0, NULL, &ch), -ETIMEDOUT);
    CHECK(clock_mono_ms() - t0 < 100);
    CHECK_EQ(shm_seg_next(&seg, 1, UINT64_MAX, self_pidfd, -1, NULL, &ch), -EINVAL);

    /* The producer's proxy is gone: it stops as soon as it has to wait. */
    dead = fork();
    if (dead == 0)
        _exit(0);
    dead_fd = peer_open(dead);
    waitpid(dead, NULL, 0);
    CHECK(dead_fd >= 0);
    CHECK_EQ(shm_seg_attach(&prod, seg.name, 512), 0);
    CHECK_EQ(shm_seg_reserve(&prod, dead_fd, 5000, NULL, &p), 0); /* one slot is free */
    shm_seg_publish(&prod, 1, SHM_SLOT_RESPONSE, SHM_STATUS_OK, 1000, 100);
    t0 = clock_mono_ms();
    CHECK_EQ(shm_seg_reserve(&prod, dead_fd, 5000, NULL, &p), -ESRCH);
    CHECK(clock_mono_ms() - t0 < 1000);
    /* A bad pidfd is an error, not "alive". */
    CHECK_EQ(shm_seg_reserve(&prod, 1000000, 5000, NULL, &p), -EBADF);
    close(dead_fd);
    shm_seg_detach(&prod);
    shm_seg_destroy(&seg);
    CHECK_EQ(ipc_test_objects_of(getpid()), 0);
    CHECK_EQ(ipc_test_open_fds(), fd_baseline);
}

/* A small /dev/shm: creation fails cleanly instead of a SIGBUS later. */
static void test_enospc(void)
{
    struct shm_seg seg;

    CHECK_EQ(isolate_rc, 0);
    if (isolate_rc != 0)
        return;
    CHECK_EQ(mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=1m,mode=1777"), 0);
    CHECK_EQ(shm_seg_create(&seg, 70, 4 << 20), -ENOSPC);
    CHECK_EQ(ipc_test_count("/dev/shm", "getfile-"), 0);
    CHECK_EQ(shm_seg_create(&seg, 71, 512 << 10), 0);
    shm_seg_destroy(&seg);
    CHECK_EQ(umount("/dev/shm"), 0);
    CHECK_EQ(ipc_test_objects_of(getpid()), 0);
    CHECK_EQ(ipc_test_open_fds(), fd_baseline);
}

/* A count at SHM_SEM_MAX makes the next post fail with EOVERFLOW. */
static void sem_reset(struct shm_sem *sem, unsigned value)
{
    shm_sem_init(sem, value);
}

struct next_waiter {
    struct shm_seg *seg;
    uint64_t gen;
    int rc;
    int64_t returned_ms;
};

static void *next_waiter_main(void *arg)
{
    struct next_waiter *w = arg;
    struct shm_chunk ch;

    w->rc = shm_seg_next(w->seg, w->gen, UINT64_MAX, self_pidfd, 5000, NULL, &ch);
    w->returned_ms = clock_mono_ms();
    return NULL;
}

/* A post that fails is reported, and the cancel word it leaves ends the peer's wait within a
 * slice: the peer does not sit out its whole timeout (the proxy's stall limit) for a chunk or a
 * slot that will never be posted. */
static void test_post_fails(void)
{
    struct shm_seg seg, prod;
    struct shm_chunk ch;
    struct next_waiter w;
    pthread_t t;
    unsigned char *p;
    int64_t t0;

    /* The cache's post of a chunk fails while the proxy waits for it. */
    CHECK_EQ(shm_seg_create(&seg, 40, 4096), 0);
    CHECK_EQ(shm_seg_attach(&prod, seg.name, 4096), 0);
    shm_seg_begin(&seg, 9);
    w = (struct next_waiter){&seg, 9, 1, 0};
    CHECK_EQ(pthread_create(&t, NULL, next_waiter_main, &w), 0);
    CHECK_EQ(shm_seg_reserve(&prod, self_pidfd, 100, NULL, &p), 0);
    usleep(20 * 1000); /* not needed for correctness: lets the waiter be inside its wait */
    sem_reset(&prod.hdr->filled, SHM_SEM_MAX);
    t0 = clock_mono_ms();
    CHECK_EQ(shm_seg_publish(&prod, 9, SHM_SLOT_RESPONSE, SHM_STATUS_OK, 10, 10), -EOVERFLOW);
    sem_reset(&prod.hdr->filled, 0); /* the lost post: nothing for the waiter to take */
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(w.rc, -ECONNABORTED);
    CHECK(w.returned_ms - t0 < 2 * SHM_WAIT_SLICE_MS + 200);
    CHECK_EQ(__atomic_load_n(&seg.hdr->cancel, __ATOMIC_ACQUIRE), SHM_CANCEL_CACHE);
    CHECK_EQ(shm_seg_is_idle(&seg), 0); /* never reused */
    shm_seg_detach(&prod);
    shm_seg_destroy(&seg);

    /* The proxy's post of a free slot fails: the cache's next reserve ends at once. */
    CHECK_EQ(shm_seg_create(&seg, 41, 4096), 0);
    CHECK_EQ(shm_seg_attach(&prod, seg.name, 4096), 0);
    shm_seg_begin(&seg, 3);
    CHECK_EQ(shm_seg_reserve(&prod, self_pidfd, 100, NULL, &p), 0);
    memcpy(p, pattern, 10);
    CHECK_EQ(shm_seg_publish(&prod, 3, SHM_SLOT_RESPONSE, SHM_STATUS_OK, 20, 10), 0);
    CHECK_EQ(shm_seg_next(&seg, 3, UINT64_MAX, self_pidfd, 1000, NULL, &ch), 0);
    CHECK_MEM(ch.data, pattern, 10);
    sem_reset(&seg.hdr->free, SHM_SEM_MAX);
    CHECK_EQ(shm_seg_release(&seg), -EOVERFLOW);
    sem_reset(&seg.hdr->free, 0);
    t0 = clock_mono_ms();
    CHECK_EQ(shm_seg_reserve(&prod, self_pidfd, 5000, NULL, &p), -ECANCELED);
    CHECK(clock_mono_ms() - t0 < 1000);
    shm_seg_cancel(&seg);
    shm_seg_detach(&prod);
    shm_seg_destroy(&seg);
    CHECK_EQ(ipc_test_objects_of(getpid()), 0);
    CHECK_EQ(ipc_test_open_fds(), fd_baseline);
}

/* A producer that gives a transfer up for its own reasons says so: the proxy waiting for the
 * next chunk stops within a slice, not at its stall limit; a proxy's own cancel is kept. */
static void test_abandon(void)
{
    struct shm_seg seg, prod;
    struct next_waiter w;
    pthread_t t;
    unsigned char *p;
    int64_t t0;

    CHECK_EQ(shm_seg_create(&seg, 42, 4096), 0);
    CHECK_EQ(shm_seg_attach(&prod, seg.name, 4096), 0);
    shm_seg_begin(&seg, 5);
    w = (struct next_waiter){&seg, 5, 1, 0};
    CHECK_EQ(pthread_create(&t, NULL, next_waiter_main, &w), 0);
    CHECK_EQ(shm_seg_reserve(&prod, self_pidfd, 100, NULL, &p), 0);
    usleep(20 * 1000); /* not needed for correctness: lets the waiter be inside its wait */
    t0 = clock_mono_ms();
    shm_seg_abandon(&prod);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(w.rc, -ECONNABORTED);
    CHECK(w.returned_ms - t0 < 2 * SHM_WAIT_SLICE_MS + 200);
    CHECK_EQ(__atomic_load_n(&seg.hdr->cancel, __ATOMIC_ACQUIRE), SHM_CANCEL_CACHE);
    CHECK_EQ(shm_seg_is_idle(&seg), 0); /* never reused */

    /* The next request's segment: the proxy cancels first, the cache's abandon keeps that. */
    shm_seg_begin(&seg, 6);
    shm_seg_cancel(&seg);
    shm_seg_abandon(&prod);
    CHECK_EQ(__atomic_load_n(&seg.hdr->cancel, __ATOMIC_ACQUIRE), SHM_CANCEL_PROXY);
    shm_seg_detach(&prod);
    shm_seg_destroy(&seg);
    CHECK_EQ(ipc_test_objects_of(getpid()), 0);
    CHECK_EQ(ipc_test_open_fds(), fd_baseline);
}

struct sem_pinger {
    struct shm_sem *sem;
    int n;
};

static void *sem_poster(void *arg)
{
    struct sem_pinger *p = arg;

    for (int i = 0; i < p->n; i++)
        while (shm_sem_post(p->sem) == -EOVERFLOW) /* the consumer is behind: let it catch up */
            sched_yield();
    return NULL;
}

struct slow_waits {
    struct shm_sem *sem;
    int n, slow;
};

static void *sem_waiter(void *arg)
{
    struct slow_waits *w = arg;

    for (int i = 0; i < w->n; i++) {
        int64_t t0 = clock_mono_ms();
        struct timespec abs = clock_mono_in(1000);
        if (shm_sem_clockwait(w->sem, &abs) != 0)
            i--; /* nothing posted within a second: wait again */
        if (clock_mono_ms() - t0 >= 500)
            w->slow++;
    }
    return NULL;
}

/* The waiter flag zeroed under a sleeping waiter costs one wake, not one per post ever after. */
static void test_sem_flag_heals(void)
{
    static struct shm_sem sem;
    struct slow_waits w = {&sem, 40, 0};
    pthread_t t;

    shm_sem_init(&sem, 0);
    CHECK_EQ(pthread_create(&t, NULL, sem_waiter, &w), 0);
    for (int i = 0; i < w.n; i++) {
        /* Post only once the waiter is asleep (flag set, nothing to take). */
        while (__atomic_load_n(&sem.waiters, __ATOMIC_SEQ_CST) == 0)
            clock_sleep_ms(1);
        clock_sleep_ms(2);
        if (i == 0)
            __atomic_store_n(&sem.waiters, 0, __ATOMIC_SEQ_CST); /* the scribble */
        CHECK_EQ(shm_sem_post(&sem), 0);
    }
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK(w.slow <= 1);
}

/* The segment's semaphore: counts, wakes, deadlines, and a scribbled count is a value, never
 * an abort (glibc's sem_t aborts when its futex-flag word is overwritten). */
static void test_sem(void)
{
    static struct shm_sem sem;
    struct sem_pinger p = {&sem, 20000};
    struct timespec abs;
    pthread_t t;
    int64_t t0;
    int got = 0;

    shm_sem_init(&sem, 2);
    CHECK_EQ(shm_sem_trywait(&sem), 0);
    CHECK_EQ(shm_sem_trywait(&sem), 0);
    CHECK_EQ(shm_sem_trywait(&sem), -EAGAIN);
    t0 = clock_mono_ms();
    abs = clock_mono_in(150);
    CHECK_EQ(shm_sem_clockwait(&sem, &abs), -ETIMEDOUT);
    CHECK(clock_mono_ms() - t0 >= 140);
    /* Every post taken exactly once by a waiter that sleeps when there is none. */
    CHECK_EQ(pthread_create(&t, NULL, sem_poster, &p), 0);
    while (got < p.n) {
        abs = clock_mono_in(5000);
        if (shm_sem_clockwait(&sem, &abs) != 0)
            break;
        got++;
    }
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(got, p.n);
    CHECK_EQ(shm_sem_value(&sem), 0);
    /* Scribbled words: a huge count is refused both ways; a zeroed waiter count loses at most
     * the wake (the wait still ends at its deadline). */
    __atomic_store_n(&sem.value, 0xdeadbeefu, __ATOMIC_RELAXED);
    CHECK_EQ(shm_sem_trywait(&sem), -EBADMSG);
    abs = clock_mono_in(1000);
    CHECK_EQ(shm_sem_clockwait(&sem, &abs), -EBADMSG);
    CHECK_EQ(shm_sem_post(&sem), -EOVERFLOW);
    __atomic_store_n(&sem.value, SHM_SEM_MAX, __ATOMIC_RELAXED);
    CHECK_EQ(shm_sem_post(&sem), -EOVERFLOW);
    __atomic_store_n(&sem.value, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&sem.waiters, 0xffffffffu, __ATOMIC_RELAXED);
    CHECK_EQ(shm_sem_post(&sem), 0); /* a needless wake is harmless, and clears the flag */
    CHECK_EQ(__atomic_load_n(&sem.waiters, __ATOMIC_RELAXED), 0);
    CHECK_EQ(shm_sem_trywait(&sem), 0);
}

/* A segment shrunk under both sides (any process of our uid can ftruncate it): every call that
 * touches the mapping fails with -EFAULT instead of dying of SIGBUS; a SIGBUS outside a guard
 * still kills. */
static void test_shrunk(void)
{
    struct shm_seg seg, prod;
    struct shm_chunk ch;
    unsigned char *p;
    int fd, status = 0;
    pid_t child;

#ifdef __SANITIZE_THREAD__
    /* TSan performs atomic accesses inside its runtime, where it takes a SIGBUS for its own
     * crash: the guard cannot work there (see shm_guard.h). */
    fprintf(stderr, "test_shrunk: skipped under ThreadSanitizer\n");
    return;
#endif
    CHECK_EQ(shm_guard_install(), 0);
    for (int half = 0; half <= 1; half++) {
        CHECK_EQ(shm_seg_create(&seg, 80, 16384), 0);
        CHECK_EQ(shm_seg_attach(&prod, seg.name, 16384), 0);
        shm_seg_begin(&seg, 4);
        CHECK_EQ(shm_seg_reserve(&prod, self_pidfd, 100, NULL, &p), 0);
        CHECK_EQ(shm_seg_publish(&prod, 4, SHM_SLOT_RESPONSE, SHM_STATUS_OK, 100000, 10), 0);
        fd = shm_open(seg.name, O_RDWR, 0);
        CHECK(fd >= 0);
        /* To nothing, or to one page: the header stays, the slots past it go. */
        CHECK_EQ(ftruncate(fd, half ? 4096 : 0), 0);
        close(fd);
        if (half) {
            CHECK_EQ(shm_seg_next(&seg, 4, UINT64_MAX, self_pidfd, 100, NULL, &ch), 0);
            CHECK_EQ(shm_seg_release(&seg), 0);
            /* Slot 1's header lies past the new end. */
            CHECK_EQ(shm_seg_reserve(&prod, self_pidfd, 100, NULL, &p), -EFAULT);
            CHECK_EQ(shm_seg_next(&seg, 4, 100000, self_pidfd, 100, NULL, &ch), -ETIMEDOUT);
        } else {
            CHECK_EQ(shm_seg_next(&seg, 4, UINT64_MAX, self_pidfd, 100, NULL, &ch), -EFAULT);
            CHECK_EQ(shm_seg_reserve(&prod, self_pidfd, 100, NULL, &p), -EFAULT);
            CHECK_EQ(shm_seg_publish(&prod, 4, SHM_SLOT_DATA, SHM_STATUS_OK, 0, 10), -EFAULT);
            CHECK_EQ(shm_seg_is_idle(&seg), 0);
            shm_seg_begin(&seg, 5);
            shm_seg_abandon(&prod);
        }
        shm_seg_cancel(&seg);
        if (!half) {
            child = fork();
            if (child == 0) /* unguarded: dies of SIGBUS as before */
                _exit((int)__atomic_load_n(&seg.hdr->magic, __ATOMIC_RELAXED) & 1);
            CHECK(child > 0 && waitpid(child, &status, 0) == child);
            CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS);
        }
        shm_seg_detach(&prod);
        shm_seg_destroy(&seg);
    }
    signal(SIGBUS, SIG_DFL);
    CHECK_EQ(ipc_test_objects_of(getpid()), 0);
    CHECK_EQ(ipc_test_open_fds(), fd_baseline);
}

int main(void)
{
    static const struct test_case cases[] = {
        T(test_geometry),       T(test_create_attach),
        T(test_attach_rejects), T(test_transfer_matrix),
        T(test_chunk_validate), T(test_bad_chunks),
        T(test_producer_dies),  T(test_cancel),
        T(test_timeouts),       T(test_enospc),
        T(test_post_fails),     T(test_abandon),
        T(test_shrunk),         T(test_sem),
        T(test_sem_flag_heals),
    };
    int rc;

    isolate_rc = ipc_test_isolate_or_skip();
    if (isolate_rc != 0)
        fprintf(stderr, "cannot isolate IPC (%s): the ENOSPC test needs root\n",
                strerror(-isolate_rc));
    make_pattern();
    self_pidfd = peer_open(getpid());
    fd_baseline = ipc_test_open_fds();
    rc = test_run_all(cases, sizeof cases / sizeof cases[0]);
    close(self_pidfd);
    free(pattern);
    return rc;
}
