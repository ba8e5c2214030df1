/* cmdq_craft.c - sends a running simplecached malformed, truncated, oversized and lying requests,
 * checks that none of them makes it write into any segment, then that a valid request is still
 * served byte for byte. A helper of tests/integration/cache_craft.sh (run the cache with -t 1 so
 * requests are served in order: the final valid answer proves every earlier one was handled).
 * Prints "expect rejected=R stale=S" for the cache's closing statistics. */
/* SPDX-License-Identifier: MIT */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "ipc/cmdq.h"
#include "ipc/peer.h"
#include "ipc/shm_chan.h"

#define SEGSZ 8192u

static mqd_t mq = (mqd_t)-1;
static int expect_rejected, expect_stale;

/* Sends len bytes of buf as one message. Returns 0 or -errno. */
static int send_raw(const void *buf, size_t len)
{
    struct timespec ts = clock_realtime_in(5000);

    if (mq_timedsend(mq, buf, len, 0, &ts) < 0)
        return -errno;
    return 0;
}

/* A valid request for path into segment seg_name (of this process) with generation gen. */
static void make_req(struct cmdq_request *r, const char *seg_name, uint64_t size, uint64_t gen,
                     const char *path)
{
    int rc = cmdq_request_init(r, getpid(), seg_name, size, gen, path, strlen(path));

    CHECK_EQ(rc, 0);
}

/* Sends a message that cmdq_request_decode must refuse. */
static void send_malformed(const char *what, const void *buf, size_t len)
{
    int rc = send_raw(buf, len);

    if (rc != 0)
        fprintf(stderr, "send (%s): %s\n", what, strerror(-rc));
    CHECK_EQ(rc, 0);
    expect_rejected++;
}

static void malformed_messages(const char *path)
{
    struct cmdq_request good, r;
    char name[IPC_NAME_MAX];
    unsigned char big[sizeof(struct cmdq_request) + 64];

    CHECK_EQ(ipc_name_format(name, IPC_KIND_SEGMENT, geteuid(), getpid(), 900), 0);
    make_req(&good, name, SEGSZ, 1, path);

    send_malformed("empty", &good, 0);
    send_malformed("one byte", &good, 1);
    send_malformed("truncated", &good, sizeof good - 1);
    send_malformed("half", &good, sizeof good / 2);

    r = good;
    r.magic ^= 1;
    send_malformed("magic", &r, sizeof r);
    r = good;
    r.version = CMDQ_VERSION + 1;
    send_malformed("version", &r, sizeof r);
    r = good;
    r.size = (uint16_t)(sizeof r - 8);
    send_malformed("size field", &r, sizeof r);
    r = good;
    r.path_len += 5;
    send_malformed("path_len too long", &r, sizeof r);
    r = good;
    r.path_len = 0;
    send_malformed("path_len 0", &r, sizeof r);
    r = good;
    r.path_len = CMDQ_PATH_MAX + 1000;
    send_malformed("path_len huge", &r, sizeof r);
    r = good;
    memset(r.path, 'a', sizeof r.path);
    r.path[0] = '/';
    r.path_len = CMDQ_PATH_MAX + 1;
    send_malformed("path not terminated", &r, sizeof r);
    r = good;
    r.path[0] = 'x';
    send_malformed("relative path", &r, sizeof r);
    r = good;
    memset(r.seg_name, 'x', sizeof r.seg_name);
    send_malformed("seg_name not terminated", &r, sizeof r);

    static const char *const foreign[] = {"noslash",          "//getfile-0-1-seg1", "/etc/passwd",
                                          "/getfile-0-1-cmd", "/getfile-0-cache",   ""};
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        r = good;
        memset(r.seg_name, 0, sizeof r.seg_name);
        snprintf(r.seg_name, sizeof r.seg_name, "%s", foreign[i]);
        send_malformed("foreign name", &r, sizeof r);
    }
    /* The strict pattern: "//x" opens "/x" in glibc; leading zeros would alias another name. */
    r = good;
    r.seg_name[0] = '/';
    memcpy(r.seg_name + 1, name, strlen(name) + 1); /* name is well under IPC_NAME_MAX - 1 */
    send_malformed("double slash", &r, sizeof r);
    r = good;
    snprintf(r.seg_name, sizeof r.seg_name, "/getfile-%u-0%d-seg900", (unsigned)geteuid(),
             (int)getpid());
    send_malformed("leading zero", &r, sizeof r);
    /* Another uid's segment name, and a segment of a process other than the sender. */
    r = good;
    CHECK_EQ(ipc_name_format(r.seg_name, IPC_KIND_SEGMENT, geteuid() + 1000, getpid(), 900), 0);
    send_malformed("other uid", &r, sizeof r);
    r = good;
    CHECK_EQ(ipc_name_format(r.seg_name, IPC_KIND_SEGMENT, geteuid(), getppid(), 900), 0);
    send_malformed("pid of another process", &r, sizeof r);

    /* Oversized: the queue's message size is exactly one request; the kernel refuses more. */
    memset(big, 0, sizeof big);
    memcpy(big, &good, sizeof good);
    CHECK_EQ(send_raw(big, sizeof big), -EMSGSIZE);
}

/* A segment the cache must refuse or leave alone, and a copy of its bytes to compare. */
struct bait {
    const char *what;
    char name[IPC_NAME_MAX];
    unsigned char *map;
    unsigned char *snapshot;
    size_t size;
    int stale; /* expected to be dropped as stale rather than rejected */
    int skip;  /* not sent (needs root) */
};

static void bait_snapshot(struct bait *b)
{
    int fd = shm_open(b->name, O_RDONLY, 0);
    struct stat st;

    if (fd < 0)
        return; /* the missing segment */
    CHECK_EQ(fstat(fd, &st), 0);
    b->size = (size_t)st.st_size;
    if (b->size == 0) {
        close(fd);
        return;
    }
    b->map = mmap(NULL, b->size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    CHECK(b->map != MAP_FAILED);
    if (b->map == MAP_FAILED) {
        b->map = NULL;
        return;
    }
    b->snapshot = malloc(b->size);
    if (b->snapshot)
        memcpy(b->snapshot, b->map, b->size);
}

static int bait_untouched(const struct bait *b)
{
    if (b->map == NULL) {
        /* The missing segment: it must still not exist. */
        int fd = shm_open(b->name, O_RDONLY, 0);
        if (fd >= 0)
            close(fd);
        return fd < 0;
    }
    return b->snapshot != NULL && memcmp(b->map, b->snapshot, b->size) == 0;
}

static void bait_release(struct bait *b)
{
    if (b->map)
        munmap(b->map, b->size);
    free(b->snapshot);
    shm_unlink(b->name);
}

/* Creates a raw object (no header written) of size bytes with mode. */
static int raw_object(const char *name, size_t size, mode_t mode)
{
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);

    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)size) < 0 || fchmod(fd, mode) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    close(fd);
    return 0;
}

/* Creates a proper segment (shm_seg_create) and then changes what the test needs. */
static int real_segment(struct shm_seg *seg, uint32_t serial, uint64_t gen)
{
    int rc = shm_seg_create(seg, serial, SEGSZ);

    if (rc == 0)
        shm_seg_begin(seg, gen);
    return rc;
}

static int chmod_obj(const char *name, mode_t mode, uid_t owner)
{
    int fd = shm_open(name, O_RDWR, 0);
    int rc = 0;

    if (fd < 0)
        return -errno;
    if (fchmod(fd, mode) < 0)
        rc = -errno;
    if (rc == 0 && owner != (uid_t)-1 && fchown(fd, owner, (gid_t)-1) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

enum { NBAIT = 7 };

/* Prepares requests naming objects the cache must not write into; *reqs gets one per bait. */
static void prepare_lies(const char *path, struct bait *b, struct shm_seg *segs,
                         struct cmdq_request *reqs)
{
    uint32_t serial = 910;
    int n = 0;

    /* 0: the named segment does not exist (and must not be created). */
    b[n].what = "missing segment";
    CHECK_EQ(ipc_name_format(b[n].name, IPC_KIND_SEGMENT, geteuid(), getpid(), serial++), 0);
    make_req(&reqs[n], b[n].name, SEGSZ, 1, path);
    n++;

    /* 1: a claimed size larger than the real object (mapping it would raise SIGBUS). */
    b[n].what = "claimed size larger than the segment";
    CHECK_EQ(real_segment(&segs[n], serial++, 1), 0);
    memcpy(b[n].name, segs[n].name, IPC_NAME_MAX);
    make_req(&reqs[n], b[n].name, 1u << 20, 1, path);
    n++;

    /* 2: mode 0644 (readable by others: not a private channel). */
    b[n].what = "mode 0644";
    CHECK_EQ(real_segment(&segs[n], serial++, 1), 0);
    memcpy(b[n].name, segs[n].name, IPC_NAME_MAX);
    CHECK_EQ(chmod_obj(b[n].name, 0644, (uid_t)-1), 0);
    make_req(&reqs[n], b[n].name, SEGSZ, 1, path);
    n++;

    /* 3: an object of our name pattern owned by another uid (we can chown only as root). */
    b[n].what = "owned by another uid";
    CHECK_EQ(real_segment(&segs[n], serial++, 1), 0);
    memcpy(b[n].name, segs[n].name, IPC_NAME_MAX);
    if (geteuid() == 0)
        CHECK_EQ(chmod_obj(b[n].name, 0600, 65534), 0);
    else
        b[n].skip = 1;
    make_req(&reqs[n], b[n].name, SEGSZ, 1, path);
    n++;

    /* 4: no valid header (all zeros): magic, version and geometry fail. */
    b[n].what = "garbage header";
    CHECK_EQ(ipc_name_format(b[n].name, IPC_KIND_SEGMENT, geteuid(), getpid(), serial++), 0);
    CHECK_EQ(raw_object(b[n].name, SEGSZ, 0600), 0);
    make_req(&reqs[n], b[n].name, SEGSZ, 1, path);
    n++;

    /* 5: smaller than any segment may be, and claimed so. */
    b[n].what = "tiny object";
    CHECK_EQ(ipc_name_format(b[n].name, IPC_KIND_SEGMENT, geteuid(), getpid(), serial++), 0);
    CHECK_EQ(raw_object(b[n].name, 64, 0600), 0);
    make_req(&reqs[n], b[n].name, 64, 1, path);
    n++;

    /* 6: a valid segment whose generation is not the request's (an old, replayed request). */
    b[n].what = "stale generation";
    b[n].stale = 1;
    CHECK_EQ(real_segment(&segs[n], serial++, 5), 0);
    memcpy(b[n].name, segs[n].name, IPC_NAME_MAX);
    make_req(&reqs[n], b[n].name, SEGSZ, 4, path);
    n++;
    CHECK_EQ(n, NBAIT);
}

static void send_lies(const struct bait *b, const struct cmdq_request *reqs)
{
    for (int i = 0; i < NBAIT; i++) {
        if (b[i].skip)
            continue;
        CHECK_EQ(send_raw(&reqs[i], sizeof reqs[i]), 0);
        if (b[i].stale)
            expect_stale++;
        else
            expect_rejected++;
    }
}

/* Reads a whole file into memory. */
static unsigned char *slurp(const char *file, size_t *len)
{
    FILE *f = fopen(file, "rb");
    unsigned char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

/* A valid request, consumed as the proxy does. Returns 0 when every byte matched. */
static int valid_request(pid_t cache_pid, const char *path, const unsigned char *want,
                         size_t want_len)
{
    struct shm_seg seg;
    struct cmdq_request r;
    struct shm_chunk ch;
    uint64_t got = 0, left = UINT64_MAX;
    int pidfd = peer_open(cache_pid), rc, bad = 0;

    CHECK(pidfd >= 0);
    if (pidfd < 0)
        return -1;
    rc = shm_seg_create(&seg, 999, SEGSZ);
    CHECK_EQ(rc, 0);
    if (rc < 0) {
        close(pidfd);
        return -1;
    }
    shm_seg_begin(&seg, 77);
    make_req(&r, seg.name, seg.size, 77, path);
    CHECK_EQ(send_raw(&r, sizeof r), 0);
    for (;;) {
        rc = shm_seg_next(&seg, 77, left, pidfd, 10000, NULL, &ch);
        if (rc < 0) {
            fprintf(stderr, "valid request: shm_seg_next: %s\n", strerror(-rc));
            bad = 1;
            break;
        }
        if (left == UINT64_MAX) {
            if (ch.kind != SHM_SLOT_RESPONSE || ch.status != SHM_STATUS_OK ||
                ch.file_len != want_len) {
                fprintf(stderr, "valid request: unexpected response\n");
                bad = 1;
                shm_seg_release(&seg);
                break;
            }
            left = ch.file_len;
        }
        if (ch.len > left || memcmp(ch.data, want + got, ch.len) != 0)
            bad = 1;
        got += ch.len;
        left -= ch.len;
        shm_seg_release(&seg);
        if (left == 0 || bad)
            break;
    }
    shm_seg_destroy(&seg);
    close(pidfd);
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct bait bait[NBAIT];
    struct shm_seg segs[NBAIT];
    static struct cmdq_request lies[NBAIT];
    char qname[IPC_NAME_MAX];
    unsigned char *want;
    size_t want_len = 0;
    unsigned long pid;
    int failed = 0;

    if (argc != 4) {
        fprintf(stderr, "usage: cmdq_craft CACHE_PID REQUEST_PATH EXPECTED_FILE\n");
        return 2;
    }
    pid = strtoul(argv[1], NULL, 10);
    want = slurp(argv[3], &want_len);
    if (want == NULL) {
        perror(argv[3]);
        return 2;
    }
    CHECK_EQ(ipc_name_format(qname, IPC_KIND_CMDQ, geteuid(), (pid_t)pid, 0), 0);
    mq = mq_open(qname, O_WRONLY | O_CLOEXEC);
    if (mq == (mqd_t)-1) {
        fprintf(stderr, "cannot open the cache's queue %s: %s\n", qname, strerror(errno));
        free(want);
        return 1;
    }
    memset(bait, 0, sizeof bait);
    memset(segs, 0, sizeof segs);

    prepare_lies(argv[2], bait, segs, lies);
    for (int i = 0; i < NBAIT; i++)
        bait_snapshot(&bait[i]);
    malformed_messages(argv[2]);
    send_lies(bait, lies);
    /* With one cache worker, this answer comes after every message above was handled. */
    CHECK_EQ(valid_request((pid_t)pid, argv[2], want, want_len), 0);
    for (int i = 0; i < NBAIT; i++) {
        if (!bait_untouched(&bait[i])) {
            fprintf(stderr, "segment of case '%s' was written to\n", bait[i].what);
            failed = 1;
        }
        shm_seg_destroy(&segs[i]); /* idempotent on the zeroed ones */
        bait_release(&bait[i]);
    }
    CHECK_EQ(failed, 0);
    /* And the cache still answers a second valid request. */
    CHECK_EQ(valid_request((pid_t)pid, argv[2], want, want_len), 0);
    mq_close(mq);
    free(want);
    printf("expect rejected=%d stale=%d\n", expect_rejected, expect_stale);
    printf("%d passed, %d failed\n", test_failures_ ? 0 : 1, test_failures_ ? 1 : 0);
    return test_failures_ ? 1 : 0;
}
